//! [`RuleSampler`]: per-route / per-operation sampling rules.
//!
//! ```
//! use opentelemetry::KeyValue;
//! use opentelemetry::trace::{Span as _, Tracer as _, TracerProvider as _};
//! use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
//! use otel_core::sampling::{RuleMatch, RuleSampler};
//!
//! let sampler = RuleSampler::builder()
//!     .rule(RuleMatch::route("/health"), Sampler::AlwaysOff)
//!     .fallback(Sampler::AlwaysOn)
//!     .build();
//! let tracer = SdkTracerProvider::builder()
//!     .with_sampler(sampler)
//!     .build()
//!     .tracer("doc");
//! let health = tracer
//!     .span_builder("GET")
//!     .with_attributes([KeyValue::new("url.path", "/health")])
//!     .start(&tracer);
//! assert!(!health.span_context().is_sampled());
//! assert!(tracer.start("GET /orders").span_context().is_sampled());
//! ```

use std::borrow::Cow;
use std::fmt;

use opentelemetry::trace::{Link, SpanKind, TraceContextExt, TraceId};
use opentelemetry::{Context, KeyValue, Value};
use opentelemetry_sdk::trace::{Sampler, SamplingDecision, SamplingResult, ShouldSample};
use opentelemetry_semantic_conventions::attribute::{
    HTTP_ROUTE, MESSAGING_OPERATION_TYPE, URL_PATH,
};

use super::RateLimitingSampler;

/// What a rule's pattern is compared with.
///
/// A pattern ending in `*` matches every value starting with what comes before the `*`;
/// otherwise it must be equal.
///
/// ```
/// use opentelemetry::KeyValue;
/// use opentelemetry::trace::{Span as _, Tracer as _, TracerProvider as _};
/// use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
/// use otel_core::sampling::{RuleMatch, RuleSampler};
///
/// let sampler = RuleSampler::builder()
///     .rule(RuleMatch::route("/internal/*"), Sampler::AlwaysOff)
///     .rule(RuleMatch::name("SELECT *"), Sampler::AlwaysOff)
///     .build();
/// let tracer = SdkTracerProvider::builder()
///     .with_sampler(sampler)
///     .build()
///     .tracer("doc");
/// let sampled = |name: &'static str, attributes: Vec<KeyValue>| {
///     tracer
///         .span_builder(name)
///         .with_attributes(attributes)
///         .start(&tracer)
///         .span_context()
///         .is_sampled()
/// };
/// assert!(!sampled(
///     "GET /internal/{id}",
///     vec![KeyValue::new("http.route", "/internal/{id}")]
/// ));
/// assert!(!sampled("SELECT orders", vec![]));
/// assert!(sampled(
///     "GET /orders",
///     vec![KeyValue::new("http.route", "/orders")]
/// ));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RuleMatch {
    /// The span's `http.route` attribute (or its `url.path` when there is no route), its name,
    /// or the part of its name after the first space (`GET /pay` → `/pay`): any of these, as
    /// known when the span starts, matching the pattern.
    Route(Cow<'static, str>),
    /// The span name only (e.g. `GET /pay`, `SELECT orders`, `checkout`).
    Name(Cow<'static, str>),
}

impl RuleMatch {
    /// Matches a route, `url.path` or span name (see [`RuleMatch::Route`]).
    ///
    /// ```
    /// use opentelemetry::KeyValue;
    /// use opentelemetry::trace::{Span as _, Tracer as _, TracerProvider as _};
    /// use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
    /// use otel_core::sampling::{RuleMatch, RuleSampler};
    ///
    /// let sampler = RuleSampler::builder()
    ///     .rule(RuleMatch::route("/health"), Sampler::AlwaysOff)
    ///     .build();
    /// let tracer = SdkTracerProvider::builder()
    ///     .with_sampler(sampler)
    ///     .build()
    ///     .tracer("doc");
    /// let sampled = |name: &'static str, attributes: Vec<KeyValue>| {
    ///     tracer
    ///         .span_builder(name)
    ///         .with_attributes(attributes)
    ///         .start(&tracer)
    ///         .span_context()
    ///         .is_sampled()
    /// };
    /// // By attribute, or by the route part of the span name.
    /// assert!(!sampled("GET", vec![KeyValue::new("url.path", "/health")]));
    /// assert!(!sampled("GET /health", vec![]));
    /// assert!(sampled("GET /healthz", vec![]));
    /// ```
    pub fn route(pattern: impl Into<Cow<'static, str>>) -> Self {
        Self::Route(pattern.into())
    }
    /// Matches the span name.
    ///
    /// ```
    /// use opentelemetry::KeyValue;
    /// use opentelemetry::trace::{Span as _, Tracer as _, TracerProvider as _};
    /// use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
    /// use otel_core::sampling::{RuleMatch, RuleSampler};
    ///
    /// let sampler = RuleSampler::builder()
    ///     .rule(RuleMatch::name("poll*"), Sampler::AlwaysOff)
    ///     .build();
    /// let tracer = SdkTracerProvider::builder()
    ///     .with_sampler(sampler)
    ///     .build()
    ///     .tracer("doc");
    /// let sampled = |name: &'static str, attributes: Vec<KeyValue>| {
    ///     tracer
    ///         .span_builder(name)
    ///         .with_attributes(attributes)
    ///         .start(&tracer)
    ///         .span_context()
    ///         .is_sampled()
    /// };
    /// assert!(!sampled("poll queue", vec![]));
    /// // Attributes are not looked at.
    /// assert!(sampled("GET", vec![KeyValue::new("http.route", "poll")]));
    /// ```
    pub fn name(pattern: impl Into<Cow<'static, str>>) -> Self {
        Self::Name(pattern.into())
    }

    fn matches(&self, name: &str, attributes: &[KeyValue]) -> bool {
        match self {
            Self::Name(p) => pattern_matches(p, name),
            Self::Route(p) => {
                let attr = |key: &str| {
                    attributes
                        .iter()
                        .find(|kv| kv.key.as_str() == key)
                        .and_then(|kv| match &kv.value {
                            Value::String(s) => Some(s.as_str()),
                            _ => None,
                        })
                };
                let path = attr(HTTP_ROUTE).or_else(|| attr(URL_PATH));
                // HTTP server span names are `{method} {route}`: compare the route part too.
                let name_route = name.split_once(' ').map(|(_, r)| r);
                path.is_some_and(|v| pattern_matches(p, v))
                    || pattern_matches(p, name)
                    || name_route.is_some_and(|r| pattern_matches(p, r))
            }
        }
    }
}

fn pattern_matches(pattern: &str, value: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => value.starts_with(prefix),
        None => pattern == value,
    }
}

/// Samples entry spans by the first matching rule, and every other span by its parent.
///
/// Rules are tried in order on spans that enter this service: spans without a valid parent,
/// and SERVER, CONSUMER and messaging `receive` spans (`messaging.operation.type` `receive`)
/// whose parent is remote (came in a request or a message). The
/// first rule whose [`RuleMatch`] matches decides with its sampler; when none matches, the
/// fallback decides (default: sample). Every other span follows its parent: spans with a local
/// parent, so a local trace is kept or dropped whole, and spans of other kinds opened right
/// under a caller's context (a client call made with no server span around it).
///
/// Because rules decide entry spans even when a caller sent a sampling decision, a rule such as
/// `/health` → never drops health checks an upstream service sampled, and `/pay` → always keeps
/// payments an upstream service did not sample (that trace then has this service's part only).
///
/// ```
/// use opentelemetry_sdk::trace::Sampler;
/// use otel_core::sampling::{RateLimitingSampler, RuleMatch, RuleSampler};
///
/// let sampler = RuleSampler::builder()
///     .rule(RuleMatch::route("/health"), Sampler::AlwaysOff)
///     .rule(RuleMatch::route("/pay*"), Sampler::AlwaysOn)
///     .fallback(RateLimitingSampler::new(50.0))
///     .build();
/// let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
///     .with_sampler(sampler)
///     .build();
/// # drop(provider);
/// ```
#[derive(Clone)]
pub struct RuleSampler {
    rules: Vec<(RuleMatch, Box<dyn ShouldSample>)>,
    fallback: Box<dyn ShouldSample>,
}

impl fmt::Debug for RuleSampler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut l = f.debug_list();
        for (m, s) in &self.rules {
            l.entry(&(m, s));
        }
        l.entry(&("*", &self.fallback));
        l.finish()
    }
}

/// Builder of a [`RuleSampler`].
///
/// ```
/// use opentelemetry_sdk::trace::Sampler;
/// use otel_core::sampling::{RuleMatch, RuleSampler};
///
/// let sampler = RuleSampler::builder()
///     .rule(RuleMatch::route("/health"), Sampler::AlwaysOff)
///     .fallback(Sampler::TraceIdRatioBased(0.1))
///     .build();
/// assert!(format!("{sampler:?}").contains("TraceIdRatioBased(0.1)"));
/// ```
#[must_use]
#[derive(Debug)]
pub struct RuleSamplerBuilder {
    inner: RuleSampler,
}

impl RuleSampler {
    /// A builder with no rules and an always-on fallback.
    ///
    /// ```
    /// use opentelemetry::trace::{Span as _, Tracer as _, TracerProvider as _};
    /// use opentelemetry_sdk::trace::SdkTracerProvider;
    /// use otel_core::sampling::RuleSampler;
    ///
    /// let sampler = RuleSampler::builder().build();
    /// let tracer = SdkTracerProvider::builder()
    ///     .with_sampler(sampler)
    ///     .build()
    ///     .tracer("doc");
    /// assert!(tracer.start("anything").span_context().is_sampled());
    /// ```
    pub fn builder() -> RuleSamplerBuilder {
        RuleSamplerBuilder {
            inner: RuleSampler {
                rules: Vec::new(),
                fallback: Box::new(Sampler::AlwaysOn),
            },
        }
    }
}

impl RuleSamplerBuilder {
    /// Adds a rule, tried after the ones added before.
    ///
    /// ```
    /// use opentelemetry::KeyValue;
    /// use opentelemetry::trace::{Span as _, Tracer as _, TracerProvider as _};
    /// use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
    /// use otel_core::sampling::{RuleMatch, RuleSampler};
    ///
    /// // The first matching rule wins: `/pay/refund` is never sampled, other `/pay…` always.
    /// let sampler = RuleSampler::builder()
    ///     .rule(RuleMatch::route("/pay/refund"), Sampler::AlwaysOff)
    ///     .rule(RuleMatch::route("/pay*"), Sampler::AlwaysOn)
    ///     .fallback(Sampler::AlwaysOff)
    ///     .build();
    /// let tracer = SdkTracerProvider::builder()
    ///     .with_sampler(sampler)
    ///     .build()
    ///     .tracer("doc");
    /// let sampled = |name: &'static str, attributes: Vec<KeyValue>| {
    ///     tracer
    ///         .span_builder(name)
    ///         .with_attributes(attributes)
    ///         .start(&tracer)
    ///         .span_context()
    ///         .is_sampled()
    /// };
    /// assert!(!sampled("POST /pay/refund", vec![]));
    /// assert!(sampled("POST /pay/card", vec![]));
    /// assert!(!sampled("GET /orders", vec![]));
    /// ```
    pub fn rule(mut self, matcher: RuleMatch, sampler: impl ShouldSample + 'static) -> Self {
        self.inner.rules.push((matcher, Box::new(sampler)));
        self
    }
    /// The sampler for entry spans no rule matches (default [`Sampler::AlwaysOn`]).
    ///
    /// ```
    /// use opentelemetry::KeyValue;
    /// use opentelemetry::trace::{Span as _, Tracer as _, TracerProvider as _};
    /// use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
    /// use otel_core::sampling::{RuleMatch, RuleSampler};
    ///
    /// let sampler = RuleSampler::builder()
    ///     .rule(RuleMatch::route("/pay*"), Sampler::AlwaysOn)
    ///     .fallback(Sampler::AlwaysOff)
    ///     .build();
    /// let tracer = SdkTracerProvider::builder()
    ///     .with_sampler(sampler)
    ///     .build()
    ///     .tracer("doc");
    /// let sampled = |name: &'static str, attributes: Vec<KeyValue>| {
    ///     tracer
    ///         .span_builder(name)
    ///         .with_attributes(attributes)
    ///         .start(&tracer)
    ///         .span_context()
    ///         .is_sampled()
    /// };
    /// assert!(sampled("POST /pay", vec![]));
    /// assert!(!sampled("GET /orders", vec![]));
    /// ```
    pub fn fallback(mut self, sampler: impl ShouldSample + 'static) -> Self {
        self.inner.fallback = Box::new(sampler);
        self
    }
    /// The sampler.
    ///
    /// ```
    /// use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
    /// use otel_core::sampling::{RateLimitingSampler, RuleMatch, RuleSampler};
    ///
    /// let sampler = RuleSampler::builder()
    ///     .rule(RuleMatch::route("/health"), Sampler::AlwaysOff)
    ///     .fallback(RateLimitingSampler::new(50.0))
    ///     .build();
    /// let provider = SdkTracerProvider::builder().with_sampler(sampler).build();
    /// # drop(provider);
    /// ```
    pub fn build(self) -> RuleSampler {
        self.inner
    }
}

impl ShouldSample for RuleSampler {
    fn should_sample(
        &self,
        parent_context: Option<&Context>,
        trace_id: TraceId,
        name: &str,
        span_kind: &SpanKind,
        attributes: &[KeyValue],
        links: &[Link],
    ) -> SamplingResult {
        // Entry spans are those without a parent, and, under a parent that came in a request
        // or message, SERVER and CONSUMER spans and messaging `receive` spans (CLIENT in the
        // messaging conventions, as when a broker pushes a message). Any other span follows
        // its parent: a span opened by a handler directly under a caller's remote context (no
        // server span of ours, as with otel-tower's `skip_unsampled`) is part of the caller's
        // decision, not a new entry.
        let entry_kind = matches!(span_kind, SpanKind::Server | SpanKind::Consumer)
            || attributes.iter().any(|kv| {
                kv.key.as_str() == MESSAGING_OPERATION_TYPE
                    && matches!(&kv.value, Value::String(s) if s.as_str() == "receive")
            });
        let followed_parent = parent_context
            .map(|cx| cx.span().span_context().clone())
            .filter(|sc| sc.is_valid() && (!sc.is_remote() || !entry_kind));
        if let Some(sc) = followed_parent {
            return SamplingResult {
                decision: if sc.is_sampled() {
                    SamplingDecision::RecordAndSample
                } else {
                    SamplingDecision::Drop
                },
                attributes: Vec::new(),
                trace_state: sc.trace_state().clone(),
            };
        }
        // Entry span: the inner samplers see no parent, so a rate limiter or ratio decides
        // afresh instead of deferring to the caller.
        let delegate = self
            .rules
            .iter()
            .find(|(m, _)| m.matches(name, attributes))
            .map_or(&self.fallback, |(_, s)| s);
        let mut result = delegate.should_sample(None, trace_id, name, span_kind, attributes, links);
        if let Some(cx) = parent_context {
            result.trace_state = cx.span().span_context().trace_state().clone();
        }
        result
    }
}

/// Parses the rule list of `OTEL_TRACES_SAMPLER=rules` (see the module docs).
pub(crate) fn parse_rules(value: &str) -> Result<RuleSampler, String> {
    let mut b = RuleSampler::builder();
    for item in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (pattern, action) = item
            .rsplit_once('=')
            .ok_or_else(|| format!("rule {item:?} is not pattern=decision"))?;
        let (pattern, action) = (pattern.trim(), action.trim());
        let sampler = parse_action(action)
            .ok_or_else(|| format!("rule {item:?}: unknown decision {action:?}; expected always, never, a ratio like 0.1 or a rate like 5/s"))?;
        if pattern == "*" {
            b = b.fallback(BoxedSampler(sampler));
        } else if let Some(name) = pattern.strip_prefix("name:") {
            b = b.rule(RuleMatch::name(name.to_owned()), BoxedSampler(sampler));
        } else {
            b = b.rule(RuleMatch::route(pattern.to_owned()), BoxedSampler(sampler));
        }
    }
    Ok(b.build())
}

fn parse_action(action: &str) -> Option<Box<dyn ShouldSample>> {
    let a = action.to_ascii_lowercase();
    Some(match a.as_str() {
        "always" | "always_on" | "on" => Box::new(Sampler::AlwaysOn),
        "never" | "always_off" | "off" => Box::new(Sampler::AlwaysOff),
        _ => {
            if let Some(rate) = a.strip_suffix("/s") {
                let r: f64 = rate.trim().parse().ok()?;
                if r.is_nan() || r < 0.0 || r.is_infinite() {
                    return None;
                }
                Box::new(RateLimitingSampler::new(r))
            } else {
                let r: f64 = a.parse().ok()?;
                if !(0.0..=1.0).contains(&r) {
                    return None;
                }
                Box::new(Sampler::TraceIdRatioBased(r))
            }
        }
    })
}

#[derive(Debug, Clone)]
struct BoxedSampler(Box<dyn ShouldSample>);

impl ShouldSample for BoxedSampler {
    fn should_sample(
        &self,
        parent_context: Option<&Context>,
        trace_id: TraceId,
        name: &str,
        span_kind: &SpanKind,
        attributes: &[KeyValue],
        links: &[Link],
    ) -> SamplingResult {
        self.0
            .should_sample(parent_context, trace_id, name, span_kind, attributes, links)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn decide(s: &RuleSampler, name: &str, attrs: &[KeyValue]) -> SamplingDecision {
        s.should_sample(
            None,
            TraceId::from(7u128),
            name,
            &SpanKind::Server,
            attrs,
            &[],
        )
        .decision
    }

    #[test]
    fn first_matching_rule_wins() {
        let s = parse_rules("/health=never, /pay*=always, name:cron=never, *=0").unwrap();
        let route = |r: &str| vec![KeyValue::new(HTTP_ROUTE, r.to_owned())];
        assert_eq!(decide(&s, "GET", &route("/health")), SamplingDecision::Drop);
        assert_eq!(
            decide(&s, "POST", &route("/pay/{id}")),
            SamplingDecision::RecordAndSample
        );
        assert_eq!(
            decide(&s, "GET /pay", &[]),
            SamplingDecision::RecordAndSample
        );
        assert_eq!(
            decide(&s, "GET", &[KeyValue::new(URL_PATH, "/payment")]),
            SamplingDecision::RecordAndSample
        );
        assert_eq!(decide(&s, "cron", &[]), SamplingDecision::Drop);
        assert_eq!(decide(&s, "GET", &route("/other")), SamplingDecision::Drop);
    }

    #[test]
    fn entries_under_a_remote_parent_are_server_consumer_and_receive_spans() {
        use opentelemetry::trace::{SpanContext, TraceContextExt as _, TraceFlags, TraceState};

        // Rules that would sample everything: only the parent can drop a span.
        let s = parse_rules("*=always").unwrap();
        let remote = |flags| {
            Context::new().with_remote_span_context(SpanContext::new(
                TraceId::from(7u128),
                opentelemetry::trace::SpanId::from(9u64),
                flags,
                true,
                TraceState::NONE,
            ))
        };
        let decide_under = |cx: &Context, kind: SpanKind| {
            s.should_sample(Some(cx), TraceId::from(7u128), "x", &kind, &[], &[])
                .decision
        };
        let unsampled = remote(TraceFlags::default());
        // Entries: the rules decide, whatever the caller did.
        for kind in [SpanKind::Server, SpanKind::Consumer] {
            assert_eq!(
                decide_under(&unsampled, kind.clone()),
                SamplingDecision::RecordAndSample,
                "{kind:?}"
            );
        }
        // A message's `receive` span (CLIENT) is an entry too.
        let receive = [KeyValue::new(MESSAGING_OPERATION_TYPE, "receive")];
        assert_eq!(
            s.should_sample(
                Some(&unsampled),
                TraceId::from(7u128),
                "receive orders",
                &SpanKind::Client,
                &receive,
                &[],
            )
            .decision,
            SamplingDecision::RecordAndSample
        );
        // Spans opened right under the caller's context follow it.
        for kind in [SpanKind::Internal, SpanKind::Client, SpanKind::Producer] {
            assert_eq!(
                decide_under(&unsampled, kind.clone()),
                SamplingDecision::Drop,
                "{kind:?}"
            );
            assert_eq!(
                decide_under(&remote(TraceFlags::SAMPLED), kind.clone()),
                SamplingDecision::RecordAndSample,
                "{kind:?}"
            );
        }
        assert!(!unsampled.span().span_context().is_sampled());
    }

    #[test]
    fn bad_rules_are_reported() {
        assert!(parse_rules("/health").unwrap_err().contains("/health"));
        assert!(
            parse_rules("/a=sometimes")
                .unwrap_err()
                .contains("sometimes")
        );
        assert!(parse_rules("/a=1.5").is_err());
        assert!(parse_rules("/a=-1/s").is_err());
        assert!(parse_rules("/a=10/s,*=0.5").is_ok());
    }
}

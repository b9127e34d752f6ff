//! Head sampling: the SDK's samplers, a rate limiter and per-route rules, configured in code or
//! from `OTEL_TRACES_SAMPLER` / `OTEL_TRACES_SAMPLER_ARG`; and the opt-in tail mode that keeps
//! errors and slow calls ([`tail`]). See `docs/sampling.md`.
//!
//! | `OTEL_TRACES_SAMPLER` | sampler |
//! | --- | --- |
//! | `always_on` | every trace |
//! | `always_off` | none |
//! | `traceidratio` | the fraction `OTEL_TRACES_SAMPLER_ARG` (0.0–1.0, default 1.0) by trace id |
//! | `parentbased_always_on` (default) | the parent's decision; `always_on` for roots |
//! | `parentbased_always_off` | the parent's decision; `always_off` for roots |
//! | `parentbased_traceidratio` | the parent's decision; `traceidratio` for roots |
//! | `rate_limiting` (also `parentbased_rate_limiting`) | at most `OTEL_TRACES_SAMPLER_ARG` new traces per second (default 100); the parent's decision for the rest ([`RateLimitingSampler`]) |
//! | `rules` | per-route / per-operation rules from `OTEL_TRACES_SAMPLER_ARG` ([`RuleSampler`]) |
//!
//! The `rules` argument is a comma-separated list of `pattern=decision`, tried in order on
//! spans entering the service; the pattern `*` sets the fallback (default `always`):
//!
//! * pattern: compared with the span's `http.route` (or `url.path`) attribute and its name; a
//!   `name:` prefix compares with the name only; a trailing `*` matches by prefix;
//! * decision: `always`, `never`, a ratio (`0.01`) or a rate (`5/s`).
//!
//! `OTEL_TRACES_SAMPLER=rules OTEL_TRACES_SAMPLER_ARG="/health=never,/pay*=always,*=0.01"`
//! never samples health checks, always samples payments, and 1 % of the rest.
//!
//! ```
//! use opentelemetry::KeyValue;
//! use opentelemetry::trace::{Span as _, Tracer as _, TracerProvider as _};
//! use opentelemetry_sdk::trace::SdkTracerProvider;
//! use otel_core::config::EnvSource;
//! use otel_core::sampling::sampler_from_env;
//!
//! let env = EnvSource::from_pairs([
//!     ("OTEL_TRACES_SAMPLER", "rules"),
//!     (
//!         "OTEL_TRACES_SAMPLER_ARG",
//!         "/health=never,/pay*=always,*=0.01",
//!     ),
//! ]);
//! let sampler = sampler_from_env(&env).expect("valid sampler settings");
//! let provider = SdkTracerProvider::builder().with_sampler(sampler).build();
//! let tracer = provider.tracer("doc");
//! let sampled = |name: &'static str, route: &'static str| {
//!     let span = tracer
//!         .span_builder(name)
//!         .with_attributes([KeyValue::new("http.route", route)])
//!         .start(&tracer);
//!     span.span_context().is_sampled()
//! };
//! assert!(!sampled("GET /health", "/health"));
//! assert!(sampled("POST /pay/{id}", "/pay/{id}"));
//! ```

pub mod rate;
pub mod rules;
pub mod tail;

pub use rate::RateLimitingSampler;
pub use rules::{RuleMatch, RuleSampler, RuleSamplerBuilder};

use opentelemetry_sdk::trace::{Sampler, ShouldSample};

use crate::config::{ConfigError, EnvSource};

/// Reads the sampler from `env` (table above); `parentbased_always_on` when unset.
///
/// Errors name the variable and the value that could not be used.
///
/// ```
/// use otel_core::config::EnvSource;
/// use otel_core::sampling::sampler_from_env;
///
/// // Unset: the parent's decision, every new trace sampled.
/// let sampler = sampler_from_env(&EnvSource::from_pairs([("OTEL_SERVICE_NAME", "checkout")]));
/// assert!(format!("{:?}", sampler.expect("default")).contains("ParentBased(AlwaysOn)"));
///
/// let env = EnvSource::from_pairs([
///     ("OTEL_TRACES_SAMPLER", "parentbased_traceidratio"),
///     ("OTEL_TRACES_SAMPLER_ARG", "0.25"),
/// ]);
/// let sampler = sampler_from_env(&env).expect("valid");
/// let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
///     .with_sampler(sampler)
///     .build();
/// # drop(provider);
///
/// // A bad value names its variable.
/// let env = EnvSource::from_pairs([
///     ("OTEL_TRACES_SAMPLER", "traceidratio"),
///     ("OTEL_TRACES_SAMPLER_ARG", "2"),
/// ]);
/// let err = sampler_from_env(&env).expect_err("not a probability");
/// assert!(err.to_string().contains("OTEL_TRACES_SAMPLER_ARG"));
///
/// // In a service: the process environment.
/// let sampler = sampler_from_env(&EnvSource::process());
/// # drop(sampler);
/// ```
pub fn sampler_from_env(env: &EnvSource) -> Result<Box<dyn ShouldSample>, ConfigError> {
    let name = env.get("OTEL_TRACES_SAMPLER");
    let ratio = || -> Result<f64, ConfigError> {
        match env.get("OTEL_TRACES_SAMPLER_ARG") {
            None => Ok(1.0),
            Some(v) => match v.parse::<f64>() {
                Ok(r) if (0.0..=1.0).contains(&r) => Ok(r),
                _ => Err(ConfigError::invalid(
                    "OTEL_TRACES_SAMPLER_ARG",
                    v,
                    "expected a probability between 0.0 and 1.0",
                )),
            },
        }
    };
    let Some(name) = name else {
        return Ok(Box::new(Sampler::ParentBased(Box::new(Sampler::AlwaysOn))));
    };
    let sdk = |s: Sampler| -> Box<dyn ShouldSample> { Box::new(s) };
    Ok(match name.to_ascii_lowercase().as_str() {
        "always_on" => sdk(Sampler::AlwaysOn),
        "always_off" => sdk(Sampler::AlwaysOff),
        "traceidratio" => sdk(Sampler::TraceIdRatioBased(ratio()?)),
        "parentbased_always_on" => sdk(Sampler::ParentBased(Box::new(Sampler::AlwaysOn))),
        "parentbased_always_off" => sdk(Sampler::ParentBased(Box::new(Sampler::AlwaysOff))),
        "parentbased_traceidratio" => sdk(Sampler::ParentBased(Box::new(
            Sampler::TraceIdRatioBased(ratio()?),
        ))),
        "rate_limiting" | "parentbased_rate_limiting" => {
            let rate = match env.get("OTEL_TRACES_SAMPLER_ARG") {
                None => 100.0,
                Some(v) => match v.trim().parse::<f64>() {
                    Ok(r) if r >= 0.0 && r.is_finite() => r,
                    _ => {
                        return Err(ConfigError::invalid(
                            "OTEL_TRACES_SAMPLER_ARG",
                            v,
                            "expected a number of traces per second (0 or more)",
                        ));
                    }
                },
            };
            Box::new(RateLimitingSampler::new(rate))
        }
        "rules" => {
            let v = env.get("OTEL_TRACES_SAMPLER_ARG").unwrap_or_default();
            match rules::parse_rules(&v) {
                Ok(s) => Box::new(s),
                Err(reason) => {
                    return Err(ConfigError::invalid("OTEL_TRACES_SAMPLER_ARG", v, reason));
                }
            }
        }
        _ => {
            return Err(ConfigError::invalid(
                "OTEL_TRACES_SAMPLER",
                name,
                "expected always_on, always_off, traceidratio, parentbased_always_on, \
                 parentbased_always_off, parentbased_traceidratio, rate_limiting or rules",
            ));
        }
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> EnvSource {
        EnvSource::from_pairs(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())))
    }

    #[test]
    fn names_and_args() {
        let dbg = |e| format!("{:?}", sampler_from_env(&env(e)).unwrap());
        assert!(dbg(&[]).contains("ParentBased(AlwaysOn)"));
        assert_eq!(dbg(&[("OTEL_TRACES_SAMPLER", "always_off")]), "AlwaysOff");
        assert!(
            dbg(&[
                ("OTEL_TRACES_SAMPLER", "parentbased_traceidratio"),
                ("OTEL_TRACES_SAMPLER_ARG", "0.25")
            ])
            .contains("TraceIdRatioBased(0.25)")
        );
        let e = sampler_from_env(&env(&[("OTEL_TRACES_SAMPLER", "sometimes")])).unwrap_err();
        assert!(
            e.to_string().contains("OTEL_TRACES_SAMPLER") && e.to_string().contains("sometimes")
        );
        let e = sampler_from_env(&env(&[
            ("OTEL_TRACES_SAMPLER", "traceidratio"),
            ("OTEL_TRACES_SAMPLER_ARG", "1.5"),
        ]))
        .unwrap_err();
        assert!(e.to_string().contains("OTEL_TRACES_SAMPLER_ARG"));
        assert!(
            dbg(&[
                ("OTEL_TRACES_SAMPLER", "rate_limiting"),
                ("OTEL_TRACES_SAMPLER_ARG", "5")
            ])
            .contains("RateLimitingSampler")
        );
        let rules = dbg(&[
            ("OTEL_TRACES_SAMPLER", "rules"),
            ("OTEL_TRACES_SAMPLER_ARG", "/health=never,*=0.5"),
        ]);
        assert!(rules.contains("/health") && rules.contains("TraceIdRatioBased(0.5)"));
        let e = sampler_from_env(&env(&[
            ("OTEL_TRACES_SAMPLER", "rules"),
            ("OTEL_TRACES_SAMPLER_ARG", "/health=maybe"),
        ]))
        .unwrap_err();
        assert!(e.to_string().contains("maybe"));
        assert!(
            sampler_from_env(&env(&[
                ("OTEL_TRACES_SAMPLER", "rate_limiting"),
                ("OTEL_TRACES_SAMPLER_ARG", "lots")
            ]))
            .is_err()
        );
    }
}

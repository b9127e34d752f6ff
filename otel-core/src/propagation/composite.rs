//! [`Propagators`]: the propagators `OTEL_PROPAGATORS` names, applied in order.

use std::fmt;
use std::str::FromStr;

use opentelemetry::Context;
use opentelemetry::propagation::text_map_propagator::FieldIter;
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};

use super::{B3Propagator, BaggagePropagator, JaegerPropagator, TraceContextPropagator};

/// One propagator `OTEL_PROPAGATORS` can name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    TraceContext,
    Baggage,
    B3,
    B3Multi,
    Jaeger,
}

impl Kind {
    const ALL: [Kind; 5] = [
        Kind::TraceContext,
        Kind::Baggage,
        Kind::B3,
        Kind::B3Multi,
        Kind::Jaeger,
    ];

    fn name(self) -> &'static str {
        match self {
            Kind::TraceContext => "tracecontext",
            Kind::Baggage => "baggage",
            Kind::B3 => "b3",
            Kind::B3Multi => "b3multi",
            Kind::Jaeger => "jaeger",
        }
    }

    fn propagator(self) -> &'static (dyn TextMapPropagator + Send + Sync) {
        static TRACE_CONTEXT: TraceContextPropagator = TraceContextPropagator::new();
        static BAGGAGE: BaggagePropagator = BaggagePropagator::new();
        static B3: B3Propagator = B3Propagator::single_header();
        static B3_MULTI: B3Propagator = B3Propagator::multiple_headers();
        static JAEGER: JaegerPropagator = JaegerPropagator::new();
        match self {
            Kind::TraceContext => &TRACE_CONTEXT,
            Kind::Baggage => &BAGGAGE,
            Kind::B3 => &B3,
            Kind::B3Multi => &B3_MULTI,
            Kind::Jaeger => &JAEGER,
        }
    }
}

/// A bad `OTEL_PROPAGATORS` value. The message names the offending value; the pipeline
/// builder adds the variable's name.
///
/// ```
/// use otel_core::propagation::{PropagatorConfigError, Propagators};
///
/// assert_eq!(
///     Propagators::from_names("tracecontext,xray"),
///     Err(PropagatorConfigError::Unknown {
///         name: "xray".into()
///     })
/// );
/// assert!(matches!(
///     Propagators::from_names("none,b3"),
///     Err(PropagatorConfigError::NoneWithOthers { .. })
/// ));
/// ```
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PropagatorConfigError {
    /// A name that is not one of `tracecontext`, `baggage`, `b3`, `b3multi`, `jaeger`, `none`.
    #[error(
        "unknown propagator `{name}` (supported: tracecontext, baggage, b3, b3multi, jaeger, none)"
    )]
    Unknown {
        /// The name as given, trimmed.
        name: String,
    },
    /// `none` listed together with other propagators.
    #[error("propagator `none` cannot be combined with other propagators in `{names}`")]
    NoneWithOthers {
        /// The whole list as given.
        names: String,
    },
}

/// The propagators named by `OTEL_PROPAGATORS`, applied in the order given.
///
/// Names are `tracecontext` ([`TraceContextPropagator`]), `baggage`
/// ([`BaggagePropagator`]), `b3` ([`B3Propagator`] writing the single header), `b3multi`
/// ([`B3Propagator`] writing `X-B3-*` headers), `jaeger` ([`JaegerPropagator`]) and `none`
/// (nothing); comma-separated, whitespace around names ignored, case-insensitive, repeats
/// ignored. The default is `tracecontext,baggage`, which is also what an empty list means
/// (an empty variable counts as unset).
///
/// Injection runs every propagator. Extraction runs them in order, each on the context the
/// previous one returned, so for the span context the last one that finds a valid one wins,
/// and baggage from all of them is combined — the behaviour of the SDK's
/// `TextMapCompositePropagator`, without boxing.
///
/// ```
/// use opentelemetry::propagation::TextMapPropagator;
/// use otel_core::propagation::Propagators;
///
/// let propagators = Propagators::from_names(" TraceContext , b3multi ")?;
/// assert_eq!(
///     propagators.names().collect::<Vec<_>>(),
///     ["tracecontext", "b3multi"]
/// );
/// assert_eq!(propagators.fields().count(), 6);
///
/// let err = Propagators::from_names("tracecontext,xray").unwrap_err();
/// assert!(err.to_string().contains("`xray`"));
///
/// // Installed as the global propagator, it serves `extract_context` and `inject_context`.
/// opentelemetry::global::set_text_map_propagator(Propagators::default());
/// # Ok::<(), otel_core::propagation::PropagatorConfigError>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Propagators {
    kinds: Vec<Kind>,
    fields: Vec<String>,
}

impl Propagators {
    /// The names used when `OTEL_PROPAGATORS` is unset or empty.
    ///
    /// ```
    /// use otel_core::propagation::Propagators;
    ///
    /// assert_eq!(
    ///     Propagators::from_names(Propagators::DEFAULT_NAMES)?,
    ///     Propagators::default()
    /// );
    /// assert_eq!(Propagators::from_names("")?, Propagators::default());
    /// # Ok::<(), otel_core::propagation::PropagatorConfigError>(())
    /// ```
    pub const DEFAULT_NAMES: &'static str = "tracecontext,baggage";

    /// Builds the propagators from an `OTEL_PROPAGATORS` value; see the type's docs for the
    /// syntax. Fails on an unknown name, or on `none` together with other names.
    ///
    /// ```
    /// use otel_core::propagation::Propagators;
    ///
    /// let p = Propagators::from_names("b3, jaeger, B3")?;
    /// assert_eq!(p.names().collect::<Vec<_>>(), ["b3", "jaeger"]);
    /// assert!(Propagators::from_names("none")?.is_empty());
    /// assert!(Propagators::from_names("none,baggage").is_err());
    /// # Ok::<(), otel_core::propagation::PropagatorConfigError>(())
    /// ```
    pub fn from_names(names: &str) -> Result<Self, PropagatorConfigError> {
        let mut kinds = Vec::new();
        let mut saw_none = false;
        for name in names.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            if name.eq_ignore_ascii_case("none") {
                saw_none = true;
                continue;
            }
            let kind = Kind::ALL
                .into_iter()
                .find(|kind| name.eq_ignore_ascii_case(kind.name()))
                .ok_or_else(|| PropagatorConfigError::Unknown {
                    name: name.to_owned(),
                })?;
            if !kinds.contains(&kind) {
                kinds.push(kind);
            }
        }
        match (saw_none, kinds.is_empty()) {
            (true, true) => Ok(Self::none()),
            (true, false) => Err(PropagatorConfigError::NoneWithOthers {
                names: names.trim().to_owned(),
            }),
            (false, true) => Ok(Self::default()),
            (false, false) => Ok(Self::from_kinds(kinds)),
        }
    }

    /// No propagation at all (`OTEL_PROPAGATORS=none`).
    ///
    /// ```
    /// use opentelemetry::baggage::BaggageExt;
    /// use opentelemetry::propagation::TextMapPropagator;
    /// use opentelemetry::{Context, KeyValue};
    /// use otel_core::propagation::Propagators;
    /// use std::collections::HashMap;
    ///
    /// let none = Propagators::none();
    /// let cx = Context::new().with_baggage([KeyValue::new("tenant.id", "acme")]);
    /// let mut headers = HashMap::new();
    /// none.inject_context(&cx, &mut headers);
    /// assert!(headers.is_empty());
    /// assert_eq!(none.fields().count(), 0);
    /// ```
    pub fn none() -> Self {
        Self::from_kinds(Vec::new())
    }

    /// Whether no propagator is configured.
    ///
    /// ```
    /// use otel_core::propagation::Propagators;
    ///
    /// assert!(Propagators::none().is_empty());
    /// assert!(!Propagators::default().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.kinds.is_empty()
    }

    /// The configured propagators' names, in order, as `OTEL_PROPAGATORS` spells them.
    ///
    /// ```
    /// use otel_core::propagation::Propagators;
    ///
    /// assert_eq!(
    ///     Propagators::default().names().collect::<Vec<_>>(),
    ///     ["tracecontext", "baggage"]
    /// );
    /// ```
    pub fn names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.kinds.iter().map(|kind| kind.name())
    }

    fn from_kinds(kinds: Vec<Kind>) -> Self {
        let mut fields: Vec<String> = Vec::new();
        for field in kinds.iter().flat_map(|kind| kind.propagator().fields()) {
            if !fields.iter().any(|f| f == field) {
                fields.push(field.to_owned());
            }
        }
        Self { kinds, fields }
    }
}

impl Default for Propagators {
    /// W3C trace context and baggage (`tracecontext,baggage`).
    fn default() -> Self {
        Self::from_kinds(vec![Kind::TraceContext, Kind::Baggage])
    }
}

impl FromStr for Propagators {
    type Err = PropagatorConfigError;

    /// Same as [`Propagators::from_names`].
    fn from_str(names: &str) -> Result<Self, Self::Err> {
        Self::from_names(names)
    }
}

impl fmt::Debug for Propagators {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.names()).finish()
    }
}

impl TextMapPropagator for Propagators {
    fn inject_context(&self, cx: &Context, injector: &mut dyn Injector) {
        for kind in &self.kinds {
            kind.propagator().inject_context(cx, injector);
        }
    }

    fn extract_with_context(&self, cx: &Context, extractor: &dyn Extractor) -> Context {
        match self.kinds.as_slice() {
            [] => cx.clone(),
            [first, rest @ ..] => rest.iter().fold(
                first.propagator().extract_with_context(cx, extractor),
                |cx, kind| kind.propagator().extract_with_context(&cx, extractor),
            ),
        }
    }

    fn fields(&self) -> FieldIter<'_> {
        FieldIter::new(&self.fields)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::type_complexity)]
mod tests {
    use std::collections::HashMap;

    use opentelemetry::baggage::BaggageExt;
    use opentelemetry::trace::TraceContextExt;

    use super::*;

    #[test]
    fn names() {
        #[rustfmt::skip]
        let rows: &[(&str, Result<&[&str], PropagatorConfigError>, &str)] = &[
            ("", Ok(&["tracecontext", "baggage"]), "empty means default"),
            (" , ", Ok(&["tracecontext", "baggage"]), "only separators means default"),
            ("tracecontext,baggage", Ok(&["tracecontext", "baggage"]), "the default spelled out"),
            ("baggage,tracecontext", Ok(&["baggage", "tracecontext"]), "order kept"),
            (" B3 ,\tJaeger,b3MULTI ", Ok(&["b3", "jaeger", "b3multi"]), "trimmed, case-insensitive"),
            ("b3,b3,B3", Ok(&["b3"]), "repeats ignored"),
            ("tracecontext,,baggage", Ok(&["tracecontext", "baggage"]), "empty item skipped"),
            ("none", Ok(&[]), "none"),
            (" NONE ,none", Ok(&[]), "none repeated"),
            ("xray", Err(PropagatorConfigError::Unknown { name: "xray".into() }), "unsupported"),
            ("tracecontext, Foo ", Err(PropagatorConfigError::Unknown { name: "Foo".into() }), "unknown name"),
            ("trace context", Err(PropagatorConfigError::Unknown { name: "trace context".into() }), "space inside"),
            ("none,b3", Err(PropagatorConfigError::NoneWithOthers { names: "none,b3".into() }), "none with others"),
        ];
        for (input, expected, why) in rows {
            let got = Propagators::from_names(input).map(|p| p.names().collect::<Vec<_>>());
            let expected = expected.clone().map(<[&str]>::to_vec);
            assert_eq!(got, expected, "{why}: {input:?}");
        }
    }

    #[test]
    fn error_messages_name_the_value() {
        let err = Propagators::from_names("tracecontext,ottrace").unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown propagator `ottrace` (supported: tracecontext, baggage, b3, b3multi, jaeger, none)"
        );
        let err = Propagators::from_names("none, jaeger").unwrap_err();
        assert_eq!(
            err.to_string(),
            "propagator `none` cannot be combined with other propagators in `none, jaeger`"
        );
    }

    #[test]
    fn fields_are_the_union() {
        let fields = |names| {
            Propagators::from_names(names)
                .unwrap()
                .fields()
                .map(str::to_owned)
                .collect::<Vec<_>>()
        };
        assert_eq!(fields(""), ["traceparent", "tracestate", "baggage"]);
        assert_eq!(
            fields("b3,b3multi,jaeger"),
            [
                "b3",
                "x-b3-traceid",
                "x-b3-spanid",
                "x-b3-sampled",
                "x-b3-flags",
                "uber-trace-id"
            ]
        );
        assert!(fields("none").is_empty());
    }

    #[test]
    fn extract_in_order_and_inject_all() {
        let mut carrier = HashMap::new();
        carrier.insert(
            "traceparent".to_owned(),
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".to_owned(),
        );
        carrier.insert(
            "b3".to_owned(),
            "4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1".to_owned(),
        );
        carrier.insert("baggage".to_owned(), "a=1".to_owned());
        carrier.insert("uberctx-b".to_owned(), "2".to_owned());

        let trace_id = |names: &str| {
            let cx = Propagators::from_names(names)
                .unwrap()
                .extract_with_context(&Context::new(), &carrier);
            let id = cx.span().span_context().trace_id().to_string();
            let mut keys: Vec<String> = cx.baggage().iter().map(|(k, _)| k.to_string()).collect();
            keys.sort();
            (id, keys)
        };
        assert_eq!(
            trace_id("tracecontext,b3,baggage,jaeger"),
            (
                "4bf92f3577b34da6a3ce929d0e0e4736".to_owned(),
                vec!["a".to_owned(), "b".to_owned()]
            ),
            "last valid span context wins, baggage combined"
        );
        assert_eq!(
            trace_id("b3,tracecontext").0,
            "0af7651916cd43dd8448eb211c80319c"
        );
        assert_eq!(trace_id("none").0, "00000000000000000000000000000000");

        let all = Propagators::from_names("tracecontext,baggage,b3multi,jaeger").unwrap();
        let cx = all.extract_with_context(&Context::new(), &carrier);
        let mut out = HashMap::new();
        all.inject_context(&cx, &mut out);
        let mut keys: Vec<&str> = out.keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "baggage",
                "traceparent",
                "uber-trace-id",
                "uberctx-a",
                "uberctx-b",
                "x-b3-sampled",
                "x-b3-spanid",
                "x-b3-traceid"
            ]
        );
    }

    #[test]
    fn debug_lists_names() {
        assert_eq!(
            format!("{:?}", Propagators::default()),
            r#"["tracecontext", "baggage"]"#
        );
    }
}

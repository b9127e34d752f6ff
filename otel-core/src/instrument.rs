//! The span-and-duration recording helper every adapter uses.
//!
//! An adapter holds one [`Instrumentation`] (its tracer, with the adapter's instrumentation
//! scope, and the [`Metrics`] its histograms live in). For each call it [`start`]s an
//! [`Operation`]: a span, child of the given parent context, plus the start time. When the call
//! finishes, [`Operation::end_with_duration`] ends the span and records the elapsed seconds in a
//! duration histogram whose exemplar points at that very span.
//!
//! ```
//! use opentelemetry::{Context, KeyValue, trace::SpanKind};
//! use otel_core::instrument::Instrumentation;
//!
//! let inst = Instrumentation::builder("my-adapter", "0.1.0").build();
//! let duration = inst
//!     .metrics()
//!     .f64_histogram("db.client.operation.duration")
//!     .with_unit("s")
//!     .build();
//! let mut op = inst.start(
//!     &Context::current(),
//!     "SELECT accounts",
//!     SpanKind::Client,
//!     vec![KeyValue::new("db.system.name", "postgresql")],
//! );
//! // … run the call inside `op.context()` …
//! op.set_attribute(KeyValue::new("db.response.returned_rows", 3));
//! op.end_with_duration(&duration, &[KeyValue::new("db.system.name", "postgresql")]);
//! ```
//!
//! The tracer comes from the provider given with [`InstrumentationBuilder::with_tracer_provider`]
//! or, by default, from the global provider **at build time**: build adapters after installing
//! the pipeline.
//!
//! [`start`]: Instrumentation::start

use std::borrow::Cow;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use opentelemetry::global::{BoxedSpan, BoxedTracer};
use opentelemetry::trace::{
    Span as _, SpanContext, SpanKind, Status, TraceContextExt, TracerProvider as _,
};
use opentelemetry::{Context, InstrumentationScope, KeyValue, Value};
use opentelemetry_semantic_conventions::attribute::{
    ERROR_TYPE, EXCEPTION_MESSAGE, EXCEPTION_TYPE,
};

use crate::metrics::{BoundHistogram, Histogram, Metrics};

/// Tracer and metrics an adapter records through, with a full instrumentation scope
/// (name, version, schema URL). Cheap to clone.
///
/// ```
/// # #[cfg(feature = "testing")] {
/// use opentelemetry::{Context, KeyValue, trace::SpanKind};
/// use otel_core::metrics::SnapshotExt;
/// use otel_core::testing::TestTelemetry;
///
/// let tt = TestTelemetry::new();
/// let inst = tt.instrumentation("my-adapter");
/// let duration = inst
///     .metrics()
///     .f64_histogram("db.client.operation.duration")
///     .with_unit("s")
///     .build();
///
/// let op = inst.start(
///     &Context::current(),
///     "GET",
///     SpanKind::Client,
///     vec![KeyValue::new("db.system.name", "redis")],
/// );
/// op.end_with_duration(&duration, &[KeyValue::new("db.system.name", "redis")]);
///
/// // The span, and a duration whose exemplar points at it.
/// let span = tt.span("GET");
/// let snapshot = tt.metrics().snapshot();
/// let exemplar = snapshot
///     .find("db.client.operation.duration")
///     .and_then(|m| m.exemplars().next().cloned())
///     .expect("one exemplar");
/// assert_eq!(exemplar.span_id, span.span_context.span_id());
/// # }
/// ```
#[derive(Clone)]
pub struct Instrumentation {
    inner: Arc<Inner>,
}

struct Inner {
    tracer: AnyTracer,
    metrics: Metrics,
    /// Spans are known to go nowhere (see [`Instrumentation::is_noop`]).
    noop: bool,
}

/// The SDK's tracer when the provider is the SDK's (the common case: spans are then boxed once,
/// by the context), else any tracer behind the API's box.
enum AnyTracer {
    Sdk(opentelemetry_sdk::trace::SdkTracer),
    Boxed(BoxedTracer),
}

impl AnyTracer {
    fn from_tracer<T>(tracer: T) -> Self
    where
        T: opentelemetry::trace::Tracer + Send + Sync + 'static,
        T::Span: Send + Sync + 'static,
    {
        let any: Box<dyn std::any::Any> = Box::new(tracer);
        match any.downcast::<opentelemetry_sdk::trace::SdkTracer>() {
            Ok(sdk) => Self::Sdk(*sdk),
            Err(other) => match other.downcast::<T>() {
                Ok(t) => Self::Boxed(BoxedTracer::new(Box::new(*t))),
                // Unreachable: `other` holds a `T`. Fall back to a no-op tracer, never panic.
                Err(_) => Self::Boxed(BoxedTracer::new(Box::new(
                    opentelemetry::trace::noop::NoopTracer::new(),
                ))),
            },
        }
    }
}

impl std::fmt::Debug for Instrumentation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Instrumentation").finish_non_exhaustive()
    }
}

/// Builder of [`Instrumentation`]; adapters expose the same options under the same names.
///
/// ```
/// use otel_core::instrument::Instrumentation;
/// use otel_core::metrics::Metrics;
///
/// let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
/// let inst = Instrumentation::builder("my-adapter", "0.1.0")
///     .with_tracer_provider(provider)
///     .with_metrics(Metrics::default())
///     .build();
/// # drop(inst);
/// ```
#[must_use]
pub struct InstrumentationBuilder {
    scope: InstrumentationScope,
    tracer: Option<AnyTracer>,
    metrics: Option<Metrics>,
    noop: bool,
}

impl std::fmt::Debug for InstrumentationBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InstrumentationBuilder")
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

impl Instrumentation {
    /// A builder for the adapter `scope_name` at `scope_version` (pass the adapter crate's
    /// `env!("CARGO_PKG_NAME")` and `env!("CARGO_PKG_VERSION")`).
    ///
    /// ```
    /// # #[cfg(feature = "testing")] {
    /// use opentelemetry::{Context, trace::SpanKind};
    /// use otel_core::instrument::Instrumentation;
    /// use otel_core::testing::TestTelemetry;
    ///
    /// let tt = TestTelemetry::new();
    /// let inst = Instrumentation::builder("my-adapter", "0.1.0")
    ///     .with_tracer_provider(tt.tracer_provider().clone())
    ///     .build();
    /// inst.start(&Context::current(), "call", SpanKind::Internal, Vec::new())
    ///     .end();
    /// let scope = tt.span("call").instrumentation_scope;
    /// assert_eq!(
    ///     (scope.name(), scope.version()),
    ///     ("my-adapter", Some("0.1.0"))
    /// );
    /// assert!(
    ///     scope
    ///         .schema_url()
    ///         .is_some_and(|url| url.starts_with("https://opentelemetry.io/schemas/"))
    /// );
    /// # }
    /// ```
    pub fn builder(
        scope_name: &'static str,
        scope_version: &'static str,
    ) -> InstrumentationBuilder {
        InstrumentationBuilder {
            scope: InstrumentationScope::builder(scope_name)
                .with_version(scope_version)
                .with_schema_url(opentelemetry_semantic_conventions::SCHEMA_URL)
                .build(),
            tracer: None,
            metrics: None,
            noop: false,
        }
    }

    /// The metrics registry the adapter's instruments live in.
    ///
    /// ```
    /// use otel_core::instrument::Instrumentation;
    /// use otel_core::metrics::{Metrics, SnapshotExt};
    ///
    /// let metrics = Metrics::default();
    /// let inst = Instrumentation::builder("my-adapter", "0.1.0")
    ///     .with_metrics(metrics.clone())
    ///     .build();
    /// inst.metrics().u64_counter("app.calls").build().add(1, &[]);
    /// assert!(metrics.snapshot().find("app.calls").is_some());
    /// ```
    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// Whether spans are known to go nowhere: the tracer is the API's no-op one, given
    /// explicitly, or the global one after [`Telemetry::install`](crate::Telemetry) installed
    /// no tracer provider (`OTEL_SDK_DISABLED=true`). Adapters then build no attributes
    /// before they know a span records, so instrumentation costs next to nothing with
    /// telemetry off. `false` whenever a real provider may be behind the tracer (an SDK's, or
    /// a global provider set by other code), whose sampler should see the attributes.
    ///
    /// ```
    /// use opentelemetry_sdk::trace::SdkTracerProvider;
    /// use otel_core::instrument::Instrumentation;
    ///
    /// let sdk = Instrumentation::builder("my-adapter", "0.1.0")
    ///     .with_tracer_provider(SdkTracerProvider::builder().build())
    ///     .build();
    /// assert!(!sdk.is_noop());
    /// let noop = Instrumentation::builder("my-adapter", "0.1.0")
    ///     .with_tracer_provider(opentelemetry::trace::noop::NoopTracerProvider::new())
    ///     .build();
    /// assert!(noop.is_noop());
    /// ```
    pub fn is_noop(&self) -> bool {
        self.inner.noop
    }

    /// Starts a span named `name` of `kind`, child of the span in `parent` (usually
    /// [`Context::current`]), with `attributes` known at the start (samplers see them).
    ///
    /// ```
    /// # #[cfg(feature = "testing")] {
    /// use opentelemetry::{
    ///     KeyValue,
    ///     trace::{SpanKind, TraceContextExt as _},
    /// };
    /// use otel_core::testing::{TestTelemetry, assert_attr, assert_child_of};
    ///
    /// let tt = TestTelemetry::new();
    /// let inst = tt.instrumentation("my-adapter");
    /// let request = tt.root_context("GET /orders");
    /// let op = inst.start(
    ///     &request,
    ///     "SELECT orders",
    ///     SpanKind::Client,
    ///     vec![KeyValue::new("db.system.name", "postgresql")],
    /// );
    /// op.end();
    /// request.span().end();
    ///
    /// let query = tt.span("SELECT orders");
    /// assert_child_of(&query, &tt.span("GET /orders"));
    /// assert_eq!(query.span_kind, SpanKind::Client);
    /// assert_attr(&query, "db.system.name", "postgresql");
    /// # }
    /// ```
    pub fn start(
        &self,
        parent: &Context,
        name: impl Into<Cow<'static, str>>,
        kind: SpanKind,
        attributes: Vec<KeyValue>,
    ) -> Operation {
        let (start, builder) = span_builder(name, kind, attributes);
        let cx = match &self.inner.tracer {
            AnyTracer::Sdk(t) => parent.with_span(builder.start_with_context(t, parent)),
            AnyTracer::Boxed(t) => parent.with_span(builder.start_with_context(t, parent)),
        };
        Operation::new(OpSpan::Context(cx), start)
    }

    /// Starts an operation like [`start`](Self::start) for a call that runs no instrumented
    /// work of its own (a Redis command, a SQL query): the span is held by the operation
    /// instead of being placed in a new [`Context`], which saves building that context.
    /// [`Operation::context`] still works (it builds one on first use).
    ///
    /// ```
    /// use opentelemetry::{Context, KeyValue, trace::SpanKind};
    /// use otel_core::instrument::Instrumentation;
    ///
    /// let inst = Instrumentation::builder("my-adapter", "0.1.0").build();
    /// let duration = inst
    ///     .metrics()
    ///     .f64_histogram("db.client.operation.duration")
    ///     .build();
    /// let mut op = inst.start_leaf(
    ///     &Context::current(),
    ///     "GET",
    ///     SpanKind::Client,
    ///     vec![KeyValue::new("db.system.name", "redis")],
    /// );
    /// op.set_attribute(KeyValue::new("db.operation.name", "GET"));
    /// op.end_with_duration(&duration, &[KeyValue::new("db.system.name", "redis")]);
    /// ```
    pub fn start_leaf(
        &self,
        parent: &Context,
        name: impl Into<Cow<'static, str>>,
        kind: SpanKind,
        attributes: Vec<KeyValue>,
    ) -> Operation {
        let (start, builder) = span_builder(name, kind, attributes);
        let span = match &self.inner.tracer {
            AnyTracer::Sdk(t) => LeafSpan::Sdk(builder.start_with_context(t, parent)),
            AnyTracer::Boxed(t) => LeafSpan::Boxed(builder.start_with_context(t, parent)),
        };
        Operation::new(
            OpSpan::Leaf {
                span,
                parent: parent.clone(),
                cx: OnceLock::new(),
            },
            start,
        )
    }
}

impl InstrumentationBuilder {
    /// Uses `provider` instead of the global tracer provider.
    ///
    /// ```
    /// use opentelemetry::{Context, trace::SpanKind};
    /// use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};
    /// use otel_core::instrument::Instrumentation;
    ///
    /// let exporter = InMemorySpanExporter::default();
    /// let provider = SdkTracerProvider::builder()
    ///     .with_simple_exporter(exporter.clone())
    ///     .build();
    /// let inst = Instrumentation::builder("my-adapter", "0.1.0")
    ///     .with_tracer_provider(provider)
    ///     .build();
    /// inst.start(&Context::current(), "call", SpanKind::Internal, Vec::new())
    ///     .end();
    /// assert_eq!(
    ///     exporter.get_finished_spans().expect("exporter open")[0].name,
    ///     "call"
    /// );
    /// ```
    pub fn with_tracer_provider<P>(mut self, provider: P) -> Self
    where
        P: opentelemetry::trace::TracerProvider,
        P::Tracer: Send + Sync + 'static,
        <P::Tracer as opentelemetry::trace::Tracer>::Span: Send + Sync + 'static,
    {
        let tracer = provider.tracer_with_scope(self.scope.clone());
        self.noop = (&tracer as &dyn std::any::Any).is::<opentelemetry::trace::noop::NoopTracer>();
        self.tracer = Some(AnyTracer::from_tracer(tracer));
        self
    }

    /// Uses `metrics` instead of [`Metrics::global`].
    ///
    /// ```
    /// use opentelemetry::{Context, KeyValue, trace::SpanKind};
    /// use otel_core::instrument::Instrumentation;
    /// use otel_core::metrics::{Metrics, SnapshotExt};
    ///
    /// let metrics = Metrics::default();
    /// let inst = Instrumentation::builder("my-adapter", "0.1.0")
    ///     .with_metrics(metrics.clone())
    ///     .build();
    /// let duration = inst
    ///     .metrics()
    ///     .f64_histogram("app.call.duration")
    ///     .with_unit("s")
    ///     .build();
    /// let op = inst.start(&Context::current(), "call", SpanKind::Internal, Vec::new());
    /// op.end_with_duration(&duration, &[KeyValue::new("call", "a")]);
    /// let snapshot = metrics.snapshot();
    /// assert_eq!(
    ///     snapshot.find("app.call.duration").map(|m| m.total_count()),
    ///     Some(1)
    /// );
    /// ```
    pub fn with_metrics(mut self, metrics: Metrics) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Builds; unset parts come from the globals as they are now.
    ///
    /// ```
    /// use opentelemetry::{Context, trace::SpanKind};
    /// use otel_core::instrument::Instrumentation;
    ///
    /// // No pipeline installed: the global tracer provider records nothing.
    /// let inst = Instrumentation::builder("my-adapter", "0.1.0").build();
    /// let op = inst.start(&Context::current(), "call", SpanKind::Internal, Vec::new());
    /// assert!(!op.is_recording());
    /// op.end();
    /// ```
    pub fn build(self) -> Instrumentation {
        let (tracer, noop) = match self.tracer {
            Some(tracer) => (tracer, self.noop),
            None => match crate::pipeline::installed_tracer_provider() {
                Some(p) => (
                    AnyTracer::Sdk(p.tracer_with_scope(self.scope.clone())),
                    false,
                ),
                None => (
                    AnyTracer::Boxed(
                        opentelemetry::global::tracer_provider()
                            .tracer_with_scope(self.scope.clone()),
                    ),
                    crate::pipeline::installed_without_traces(),
                ),
            },
        };
        Instrumentation {
            inner: Arc::new(Inner {
                tracer,
                metrics: self.metrics.unwrap_or_else(Metrics::global),
                noop,
            }),
        }
    }
}

/// One call in flight: its span (inside [`Operation::context`]) and its start time.
///
/// The span's start and end timestamps and the recorded duration come from the same two
/// readings of the system clock, so the duration in the histogram is exactly the span's (a
/// backwards step of the clock during the call records a duration of zero).
///
/// Dropped without [`end`](Operation::end) or [`end_with_duration`](Operation::end_with_duration)
/// (for example because the caller dropped the future), the span still ends, with status Error
/// and `error.type = "cancelled"`, so no call is lost from the trace.
///
/// ```
/// # #[cfg(feature = "testing")] {
/// use opentelemetry::{
///     Context,
///     trace::{SpanKind, Status},
/// };
/// use otel_core::testing::{TestTelemetry, assert_attr};
///
/// let tt = TestTelemetry::new();
/// let inst = tt.instrumentation("my-adapter");
/// let op = inst.start(&Context::current(), "GET", SpanKind::Client, Vec::new());
/// drop(op); // e.g. the caller dropped the future
///
/// let span = tt.span("GET");
/// assert_attr(&span, "error.type", "cancelled");
/// assert!(matches!(span.status, Status::Error { .. }));
/// # }
/// ```
pub struct Operation {
    span: OpSpan,
    start: SystemTime,
    ended: bool,
}

impl std::fmt::Debug for Operation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Operation")
            .field("span_context", &self.span_context())
            .field("start", &self.start)
            .field("ended", &self.ended)
            .finish()
    }
}

/// The builder of an operation's span and its start time: one wall-clock reading serves as
/// the span's start time and the duration's origin.
fn span_builder(
    name: impl Into<Cow<'static, str>>,
    kind: SpanKind,
    attributes: Vec<KeyValue>,
) -> (SystemTime, opentelemetry::trace::SpanBuilder) {
    let start = SystemTime::now();
    let builder = opentelemetry::trace::SpanBuilder::from_name(name)
        .with_kind(kind)
        .with_start_time(start)
        .with_attributes(attributes);
    (start, builder)
}

/// Where an operation's span lives.
// The SDK span is held inline on purpose: boxing it is the allocation `start_leaf` saves.
#[allow(clippy::large_enum_variant)]
enum OpSpan {
    /// Inside a context (from [`Instrumentation::start`]).
    Context(Context),
    /// Held directly (from [`Instrumentation::start_leaf`]): no context is built unless asked.
    Leaf {
        span: LeafSpan,
        parent: Context,
        cx: OnceLock<Context>,
    },
}

/// A span held outside any context.
#[allow(clippy::large_enum_variant)]
enum LeafSpan {
    Sdk(opentelemetry_sdk::trace::Span),
    Boxed(BoxedSpan),
}

/// Runs `$body` with `$s` bound to the operation's span, whichever way it is held.
macro_rules! on_span {
    ($op:expr, $s:ident => $body:expr) => {
        match &mut $op.span {
            OpSpan::Context(cx) => {
                let $s = cx.span();
                $body
            }
            OpSpan::Leaf {
                span: LeafSpan::Sdk($s),
                ..
            } => $body,
            OpSpan::Leaf {
                span: LeafSpan::Boxed($s),
                ..
            } => $body,
        }
    };
}

impl Operation {
    fn new(span: OpSpan, start: SystemTime) -> Self {
        Self {
            span,
            start,
            ended: false,
        }
    }

    /// The context holding this operation's span: run the call's inner work in it
    /// (`fut.with_context(op.context().clone())`) so its spans become children.
    ///
    /// For an operation from [`Instrumentation::start_leaf`] the context is built on the first
    /// call and carries the span's identity (children and propagated headers point at it), but
    /// attributes set through it do not reach the span: use this operation's methods.
    ///
    /// ```
    /// # #[cfg(feature = "testing")] {
    /// use opentelemetry::{
    ///     Context,
    ///     trace::{SpanKind, Tracer as _},
    /// };
    /// use otel_core::testing::{TestTelemetry, assert_child_of};
    ///
    /// let tt = TestTelemetry::new();
    /// let inst = tt.instrumentation("my-adapter");
    /// let op = inst.start(
    ///     &Context::current(),
    ///     "publish",
    ///     SpanKind::Producer,
    ///     Vec::new(),
    /// );
    /// // Work done inside the operation's context is its child.
    /// let _ = tt.tracer().start_with_context("encode", op.context());
    /// op.end();
    /// assert_child_of(&tt.span("encode"), &tt.span("publish"));
    /// # }
    /// ```
    pub fn context(&self) -> &Context {
        match &self.span {
            OpSpan::Context(cx) => cx,
            OpSpan::Leaf { span, parent, cx } => cx.get_or_init(|| {
                let span_context = match span {
                    LeafSpan::Sdk(s) => s.span_context().clone(),
                    LeafSpan::Boxed(s) => s.span_context().clone(),
                };
                parent.with_remote_span_context(span_context)
            }),
        }
    }

    /// The span's identity (trace id, span id, sampled flag).
    ///
    /// ```
    /// use opentelemetry::{Context, trace::SpanKind};
    /// use otel_core::instrument::Instrumentation;
    ///
    /// let inst = Instrumentation::builder("my-adapter", "0.1.0").build();
    /// let op = inst.start(&Context::new(), "call", SpanKind::Internal, Vec::new());
    /// // No tracer provider is installed here: the span is a no-op and its context invalid.
    /// assert!(!op.span_context().is_valid());
    /// ```
    pub fn span_context(&self) -> SpanContext {
        self.with_span_context(SpanContext::clone)
    }

    fn with_span_context<R>(&self, f: impl FnOnce(&SpanContext) -> R) -> R {
        match &self.span {
            OpSpan::Context(cx) => f(cx.span().span_context()),
            OpSpan::Leaf {
                span: LeafSpan::Sdk(s),
                ..
            } => f(s.span_context()),
            OpSpan::Leaf {
                span: LeafSpan::Boxed(s),
                ..
            } => f(s.span_context()),
        }
    }

    /// Whether the span records anything; skip building attribute values when it does not.
    ///
    /// ```
    /// # #[cfg(feature = "testing")] {
    /// use opentelemetry::{Context, KeyValue, trace::SpanKind};
    /// use opentelemetry_sdk::trace::Sampler;
    /// use otel_core::testing::TestTelemetry;
    ///
    /// let tt = TestTelemetry::with_sampler(Sampler::AlwaysOff);
    /// let inst = tt.instrumentation("my-adapter");
    /// let mut op = inst.start(&Context::current(), "query", SpanKind::Client, Vec::new());
    /// assert!(!op.is_recording());
    /// if op.is_recording() {
    ///     op.set_attribute(KeyValue::new("db.query.text", "SELECT ...".to_owned()));
    /// }
    /// op.end();
    /// assert!(tt.spans().is_empty());
    /// # }
    /// ```
    pub fn is_recording(&self) -> bool {
        match &self.span {
            OpSpan::Context(cx) => cx.span().is_recording(),
            OpSpan::Leaf {
                span: LeafSpan::Sdk(s),
                ..
            } => s.is_recording(),
            OpSpan::Leaf {
                span: LeafSpan::Boxed(s),
                ..
            } => s.is_recording(),
        }
    }

    /// Time since the start.
    ///
    /// ```
    /// use opentelemetry::{Context, trace::SpanKind};
    /// use otel_core::instrument::Instrumentation;
    /// use std::time::{Duration, Instant};
    ///
    /// let inst = Instrumentation::builder("my-adapter", "0.1.0").build();
    /// let before = Instant::now();
    /// let op = inst.start(&Context::current(), "call", SpanKind::Internal, Vec::new());
    /// // E.g. to give up on a call that already took too long:
    /// let took = op.elapsed();
    /// assert!(took <= before.elapsed() + Duration::from_millis(50));
    /// op.end();
    /// ```
    pub fn elapsed(&self) -> Duration {
        self.start.elapsed().unwrap_or_default()
    }

    /// Sets an attribute on the span.
    ///
    /// ```
    /// # #[cfg(feature = "testing")] {
    /// use opentelemetry::{Context, KeyValue, trace::SpanKind};
    /// use otel_core::testing::{TestTelemetry, assert_attr};
    ///
    /// let tt = TestTelemetry::new();
    /// let mut op = tt.instrumentation("my-adapter").start(
    ///     &Context::current(),
    ///     "SELECT",
    ///     SpanKind::Client,
    ///     Vec::new(),
    /// );
    /// op.set_attribute(KeyValue::new("db.response.returned_rows", 3));
    /// op.end();
    /// assert_attr(&tt.span("SELECT"), "db.response.returned_rows", 3);
    /// # }
    /// ```
    pub fn set_attribute(&mut self, kv: KeyValue) {
        on_span!(self, s => s.set_attribute(kv));
    }

    /// Sets attributes on the span.
    ///
    /// ```
    /// # #[cfg(feature = "testing")] {
    /// use opentelemetry::{Context, KeyValue, trace::SpanKind};
    /// use otel_core::testing::{TestTelemetry, assert_attr};
    ///
    /// let tt = TestTelemetry::new();
    /// let mut op = tt.instrumentation("my-adapter").start(
    ///     &Context::current(),
    ///     "GET",
    ///     SpanKind::Server,
    ///     Vec::new(),
    /// );
    /// op.set_attributes([
    ///     KeyValue::new("http.response.status_code", 200),
    ///     KeyValue::new("http.route", "/orders/{id}"),
    /// ]);
    /// op.end();
    /// let span = tt.span("GET");
    /// assert_attr(&span, "http.response.status_code", 200);
    /// assert_attr(&span, "http.route", "/orders/{id}");
    /// # }
    /// ```
    pub fn set_attributes(&mut self, attributes: impl IntoIterator<Item = KeyValue>) {
        on_span!(self, s => s.set_attributes(attributes));
    }

    /// Renames the span (for names only known once the call ran, like an HTTP route).
    ///
    /// ```
    /// # #[cfg(feature = "testing")] {
    /// use opentelemetry::{Context, trace::SpanKind};
    /// use otel_core::testing::TestTelemetry;
    ///
    /// let tt = TestTelemetry::new();
    /// let mut op = tt.instrumentation("my-adapter").start(
    ///     &Context::current(),
    ///     "GET",
    ///     SpanKind::Server,
    ///     Vec::new(),
    /// );
    /// // ... routing found the route ...
    /// op.update_name("GET /orders/{id}");
    /// op.end();
    /// assert_eq!(tt.spans_named("GET /orders/{id}").len(), 1);
    /// # }
    /// ```
    pub fn update_name(&mut self, name: impl Into<Cow<'static, str>>) {
        on_span!(self, s => s.update_name(name));
    }

    /// Marks the call failed: `error.type`, span status Error with `message`, and an
    /// `exception` event carrying the type and message.
    ///
    /// ```
    /// # #[cfg(feature = "testing")] {
    /// use opentelemetry::{
    ///     Context,
    ///     trace::{SpanKind, Status},
    /// };
    /// use otel_core::testing::{TestTelemetry, assert_attr};
    ///
    /// let tt = TestTelemetry::new();
    /// let mut op = tt.instrumentation("my-adapter").start(
    ///     &Context::current(),
    ///     "GET",
    ///     SpanKind::Client,
    ///     Vec::new(),
    /// );
    /// op.record_error("io", "connection reset");
    /// op.end();
    ///
    /// let span = tt.span("GET");
    /// assert_attr(&span, "error.type", "io");
    /// assert_eq!(span.status, Status::error("connection reset"));
    /// let event = &span.events.events[0];
    /// assert_eq!(event.name, "exception");
    /// assert!(
    ///     event
    ///         .attributes
    ///         .iter()
    ///         .any(|kv| kv.key.as_str() == "exception.message")
    /// );
    /// # }
    /// ```
    pub fn record_error(
        &mut self,
        error_type: impl Into<Value>,
        message: impl Into<Cow<'static, str>>,
    ) {
        if !self.is_recording() {
            return;
        }
        let error_type = error_type.into();
        let message = message.into();
        let event = vec![
            KeyValue::new(EXCEPTION_TYPE, error_type.clone()),
            KeyValue::new(EXCEPTION_MESSAGE, message.to_string()),
        ];
        on_span!(self, s => {
            s.add_event("exception", event);
            s.set_attribute(KeyValue::new(ERROR_TYPE, error_type));
            s.set_status(Status::error(message));
        });
    }

    /// Sets the span status without other changes (for conventions where an error does not
    /// mean status Error, or to mark Ok explicitly).
    ///
    /// ```
    /// # #[cfg(feature = "testing")] {
    /// use opentelemetry::{
    ///     Context,
    ///     trace::{SpanKind, Status},
    /// };
    /// use otel_core::testing::{TestTelemetry, assert_no_attr};
    ///
    /// let tt = TestTelemetry::new();
    /// let mut op = tt.instrumentation("my-adapter").start(
    ///     &Context::current(),
    ///     "GET",
    ///     SpanKind::Client,
    ///     Vec::new(),
    /// );
    /// op.set_status(Status::Ok);
    /// op.end();
    /// let span = tt.span("GET");
    /// assert_eq!(span.status, Status::Ok);
    /// assert_no_attr(&span, "error.type");
    /// # }
    /// ```
    pub fn set_status(&mut self, status: Status) {
        on_span!(self, s => s.set_status(status));
    }

    /// Ends the span and records the elapsed seconds in `histogram` with `metric_attributes`;
    /// the exemplar (when the span is sampled) points at this span.
    ///
    /// ```
    /// # #[cfg(feature = "testing")] {
    /// use opentelemetry::{Context, KeyValue, trace::SpanKind};
    /// use otel_core::metrics::SnapshotExt;
    /// use otel_core::testing::TestTelemetry;
    ///
    /// let tt = TestTelemetry::new();
    /// let inst = tt.instrumentation("my-adapter");
    /// let duration = inst
    ///     .metrics()
    ///     .f64_histogram("db.client.operation.duration")
    ///     .with_unit("s")
    ///     .build();
    /// let attributes = [KeyValue::new("db.system.name", "redis")];
    /// let op = inst.start(&Context::current(), "GET", SpanKind::Client, Vec::new());
    /// op.end_with_duration(&duration, &attributes);
    ///
    /// let span = tt.span("GET");
    /// let took = span
    ///     .end_time
    ///     .duration_since(span.start_time)
    ///     .expect("ends after it starts");
    /// let snapshot = tt.metrics().snapshot();
    /// let metric = snapshot
    ///     .find("db.client.operation.duration")
    ///     .expect("registered");
    /// let data = metric
    ///     .find_series(&attributes)
    ///     .and_then(|s| s.histogram())
    ///     .expect("recorded");
    /// // The recorded duration is exactly the span's.
    /// assert_eq!(data.sum, took.as_secs_f64());
    /// assert_eq!(data.exemplars[0].span_id, span.span_context.span_id());
    /// # }
    /// ```
    pub fn end_with_duration(mut self, histogram: &Histogram, metric_attributes: &[KeyValue]) {
        let end = SystemTime::now();
        let secs = self.seconds_until(end);
        self.with_span_context(|sc| histogram.record_at(secs, metric_attributes, sc, end));
        self.finish_at(end);
    }

    /// Ends the span and records the elapsed seconds in the bound series `histogram` (see
    /// [`Histogram::bind`]): the same as [`end_with_duration`](Self::end_with_duration) without
    /// looking the series up by its attributes.
    ///
    /// ```
    /// use opentelemetry::{Context, KeyValue, trace::SpanKind};
    /// use otel_core::instrument::Instrumentation;
    ///
    /// let inst = Instrumentation::builder("my-adapter", "0.1.0").build();
    /// let duration = inst
    ///     .metrics()
    ///     .f64_histogram("app.call.duration")
    ///     .with_unit("s")
    ///     .build();
    /// let ok_calls = duration.bind(&[KeyValue::new("result", "ok")]);
    /// let op = inst.start(&Context::current(), "call", SpanKind::Internal, Vec::new());
    /// op.end_with_bound(&ok_calls);
    /// ```
    pub fn end_with_bound(mut self, histogram: &BoundHistogram) {
        let end = SystemTime::now();
        let secs = self.seconds_until(end);
        self.with_span_context(|sc| histogram.record_at(secs, sc, end));
        self.finish_at(end);
    }

    /// Ends the span only.
    ///
    /// ```
    /// # #[cfg(feature = "testing")] {
    /// use opentelemetry::{
    ///     Context,
    ///     trace::{SpanKind, Status},
    /// };
    /// use otel_core::testing::TestTelemetry;
    ///
    /// let tt = TestTelemetry::new();
    /// let op = tt.instrumentation("my-adapter").start(
    ///     &Context::current(),
    ///     "GET",
    ///     SpanKind::Client,
    ///     Vec::new(),
    /// );
    /// op.end();
    /// // Ended normally: not marked cancelled, status left unset.
    /// assert_eq!(tt.span("GET").status, Status::Unset);
    /// assert!(tt.metrics().snapshot().is_empty());
    /// # }
    /// ```
    pub fn end(mut self) {
        self.finish();
    }

    fn finish(&mut self) {
        self.finish_at(SystemTime::now());
    }

    fn finish_at(&mut self, end: SystemTime) {
        if !self.ended {
            self.ended = true;
            on_span!(self, s => s.end_with_timestamp(end));
        }
    }

    /// Seconds from the start to `end` (zero if the clock stepped back).
    fn seconds_until(&self, end: SystemTime) -> f64 {
        end.duration_since(self.start)
            .unwrap_or_default()
            .as_secs_f64()
    }
}

impl Drop for Operation {
    fn drop(&mut self) {
        if !self.ended {
            self.record_error("cancelled", "the operation was dropped before it completed");
            self.finish();
        }
    }
}

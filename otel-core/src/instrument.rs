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
//! let mut op = inst.start(&Context::current(), "SELECT accounts", SpanKind::Client, vec![
//!     KeyValue::new("db.system.name", "postgresql"),
//! ]);
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
use std::sync::Arc;
use std::time::{Duration, Instant};

use opentelemetry::global::BoxedTracer;
use opentelemetry::trace::{SpanKind, Status, TraceContextExt, TracerProvider as _};
use opentelemetry::{Context, InstrumentationScope, KeyValue, Value};
use opentelemetry_semantic_conventions::attribute::{
    ERROR_TYPE, EXCEPTION_MESSAGE, EXCEPTION_TYPE,
};

use crate::metrics::{Histogram, Metrics};

/// Tracer and metrics an adapter records through, with a full instrumentation scope
/// (name, version, schema URL). Cheap to clone.
#[derive(Clone)]
pub struct Instrumentation {
    inner: Arc<Inner>,
}

struct Inner {
    tracer: AnyTracer,
    metrics: Metrics,
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
#[must_use]
pub struct InstrumentationBuilder {
    scope: InstrumentationScope,
    tracer: Option<AnyTracer>,
    metrics: Option<Metrics>,
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
        }
    }

    /// The metrics registry the adapter's instruments live in.
    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// Starts a span named `name` of `kind`, child of the span in `parent` (usually
    /// [`Context::current`]), with `attributes` known at the start (samplers see them).
    pub fn start(
        &self,
        parent: &Context,
        name: impl Into<Cow<'static, str>>,
        kind: SpanKind,
        attributes: Vec<KeyValue>,
    ) -> Operation {
        let builder = opentelemetry::trace::SpanBuilder::from_name(name)
            .with_kind(kind)
            .with_attributes(attributes);
        let cx = match &self.inner.tracer {
            AnyTracer::Sdk(t) => parent.with_span(builder.start_with_context(t, parent)),
            AnyTracer::Boxed(t) => parent.with_span(builder.start_with_context(t, parent)),
        };
        Operation {
            cx,
            start: Instant::now(),
            ended: false,
        }
    }
}

impl InstrumentationBuilder {
    /// Uses `provider` instead of the global tracer provider.
    pub fn with_tracer_provider<P>(mut self, provider: P) -> Self
    where
        P: opentelemetry::trace::TracerProvider,
        P::Tracer: Send + Sync + 'static,
        <P::Tracer as opentelemetry::trace::Tracer>::Span: Send + Sync + 'static,
    {
        let tracer = provider.tracer_with_scope(self.scope.clone());
        self.tracer = Some(AnyTracer::from_tracer(tracer));
        self
    }

    /// Uses `metrics` instead of [`Metrics::global`].
    pub fn with_metrics(mut self, metrics: Metrics) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Builds; unset parts come from the globals as they are now.
    pub fn build(self) -> Instrumentation {
        let tracer =
            self.tracer
                .unwrap_or_else(|| match crate::pipeline::installed_tracer_provider() {
                    Some(p) => AnyTracer::Sdk(p.tracer_with_scope(self.scope.clone())),
                    None => AnyTracer::Boxed(
                        opentelemetry::global::tracer_provider()
                            .tracer_with_scope(self.scope.clone()),
                    ),
                });
        Instrumentation {
            inner: Arc::new(Inner {
                tracer,
                metrics: self.metrics.unwrap_or_else(Metrics::global),
            }),
        }
    }
}

/// One call in flight: its span (inside [`Operation::context`]) and its start time.
///
/// Dropped without [`end`](Operation::end) or [`end_with_duration`](Operation::end_with_duration)
/// (for example because the caller dropped the future), the span still ends, with status Error
/// and `error.type = "cancelled"`, so no call is lost from the trace.
#[derive(Debug)]
pub struct Operation {
    cx: Context,
    start: Instant,
    ended: bool,
}

impl Operation {
    /// The context holding this operation's span: run the call's inner work in it
    /// (`fut.with_context(op.context().clone())`) so its spans become children.
    pub fn context(&self) -> &Context {
        &self.cx
    }

    /// Whether the span records anything; skip building attribute values when it does not.
    pub fn is_recording(&self) -> bool {
        self.cx.span().is_recording()
    }

    /// Time since the start.
    pub fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }

    /// Sets an attribute on the span.
    pub fn set_attribute(&mut self, kv: KeyValue) {
        self.cx.span().set_attribute(kv);
    }

    /// Renames the span (for names only known once the call ran, like an HTTP route).
    pub fn update_name(&mut self, name: impl Into<Cow<'static, str>>) {
        self.cx.span().update_name(name);
    }

    /// Marks the call failed: `error.type`, span status Error with `message`, and an
    /// `exception` event carrying the type and message.
    pub fn record_error(
        &mut self,
        error_type: impl Into<Value>,
        message: impl Into<Cow<'static, str>>,
    ) {
        let span = self.cx.span();
        if !span.is_recording() {
            return;
        }
        let error_type = error_type.into();
        let message = message.into();
        span.add_event(
            "exception",
            vec![
                KeyValue::new(EXCEPTION_TYPE, error_type.clone()),
                KeyValue::new(EXCEPTION_MESSAGE, message.to_string()),
            ],
        );
        span.set_attribute(KeyValue::new(ERROR_TYPE, error_type));
        span.set_status(Status::error(message));
    }

    /// Sets the span status without other changes (for conventions where an error does not
    /// mean status Error, or to mark Ok explicitly).
    pub fn set_status(&mut self, status: Status) {
        self.cx.span().set_status(status);
    }

    /// Ends the span and records the elapsed seconds in `histogram` with `metric_attributes`;
    /// the exemplar (when the span is sampled) points at this span.
    pub fn end_with_duration(mut self, histogram: &Histogram, metric_attributes: &[KeyValue]) {
        let secs = self.start.elapsed().as_secs_f64();
        histogram.record_with_context(secs, metric_attributes, &self.cx);
        self.finish();
    }

    /// Ends the span only.
    pub fn end(mut self) {
        self.finish();
    }

    fn finish(&mut self) {
        if !self.ended {
            self.ended = true;
            self.cx.span().end();
        }
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

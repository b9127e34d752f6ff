//! Test harness shared by the integration tests.
//!
//! `Harness` is a stand-in for `otel_core::testing::TestTelemetry` until it lands: an
//! in-memory trace and metric pipeline owned by one test (no globals).
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

pub mod scenarios;

use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use opentelemetry::metrics::MeterProvider;
use opentelemetry::trace::{SpanKind, Status, TraceContextExt, Tracer, TracerProvider};
use opentelemetry::{Context, InstrumentationScope, KeyValue, Value};
use opentelemetry_sdk::metrics::data::{AggregatedMetrics, MetricData, ResourceMetrics};
use opentelemetry_sdk::metrics::{InMemoryMetricExporter, PeriodicReader, SdkMeterProvider};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};

pub struct Harness {
    tracer_provider: SdkTracerProvider,
    span_exporter: InMemorySpanExporter,
    meter_provider: SdkMeterProvider,
    metric_exporter: InMemoryMetricExporter,
}

impl Harness {
    pub fn new() -> Self {
        let span_exporter = InMemorySpanExporter::default();
        let tracer_provider = SdkTracerProvider::builder()
            .with_simple_exporter(span_exporter.clone())
            .build();
        let metric_exporter = InMemoryMetricExporter::default();
        let meter_provider = SdkMeterProvider::builder()
            .with_reader(PeriodicReader::builder(metric_exporter.clone()).build())
            .build();
        Self {
            tracer_provider,
            span_exporter,
            meter_provider,
            metric_exporter,
        }
    }

    pub fn tracer_provider(&self) -> &SdkTracerProvider {
        &self.tracer_provider
    }

    pub fn metrics(&self) -> otel_sqlx::Metrics {
        self.meter_provider
            .meter_with_scope(InstrumentationScope::builder("otel-sqlx").build())
    }

    /// A started "request" span and the context holding it.
    pub fn request(&self) -> Context {
        let tracer = self.tracer_provider.tracer("test");
        let span = tracer
            .span_builder("request")
            .with_kind(SpanKind::Server)
            .start(&tracer);
        Context::current_with_span(span)
    }

    pub fn spans(&self) -> Vec<SpanData> {
        self.tracer_provider.force_flush().unwrap();
        self.span_exporter.get_finished_spans().unwrap()
    }

    pub fn span(&self, name: &str) -> SpanData {
        let spans = self.spans();
        let names: Vec<String> = spans.iter().map(|s| s.name.to_string()).collect();
        spans
            .into_iter()
            .find(|s| s.name == name)
            .unwrap_or_else(|| panic!("no span named {name:?}; exported: {names:?}"))
    }

    pub fn spans_named(&self, name: &str) -> Vec<SpanData> {
        self.spans()
            .into_iter()
            .filter(|s| s.name == name)
            .collect()
    }

    fn collect(&self) -> Vec<ResourceMetrics> {
        self.meter_provider.force_flush().unwrap();
        self.metric_exporter.get_finished_metrics().unwrap()
    }

    /// Points of an f64 histogram in the latest export: (attributes, count).
    pub fn histogram(&self, name: &str) -> Vec<(Vec<KeyValue>, u64)> {
        let exports = self.collect();
        let Some(last) = exports.last() else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for scope in last.scope_metrics() {
            for metric in scope.metrics() {
                if metric.name() != name {
                    continue;
                }
                if let AggregatedMetrics::F64(MetricData::Histogram(h)) = metric.data() {
                    for p in h.data_points() {
                        out.push((p.attributes().cloned().collect(), p.count()));
                    }
                }
            }
        }
        out
    }

    /// Points of an i64 or u64 sum in the latest export: (attributes, value).
    pub fn sum(&self, name: &str) -> Vec<(Vec<KeyValue>, i64)> {
        let exports = self.collect();
        let Some(last) = exports.last() else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for scope in last.scope_metrics() {
            for metric in scope.metrics() {
                if metric.name() != name {
                    continue;
                }
                match metric.data() {
                    AggregatedMetrics::I64(MetricData::Sum(s)) => {
                        for p in s.data_points() {
                            out.push((p.attributes().cloned().collect(), p.value()));
                        }
                    }
                    AggregatedMetrics::U64(MetricData::Sum(s)) => {
                        for p in s.data_points() {
                            out.push((
                                p.attributes().cloned().collect(),
                                i64::try_from(p.value()).unwrap(),
                            ));
                        }
                    }
                    _ => {}
                }
            }
        }
        out
    }
}

pub fn attr<'a>(span: &'a SpanData, key: &str) -> Option<&'a Value> {
    span.attributes
        .iter()
        .rev()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| &kv.value)
}

#[track_caller]
pub fn assert_attr(span: &SpanData, key: &str, expected: impl Into<Value>) {
    let expected = expected.into();
    assert_eq!(
        attr(span, key),
        Some(&expected),
        "attribute {key} of span {:?}: {:?}",
        span.name,
        span.attributes
    );
}

#[track_caller]
pub fn assert_no_attr(span: &SpanData, key: &str) {
    assert!(
        attr(span, key).is_none(),
        "span {:?} should not have {key}: {:?}",
        span.name,
        span.attributes
    );
}

#[track_caller]
pub fn assert_child_of(child: &SpanData, parent: &SpanData) {
    assert_eq!(
        child.span_context.trace_id(),
        parent.span_context.trace_id(),
        "{:?} not in the trace of {:?}",
        child.name,
        parent.name
    );
    assert_eq!(
        child.parent_span_id,
        parent.span_context.span_id(),
        "{:?} is not a child of {:?}",
        child.name,
        parent.name
    );
}

#[track_caller]
pub fn assert_client_ok(span: &SpanData) {
    assert_eq!(span.span_kind, SpanKind::Client, "{:?}", span.name);
    assert!(
        !matches!(span.status, Status::Error { .. }),
        "{:?} has status {:?}",
        span.name,
        span.status
    );
}

#[track_caller]
pub fn assert_error(span: &SpanData, code: &str) {
    assert!(
        matches!(span.status, Status::Error { .. }),
        "{:?} should have failed: {:?}",
        span.name,
        span.status
    );
    assert_attr(span, "db.response.status_code", code.to_owned());
    assert_attr(span, "error.type", code.to_owned());
}

/// True when `kvs` holds `key` = `value`.
pub fn has(kvs: &[KeyValue], key: &str, value: impl Into<Value>) -> bool {
    let value = value.into();
    kvs.iter()
        .any(|kv| kv.key.as_str() == key && kv.value == value)
}

/// Fails (never skips) when the server at `addr` cannot be reached.
pub fn require_server(name: &str, addr: &str) {
    let socket: SocketAddr = addr.parse().unwrap();
    if TcpStream::connect_timeout(&socket, Duration::from_secs(2)).is_err() {
        panic!(
            "{name} is not reachable at {addr}; start the test services with `scripts/services.sh` \
             (CI={})",
            std::env::var("CI").unwrap_or_default()
        );
    }
}

/// A table name no other test (or earlier run) uses.
pub fn unique_table(prefix: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "{prefix}_{}_{}",
        std::process::id(),
        nanos % 1_000_000_000_000
    )
}

/// Ends the request span held in `cx`.
pub fn end_request(cx: &Context) {
    cx.span().end();
}

//! The pipeline built from environment variables, exporting to a real OTLP/HTTP receiver on
//! loopback, and its behaviour with a collector that is not there.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use opentelemetry::trace::{Span as _, TraceContextExt as _, Tracer as _, TracerProvider as _};
use otel_core::metrics::SnapshotExt as _;
use otel_core::testing::OtlpHttpReceiver;
use otel_core::{EnvSource, Telemetry};

fn env(pairs: &[(&str, String)]) -> EnvSource {
    EnvSource::from_pairs(pairs.iter().map(|(k, v)| (k.to_string(), v.clone())))
}

fn resource_attr(
    res: &opentelemetry_proto::tonic::resource::v1::Resource,
    key: &str,
) -> Option<String> {
    use opentelemetry_proto::tonic::common::v1::any_value::Value;
    res.attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| match kv.value.as_ref()?.value.as_ref()? {
            Value::StringValue(s) => Some(s.clone()),
            Value::IntValue(i) => Some(i.to_string()),
            other => Some(format!("{other:?}")),
        })
}

#[test]
fn otlp_http_export_carries_resource_from_env() {
    let rx = OtlpHttpReceiver::start().unwrap();
    let mut guard = Telemetry::builder()
        .with_env(env(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", rx.endpoint()),
            ("OTEL_SERVICE_NAME", "billing".into()),
            (
                "OTEL_RESOURCE_ATTRIBUTES",
                "deployment.environment.name=test,team=risk%20ops".into(),
            ),
            ("OTEL_EXPORTER_OTLP_HEADERS", "x-api-key=k1".into()),
        ]))
        .with_service_version("1.2.3")
        .build()
        .unwrap();
    let tracer = guard.tracer_provider().unwrap().tracer("t");
    tracer.in_span("parent", |_| {
        tracer.start("child").end();
    });
    let report = guard.shutdown(Duration::from_secs(5));
    assert!(report.completed_in_time);
    assert_eq!(report.spans_ended, 2);
    assert_eq!(report.spans_exported, 2);
    assert_eq!(report.spans_dropped, 0);
    let snapshot = guard.metrics().snapshot();
    let exported = snapshot
        .find(otel_core::semconv::metric::OTEL_SDK_EXPORTER_SPAN_EXPORTED)
        .and_then(|m| m.find_series(&[]))
        .and_then(|s| s.counter());
    assert_eq!(exported, Some(2));

    let reqs = rx.trace_requests();
    let rs: Vec<_> = reqs.iter().flat_map(|r| r.resource_spans.iter()).collect();
    assert!(!rs.is_empty());
    let res = rs[0].resource.as_ref().unwrap();
    assert_eq!(
        resource_attr(res, "service.name").as_deref(),
        Some("billing")
    );
    assert_eq!(
        resource_attr(res, "service.version").as_deref(),
        Some("1.2.3")
    );
    assert_eq!(resource_attr(res, "team").as_deref(), Some("risk ops"));
    assert_eq!(
        resource_attr(res, "deployment.environment.name").as_deref(),
        Some("test")
    );
    assert_eq!(
        resource_attr(res, "telemetry.sdk.language").as_deref(),
        Some("rust")
    );
    let names: Vec<_> = rs
        .iter()
        .flat_map(|r| r.scope_spans.iter())
        .flat_map(|s| s.spans.iter())
        .map(|s| s.name.clone())
        .collect();
    assert!(names.contains(&"parent".to_string()) && names.contains(&"child".to_string()));
}

/// The string values of the exported span, event and link attributes, by key.
fn exported_strings(rx: &OtlpHttpReceiver) -> std::collections::BTreeMap<String, String> {
    use opentelemetry_proto::tonic::common::v1::{KeyValue, any_value::Value};
    let mut out = std::collections::BTreeMap::new();
    let mut add = |kvs: &[KeyValue]| {
        for kv in kvs {
            if let Some(Value::StringValue(s)) = kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                out.insert(kv.key.clone(), s.clone());
            }
        }
    };
    for req in rx.trace_requests() {
        for span in req
            .resource_spans
            .iter()
            .flat_map(|r| r.scope_spans.iter())
            .flat_map(|s| s.spans.iter())
        {
            add(&span.attributes);
            for event in &span.events {
                add(&event.attributes);
            }
            for link in &span.links {
                add(&link.attributes);
            }
        }
    }
    out
}

#[test]
fn attribute_value_length_limit_applies_after_redaction_and_before_tail_mode_and_export() {
    use opentelemetry::KeyValue;

    let rx = OtlpHttpReceiver::start().unwrap();
    let mut guard = Telemetry::builder()
        .with_env(env(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", rx.endpoint()),
            // The span-specific variable wins over the general one.
            ("OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT", "24".into()),
            ("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", "3".into()),
            ("OTEL_CORE_REDACTION", "true".into()),
            ("OTEL_CORE_TAIL_SAMPLING", "true".into()),
        ]))
        .build()
        .unwrap();
    let tracer = guard.tracer_provider().unwrap().tracer("t");
    let mut span = tracer.start("GET");
    span.set_attribute(KeyValue::new("user_agent.original", "x".repeat(1 << 20)));
    span.set_attribute(KeyValue::new(
        "address",
        "Zürich-Oerlikon, Binzmühlestrasse 80",
    ));
    span.set_attribute(KeyValue::new("short", "ok"));
    // An e-mail address that the limit would cut in half: masked first, then cut.
    span.set_attribute(KeyValue::new(
        "note",
        "mail ann.marie.longname@example.com today",
    ));
    span.add_event(
        "exception",
        vec![KeyValue::new(
            "exception.message",
            "connection refused by 10.0.0.1:5432",
        )],
    );
    span.end();
    let report = guard.shutdown(Duration::from_secs(5));
    assert_eq!(report.spans_exported, 1);

    let strings = exported_strings(&rx);
    assert_eq!(strings["user_agent.original"], "x".repeat(24));
    assert_eq!(strings["address"], "Zürich-Oerlikon, Binzmüh");
    assert_eq!(strings["short"], "ok");
    assert_eq!(strings["note"], "mail [REDACTED] today");
    assert_eq!(strings["exception.message"], "connection refused by 10");

    // The builder overrides both variables.
    let rx = OtlpHttpReceiver::start().unwrap();
    let mut guard = Telemetry::builder()
        .with_env(env(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", rx.endpoint()),
            ("OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT", "6".into()),
        ]))
        .with_attribute_value_length_limit(2)
        .build()
        .unwrap();
    let tracer = guard.tracer_provider().unwrap().tracer("t");
    let mut span = tracer.start("GET");
    span.set_attribute(KeyValue::new("url.path", "/users/42"));
    span.end();
    guard.shutdown(Duration::from_secs(5));
    assert_eq!(exported_strings(&rx)["url.path"], "/u");
}

#[test]
fn closed_port_shuts_down_quickly_and_counts_drops() {
    // Port 9 (discard) is closed on loopback here: the connection is refused at once.
    let mut guard = Telemetry::builder()
        .with_env(env(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9".into()),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "1000".into()),
        ]))
        .build()
        .unwrap();
    let tracer = guard.tracer_provider().unwrap().tracer("t");
    for _ in 0..25 {
        tracer.start("lost").end();
    }
    let t0 = Instant::now();
    let report = guard.shutdown(Duration::from_secs(5));
    assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());
    assert_eq!(report.spans_ended, 25);
    assert_eq!(report.spans_exported, 0);
    assert_eq!(report.spans_dropped, 25);
    // The loss is visible in the suite's own metrics too.
    let snapshot = guard.metrics().snapshot();
    let lost = snapshot
        .find(otel_core::semconv::metric::OTEL_SDK_EXPORTER_SPAN_EXPORTED)
        .expect("export counter")
        .find_series(&[opentelemetry::KeyValue::new("error.type", "export_failed")])
        .and_then(|s| s.counter());
    assert_eq!(lost, Some(25));
}

#[test]
fn malformed_variables_are_errors_naming_them() {
    let cases = [
        ("OTEL_SDK_DISABLED", "maybe"),
        ("OTEL_TRACES_SAMPLER", "half"),
        ("OTEL_TRACES_SAMPLER_ARG", "2"),
        ("OTEL_TRACES_EXPORTER", "zipkin"),
        ("OTEL_PROPAGATORS", "tracecontext,xray"),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "smtp"),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "::not a url::"),
        ("OTEL_EXPORTER_OTLP_TIMEOUT", "-5"),
        ("OTEL_RESOURCE_ATTRIBUTES", "a=1,b"),
        ("OTEL_BSP_MAX_QUEUE_SIZE", "0"),
        ("OTEL_LOGS_EXPORTER", "syslog"),
        ("OTEL_CORE_LOG_FORMAT", "xml"),
        ("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", "-1"),
        ("OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT", "4k"),
        ("OTEL_LOGRECORD_ATTRIBUTE_VALUE_LENGTH_LIMIT", "big"),
    ];
    for (var, val) in cases {
        let mut pairs = vec![(var, val.to_string())];
        if var == "OTEL_TRACES_SAMPLER_ARG" {
            pairs.push(("OTEL_TRACES_SAMPLER", "traceidratio".into()));
        }
        let err = Telemetry::builder()
            .with_env(env(&pairs))
            .build()
            .unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains(var), "{var}: {msg}");
        assert!(msg.contains(val), "{var}: {msg}");
    }
}

/// A configuration error found after the metrics settings were read returns at once: no
/// metrics exporter was started, so nothing is pushed to the collector on the way out.
#[test]
fn a_late_configuration_error_pushes_nothing() {
    let rx = OtlpHttpReceiver::start().unwrap();
    let started = Instant::now();
    let err = Telemetry::builder()
        .with_env(env(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", rx.endpoint()),
            ("OTEL_METRICS_EXPORTER", "otlp".into()),
            ("OTEL_LOGS_EXPORTER", "syslog".into()),
        ]))
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("OTEL_LOGS_EXPORTER"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(2));
    // Anything pushed on the way out was pushed before `build` returned.
    assert!(rx.requests().is_empty(), "{:?}", rx.requests());
}

#[test]
fn sdk_disabled_installs_no_provider() {
    let guard = Telemetry::builder()
        .with_env(env(&[("OTEL_SDK_DISABLED", "true".into())]))
        .build()
        .unwrap();
    assert!(guard.tracer_provider().is_none());
    let guard = Telemetry::builder()
        .with_env(env(&[("OTEL_TRACES_EXPORTER", "none".into())]))
        .build()
        .unwrap();
    assert!(guard.tracer_provider().is_some());
}

#[test]
fn sampler_from_env_applies() {
    let rx = OtlpHttpReceiver::start().unwrap();
    let mut guard = Telemetry::builder()
        .with_env(env(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", rx.endpoint()),
            ("OTEL_TRACES_SAMPLER", "always_off".into()),
        ]))
        .build()
        .unwrap();
    let tracer = guard.tracer_provider().unwrap().tracer("t");
    let span = tracer.start("never");
    assert!(!span.span_context().is_sampled());
    drop(span);
    let report = guard.shutdown(Duration::from_secs(5));
    assert_eq!(report.spans_ended, 0);
}

#[test]
fn metrics_pushed_over_otlp_with_exemplars_and_resource() {
    use opentelemetry::KeyValue;
    use opentelemetry_proto::tonic::metrics::v1::metric::Data;
    let rx = OtlpHttpReceiver::start().unwrap();
    let mut guard = Telemetry::builder()
        .with_env(env(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", rx.endpoint()),
            ("OTEL_SERVICE_NAME", "metered".into()),
            ("OTEL_METRIC_EXPORT_INTERVAL", "60000".into()),
        ]))
        .build()
        .unwrap();
    let histogram = guard
        .metrics()
        .f64_histogram("http.server.request.duration")
        .with_unit("s")
        .build();
    let tracer = guard.tracer_provider().unwrap().tracer("t");
    let span = tracer.start("request");
    let sc = span.span_context().clone();
    let cx = opentelemetry::Context::current_with_span(span);
    histogram.record_with_context(0.042, &[KeyValue::new("http.route", "/x")], &cx);
    drop(cx);
    let report = guard.shutdown(Duration::from_secs(5));
    assert_eq!(report.metric_exports_failed, 0);
    // The pipeline accounts for the points it delivered in its own metrics.
    let delivered = guard
        .metrics()
        .snapshot()
        .find(otel_core::semconv::metric::OTEL_SDK_EXPORTER_METRIC_DATA_POINT_EXPORTED)
        .and_then(|m| m.find_series(&[]))
        .and_then(|s| s.counter());
    assert!(delivered.is_some_and(|n| n >= 1), "{delivered:?}");
    let reqs = rx.metric_requests();
    let rm = reqs
        .iter()
        .flat_map(|r| r.resource_metrics.iter())
        .next()
        .expect("a metrics export on shutdown");
    assert_eq!(
        resource_attr(rm.resource.as_ref().unwrap(), "service.name").as_deref(),
        Some("metered")
    );
    let metric = rm
        .scope_metrics
        .iter()
        .flat_map(|s| s.metrics.iter())
        .find(|m| m.name == "http.server.request.duration")
        .unwrap();
    let Some(Data::Histogram(h)) = &metric.data else {
        panic!("not a histogram: {metric:?}")
    };
    let point = &h.data_points[0];
    assert_eq!(point.count, 1);
    assert_eq!(point.exemplars.len(), 1);
    assert_eq!(
        point.exemplars[0].trace_id,
        sc.trace_id().to_bytes().to_vec()
    );
    assert_eq!(point.exemplars[0].span_id, sc.span_id().to_bytes().to_vec());
}

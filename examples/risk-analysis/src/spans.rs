//! Spans received over OTLP/HTTP, decoded back into the SDK's [`SpanData`] so that
//! `otel_core::console::render_waterfall` can draw a trace that crossed several processes.
//!
//! `otel-core` only renders `SpanData`; a public `render_waterfall` over OTLP protobuf spans
//! would make this module unnecessary.

use std::borrow::Cow;
use std::time::{Duration, SystemTime};

use opentelemetry::trace::{
    SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState,
};
use opentelemetry::{InstrumentationScope, KeyValue, Value};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, any_value};
use opentelemetry_proto::tonic::trace::v1::{span, status};
use opentelemetry_sdk::trace::SpanData;

/// One exported span and the `service.name` of the process that sent it.
#[derive(Debug, Clone)]
pub struct ReceivedSpan {
    /// `service.name` of the span's resource (empty when missing).
    pub service: String,
    /// The span, as the SDK represents it.
    pub span: SpanData,
}

impl ReceivedSpan {
    /// The value of attribute `key`, if the span has it.
    pub fn attr(&self, key: &str) -> Option<&Value> {
        self.span
            .attributes
            .iter()
            .find(|kv| kv.key.as_str() == key)
            .map(|kv| &kv.value)
    }

    /// Whether the span ended with status Error.
    pub fn is_error(&self) -> bool {
        matches!(self.span.status, Status::Error { .. })
    }
}

/// Every span of `requests`, in order of arrival.
pub fn decode(requests: &[ExportTraceServiceRequest]) -> Vec<ReceivedSpan> {
    let mut out = Vec::new();
    for rs in requests.iter().flat_map(|r| &r.resource_spans) {
        let service = rs
            .resource
            .as_ref()
            .and_then(|r| {
                r.attributes
                    .iter()
                    .find(|kv| kv.key == otel_core::semconv::resource::SERVICE_NAME)
            })
            .and_then(|kv| kv.value.as_ref())
            .map(|v| value(v).as_str().into_owned())
            .unwrap_or_default();
        for ss in &rs.scope_spans {
            let scope = ss.scope.as_ref().map_or_else(
                || InstrumentationScope::builder("").build(),
                |s| {
                    InstrumentationScope::builder(s.name.clone())
                        .with_version(s.version.clone())
                        .build()
                },
            );
            for s in &ss.spans {
                let Some(span) = to_span_data(s, &scope) else {
                    continue;
                };
                out.push(ReceivedSpan {
                    service: service.clone(),
                    span,
                });
            }
        }
    }
    out
}

fn to_span_data(
    s: &opentelemetry_proto::tonic::trace::v1::Span,
    scope: &InstrumentationScope,
) -> Option<SpanData> {
    let trace_id = TraceId::from_bytes(s.trace_id.as_slice().try_into().ok()?);
    let span_id = SpanId::from_bytes(s.span_id.as_slice().try_into().ok()?);
    let parent_span_id = <[u8; 8]>::try_from(s.parent_span_id.as_slice())
        .map_or(SpanId::INVALID, SpanId::from_bytes);
    let kind = match span::SpanKind::try_from(s.kind) {
        Ok(span::SpanKind::Server) => SpanKind::Server,
        Ok(span::SpanKind::Client) => SpanKind::Client,
        Ok(span::SpanKind::Producer) => SpanKind::Producer,
        Ok(span::SpanKind::Consumer) => SpanKind::Consumer,
        _ => SpanKind::Internal,
    };
    let status = match &s.status {
        Some(st) if st.code == status::StatusCode::Error as i32 => {
            Status::error(st.message.clone())
        }
        Some(st) if st.code == status::StatusCode::Ok as i32 => Status::Ok,
        _ => Status::Unset,
    };
    let time = |nanos: u64| SystemTime::UNIX_EPOCH + Duration::from_nanos(nanos);
    Some(SpanData {
        span_context: SpanContext::new(
            trace_id,
            span_id,
            TraceFlags::SAMPLED,
            false,
            TraceState::default(),
        ),
        parent_span_id,
        parent_span_is_remote: false,
        span_kind: kind,
        name: Cow::Owned(s.name.clone()),
        start_time: time(s.start_time_unix_nano),
        end_time: time(s.end_time_unix_nano),
        attributes: s
            .attributes
            .iter()
            .filter_map(|kv| Some(KeyValue::new(kv.key.clone(), value(kv.value.as_ref()?))))
            .collect(),
        dropped_attributes_count: s.dropped_attributes_count,
        events: Default::default(),
        links: Default::default(),
        status,
        instrumentation_scope: scope.clone(),
    })
}

fn value(v: &AnyValue) -> Value {
    match &v.value {
        Some(any_value::Value::StringValue(s)) => Value::from(s.clone()),
        Some(any_value::Value::BoolValue(b)) => Value::from(*b),
        Some(any_value::Value::IntValue(i)) => Value::from(*i),
        Some(any_value::Value::DoubleValue(d)) => Value::from(*d),
        Some(other) => Value::from(format!("{other:?}")),
        None => Value::from(""),
    }
}

/// The waterfall of the spans of `trace_id`, each name prefixed with its service.
pub fn waterfall(spans: &[ReceivedSpan], trace_id: TraceId) -> String {
    let of_trace: Vec<SpanData> = spans
        .iter()
        .filter(|s| s.span.span_context.trace_id() == trace_id)
        .map(|s| {
            let mut span = s.span.clone();
            span.name = Cow::Owned(format!("[{}] {}", s.service, span.name));
            span
        })
        .collect();
    otel_core::console::render_waterfall(&of_trace)
}

#[cfg(test)]
mod tests {
    use opentelemetry_proto::tonic::common::v1::KeyValue as ProtoKeyValue;
    use opentelemetry_proto::tonic::resource::v1::Resource;
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};

    use super::*;

    fn string(key: &str, value: &str) -> ProtoKeyValue {
        ProtoKeyValue {
            key: key.into(),
            value: Some(AnyValue {
                value: Some(any_value::Value::StringValue(value.into())),
            }),
            ..Default::default()
        }
    }

    #[test]
    fn decodes_spans_with_their_service_and_skips_malformed_ids() {
        let span = |id: u8, parent: Vec<u8>, name: &str, error: bool| Span {
            trace_id: vec![7; 16],
            span_id: vec![id; 8],
            parent_span_id: parent,
            name: name.into(),
            kind: span::SpanKind::Server as i32,
            start_time_unix_nano: 1_000_000,
            end_time_unix_nano: 3_000_000,
            attributes: vec![string("http.route", "/analyze/{account_id}")],
            status: Some(Status {
                code: if error {
                    status::StatusCode::Error as i32
                } else {
                    status::StatusCode::Unset as i32
                },
                message: String::new(),
            }),
            ..Default::default()
        };
        let mut bad = span(9, vec![], "bad", false);
        bad.trace_id = vec![1, 2, 3];
        let request = ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(Resource {
                    attributes: vec![string("service.name", "gateway")],
                    ..Default::default()
                }),
                scope_spans: vec![ScopeSpans {
                    spans: vec![
                        span(1, vec![], "GET /analyze/{account_id}", true),
                        span(2, vec![1; 8], "POST", false),
                        bad,
                    ],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        let spans = decode(&[request]);
        assert_eq!(spans.len(), 2);
        assert_eq!(spans[0].service, "gateway");
        assert!(spans[0].is_error());
        assert_eq!(spans[0].span.span_kind, SpanKind::Server);
        assert_eq!(
            spans[0].attr("http.route").map(Value::as_str).as_deref(),
            Some("/analyze/{account_id}")
        );
        assert_eq!(spans[1].span.parent_span_id, SpanId::from_bytes([1; 8]));
        let text = waterfall(&spans, TraceId::from_bytes([7; 16]));
        assert!(
            text.contains("[gateway] GET /analyze/{account_id}"),
            "{text}"
        );
        assert!(text.contains("  [gateway] POST"), "{text}");
    }
}

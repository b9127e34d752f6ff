//! `cargo run -p grpc` end to end: the spans it exports over OTLP/HTTP show each call as one
//! trace (client span → server span → handler span) and the failing call's status.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::Span;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use opentelemetry_semantic_conventions::attribute as semconv;
use otel_core::testing::OtlpHttpReceiver;

fn attr<'a>(span: &'a Span, key: &str) -> Option<&'a Value> {
    span.attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .and_then(|v| v.value.as_ref())
}

fn string(value: &str) -> Option<Value> {
    Some(Value::StringValue(value.to_owned()))
}

fn status(span: &Span) -> StatusCode {
    span.status.as_ref().map_or(StatusCode::Unset, |s| s.code())
}

#[test]
fn calls_are_traces_and_not_found_is_a_client_error() {
    let rx = OtlpHttpReceiver::start().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_grpc"))
        .env_remove("OTEL_SDK_DISABLED")
        .env_remove("OTEL_TRACES_EXPORTER")
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", rx.endpoint())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The waterfalls were printed, the failing client call marked.
    assert!(stdout.contains("✗ bank.Accounts/Get"), "{stdout}");
    assert!(stdout.contains("load account"), "{stdout}");

    let spans: Vec<Span> = rx
        .trace_requests()
        .into_iter()
        .flat_map(|r| r.resource_spans)
        .flat_map(|r| r.scope_spans)
        .flat_map(|s| s.spans)
        .collect();
    assert_eq!(spans.len(), 6, "{spans:#?}");
    let of_kind =
        |kind: SpanKind| -> Vec<&Span> { spans.iter().filter(|s| s.kind() == kind).collect() };
    let clients = of_kind(SpanKind::Client);
    let servers = of_kind(SpanKind::Server);
    let handlers = of_kind(SpanKind::Internal);
    assert_eq!((clients.len(), servers.len(), handlers.len()), (2, 2, 2));

    for client in &clients {
        assert_eq!(client.name, "bank.Accounts/Get");
        assert!(
            client.parent_span_id.is_empty(),
            "the client span is the root"
        );
        let server = servers
            .iter()
            .find(|s| s.trace_id == client.trace_id)
            .expect("a server span in the client's trace");
        assert_eq!(server.parent_span_id, client.span_id);
        let handler = handlers
            .iter()
            .find(|s| s.trace_id == client.trace_id)
            .expect("the handler's span in the client's trace");
        assert_eq!(handler.name, "load account");
        assert_eq!(handler.parent_span_id, server.span_id);
        for span in [*client, *server] {
            assert_eq!(
                attr(span, semconv::RPC_SYSTEM_NAME),
                string("grpc").as_ref()
            );
            assert_eq!(
                attr(span, semconv::RPC_METHOD),
                string("bank.Accounts/Get").as_ref()
            );
        }
        assert_eq!(
            attr(client, semconv::SERVER_ADDRESS),
            string("127.0.0.1").as_ref()
        );

        let code = attr(client, semconv::RPC_RESPONSE_STATUS_CODE);
        assert_eq!(attr(server, semconv::RPC_RESPONSE_STATUS_CODE), code);
        if code == string("NOT_FOUND").as_ref() {
            // An error for the caller, not for the server that answered correctly.
            assert_eq!(
                attr(client, semconv::ERROR_TYPE),
                string("NOT_FOUND").as_ref()
            );
            assert_eq!(status(client), StatusCode::Error);
            assert_eq!(attr(server, semconv::ERROR_TYPE), None);
            assert_eq!(status(server), StatusCode::Unset);
        } else {
            assert_eq!(code, string("OK").as_ref());
            assert_eq!(attr(client, semconv::ERROR_TYPE), None);
            assert_eq!(status(client), StatusCode::Unset);
            assert_eq!(status(server), StatusCode::Unset);
        }
    }
    let codes: Vec<_> = clients
        .iter()
        .map(|c| attr(c, semconv::RPC_RESPONSE_STATUS_CODE).cloned())
        .collect();
    assert!(codes.contains(&string("OK")), "{codes:?}");
    assert!(codes.contains(&string("NOT_FOUND")), "{codes:?}");
}

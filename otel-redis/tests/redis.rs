//! Integration tests against a real Redis on 127.0.0.1:6379 (start it with
//! `scripts/services.sh`). Assertions are on exported spans and metrics.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::TcpListener;
use std::time::Duration;

use common::{REDIS_URL, duration_metric, require_redis, series_with, unique_prefix};
use opentelemetry::context::FutureExt as _;
use opentelemetry::trace::{SpanKind, Status, TraceContextExt, Tracer as _};
use opentelemetry::{Context, KeyValue, Value};
use opentelemetry_sdk::trace::Sampler;
use opentelemetry_semantic_conventions::attribute::{
    DB_NAMESPACE, DB_OPERATION_BATCH_SIZE, DB_OPERATION_NAME, DB_QUERY_TEXT,
    DB_RESPONSE_STATUS_CODE, DB_SYSTEM_NAME, ERROR_TYPE, SERVER_ADDRESS, SERVER_PORT,
};
use opentelemetry_semantic_conventions::metric::DB_CLIENT_OPERATION_DURATION;
use otel_core::testing::{
    TestTelemetry, assert_attr, assert_child_of, assert_exemplars_point_at_exported,
    assert_no_attr, attr,
};
use otel_redis::{Builder, InstrumentedConnection, QueryTextMode, RedisInstrumentation};
use redis::aio::{ConnectionManager, ConnectionManagerConfig, MultiplexedConnection};
use redis::{AsyncCommands, Commands};

fn client() -> redis::Client {
    require_redis();
    redis::Client::open(REDIS_URL).unwrap()
}

async fn multiplexed(
    telemetry: &TestTelemetry,
    client: &redis::Client,
    mode: QueryTextMode,
) -> InstrumentedConnection<MultiplexedConnection> {
    let connection = client.get_multiplexed_async_connection().await.unwrap();
    Builder::from(connection)
        .with_tracer_provider(telemetry.tracer_provider().clone())
        .with_metrics(telemetry.metrics().clone())
        .with_client(client)
        .with_query_text(mode)
        .build()
}

/// A `ConnectionManager` of `client`, wrapped through `RedisInstrumentation::wrap`.
async fn managed(
    telemetry: &TestTelemetry,
    client: &redis::Client,
) -> InstrumentedConnection<ConnectionManager> {
    let manager = ConnectionManager::new(client.clone()).await.unwrap();
    RedisInstrumentation::builder()
        .with_tracer_provider(telemetry.tracer_provider().clone())
        .with_metrics(telemetry.metrics().clone())
        .with_client(client)
        .build()
        .wrap(manager)
}

/// A loopback port nobody listens on.
fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

#[track_caller]
fn assert_redis_client_span(span: &opentelemetry_sdk::trace::SpanData, name: &'static str) {
    assert_eq!(span.name, name);
    assert_eq!(span.span_kind, SpanKind::Client);
    assert_attr(span, DB_SYSTEM_NAME, "redis");
    assert_attr(span, DB_OPERATION_NAME, name);
    assert_attr(span, DB_NAMESPACE, "0");
    assert_attr(span, SERVER_ADDRESS, "127.0.0.1");
    assert_attr(span, SERVER_PORT, 6379_i64);
    assert_eq!(span.instrumentation_scope.name(), "otel-redis");
}

#[tokio::test]
async fn typed_helpers_make_one_span_and_measurement_per_command() {
    let telemetry = TestTelemetry::new();
    let client = client();
    let mut con = multiplexed(&telemetry, &client, QueryTextMode::Off).await;
    let key = format!("{}hash", unique_prefix("typed"));

    let () = con.set(&key, "plain").await.unwrap();
    let value: String = con.get(&key).await.unwrap();
    assert_eq!(value, "plain");
    let _: i64 = con.del(&key).await.unwrap();
    let _: i64 = con.hset(&key, "field", "value").await.unwrap();
    let field: String = con.hget(&key, "field").await.unwrap();
    assert_eq!(field, "value");
    let _: i64 = con.expire(&key, 60).await.unwrap();
    // Lower-case names given by hand are reported upper-case.
    let pong: String = redis::cmd("ping").query_async(&mut con).await.unwrap();
    assert_eq!(pong, "PONG");

    for name in ["SET", "GET", "DEL", "HSET", "HGET", "EXPIRE", "PING"] {
        let span = telemetry.span(name);
        assert_redis_client_span(&span, name);
        assert_eq!(span.status, Status::Unset, "{name}");
        assert_no_attr(&span, ERROR_TYPE);
        assert_no_attr(&span, DB_QUERY_TEXT);
        assert_no_attr(&span, DB_OPERATION_BATCH_SIZE);
    }
    assert_eq!(telemetry.spans().len(), 7);

    let metric = duration_metric(&telemetry);
    assert_eq!(metric.unit, "s");
    let get_attributes = [
        KeyValue::new(DB_SYSTEM_NAME, "redis"),
        KeyValue::new(DB_OPERATION_NAME, "GET"),
        KeyValue::new(DB_NAMESPACE, "0"),
        KeyValue::new(SERVER_ADDRESS, "127.0.0.1"),
        KeyValue::new(SERVER_PORT, 6379_i64),
    ];
    // Exactly these attributes: no error.type on success.
    let get = metric.find_series(&get_attributes).expect("a GET series");
    let get = get.histogram().expect("histogram");
    assert_eq!(get.count, 1);
    assert!(get.sum > 0.0 && get.sum < 5.0, "seconds: {}", get.sum);
    assert_eq!(get.boundaries[0], 0.001, "the database bucket advice");
    assert_eq!(metric.total_count(), 7);

    // Every exemplar points at an exported span; the GET one at the GET span.
    let spans = telemetry.spans();
    assert_exemplars_point_at_exported(telemetry.metrics(), DB_CLIENT_OPERATION_DURATION, &spans);
    let get_span = telemetry.span("GET");
    assert!(
        get.exemplars
            .iter()
            .any(|e| e.span_id == get_span.span_context.span_id()
                && e.trace_id == get_span.span_context.trace_id()),
        "{:?}",
        get.exemplars
    );
}

#[tokio::test]
async fn pipeline_is_one_span_with_batch_size() {
    let telemetry = TestTelemetry::new();
    let client = client();
    let mut con = multiplexed(&telemetry, &client, QueryTextMode::Obfuscated).await;
    let prefix = unique_prefix("pipeline");
    let (a, b) = (format!("{prefix}a"), format!("{prefix}b"));

    let (count, value): (i64, String) = redis::pipe()
        .set(&a, "one")
        .ignore()
        .incr(&b, 5)
        .get(&a)
        .del(&[&a, &b])
        .ignore()
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!((count, value.as_str()), (5, "one"));

    let spans = telemetry.spans();
    assert_eq!(spans.len(), 1, "{spans:#?}");
    let span = &spans[0];
    assert_redis_client_span(span, "PIPELINE");
    assert_attr(span, DB_OPERATION_BATCH_SIZE, 4_i64);
    assert_attr(span, DB_QUERY_TEXT, "SET ? ?; INCRBY ? ?; GET ?; DEL ? ?");
    assert_eq!(span.status, Status::Unset);

    let series = series_with(
        &duration_metric(&telemetry),
        &[KeyValue::new(DB_OPERATION_NAME, "PIPELINE")],
    );
    assert_eq!(series.count, 1);
    assert_exemplars_point_at_exported(telemetry.metrics(), DB_CLIENT_OPERATION_DURATION, &spans);
}

#[tokio::test]
async fn transaction_is_one_multi_span() {
    let telemetry = TestTelemetry::new();
    let client = client();
    let mut con = multiplexed(&telemetry, &client, QueryTextMode::Obfuscated).await;
    let prefix = unique_prefix("multi");
    let (a, b) = (format!("{prefix}a"), format!("{prefix}b"));

    let (x, y): (i64, i64) = redis::pipe()
        .atomic()
        .incr(&a, 1)
        .exists(&b)
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!((x, y), (1, 0));
    // The same command twice: named after it.
    let (x, y): (i64, i64) = redis::pipe()
        .atomic()
        .incr(&a, 1)
        .incr(&b, 2)
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!((x, y), (2, 2));
    let _: i64 = con.del(&[&a, &b]).await.unwrap();

    let span = telemetry.span("MULTI");
    assert_redis_client_span(&span, "MULTI");
    assert_attr(&span, DB_OPERATION_BATCH_SIZE, 2_i64);
    assert_attr(&span, DB_QUERY_TEXT, "MULTI; INCRBY ? ?; EXISTS ?; EXEC");
    assert_eq!(span.status, Status::Unset);
    let same = telemetry.span("MULTI INCRBY");
    assert_redis_client_span(&same, "MULTI INCRBY");
    assert_attr(&same, DB_OPERATION_BATCH_SIZE, 2_i64);
    assert_attr(&same, DB_QUERY_TEXT, "MULTI; INCRBY ? ?; INCRBY ? ?; EXEC");
    // The commands inside the transaction are not spans of their own.
    assert!(telemetry.spans_named("INCRBY").is_empty());
    assert!(telemetry.spans_named("EXISTS").is_empty());
    assert!(telemetry.spans_named("EXEC").is_empty());
    let metric = duration_metric(&telemetry);
    assert_eq!(
        series_with(&metric, &[KeyValue::new(DB_OPERATION_NAME, "MULTI INCRBY")]).count,
        1
    );
    assert_eq!(
        series_with(&metric, &[KeyValue::new(DB_OPERATION_NAME, "MULTI")]).count,
        1
    );
}

#[tokio::test]
async fn pipelines_of_one_command_kind_are_named_after_it() {
    let telemetry = TestTelemetry::new();
    let client = client();
    let mut con = multiplexed(&telemetry, &client, QueryTextMode::Obfuscated).await;
    let prefix = unique_prefix("same");
    let (a, b) = (format!("{prefix}a"), format!("{prefix}b"));

    let (x, y): (Option<String>, Option<String>) = redis::pipe()
        .get(&a)
        .get(&b)
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!((x, y), (None, None));
    // A pipeline of one command is that command, not a batch.
    let (n,): (i64,) = redis::pipe()
        .incr(&a, 3)
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(n, 3);
    let _: i64 = con.del(&a).await.unwrap();

    let spans = telemetry.spans();
    assert_eq!(spans.len(), 3, "{spans:#?}");
    let gets = telemetry.span("PIPELINE GET");
    assert_redis_client_span(&gets, "PIPELINE GET");
    assert_attr(&gets, DB_OPERATION_BATCH_SIZE, 2_i64);
    assert_attr(&gets, DB_QUERY_TEXT, "GET ?; GET ?");
    let single = telemetry.span("INCRBY");
    assert_redis_client_span(&single, "INCRBY");
    assert_no_attr(&single, DB_OPERATION_BATCH_SIZE);
    assert_attr(&single, DB_QUERY_TEXT, "INCRBY ? ?");
    assert!(telemetry.spans_named("PIPELINE").is_empty());

    let metric = duration_metric(&telemetry);
    assert_eq!(
        series_with(&metric, &[KeyValue::new(DB_OPERATION_NAME, "PIPELINE GET")]).count,
        1
    );
    assert_eq!(
        series_with(&metric, &[KeyValue::new(DB_OPERATION_NAME, "INCRBY")]).count,
        1
    );
    assert_exemplars_point_at_exported(telemetry.metrics(), DB_CLIENT_OPERATION_DURATION, &spans);
}

#[tokio::test]
async fn error_replies_mark_span_and_metric() {
    let telemetry = TestTelemetry::new();
    let client = client();
    let mut con = multiplexed(&telemetry, &client, QueryTextMode::Off).await;
    let key = format!("{}string", unique_prefix("errors"));
    let () = con.set(&key, "not a number").await.unwrap();

    let error = con.incr::<_, _, i64>(&key, 1).await.unwrap_err();
    assert_eq!(error.code(), Some("ERR"));
    let error = con.lpush::<_, _, i64>(&key, "x").await.unwrap_err();
    assert_eq!(error.code(), Some("WRONGTYPE"));
    let _: i64 = con.del(&key).await.unwrap();

    let incr = telemetry.span("INCRBY");
    assert!(
        matches!(incr.status, Status::Error { .. }),
        "{:?}",
        incr.status
    );
    assert_attr(&incr, ERROR_TYPE, "ERR");
    assert_attr(&incr, DB_RESPONSE_STATUS_CODE, "ERR");
    let lpush = telemetry.span("LPUSH");
    assert_attr(&lpush, ERROR_TYPE, "WRONGTYPE");
    assert_attr(&lpush, DB_RESPONSE_STATUS_CODE, "WRONGTYPE");
    let Status::Error { description } = &lpush.status else {
        panic!("status {:?}", lpush.status);
    };
    assert!(description.contains("WRONGTYPE"), "{description}");
    let event = lpush.events.iter().next().expect("an exception event");
    assert_eq!(event.name, "exception");
    assert_eq!(telemetry.span("SET").status, Status::Unset);

    let series = series_with(
        &duration_metric(&telemetry),
        &[
            KeyValue::new(DB_OPERATION_NAME, "LPUSH"),
            KeyValue::new(ERROR_TYPE, "WRONGTYPE"),
            KeyValue::new(DB_RESPONSE_STATUS_CODE, "WRONGTYPE"),
        ],
    );
    assert_eq!(series.count, 1);
    let spans = telemetry.spans();
    assert_exemplars_point_at_exported(telemetry.metrics(), DB_CLIENT_OPERATION_DURATION, &spans);
    assert!(
        series
            .exemplars
            .iter()
            .any(|e| e.span_id == lpush.span_context.span_id())
    );
}

#[tokio::test]
async fn error_inside_transaction_and_pipeline() {
    let telemetry = TestTelemetry::new();
    let client = client();
    let mut con = multiplexed(&telemetry, &client, QueryTextMode::Off).await;
    let key = format!("{}string", unique_prefix("tx-errors"));
    let () = con.set(&key, "text").await.unwrap();

    // Fails at EXEC time inside the transaction.
    let result: redis::RedisResult<(i64, String)> = redis::pipe()
        .atomic()
        .incr(&key, 1)
        .get(&key)
        .query_async(&mut con)
        .await;
    assert!(result.is_err());
    // Rejected while queueing: the whole transaction is aborted.
    let result: redis::RedisResult<(String,)> = redis::pipe()
        .atomic()
        .cmd("NOSUCHCOMMAND")
        .query_async(&mut con)
        .await;
    assert!(result.is_err());
    // A plain pipeline with one failing command.
    let result: redis::RedisResult<(String, i64)> = redis::pipe()
        .get(&key)
        .lpush(&key, "x")
        .query_async(&mut con)
        .await;
    assert!(result.is_err());
    let _: i64 = con.del(&key).await.unwrap();

    let multis = telemetry.spans_named("MULTI");
    assert_eq!(multis.len(), 2);
    assert_attr(&multis[0], ERROR_TYPE, "ERR");
    assert_attr(&multis[1], ERROR_TYPE, "EXECABORT");
    assert!(
        multis
            .iter()
            .all(|s| matches!(s.status, Status::Error { .. }))
    );
    let pipeline = telemetry.span("PIPELINE");
    assert_attr(&pipeline, ERROR_TYPE, "WRONGTYPE");
}

#[tokio::test]
async fn unreachable_server_is_a_failed_span() {
    require_redis();
    let telemetry = TestTelemetry::new();
    let port = closed_port();
    let url = format!("redis://127.0.0.1:{port}/0");
    let client = redis::Client::open(url).unwrap();
    let config = ConnectionManagerConfig::new()
        .set_number_of_retries(0)
        .set_connection_timeout(Some(Duration::from_secs(2)));
    let manager = ConnectionManager::new_lazy_with_config(client.clone(), config).unwrap();
    let mut con = Builder::from(manager)
        .with_tracer_provider(telemetry.tracer_provider().clone())
        .with_metrics(telemetry.metrics().clone())
        .with_client(&client)
        .build();

    let error = con.get::<_, Option<String>>("any").await.unwrap_err();
    assert!(
        error.is_io_error() || error.is_connection_refusal(),
        "{error:?}"
    );

    let span = telemetry.span("GET");
    assert!(
        matches!(span.status, Status::Error { .. }),
        "{:?}",
        span.status
    );
    assert_attr(&span, ERROR_TYPE, "connection_refused");
    assert_no_attr(&span, DB_RESPONSE_STATUS_CODE);
    assert_attr(&span, SERVER_PORT, i64::from(port));

    let series = series_with(
        &duration_metric(&telemetry),
        &[KeyValue::new(ERROR_TYPE, "connection_refused")],
    );
    assert_eq!(series.count, 1);
}

#[test]
fn unreachable_server_sync() {
    require_redis();
    let telemetry = TestTelemetry::new();
    let client = redis::Client::open(format!("redis://127.0.0.1:{}/", closed_port())).unwrap();
    // A `Client` is itself a sync `ConnectionLike` that connects per call.
    let mut con = Builder::from(client.clone())
        .with_tracer_provider(telemetry.tracer_provider().clone())
        .with_metrics(telemetry.metrics().clone())
        .with_client(&client)
        .build();
    let error = con.get::<_, Option<String>>("any").unwrap_err();
    assert!(error.is_io_error(), "{error:?}");
    let span = telemetry.span("GET");
    assert_attr(&span, ERROR_TYPE, "connection_refused");
    assert!(matches!(span.status, Status::Error { .. }));
}

#[tokio::test]
async fn spans_are_children_of_the_request_span() {
    let telemetry = TestTelemetry::new();
    let client = client();
    let mut con = multiplexed(&telemetry, &client, QueryTextMode::Off).await;
    let key = format!("{}k", unique_prefix("parent"));

    let request = telemetry.tracer().start("GET /accounts/{id}");
    let cx = Context::current_with_span(request);
    async {
        let () = con.set(&key, 1).await.unwrap();
        let _: i64 = redis::pipe()
            .get(&key)
            .del(&key)
            .ignore()
            .query_async::<(i64,)>(&mut con)
            .await
            .unwrap()
            .0;
    }
    .with_context(cx.clone())
    .await;
    cx.span().end();
    // Outside the request: a root span.
    let _: Option<i64> = con.get(&key).await.unwrap();

    let request = telemetry.span("GET /accounts/{id}");
    assert_child_of(&telemetry.span("SET"), &request);
    assert_child_of(&telemetry.span("PIPELINE"), &request);
    let root = telemetry.span("GET");
    assert_ne!(
        root.span_context.trace_id(),
        request.span_context.trace_id()
    );
}

#[tokio::test]
async fn spans_are_children_of_a_user_tracing_span() {
    use tracing::Instrument as _;

    let telemetry = TestTelemetry::new();
    let _guard = telemetry.set_tracing_default();
    let client = client();
    let mut con = multiplexed(&telemetry, &client, QueryTextMode::Off).await;
    let key = format!("{}k", unique_prefix("tracing"));

    async {
        let _: Option<String> = con.get(&key).await.unwrap();
    }
    .instrument(tracing::info_span!("load_account"))
    .await;

    assert_child_of(&telemetry.span("GET"), &telemetry.span("load_account"));
}

#[tokio::test]
async fn no_argument_value_is_ever_exported() {
    let telemetry = TestTelemetry::new();
    let client = client();
    let mut con = multiplexed(&telemetry, &client, QueryTextMode::Obfuscated).await;
    let secret = format!("s3cr3t{}", std::process::id());
    let key = format!("{}{secret}-key", unique_prefix("leaks"));
    let value = format!("{secret}-value");

    let () = con.set(&key, &value).await.unwrap();
    let _: i64 = con
        .hset(key.replace("key", "hash"), &secret, &value)
        .await
        .unwrap();
    let _: Option<String> = con.get(&key).await.unwrap();
    // Error replies that echo arguments back.
    let _ = con.hget::<_, _, String>(&key, &secret).await.unwrap_err();
    let error = redis::cmd("NOSUCH")
        .arg(&secret)
        .query_async::<()>(&mut con)
        .await
        .unwrap_err();
    assert!(
        error.to_string().contains(&secret),
        "Redis echoes it: {error}"
    );
    let error = redis::cmd(&secret)
        .query_async::<()>(&mut con)
        .await
        .unwrap_err();
    assert!(error.to_string().contains(&secret), "{error}");
    let _ = redis::cmd("CLIENT")
        .arg(&secret)
        .query_async::<()>(&mut con)
        .await
        .unwrap_err();
    let _ = redis::pipe()
        .atomic()
        .set(&key, &value)
        .ignore()
        .hset(&key, &secret, &value)
        .ignore()
        .query_async::<()>(&mut con)
        .await
        .unwrap_err();
    let _: i64 = con.del(&[&key, &key.replace("key", "hash")]).await.unwrap();

    let unknown = telemetry.spans_named("UNKNOWN");
    assert_eq!(unknown.len(), 2);
    assert_attr(&telemetry.span("HSET"), DB_QUERY_TEXT, "HSET ? ? ?");
    assert_attr(&telemetry.span("CLIENT"), DB_QUERY_TEXT, "CLIENT ?");
    let exported = format!(
        "{:#?}\n{:#?}\n{}",
        telemetry.spans(),
        telemetry.metrics().snapshot(),
        otel_core::metrics::openmetrics::render(
            telemetry.metrics(),
            otel_core::metrics::Format::OpenMetrics
        )
    );
    assert!(
        exported.contains("HSET"),
        "sanity: the dump holds the spans"
    );
    assert!(
        !exported.contains(&secret),
        "an argument value was exported:\n{exported}"
    );
}

#[tokio::test]
async fn obfuscated_query_text_and_subcommands() {
    let telemetry = TestTelemetry::new();
    let client = client();
    let mut con = multiplexed(&telemetry, &client, QueryTextMode::Obfuscated).await;

    let _: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("maxmemory")
        .query_async(&mut con)
        .await
        .unwrap();
    let () = redis::cmd("client")
        .arg("setname")
        .arg("otel-redis-test")
        .query_async(&mut con)
        .await
        .unwrap();

    let config = telemetry.span("CONFIG GET");
    assert_attr(&config, DB_OPERATION_NAME, "CONFIG GET");
    assert_attr(&config, DB_QUERY_TEXT, "CONFIG GET ?");
    assert_attr(
        &telemetry.span("CLIENT SETNAME"),
        DB_QUERY_TEXT,
        "CLIENT SETNAME ?",
    );
}

#[tokio::test]
async fn connection_manager_clones_record_alike() {
    let telemetry = TestTelemetry::new();
    let client = client();
    let mut con = managed(&telemetry, &client).await;
    let mut clone = con.clone();
    let key = format!("{}n", unique_prefix("manager"));

    let (a, b) = tokio::join!(
        con.incr::<_, _, i64>(&key, 1),
        clone.incr::<_, _, i64>(&key, 1)
    );
    assert_eq!(a.unwrap() + b.unwrap(), 3);
    let _: i64 = clone.del(&key).await.unwrap();

    let spans = telemetry.spans_named("INCRBY");
    assert_eq!(spans.len(), 2);
    for span in &spans {
        assert_redis_client_span(span, "INCRBY");
    }
    assert_eq!(redis::aio::ConnectionLike::get_db(&con), 0);
}

#[tokio::test]
async fn dropped_future_ends_span_as_cancelled() {
    let telemetry = TestTelemetry::new();
    let client = client();
    let mut con = multiplexed(&telemetry, &client, QueryTextMode::Off).await;
    let key = format!("{}list", unique_prefix("cancel"));

    // BLPOP on an empty key blocks for up to 1 s; the caller gives up after 50 ms.
    let timed_out = tokio::time::timeout(
        Duration::from_millis(50),
        con.blpop::<_, Option<(String, String)>>(&key, 1.0),
    )
    .await;
    assert!(timed_out.is_err());

    let span = telemetry.span("BLPOP");
    assert_attr(&span, ERROR_TYPE, "cancelled");
    assert!(matches!(span.status, Status::Error { .. }));

    // The timed-out call is in the latency metric too, with the span's error.type, and its
    // exemplar opens that very span.
    let series = series_with(
        &duration_metric(&telemetry),
        &[
            KeyValue::new(DB_OPERATION_NAME, "BLPOP"),
            KeyValue::new(ERROR_TYPE, "cancelled"),
        ],
    );
    assert_eq!(series.count, 1);
    assert!(
        series.sum >= 0.04 && series.sum < 1.0,
        "seconds until the drop: {}",
        series.sum
    );
    assert!(
        series
            .exemplars
            .iter()
            .any(|e| e.span_id == span.span_context.span_id()
                && e.trace_id == span.span_context.trace_id()),
        "{:?}",
        series.exemplars
    );
    assert_exemplars_point_at_exported(
        telemetry.metrics(),
        DB_CLIENT_OPERATION_DURATION,
        &telemetry.spans(),
    );
}

#[tokio::test]
async fn dropped_pipeline_is_measured_as_cancelled() {
    let telemetry = TestTelemetry::new();
    let client = client();
    let mut con = multiplexed(&telemetry, &client, QueryTextMode::Off).await;
    let prefix = unique_prefix("cancel-pipe");
    let (a, b) = (format!("{prefix}a"), format!("{prefix}b"));

    let mut pipe = redis::pipe();
    pipe.blpop(&a, 1.0).blpop(&b, 1.0);
    let timed_out = tokio::time::timeout(
        Duration::from_millis(50),
        pipe.query_async::<redis::Value>(&mut con),
    )
    .await;
    assert!(timed_out.is_err());

    let span = telemetry.span("PIPELINE BLPOP");
    assert_attr(&span, ERROR_TYPE, "cancelled");
    let series = series_with(
        &duration_metric(&telemetry),
        &[
            KeyValue::new(DB_OPERATION_NAME, "PIPELINE BLPOP"),
            KeyValue::new(ERROR_TYPE, "cancelled"),
        ],
    );
    assert_eq!(series.count, 1);
    assert!(
        series
            .exemplars
            .iter()
            .any(|e| e.span_id == span.span_context.span_id()),
        "{:?}",
        series.exemplars
    );
}

#[tokio::test]
async fn unsampled_calls_still_measure_duration() {
    let telemetry = TestTelemetry::with_sampler(Sampler::AlwaysOff);
    let client = client();
    let mut con = multiplexed(&telemetry, &client, QueryTextMode::Obfuscated).await;
    let key = format!("{}k", unique_prefix("unsampled"));

    let _: Option<String> = con.get(&key).await.unwrap();

    assert!(telemetry.spans().is_empty());
    let series = series_with(
        &duration_metric(&telemetry),
        &[KeyValue::new(DB_OPERATION_NAME, "GET")],
    );
    assert_eq!(series.count, 1);
    // Unsampled calls leave no exemplar pointing at a span nobody exported.
    assert!(
        series.exemplars.iter().all(|e| !e.has_span()),
        "{:?}",
        series.exemplars
    );
}

#[test]
fn sync_connection_commands_pipeline_and_transaction() {
    let telemetry = TestTelemetry::new();
    let client = client();
    let instrumentation = RedisInstrumentation::builder()
        .with_tracer_provider(telemetry.tracer_provider().clone())
        .with_metrics(telemetry.metrics().clone())
        .with_client(&client)
        .with_query_text(QueryTextMode::Obfuscated)
        .build();
    let mut con = instrumentation.wrap(client.get_connection().unwrap());
    let prefix = unique_prefix("sync");
    let (a, b) = (format!("{prefix}a"), format!("{prefix}b"));

    let () = con.set(&a, 10).unwrap();
    let n: i64 = con.get(&a).unwrap();
    assert_eq!(n, 10);
    let (x,): (i64,) = redis::pipe()
        .incr(&a, 1)
        .get(&b)
        .ignore()
        .query(&mut con)
        .unwrap();
    assert_eq!(x, 11);
    let (y, z): (i64, i64) = redis::pipe()
        .atomic()
        .incr(&a, 1)
        .incr(&b, 1)
        .query(&mut con)
        .unwrap();
    assert_eq!((y, z), (12, 1));
    // `redis::transaction` (WATCH, MULTI/EXEC, retry) works through the wrapper.
    let (w,): (i64,) = redis::transaction(&mut con, &[&a], |con, pipe| {
        let current: i64 = con.get(&a)?;
        pipe.set(&a, current * 2).ignore().get(&a).query(con)
    })
    .unwrap();
    assert_eq!(w, 24);
    let error = con.lpush::<_, _, i64>(&a, 1).unwrap_err();
    assert_eq!(error.code(), Some("WRONGTYPE"));
    let _: i64 = con.del(&[&a, &b]).unwrap();

    let pipeline = telemetry.span("PIPELINE");
    assert_redis_client_span(&pipeline, "PIPELINE");
    assert_attr(&pipeline, DB_OPERATION_BATCH_SIZE, 2_i64);
    assert_attr(&pipeline, DB_QUERY_TEXT, "INCRBY ? ?; GET ?");
    let same = telemetry.span("MULTI INCRBY");
    assert_redis_client_span(&same, "MULTI INCRBY");
    assert_attr(&same, DB_OPERATION_BATCH_SIZE, 2_i64);
    assert_attr(&same, DB_QUERY_TEXT, "MULTI; INCRBY ? ?; INCRBY ? ?; EXEC");
    let mixed = telemetry.span("MULTI");
    assert_redis_client_span(&mixed, "MULTI");
    assert_attr(&mixed, DB_OPERATION_BATCH_SIZE, 2_i64);
    assert_attr(&mixed, DB_QUERY_TEXT, "MULTI; SET ? ?; GET ?; EXEC");
    assert_eq!(telemetry.spans_named("WATCH").len(), 1);
    assert_eq!(telemetry.spans_named("UNWATCH").len(), 1);
    let lpush = telemetry.span("LPUSH");
    assert_attr(&lpush, ERROR_TYPE, "WRONGTYPE");
    assert_redis_client_span(&telemetry.span("SET"), "SET");
    let gets = telemetry.spans_named("GET");
    assert_eq!(gets.len(), 2);
    assert_eq!(attr(&gets[0], DB_QUERY_TEXT), Some(&Value::from("GET ?")));
}

/// The spans `telemetry` exported, in start order, as (name, `db.namespace`).
fn names_and_namespaces(telemetry: &TestTelemetry) -> Vec<(String, Option<String>)> {
    let mut spans = telemetry.spans();
    spans.sort_by_key(|span| span.start_time);
    spans
        .iter()
        .map(|span| {
            (
                span.name.to_string(),
                attr(span, DB_NAMESPACE).map(|v| v.as_str().into_owned()),
            )
        })
        .collect()
}

fn at(name: &str, namespace: Option<&str>) -> (String, Option<String>) {
    (name.to_owned(), namespace.map(str::to_owned))
}

/// `db.namespace` follows a `SELECT` sent through the wrapper, on the wrapper and on its clones
/// (they share the server connection); a refused `SELECT` changes nothing; a `SELECT` inside a
/// pipeline counts once the pipeline succeeded.
#[tokio::test]
async fn select_through_a_multiplexed_wrapper_sets_db_namespace() {
    let telemetry = TestTelemetry::new();
    let client = client();
    let mut con = multiplexed(&telemetry, &client, QueryTextMode::Off).await;
    let mut clone = con.clone();
    let key = format!("{}k", unique_prefix("select"));

    let () = redis::cmd("SELECT")
        .arg(3)
        .query_async(&mut con)
        .await
        .unwrap();
    let () = clone.set(&key, "in three").await.unwrap();
    let refused = redis::cmd("SELECT")
        .arg(100_000)
        .query_async::<()>(&mut con)
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Some("ERR"));
    let value: String = con.get(&key).await.unwrap();
    assert_eq!(value, "in three");
    // The key really is in database 3.
    let mut direct = redis::Client::open("redis://127.0.0.1:6379/3")
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let there: Option<String> = direct.get(&key).await.unwrap();
    assert_eq!(there.as_deref(), Some("in three"));
    let () = redis::pipe()
        .del(&key)
        .ignore()
        .cmd("SELECT")
        .arg(5)
        .ignore()
        .query_async(&mut clone)
        .await
        .unwrap();
    let gone: Option<String> = con.get(&key).await.unwrap();
    assert_eq!(gone, None);
    let () = redis::cmd("select")
        .arg(0)
        .query_async(&mut clone)
        .await
        .unwrap();
    let _: bool = con.exists(&key).await.unwrap();

    assert_eq!(
        names_and_namespaces(&telemetry),
        [
            at("SELECT", Some("0")),
            at("SET", Some("3")),
            at("SELECT", Some("3")),
            at("GET", Some("3")),
            at("PIPELINE", Some("3")),
            at("GET", Some("5")),
            at("SELECT", Some("5")),
            at("EXISTS", Some("0")),
        ]
    );
    let metric = duration_metric(&telemetry);
    let set = series_with(
        &metric,
        &[
            KeyValue::new(DB_OPERATION_NAME, "SET"),
            KeyValue::new(DB_NAMESPACE, "3"),
        ],
    );
    assert_eq!(set.count, 1);
    let gets: Vec<_> = metric
        .series_matching(&[KeyValue::new(DB_OPERATION_NAME, "GET")])
        .map(|s| s.attribute(DB_NAMESPACE).cloned())
        .collect();
    assert_eq!(gets.len(), 2, "one GET series per database");
    assert!(gets.contains(&Some(Value::from("3"))) && gets.contains(&Some(Value::from("5"))));
}

/// A `SELECT` whose outcome is unknown (its future dropped before the reply) leaves
/// `db.namespace` out until the next `SELECT` settles it.
#[tokio::test]
async fn a_select_with_an_unknown_outcome_leaves_db_namespace_out() {
    let telemetry = TestTelemetry::new();
    let client = client();
    let mut con = multiplexed(&telemetry, &client, QueryTextMode::Off).await;
    let key = format!("{}list", unique_prefix("select-unknown"));

    // The pipeline blocks in BLPOP for 0.1 s; the caller gives up after 20 ms. The PING
    // that follows waits behind the BLPOP on the shared connection: 0.1 s stays well within
    // the connection's response timeout.
    let mut pipe = redis::pipe();
    pipe.cmd("SELECT").arg(3).ignore().blpop(&key, 0.1);
    let timed_out = tokio::time::timeout(
        Duration::from_millis(20),
        pipe.query_async::<Option<(String, String)>>(&mut con),
    )
    .await;
    assert!(timed_out.is_err());
    let _: String = redis::cmd("PING").query_async(&mut con).await.unwrap();
    let () = redis::cmd("SELECT")
        .arg(0)
        .query_async(&mut con)
        .await
        .unwrap();
    let _: String = redis::cmd("PING").query_async(&mut con).await.unwrap();

    assert_eq!(
        names_and_namespaces(&telemetry),
        [
            at("PIPELINE", Some("0")),
            at("PING", None),
            at("SELECT", None),
            at("PING", Some("0")),
        ]
    );
    let pings: Vec<_> = duration_metric(&telemetry)
        .series_matching(&[KeyValue::new(DB_OPERATION_NAME, "PING")])
        .map(|s| s.attribute(DB_NAMESPACE).cloned())
        .collect();
    assert_eq!(pings.len(), 2);
    assert!(pings.contains(&None) && pings.contains(&Some(Value::from("0"))));
}

/// A connection manager reconnects (unseen by the wrapper) to the database it was configured
/// with: after a `SELECT` of another database `db.namespace` is left out rather than guessed,
/// and a `SELECT` of the configured one brings it back, for every clone.
#[tokio::test]
async fn connection_manager_select_of_another_database_leaves_db_namespace_out() {
    let telemetry = TestTelemetry::new();
    let client = client();
    let mut con = managed(&telemetry, &client).await;
    let mut clone = con.clone();
    let key = format!("{}k", unique_prefix("manager-select"));

    let () = redis::cmd("SELECT")
        .arg(2)
        .query_async(&mut con)
        .await
        .unwrap();
    let () = clone.set(&key, "x").await.unwrap();
    let _: i64 = con.del(&key).await.unwrap();
    let () = redis::cmd("SELECT")
        .arg(0)
        .query_async(&mut con)
        .await
        .unwrap();
    let _: bool = clone.exists(&key).await.unwrap();

    assert_eq!(
        names_and_namespaces(&telemetry),
        [
            at("SELECT", Some("0")),
            at("SET", None),
            at("DEL", None),
            at("SELECT", None),
            at("EXISTS", Some("0")),
        ]
    );
    let set: Vec<_> = duration_metric(&telemetry)
        .series_matching(&[KeyValue::new(DB_OPERATION_NAME, "SET")])
        .map(|s| s.attribute(DB_NAMESPACE).cloned())
        .collect();
    assert_eq!(set, [None]);
}

/// A sync connection follows `SELECT` (single, in a pipeline); a wrapped `redis::Client`, which
/// opens a connection per call, does not carry a `SELECT` over, and neither does its
/// `db.namespace`.
#[test]
fn sync_connection_follows_select_and_a_client_keeps_its_database() {
    let telemetry = TestTelemetry::new();
    let client = client();
    let instrumentation = RedisInstrumentation::builder()
        .with_tracer_provider(telemetry.tracer_provider().clone())
        .with_metrics(telemetry.metrics().clone())
        .with_client(&client)
        .build();
    let mut con = instrumentation.wrap(client.get_connection().unwrap());
    let key = format!("{}k", unique_prefix("sync-select"));

    let () = redis::cmd("SELECT").arg(4).query(&mut con).unwrap();
    let () = con.set(&key, "in four").unwrap();
    let (value,): (Option<String>,) = redis::pipe()
        .get(&key)
        .cmd("SELECT")
        .arg(6)
        .ignore()
        .query(&mut con)
        .unwrap();
    assert_eq!(value.as_deref(), Some("in four"));
    let _: bool = con.exists(&key).unwrap();
    let (deleted,): (i64,) = redis::pipe()
        .atomic()
        .cmd("SELECT")
        .arg(4)
        .ignore()
        .del(&key)
        .query(&mut con)
        .unwrap();
    assert_eq!(deleted, 1);
    let _: bool = con.exists(&key).unwrap();
    assert_eq!(
        names_and_namespaces(&telemetry),
        [
            at("SELECT", Some("0")),
            at("SET", Some("4")),
            at("PIPELINE", Some("4")),
            at("EXISTS", Some("6")),
            at("MULTI", Some("6")),
            at("EXISTS", Some("4")),
        ]
    );

    let per_call = TestTelemetry::new();
    let mut client_con = RedisInstrumentation::builder()
        .with_tracer_provider(per_call.tracer_provider().clone())
        .with_metrics(per_call.metrics().clone())
        .build()
        .wrap(client.clone());
    let () = redis::cmd("SELECT").arg(7).query(&mut client_con).unwrap();
    let () = client_con.set(&key, "in zero").unwrap();
    // The key landed in database 0: the SELECT went to a connection closed since.
    let mut plain = client.get_connection().unwrap();
    let there: Option<String> = plain.get(&key).unwrap();
    assert_eq!(there.as_deref(), Some("in zero"));
    let _: i64 = plain.del(&key).unwrap();
    assert_eq!(
        names_and_namespaces(&per_call),
        [at("SELECT", Some("0")), at("SET", Some("0"))]
    );
}

/// A `SELECT` that may not have run leaves `db.namespace` out: one inside a transaction a
/// `WATCH` aborted (its `EXEC` answers nil), and one only `QUEUED` inside a `MULTI` sent by
/// hand, then discarded. A transaction that ran applies its `SELECT`.
#[tokio::test]
async fn a_select_inside_an_aborted_transaction_leaves_db_namespace_out() {
    let telemetry = TestTelemetry::new();
    let client = client();
    let mut con = multiplexed(&telemetry, &client, QueryTextMode::Off).await;
    let mut other = client.get_multiplexed_async_connection().await.unwrap();
    let key = format!("{}k", unique_prefix("select-tx"));

    // WATCH, then the key changes elsewhere: the transaction is aborted.
    let () = redis::cmd("WATCH")
        .arg(&key)
        .query_async(&mut con)
        .await
        .unwrap();
    let () = redis::cmd("SET")
        .arg(&key)
        .arg("changed")
        .query_async(&mut other)
        .await
        .unwrap();
    let aborted: Option<()> = redis::pipe()
        .atomic()
        .cmd("SELECT")
        .arg(3)
        .ignore()
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(aborted, None);
    let _: Option<String> = con.get(&key).await.unwrap();
    let () = redis::cmd("SELECT")
        .arg(0)
        .query_async(&mut con)
        .await
        .unwrap();
    let () = redis::cmd("MULTI").query_async(&mut con).await.unwrap();
    let queued: String = redis::cmd("SELECT")
        .arg(3)
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(queued, "QUEUED");
    let () = redis::cmd("DISCARD").query_async(&mut con).await.unwrap();
    let _: Option<String> = con.get(&key).await.unwrap();

    let () = redis::cmd("DEL")
        .arg(&key)
        .query_async(&mut other)
        .await
        .unwrap();

    assert_eq!(
        names_and_namespaces(&telemetry),
        [
            at("WATCH", Some("0")),
            at("MULTI SELECT", Some("0")),
            at("GET", None),
            at("SELECT", None),
            at("MULTI", Some("0")),
            at("SELECT", Some("0")),
            at("DISCARD", None),
            at("GET", None),
        ]
    );
}

/// A `SELECT` that a hand-sent `MULTI` inside a plain pipeline only queued (then discarded,
/// or refused by `EXEC`) leaves `db.namespace` out instead of claiming its database.
#[tokio::test]
async fn a_select_queued_inside_a_plain_pipeline_leaves_db_namespace_out() {
    let telemetry = TestTelemetry::new();
    let client = client();
    let mut con = multiplexed(&telemetry, &client, QueryTextMode::Off).await;

    let () = redis::pipe()
        .cmd("MULTI")
        .ignore()
        .cmd("SELECT")
        .arg(3)
        .ignore()
        .cmd("DISCARD")
        .ignore()
        .query_async(&mut con)
        .await
        .unwrap();
    let info: String = redis::cmd("CLIENT")
        .arg("INFO")
        .query_async(&mut con)
        .await
        .unwrap();
    assert!(info.contains(" db=0 "), "{info}");
    // Back to a known database, then a SELECT that EXEC refuses.
    let () = redis::cmd("SELECT")
        .arg(0)
        .query_async(&mut con)
        .await
        .unwrap();
    let refused = redis::pipe()
        .cmd("MULTI")
        .cmd("SELECT")
        .arg(100_000)
        .cmd("EXEC")
        .query_async::<redis::Value>(&mut con)
        .await;
    assert!(refused.is_err(), "{refused:?}");
    let _: String = redis::cmd("CLIENT")
        .arg("INFO")
        .query_async(&mut con)
        .await
        .unwrap();

    assert_eq!(
        names_and_namespaces(&telemetry),
        [
            at("PIPELINE", Some("0")),
            at("CLIENT INFO", None),
            at("SELECT", None),
            at("PIPELINE", Some("0")),
            at("CLIENT INFO", None),
        ]
    );
    let refused = telemetry.spans();
    let refused = refused
        .iter()
        .filter(|s| s.name == "PIPELINE")
        .max_by_key(|s| s.start_time)
        .unwrap();
    assert!(
        matches!(refused.status, Status::Error { .. }),
        "{refused:?}"
    );
}

/// Two `SELECT`s in flight at once on clones of one connection: which one the server ran
/// last is unknown, so `db.namespace` is left out after both.
#[tokio::test]
async fn concurrent_selects_on_clones_leave_db_namespace_out() {
    use std::future::Future as _;
    use std::task::Poll;

    let telemetry = TestTelemetry::new();
    let client = client();
    let mut con = multiplexed(&telemetry, &client, QueryTextMode::Off).await;
    let (mut a, mut b) = (con.clone(), con.clone());
    let (three, five) = (
        redis::cmd("SELECT").arg(3).clone(),
        redis::cmd("SELECT").arg(5).clone(),
    );
    let mut first = std::pin::pin!(three.query_async::<()>(&mut a));
    let mut second = std::pin::pin!(five.query_async::<()>(&mut b));
    // Both sent before either is answered.
    std::future::poll_fn(|cx| {
        let _ = first.as_mut().poll(cx);
        let _ = second.as_mut().poll(cx);
        Poll::Ready(())
    })
    .await;
    second.await.unwrap();
    first.await.unwrap();
    let info: String = redis::cmd("CLIENT")
        .arg("INFO")
        .query_async(&mut con)
        .await
        .unwrap();
    assert!(info.contains(" db=5 "), "{info}");
    let () = redis::cmd("SELECT")
        .arg(0)
        .query_async(&mut con)
        .await
        .unwrap();

    let names = names_and_namespaces(&telemetry);
    let info = names
        .iter()
        .find(|(name, _)| name == "CLIENT INFO")
        .unwrap();
    assert_eq!(info, &at("CLIENT INFO", None));
}

/// A connection type that spreads calls over two server connections (as a pool does).
struct TwoConnections {
    connections: [MultiplexedConnection; 2],
    next: usize,
}

impl redis::aio::ConnectionLike for TwoConnections {
    fn req_packed_command<'a>(
        &'a mut self,
        cmd: &'a redis::Cmd,
    ) -> redis::RedisFuture<'a, redis::Value> {
        let i = self.next;
        self.next = 1 - i;
        self.connections[i].req_packed_command(cmd)
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> redis::RedisFuture<'a, Vec<redis::Value>> {
        let i = self.next;
        self.next = 1 - i;
        self.connections[i].req_packed_commands(pipeline, offset, count)
    }

    fn get_db(&self) -> i64 {
        0
    }
}

/// On a connection type the wrapper does not know, a `SELECT` leaves `db.namespace` out for
/// good, even a `SELECT` of the configured database: it may have reached another server
/// connection than the one that switched.
#[tokio::test]
async fn a_select_on_an_unknown_connection_type_leaves_db_namespace_out() {
    let telemetry = TestTelemetry::new();
    let client = client();
    let pool = TwoConnections {
        connections: [
            client.get_multiplexed_async_connection().await.unwrap(),
            client.get_multiplexed_async_connection().await.unwrap(),
        ],
        next: 0,
    };
    let mut con = Builder::from(pool)
        .with_tracer_provider(telemetry.tracer_provider().clone())
        .with_metrics(telemetry.metrics().clone())
        .build();
    let _: String = redis::cmd("PING").query_async(&mut con).await.unwrap(); // first
    let () = redis::cmd("SELECT")
        .arg(3)
        .query_async(&mut con)
        .await
        .unwrap(); // second connection
    let () = redis::cmd("SELECT")
        .arg(0)
        .query_async(&mut con)
        .await
        .unwrap(); // first
    let info: String = redis::cmd("CLIENT")
        .arg("INFO")
        .query_async(&mut con)
        .await
        .unwrap(); // second: still in database 3
    assert!(info.contains(" db=3 "), "{info}");

    assert_eq!(
        names_and_namespaces(&telemetry),
        [
            at("PING", Some("0")),
            at("SELECT", Some("0")),
            at("SELECT", None),
            at("CLIENT INFO", None),
        ]
    );
}

/// A single command whose reply holds an error inside (an `EXEC` sent by hand) is an error,
/// as redis-rs returns it to the caller.
#[tokio::test]
async fn an_error_inside_a_single_commands_reply_marks_the_span() {
    let telemetry = TestTelemetry::new();
    let client = client();
    let mut con = multiplexed(&telemetry, &client, QueryTextMode::Off).await;
    let key = format!("{}string", unique_prefix("nested-error"));
    let () = con.set(&key, "text").await.unwrap();

    let () = redis::cmd("MULTI").query_async(&mut con).await.unwrap();
    let _: String = redis::cmd("LPUSH")
        .arg(&key)
        .arg("x")
        .query_async(&mut con)
        .await
        .unwrap();
    let error = redis::cmd("EXEC")
        .query_async::<redis::Value>(&mut con)
        .await
        .unwrap_err();
    assert_eq!(error.code(), Some("WRONGTYPE"));
    let _: i64 = con.del(&key).await.unwrap();

    let exec = telemetry.span("EXEC");
    assert!(matches!(exec.status, Status::Error { .. }), "{exec:?}");
    assert_attr(&exec, ERROR_TYPE, "WRONGTYPE");
    let series = series_with(
        &duration_metric(&telemetry),
        &[
            KeyValue::new(DB_OPERATION_NAME, "EXEC"),
            KeyValue::new(ERROR_TYPE, "WRONGTYPE"),
        ],
    );
    assert_eq!(series.count, 1);
}

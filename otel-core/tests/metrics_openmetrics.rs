//! OpenMetrics / Prometheus exposition, parsed back by a strict parser written from the
//! OpenMetrics 1.0 text-format ABNF and checked.
#![allow(clippy::unwrap_used, missing_docs)]

use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::Resource;
use opentelemetry_semantic_conventions::attribute::{
    HTTP_REQUEST_METHOD, HTTP_ROUTE, SERVICE_NAME, SERVICE_VERSION,
};
use opentelemetry_semantic_conventions::metric::{
    DB_CLIENT_CONNECTION_COUNT, HTTP_SERVER_ACTIVE_REQUESTS, HTTP_SERVER_REQUEST_DURATION,
};
use otel_core::metrics::openmetrics::{
    Format, MetricsService, OPENMETRICS_CONTENT_TYPE, PROMETHEUS_CONTENT_TYPE, render,
};
use otel_core::metrics::{ExemplarFilter, Metrics, MetricsConfig};
use proptest::prelude::*;
use tower_service::Service;

// ---------------------------------------------------------------------------------------------
// A strict OpenMetrics 1.0 text parser (test-only).
// ---------------------------------------------------------------------------------------------

type Labels = Vec<(String, String)>;

#[derive(Debug, Clone, PartialEq)]
struct ParsedExemplar {
    labels: Vec<(String, String)>,
    value: f64,
    timestamp: Option<f64>,
}

#[derive(Debug, Clone, PartialEq)]
struct Sample {
    name: String,
    labels: Vec<(String, String)>,
    value: f64,
    exemplar: Option<ParsedExemplar>,
}

impl Sample {
    fn label(&self, name: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Debug, Default, Clone)]
struct Family {
    name: String,
    kind: String,
    unit: Option<String>,
    help: Option<String>,
    samples: Vec<Sample>,
}

#[derive(Debug)]
struct Exposition {
    families: Vec<Family>,
}

impl Exposition {
    fn family(&self, name: &str) -> &Family {
        self.families
            .iter()
            .find(|f| f.name == name)
            .unwrap_or_else(|| panic!("no family {name}"))
    }
}

fn is_metric_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

fn is_label_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn parse_number(s: &str) -> Result<f64, String> {
    match s {
        "+Inf" | "Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        "NaN" => Ok(f64::NAN),
        _ => {
            if s.is_empty()
                || !s
                    .chars()
                    .all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '+' | '-'))
            {
                return Err(format!("bad number {s:?}"));
            }
            s.parse::<f64>()
                .map_err(|e| format!("bad number {s:?}: {e}"))
        }
    }
}

/// Parses `{name="value",…}` at the start of `s`; returns the labels and the rest.
fn parse_labels(s: &str) -> Result<(Labels, &str), String> {
    let mut rest = s.strip_prefix('{').ok_or("expected '{'")?;
    let mut labels = Vec::new();
    if let Some(r) = rest.strip_prefix('}') {
        return Ok((labels, r));
    }
    loop {
        let eq = rest.find('=').ok_or("label without '='")?;
        let name = &rest[..eq];
        if !is_label_name(name) {
            return Err(format!("bad label name {name:?}"));
        }
        rest = rest[eq + 1..]
            .strip_prefix('"')
            .ok_or("label value not quoted")?;
        let mut value = String::new();
        let mut chars = rest.char_indices();
        let end = loop {
            let (i, c) = chars.next().ok_or("unterminated label value")?;
            match c {
                '\\' => match chars.next().ok_or("dangling escape")?.1 {
                    '\\' => value.push('\\'),
                    '"' => value.push('"'),
                    'n' => value.push('\n'),
                    other => return Err(format!("bad escape \\{other}")),
                },
                '"' => break i,
                '\n' => return Err("raw newline in label value".into()),
                c => value.push(c),
            }
        };
        if labels.iter().any(|(n, _)| n == name) {
            return Err(format!("duplicate label {name}"));
        }
        labels.push((name.to_owned(), value));
        rest = &rest[end + 1..];
        if let Some(r) = rest.strip_prefix(',') {
            rest = r;
        } else if let Some(r) = rest.strip_prefix('}') {
            return Ok((labels, r));
        } else {
            return Err(format!("expected ',' or '}}' at {rest:?}"));
        }
    }
}

fn unescape_help(s: &str) -> Result<String, String> {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('\\') => out.push('\\'),
                Some('n') => out.push('\n'),
                Some('"') => out.push('"'),
                other => return Err(format!("bad HELP escape {other:?}")),
            }
        } else {
            out.push(c);
        }
    }
    Ok(out)
}

fn parse_openmetrics(text: &str) -> Result<Exposition, String> {
    if !text.ends_with("# EOF\n") {
        return Err("does not end with '# EOF\\n'".into());
    }
    let body = &text[..text.len() - "# EOF\n".len()];
    let mut families: Vec<Family> = Vec::new();
    for line in body.split_terminator('\n') {
        if line.is_empty() {
            return Err("empty line".into());
        }
        if let Some(meta) = line.strip_prefix("# ") {
            let mut parts = meta.splitn(3, ' ');
            let keyword = parts.next().unwrap_or("");
            let name = parts.next().ok_or("metadata without name")?;
            let value = parts.next().unwrap_or("");
            if !is_metric_name(name) {
                return Err(format!("bad family name {name:?}"));
            }
            if families.last().is_none_or(|f| f.name != name) {
                if families.iter().any(|f| f.name == name) {
                    return Err(format!("family {name} declared twice"));
                }
                if families
                    .last()
                    .is_some_and(|f| f.samples.is_empty() && f.kind.is_empty())
                {
                    return Err("metadata of a family without TYPE".into());
                }
                families.push(Family {
                    name: name.to_owned(),
                    ..Family::default()
                });
            }
            let family = families.last_mut().unwrap();
            if !family.samples.is_empty() {
                return Err(format!("metadata for {name} after its samples"));
            }
            match keyword {
                "TYPE" => {
                    if !matches!(
                        value,
                        "counter"
                            | "gauge"
                            | "histogram"
                            | "info"
                            | "summary"
                            | "unknown"
                            | "gaugehistogram"
                            | "stateset"
                    ) {
                        return Err(format!("bad type {value}"));
                    }
                    family.kind = value.to_owned();
                }
                "UNIT" => {
                    if !name.ends_with(&format!("_{value}")) {
                        return Err(format!("family {name} does not end with its unit {value}"));
                    }
                    family.unit = Some(value.to_owned());
                }
                "HELP" => family.help = Some(unescape_help(value)?),
                other => return Err(format!("unknown metadata {other}")),
            }
            continue;
        }
        if line.starts_with('#') {
            return Err(format!("stray comment {line:?}"));
        }
        let family = families.last_mut().ok_or("sample before any family")?;
        let name_end = line.find(['{', ' ']).ok_or("sample without value")?;
        let name = &line[..name_end];
        let allowed: &[&str] = match family.kind.as_str() {
            "histogram" => &["_bucket", "_count", "_sum", "_created"],
            "counter" => &["_total", "_created"],
            "info" => &["_info"],
            _ => &[""],
        };
        if !allowed
            .iter()
            .any(|s| name == format!("{}{s}", family.name))
        {
            return Err(format!(
                "sample {name} does not belong to family {}",
                family.name
            ));
        }
        let mut rest = &line[name_end..];
        let mut labels = Vec::new();
        if rest.starts_with('{') {
            let (l, r) = parse_labels(rest)?;
            labels = l;
            rest = r;
        }
        let rest = rest.strip_prefix(' ').ok_or("no space before value")?;
        let (point, exemplar_text) = match rest.split_once(" # ") {
            Some((p, e)) => (p, Some(e)),
            None => (rest, None),
        };
        let mut fields = point.split(' ');
        let value = parse_number(fields.next().ok_or("no value")?)?;
        if let Some(ts) = fields.next() {
            parse_number(ts)?;
        }
        if fields.next().is_some() {
            return Err(format!("trailing fields in {line:?}"));
        }
        let exemplar = match exemplar_text {
            None => None,
            Some(text) => {
                if !(name.ends_with("_bucket") || name.ends_with("_total")) {
                    return Err(format!("exemplar on {name}"));
                }
                let (labels, rest) = parse_labels(text)?;
                let chars: usize = labels
                    .iter()
                    .map(|(n, v)| n.chars().count() + v.chars().count())
                    .sum();
                if chars > 128 {
                    return Err(format!("exemplar labels too long ({chars})"));
                }
                let rest = rest.strip_prefix(' ').ok_or("exemplar without value")?;
                let mut parts = rest.split(' ');
                let value = parse_number(parts.next().ok_or("exemplar without value")?)?;
                let timestamp = parts.next().map(parse_number).transpose()?;
                if parts.next().is_some() {
                    return Err("trailing exemplar fields".into());
                }
                Some(ParsedExemplar {
                    labels,
                    value,
                    timestamp,
                })
            }
        };
        family.samples.push(Sample {
            name: name.to_owned(),
            labels,
            value,
            exemplar,
        });
    }
    for family in &families {
        if family.kind.is_empty() {
            return Err(format!("family {} has no TYPE", family.name));
        }
        if family.kind == "histogram" {
            check_histogram(family)?;
        }
    }
    Ok(Exposition { families })
}

/// Buckets ascending with `+Inf` last, cumulative, `+Inf` = `_count`, exemplars inside their
/// bucket.
fn check_histogram(family: &Family) -> Result<(), String> {
    let mut groups: Vec<(Labels, Vec<&Sample>)> = Vec::new();
    for s in &family.samples {
        let key: Vec<_> = s
            .labels
            .iter()
            .filter(|(n, _)| n != "le")
            .cloned()
            .collect();
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, v)) => v.push(s),
            None => groups.push((key, vec![s])),
        }
    }
    for (key, samples) in groups {
        let buckets: Vec<&&Sample> = samples
            .iter()
            .filter(|s| s.name.ends_with("_bucket"))
            .collect();
        let count = samples
            .iter()
            .find(|s| s.name.ends_with("_count"))
            .ok_or(format!("{key:?}: no _count"))?;
        // `_sum` is required, except with negative buckets, where it is forbidden.
        let negative = buckets.iter().any(|b| {
            b.labels
                .iter()
                .any(|(k, v)| k == "le" && v.parse::<f64>().is_ok_and(|le| le < 0.0))
        });
        let sum = samples.iter().find(|s| s.name.ends_with("_sum"));
        match (negative, sum) {
            (false, None) => return Err(format!("{key:?}: no _sum")),
            (true, Some(_)) => return Err(format!("{key:?}: _sum with negative buckets")),
            _ => {}
        }
        let mut previous_le = f64::NEG_INFINITY;
        let mut previous_count = 0.0;
        for b in &buckets {
            let le = parse_number(b.label("le").ok_or("bucket without le")?)?;
            if le <= previous_le {
                return Err(format!("le not increasing at {le}"));
            }
            if b.value < previous_count {
                return Err("bucket counts not cumulative".into());
            }
            if let Some(e) = &b.exemplar
                && !(e.value <= le && e.value > previous_le)
            {
                return Err(format!(
                    "exemplar {} outside bucket ({previous_le}, {le}]",
                    e.value
                ));
            }
            previous_le = le;
            previous_count = b.value;
        }
        if previous_le != f64::INFINITY {
            return Err("no +Inf bucket".into());
        }
        if previous_count != count.value {
            return Err("+Inf bucket differs from _count".into());
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Tests.
// ---------------------------------------------------------------------------------------------

fn sampled(trace: u8, span: u8) -> Context {
    Context::new().with_remote_span_context(SpanContext::new(
        TraceId::from_bytes([trace; 16]),
        SpanId::from_bytes([span; 8]),
        TraceFlags::SAMPLED,
        true,
        TraceState::default(),
    ))
}

fn resource() -> Resource {
    Resource::builder_empty()
        .with_attributes([
            KeyValue::new(SERVICE_NAME, "gateway"),
            KeyValue::new(SERVICE_VERSION, "1.2.3"),
            KeyValue::new("deployment.note", "line1\nline2 \"quoted\" back\\slash"),
        ])
        .build()
}

fn populated() -> Metrics {
    let metrics = Metrics::new(MetricsConfig::default().with_resource(resource()));
    let duration = metrics
        .f64_histogram(HTTP_SERVER_REQUEST_DURATION)
        .with_unit("s")
        .with_description("Duration of HTTP server requests.")
        .build();
    let get = [
        KeyValue::new(HTTP_REQUEST_METHOD, "GET"),
        KeyValue::new(HTTP_ROUTE, "/accounts/{id}"),
    ];
    duration.record_with_context(0.004, &get, &sampled(0xab, 0x01));
    duration.record_with_context(0.3, &get, &sampled(0xab, 0x02));
    duration.record_with_context(12.0, &get, &sampled(0xcd, 0x03));
    duration.record(0.01, &get); // no span: no exemplar
    let post = [
        KeyValue::new(HTTP_REQUEST_METHOD, "POST"),
        KeyValue::new(HTTP_ROUTE, "/say \"hi\"\\n\new"),
    ];
    duration.record(0.2, &post);
    metrics
        .i64_up_down_counter(HTTP_SERVER_ACTIVE_REQUESTS)
        .with_unit("{request}")
        .with_description("Number of active HTTP server requests.")
        .build()
        .add(3, &[KeyValue::new(HTTP_REQUEST_METHOD, "GET")]);
    metrics
        .i64_up_down_counter(DB_CLIENT_CONNECTION_COUNT)
        .with_unit("{connection}")
        .build()
        .add(-2, &[KeyValue::new("db.client.connection.state", "idle")]);
    metrics
        .u64_counter("app.bytes.sent")
        .with_unit("By")
        .with_description("Help with \\ backslash,\nnewline and \"quotes\".")
        .build()
        .add(1024, &[KeyValue::new("9.weird-key", "v")]);
    metrics
}

#[test]
fn openmetrics_parses_and_carries_exemplars() {
    let text = render(&populated(), Format::OpenMetrics);
    let exposition = parse_openmetrics(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert!(text.ends_with("\n# EOF\n"));
    assert_eq!(text.matches("# EOF").count(), 1);

    let h = exposition.family("http_server_request_duration_seconds");
    assert_eq!(h.kind, "histogram");
    assert_eq!(h.unit.as_deref(), Some("seconds"));
    assert_eq!(h.help.as_deref(), Some("Duration of HTTP server requests."));
    let get_buckets: Vec<&Sample> = h
        .samples
        .iter()
        .filter(|s| s.name.ends_with("_bucket") && s.label("http_request_method") == Some("GET"))
        .collect();
    assert_eq!(get_buckets.len(), 15);
    let le: Vec<&str> = get_buckets.iter().map(|s| s.label("le").unwrap()).collect();
    assert_eq!(
        le,
        [
            "0.005", "0.01", "0.025", "0.05", "0.075", "0.1", "0.25", "0.5", "0.75", "1.0", "2.5",
            "5.0", "7.5", "10.0", "+Inf"
        ]
    );
    let counts: Vec<f64> = get_buckets.iter().map(|s| s.value).collect();
    assert_eq!(
        counts,
        [
            1.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0, 3.0, 3.0, 3.0, 3.0, 3.0, 3.0, 3.0, 4.0
        ]
    );
    // Exemplars exactly on the buckets of sampled calls, well formed.
    let with_exemplar: Vec<(&str, &ParsedExemplar)> = get_buckets
        .iter()
        .filter_map(|s| s.exemplar.as_ref().map(|e| (s.label("le").unwrap(), e)))
        .collect();
    assert_eq!(with_exemplar.len(), 3);
    let expect = [
        (
            "0.005",
            0.004,
            "abababababababababababababababab",
            "0101010101010101",
        ),
        (
            "0.5",
            0.3,
            "abababababababababababababababab",
            "0202020202020202",
        ),
        (
            "+Inf",
            12.0,
            "cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd",
            "0303030303030303",
        ),
    ];
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    for ((le, e), (want_le, value, trace, span)) in with_exemplar.iter().zip(expect) {
        assert_eq!(*le, want_le);
        assert_eq!(e.value, value);
        assert_eq!(
            e.labels,
            vec![
                ("trace_id".to_owned(), trace.to_owned()),
                ("span_id".to_owned(), span.to_owned())
            ]
        );
        let ts = e.timestamp.unwrap();
        assert!(ts <= now + 1.0 && ts > now - 60.0, "timestamp {ts}");
    }
    let count = h
        .samples
        .iter()
        .find(|s| s.name.ends_with("_count") && s.label("http_request_method") == Some("GET"))
        .unwrap();
    assert_eq!(count.value, 4.0);
    let sum = h
        .samples
        .iter()
        .find(|s| s.name.ends_with("_sum") && s.label("http_request_method") == Some("GET"))
        .unwrap();
    assert!((sum.value - 12.314).abs() < 1e-9);

    // Label escaping round-trips.
    let post = h
        .samples
        .iter()
        .find(|s| s.label("http_request_method") == Some("POST"))
        .unwrap();
    assert_eq!(post.label("http_route"), Some("/say \"hi\"\\n\new"));

    // Up-down counters are gauges without unit suffix for annotations.
    let active = exposition.family("http_server_active_requests");
    assert_eq!(active.kind, "gauge");
    assert_eq!(active.unit, None);
    assert_eq!(active.samples[0].value, 3.0);
    let pool = exposition.family("db_client_connection_count");
    assert_eq!(pool.samples[0].value, -2.0);
    assert_eq!(
        pool.samples[0].label("db_client_connection_state"),
        Some("idle")
    );

    // Counters: `_total`, unit suffix, HELP escaping, label name sanitising.
    let sent = exposition.family("app_bytes_sent_bytes");
    assert_eq!(sent.kind, "counter");
    assert_eq!(sent.unit.as_deref(), Some("bytes"));
    assert_eq!(
        sent.help.as_deref(),
        Some("Help with \\ backslash,\nnewline and \"quotes\".")
    );
    assert_eq!(sent.samples[0].name, "app_bytes_sent_bytes_total");
    assert_eq!(sent.samples[0].label("key_9_weird_key"), Some("v"));
    assert_eq!(sent.samples[0].value, 1024.0);

    // target_info carries the resource.
    let target = exposition.family("target");
    assert_eq!(target.kind, "info");
    let info = &target.samples[0];
    assert_eq!(info.name, "target_info");
    assert_eq!(info.value, 1.0);
    assert_eq!(info.label("service_name"), Some("gateway"));
    assert_eq!(info.label("service_version"), Some("1.2.3"));
    assert_eq!(
        info.label("deployment_note"),
        Some("line1\nline2 \"quoted\" back\\slash")
    );
}

#[test]
fn prometheus_text_format() {
    let text = render(&populated(), Format::Prometheus);
    assert!(!text.contains("# EOF"));
    assert!(!text.contains(" # {"), "no exemplars in the classic format");
    assert!(!text.contains("# UNIT"));
    assert!(text.contains("# TYPE http_server_request_duration_seconds histogram\n"));
    assert!(text.contains("# TYPE app_bytes_sent_bytes_total counter\n"));
    assert!(text.contains(
        "# HELP app_bytes_sent_bytes_total Help with \\\\ backslash,\\nnewline and \"quotes\".\n"
    ));
    assert!(text.contains("# TYPE target_info gauge\n"));
    assert!(text.contains("app_bytes_sent_bytes_total{key_9_weird_key=\"v\"} 1024\n"));
    assert!(text.contains(
        "http_server_request_duration_seconds_bucket{http_request_method=\"GET\",http_route=\"/accounts/{id}\",le=\"+Inf\"} 4\n"
    ));
    // Every non-comment line is `name{labels} value`.
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let (_, value) = line.rsplit_once(' ').unwrap();
        value.parse::<f64>().unwrap();
    }
}

#[test]
fn long_filtered_attributes_keep_the_exemplar_within_128_characters() {
    let metrics = Metrics::new(
        MetricsConfig::default()
            .with_cardinality_limit(1)
            .with_exemplar_filter(ExemplarFilter::AlwaysOn),
    );
    let h = metrics.f64_histogram("op.duration").with_unit("s").build();
    h.record_with_context(
        0.2,
        &[
            KeyValue::new("a", "x".repeat(40)),
            KeyValue::new("b", "y".repeat(40)),
        ],
        &sampled(1, 2),
    );
    let text = render(&metrics, Format::OpenMetrics);
    let exposition = parse_openmetrics(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let family = exposition.family("op_duration_seconds");
    let exemplar = family
        .samples
        .iter()
        .find_map(|s| s.exemplar.as_ref())
        .unwrap();
    // trace_id + span_id (63 chars) and the first attribute (41) fit; the second does not.
    let names: Vec<&str> = exemplar.labels.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["trace_id", "span_id", "a"]);
}

#[test]
fn service_negotiates_format_and_methods() {
    let mut service = MetricsService::new(populated());
    let call = |service: &mut MetricsService, method: &str, accept: Option<&str>| {
        let mut builder = http::Request::builder().method(method).uri("/metrics");
        if let Some(accept) = accept {
            builder = builder.header(http::header::ACCEPT, accept);
        }
        let request = builder.body(()).unwrap();
        futures_util::FutureExt::now_or_never(service.call(request))
            .unwrap()
            .unwrap()
    };
    let prometheus_accept = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
    let response = call(&mut service, "GET", Some(prometheus_accept));
    assert_eq!(response.status(), http::StatusCode::OK);
    assert_eq!(
        response.headers()[http::header::CONTENT_TYPE],
        OPENMETRICS_CONTENT_TYPE
    );
    parse_openmetrics(response.body()).unwrap();

    let response = call(&mut service, "GET", Some("text/plain; version=0.0.4"));
    assert_eq!(
        response.headers()[http::header::CONTENT_TYPE],
        PROMETHEUS_CONTENT_TYPE
    );
    assert!(!response.body().contains("# EOF"));

    let response = call(&mut service, "GET", None);
    assert_eq!(
        response.headers()[http::header::CONTENT_TYPE],
        OPENMETRICS_CONTENT_TYPE
    );

    let response = call(&mut service, "HEAD", None);
    assert_eq!(response.status(), http::StatusCode::OK);
    assert!(response.body().is_empty());

    let response = call(&mut service, "POST", None);
    assert_eq!(response.status(), http::StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(response.headers()[http::header::ALLOW], "GET, HEAD");

    // The body type is what axum and hyper accept.
    fn assert_body<B: http_body::Body<Data = bytes::Bytes> + Send + 'static>(_: &B) {}
    assert_body(response.body());
}

#[test]
fn empty_registry_is_just_eof() {
    let metrics =
        Metrics::new(MetricsConfig::default().with_resource(Resource::builder_empty().build()));
    assert_eq!(render(&metrics, Format::OpenMetrics), "# EOF\n");
    assert_eq!(render(&metrics, Format::Prometheus), "");
    assert_eq!(render(&Metrics::noop(), Format::OpenMetrics), "# EOF\n");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Any attribute key, attribute value and description survives rendering and parsing.
    #[test]
    fn arbitrary_text_round_trips(key in "[a-z.]{1,12}", value in any::<String>(), help in any::<String>()) {
        let metrics = Metrics::new(MetricsConfig::default().with_resource(Resource::builder_empty().build()));
        let name = "prop.counter";
        metrics.u64_counter(name).with_description(help.clone()).build().add(7, &[KeyValue::new(key.clone(), value.clone())]);
        let text = render(&metrics, Format::OpenMetrics);
        let exposition = parse_openmetrics(&text).map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
        let family = exposition.family("prop_counter");
        if !help.is_empty() {
            prop_assert_eq!(family.help.as_deref(), Some(help.as_str()));
        }
        let label = key.replace('.', "_");
        let label = if label.starts_with('_') { format!("key{label}") } else { label };
        prop_assert_eq!(family.samples[0].label(&label), Some(value.as_str()));
        prop_assert_eq!(family.samples[0].value, 7.0);
    }
}

/// A histogram with negative bucket bounds has no `_sum` (OpenMetrics), and the exposition
/// still parses.
#[test]
fn negative_bounds_leave_the_sum_out() {
    let metrics = Metrics::new(MetricsConfig::default());
    let h = metrics
        .f64_histogram("app.offset")
        .with_unit("s")
        .with_boundaries(vec![-1.0, 0.0, 1.0])
        .build();
    h.record(0.5, &[]);
    let text = render(&metrics, Format::OpenMetrics);
    assert!(text.contains("app_offset_seconds_count 1"), "{text}");
    assert!(!text.contains("app_offset_seconds_sum"), "{text}");
    parse_openmetrics(&text).unwrap();
    // The classic Prometheus format has no such rule.
    let text = render(&metrics, Format::Prometheus);
    assert!(text.contains("app_offset_seconds_sum 0.5"), "{text}");
}

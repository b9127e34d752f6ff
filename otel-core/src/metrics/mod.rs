//! Exemplar-tagged, HDR-backed metrics, exported over OTLP and as OpenMetrics text.
//!
//! The official Rust metrics SDK does not fill exemplars, so a latency spike on a dashboard
//! cannot lead to the trace behind it. The instruments here do: every histogram bucket keeps
//! the last measurement made inside a sampled span (its value, time, trace id and span id),
//! and both exporters carry it — OTLP data point exemplars and OpenMetrics
//! `# {trace_id="…",span_id="…"} value timestamp` on `_bucket` lines.
//!
//! ```
//! use opentelemetry::KeyValue;
//! use opentelemetry_semantic_conventions::metric::HTTP_SERVER_REQUEST_DURATION;
//! use otel_core::metrics::{Metrics, MetricsConfig, SnapshotExt};
//!
//! let metrics = Metrics::new(MetricsConfig::default());
//! let duration = metrics
//!     .f64_histogram(HTTP_SERVER_REQUEST_DURATION)
//!     .with_unit("s")
//!     .with_description("Duration of HTTP server requests.")
//!     .build();
//!
//! // On the request path (uses `opentelemetry::Context::current()` for the exemplar):
//! duration.record(0.031, &[KeyValue::new("http.request.method", "GET")]);
//!
//! // Locally: percentiles and the slowest recent call of a series.
//! let p = duration.percentiles(&[KeyValue::new("http.request.method", "GET")]);
//! assert_eq!(p.map(|p| p.count), Some(1));
//!
//! // For tests and reports: everything, as plain data.
//! let snapshot = metrics.snapshot();
//! assert_eq!(
//!     snapshot
//!         .find(HTTP_SERVER_REQUEST_DURATION)
//!         .map(|m| m.total_count()),
//!     Some(1)
//! );
//! ```
//!
//! # Instruments
//!
//! - [`Histogram`] (`f64`): per series explicit-bucket counts (default boundaries: the
//!   semantic-convention duration buckets [`DURATION_BOUNDARIES_SECONDS`] for unit `s`, the
//!   SDK default [`DEFAULT_BOUNDARIES`] otherwise; [`HistogramBuilder::with_boundaries`]
//!   overrides), count, sum, min, max, one exemplar per bucket, and an HDR histogram for
//!   p50/p90/p99/p99.9 ([`Histogram::percentiles`]).
//! - [`Counter`] (`u64`, monotonic) and [`UpDownCounter`] (`i64`), one atomic per series.
//!
//! # Exemplars
//!
//! The [`ExemplarFilter`] decides which measurements may become exemplars:
//! [`TraceBased`](ExemplarFilter::TraceBased) (default: only inside a sampled span, so every
//! exemplar points at a span the trace pipeline exports), `AlwaysOn`, `AlwaysOff`; set in
//! [`MetricsConfig`] or through `OTEL_METRICS_EXEMPLAR_FILTER`. Each bucket keeps the *last*
//! admitted measurement that fell into it; each series also keeps its slowest admitted call of
//! the recent window ([`Percentiles::slowest`]). Filtered attributes are the attributes of the
//! measurement not on its series: none, except in the overflow series, where the exemplar keeps
//! (up to 8 of) the attributes that were folded away.
//!
//! # Recording cost
//!
//! Recording takes no global lock and, once its series exists, does not allocate:
//!
//! 1. the attribute slice is hashed order-independently (each pair with a seeded
//!    folded-multiply hash, summed), without allocating;
//! 2. the series is found in a per-instrument open-addressing table of write-once slots, read
//!    with plain atomic loads (no lock, no reference counting) and compared pairwise with the
//!    attributes it was first recorded with (same order: no string comparison for shared
//!    `&'static str` keys); only the first record of a new attribute set takes the
//!    instrument's insertion mutex;
//! 3. a histogram series is split into *stripes* ([`MetricsConfig::stripes_per_series`],
//!    default 2), each a mutex over everything one record touches (bucket counts, count, sum,
//!    min, max, HDR counts, exemplar slots). A thread locks its own stripe (assigned
//!    round-robin per thread), or any free one; the lock is uncontended in the common case,
//!    and all counts are exact. Reading merges the stripes, each under its lock, so every view
//!    of a series is internally consistent (count = sum of buckets = HDR count);
//! 4. exemplar work (`SystemTime::now()` and a copy into the bucket slot) happens only for
//!    measurements the filter admits.
//!
//! Values that are negative, infinite or NaN are ignored and counted in
//! [`MetricSnapshot::dropped_measurements`].
//!
//! # Cardinality limit
//!
//! Each instrument holds at most [`MetricsConfig::cardinality_limit`] series (default 2000),
//! the overflow series included. Once `limit - 1` attribute sets exist, measurements with new
//! attribute sets are recorded into the series `otel.metric.overflow = true` (as the
//! OpenTelemetry SDK specification prescribes), without taking the insertion lock: memory does
//! not grow and nothing is lost from the totals.
//!
//! # Memory per series
//!
//! The HDR histogram tracks 1 µs … 1 h (values in microseconds for unit `s`, `ms`, `us`, `ns`,
//! `min`, `h`; as whole numbers of the unit otherwise) with 2 significant digits (every
//! percentile within 1 % of the true value). That takes 3328 counters, kept as `u32` (13 KiB)
//! and widened once to `u64` if a stripe ever records 2³² values. One histogram series with
//! the 14 default duration boundaries costs, per stripe:
//!
//! | part | bytes |
//! | --- | --- |
//! | HDR counters (3328 × `u32`) | 13 312 |
//! | bucket counters (15 × `u64`) | 120 |
//! | exemplar slots (15 × 64) | 960 |
//! | stripe itself, cache-line aligned: mutex, count, sum, min, max, HDR header (96), slowest-call slot (64) | 256 |
//! | **per stripe** | **14 648 (≈ 14.3 KiB)** |
//!
//! plus about 100 bytes for the series itself and its attributes (strings the caller owns are
//! copied once). With the default 2 stripes a histogram series costs ≈ 29 KiB, so an instrument
//! at the default cardinality limit (2000) tops out near 57 MiB; lower the limit or use one
//! stripe (`with_stripes_per_series(1)`, ≈ 14.5 KiB) for instruments with many series. A
//! counter or up-down counter series costs 128 bytes per stripe (one atomic on its own cache
//! lines) plus about 100: ≈ 360 bytes with 2 stripes. Each instrument's series table
//! reserves 16 bytes per slot, in 1 KiB chunks allocated as series arrive, for at most twice
//! the cardinality limit. A unit test keeps these figures in line with the code.
//!
//! # Export
//!
//! - [`otlp`]: [`to_otlp_request`](otlp::to_otlp_request) builds the
//!   `ExportMetricsServiceRequest` (types from `opentelemetry-proto`) with cumulative
//!   temporality and the registry's resource; [`OtlpMetricsExporter`]
//!   sends it over gRPC or HTTP/protobuf; [`PeriodicMetricsExporter`]
//!   does so every `OTEL_METRIC_EXPORT_INTERVAL` on its own thread.
//! - [`openmetrics`]: [`render`](openmetrics::render) writes OpenMetrics 1.0 text (or the
//!   classic Prometheus format), [`MetricsService`] serves it as a
//!   tower service choosing the format by `Accept`.
//!
//! # Names and units
//!
//! OpenMetrics / Prometheus names are derived from the OpenTelemetry ones
//! ([`openmetrics::family_name`], [`openmetrics::label_name`]):
//!
//! | OpenTelemetry | Prometheus |
//! | --- | --- |
//! | instrument name: runs of characters outside `[A-Za-z0-9:]` | one `_` (`http.server.request.duration` → `http_server_request_duration`); a leading digit gets a `_` prefix |
//! | unit `s`, `ms`, `us`, `ns`, `min`, `h`, `d` | suffix `_seconds`, `_milliseconds`, `_microseconds`, `_nanoseconds`, `_minutes`, `_hours`, `_days` |
//! | unit `By`, `KBy`, `MBy`, `GBy`, `TBy`, `KiBy`, `MiBy`, `GiBy`, `TiBy` | `_bytes`, `_kilobytes`, `_megabytes`, `_gigabytes`, `_terabytes`, `_kibibytes`, `_mebibytes`, `_gibibytes`, `_tebibytes` |
//! | unit `m`, `g`, `V`, `A`, `J`, `W`, `Hz`, `Cel`, `%` | `_meters`, `_grams`, `_volts`, `_amperes`, `_joules`, `_watts`, `_hertz`, `_celsius`, `_percent` |
//! | unit `X/Y` (`By/s`, `m/s`) | `_X_per_Y` with `s`→`second`, `m`→`minute`, `h`→`hour`, `d`→`day`, `w`→`week`, `mo`→`month`, `y`→`year` (`_bytes_per_second`) |
//! | unit `1` | `_ratio` on gauges (up-down counters), nothing otherwise |
//! | unit annotations `{request}`, `{connection}` | dropped (no suffix) |
//! | other units | sanitised like names and appended |
//! | unit suffix already at the end of the name | not repeated (`latency_seconds` stays) |
//! | [`Counter`] | `# TYPE name counter`, samples `name_total` (a trailing `.total` in the name is not doubled) |
//! | [`UpDownCounter`] | `gauge` |
//! | [`Histogram`] | `histogram`: `name_bucket{le="…"}` (cumulative, with exemplars), `name_count`, `name_sum` |
//! | attribute key | label name: characters outside `[A-Za-z0-9_]` → `_`; leading digit → `key_` prefix; leading `_` → `key` prefix; keys colliding after that are merged, values joined by `;` |
//! | attribute value | label value, escaped `\\`, `\"`, `\n` |
//! | description | `# HELP`, escaped `\\`, `\n` (and `\"` in OpenMetrics) |
//! | resource attributes | labels of `target_info` (OpenMetrics type `info`; gauge `1` in the Prometheus format) |
//!
//! Examples: `http.server.request.duration` (unit `s`) → `http_server_request_duration_seconds_bucket`,
//! `…_count`, `…_sum`; `http.server.active_requests` (unit `{request}`) → `http_server_active_requests`
//! (gauge); `db.client.connection.count` (unit `{connection}`) → `db_client_connection_count`
//! (gauge); a counter `app.sent` (unit `By`) → `app_sent_bytes_total`.

mod bound_cache;
mod config;
mod counter;
mod histogram;
pub mod openmetrics;
pub mod otlp;
mod recent_cache;
mod registry;
mod snapshot;
mod stripes;
mod table;

pub use bound_cache::BoundCache;
pub use config::{
    DEFAULT_CARDINALITY_LIMIT, ExemplarFilter, MetricsConfig, MetricsError,
    OTEL_METRICS_EXEMPLAR_FILTER,
};
pub use counter::{BoundCounter, BoundUpDownCounter, Counter, UpDownCounter};
pub use histogram::{BoundHistogram, DEFAULT_BOUNDARIES, DURATION_BOUNDARIES_SECONDS, Histogram};
pub use openmetrics::{Format, MetricsService};
pub use otlp::{
    OtlpMetricsConfig, OtlpMetricsExporter, OtlpProtocol, PeriodicConfig, PeriodicMetricsExporter,
};
pub use recent_cache::RecentCache;
pub use registry::{CollectHook, CounterBuilder, HistogramBuilder, Metrics, UpDownCounterBuilder};
pub use snapshot::{
    Exemplar, HistogramData, InstrumentKind, MetricSnapshot, Percentiles, SeriesData,
    SeriesSnapshot, SnapshotExt,
};

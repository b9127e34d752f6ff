//! Recording behaviour of the metrics instruments, asserted through `Metrics::snapshot`.
#![allow(clippy::unwrap_used, missing_docs)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use opentelemetry::trace::{
    Span as _, SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState, Tracer,
    TracerProvider as _,
};
use opentelemetry::{Context, KeyValue, Value};
use opentelemetry_sdk::trace::{InMemorySpanExporter, Sampler, SdkTracerProvider};
use opentelemetry_semantic_conventions::attribute::{HTTP_REQUEST_METHOD, HTTP_ROUTE};
use opentelemetry_semantic_conventions::metric::HTTP_SERVER_REQUEST_DURATION;
use otel_core::metrics::{
    DURATION_BOUNDARIES_SECONDS, ExemplarFilter, Histogram, Metrics, MetricsConfig, SnapshotExt,
};

fn get() -> [KeyValue; 2] {
    [
        KeyValue::new(HTTP_REQUEST_METHOD, "GET"),
        KeyValue::new(HTTP_ROUTE, "/accounts/{id}"),
    ]
}

fn duration_histogram(metrics: &Metrics) -> Histogram {
    metrics
        .f64_histogram(HTTP_SERVER_REQUEST_DURATION)
        .with_unit("s")
        .with_description("Duration of HTTP server requests.")
        .build()
}

fn tracing_pipeline(sampler: Sampler) -> (SdkTracerProvider, InMemorySpanExporter) {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .with_sampler(sampler)
        .build();
    (provider, exporter)
}

fn remote_context(flags: TraceFlags) -> Context {
    Context::new().with_remote_span_context(SpanContext::new(
        TraceId::from_bytes([1; 16]),
        SpanId::from_bytes([2; 8]),
        flags,
        true,
        TraceState::default(),
    ))
}

#[test]
fn default_boundaries_are_the_semconv_duration_buckets() {
    let metrics = Metrics::default();
    duration_histogram(&metrics).record(0.1, &get());
    let snapshot = metrics.snapshot();
    let metric = snapshot.find(HTTP_SERVER_REQUEST_DURATION).unwrap();
    assert_eq!(metric.unit, "s");
    assert_eq!(metric.description, "Duration of HTTP server requests.");
    let h = metric.series[0].histogram().unwrap();
    assert_eq!(
        h.boundaries,
        vec![
            0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0
        ]
    );
    assert_eq!(h.boundaries, DURATION_BOUNDARIES_SECONDS.to_vec());
    assert_eq!(h.bucket_counts.len(), 15);
}

#[test]
fn bucket_placement_at_boundaries() {
    let metrics = Metrics::default();
    let histogram = duration_histogram(&metrics);
    // (value, expected bucket): upper bounds are inclusive.
    let cases = [
        (0.0, 0),
        (0.005, 0),
        (0.005_000_1, 1),
        (0.01, 1),
        (0.1, 5),
        (0.100_000_1, 6),
        (1.0, 9),
        (10.0, 13),
        (10.000_001, 14),
        (1e9, 14),
    ];
    for (value, _) in cases {
        histogram.record(value, &get());
    }
    let snapshot = metrics.snapshot();
    let h = snapshot.find(HTTP_SERVER_REQUEST_DURATION).unwrap().series[0]
        .histogram()
        .unwrap()
        .clone();
    let mut expected = vec![0u64; 15];
    for (value, bucket) in cases {
        assert_eq!(h.bucket_index(value), bucket, "value {value}");
        expected[bucket] += 1;
    }
    assert_eq!(h.bucket_counts, expected);
    assert_eq!(h.count, cases.len() as u64);
    assert_eq!(h.min, Some(0.0));
    assert_eq!(h.max, Some(1e9));
    let sum: f64 = cases.iter().map(|(v, _)| v).sum();
    assert!((h.sum - sum).abs() < 1e-6);

    // Custom boundaries, sanitised.
    let custom = metrics
        .f64_histogram("queue.depth")
        .with_boundaries(vec![3.0, 1.0, f64::NAN, 2.0, 2.0])
        .build();
    for v in [1.0, 2.0, 2.5, 3.0, 3.5] {
        custom.record(v, &[]);
    }
    let snapshot = metrics.snapshot();
    let h = snapshot.find("queue.depth").unwrap().series[0]
        .histogram()
        .unwrap()
        .clone();
    assert_eq!(h.boundaries, vec![1.0, 2.0, 3.0]);
    assert_eq!(h.bucket_counts, vec![1, 1, 2, 1]);
}

#[test]
fn invalid_values_are_dropped_and_counted() {
    let metrics = Metrics::default();
    let histogram = duration_histogram(&metrics);
    for v in [-1.0, f64::NAN, f64::INFINITY, 0.5] {
        histogram.record(v, &get());
    }
    let snapshot = metrics.snapshot();
    let metric = snapshot.find(HTTP_SERVER_REQUEST_DURATION).unwrap();
    assert_eq!(metric.total_count(), 1);
    assert_eq!(metric.dropped_measurements, 3);
}

#[test]
fn attribute_order_does_not_split_series() {
    let metrics = Metrics::default();
    let histogram = duration_histogram(&metrics);
    let [a, b] = get();
    histogram.record(0.1, &[a.clone(), b.clone()]);
    histogram.record(0.2, &[b.clone(), a.clone()]);
    let snapshot = metrics.snapshot();
    let metric = snapshot.find(HTTP_SERVER_REQUEST_DURATION).unwrap();
    assert_eq!(metric.series.len(), 1);
    assert_eq!(
        metric
            .find_series(&[b, a])
            .unwrap()
            .histogram()
            .unwrap()
            .count,
        2
    );
    // Attributes are reported sorted by key.
    let keys: Vec<_> = metric.series[0]
        .attributes
        .iter()
        .map(|kv| kv.key.as_str())
        .collect();
    assert_eq!(keys, vec![HTTP_REQUEST_METHOD, HTTP_ROUTE]);
}

#[test]
fn exemplar_only_for_sampled_spans_and_points_at_an_exported_span() {
    let metrics = Metrics::default();
    let histogram = duration_histogram(&metrics);

    // A sampled span from a real pipeline.
    let (provider, exporter) = tracing_pipeline(Sampler::AlwaysOn);
    let tracer = provider.tracer("test");
    let span = tracer.start("GET /accounts/{id}");
    let cx = Context::current_with_span(span);
    {
        let _guard = cx.clone().attach();
        histogram.record(0.042, &get());
    }
    let sampled_span = cx.span().span_context().clone();
    cx.span().end();

    // An unsampled span: recorded, but no exemplar.
    let (off_provider, off_exporter) = tracing_pipeline(Sampler::AlwaysOff);
    let off_span = off_provider.tracer("test").start("unsampled");
    let off_cx = Context::current_with_span(off_span);
    assert!(off_cx.span().span_context().is_valid());
    assert!(!off_cx.span().span_context().is_sampled());
    histogram.record_with_context(0.3, &get(), &off_cx);
    // A remote parent that was not sampled, and no span at all.
    histogram.record_with_context(0.6, &get(), &remote_context(TraceFlags::default()));
    histogram.record(0.9, &get());

    provider.force_flush().unwrap();
    let exported = exporter.get_finished_spans().unwrap();
    assert_eq!(off_exporter.get_finished_spans().unwrap().len(), 0);

    let snapshot = metrics.snapshot();
    let h = snapshot
        .find(HTTP_SERVER_REQUEST_DURATION)
        .unwrap()
        .find_series(&get())
        .unwrap()
        .histogram()
        .unwrap()
        .clone();
    assert_eq!(h.count, 4);
    assert_eq!(h.exemplars.len(), 1, "{:?}", h.exemplars);
    let exemplar = &h.exemplars[0];
    assert_eq!(exemplar.value, 0.042);
    assert_eq!(exemplar.bucket, h.bucket_index(0.042));
    assert_eq!(exemplar.trace_id, sampled_span.trace_id());
    assert_eq!(exemplar.span_id, sampled_span.span_id());
    assert!(exemplar.filtered_attributes.is_empty());
    assert!(exemplar.time <= std::time::SystemTime::now());
    // The span it points at was exported.
    assert!(
        exported
            .iter()
            .any(|s| s.span_context.span_id() == exemplar.span_id
                && s.span_context.trace_id() == exemplar.trace_id),
        "exemplar span not among exported spans"
    );
}

#[test]
fn exemplar_filters() {
    let sampled = remote_context(TraceFlags::SAMPLED);
    let unsampled = remote_context(TraceFlags::default());
    for (filter, expected) in [
        (ExemplarFilter::TraceBased, vec![true, false, false]),
        (ExemplarFilter::AlwaysOn, vec![true, true, true]),
        (ExemplarFilter::AlwaysOff, vec![false, false, false]),
    ] {
        let metrics = Metrics::new(MetricsConfig::default().with_exemplar_filter(filter));
        let histogram = duration_histogram(&metrics);
        // Different buckets so each call keeps its own exemplar.
        histogram.record_with_context(0.001, &get(), &sampled);
        histogram.record_with_context(0.02, &get(), &unsampled);
        histogram.record_with_context(0.2, &get(), &Context::new());
        let snapshot = metrics.snapshot();
        let h = snapshot.find(HTTP_SERVER_REQUEST_DURATION).unwrap().series[0]
            .histogram()
            .unwrap()
            .clone();
        let present: Vec<bool> = [0.001, 0.02, 0.2]
            .iter()
            .map(|v| h.exemplar(h.bucket_index(*v)).is_some())
            .collect();
        assert_eq!(present, expected, "{filter:?}");
        if filter == ExemplarFilter::AlwaysOn {
            let no_span = h.exemplar(h.bucket_index(0.2)).unwrap();
            assert!(!no_span.has_span());
            // An unsampled but valid span context is still a pointer.
            let unsampled_ex = h.exemplar(h.bucket_index(0.02)).unwrap();
            assert_eq!(unsampled_ex.span_id, SpanId::from_bytes([2; 8]));
        }
    }
}

#[test]
fn bucket_keeps_the_last_sampled_exemplar() {
    let metrics = Metrics::default();
    let histogram = duration_histogram(&metrics);
    for (i, v) in [0.2, 0.21, 0.22].into_iter().enumerate() {
        let cx = Context::new().with_remote_span_context(SpanContext::new(
            TraceId::from_bytes([1; 16]),
            SpanId::from_bytes([i as u8 + 1; 8]),
            TraceFlags::SAMPLED,
            true,
            TraceState::default(),
        ));
        histogram.record_with_context(v, &get(), &cx);
        std::thread::sleep(Duration::from_millis(2));
    }
    let snapshot = metrics.snapshot();
    let h = snapshot.find(HTTP_SERVER_REQUEST_DURATION).unwrap().series[0]
        .histogram()
        .unwrap()
        .clone();
    assert_eq!(h.exemplars.len(), 1);
    assert_eq!(h.exemplars[0].value, 0.22);
    assert_eq!(h.exemplars[0].span_id, SpanId::from_bytes([3; 8]));
}

#[test]
fn percentiles_are_exact_to_hdr_precision() {
    let metrics = Metrics::default();
    let histogram = duration_histogram(&metrics);
    // 1 ms … 1 s in 1 ms steps, recorded out of order.
    for i in (1..=1000).rev() {
        histogram.record(f64::from(i) / 1000.0, &get());
    }
    let p = histogram.percentiles(&get()).unwrap();
    assert_eq!(p.count, 1000);
    for (got, want) in [(p.p50, 0.5), (p.p90, 0.9), (p.p99, 0.99), (p.p999, 0.999)] {
        assert!(
            (got - want).abs() <= want * 0.01,
            "got {got}, want {want} ± 1 %"
        );
    }
    assert_eq!(p.min, 0.001);
    assert_eq!(p.max, 1.0);
    assert!(p.slowest.is_none(), "no span, no exemplar");
    assert!(
        histogram
            .percentiles(&[KeyValue::new("other", 1)])
            .is_none()
    );

    // The snapshot carries the same numbers.
    let snapshot = metrics.snapshot();
    let from_snapshot = snapshot.find(HTTP_SERVER_REQUEST_DURATION).unwrap().series[0]
        .histogram()
        .unwrap()
        .percentiles
        .clone()
        .unwrap();
    assert_eq!(from_snapshot, p);
    // Values beyond the HDR range (1 h) are clamped for percentiles, exact for max.
    histogram.record(7200.0, &get());
    let p = histogram.percentiles(&get()).unwrap();
    assert_eq!(p.max, 7200.0);
}

#[test]
fn slowest_recent_exemplar() {
    let metrics = Metrics::new(MetricsConfig::default().with_stripes_per_series(1));
    let histogram = duration_histogram(&metrics);
    let (provider, _exporter) = tracing_pipeline(Sampler::AlwaysOn);
    let tracer = provider.tracer("test");
    let mut slowest_span = None;
    for v in [0.05, 1.7, 0.3, 0.01] {
        let mut span = tracer.start("call");
        let cx = Context::new().with_remote_span_context(span.span_context().clone());
        histogram.record_with_context(v, &get(), &cx);
        if v == 1.7 {
            slowest_span = Some(span.span_context().span_id());
        }
        span.end();
    }
    let p = histogram.percentiles(&get()).unwrap();
    let slowest = p.slowest.unwrap();
    assert_eq!(slowest.value, 1.7);
    assert_eq!(Some(slowest.span_id), slowest_span);

    // Once older than the window, a faster call replaces it.
    let metrics = Metrics::new(
        MetricsConfig::default()
            .with_stripes_per_series(1)
            .with_slowest_window(Duration::from_millis(20)),
    );
    let histogram = duration_histogram(&metrics);
    let sampled = remote_context(TraceFlags::SAMPLED);
    histogram.record_with_context(2.0, &get(), &sampled);
    std::thread::sleep(Duration::from_millis(40));
    assert!(histogram.percentiles(&get()).unwrap().slowest.is_none());
    histogram.record_with_context(0.1, &get(), &sampled);
    assert_eq!(
        histogram
            .percentiles(&get())
            .unwrap()
            .slowest
            .unwrap()
            .value,
        0.1
    );
}

#[test]
fn concurrent_recording_is_exact_in_every_view() {
    const THREADS: usize = 8;
    const RECORDS: usize = 50_000;
    let metrics =
        Metrics::new(MetricsConfig::default().with_exemplar_filter(ExemplarFilter::AlwaysOn));
    let histogram = duration_histogram(&metrics);
    let counter = metrics.u64_counter("app.requests").build();
    let gauge = metrics.i64_up_down_counter("app.active").build();
    let done = Arc::new(AtomicBool::new(false));

    // A reader taking snapshots while the writers run: each view must be consistent.
    let reader = {
        let metrics = metrics.clone();
        let done = Arc::clone(&done);
        std::thread::spawn(move || {
            let mut views = 0;
            while !done.load(Ordering::Acquire) {
                for metric in metrics.snapshot() {
                    for series in &metric.series {
                        if let Some(h) = series.histogram() {
                            assert_eq!(h.bucket_counts.iter().sum::<u64>(), h.count);
                            let p = h.percentiles.as_ref().unwrap();
                            assert_eq!(p.count, h.count);
                        }
                    }
                }
                views += 1;
            }
            views
        })
    };

    // Exactly representable values, so the sum is exact too.
    let values = [0.25, 0.5, 1.0, 2.0];
    std::thread::scope(|scope| {
        for t in 0..THREADS {
            let histogram = histogram.clone();
            let counter = counter.clone();
            let gauge = gauge.clone();
            scope.spawn(move || {
                let attrs = get();
                for i in 0..RECORDS {
                    histogram.record(values[(i + t) % values.len()], &attrs);
                    counter.add(1, &attrs);
                    gauge.add(1, &attrs);
                    gauge.add(-1, &attrs);
                    gauge.add(1, &attrs);
                }
            });
        }
    });
    done.store(true, Ordering::Release);
    assert!(reader.join().unwrap() > 0);

    let total = (THREADS * RECORDS) as u64;
    let snapshot = metrics.snapshot();
    let h = snapshot.find(HTTP_SERVER_REQUEST_DURATION).unwrap().series[0]
        .histogram()
        .unwrap()
        .clone();
    assert_eq!(h.count, total);
    assert_eq!(h.bucket_counts.iter().sum::<u64>(), total);
    assert_eq!(h.percentiles.as_ref().unwrap().count, total);
    assert_eq!(histogram.percentiles(&get()).unwrap().count, total);
    assert_eq!(h.sum, values.iter().sum::<f64>() * (total / 4) as f64);
    for v in values {
        assert_eq!(h.bucket_counts[h.bucket_index(v)], total / 4);
    }
    let c = snapshot.find("app.requests").unwrap().series[0].counter();
    assert_eq!(c, Some(total));
    let g = snapshot.find("app.active").unwrap().series[0].up_down_counter();
    assert_eq!(g, Some(total as i64));
}

#[test]
fn cardinality_limit_folds_into_the_overflow_series() {
    let metrics = Metrics::new(
        MetricsConfig::default()
            .with_cardinality_limit(10)
            .with_exemplar_filter(ExemplarFilter::AlwaysOn),
    );
    let histogram = duration_histogram(&metrics);
    let counter = metrics.u64_counter("app.requests").build();
    for i in 0..50_i64 {
        let attrs = [KeyValue::new("user.id", i)];
        histogram.record(0.1, &attrs);
        counter.add(2, &attrs);
    }
    let snapshot = metrics.snapshot();
    let metric = snapshot.find(HTTP_SERVER_REQUEST_DURATION).unwrap();
    assert_eq!(metric.series.len(), 10);
    assert_eq!(metric.total_count(), 50);
    let overflow = metric.overflow_series().unwrap();
    assert_eq!(
        overflow.attributes,
        vec![KeyValue::new("otel.metric.overflow", true)]
    );
    assert_eq!(
        overflow.attribute("otel.metric.overflow"),
        Some(&Value::Bool(true))
    );
    let h = overflow.histogram().unwrap();
    assert_eq!(h.count, 41);
    // The overflow exemplar keeps the attributes that were folded away.
    let exemplar = &h.exemplars[0];
    assert_eq!(
        exemplar.filtered_attributes,
        vec![KeyValue::new("user.id", 49_i64)]
    );
    // Existing series keep recording into themselves.
    histogram.record(0.1, &[KeyValue::new("user.id", 3_i64)]);
    let snapshot = metrics.snapshot();
    let metric = snapshot.find(HTTP_SERVER_REQUEST_DURATION).unwrap();
    assert_eq!(
        metric
            .find_series(&[KeyValue::new("user.id", 3_i64)])
            .unwrap()
            .histogram()
            .unwrap()
            .count,
        2
    );
    assert!(histogram.overflow_percentiles().is_some());

    let counters = snapshot.find("app.requests").unwrap();
    assert_eq!(counters.series.len(), 10);
    assert_eq!(counters.overflow_series().unwrap().counter(), Some(82));
    let total: u64 = counters.series.iter().filter_map(|s| s.counter()).sum();
    assert_eq!(total, 100);
}

#[test]
fn snapshot_lookups() {
    let metrics = Metrics::default();
    let histogram = duration_histogram(&metrics);
    histogram.record(0.1, &get());
    histogram.record(0.1, &[KeyValue::new(HTTP_REQUEST_METHOD, "POST")]);
    let snapshot = metrics.snapshot();
    assert!(snapshot.find("nope").is_none());
    let metric = snapshot.find(HTTP_SERVER_REQUEST_DURATION).unwrap();
    let gets: Vec<_> = metric
        .series_matching(&[KeyValue::new(HTTP_REQUEST_METHOD, "GET")])
        .collect();
    assert_eq!(gets.len(), 1);
    assert_eq!(
        gets[0].attribute(HTTP_ROUTE),
        Some(&Value::from("/accounts/{id}"))
    );
    assert_eq!(metric.series_matching(&[]).count(), 2);
    assert!(
        metric
            .find_series(&[KeyValue::new(HTTP_REQUEST_METHOD, "GET")])
            .is_none()
    );
    let h = metric.series[0].histogram().unwrap();
    assert_eq!(*h.cumulative_counts().last().unwrap(), h.count);
}

/// A huge cardinality limit is brought within bounds instead of overflowing (or allocating
/// gigabytes up front).
#[test]
fn a_huge_cardinality_limit_is_bounded() {
    for limit in [usize::MAX, 1 << 33] {
        let metrics = Metrics::new(MetricsConfig::default().with_cardinality_limit(limit));
        let counter = metrics.u64_counter("app.calls").build();
        counter.add(1, &[KeyValue::new("k", "v")]);
        let snapshot = metrics.snapshot();
        let series = &snapshot.find("app.calls").unwrap().series;
        assert_eq!(series.len(), 1);
    }
}

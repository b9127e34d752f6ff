//! The process-wide registry (its own test binary: the global is process state).
#![allow(clippy::unwrap_used, missing_docs)]

use opentelemetry::KeyValue;
use otel_core::metrics::{Metrics, MetricsConfig, SnapshotExt};

#[test]
fn instruments_built_before_set_global_bind_once_it_is_set() {
    // Before any registry is set: a cheap proxy, nothing recorded, nothing to read.
    let early = Metrics::global();
    let histogram = early.f64_histogram("early.duration").with_unit("s").build();
    let counter = early.u64_counter("early.count").build();
    histogram.record(0.1, &[]);
    counter.add(1, &[]);
    assert!(early.snapshot().is_empty());
    assert!(!histogram.is_enabled());
    // A collect hook given to the proxy runs once a global registry is set.
    let runs = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let hook = early.on_collect({
        let runs = runs.clone();
        move || {
            runs.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    });

    let registry = Metrics::new(MetricsConfig::default());
    Metrics::set_global(registry.clone());
    let _ = registry.snapshot();
    assert_eq!(runs.load(std::sync::atomic::Ordering::Relaxed), 1);
    drop(hook);
    let _ = registry.snapshot();
    assert_eq!(runs.load(std::sync::atomic::Ordering::Relaxed), 1);

    // The old handles now record into the global registry…
    histogram.record(0.2, &[KeyValue::new("k", "v")]);
    counter.add(2, &[]);
    assert!(histogram.is_enabled());
    let snapshot = registry.snapshot();
    assert_eq!(snapshot.find("early.duration").unwrap().total_count(), 1);
    assert_eq!(
        snapshot.find("early.count").unwrap().series[0].counter(),
        Some(2)
    );
    // …and so does the proxy itself, and a fresh `global()`.
    assert_eq!(early.snapshot().len(), 2);
    let late = Metrics::global().f64_histogram("early.duration").build();
    late.record(0.3, &[KeyValue::new("k", "v")]);
    assert_eq!(
        registry
            .snapshot()
            .find("early.duration")
            .unwrap()
            .total_count(),
        2
    );
}

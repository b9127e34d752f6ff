//! `tail::is_active` follows the processors themselves, not handles on their counters (its
//! own test binary: the count is process-wide).
#![allow(clippy::unwrap_used)]

use opentelemetry_sdk::trace::{InMemorySpanExporter, SimpleSpanProcessor};
use otel_core::sampling::tail::{self, TailConfig, TailSpanProcessor};

#[test]
fn tail_mode_is_off_once_the_processor_is_dropped_even_with_its_stats_kept() {
    assert!(!tail::is_active());
    let processor = TailSpanProcessor::new(
        SimpleSpanProcessor::new(InMemorySpanExporter::default()),
        TailConfig::new(),
    );
    let stats = processor.stats();
    assert!(tail::is_active());
    drop(processor);
    assert!(!tail::is_active());
    assert_eq!(stats.traces_kept(), 0);
}

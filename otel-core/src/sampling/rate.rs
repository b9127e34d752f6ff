//! [`RateLimitingSampler`]: at most N new traces per second.
//!
//! ```
//! use opentelemetry::trace::{Span as _, Tracer as _, TracerProvider as _};
//! use opentelemetry_sdk::trace::SdkTracerProvider;
//! use otel_core::sampling::RateLimitingSampler;
//!
//! let provider = SdkTracerProvider::builder()
//!     .with_sampler(RateLimitingSampler::new(1.0))
//!     .build();
//! let tracer = provider.tracer("doc");
//! // A burst of new traces: one second's worth (here one) is sampled.
//! let sampled = (0..10)
//!     .filter(|_| tracer.start("job").span_context().is_sampled())
//!     .count();
//! assert_eq!(sampled, 1);
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use opentelemetry::trace::{Link, SpanKind, TraceContextExt, TraceId, TraceState};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::trace::{SamplingDecision, SamplingResult, ShouldSample};

/// Samples at most `traces_per_second` new traces per second; spans with a parent follow the
/// parent's decision.
///
/// A "new trace" is a span without a valid parent (a local root started without an incoming
/// context). Spans with a parent, local or remote, are sampled exactly when the parent is, so a
/// trace is never cut in the middle by this sampler.
///
/// The limit is a token bucket holding one second's worth of traces (`traces_per_second`
/// tokens, at least one), refilled continuously: over any window of `w` seconds at most
/// `traces_per_second * (w + 1)` new traces are sampled. The bucket is one atomic word updated
/// with compare-and-swap; no lock, no allocation.
///
/// Clones share the same bucket.
///
/// ```
/// use otel_core::sampling::RateLimitingSampler;
/// let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
///     .with_sampler(RateLimitingSampler::new(100.0))
///     .build();
/// # drop(provider);
/// ```
#[derive(Debug, Clone)]
pub struct RateLimitingSampler {
    bucket: Arc<Bucket>,
}

#[derive(Debug)]
struct Bucket {
    epoch: Instant,
    /// Nanoseconds (since `epoch`) at which the bucket would be full again ("theoretical
    /// arrival time" of the generic cell rate algorithm).
    tat: AtomicU64,
    /// Nanoseconds per token.
    interval: u64,
    /// How far `tat` may run ahead of now: the bucket size minus one token, in nanoseconds.
    tolerance: u64,
    /// Zero rate: never sample new traces.
    closed: bool,
}

impl RateLimitingSampler {
    /// At most `traces_per_second` new traces per second (fractions allowed, e.g. `0.5` for one
    /// every two seconds). Zero, negative or NaN samples no new trace.
    ///
    /// ```
    /// use opentelemetry::Context;
    /// use opentelemetry::trace::{Span as _, TraceContextExt as _, Tracer as _, TracerProvider as _};
    /// use opentelemetry_sdk::trace::SdkTracerProvider;
    /// use otel_core::sampling::RateLimitingSampler;
    ///
    /// let provider = SdkTracerProvider::builder()
    ///     .with_sampler(RateLimitingSampler::new(0.0))
    ///     .build();
    /// let tracer = provider.tracer("doc");
    /// // Rate 0: no new trace is sampled ...
    /// let root = tracer.start("job");
    /// assert!(!root.span_context().is_sampled());
    /// // ... and children follow their parent.
    /// let child = tracer.start_with_context("step", &Context::new().with_span(root));
    /// assert!(!child.span_context().is_sampled());
    /// ```
    pub fn new(traces_per_second: f64) -> Self {
        let closed = traces_per_second.is_nan() || traces_per_second <= 0.0;
        let rate = if closed { 1.0 } else { traces_per_second };
        let interval = (1e9 / rate).clamp(1.0, u64::MAX as f64 / 4.0) as u64;
        let burst = rate.max(1.0).floor() as u64;
        Self {
            bucket: Arc::new(Bucket {
                epoch: Instant::now(),
                tat: AtomicU64::new(0),
                interval,
                tolerance: interval.saturating_mul(burst - 1),
                closed,
            }),
        }
    }

    /// Takes one token at `now` (nanoseconds since the bucket's epoch), if one is available.
    pub(crate) fn try_acquire_at(&self, now: u64) -> bool {
        let b = &*self.bucket;
        if b.closed {
            return false;
        }
        let mut current = b.tat.load(Ordering::Relaxed);
        loop {
            let tat = current.max(now);
            if tat - now > b.tolerance {
                return false;
            }
            match b.tat.compare_exchange_weak(
                current,
                tat + b.interval,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(actual) => current = actual,
            }
        }
    }

    fn try_acquire(&self) -> bool {
        let now = self.bucket.epoch.elapsed().as_nanos() as u64;
        self.try_acquire_at(now)
    }
}

impl ShouldSample for RateLimitingSampler {
    fn should_sample(
        &self,
        parent_context: Option<&Context>,
        _trace_id: TraceId,
        _name: &str,
        _span_kind: &SpanKind,
        _attributes: &[KeyValue],
        _links: &[Link],
    ) -> SamplingResult {
        let parent = parent_context
            .map(|cx| cx.span().span_context().clone())
            .filter(|sc| sc.is_valid());
        let (decision, trace_state) = match parent {
            Some(sc) => (
                if sc.is_sampled() {
                    SamplingDecision::RecordAndSample
                } else {
                    SamplingDecision::Drop
                },
                sc.trace_state().clone(),
            ),
            None => (
                if self.try_acquire() {
                    SamplingDecision::RecordAndSample
                } else {
                    SamplingDecision::Drop
                },
                TraceState::default(),
            ),
        };
        SamplingResult {
            decision,
            attributes: Vec::new(),
            trace_state,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_holds_one_second_and_refills() {
        let s = RateLimitingSampler::new(10.0);
        // A burst at t=0 gets the bucket (10), not more.
        let granted = (0..100).filter(|_| s.try_acquire_at(0)).count();
        assert_eq!(granted, 10);
        // 100 ms later one token came back.
        assert!(s.try_acquire_at(100_000_000));
        assert!(!s.try_acquire_at(100_000_000));
        // Over 10 s of steady attempts every 1 ms: about 10/s.
        let mut n = 0;
        for ms in 0..10_000u64 {
            if s.try_acquire_at(200_000_000 + ms * 1_000_000) {
                n += 1;
            }
        }
        assert!((99..=101).contains(&n), "{n}");
    }

    #[test]
    fn zero_and_fractional_rates() {
        let s = RateLimitingSampler::new(0.0);
        assert!(!s.try_acquire_at(0));
        let s = RateLimitingSampler::new(f64::NAN);
        assert!(!s.try_acquire_at(5_000_000_000));
        let s = RateLimitingSampler::new(0.5);
        assert!(s.try_acquire_at(0));
        assert!(!s.try_acquire_at(1_000_000_000));
        assert!(s.try_acquire_at(2_000_000_000));
    }
}

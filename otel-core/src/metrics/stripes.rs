//! Striping: each thread prefers one of a series' few stripes, so threads recording into the
//! same series mostly touch different cache lines.

use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Aligns to two cache lines so that neighbouring stripes never share one (adjacent-line
/// prefetching pairs lines on x86).
#[derive(Debug, Default)]
#[repr(align(128))]
pub(crate) struct Padded<T>(pub(crate) T);

thread_local! {
    /// This thread's preferred stripe (assigned round-robin on first use).
    static STRIPE_HINT: Cell<usize> = const { Cell::new(usize::MAX) };
}

/// This thread's preferred stripe, to be taken modulo the number of stripes.
#[inline]
pub(crate) fn stripe_hint() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    STRIPE_HINT.with(|hint| {
        let mut h = hint.get();
        if h == usize::MAX {
            h = NEXT.fetch_add(1, Ordering::Relaxed);
            hint.set(h);
        }
        h
    })
}

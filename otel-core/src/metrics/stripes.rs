//! Striping: each thread prefers one of a series' few stripes, so threads recording into the
//! same series mostly touch different cache lines.

use std::cell::Cell;
use std::sync::atomic::{AtomicU32, Ordering};

/// Aligns to two cache lines so that neighbouring stripes never share one (adjacent-line
/// prefetching pairs lines on x86).
#[derive(Debug, Default)]
#[repr(align(128))]
pub(crate) struct Padded<T>(pub(crate) T);

thread_local! {
    /// This thread's stripe key: a 32-bit fraction, spread by Fibonacci hashing of a
    /// round-robin thread number (assigned on first use), so that consecutive threads land on
    /// different stripes whatever the number of stripes.
    static STRIPE_KEY: Cell<Option<u32>> = const { Cell::new(None) };
}

/// This thread's stripe among `n` (`n` ≥ 1): `key × n / 2³²`, a multiply and a shift rather
/// than the division a `%` costs on every record.
#[inline]
pub(crate) fn stripe_of(n: usize) -> usize {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let key = STRIPE_KEY.with(|key| match key.get() {
        Some(k) => k,
        None => {
            let k = NEXT
                .fetch_add(1, Ordering::Relaxed)
                .wrapping_mul(0x9E37_79B9);
            key.set(Some(k));
            k
        }
    });
    // `key < 2³²`, so the result is below `n`.
    ((u64::from(key) * n as u64) >> 32) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The stripe that the `i`-th thread gets among `n`.
    fn stripe(i: u32, n: usize) -> usize {
        ((u64::from(i.wrapping_mul(0x9E37_79B9)) * n as u64) >> 32) as usize
    }

    #[test]
    fn consecutive_threads_spread_over_the_stripes() {
        for n in 1..=16 {
            let mut used = vec![0; n];
            for i in 0..n as u32 {
                let s = stripe(i, n);
                assert!(s < n);
                used[s] += 1;
            }
            // n threads over n stripes: no stripe gets more than two of them.
            assert!(used.iter().all(|&u| u <= 2), "{n}: {used:?}");
        }
        // Two stripes: the first threads alternate.
        assert_eq!(
            (0..4).map(|i| stripe(i, 2)).collect::<Vec<_>>(),
            [0, 1, 0, 1]
        );
        assert!(stripe_of(5) < 5);
    }
}

//! How many units (tags, RTP access units) each write to a viewer carried, per protocol: a
//! histogram of fixed buckets in atomics, so egress can record every write for the cost of one
//! increment.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::Protocol;

/// Upper bounds of the buckets (the last bucket, above 128, is unbounded).
pub const BATCH_BUCKETS: [u64; 8] = [1, 2, 4, 8, 16, 32, 64, 128];

/// A histogram of write-batch sizes for one protocol.
#[derive(Debug, Default)]
pub(crate) struct BatchHistogram {
    /// Non-cumulative counts, one per bucket plus the unbounded one.
    counts: [AtomicU64; BATCH_BUCKETS.len() + 1],
    sum: AtomicU64,
}

/// A snapshot of a [`BatchHistogram`]: cumulative counts per bucket of [`BATCH_BUCKETS`] (the
/// last entry is the total count), and the sum of the units written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BatchSizes {
    pub cumulative: [u64; BATCH_BUCKETS.len() + 1],
    pub sum: u64,
}

impl BatchSizes {
    /// Writes recorded.
    pub fn count(&self) -> u64 {
        self.cumulative[BATCH_BUCKETS.len()]
    }
}

impl BatchHistogram {
    pub(crate) fn record(&self, units: u64) {
        let bucket = BATCH_BUCKETS
            .iter()
            .position(|&le| units <= le)
            .unwrap_or(BATCH_BUCKETS.len());
        self.counts[bucket].fetch_add(1, Ordering::Relaxed);
        self.sum.fetch_add(units, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> BatchSizes {
        let mut out = BatchSizes {
            sum: self.sum.load(Ordering::Relaxed),
            ..BatchSizes::default()
        };
        let mut total = 0;
        for (i, c) in self.counts.iter().enumerate() {
            total += c.load(Ordering::Relaxed);
            out.cumulative[i] = total;
        }
        out
    }
}

/// One histogram per protocol, indexed like [`Protocol::ALL`].
pub(crate) type PerProtocol = [BatchHistogram; Protocol::ALL.len()];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_land_in_cumulative_buckets() {
        let h = BatchHistogram::default();
        for units in [1, 1, 3, 8, 9, 500] {
            h.record(units);
        }
        let s = h.snapshot();
        assert_eq!(s.cumulative, [2, 2, 3, 4, 5, 5, 5, 5, 6]);
        assert_eq!(s.sum, 522);
        assert_eq!(s.count(), 6);
    }
}

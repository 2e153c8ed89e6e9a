//! How many streams the bus holds, in total and per app, against [`BusOptions::max_streams`]
//! and [`BusOptions::max_streams_per_app`].
//!
//! A stream is counted from the moment it enters the registry (its first publisher, a waiting
//! player, or a backup publisher naming it) until the registry removes it, so streams in their
//! grace period count too: a publisher cycling through fresh keys cannot grow the registry past
//! the caps faster than the grace period empties it.
//!
//! The caps are not kept here: each reservation is checked against those of the bus's current
//! options, so a reload that lowers a cap refuses the next new stream and leaves the streams
//! already counted alone.
//!
//! [`BusOptions::max_streams`]: crate::BusOptions::max_streams
//! [`BusOptions::max_streams_per_app`]: crate::BusOptions::max_streams_per_app

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

/// Why a new stream could not be created.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StreamLimit {
    /// The bus holds `bus.max_streams` streams.
    #[error("the server already has {limit} streams, its limit (bus.max_streams)")]
    Streams { limit: usize },
    /// The stream's app holds `bus.max_streams_per_app` streams. The app is not repeated in the
    /// message, which goes back to the client.
    #[error("this app already has {limit} streams, the server's limit (bus.max_streams_per_app)")]
    StreamsPerApp { limit: usize },
}

/// The stream caps' counters, for the stats API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamLimitStats {
    /// `bus.max_streams` and `bus.max_streams_per_app`.
    pub max_streams: usize,
    pub max_streams_per_app: usize,
    /// Streams on the bus now.
    pub streams: usize,
    /// New streams refused since start by `max_streams`, and by `max_streams_per_app`.
    pub refused_max_streams: u64,
    pub refused_max_streams_per_app: u64,
}

/// The app of a stream key: its part before the first '/'.
pub(crate) fn app_of(key: &str) -> &str {
    key.split('/').next().unwrap_or(key)
}

#[derive(Debug, Default)]
pub(crate) struct StreamCounts {
    state: Mutex<Counts>,
    refused_total: AtomicU64,
    refused_per_app: AtomicU64,
}

#[derive(Debug, Default)]
struct Counts {
    total: usize,
    /// One entry per app with a stream, so at most as many as there are streams.
    per_app: HashMap<Box<str>, usize>,
}

impl StreamCounts {
    fn state(&self) -> MutexGuard<'_, Counts> {
        // Every update is one statement, so the counts are whole even after a panic elsewhere.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counts a new stream `key`, or says which cap (`max_streams` in total, `max_per_app` in
    /// its app) it would pass and counts the refusal.
    pub(crate) fn reserve(
        &self,
        key: &str,
        max_streams: usize,
        max_per_app: usize,
    ) -> Result<(), StreamLimit> {
        let app = app_of(key);
        let mut s = self.state();
        if s.total >= max_streams {
            self.refused_total.fetch_add(1, Ordering::Relaxed);
            return Err(StreamLimit::Streams { limit: max_streams });
        }
        if s.per_app.get(app).copied().unwrap_or(0) >= max_per_app {
            self.refused_per_app.fetch_add(1, Ordering::Relaxed);
            return Err(StreamLimit::StreamsPerApp { limit: max_per_app });
        }
        Self::add(&mut s, app);
        Ok(())
    }

    /// Counts a new stream whatever the caps (a backup publisher's primary: one per backup, so
    /// the total stays within twice the caps).
    pub(crate) fn force(&self, key: &str) {
        Self::add(&mut self.state(), app_of(key));
    }

    fn add(s: &mut Counts, app: &str) {
        s.total += 1;
        *s.per_app.entry(Box::from(app)).or_insert(0) += 1;
    }

    /// A stream left the registry.
    pub(crate) fn release(&self, key: &str) {
        let app = app_of(key);
        let mut s = self.state();
        s.total = s.total.saturating_sub(1);
        if let Some(n) = s.per_app.get_mut(app) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                s.per_app.remove(app);
            }
        }
    }

    /// The counters, with the caps now in force.
    pub(crate) fn stats(&self, max_streams: usize, max_per_app: usize) -> StreamLimitStats {
        StreamLimitStats {
            max_streams,
            max_streams_per_app: max_per_app,
            streams: self.state().total,
            refused_max_streams: self.refused_total.load(Ordering::Relaxed),
            refused_max_streams_per_app: self.refused_per_app.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_capped_in_total_and_per_app() {
        let c = StreamCounts::default();
        let reserve = |key| c.reserve(key, 3, 2);
        reserve("live/a").expect("first");
        reserve("live/b").expect("second of live");
        assert_eq!(
            reserve("live/c"),
            Err(StreamLimit::StreamsPerApp { limit: 2 })
        );
        reserve("tv/a").expect("another app");
        assert_eq!(reserve("radio/a"), Err(StreamLimit::Streams { limit: 3 }));
        c.release("live/a");
        reserve("live/c").expect("a place was freed");
        let s = c.stats(3, 2);
        assert_eq!(
            (
                s.streams,
                s.refused_max_streams,
                s.refused_max_streams_per_app
            ),
            (3, 1, 1)
        );
        for key in ["live/b", "live/c", "tv/a"] {
            c.release(key);
        }
        assert!(c.state().per_app.is_empty(), "empty apps are forgotten");
    }

    #[test]
    fn the_app_is_the_part_before_the_first_slash() {
        assert_eq!(app_of("live/test"), "live");
        assert_eq!(app_of("live/a/b"), "live");
        assert_eq!(app_of("bare"), "bare");
    }
}

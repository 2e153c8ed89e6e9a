//! The per-stream remuxer of an egress: started by the first viewer, shared by every later one,
//! stopped a while after the last one leaves or when the stream ends.
//!
//! An HLS segmenter, an RTP packetizer and an ASF muxer each turn a stream's tags into their own
//! units once, however many viewers the stream has. The remuxer lives in the stream's
//! [`Stream::attachment`] slot for its type, so it is found from the stream and never outlives
//! it; joining and retiring take the slot's lock, so a viewer never joins a remuxer that is
//! stopping (it starts a new one instead).

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::Stream;

/// A per-stream remuxer kept by [`Stream::join_remuxer`].
pub trait Remuxer: Send + Sync + 'static {
    /// True once the remuxer can serve no new viewer (its codecs changed, its stream ended):
    /// the next viewer starts a fresh one.
    fn ended(&self) -> bool {
        false
    }
}

/// The slot of one remuxer type in a stream's attachments.
struct Slot<S>(Mutex<Option<Arc<S>>>);

impl<S> Slot<S> {
    fn lock(&self) -> MutexGuard<'_, Option<Arc<S>>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Stream {
    /// Joins the stream's running remuxer of type `S`, or, if none runs (or it ended), starts one
    /// with `start` (which spawns its task; `None` if the stream cannot be remuxed now). `join`
    /// runs under the slot's lock, so [`Stream::retire_remuxer`] sees the viewer it adds.
    pub fn join_remuxer<S, T>(
        &self,
        start: impl FnOnce() -> Option<Arc<S>>,
        join: impl FnOnce(&Arc<S>) -> T,
    ) -> Option<T>
    where
        S: Remuxer,
    {
        let slot = self.attachment(|| Slot::<S>(Mutex::new(None)));
        let mut running = slot.lock();
        if running.as_ref().is_none_or(|s| s.ended()) {
            *running = Some(start()?);
        }
        running.as_ref().map(join)
    }

    /// The running remuxer of type `S`, if any, without starting one.
    pub fn running_remuxer<S: Remuxer>(&self) -> Option<Arc<S>> {
        let slot = self.attachment(|| Slot::<S>(Mutex::new(None)));
        let running = slot.lock();
        running.as_ref().filter(|s| !s.ended()).cloned()
    }

    /// For a remuxer's task that means to stop: if `idle` still holds under the slot's lock (no
    /// viewer joined meanwhile), `remuxer` leaves the stream and this returns true; the task then
    /// ends. A remuxer that is no longer the stream's (a newer one replaced it) retires at once.
    pub fn retire_remuxer<S: Remuxer>(
        &self,
        remuxer: &Arc<S>,
        idle: impl FnOnce(&S) -> bool,
    ) -> bool {
        let slot = self.attachment(|| Slot::<S>(Mutex::new(None)));
        let mut running = slot.lock();
        match running.as_ref() {
            Some(current) if Arc::ptr_eq(current, remuxer) => {
                if !idle(remuxer) {
                    return false;
                }
                *running = None;
                true
            }
            _ => true,
        }
    }
}

/// How long a remuxer outlives its last viewer, judged from the times it is given.
#[derive(Debug, Clone)]
pub struct Linger {
    limit: Duration,
    idle_since: Option<Instant>,
}

impl Linger {
    /// Lingers for `limit` after the last viewer.
    pub fn new(limit: Duration) -> Self {
        Linger {
            limit,
            idle_since: None,
        }
    }

    /// Notes whether anyone watches at `now`; true once nobody has watched for the limit.
    pub fn expired(&mut self, watched: bool, now: Instant) -> bool {
        if watched {
            self.idle_since = None;
            return false;
        }
        let since = *self.idle_since.get_or_insert(now);
        now.duration_since(since) >= self.limit
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    use super::*;
    use crate::{Bus, Protocol, PublisherInfo};

    #[derive(Default)]
    struct Muxer {
        viewers: AtomicUsize,
        ended: AtomicBool,
    }

    impl Remuxer for Muxer {
        fn ended(&self) -> bool {
            self.ended.load(Ordering::Relaxed)
        }
    }

    fn stream() -> (Bus, crate::Publisher, Arc<Stream>) {
        let bus = Bus::default();
        let info = PublisherInfo {
            protocol: Protocol::Internal,
            peer: None,
            query: None,
        };
        let publisher = bus.publish("live/remux", info).expect("publish");
        let stream = bus.stream("live/remux").expect("stream");
        (bus, publisher, stream)
    }

    fn join(stream: &Stream, starts: &AtomicUsize) -> Arc<Muxer> {
        stream
            .join_remuxer(
                || {
                    starts.fetch_add(1, Ordering::Relaxed);
                    Some(Arc::new(Muxer::default()))
                },
                |m| {
                    m.viewers.fetch_add(1, Ordering::Relaxed);
                    Arc::clone(m)
                },
            )
            .expect("starts")
    }

    #[test]
    fn viewers_share_one_remuxer_until_it_retires_or_ends() {
        let (_bus, _publisher, stream) = stream();
        let starts = AtomicUsize::new(0);
        let a = join(&stream, &starts);
        let b = join(&stream, &starts);
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!(starts.load(Ordering::Relaxed), 1);
        let idle = |m: &Muxer| m.viewers.load(Ordering::Relaxed) == 0;
        assert!(!stream.retire_remuxer(&a, idle), "two viewers hold it");
        a.viewers.store(0, Ordering::Relaxed);
        assert!(stream.retire_remuxer(&a, idle));
        assert!(stream.running_remuxer::<Muxer>().is_none());
        let c = join(&stream, &starts);
        assert!(!Arc::ptr_eq(&a, &c), "a new one after retiring");
        c.ended.store(true, Ordering::Relaxed);
        assert!(stream.running_remuxer::<Muxer>().is_none());
        let d = join(&stream, &starts);
        assert!(!Arc::ptr_eq(&c, &d), "a new one after the old one ended");
        assert_eq!(starts.load(Ordering::Relaxed), 3);
        assert!(
            stream.retire_remuxer(&c, |_| false),
            "a replaced one retires at once"
        );
        assert!(
            stream.running_remuxer::<Muxer>().is_some(),
            "and leaves the new one"
        );
    }

    #[test]
    fn a_stream_that_cannot_be_remuxed_starts_nothing() {
        let (_bus, _publisher, stream) = stream();
        let got = stream.join_remuxer::<Muxer, ()>(|| None, |_| ());
        assert!(got.is_none());
        assert!(stream.running_remuxer::<Muxer>().is_none());
    }

    #[test]
    fn linger_expires_only_after_the_limit_without_viewers() {
        let t0 = Instant::now();
        let mut linger = Linger::new(Duration::from_secs(5));
        assert!(!linger.expired(false, t0));
        assert!(!linger.expired(false, t0 + Duration::from_secs(4)));
        assert!(
            !linger.expired(true, t0 + Duration::from_secs(4)),
            "a viewer came"
        );
        assert!(!linger.expired(false, t0 + Duration::from_secs(8)));
        assert!(linger.expired(false, t0 + Duration::from_secs(13)));
    }
}

//! A viewer's (or remuxer's) bounded view of one stream.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use crate::cache::StartupCache;
use crate::ring::Reader;
use crate::{Event, Protocol, Stream};

/// Receives one stream's tags: first the start-up snapshot (metadata, sequence headers, the GOP
/// from its keyframe), then live tags.
///
/// It is a [`Reader`] of the stream's [`crate::ring::Ring`] of [`crate::BusOptions::queue_tags`]
/// events, shared by all subscribers, with the ring's one lag policy: the publisher never waits
/// for anyone; a subscriber that falls a whole ring behind skips to the next video keyframe (any
/// audio frame in an audio-only stream), counts what it skipped on the stream, and first re-sends
/// any sequence header or metadata that changed meanwhile, so decoders never lose their
/// configuration. It also keeps the subscriber counted as a viewer of its protocol.
pub struct Subscriber {
    stream: Arc<Stream>,
    reader: Reader<Event, StartupCache>,
    protocol: Protocol,
}

impl Subscriber {
    pub(crate) fn new(
        stream: Arc<Stream>,
        reader: Reader<Event, StartupCache>,
        protocol: Protocol,
    ) -> Subscriber {
        stream.viewers[protocol.index()].fetch_add(1, Ordering::Relaxed);
        Subscriber {
            stream,
            reader,
            protocol,
        }
    }

    /// The stream this subscriber reads.
    pub fn stream(&self) -> &Arc<Stream> {
        &self.stream
    }

    /// Tags this subscriber skipped because it fell behind.
    pub fn dropped(&self) -> u64 {
        self.reader.dropped()
    }

    /// Also counts the tags this subscriber skips with `f` (a client's counter in
    /// [`crate::clients`]); the stream keeps counting them too.
    pub fn on_drops(&mut self, f: impl Fn(u64) + Send + Sync + 'static) {
        self.reader.add_on_drops(f);
    }

    /// The next event; `None` once the stream has been removed from the bus.
    pub async fn recv(&mut self) -> Option<Event> {
        self.reader.recv().await
    }

    /// The next event if one is ready now, for callers that batch writes. `None` means nothing is
    /// ready (or the stream is gone; [`Subscriber::recv`] tells the two apart).
    pub fn try_recv(&mut self) -> Option<Event> {
        self.reader.try_recv()
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        self.stream.viewers[self.protocol.index()].fetch_sub(1, Ordering::Relaxed);
    }
}

impl std::fmt::Debug for Subscriber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscriber")
            .field("stream", &self.stream.key())
            .field("protocol", &self.protocol)
            .field("dropped", &self.reader.dropped())
            .finish_non_exhaustive()
    }
}

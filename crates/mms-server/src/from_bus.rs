//! One ASF muxer per stream, shared by every MMS viewer of it.
//!
//! Architecture Invariant: a stream is remuxed to ASF once, by one task holding one bus
//! subscriber, however many MMSH and MMST viewers it has. Viewers receive the same `Bytes`
//! packets through a bounded broadcast ring; a viewer that falls a whole ring behind skips to the
//! next packet where decoding can start (a video keyframe) instead of slowing anyone down.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use asf::{DataPacket, FlvAsfMuxer, MuxEvent, MuxerOptions, TagKind, TagRef};
use bus::{Bus, Event, Protocol, Stream, Tag, ViewerGuard};
use bytes::Bytes;
use tokio::sync::broadcast::{self, error::RecvError};

use crate::Options;

/// What a viewer receives.
#[derive(Debug, Clone)]
pub enum FeedItem {
    /// The ASF header; after the first one, a new header means the codecs changed.
    Header(Bytes),
    Packet(DataPacket),
    /// The stream was removed from the bus: the broadcast is over.
    End,
}

/// The per-stream attachment.
pub struct Feed {
    state: Mutex<FeedState>,
    tx: broadcast::Sender<FeedItem>,
}

#[derive(Default)]
struct FeedState {
    running: bool,
    header: Option<Bytes>,
    /// Packets since the last random-access packet, for viewers that join now.
    gop: VecDeque<DataPacket>,
    gop_bytes: usize,
    /// The cache overflowed: wait for the next random-access packet before caching again.
    gop_invalid: bool,
}

impl Feed {
    fn new(queue: usize) -> Feed {
        let (tx, _) = broadcast::channel(queue.max(16));
        Feed {
            state: Mutex::new(FeedState::default()),
            tx,
        }
    }

    fn lock(&self) -> MutexGuard<'_, FeedState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Joins the stream's ASF feed, starting its muxer task if this is the first viewer.
pub fn join(bus: &Bus, stream: &Arc<Stream>, opts: &Options) -> Viewer {
    let feed = stream.attachment(|| Feed::new(opts.queue_packets));
    let mut st = feed.lock();
    if !st.running {
        *st = FeedState {
            running: true,
            ..FeedState::default()
        };
        tokio::spawn(run_muxer(
            bus.clone(),
            stream.key().to_owned(),
            Arc::clone(&feed),
            opts.clone(),
        ));
    }
    let mut pending = VecDeque::new();
    if let Some(h) = &st.header {
        pending.push_back(FeedItem::Header(h.clone()));
        pending.extend(st.gop.iter().cloned().map(FeedItem::Packet));
    }
    // Without a cached packet to start from, wait for the next place where decoding can start.
    let resync = st.gop.front().is_none_or(|p| !p.random_access);
    let rx = feed.tx.subscribe();
    drop(st);
    Viewer {
        rx,
        pending,
        resync,
        dropped: 0,
        last_warn: None,
        key: stream.key().to_owned(),
        _guard: stream.viewer_guard(Protocol::Mms),
    }
}

/// The muxer task: one bus subscriber in, ASF out, until the stream is removed from the bus (its
/// publisher left and did not come back within the grace period) or nobody has watched for
/// [`Options::idle_feed_timeout`].
async fn run_muxer(bus: Bus, key: String, feed: Arc<Feed>, opts: Options) {
    let mut muxer = FlvAsfMuxer::new(MuxerOptions {
        packet_size: opts.packet_size,
        preroll_ms: opts.preroll_ms,
        max_packet_delay_ms: opts.max_packet_delay_ms,
        file_id: file_id(&key),
    });
    let mut log = MuxLog::default();
    let mut watched = Instant::now();
    if let Some(mut sub) = bus.subscribe(&key, Protocol::Internal) {
        tracing::info!(stream = %key, "MMS: ASF muxer started");
        loop {
            match sub.recv().await {
                Some(Event::Tag(tag)) => {
                    muxer.push_tag(tag_ref(&tag));
                    publish(&feed, &mut muxer, &mut log, &key, &opts);
                }
                // The stream outlives its publisher for the bus's grace period: viewers stay, and
                // if the publisher comes back with the same codec configuration the ASF stream
                // simply continues (a changed one yields a new header, which ends viewers).
                Some(Event::PublisherLeft) => {
                    muxer.flush();
                    publish(&feed, &mut muxer, &mut log, &key, &opts);
                }
                Some(Event::PublisherJoined) => {}
                Some(Event::Closed) | None => break,
            }
            if feed.tx.receiver_count() > 0 {
                watched = Instant::now();
            } else if watched.elapsed() > opts.idle_feed_timeout && stop_if_unwatched(&feed) {
                tracing::info!(stream = %key, "MMS: ASF muxer stopped, no viewers");
                return;
            }
        }
        muxer.flush();
        publish(&feed, &mut muxer, &mut log, &key, &opts);
    }
    let mut st = feed.lock();
    *st = FeedState::default();
    let _ = feed.tx.send(FeedItem::End);
    drop(st);
    tracing::info!(stream = %key, "MMS: ASF muxer stopped, the stream ended");
}

/// Stops the feed if still nobody watches, atomically with respect to [`join`].
fn stop_if_unwatched(feed: &Feed) -> bool {
    let mut st = feed.lock();
    if feed.tx.receiver_count() > 0 {
        return false;
    }
    *st = FeedState::default();
    true
}

fn tag_ref(tag: &Tag) -> TagRef<'_> {
    let kind = match tag.kind {
        bus::TagKind::Audio => TagKind::Audio,
        bus::TagKind::Video => TagKind::Video,
        bus::TagKind::Script => TagKind::Script,
    };
    TagRef {
        kind,
        timestamp_ms: tag.timestamp,
        data: &tag.data,
        media: tag.media,
    }
}

/// A file id that differs per stream key, so players do not confuse two streams' caches.
fn file_id(key: &str) -> [u8; 16] {
    use std::hash::{Hash, Hasher};
    let mut out = [0u8; 16];
    for (i, half) in out.chunks_mut(8).enumerate() {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (i, key).hash(&mut h);
        half.copy_from_slice(&h.finish().to_le_bytes());
    }
    out
}

/// Rate-limits the muxer's complaints about malformed tags.
#[derive(Default)]
struct MuxLog {
    malformed: u64,
    last: Option<Instant>,
}

fn publish(feed: &Feed, muxer: &mut FlvAsfMuxer, log: &mut MuxLog, key: &str, opts: &Options) {
    while let Some(ev) = muxer.poll_event() {
        match ev {
            MuxEvent::Header(h) => {
                let mut st = feed.lock();
                tracing::info!(stream = %key, header_bytes = h.len(), "MMS: ASF header built");
                st.header = Some(h.clone());
                st.gop.clear();
                st.gop_bytes = 0;
                let _ = feed.tx.send(FeedItem::Header(h));
            }
            MuxEvent::Packet(p) => cache_and_send(feed, p, opts.gop_cache_max_bytes),
            MuxEvent::Unsupported { track, codec } => tracing::warn!(
                stream = %key, ?track, %codec,
                "MMS: ASF clients cannot play this codec; the track is skipped, the other track still plays"
            ),
            MuxEvent::Malformed { track, reason } => {
                log.malformed += 1;
                if log
                    .last
                    .is_none_or(|t| t.elapsed() > Duration::from_secs(1))
                {
                    log.last = Some(Instant::now());
                    tracing::warn!(stream = %key, ?track, %reason, total = log.malformed, "MMS: malformed tag skipped");
                }
            }
        }
    }
}

fn cache_and_send(feed: &Feed, p: DataPacket, max_bytes: usize) {
    let mut st = feed.lock();
    if p.random_access {
        st.gop.clear();
        st.gop_bytes = 0;
        st.gop_invalid = false;
    }
    if !st.gop_invalid {
        st.gop_bytes += p.data.len();
        st.gop.push_back(p.clone());
        if st.gop_bytes > max_bytes {
            st.gop.clear();
            st.gop_bytes = 0;
            st.gop_invalid = true;
        }
    }
    // Sent under the lock so a joining viewer sees each packet exactly once: in its snapshot
    // or on its receiver.
    let _ = feed.tx.send(FeedItem::Packet(p));
}

/// One viewer's bounded view of a feed.
pub struct Viewer {
    rx: broadcast::Receiver<FeedItem>,
    pending: VecDeque<FeedItem>,
    resync: bool,
    dropped: u64,
    last_warn: Option<Instant>,
    key: String,
    _guard: ViewerGuard,
}

impl Viewer {
    /// Waits for the ASF header (the stream may not have sent a frame yet).
    pub async fn header(&mut self, timeout: Duration) -> Option<Bytes> {
        let wait = async {
            loop {
                match self.next().await? {
                    FeedItem::Header(h) => return Some(h),
                    FeedItem::End => return None,
                    FeedItem::Packet(_) => {}
                }
            }
        };
        tokio::time::timeout(timeout, wait).await.ok().flatten()
    }

    /// The next item; `None` if the feed is gone.
    pub async fn next(&mut self) -> Option<FeedItem> {
        loop {
            if let Some(item) = self.pending.pop_front() {
                return Some(item);
            }
            match self.rx.recv().await {
                Ok(FeedItem::Packet(p)) if self.resync && !p.random_access => self.dropped += 1,
                Ok(FeedItem::Packet(p)) => {
                    self.resync = false;
                    return Some(FeedItem::Packet(p));
                }
                Ok(other) => return Some(other),
                Err(RecvError::Lagged(n)) => self.lagged(n),
                Err(RecvError::Closed) => return None,
            }
        }
    }

    /// Packets this viewer skipped because it was too slow.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    fn lagged(&mut self, n: u64) {
        self.resync = true;
        self.dropped += n;
        if self
            .last_warn
            .is_none_or(|t| t.elapsed() > Duration::from_secs(1))
        {
            self.last_warn = Some(Instant::now());
            tracing::warn!(stream = %self.key, dropped = self.dropped, "MMS viewer too slow; skipping to the next keyframe");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bus::PublisherInfo;

    /// Pushes the kept fixture `rounds` times, back to back, without pacing.
    fn push_fixture(publisher: &mut bus::Publisher, rounds: u64) {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/fixtures/mms/av-3s.flv"
        );
        let data = Bytes::from(std::fs::read(path).expect("fixture"));
        let file = flv::parse_file(&data).expect("fixture parses");
        for round in 0..rounds {
            for t in &file.tags {
                let kind = match t.tag_type {
                    8 => bus::TagKind::Audio,
                    9 => bus::TagKind::Video,
                    _ => bus::TagKind::Script,
                };
                // As ingest does: the header parsed once, flags and media set from it.
                let tag =
                    Tag::classify(kind, u64::from(t.timestamp) + round * 3000, t.body.clone());
                if tag.sequence_header && round > 0 {
                    continue;
                }
                publisher.push(tag);
            }
        }
    }

    #[tokio::test]
    async fn a_lagging_viewer_resumes_at_a_random_access_packet() {
        let bus = Bus::default();
        let info = PublisherInfo {
            protocol: Protocol::Internal,
            peer: None,
            query: None,
        };
        let mut publisher = bus.publish("live/lag", info).expect("publish");
        let stream = bus.stream("live/lag").expect("stream exists");
        let opts = Options {
            queue_packets: 16,
            ..Options::default()
        };
        let mut viewer = join(&bus, &stream, &opts);
        push_fixture(&mut publisher, 1);
        let header = viewer.header(Duration::from_secs(5)).await;
        assert!(header.is_some(), "the header arrives");
        // Five more rounds while this viewer reads nothing: far more than 16 packets.
        push_fixture(&mut publisher, 5);
        tokio::time::sleep(Duration::from_millis(300)).await;
        let mut first_after_lag = None;
        while viewer.dropped() == 0 {
            match tokio::time::timeout(Duration::from_secs(1), viewer.next()).await {
                Ok(Some(FeedItem::Packet(p))) if viewer.dropped() > 0 => first_after_lag = Some(p),
                Ok(Some(_)) => {}
                other => panic!(
                    "the viewer should lag, got {:?}",
                    other.map(|o| o.is_some())
                ),
            }
        }
        let p = first_after_lag.expect("a packet after the lag");
        assert!(p.random_access, "resumes where decoding can start");
    }

    #[tokio::test]
    async fn a_late_viewer_starts_from_the_cached_keyframe() {
        let bus = Bus::default();
        let info = PublisherInfo {
            protocol: Protocol::Internal,
            peer: None,
            query: None,
        };
        let mut publisher = bus.publish("live/late", info).expect("publish");
        let stream = bus.stream("live/late").expect("stream exists");
        let opts = Options::default();
        let mut first = join(&bus, &stream, &opts);
        push_fixture(&mut publisher, 1);
        assert!(first.header(Duration::from_secs(5)).await.is_some());
        tokio::time::sleep(Duration::from_millis(200)).await;
        let mut late = join(&bus, &stream, &opts);
        assert!(
            matches!(late.next().await, Some(FeedItem::Header(_))),
            "header first"
        );
        match late.next().await {
            Some(FeedItem::Packet(p)) => {
                assert!(p.random_access, "then the cached keyframe packet")
            }
            other => panic!("expected a packet, got {}", other.is_some()),
        }
    }
}

//! One ASF muxer per stream, shared by every MMS viewer of it.
//!
//! Architecture Invariant: a stream is remuxed to ASF once, by one task holding one bus
//! subscriber, however many MMSH and MMST viewers it has. The muxer is the stream's
//! [`bus::Remuxer`] of this type; viewers read its ASF header and packets from one
//! [`bus::ring::Ring`], sharing the same `Bytes`, with the ring's lag policy: a viewer that falls
//! a whole ring behind skips to the next packet where decoding can start (a video keyframe)
//! instead of slowing anyone down.
//!
//! The muxer reads the options once, when it starts (packet size, preroll, packet delay, ring
//! and cache sizes, idle timeout), and keeps them for its life: options replaced meanwhile
//! apply to the muxers that start after, and a viewer joining a running muxer gets its packets
//! (MMST announces their size from [`Viewer::packet_size`]).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use asf::{DataPacket, FlvAsfMuxer, MuxEvent, MuxerOptions, TagKind, TagRef};
use bus::ring::{GopReplay, Reader, Replay, Ring, Role, Unit};
use bus::{Bus, Event, Linger, Protocol, Remuxer, Stream, Tag, ViewerGuard};
use bytes::Bytes;

use crate::Options;

/// What a viewer receives.
#[derive(Debug, Clone)]
pub enum FeedItem {
    /// The ASF header; after the first one, a new header means the codecs changed.
    Header(Bytes),
    Packet(DataPacket),
    /// The stream was removed from the bus: the broadcast is over (readers see `None`).
    End,
}

impl Unit for FeedItem {
    fn role(&self) -> Role {
        match self {
            FeedItem::Header(_) => Role::Config(0),
            FeedItem::Packet(p) if p.random_access => Role::Sync,
            FeedItem::Packet(_) => Role::Media,
            FeedItem::End => Role::End,
        }
    }

    fn same_config(&self, other: &Self) -> bool {
        matches!((self, other), (FeedItem::Header(a), FeedItem::Header(b)) if a == b)
    }
}

type AsfRing = Ring<FeedItem, GopReplay<FeedItem>>;

/// The stream's running ASF muxer, as viewers see it.
pub struct Feed {
    ring: Arc<AsfRing>,
    ended: AtomicBool,
    /// The size of the muxer's data packets, from the options it started with.
    packet_size: usize,
}

impl Remuxer for Feed {
    fn ended(&self) -> bool {
        self.ended.load(Ordering::Relaxed)
    }
}

fn packet_bytes(item: &FeedItem) -> usize {
    match item {
        FeedItem::Packet(p) => p.data.len(),
        _ => 0,
    }
}

/// Joins the stream's ASF feed, starting its muxer task with `opts` (which it keeps) if this is
/// the first viewer.
pub fn join(bus: &Bus, stream: &Arc<Stream>, opts: &Arc<Options>) -> Viewer {
    let start = || {
        let replay = GopReplay::new(usize::MAX, opts.gop_cache_max_bytes, packet_bytes);
        let feed = Arc::new(Feed {
            ring: Arc::new(Ring::new(opts.queue_packets.max(16), replay)),
            ended: AtomicBool::new(false),
            // As the muxer's packetizer clamps it.
            packet_size: opts
                .packet_size
                .clamp(asf::MIN_PACKET_SIZE, asf::MAX_PACKET_SIZE),
        });
        tokio::spawn(run_muxer(
            bus.clone(),
            Arc::clone(stream),
            Arc::clone(&feed),
            Arc::clone(opts),
        ));
        Some(feed)
    };
    let mut packet_size = 0;
    let reader = stream
        .join_remuxer(start, |feed| {
            packet_size = feed.packet_size;
            let (reader, gop) = feed.ring.open(stream.key(), |replay| {
                let mut snapshot = Vec::new();
                replay.snapshot(&mut snapshot);
                (snapshot, replay.gop().next().is_some())
            });
            // Without a cached packet to start from, wait for the next place where decoding can start.
            if gop {
                reader
            } else {
                reader.wait_for_sync()
            }
        })
        .expect("an ASF feed always starts");
    Viewer {
        reader,
        packet_size,
        stream: Arc::clone(stream),
        _guard: stream.viewer_guard(Protocol::Mms),
    }
}

/// The muxer task: one bus subscriber in, ASF out, until the stream is removed from the bus (its
/// publisher left and did not come back within the grace period) or nobody has watched for
/// [`Options::idle_feed_timeout`]. `opts` are those in force when it started.
async fn run_muxer(bus: Bus, stream: Arc<Stream>, feed: Arc<Feed>, opts: Arc<Options>) {
    let key = stream.key().to_owned();
    let mut muxer = FlvAsfMuxer::new(MuxerOptions {
        packet_size: opts.packet_size,
        preroll_ms: opts.preroll_ms,
        max_packet_delay_ms: opts.max_packet_delay_ms,
        file_id: file_id(&key),
    });
    let mut log = MuxLog::default();
    let mut linger = Linger::new(opts.idle_feed_timeout);
    if let Some(mut sub) = bus.subscribe(&key, Protocol::Internal) {
        tracing::info!(stream = %key, "MMS: ASF muxer started");
        loop {
            match sub.recv().await {
                Some(Event::Tag(tag)) => {
                    muxer.push_tag(tag_ref(&tag));
                    publish(&feed, &mut muxer, &mut log, &key);
                }
                // The stream outlives its publisher for the bus's grace period: viewers stay, and
                // if the publisher comes back with the same codec configuration the ASF stream
                // simply continues (a changed one yields a new header, which ends viewers).
                Some(Event::PublisherLeft) => {
                    muxer.flush();
                    publish(&feed, &mut muxer, &mut log, &key);
                }
                Some(Event::PublisherJoined) => {}
                Some(Event::Closed) | None => break,
            }
            let watched = feed.ring.readers() > 0;
            if linger.expired(watched, Instant::now())
                && stream.retire_remuxer(&feed, |f| f.ring.readers() == 0)
            {
                tracing::info!(stream = %key, "MMS: ASF muxer stopped, no viewers");
                return;
            }
        }
        muxer.flush();
        publish(&feed, &mut muxer, &mut log, &key);
    }
    feed.ended.store(true, Ordering::Relaxed);
    feed.ring.send(FeedItem::End);
    stream.retire_remuxer(&feed, |_| true);
    tracing::info!(stream = %key, "MMS: ASF muxer stopped, the stream ended");
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

fn publish(feed: &Feed, muxer: &mut FlvAsfMuxer, log: &mut MuxLog, key: &str) {
    while let Some(ev) = muxer.poll_event() {
        match ev {
            MuxEvent::Header(h) => {
                tracing::info!(stream = %key, header_bytes = h.len(), "MMS: ASF header built");
                // A new header starts a new ASF stream: the old GOP means nothing to it.
                let mut replay = feed.ring.replay();
                replay.clear();
                feed.ring.send_locked(&mut replay, FeedItem::Header(h));
            }
            MuxEvent::Packet(p) => feed.ring.send(FeedItem::Packet(p)),
            MuxEvent::Unsupported { track, codec } => tracing::warn!(
                stream = %key, track = %track.as_str(), %codec,
                "MMS: ASF clients cannot play this codec; the track is skipped, the other track still plays"
            ),
            MuxEvent::Malformed { track, reason } => {
                log.malformed += 1;
                if log
                    .last
                    .is_none_or(|t| t.elapsed() > Duration::from_secs(1))
                {
                    log.last = Some(Instant::now());
                    tracing::warn!(stream = %key, track = %track.as_str(), %reason, total = log.malformed, "MMS: malformed tag skipped");
                }
            }
        }
    }
}

/// One viewer's bounded view of a feed.
pub struct Viewer {
    reader: Reader<FeedItem, GopReplay<FeedItem>>,
    /// The feed's data packet size.
    packet_size: usize,
    stream: Arc<Stream>,
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

    /// The next item; `None` once the feed is over.
    pub async fn next(&mut self) -> Option<FeedItem> {
        self.reader.recv().await
    }

    /// Counts `n` bytes written to this viewer on its stream.
    pub fn count_sent(&self, n: u64) {
        self.stream.count_sent(Protocol::Mms, n);
    }

    /// The size of the feed's data packets (the options of its muxer's start).
    pub fn packet_size(&self) -> usize {
        self.packet_size
    }

    /// Also counts the packets this viewer skips with `f` (a client's counter in
    /// [`bus::clients`]).
    pub fn on_drops(&mut self, f: impl Fn(u64) + Send + Sync + 'static) {
        self.reader.add_on_drops(f);
    }

    /// Packets this viewer skipped because it was too slow.
    pub fn dropped(&self) -> u64 {
        self.reader.dropped()
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
        let opts = Arc::new(Options {
            queue_packets: 16,
            ..Options::default()
        });
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
        let opts = Arc::new(Options::default());
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

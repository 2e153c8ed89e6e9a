//! One live stream: its caches, its fan-out channel, its statistics and per-stream attachments.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::backup::{Failover, Feed};
use crate::batches::{BatchSizes, PerProtocol};
use crate::cache::{CacheLimits, StartupCache};
use crate::ring::Ring;
use crate::subscriber::Subscriber;
use crate::timeline::Timeline;
use crate::{BusOptions, MediaInfo, Protocol, Tag, TagKind};

/// What travels on a stream's fan-out channel.
#[derive(Debug, Clone)]
pub enum Event {
    /// A media or script tag.
    Tag(Tag),
    /// The publisher left and no backup feeds the stream; it stays for the grace period in case
    /// a publisher comes back.
    PublisherLeft,
    /// A publisher (re)started the stream, or the feed switched between the primary and its
    /// backup; the new source's sequence headers follow as tags, on the same timeline.
    PublisherJoined,
    /// The stream is being removed from the bus. Subscribers never see this: `recv` returns `None`.
    #[doc(hidden)]
    Closed,
}

/// Who is publishing, for logs and the stats API.
#[derive(Debug, Clone)]
pub struct PublisherInfo {
    pub protocol: Protocol,
    pub peer: Option<SocketAddr>,
    /// The query string the publisher gave with the stream name, kept for authorization hooks.
    pub query: Option<String>,
}

/// A point-in-time view of a stream's counters.
#[derive(Debug, Clone)]
pub struct StreamStats {
    pub live: bool,
    pub publisher: Option<PublisherInfo>,
    /// Time since the current publisher started, if live.
    pub uptime: Option<Duration>,
    pub bytes_in: u64,
    pub tags_in: u64,
    /// Video frames (not sequence headers) and, of them, keyframes.
    pub video_frames: u64,
    pub keyframes: u64,
    /// Audio frames (not sequence headers).
    pub audio_frames: u64,
    /// The time between the last two video keyframes, on the stream's timeline.
    pub keyframe_interval: Option<Duration>,
    /// Timestamp jumps the timeline corrected.
    pub timestamp_corrections: u64,
    /// Time since the stream last received a tag; `None` before its first.
    pub since_last_tag: Option<Duration>,
    /// Bytes egress wrote to viewers ([`Stream::count_sent`]), indexed like [`Protocol::ALL`].
    pub bytes_out: [u64; Protocol::ALL.len()],
    /// Units per write to viewers ([`Stream::count_batch`]), indexed like [`Protocol::ALL`].
    pub batches: [BatchSizes; Protocol::ALL.len()],
    /// Payload bitrate over the last measured second, in bits per second.
    pub bitrate_bps: u64,
    /// Current viewers, indexed like [`Protocol::ALL`].
    pub viewers: [u64; Protocol::ALL.len()],
    /// Tags skipped by slow subscribers, summed over every subscriber that has existed.
    pub dropped_tags: u64,
    /// Viewers disconnected because their socket accepted no bytes for the egress's send
    /// timeout (see [`Stream::count_stalled_viewer`]), indexed like [`Protocol::ALL`].
    pub stalled_viewers: [u64; Protocol::ALL.len()],
    /// Publish sessions so far (1 for the first publisher).
    pub generation: u64,
    pub gop_cache_bytes: usize,
    /// Who feeds the viewers: the stream's own publisher or its backup.
    pub feed: Feed,
    /// Times the backup took over, and times the primary took the stream back.
    pub failovers: u64,
    pub takebacks: u64,
}

impl StreamStats {
    /// Viewers of one protocol.
    pub fn viewers_of(&self, protocol: Protocol) -> u64 {
        self.viewers[protocol.index()]
    }

    /// Write batches to viewers of one protocol.
    pub fn batches_of(&self, protocol: Protocol) -> BatchSizes {
        self.batches[protocol.index()]
    }

    /// Bytes sent to viewers of one protocol.
    pub fn bytes_out_of(&self, protocol: Protocol) -> u64 {
        self.bytes_out[protocol.index()]
    }

    /// Viewers of one protocol dropped for not reading.
    pub fn stalled_viewers_of(&self, protocol: Protocol) -> u64 {
        self.stalled_viewers[protocol.index()]
    }
}

pub(crate) struct Inner {
    pub live: bool,
    pub removed: bool,
    pub generation: u64,
    pub publisher: Option<PublisherInfo>,
    pub published_at: Option<Instant>,
    pub timeline: Timeline,
    pub media_info: MediaInfo,
    pub failover: Failover,
    rate: RateMeter,
    /// Timeline timestamp of the last video keyframe, and the interval before it.
    last_keyframe_ms: Option<u64>,
    keyframe_interval_ms: Option<u64>,
    last_tag_at: Option<Instant>,
}

impl Inner {
    /// A publisher is connected, or the backup feeds the stream.
    pub(crate) fn is_live(&self) -> bool {
        self.live || self.failover.backup_feeding()
    }
}

/// Bits per second over roughly the last second, updated as tags arrive.
#[derive(Debug)]
struct RateMeter {
    window_start: Instant,
    window_bytes: u64,
    bps: u64,
}

impl RateMeter {
    fn add(&mut self, bytes: usize, now: Instant) {
        self.window_bytes += bytes as u64;
        let elapsed = now.duration_since(self.window_start);
        if elapsed >= Duration::from_secs(1) {
            self.bps = (self.window_bytes as f64 * 8.0 / elapsed.as_secs_f64()) as u64;
            self.window_bytes = 0;
            self.window_start = now;
        }
    }
}

/// One stream on the bus, keyed `{app}/{stream}`.
pub struct Stream {
    key: Arc<str>,
    pub(crate) inner: Mutex<Inner>,
    /// The fan-out ring; its replay is the start-up cache (metadata, sequence headers, GOP).
    pub(crate) ring: Arc<Ring<Event, StartupCache>>,
    bytes_in: AtomicU64,
    tags_in: AtomicU64,
    video_frames: AtomicU64,
    keyframes: AtomicU64,
    audio_frames: AtomicU64,
    corrections: AtomicU64,
    bytes_out: [AtomicU64; Protocol::ALL.len()],
    batches: PerProtocol,
    pub(crate) dropped: Arc<AtomicU64>,
    pub(crate) viewers: [AtomicU64; Protocol::ALL.len()],
    stalled: [AtomicU64; Protocol::ALL.len()],
    attachments: Mutex<HashMap<TypeId, Arc<dyn Any + Send + Sync>>>,
    /// Why the gateway's health check last found the stream unhealthy; empty when healthy.
    health: Mutex<Vec<&'static str>>,
}

impl std::fmt::Debug for Stream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stream")
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl Stream {
    /// A new stream with the cache limits, ring size and timestamp jump of `opts`, which it
    /// keeps for its life (a later [`crate::Bus::set_options`] does not change them).
    pub(crate) fn new(key: &str, opts: &BusOptions) -> Stream {
        let limits = CacheLimits {
            gop_max_tags: opts.gop_max_tags,
            gop_max_bytes: opts.gop_max_bytes,
            audio_only_ms: opts.audio_only_cache_ms,
        };
        let ring = Arc::new(Ring::new(opts.queue_tags, StartupCache::new(limits)));
        Stream {
            key: key.into(),
            inner: Mutex::new(Inner {
                live: false,
                removed: false,
                generation: 0,
                publisher: None,
                published_at: None,
                timeline: Timeline::new(opts.timestamp_jump_ms),
                media_info: MediaInfo::default(),
                failover: Failover::default(),
                rate: RateMeter {
                    window_start: Instant::now(),
                    window_bytes: 0,
                    bps: 0,
                },
                last_keyframe_ms: None,
                keyframe_interval_ms: None,
                last_tag_at: None,
            }),
            ring,
            bytes_in: AtomicU64::new(0),
            tags_in: AtomicU64::new(0),
            video_frames: AtomicU64::new(0),
            keyframes: AtomicU64::new(0),
            audio_frames: AtomicU64::new(0),
            corrections: AtomicU64::new(0),
            bytes_out: Default::default(),
            batches: Default::default(),
            dropped: Arc::default(),
            viewers: Default::default(),
            stalled: Default::default(),
            attachments: Mutex::new(HashMap::new()),
            health: Mutex::new(Vec::new()),
        }
    }

    /// The bus key, `{app}/{stream}`.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// True while a publisher is connected, or its backup feeds the stream.
    pub fn is_live(&self) -> bool {
        self.lock().is_live()
    }

    /// Publish sessions so far; it grows by one each time a publisher (re)starts the stream.
    pub fn generation(&self) -> u64 {
        self.lock().generation
    }

    /// Codec facts that ingest learned from the sequence headers.
    pub fn media_info(&self) -> MediaInfo {
        self.lock().media_info.clone()
    }

    /// The cached `onMetaData` script tag, if the publisher sent one.
    pub fn metadata(&self) -> Option<Tag> {
        self.ring.replay().metadata.clone()
    }

    /// The cached video decoder configuration tag.
    pub fn video_sequence_header(&self) -> Option<Tag> {
        self.ring.replay().video_header.clone()
    }

    /// The cached audio decoder configuration tag.
    pub fn audio_sequence_header(&self) -> Option<Tag> {
        self.ring.replay().audio_header.clone()
    }

    /// True once the current publisher has sent any video (header or frame).
    pub fn has_video(&self) -> bool {
        self.ring.replay().has_video()
    }

    /// True once the current publisher has sent an audio or video frame. Publishers send their
    /// sequence headers before their first frames, so from then on the headers an egress needs
    /// to describe the stream are in, whatever the GOP cache holds or is limited to.
    pub fn has_frames(&self) -> bool {
        self.ring.replay().has_frames()
    }

    /// Waits up to `limit` for the current publisher's first frame (see [`Stream::has_frames`]):
    /// a publisher is live a few milliseconds before its headers and first frame arrive, and an
    /// egress that describes the stream's tracks (SDP, FLV header) must not do it from half of
    /// them. False when the frame did not come in time or the stream is no longer live. Polls,
    /// since this happens once per viewer start and only in that first moment of a stream.
    pub async fn wait_for_frames(&self, limit: std::time::Duration) -> bool {
        const POLL: std::time::Duration = std::time::Duration::from_millis(20);
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            if self.has_frames() {
                return true;
            }
            if !self.is_live() || tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// A snapshot of the stream's counters.
    pub fn stats(&self) -> StreamStats {
        let inner = self.lock();
        StreamStats {
            live: inner.is_live(),
            publisher: inner.publisher.clone(),
            uptime: inner
                .published_at
                .filter(|_| inner.live)
                .map(|t| t.elapsed()),
            bytes_in: self.bytes_in.load(Ordering::Relaxed),
            tags_in: self.tags_in.load(Ordering::Relaxed),
            video_frames: self.video_frames.load(Ordering::Relaxed),
            keyframes: self.keyframes.load(Ordering::Relaxed),
            audio_frames: self.audio_frames.load(Ordering::Relaxed),
            keyframe_interval: inner.keyframe_interval_ms.map(Duration::from_millis),
            timestamp_corrections: self.corrections.load(Ordering::Relaxed),
            since_last_tag: inner.last_tag_at.map(|t| t.elapsed()),
            bytes_out: std::array::from_fn(|i| self.bytes_out[i].load(Ordering::Relaxed)),
            batches: std::array::from_fn(|i| self.batches[i].snapshot()),
            bitrate_bps: inner.rate.bps,
            viewers: std::array::from_fn(|i| self.viewers[i].load(Ordering::Relaxed)),
            dropped_tags: self.dropped.load(Ordering::Relaxed),
            stalled_viewers: std::array::from_fn(|i| self.stalled[i].load(Ordering::Relaxed)),
            generation: inner.generation,
            gop_cache_bytes: self.ring.replay().gop_bytes(),
            feed: inner.failover.feed,
            failovers: inner.failover.failovers,
            takebacks: inner.failover.takebacks,
        }
    }

    /// A typed per-stream slot for egress state that must exist once per stream, such as an HLS
    /// muxer or an RTP packetizer. The first caller creates it with `init`; later callers share it.
    /// It lives as long as the stream.
    pub fn attachment<T, F>(&self, init: F) -> Arc<T>
    where
        T: Any + Send + Sync,
        F: FnOnce() -> T,
    {
        let mut map = self
            .attachments
            .lock()
            .expect("attachment map lock is never poisoned");
        let slot = map
            .entry(TypeId::of::<T>())
            .or_insert_with(|| Arc::new(init()));
        Arc::clone(slot)
            .downcast::<T>()
            .expect("attachments are keyed by their own TypeId")
    }

    /// Records what the gateway's health check found (short reasons such as
    /// `"publisher_silent"`; empty: healthy). The bus judges nothing itself.
    pub fn set_health(&self, reasons: Vec<&'static str>) {
        *self.health.lock().unwrap_or_else(|p| p.into_inner()) = reasons;
    }

    /// The reasons of the last health check; empty when healthy or never checked.
    pub fn health(&self) -> Vec<&'static str> {
        self.health
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Counts a viewer that does not hold a [`Subscriber`] (HLS clients pull segments instead).
    /// The count drops when the guard is dropped.
    pub fn viewer_guard(self: &Arc<Self>, protocol: Protocol) -> ViewerGuard {
        self.viewers[protocol.index()].fetch_add(1, Ordering::Relaxed);
        ViewerGuard {
            stream: Arc::clone(self),
            protocol,
        }
    }

    /// Counts `n` bytes an egress wrote to a viewer of `protocol` (payload and framing, as the
    /// socket took them); the sum is [`StreamStats::bytes_out`].
    pub fn count_sent(&self, protocol: Protocol, n: u64) {
        self.bytes_out[protocol.index()].fetch_add(n, Ordering::Relaxed);
    }

    /// Records one write to a viewer of `protocol` that carried `units` tags or access units
    /// (the write batching's effect, in [`StreamStats::batches`]).
    pub fn count_batch(&self, protocol: Protocol, units: usize) {
        self.batches[protocol.index()].record(units as u64);
    }

    /// Counts a viewer its egress disconnected because the viewer's socket accepted no bytes for
    /// the egress's send timeout (a player that stopped reading). Each egress calls it once per
    /// such viewer; the count is [`StreamStats::stalled_viewers`].
    pub fn count_stalled_viewer(&self, protocol: Protocol) {
        self.stalled[protocol.index()].fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding this lock would be a bus bug; keep serving rather than cascade.
        self.inner
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    /// Registers a subscriber with the start-up snapshot, atomically with respect to `push`.
    pub(crate) fn subscribe(self: &Arc<Self>, protocol: Protocol) -> Subscriber {
        // Under the stream's lock, so that the reader and `removed` agree (removal sends `Closed`
        // under it too).
        let inner = self.lock();
        let label = format!("{} {}", self.key, protocol.as_str());
        let dropped = Arc::clone(&self.dropped);
        let mut reader = self.ring.reader(label).on_drops(move |n| {
            dropped.fetch_add(n, Ordering::Relaxed);
        });
        if inner.removed {
            reader = reader.end();
        }
        drop(inner);
        Subscriber::new(Arc::clone(self), reader, protocol)
    }

    /// Maps a tag's raw 32-bit timestamp onto the stream's timeline and delivers it; returns the
    /// timeline timestamp it got.
    pub(crate) fn push_mapped(&self, inner: &mut Inner, mut tag: Tag) -> u64 {
        let (timestamp, correction) = inner.timeline.map(tag.timestamp as u32);
        if let Some(c) = correction {
            self.corrections.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(
                stream = %self.key(),
                raw = c.raw,
                delta_ms = c.delta_ms,
                corrected = c.corrected,
                "timestamp jump corrected"
            );
        }
        tag.timestamp = timestamp;
        inner.timeline.presented(tag.pts());
        self.deliver(inner, tag);
        timestamp
    }

    /// Updates counters and caches for one tag and sends it; called with the lock held.
    pub(crate) fn deliver(&self, inner: &mut Inner, tag: Tag) {
        self.bytes_in
            .fetch_add(tag.data.len() as u64, Ordering::Relaxed);
        self.tags_in.fetch_add(1, Ordering::Relaxed);
        let now = Instant::now();
        inner.rate.add(tag.data.len(), now);
        inner.last_tag_at = Some(now);
        if !tag.sequence_header {
            match tag.kind {
                TagKind::Video => {
                    self.video_frames.fetch_add(1, Ordering::Relaxed);
                    if tag.keyframe {
                        self.keyframes.fetch_add(1, Ordering::Relaxed);
                        if let Some(last) = inner.last_keyframe_ms {
                            inner.keyframe_interval_ms = Some(tag.timestamp.saturating_sub(last));
                        }
                        inner.last_keyframe_ms = Some(tag.timestamp);
                    }
                }
                TagKind::Audio => {
                    self.audio_frames.fetch_add(1, Ordering::Relaxed);
                }
                TagKind::Script => {}
            }
        }
        self.ring.send(Event::Tag(tag));
    }
}

/// Keeps one viewer counted on a stream; see [`Stream::viewer_guard`].
#[derive(Debug)]
pub struct ViewerGuard {
    stream: Arc<Stream>,
    protocol: Protocol,
}

impl Drop for ViewerGuard {
    fn drop(&mut self) {
        self.stream.viewers[self.protocol.index()].fetch_sub(1, Ordering::Relaxed);
    }
}

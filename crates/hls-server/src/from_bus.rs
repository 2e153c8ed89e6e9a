//! The per-stream muxer task: one bus subscriber in, shared HLS snapshots out. The muxer is its
//! stream's [`bus::Remuxer`] of this type: the first request starts it, every later one shares
//! it, and it stops [`Options::idle_timeout`] after the last request (never, with
//! [`Options::always_on`]) or when the stream leaves the bus.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;
use bus::{Event, Protocol, Remuxer, Subscriber, ViewerGuard};
use bytes::Bytes;
use hls::{Encryption, InputTag, Segmenter, SegmenterOptions, TagKind};
use tokio::sync::watch;

use crate::Options;

/// The most distinct HLS clients tracked per stream; beyond it new clients are not counted
/// (the count is a statistic, never a reason to grow memory without bound).
const MAX_CLIENTS: usize = 10_000;
/// How often the task checks for idleness and expires viewers.
const TICK: Duration = Duration::from_secs(1);

/// What every request sees of a stream's HLS output; replaced whole when a segment finishes.
#[derive(Debug, Default)]
pub(crate) struct Snapshot {
    pub playlist: Bytes,
    pub has_segments: bool,
    pub segments: Vec<(u64, Bytes)>,
    pub keys: Vec<(u64, [u8; 16])>,
}

/// Who made a request: a hash of its address and User-Agent, and the address for logs.
pub(crate) struct Client {
    pub id: u64,
    pub peer: String,
}

/// A counted HLS viewer.
struct Viewer {
    seen: Instant,
    peer: String,
    /// Keeps the viewer counted on the bus stream until it expires.
    _guard: ViewerGuard,
}

/// One stream's HLS state shared between its task and the request handlers.
pub struct StreamHls {
    pub key: String,
    /// Segment and key names start with this (`{token}-`).
    pub prefix: String,
    pub snapshot: watch::Receiver<Arc<Snapshot>>,
    started: Instant,
    last_access_ms: AtomicU64,
    /// Playlist requests waiting for the first segment; while any waits, the stream is not idle.
    waiting: AtomicUsize,
    clients: Mutex<HashMap<u64, Viewer>>,
    /// The bus stream. It holds this muxer in its remuxer slot until the task retires, which it
    /// always does when it ends, so the two never keep each other alive past the task.
    stream: Arc<bus::Stream>,
    ended: AtomicBool,
    /// The segmenter's figures as of the last finished segment.
    stats: Mutex<crate::HlsStats>,
}

impl Remuxer for StreamHls {
    fn ended(&self) -> bool {
        self.ended.load(Ordering::Relaxed)
    }
}

/// Marks a request as waiting on the muxer (see [`StreamHls::waiting`]); dropping it counts as an
/// access, so the idle time starts when the wait ends rather than when the request arrived.
pub(crate) struct Waiting<'a>(&'a StreamHls);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.mark_access();
        self.0.waiting.fetch_sub(1, Ordering::Relaxed);
    }
}

impl StreamHls {
    /// Notes a request from `client`; a client not seen within the viewer window counts as a
    /// new HLS viewer (logged once, with its address).
    pub(crate) fn touch(&self, client: &Client) {
        self.mark_access();
        let mut clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(entry) = clients.get_mut(&client.id) {
            entry.seen = Instant::now();
        } else if clients.len() < MAX_CLIENTS {
            tracing::info!(stream = %self.key, peer = %client.peer, "HLS viewer joined");
            let viewer = Viewer {
                seen: Instant::now(),
                peer: client.peer.clone(),
                _guard: self.stream.viewer_guard(Protocol::Hls),
            };
            clients.insert(client.id, viewer);
        }
    }

    /// The segmenter's figures as of the last finished segment.
    pub(crate) fn stats(&self) -> crate::HlsStats {
        *self.stats.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Counts a segment handed to a client on the bus stream.
    pub(crate) fn count_sent(&self, n: usize) {
        self.stream.count_sent(Protocol::Hls, n as u64);
    }

    fn mark_access(&self) {
        let now = self.started.elapsed().as_millis() as u64;
        self.last_access_ms.store(now, Ordering::Relaxed);
    }

    /// Holds the muxer alive for a request that waits on it (a first playlist can wait longer
    /// than a short idle timeout).
    pub(crate) fn waiting(&self) -> Waiting<'_> {
        self.waiting.fetch_add(1, Ordering::Relaxed);
        Waiting(self)
    }

    fn idle_for(&self) -> Duration {
        if self.waiting.load(Ordering::Relaxed) > 0 {
            return Duration::ZERO;
        }
        let now = self.started.elapsed().as_millis() as u64;
        Duration::from_millis(now.saturating_sub(self.last_access_ms.load(Ordering::Relaxed)))
    }

    fn expire_clients(&self, older_than: Duration) {
        let mut clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        clients.retain(|_, v| {
            let keep = v.seen.elapsed() < older_than;
            if !keep {
                tracing::info!(stream = %self.key, peer = %v.peer, "HLS viewer left");
            }
            keep
        });
    }
}

/// Starts the muxer task for `sub`'s stream and returns its shared state.
/// The segment options are those in force now, for the life of the muxer; `idle_timeout` and
/// `always_on` are read from `live` on every tick.
pub(crate) fn start(sub: Subscriber, live: &Arc<ArcSwap<Options>>, app: &str) -> Arc<StreamHls> {
    let opts = live.load_full();
    let prefix = format!("{:08x}-", rand::random::<u32>());
    let (tx, rx) = watch::channel(Arc::new(Snapshot::default()));
    let hls = Arc::new(StreamHls {
        key: sub.stream().key().to_owned(),
        prefix: prefix.clone(),
        snapshot: rx,
        started: Instant::now(),
        last_access_ms: AtomicU64::new(0),
        waiting: AtomicUsize::new(0),
        clients: Mutex::new(HashMap::new()),
        stream: Arc::clone(sub.stream()),
        ended: AtomicBool::new(false),
        stats: Mutex::default(),
    });
    let seg_opts = SegmenterOptions {
        target_duration_ms: opts.target_duration.as_millis() as u64,
        window: opts.window,
        retain_after_window: opts.retain_after_window,
        audio_batch_ms: opts.audio_batch_ms,
        encryption: opts.encrypts(app).then(|| Encryption {
            secret: rand::random(),
            key_rotation: opts.key_rotation,
        }),
        uri_prefix: prefix,
        ..Default::default()
    };
    let task = MuxTask {
        hls: Arc::clone(&hls),
        sub,
        segmenter: Segmenter::new(seg_opts),
        tx,
        opts,
        live: Arc::clone(live),
        last_warn: None,
    };
    tokio::spawn(task.run());
    hls
}

struct MuxTask {
    hls: Arc<StreamHls>,
    sub: Subscriber,
    segmenter: Segmenter,
    tx: watch::Sender<Arc<Snapshot>>,
    /// The options the muxer started with.
    opts: Arc<Options>,
    /// The options in force, for what may change while it runs.
    live: Arc<ArcSwap<Options>>,
    last_warn: Option<Instant>,
}

impl MuxTask {
    async fn run(mut self) {
        tracing::info!(stream = %self.hls.key, "HLS muxer started");
        let mut tick = tokio::time::interval(TICK);
        let mut dropped = 0;
        loop {
            tokio::select! {
                ev = self.sub.recv() => {
                    let Some(ev) = ev else { break };
                    if self.sub.dropped() != dropped {
                        // The bus skipped us to the next keyframe: the timeline has a hole.
                        dropped = self.sub.dropped();
                        self.segmenter.discontinuity();
                    }
                    if self.on_event(ev) {
                        self.publish();
                    }
                }
                _ = tick.tick() => {
                    let (limit, always_on) = {
                        let live = self.live.load();
                        (live.idle_timeout, live.always_on)
                    };
                    if !always_on
                        && self.hls.idle_for() > limit
                        && self.hls.stream.retire_remuxer(&self.hls, |h| h.idle_for() > limit)
                    {
                        break;
                    }
                    let window = self.opts.target_duration * (2 * self.opts.window.max(1) as u32);
                    self.hls.expire_clients(window);
                }
            }
        }
        self.hls.ended.store(true, Ordering::Relaxed);
        self.hls.stream.retire_remuxer(&self.hls, |_| true);
        self.hls.expire_clients(Duration::ZERO);
        let stats = self.segmenter.stats();
        tracing::info!(
            stream = %self.hls.key,
            segments = stats.segments,
            skipped_tags = stats.skipped_tags,
            discontinuities = stats.discontinuities,
            "HLS muxer stopped"
        );
    }

    /// Handles one bus event; returns true when a segment finished.
    fn on_event(&mut self, ev: Event) -> bool {
        match ev {
            Event::Tag(tag) => match self.segmenter.push(input_tag(tag), unix_ms()) {
                Ok(closed) => closed.is_some(),
                Err(e) => {
                    self.warn_skipped(&e);
                    false
                }
            },
            Event::PublisherLeft => self.segmenter.flush().is_some(),
            Event::PublisherJoined => self.segmenter.publisher_restarted().is_some(),
            _ => false,
        }
    }

    fn warn_skipped(&mut self, e: &hls::HlsError) {
        if self
            .last_warn
            .is_none_or(|t| t.elapsed() >= Duration::from_secs(1))
        {
            self.last_warn = Some(Instant::now());
            let skipped = self.segmenter.stats().skipped_tags;
            tracing::warn!(stream = %self.hls.key, error = %e, skipped, "HLS: tag skipped");
        }
    }

    fn publish(&self) {
        let s = &self.segmenter;
        let mut keys: Vec<(u64, [u8; 16])> = Vec::new();
        for id in s.segments().filter_map(|seg| seg.entry.key_id) {
            if keys.last().is_none_or(|(last, _)| *last != id) {
                keys.extend(s.key(id).map(|k| (id, k)));
            }
        }
        let st = s.stats();
        *self.hls.stats.lock().unwrap_or_else(|p| p.into_inner()) = crate::HlsStats {
            segments: st.segments,
            last_segment: s
                .segments()
                .last()
                .map(|seg| Duration::from_millis(seg.entry.duration_ms)),
            skipped_tags: st.skipped_tags,
            discontinuities: st.discontinuities,
        };
        let snapshot = Snapshot {
            playlist: s.playlist(),
            has_segments: s.has_segments(),
            segments: s
                .segments()
                .map(|seg| (seg.entry.sequence, seg.data.clone()))
                .collect(),
            keys,
        };
        self.tx.send_replace(Arc::new(snapshot));
    }
}

fn input_tag(tag: bus::Tag) -> InputTag {
    InputTag {
        kind: match tag.kind {
            bus::TagKind::Audio => TagKind::Audio,
            bus::TagKind::Video => TagKind::Video,
            bus::TagKind::Script => TagKind::Script,
        },
        timestamp: tag.timestamp,
        composition_time: tag.composition_time,
        keyframe: tag.keyframe,
        data: tag.data,
        media: tag.media,
    }
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

//! HLS egress: every live stream on the bus as an in-memory HLS playlist.
//!
//! `GET /{app}/{stream}/index.m3u8` starts (on demand, or always per [`Options::always_on`])
//! one muxer task per stream that holds one bus [`bus::Subscriber`] and feeds an
//! [`hls::Segmenter`]; its segments and playlist are shared `Bytes` published to every request
//! through a `watch` channel, so the work is once per stream, never per viewer. The task stops
//! after [`Options::idle_timeout`] without requests (or when the stream leaves the bus).
//!
//! URLs, relative to the playlist (a per-session token keeps names unique, so segments can be
//! cached for a long time by a CDN):
//!
//! | path | content | Cache-Control |
//! |---|---|---|
//! | `/{app}/{stream}/index.m3u8` | live playlist | `no-cache` |
//! | `/{app}/{stream}/{token}-{seq}.ts` | MPEG-TS segment (immutable) | `public, max-age=…, immutable` |
//! | `/{app}/{stream}/{token}-{id}.key` | AES-128 key, when the app is encrypted | `private, no-store` |
//!
//! What it is not: no protocol logic lives here (that is `hls` and `ts-mux`); this crate only
//! moves bus events into the segmenter and bytes out to HTTP.
//!
//! Access: the playlist and every segment and key request is decided by
//! [`access::Access::check`] before a muxer is started or anything is served ([`gate`]); a
//! refusal is 401 or 403 with a short reason. The playlist served to a viewer repeats the
//! credential of its URL (`token=`, or a signed link's `expires=` and `sig=`) in every segment
//! and key URI ([`hls::playlist::with_query`]), so hls.js and Safari send it with each request.
//! The playlist itself stays one shared `Bytes` per stream; the rewrite is one pass over a few
//! hundred bytes, made only for a viewer whose URL has a credential.
//!
//! HLS viewers are counted on the bus stream (`StreamStats::viewers_of(Protocol::Hls)`): a
//! client (address plus User-Agent) counts while it has made a request within the last two
//! playlist windows.

mod from_bus;
mod gate;
mod server;

use std::sync::Arc;
use std::time::Duration;

pub use server::{router, router_live};

/// What a stream's running HLS muxer has produced, for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HlsStats {
    /// Segments finished since the muxer started.
    pub segments: u64,
    /// The duration of the newest finished segment.
    pub last_segment: Option<Duration>,
    /// Tags the segmenter could not mux.
    pub skipped_tags: u64,
    /// Discontinuities started.
    pub discontinuities: u64,
}

/// The HLS figures of `stream`'s muxer; `None` while no muxer runs for it.
pub fn stats(stream: &bus::Stream) -> Option<HlsStats> {
    stream
        .running_remuxer::<from_bus::StreamHls>()
        .map(|hls| hls.stats())
}
// The pure part of the route, public for the fuzz targets (`fuzz/`).
pub use server::{classify as classify_file, File as RequestedFile};

/// Settings of the HLS shell.
#[derive(Debug, Clone)]
pub struct Options {
    /// Target segment duration; segments are cut on the first keyframe after it.
    pub target_duration: Duration,
    /// Segments listed in the live playlist.
    pub window: usize,
    /// Segments kept available after they leave the playlist (for slow players).
    pub retain_after_window: usize,
    /// Audio frames within this span share one PES packet (less TS overhead, more latency).
    pub audio_batch_ms: u64,
    /// Mux every live stream from the moment it is published, not only after the first request
    /// (the first viewer then gets a full window at once).
    pub always_on: bool,
    /// A stream's muxer stops after this long without any HLS request.
    pub idle_timeout: Duration,
    /// How long a playlist request for a stream with no finished segment yet waits for one.
    pub playlist_wait: Duration,
    /// Apps whose streams are AES-128 encrypted (`"*"` for all); empty disables encryption.
    pub encrypt_apps: Vec<String>,
    /// With encryption, a new key every this many segments.
    pub key_rotation: u64,
    /// `max-age` for segments, which are immutable.
    pub segment_max_age: Duration,
    /// The `Access-Control-Allow-Origin` value.
    pub cors_origin: String,
    /// Who may play: asked for every playlist, segment and key request.
    pub access: Arc<access::Access>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            target_duration: Duration::from_secs(2),
            window: 6,
            retain_after_window: 3,
            audio_batch_ms: 100,
            always_on: false,
            idle_timeout: Duration::from_secs(30),
            playlist_wait: Duration::from_secs(5),
            encrypt_apps: Vec::new(),
            key_rotation: 10,
            segment_max_age: Duration::from_secs(3600),
            cors_origin: "*".to_owned(),
            access: access::Access::open(),
        }
    }
}

impl Options {
    /// Whether streams of `app` are encrypted.
    pub fn encrypts(&self, app: &str) -> bool {
        self.encrypt_apps.iter().any(|a| a == "*" || a == app)
    }
}

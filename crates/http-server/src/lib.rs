//! The HTTP egress shell: HTTP-FLV, WebSocket-FLV, the JSON stream API and the web page.
//!
//! [`router`] returns an axum [`Router`] with its state applied; the gateway merges it with the
//! other HTTP shells' routers (HLS) onto its one `[http]` listener. To log viewers' addresses the
//! gateway's listener puts `ConnectInfo<SocketAddr>` into each request, as
//! `into_make_service_with_connect_info::<SocketAddr>()` does for a plain `axum::serve`.
//!
//! | route | what |
//! |---|---|
//! | `GET/HEAD/OPTIONS /{app}/{stream}.flv` | HTTP-FLV: one chunked body as long as the stream is published |
//! | the same with `Upgrade: websocket` | WebSocket-FLV: the same bytes in binary messages |
//! | `GET /api/streams` | JSON list of live streams (codecs, bitrate, uptime, viewers, URLs) |
//! | `GET /api/streams/{app}/{stream}` | one live stream, or 404 |
//! | `GET /api/access` | access-control decision counters |
//! | `GET /api/sign/{app}/{stream}` | a signed, expiring play (or publish) link, when `auth.sign_secret` is set |
//! | `GET /`, `GET /{file}` | the web page from [`Options::web_root`] |
//! | `GET /vendor/{file}` | whitelisted player libraries from `web/node_modules` |
//!
//! It is not a protocol implementation: FLV framing comes from the `flv` crate, media and
//! statistics from the `bus`. It never copies media payloads per viewer.
//!
//! | spec | used for |
//! |---|---|
//! | Adobe FLV file format 10.1, annex E (E.2 header, E.3 body, E.4.1 tag) | the HTTP-FLV byte stream |
//! | RFC 9112 section 7.1 (chunked transfer coding) | a body of unknown length |
//! | RFC 6455 (WebSocket) | WebSocket-FLV, as mpegts.js's `WebSocketLoader` expects |
//! | Fetch standard, CORS protocol | players on other origins |
//!
//! Behaviour worth knowing:
//!
//! - Each HTTP-FLV viewer is one bus [`bus::Subscriber`]. Its body is a stream of `Bytes`
//!   frames: a 13-byte file header, then per tag an 11-byte header, the tag body (the bus's shared
//!   `Bytes`, never copied) and a 4-byte `PreviousTagSize`. hyper queues the frames and writes
//!   them with vectored writes. Timestamps are rebased so each viewer starts at zero.
//! - A viewer that cannot keep up is handled by the bus: its bounded queue drops to the next
//!   keyframe (counted in the stream's `dropped_tags`). Nothing here buffers without limit.
//! - A viewer that stops reading altogether is dropped by [`SendTimeoutIo`], which the gateway's
//!   HTTP listener wraps around every socket: a connection whose socket accepts no bytes for the
//!   send timeout is closed, and the HTTP-FLV, WebSocket-FLV or MMSH viewer on it is logged and
//!   counted (`stalled_viewers_dropped` in `/api/streams`). A router served some other way (tests
//!   use `axum::serve`) has no such timeout.
//! - The body ends when the stream is removed from the bus, that is when its publisher left and
//!   did not return within the bus's grace period. A publisher that reconnects in time keeps
//!   every viewer: its sequence headers follow in the same body as tags, on the same timeline,
//!   and ffmpeg and mpegts.js take a new AVC/AAC configuration (a new picture size) mid-stream.
//!   What one body cannot carry is a track the FLV file header did not announce: a viewer that
//!   started on a video-only stream does not get the audio a returning publisher adds.
//! - WebSocket-FLV viewers count as `http_flv` viewers (the bus has one protocol for both).
//! - Access: an HTTP-FLV or WebSocket-FLV request is decided by [`access::Access::check`]
//!   (the URL's `token=`, or a signed link's `expires=` and `sig=`) before anything about the
//!   stream is looked up; a refusal is 401 (with `WWW-Authenticate: Bearer`) or 403 and a short
//!   plain-text reason. `/api/*` and the page's HTML need the API token when one is set
//!   ([`require_api_token`]); the page's scripts, styles and player libraries are public code.
//! - The app names `api` and `vendor` cannot be played over HTTP-FLV: those first path segments
//!   belong to the API and the player libraries.

mod api;
mod auth;
mod errors;
mod flv_http;
pub mod from_bus;
mod send_timeout;
mod web;

pub use auth::require_api_token;
pub use errors::{json_error, json_errors};
pub use send_timeout::SendTimeoutIo;
// The pure parts of the routes, public for the fuzz targets (`fuzz/`).
pub use api::host_part;
pub use flv_http::stream_key;

use std::path::PathBuf;

use axum::Router;

/// Settings of the HTTP shell. Every field has a working default.
#[derive(Debug, Clone)]
pub struct Options {
    /// Directory holding the web page (`index.html`, `player.html`, ...) and its `node_modules`.
    pub web_root: PathBuf,
    /// Base URL under which viewers reach this HTTP listener, such as
    /// `https://live.example.com`, for the HTTP-FLV, WebSocket-FLV and HLS URLs in the API.
    /// `None`: `http://` plus the request's `Host` header.
    pub public_http_base: Option<String>,
    /// Host name put in the RTMP, RTSP and MMS URLs. `None`: the request's `Host` without its port.
    pub public_host: Option<String>,
    /// Port advertised in RTMP URLs; `None` leaves RTMP URLs out.
    pub rtmp_port: Option<u16>,
    /// Port advertised in RTSP URLs; `None` leaves RTSP URLs out.
    pub rtsp_port: Option<u16>,
    /// Port advertised in MMS URLs; `None` leaves MMS URLs out.
    pub mms_port: Option<u16>,
    /// Port advertised in RTMPS URLs; `None` leaves them out.
    pub rtmps_port: Option<u16>,
    /// Port advertised in RTSPS URLs; `None` leaves them out.
    pub rtsps_port: Option<u16>,
    /// Whether HLS URLs are advertised (the HLS routes belong to the `hls-server` crate).
    pub hls: bool,
    /// Write batching of HTTP-FLV and WebSocket-FLV viewers: see [`from_bus::flv_frames`].
    pub flv_write_delay: std::time::Duration,
    /// Who may play, and the API token: asked before every FLV viewer, API call and page.
    pub access: std::sync::Arc<access::Access>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            web_root: PathBuf::from("web"),
            public_http_base: None,
            public_host: None,
            rtmp_port: Some(1935),
            rtsp_port: Some(554),
            mms_port: Some(1755),
            rtmps_port: None,
            rtsps_port: None,
            hls: true,
            flv_write_delay: std::time::Duration::ZERO,
            access: access::Access::open(),
        }
    }
}

/// Put into a request's extensions by a listener that received it over TLS: access checks say
/// so, and the HTTP, HLS and WebSocket URLs the API shows for it start `https://` and `wss://`
/// (unless [`Options::public_http_base`] names the base).
pub use access::OverTls;

/// State shared by every handler.
#[derive(Debug, Clone)]
struct AppState {
    bus: bus::Bus,
    opts: std::sync::Arc<arc_swap::ArcSwap<Options>>,
}

impl AppState {
    /// The options in force; a request (a whole FLV stream included) keeps the ones it began
    /// with.
    fn opts(&self) -> std::sync::Arc<Options> {
        self.opts.load_full()
    }
}

/// Every route of this shell, state applied, ready to merge into the gateway's router.
pub fn router(bus: bus::Bus, opts: Options) -> Router {
    router_live(
        bus,
        std::sync::Arc::new(arc_swap::ArcSwap::from_pointee(opts)),
    )
}

/// [`router`] with options a configuration reload replaces: each request reads the ones in force
/// when it arrives. `web_root` is read once, here (a new one needs a restart), and a
/// replacement keeps the same `access` handle.
pub fn router_live(bus: bus::Bus, opts: std::sync::Arc<arc_swap::ArcSwap<Options>>) -> Router {
    let (web_root, access) = {
        let now = opts.load();
        (now.web_root.clone(), std::sync::Arc::clone(&now.access))
    };
    let state = AppState { bus, opts };
    Router::new()
        .merge(flv_http::routes())
        .merge(api::routes(&access))
        .with_state(state)
        .merge(web::routes(&web_root, access))
}

//! The MMS egress shell: live bus streams for legacy `mms://` clients.
//!
//! - MMST (MMS over TCP, MS-MMSP) on its own listener, default port 1755: [`run`].
//! - MMSH (MMS over HTTP, MS-WMSP) on the gateway's `[http]` listener: [`mmsh_layer_or_router`]
//!   wraps the gateway's router so that requests from Windows Media clients (an `NSPlayer` user
//!   agent, `Pragma: xClientGUID` / `xPlayStrm`) and `.asx` playlist requests are answered here
//!   before any other route sees them.
//! - `GET /{app}/{stream}.asx` and `GET /{PublishingPoint}.asx`: an ASX playlist with the
//!   `mms://` URL first and `mmsh://` / `http://` fallbacks.
//!
//! Names resolve through [`Options::publishing_points`] (case-insensitive), else as
//! `{app}/{stream}` directly, and [`Options::access`] decides who may play the stream a name
//! resolves to (`auth.rs`) before its header is sent. Each stream is remuxed to ASF once (crate `asf`) and shared by all
//! its MMS viewers through a bounded ring; framing comes from crate `mms`. This crate holds no
//! protocol logic of its own: it feeds sockets to those sans-IO cores and drains their output.
//!
//! | specification | used for |
//! |---|---|
//! | MS-MMSP | the MMST command exchange, through `mms::mmst` |
//! | MS-WMSP | the MMSH requests and `$H`/`$D`/`$E` chunks, through `mms::mmsh` |
//! | ASF 1.20.03 | header and data packets, through `asf` |
//! | Windows Media metafile (ASX 3.0) | the `.asx` playlists |
//!
//! The options can be replaced while the shell runs ([`serve`] and [`mmsh_layer_or_router`]
//! share one [`ArcSwap`], which a configuration reload stores new ones into), and nothing
//! running is disturbed: each MMSH request and each MMST connection reads the options once
//! when it starts, and so does each stream's ASF muxer. Names resolve against the options in
//! force when a request (MMSH) or an OpenFile (MMST) arrives, so a publishing point added by a
//! reload plays at once, and a removed one is refused to new requests while its viewers keep
//! playing.

mod asx;
mod auth;
mod conn;
mod from_bus;
mod mapping;
mod mmsh;
mod server;

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use axum::Router;
use bus::Bus;

// The pure parts of the routes, public for the fuzz targets (`fuzz/`).
pub use crate::asx::{playlist as asx_playlist, split_host};
pub use crate::mapping::{resolve, Target};
pub use crate::mmsh::strip_asx;
pub use crate::mmsh::{mmsh_middleware, MmshState};
pub use crate::server::{run, serve};

/// A configured publishing point: `[[mms.publishing_point]] name = "LiveEvents", stream = "live/test"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishingPoint {
    /// The name clients use: `mms://host/LiveEvents`.
    pub name: String,
    /// The bus key it plays, `{app}/{stream}`.
    pub stream: String,
}

/// Settings of the MMS shell. Every field has a working default.
///
/// Replaced while the shell runs, they apply to what starts next: an MMSH request or an MMST
/// connection reads them when it starts (timeouts, `public_host`, `mmst_port`, `access`); the
/// publishing points are read at each MMSH request and MMST OpenFile; and a stream's ASF
/// muxer reads `packet_size`, `preroll_ms`, `max_packet_delay_ms`, `queue_packets`,
/// `gop_cache_max_bytes` and `idle_feed_timeout` when it starts, for its life (a viewer joining
/// a running muxer gets that muxer's packets). Nothing needs a restart; the listener's address
/// is not an option here.
///
/// `conn_limits` and `access` are shared handles: whoever replaces the options passes the same
/// ones again (clones of them), changing what they hold through their own methods
/// (`ConnLimits::set_admission`, `Access::replace`), so that their counters stay whole.
#[derive(Debug, Clone)]
pub struct Options {
    /// Publishing points; names not listed resolve as `{app}/{stream}`.
    pub publishing_points: Vec<PublishingPoint>,
    /// The MMST listener's admission (open connections in total and per client, new
    /// connections per client a second) and its counters; a connection past a limit is closed
    /// at once (counted, logged at most once a second). MMSH counts under the HTTP listener.
    pub conn_limits: netutil::ConnLimits,
    /// ASF data packet size in bytes (256 to 65000).
    pub packet_size: usize,
    /// ASF preroll in milliseconds, a buffering hint for Windows Media Player.
    pub preroll_ms: u32,
    /// A partly filled packet is sent once media this much newer arrives (latency bound).
    pub max_packet_delay_ms: u32,
    /// Packets a viewer may fall behind before it skips to the next keyframe.
    pub queue_packets: usize,
    /// Bytes of packets cached since the last keyframe, so new viewers start at once.
    pub gop_cache_max_bytes: usize,
    /// How long a new viewer waits for the stream's first frame (and so its ASF header).
    pub header_timeout: Duration,
    /// An MMST client that sends no command for this long before playing is disconnected.
    pub command_timeout: Duration,
    /// An MMST write that cannot complete for this long (the client stopped reading) ends the
    /// connection.
    pub write_timeout: Duration,
    /// The per-stream ASF muxer stops after this long without viewers.
    pub idle_feed_timeout: Duration,
    /// Host name written into ASX playlists; `None`: the request's `Host` without its port.
    pub public_host: Option<String>,
    /// MMST port written into `mms://` URLs of ASX playlists.
    pub mmst_port: u16,
    /// Who may play which stream (a publishing point as the stream it maps to): MMSH is
    /// refused with HTTP 401 or 403, MMST's OpenFile with E_ACCESSDENIED. Default: everyone.
    pub access: std::sync::Arc<access::Access>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            publishing_points: Vec::new(),
            conn_limits: netutil::ConnLimits::new("MMST", netutil::Admission::default()),
            packet_size: 4096,
            preroll_ms: 0,
            max_packet_delay_ms: 250,
            queue_packets: 1024,
            gop_cache_max_bytes: 8 * 1024 * 1024,
            header_timeout: Duration::from_secs(5),
            command_timeout: Duration::from_secs(60),
            write_timeout: Duration::from_secs(30),
            idle_feed_timeout: Duration::from_secs(30),
            public_host: None,
            mmst_port: 1755,
            access: access::Access::open(),
        }
    }
}

/// Wraps the gateway's HTTP router so that MMSH and `.asx` requests are served first:
///
/// ```ignore
/// let opts = Arc::new(ArcSwap::from_pointee(mms_opts));
/// let app = mms_server::mmsh_layer_or_router(app, bus.clone(), Arc::clone(&opts));
/// ```
///
/// Every other request reaches `inner` unchanged. Serve the result with
/// `into_make_service_with_connect_info::<SocketAddr>()` to log viewers' addresses.
///
/// Each request reads the options `opts` holds when it arrives; share the handle with
/// [`serve`] so that a reload replaces them for both.
pub fn mmsh_layer_or_router(inner: Router, bus: Bus, opts: Arc<ArcSwap<Options>>) -> Router {
    let state = MmshState::new(bus, opts);
    Router::new()
        .fallback_service(inner)
        .layer(axum::middleware::from_fn_with_state(state, mmsh_middleware))
}

/// A router that serves only MMSH and `.asx` (404 for anything else) with fixed options, for
/// tests and for a dedicated MMSH listener.
pub fn router(bus: Bus, opts: Options) -> Router {
    mmsh_layer_or_router(Router::new(), bus, Arc::new(ArcSwap::from_pointee(opts)))
}

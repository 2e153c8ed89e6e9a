//! The RTSP egress shell: every live stream on the bus is served as an RTSP 1.0 presentation at
//! `rtsp://host:port/{app}/{stream}`, with RTP/RTCP over UDP or interleaved on the RTSP connection,
//! and optionally at `rtsps://` on a TLS listener (interleaved only: a SETUP for UDP is answered
//! 461, since the media would leave in clear).
//!
//! This crate owns sockets, tasks and timers and nothing else: RTSP parsing and session state live
//! in crate `rtsp`, packetization and RTCP in crate `rtp`. It meets the other shells only at the bus.
//!
//! | piece | file |
//! |---|---|
//! | accept loop, [`Options`] | `lib.rs` |
//! | per-stream packetizer task (one bus subscriber, packets shared by every session) | `from_bus.rs` |
//! | one RTSP connection and its session | `conn.rs` |
//! | who may play: DESCRIBE, SETUP and PLAY asked of crate `access`, `on_stop` | `auth.rs` |
//! | media sending, keyframe resync, receiver-report statistics | `session.rs` |
//! | UDP port pairs | `ports.rs` |
//! | the per-client-address session cap, the counts of refused SETUPs | `limits.rs` |
//! | bus tags' FLV media (parsed once at ingest) to codec payloads | `flv_body.rs` |
//!
//! The options can be replaced while the shell runs ([`serve`] takes them behind an
//! [`ArcSwap`], which a configuration reload stores new ones into): each connection takes the
//! options in force when it is accepted, and each stream's packetizer those in force when it
//! starts, and keeps them for its life. So what changed applies to the connections and
//! packetizers that start next, and nothing running is disturbed (see [`Options`] for what
//! needs a restart).
//!
//! Architecture Invariant: RTP is packetized once per stream and track; a session's queue is its
//! cursor in the stream's bounded broadcast ring, and a session that falls a whole ring behind
//! skips to the next keyframe without delaying anyone else.

mod auth;
mod conn;
mod flv_body;
mod from_bus;
mod limits;
mod ports;
mod session;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
pub use limits::{SetupRefusal, SetupRefusalStats, SetupRefusals};
pub use session::{SessionInfo, TrackReport};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// Settings of the RTSP egress; the gateway maps them from `[rtsp]` in its configuration.
///
/// Replaced while [`serve`] runs (through its `ArcSwap`), they apply to what starts next, and
/// connections and packetizers already running keep those they started with:
///
/// - a stream's packetizer reads `mtu`, `sender_report_interval`, `queue_units` and
///   `stream_linger` once when it starts (the first DESCRIBE of a stream nobody watches);
/// - a connection reads the rest once when it is accepted: socket options, timeouts, write
///   batching, the `Server` header, `access`, and the `max_sessions_per_ip` its SETUPs are
///   checked against (sessions already past a lowered cap stay);
/// - the UDP port range (`udp_port_min`, `udp_port_max`, `udp_bind_ip`) is bound into the port
///   pool when [`serve`] starts and needs a restart.
///
/// `conn_limits`, `setup_refusals` and `access` are shared handles: whoever replaces the options
/// passes the same ones again (clones of them), changing what they hold through their own
/// methods (`ConnLimits::set_admission`, `Access::replace`), so that the counters stay whole
/// and every connection, old or new, reports into the same place.
#[derive(Debug, Clone)]
pub struct Options {
    /// The listener's admission (open connections in total and per client, new connections per
    /// client a second) and its counters, which connections also report their timeouts to; a
    /// connection past a limit is closed at once (counted, logged at most once a second). The
    /// gateway keeps a clone for its stats API.
    pub conn_limits: netutil::ConnLimits,
    /// Counts of SETUPs refused by the session and transport limits; the gateway keeps a clone.
    pub setup_refusals: Arc<SetupRefusals>,
    /// The largest RTP packet sent, header included (bytes).
    pub mtu: usize,
    /// A UDP session with no request, RTCP or RTP from its client for this long is closed.
    pub session_timeout: Duration,
    /// The first port of the UDP server port range (RTP on even ports, RTCP on the odd port next).
    /// Read once when [`serve`] starts (a restart applies a new range).
    pub udp_port_min: u16,
    /// The last port of the UDP server port range; read once when [`serve`] starts.
    pub udp_port_max: u16,
    /// The address UDP server ports bind to; `None` means the RTSP listener's address. Read once
    /// when [`serve`] starts.
    pub udp_bind_ip: Option<IpAddr>,
    /// How often each track sends an RTCP Sender Report.
    pub sender_report_interval: Duration,
    /// Capacity of each stream's packet ring, in access units: how far a session may fall behind
    /// before it skips to the next keyframe.
    pub queue_units: usize,
    /// How long a stream's packetizer outlives its last session (so a reconnecting viewer starts fast).
    pub stream_linger: Duration,
    /// SO_SNDBUF of RTSP connections; `None` keeps the kernel's autotuning. A smaller buffer makes a
    /// stalled TCP viewer fall behind (and skip to a keyframe) sooner instead of queueing seconds of
    /// media in the kernel.
    pub tcp_send_buffer: Option<usize>,
    /// A write to an RTSP connection that makes no progress for this long closes the connection
    /// (the client stopped reading; a merely slow one skips to keyframes long before).
    pub write_timeout: Duration,
    /// Write batching for TCP-interleaved sessions: past its start-up snapshot, a unit that
    /// finds nothing else queued waits this long for the units that follow and they go out in
    /// one vectored write. Zero writes each unit as it comes. UDP sessions send each packet as
    /// it comes either way.
    pub tcp_write_delay: Duration,
    /// The most RTSP sessions one client IP address may hold at once (each holds at most one UDP
    /// port pair per track); a SETUP past it is answered 453 Not Enough Bandwidth. Lowered by a
    /// replacement, it refuses the SETUPs of connections accepted after it; sessions already past
    /// it stay.
    pub max_sessions_per_ip: usize,
    /// A connection without a session (before SETUP, after TEARDOWN) that completes no request
    /// for this long is closed, so silent or trickling connections cannot pile up.
    pub request_timeout: Duration,
    /// The `Server` header value.
    pub server_name: String,
    /// Who may play which stream; DESCRIBE, SETUP and PLAY are refused (401 with
    /// `WWW-Authenticate`, or 403) when it says no. Default: everyone.
    pub access: Arc<access::Access>,
}

/// Default of [`Options::max_sessions_per_ip`]: enough for an NVR recording a few dozen streams
/// from one address, and with two tracks per stream a tenth of the default 500-pair port range.
pub const DEFAULT_MAX_SESSIONS_PER_IP: usize = 32;

impl Default for Options {
    fn default() -> Self {
        Options {
            conn_limits: netutil::ConnLimits::new("RTSP", netutil::Admission::default()),
            setup_refusals: Arc::default(),
            mtu: rtp::DEFAULT_MTU,
            session_timeout: Duration::from_secs(60),
            udp_port_min: 30000,
            udp_port_max: 31999,
            udp_bind_ip: None,
            sender_report_interval: Duration::from_secs(5),
            queue_units: 512,
            stream_linger: Duration::from_secs(10),
            tcp_send_buffer: None,
            write_timeout: Duration::from_secs(10),
            tcp_write_delay: Duration::ZERO,
            max_sessions_per_ip: DEFAULT_MAX_SESSIONS_PER_IP,
            request_timeout: Duration::from_secs(10),
            server_name: "media-gateway".to_owned(),
            access: access::Access::open(),
        }
    }
}

/// The listeners the shell serves; at least one should be present.
#[derive(Debug, Default)]
pub struct Listeners {
    /// Plain RTSP.
    pub plain: Option<netutil::Listener>,
    /// RTSPS: accepted connections do the TLS handshake of the acceptor first.
    pub tls: Option<(netutil::Listener, tls::Acceptor)>,
}

/// Serves RTSP on `listener` with fixed options until `shutdown` is cancelled (for tests and
/// examples; [`serve`] takes options that can be replaced).
pub async fn run(
    listener: TcpListener,
    bus: bus::Bus,
    opts: Options,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let listeners = Listeners {
        plain: Some(netutil::Listener::new("RTSP", listener).0),
        tls: None,
    };
    serve(
        listeners,
        bus,
        Arc::new(ArcSwap::from_pointee(opts)),
        shutdown,
    )
    .await
}

/// Serves RTSP and RTSPS on already-bound listeners until `shutdown` is cancelled. Both share
/// `opts`, the UDP port pool, the per-address session count and one count of open connections.
///
/// `opts` may be replaced while this runs (`opts.store(...)`): each connection takes a snapshot
/// of the options in force when it is accepted, and each stream's packetizer one when it
/// starts, so what changed applies from the next connection or packetizer on and no running
/// one is disturbed. The UDP port range is taken from the options in force now and stays
/// (see [`Options`]).
pub async fn serve(
    listeners: Listeners,
    bus: bus::Bus,
    opts: Arc<ArcSwap<Options>>,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let mut plain = listeners.plain;
    let (mut secure, acceptor) = listeners.tls.unzip();
    let Some(local) = plain.as_ref().or(secure.as_ref()) else {
        return Ok(());
    };
    let local = local.local_addr()?;
    let tls_local = secure.as_ref().map(|l| l.local_addr()).transpose()?;
    // The port pool is bound to the range in force at start; a new range needs a restart.
    let ports = {
        let now = opts.load();
        let ip = now.udp_bind_ip.unwrap_or(local.ip());
        ports::PortPool::new(ip, now.udp_port_min, now.udp_port_max)
    };
    let ctx = Arc::new(conn::Ctx {
        registry: from_bus::Registry::new(bus, Arc::clone(&opts), shutdown.clone()),
        ports,
        limits: limits::PeerLimits::default(),
        shutdown: shutdown.clone(),
    });
    let plain_local = plain.as_ref().map(|_| local);
    tracing::info!(
        rtsp = plain_local.map(tracing::field::display),
        rtsps = tls_local.map(tracing::field::display),
        "RTSP listening"
    );
    let mut backoff = netutil::AcceptBackoff::new("RTSP");
    loop {
        tokio::select! {
            accepted = tls::accept_either(plain.as_mut(), secure.as_mut()) => match accepted {
                Ok(tls::Accepted { socket, peer, tls }) => {
                    backoff.succeeded();
                    // The connection's options for its whole life.
                    let conn_opts = opts.load_full();
                    // Over a cap the socket is dropped, which closes it; `conn_limits` logged it.
                    let Ok(permit) = conn_opts.conn_limits.try_acquire(peer.ip()) else { continue };
                    conn::prepare(&socket, peer, &conn_opts);
                    let acceptor = acceptor.as_ref().filter(|_| tls).cloned();
                    let ctx = Arc::clone(&ctx);
                    let id = netutil::ConnId::next();
                    let conn = async move {
                        serve_one(ctx, conn_opts, socket, peer, acceptor, id).await;
                        drop(permit);
                    };
                    tokio::spawn(conn.instrument(netutil::conn_span!(id, peer)));
                }
                // Out of file descriptors and the like: back off instead of spinning.
                Err(e) => backoff.failed(&e).await,
            },
            _ = shutdown.cancelled() => return Ok(()),
        }
    }
}

/// Serves one accepted socket with the options `opts` it was accepted under: plain, or after its
/// TLS handshake (which must finish within the request timeout) when it came in on the RTSPS
/// listener.
async fn serve_one(
    ctx: Arc<conn::Ctx>,
    opts: Arc<Options>,
    socket: tokio::net::TcpStream,
    peer: std::net::SocketAddr,
    acceptor: Option<tls::Acceptor>,
    id: netutil::ConnId,
) {
    let Some(acceptor) = acceptor else {
        let (rd, wr) = socket.into_split();
        return conn::serve(ctx, opts, rd, wr, peer, false, id).await;
    };
    let handshake = acceptor.handshake(socket, peer, opts.request_timeout);
    let stream = tokio::select! {
        s = handshake => s,
        _ = ctx.shutdown.cancelled() => None,
    };
    if let Some(stream) = stream {
        let (rd, wr) = tokio::io::split(stream);
        conn::serve(ctx, opts, rd, wr, peer, true, id).await;
    }
}

/// The RTSP sessions playing a bus stream, with their receiver-report figures, for the stats API.
pub fn sessions(stream: &bus::Stream) -> Vec<SessionInfo> {
    stream.attachment(session::SessionTable::default).snapshot()
}

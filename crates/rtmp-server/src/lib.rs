//! The RTMP shell: one TCP listener where encoders publish and players play,
//! both through the media bus, and optionally an RTMPS listener (the same over TLS,
//! `rtmps://`) sharing its options and connection limits.
//!
//! This crate owns sockets and timers and nothing else: the protocol is the
//! sans-IO `rtmp` crate ([`rtmp::ServerSession`]), codec inspection is `flv` and
//! `codecs`, and streams are the `bus`. Each connection is one task that feeds
//! bytes into its session, answers the session's events, and writes what the
//! session (and, for players, the bus) produces.
//!
//! | spec | where |
//! |---|---|
//! | Adobe RTMP 1.0 (handshake, chunking, commands) | `rtmp` crate, driven by [`conn`] |
//! | FLV 10.1 / Enhanced RTMP tag headers | `flv` crate, used by [`to_bus`] |
//!
//! Access: every publish and play is decided by [`access::Access::check`] before the session
//! answers it ([`conn`]); a refusal is `NetStream.Publish.Denied` or `NetStream.Play.Failed`
//! with the reason as description, and the connection is closed.
//!
//! Architecture Invariant: a player's payload bytes are never copied; each
//! viewer builds only chunk headers and writes the shared `Bytes` with
//! vectored writes ([`from_bus`]). A slow viewer is the bus's concern (it skips
//! to the next keyframe); this crate never buffers more than one bounded batch.

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub mod conn;
pub mod from_bus;
pub mod server;
pub mod to_bus;

/// Settings of the RTMP shell. The gateway maps its `[rtmp]` config section
/// onto these fields.
#[derive(Debug, Clone)]
pub struct Options {
    /// The listener's admission (open connections in total and per client, new connections
    /// per client a second) and its counters, which connections also report their timeouts to.
    /// A connection past a limit is closed at once (counted, logged at most once a second). The
    /// gateway keeps a clone for its stats API.
    pub conn_limits: netutil::ConnLimits,
    /// Chunk size we send with (Set Chunk Size right after `connect`).
    pub chunk_size: u32,
    /// Longest RTMP message accepted from a client, in bytes.
    pub max_message_size: u32,
    /// Window Acknowledgement Size and Set Peer Bandwidth we announce.
    pub ack_window: u32,
    /// How long a player of a stream that is not live waits for a publisher
    /// before NetStream.Play.StreamNotFound; zero answers at once.
    pub wait_for_publisher: Duration,
    /// How long the handshake (C0 to C2) may take.
    pub handshake_timeout: Duration,
    /// A connection with no traffic either way for this long is closed.
    pub idle_timeout: Duration,
    /// A player whose socket accepts no bytes for this long (it stopped reading) is
    /// disconnected, logged and counted on its stream ([`bus::Stream::count_stalled_viewer`]).
    pub send_timeout: Duration,
    /// SO_SNDBUF of accepted connections; `None` keeps the kernel's autotuning. It bounds what a
    /// player that stopped reading holds in the kernel, and how soon its send timeout starts.
    pub send_buffer: Option<usize>,
    /// Most tags written to one player in one vectored write.
    pub write_batch_tags: usize,
    /// Most payload bytes written to one player in one vectored write.
    pub write_batch_bytes: usize,
    /// Once a player has its start-up burst, how long it collects tags after the first one
    /// arrives before writing them together: fewer wake-ups and system calls per viewer at the
    /// price of at most this much added latency. Zero writes every tag as it comes.
    pub write_delay: Duration,
    /// Who may publish and play: asked before every publish and play is accepted.
    pub access: Arc<access::Access>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            conn_limits: netutil::ConnLimits::new("RTMP", netutil::Admission::default()),
            chunk_size: 4096,
            max_message_size: rtmp::chunk::DEFAULT_MAX_MESSAGE_SIZE,
            ack_window: 2_500_000,
            wait_for_publisher: Duration::ZERO,
            handshake_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(30),
            send_timeout: Duration::from_secs(20),
            send_buffer: None,
            write_batch_tags: 64,
            write_batch_bytes: 512 * 1024,
            write_delay: Duration::ZERO,
            access: access::Access::open(),
        }
    }
}

/// The listeners the shell serves; at least one should be present.
#[derive(Debug, Default)]
pub struct Listeners {
    /// Plain RTMP.
    pub plain: Option<netutil::Listener>,
    /// RTMPS: accepted connections do the TLS handshake of the acceptor first.
    pub tls: Option<(netutil::Listener, tls::Acceptor)>,
}

/// Serves RTMP on an already-bound listener until `shutdown` is cancelled.
pub async fn run(
    listener: TcpListener,
    bus: bus::Bus,
    opts: Options,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let listeners = Listeners {
        plain: Some(netutil::Listener::new("RTMP", listener).0),
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

/// Serves RTMP and RTMPS on already-bound listeners until `shutdown` is cancelled. Both share
/// `opts`, and one count of open connections (`max_connections`, `max_connections_per_ip`).
///
/// `opts` may be replaced while this runs (a configuration reload): every connection takes the
/// options in force when it is accepted and keeps them, so a replacement applies to the
/// connections that come next and disturbs none that is open. The replacement must keep the
/// same `conn_limits` and `access` handles (their settings change in place).
pub async fn serve(
    listeners: Listeners,
    bus: bus::Bus,
    opts: Arc<ArcSwap<Options>>,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    server::Server::new(listeners, bus, opts, shutdown)
        .run()
        .await
}

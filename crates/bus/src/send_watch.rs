//! What a connection's socket layer and the viewer it carries tell each other about a viewer that
//! stopped reading.
//!
//! On the shared HTTP listener the code that owns the socket (and notices that it accepted no
//! bytes for the send timeout) is not the code that knows which stream and protocol the
//! connection plays (an HTTP-FLV, WebSocket-FLV or MMSH handler). A [`SendWatch`] is the meeting
//! point: the socket layer creates one per connection and hands it to the handlers; a handler that
//! turns the connection into a viewer [`attaches`](SendWatch::attach) its stream; when the socket
//! layer gives up it calls [`SendWatch::stalled`], which logs one line and counts the viewer on its
//! stream. Nothing here touches a socket or reads a clock.
//!
//! A watch made [`for a connection id`](SendWatch::for_conn) also lists the viewer in the bus's
//! [`crate::clients`], with the watch's byte count and the viewer's drops as its figures, and
//! carries the token a kick through the API cancels, which the socket layer (and an upgraded
//! WebSocket) honours by closing the connection.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use netutil::display::Secs;
use netutil::ConnId;
use tokio_util::sync::CancellationToken;

use crate::clients::{ClientGuard, ClientInfo, Clients, Figures, Role};
use crate::{Protocol, Stream};

/// One connection's send progress and the viewer it carries, if any.
#[derive(Debug)]
pub struct SendWatch {
    peer: Option<SocketAddr>,
    bytes_sent: AtomicU64,
    stalled: AtomicBool,
    /// The socket's last write found it full, and no write has succeeded since.
    blocked: AtomicBool,
    unblocked: tokio::sync::Notify,
    viewer: Mutex<Option<(Arc<Stream>, &'static str, Protocol)>>,
    /// The connection's id, when it is listed in the bus's clients.
    id: Option<ConnId>,
    /// Cancelled to end the connection (a kick through the API).
    kick: CancellationToken,
    /// Units the connection's viewers skipped because they fell behind.
    dropped: Arc<AtomicU64>,
}

impl SendWatch {
    /// A watch for a new connection from `peer`.
    pub fn new(peer: Option<SocketAddr>) -> Arc<SendWatch> {
        SendWatch::make(peer, None)
    }

    /// A watch for a new connection from `peer` whose log lines carry `id`: its viewers are
    /// listed in the bus's clients under it ([`SendWatch::client`]).
    pub fn for_conn(peer: Option<SocketAddr>, id: ConnId) -> Arc<SendWatch> {
        SendWatch::make(peer, Some(id))
    }

    fn make(peer: Option<SocketAddr>, id: Option<ConnId>) -> Arc<SendWatch> {
        Arc::new(SendWatch {
            peer,
            bytes_sent: AtomicU64::new(0),
            stalled: AtomicBool::new(false),
            blocked: AtomicBool::new(false),
            unblocked: tokio::sync::Notify::new(),
            viewer: Mutex::new(None),
            id,
            kick: CancellationToken::new(),
            dropped: Arc::default(),
        })
    }

    /// Lists the connection in `clients` as a viewer of `key` over `protocol` (`"http-flv"`),
    /// until the guard drops; `None` for a watch without a connection id.
    pub fn client(
        self: &Arc<Self>,
        clients: &Arc<Clients>,
        protocol: &'static str,
        key: &str,
    ) -> Option<ClientGuard> {
        let info = ClientInfo {
            id: self.id?,
            role: Role::Viewer,
            protocol,
            stream: key.to_owned(),
            peer: self.peer,
        };
        let figures: Arc<dyn Figures> = Arc::clone(self) as Arc<dyn Figures>;
        Some(clients.register(info, figures, self.kick.clone()))
    }

    /// Cancelled when the connection is to be closed (a kick through the API).
    pub fn kicked(&self) -> &CancellationToken {
        &self.kick
    }

    /// A drop callback that counts a viewer's skipped units on this connection.
    pub fn drop_counter(&self) -> impl Fn(u64) + Send + Sync + 'static {
        let dropped = Arc::clone(&self.dropped);
        move |n| {
            dropped.fetch_add(n, Ordering::Relaxed);
        }
    }

    /// Records `n` bytes the socket accepted, also on the attached viewer's stream
    /// ([`Stream::count_sent`]).
    pub fn add_sent(&self, n: usize) {
        self.bytes_sent.fetch_add(n as u64, Ordering::Relaxed);
        if let Some((stream, _, protocol)) = self.lock().as_ref() {
            stream.count_sent(*protocol, n as u64);
        }
    }

    /// Records whether the socket's latest write found it full (`true`) or succeeded (`false`).
    pub fn set_blocked(&self, blocked: bool) {
        if self.blocked.swap(blocked, Ordering::Relaxed) && !blocked {
            self.unblocked.notify_waiters();
        }
    }

    /// Waits while the socket is full, so a viewer produces nothing more for a connection that
    /// cannot take it (what it would produce would only wait in the HTTP layer's write queue,
    /// while the bus ring keeps it for free). Returns at once when the socket is not full, and
    /// once the connection has been given up on.
    pub async fn writable(&self) {
        loop {
            let unblocked = self.unblocked.notified();
            tokio::pin!(unblocked);
            unblocked.as_mut().enable();
            if !self.blocked.load(Ordering::Relaxed) || self.is_stalled() {
                return;
            }
            unblocked.await;
        }
    }

    /// Bytes the socket has accepted so far.
    pub fn bytes_sent(&self) -> u64 {
        self.bytes_sent.load(Ordering::Relaxed)
    }

    /// The connection now carries a viewer of `stream`; `label` names its protocol in logs
    /// (`"ws-flv"`), `protocol` is the one it is counted under.
    pub fn attach(&self, stream: &Arc<Stream>, label: &'static str, protocol: Protocol) {
        *self.lock() = Some((Arc::clone(stream), label, protocol));
    }

    /// The viewer ended; the connection may go on serving other requests.
    pub fn detach(&self) {
        *self.lock() = None;
    }

    /// True once [`SendWatch::stalled`] has been called.
    pub fn is_stalled(&self) -> bool {
        self.stalled.load(Ordering::Relaxed)
    }

    /// The socket accepted no bytes for `timeout` and is being closed: logs one line and, if the
    /// connection carries a viewer, counts it on its stream. Only the first call does anything.
    pub fn stalled(&self, timeout: Duration) {
        if self.stalled.swap(true, Ordering::Relaxed) {
            return;
        }
        self.unblocked.notify_waiters();
        let bytes_sent = self.bytes_sent();
        match self.lock().take() {
            Some((stream, label, protocol)) => {
                stream.count_stalled_viewer(protocol);
                tracing::warn!(
                    peer = self.peer.map(tracing::field::display),
                    stream = %stream.key(),
                    protocol = %label,
                    bytes_sent,
                    timeout = %Secs(timeout),
                    "viewer dropped: its socket accepted nothing for the send timeout"
                );
            }
            None => tracing::info!(
                peer = self.peer.map(tracing::field::display),
                bytes_sent,
                timeout = %Secs(timeout),
                "HTTP connection closed: its socket accepted nothing for the send timeout"
            ),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<(Arc<Stream>, &'static str, Protocol)>> {
        self.viewer.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Figures for SendWatch {
    fn bytes_sent(&self) -> u64 {
        SendWatch::bytes_sent(self)
    }
    fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

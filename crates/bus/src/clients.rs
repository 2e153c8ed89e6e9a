//! The clients of the bus: every publisher and viewer connection, by its connection id, so the
//! control API can list them and end one.
//!
//! A shell registers a connection once, when it becomes a publisher or a viewer (an RTMP publish
//! or play, an HTTP-FLV or WebSocket-FLV response, an RTSP session's first PLAY, an MMSH request
//! or MMST OpenFile), with the connection's [`ConnId`] (the `id` of its log lines), its
//! [`CancellationToken`] and where its byte and drop counts live ([`Figures`]). The entry lives
//! as long as the [`ClientGuard`] it returns. Nothing is counted here: the figures are read
//! where the shell already keeps them, when the list is asked for.
//!
//! [`Clients::kick`] cancels the token; the shell ends the connection the way it ends one at
//! shutdown (a publisher's stream then goes through the bus's unpublish grace, as on any
//! disconnect). HLS viewers hold no connection and are not listed.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dashmap::DashMap;
use netutil::ConnId;
use tokio_util::sync::CancellationToken;

/// What a client is to its stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Publisher,
    Viewer,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Publisher => "publisher",
            Role::Viewer => "viewer",
        }
    }
}

/// Where a client's figures are kept: read when the list is asked for, never pushed.
pub trait Figures: Send + Sync {
    /// Bytes written to the client's socket.
    fn bytes_sent(&self) -> u64;
    /// Bytes read from it.
    fn bytes_received(&self) -> u64 {
        0
    }
    /// Units (tags, RTP units, ASF packets) a viewer skipped because it fell behind.
    fn dropped(&self) -> u64 {
        0
    }
}

/// Figures for a shell that keeps none of its own: atomics it adds to once per socket read or
/// write (and once per lag).
#[derive(Debug, Default)]
pub struct ClientCounters {
    sent: AtomicU64,
    received: AtomicU64,
    dropped: AtomicU64,
}

impl ClientCounters {
    pub fn add_sent(&self, n: u64) {
        self.sent.fetch_add(n, Ordering::Relaxed);
    }

    pub fn add_received(&self, n: u64) {
        self.received.fetch_add(n, Ordering::Relaxed);
    }

    pub fn add_dropped(&self, n: u64) {
        self.dropped.fetch_add(n, Ordering::Relaxed);
    }

    /// A drop callback for [`crate::Subscriber::on_drops`] that counts into these counters.
    pub fn drop_counter(self: &Arc<Self>) -> impl Fn(u64) + Send + Sync + 'static {
        let me = Arc::clone(self);
        move |n| me.add_dropped(n)
    }
}

impl Figures for ClientCounters {
    fn bytes_sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }
    fn bytes_received(&self) -> u64 {
        self.received.load(Ordering::Relaxed)
    }
    fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

/// Who a client is, given when it registers.
#[derive(Debug, Clone)]
pub struct ClientInfo {
    pub id: ConnId,
    pub role: Role,
    /// The protocol as the API names it: `rtmp`, `rtmps`, `http-flv`, `ws-flv`, `rtsp`, `mmsh`,
    /// `mmst`.
    pub protocol: &'static str,
    /// The bus key `{app}/{stream}`.
    pub stream: String,
    pub peer: Option<SocketAddr>,
}

struct Entry {
    info: ClientInfo,
    started: Instant,
    figures: Arc<dyn Figures>,
    cancel: CancellationToken,
}

/// One client as the API lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientSnapshot {
    pub id: ConnId,
    pub role: Role,
    pub protocol: &'static str,
    pub stream: String,
    pub peer: Option<SocketAddr>,
    /// Since the client registered (its publish or play began).
    pub duration: Duration,
    pub bytes_sent: u64,
    pub bytes_received: u64,
    pub dropped: u64,
}

/// The registry: one entry per registered connection, keyed by its id.
#[derive(Default)]
pub struct Clients {
    map: DashMap<u64, Arc<Entry>>,
}

impl std::fmt::Debug for Clients {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Clients")
            .field("len", &self.map.len())
            .finish()
    }
}

impl Clients {
    /// Registers a client; `cancel` is the token whose cancellation ends its connection (a
    /// child of the connection's shutdown token). The entry is removed when the guard drops. A
    /// connection registers one client at a time; a later registration under the same id (the
    /// next request of a kept-alive HTTP connection) replaces the entry.
    pub fn register(
        self: &Arc<Self>,
        info: ClientInfo,
        figures: Arc<dyn Figures>,
        cancel: CancellationToken,
    ) -> ClientGuard {
        let entry = Arc::new(Entry {
            info,
            started: Instant::now(),
            figures,
            cancel,
        });
        self.map.insert(entry.info.id.get(), Arc::clone(&entry));
        ClientGuard {
            clients: Arc::clone(self),
            entry,
        }
    }

    /// Every client, by id (so in the order they connected).
    pub fn list(&self) -> Vec<ClientSnapshot> {
        let mut all: Vec<ClientSnapshot> = self.map.iter().map(|e| snapshot(e.value())).collect();
        all.sort_by_key(|c| c.id.get());
        all
    }

    /// The clients of the stream `key`, by id.
    pub fn of_stream(&self, key: &str) -> Vec<ClientSnapshot> {
        let mut all = self.list();
        all.retain(|c| c.stream == key);
        all
    }

    /// Ends the connection of client `id`; false if there is none.
    pub fn kick(&self, id: ConnId) -> bool {
        let Some(entry) = self.map.get(&id.get()).map(|e| Arc::clone(e.value())) else {
            return false;
        };
        kicked(&entry);
        true
    }

    /// Ends the connection of the publisher of `key`; false if none is registered.
    pub fn kick_publisher(&self, key: &str) -> bool {
        let publishers: Vec<Arc<Entry>> = self
            .map
            .iter()
            .filter(|e| e.info.role == Role::Publisher && e.info.stream == key)
            .map(|e| Arc::clone(e.value()))
            .collect();
        publishers.iter().for_each(|e| kicked(e));
        !publishers.is_empty()
    }

    /// How many clients are registered.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

fn kicked(entry: &Entry) {
    let i = &entry.info;
    tracing::info!(
        client = %i.id,
        role = i.role.as_str(),
        protocol = i.protocol,
        stream = %i.stream,
        peer = i.peer.map(tracing::field::display),
        "client ended through the API"
    );
    entry.cancel.cancel();
}

fn snapshot(e: &Entry) -> ClientSnapshot {
    ClientSnapshot {
        id: e.info.id,
        role: e.info.role,
        protocol: e.info.protocol,
        stream: e.info.stream.clone(),
        peer: e.info.peer,
        duration: e.started.elapsed(),
        bytes_sent: e.figures.bytes_sent(),
        bytes_received: e.figures.bytes_received(),
        dropped: e.figures.dropped(),
    }
}

/// Keeps a client listed; dropping it removes the entry (unless a later registration under the
/// same id replaced it).
pub struct ClientGuard {
    clients: Arc<Clients>,
    entry: Arc<Entry>,
}

impl ClientGuard {
    /// The client's id.
    pub fn id(&self) -> ConnId {
        self.entry.info.id
    }
}

impl std::fmt::Debug for ClientGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientGuard")
            .field("id", &self.entry.info.id)
            .finish_non_exhaustive()
    }
}

impl Drop for ClientGuard {
    fn drop(&mut self) {
        let id = self.entry.info.id.get();
        self.clients
            .map
            .remove_if(&id, |_, e| Arc::ptr_eq(e, &self.entry));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(id: ConnId, role: Role, stream: &str) -> ClientInfo {
        ClientInfo {
            id,
            role,
            protocol: "rtmp",
            stream: stream.to_owned(),
            peer: Some("127.0.0.1:4000".parse().expect("an address")),
        }
    }

    #[test]
    fn a_client_is_listed_with_its_figures_until_its_guard_drops() {
        let clients = Arc::new(Clients::default());
        let counters = Arc::new(ClientCounters::default());
        let id = ConnId::next();
        let guard = clients.register(
            info(id, Role::Viewer, "live/a"),
            counters.clone(),
            CancellationToken::new(),
        );
        counters.add_sent(10);
        counters.add_sent(5);
        counters.add_received(3);
        (counters.drop_counter())(7);
        let listed = clients.list();
        assert_eq!(listed.len(), 1);
        let c = &listed[0];
        assert_eq!(
            (c.id, c.role, c.stream.as_str()),
            (id, Role::Viewer, "live/a")
        );
        assert_eq!((c.bytes_sent, c.bytes_received, c.dropped), (15, 3, 7));
        assert_eq!(guard.id(), id);
        drop(guard);
        assert!(clients.is_empty());
    }

    #[test]
    fn kicking_cancels_that_client_only() {
        let clients = Arc::new(Clients::default());
        let (a, b) = (CancellationToken::new(), CancellationToken::new());
        let (ida, idb) = (ConnId::next(), ConnId::next());
        let figures = Arc::new(ClientCounters::default());
        let _ga = clients.register(
            info(ida, Role::Viewer, "live/a"),
            figures.clone(),
            a.clone(),
        );
        let _gb = clients.register(info(idb, Role::Viewer, "live/a"), figures, b.clone());
        assert!(clients.kick(idb));
        assert!(b.is_cancelled() && !a.is_cancelled());
        assert!(!clients.kick(ConnId::next()), "an unknown id");
    }

    #[test]
    fn kicking_a_stream_ends_its_publisher_not_its_viewers() {
        let clients = Arc::new(Clients::default());
        let (p, v, other) = (
            CancellationToken::new(),
            CancellationToken::new(),
            CancellationToken::new(),
        );
        let figures = Arc::new(ClientCounters::default());
        let _gp = clients.register(
            info(ConnId::next(), Role::Publisher, "live/a"),
            figures.clone(),
            p.clone(),
        );
        let _gv = clients.register(
            info(ConnId::next(), Role::Viewer, "live/a"),
            figures.clone(),
            v.clone(),
        );
        let _go = clients.register(
            info(ConnId::next(), Role::Publisher, "live/b"),
            figures,
            other.clone(),
        );
        assert!(clients.kick_publisher("live/a"));
        assert!(p.is_cancelled() && !v.is_cancelled() && !other.is_cancelled());
        assert!(!clients.kick_publisher("live/c"));
        assert_eq!(clients.of_stream("live/a").len(), 2);
    }

    #[test]
    fn a_replaced_entry_stays_when_the_old_guard_drops() {
        let clients = Arc::new(Clients::default());
        let id = ConnId::next();
        let figures = Arc::new(ClientCounters::default());
        let first = clients.register(
            info(id, Role::Viewer, "live/a"),
            figures.clone(),
            CancellationToken::new(),
        );
        let _second = clients.register(
            info(id, Role::Viewer, "live/b"),
            figures,
            CancellationToken::new(),
        );
        drop(first);
        let listed = clients.list();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].stream, "live/b");
    }
}

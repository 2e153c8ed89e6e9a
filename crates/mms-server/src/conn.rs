//! One MMST connection: socket in, [`mms::mmst::ServerSession`] in the middle, socket out.

use std::io::IoSlice;
use std::net::SocketAddr;
use std::sync::Arc;

use arc_swap::ArcSwap;
use bus::Bus;
use mms::mmst::{MmstError, ServerSession, SessionEvent, E_ACCESSDENIED, NS_E_FILE_NOT_FOUND};
use tokio::io::{AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use netutil::display::Secs;

use crate::auth::{self, Asked};
use crate::from_bus::{self, FeedItem, Viewer};
use crate::{mapping, Options};

/// Why a connection ended, for the teardown log line.
#[derive(Debug)]
enum End {
    ClientClosed,
    Malformed(MmstError),
    Io(std::io::Error),
    Idle,
    BroadcastOver,
    Shutdown,
    /// The access policy refused the publishing point (answered E_ACCESSDENIED).
    Denied,
}

impl End {
    /// What the teardown line says; the two ends that carry an error log that instead.
    fn as_str(&self) -> &'static str {
        match self {
            End::ClientClosed => "the client closed the connection",
            End::Malformed(_) => "malformed command",
            End::Io(_) => "connection lost",
            End::Idle => "no command in time",
            End::BroadcastOver => "the broadcast is over",
            End::Shutdown => "the gateway is shutting down",
            End::Denied => "access denied",
        }
    }
}

/// How an OpenFile was answered.
enum Opened {
    Answered,
    /// Refused by the access policy: close after the answer.
    Denied,
}

struct Conn {
    peer: SocketAddr,
    write_timeout: std::time::Duration,
    /// Bytes the socket accepted so far.
    bytes_sent: u64,
    /// Before play, the connection is closed at this instant unless a command completes first.
    idle_deadline: Instant,
    session: ServerSession,
    viewer: Option<Viewer>,
    key: Option<String>,
    /// When StartPlaying was answered, for the `on_stop` notification.
    playing_since: Option<Instant>,
    /// The connection's id (its log lines' `id`), under which a viewer is listed as a client.
    id: netutil::ConnId,
    /// Ends the connection: the accept loop's token, which a kick through the API cancels too.
    cancel: CancellationToken,
    /// Bytes read and written and packets skipped, for the client list.
    counters: Arc<bus::clients::ClientCounters>,
    /// Listed in the bus's clients from OpenFile on.
    client: Option<bus::clients::ClientGuard>,
}

/// What every MMST connection shares.
pub struct Shared {
    pub bus: Bus,
    /// The shell's current options: only the publishing points are read from them, at each
    /// OpenFile.
    pub opts: Arc<ArcSwap<Options>>,
}

/// Serves one MMST client until it closes, misbehaves, or the broadcast ends. `opts` are the
/// options in force when it was accepted, which it keeps for its life; the name of each
/// OpenFile resolves against the current ones (`shared.opts`).
pub async fn serve(
    mut socket: TcpStream,
    peer: SocketAddr,
    shared: Shared,
    opts: Arc<Options>,
    shutdown: CancellationToken,
    id: netutil::ConnId,
) {
    let bus = &shared.bus;
    let _ = socket.set_nodelay(true);
    let mut c = Conn {
        peer,
        write_timeout: opts.write_timeout,
        bytes_sent: 0,
        idle_deadline: Instant::now() + opts.command_timeout,
        session: ServerSession::new(),
        viewer: None,
        key: None,
        playing_since: None,
        id,
        cancel: shutdown.clone(),
        counters: Arc::default(),
        client: None,
    };
    let end = c.run(&mut socket, &shared, &opts, &shutdown).await;
    let dropped = c.viewer.as_ref().map_or(0, |v| v.dropped());
    if matches!(end, End::Idle) {
        opts.conn_limits.timed_out(netutil::Timeout::Request);
    }
    let stream = c.key.as_deref().map(tracing::field::display);
    match &end {
        End::Io(e) if e.kind() == std::io::ErrorKind::TimedOut && c.viewer.is_some() => {
            if let Some(stream) = c.key.as_deref().and_then(|k| bus.stream(k)) {
                stream.count_stalled_viewer(bus::Protocol::Mms);
            }
            tracing::warn!(%peer, stream, protocol = %"mmst", bytes_sent = c.bytes_sent, timeout = %Secs(opts.write_timeout), "viewer dropped: its socket accepted nothing for the send timeout")
        }
        End::Malformed(e) => {
            opts.conn_limits.protocol_error("malformed_command");
            tracing::warn!(%peer, stream, error = %e, "MMST: malformed command, closing the connection")
        }
        End::Io(e) => {
            tracing::info!(%peer, stream, error = %e, dropped, "MMST: connection lost")
        }
        _ => {
            tracing::info!(%peer, stream, reason = %end.as_str(), dropped, "MMST: connection closed")
        }
    }
    if let (Some(since), Some(key)) = (c.playing_since, c.key.as_deref()) {
        let duration = since.elapsed();
        auth::stopped(
            &opts.access,
            access::Protocol::Mmst,
            key,
            peer,
            c.bytes_sent,
            duration,
        );
    }
    let _ = socket.shutdown().await;
}

impl Conn {
    async fn run(
        &mut self,
        socket: &mut TcpStream,
        shared: &Shared,
        opts: &Arc<Options>,
        shutdown: &CancellationToken,
    ) -> End {
        let mut buf = vec![0u8; 4096];
        loop {
            let playing = self.session.is_playing() && self.viewer.is_some();
            tokio::select! {
                _ = shutdown.cancelled() => {
                    self.session.end_of_stream();
                    let _ = self.flush(socket).await;
                    return End::Shutdown;
                }
                read = read_some(socket, &mut buf, (!playing).then_some(self.idle_deadline)) => {
                    let n = match read {
                        Err(e) => return End::Io(e),
                        Ok(None) => return End::Idle,
                        Ok(Some(0)) => return End::ClientClosed,
                        Ok(Some(n)) => n,
                    };
                    self.counters.add_received(n as u64);
                    if let Some(end) = self.on_input(&buf[..n], shared, opts).await {
                        if matches!(end, End::Denied) {
                            // The refusal goes out before the connection closes.
                            let _ = self.flush(socket).await;
                        }
                        return end;
                    }
                    if let Err(e) = self.flush(socket).await { return End::Io(e); }
                }
                item = next_item(&mut self.viewer), if playing => {
                    if let Err(e) = self.on_item(item, socket).await { return e; }
                }
            }
        }
    }

    /// Feeds client bytes to the session and acts on its events.
    async fn on_input(&mut self, data: &[u8], shared: &Shared, opts: &Arc<Options>) -> Option<End> {
        if let Err(e) = self.session.handle_input(data) {
            return Some(End::Malformed(e));
        }
        while let Some(ev) = self.session.poll_event() {
            // Only a complete command counts as activity: bytes trickled in without ever
            // completing one do not keep a connection open.
            self.idle_deadline = Instant::now() + opts.command_timeout;
            match ev {
                SessionEvent::Connected { player } => {
                    tracing::debug!(peer = %self.peer, %player, "MMST: client connected")
                }
                SessionEvent::OpenFile { path } => match self.open(&path, shared, opts).await {
                    Err(e) => return Some(End::Malformed(e)),
                    Ok(Opened::Denied) => return Some(End::Denied),
                    Ok(Opened::Answered) => {}
                },
                SessionEvent::StreamSwitch { streams } => {
                    // Packets are shared and interleave both tracks, so every viewer gets all
                    // streams; clients simply ignore the ones they did not select.
                    tracing::debug!(peer = %self.peer, ?streams, "MMST: stream selection");
                }
                SessionEvent::Play => {
                    tracing::info!(peer = %self.peer, stream = self.key.as_deref().map(tracing::field::display), "MMST: play");
                    self.playing_since.get_or_insert_with(Instant::now);
                }
                SessionEvent::Stop => {}
                SessionEvent::Close => return Some(End::ClientClosed),
                SessionEvent::Ignored { mid } => {
                    tracing::debug!(peer = %self.peer, mid, "MMST: command ignored")
                }
            }
        }
        None
    }

    /// Answers OpenFile: the stream's header, NS_E_FILE_NOT_FOUND, or E_ACCESSDENIED when the
    /// access policy refuses (MMST has no challenge a client could answer, so a missing
    /// credential is refused the same way; the connection then closes). The name resolves
    /// against the publishing points in force now, not those of when the connection opened.
    async fn open(
        &mut self,
        path: &str,
        shared: &Shared,
        opts: &Arc<Options>,
    ) -> Result<Opened, MmstError> {
        let bus = &shared.bus;
        let target = mapping::resolve(&shared.opts.load(), path);
        if let Some(t) = &target {
            let asked = Asked {
                protocol: access::Protocol::Mmst,
                tls: false,
                peer: self.peer,
                key: &t.key,
                query: auth::path_query(path),
                authorization: None,
            };
            if auth::check(&opts.access, &asked).await.is_err() {
                self.session.reject_open(E_ACCESSDENIED)?;
                return Ok(Opened::Denied);
            }
        }
        let stream = target
            .as_ref()
            .and_then(|t| bus.stream(&t.key))
            .filter(|s| s.is_live());
        let (Some(target), Some(stream)) = (target, stream) else {
            tracing::info!(peer = %self.peer, path = %path.split('?').next().unwrap_or_default(), "MMST: unknown publishing point");
            return self
                .session
                .reject_open(NS_E_FILE_NOT_FOUND)
                .map(|()| Opened::Answered);
        };
        let mut viewer = from_bus::join(bus, &stream, opts);
        let Some(header) = viewer.header(opts.header_timeout).await else {
            tracing::warn!(peer = %self.peer, stream = %target.key, "MMST: no ASF header in time (no H.264/AAC track?)");
            return self
                .session
                .reject_open(NS_E_FILE_NOT_FOUND)
                .map(|()| Opened::Answered);
        };
        // The packet size of the stream's muxer, which may have started under other options.
        let packet_size = viewer.packet_size() as u32;
        viewer.on_drops(self.counters.drop_counter());
        let info = bus::clients::ClientInfo {
            id: self.id,
            role: bus::clients::Role::Viewer,
            protocol: "mmst",
            stream: target.key.clone(),
            peer: Some(self.peer),
        };
        let figures = Arc::clone(&self.counters) as Arc<dyn bus::clients::Figures>;
        self.client = Some(bus.clients().register(info, figures, self.cancel.clone()));
        self.viewer = Some(viewer);
        self.key = Some(target.key);
        self.session
            .accept_open(header, packet_size)
            .map(|()| Opened::Answered)
    }

    async fn on_item(&mut self, item: Option<FeedItem>, socket: &mut TcpStream) -> Result<(), End> {
        match item {
            Some(FeedItem::Packet(p)) => {
                let prefix = self.session.media_prefix(p.data.len());
                self.write(socket, &[&prefix, &p.data])
                    .await
                    .map_err(End::Io)
            }
            // A new header means the codecs changed; ending lets the client reconnect to it.
            Some(FeedItem::Header(_)) | Some(FeedItem::End) | None => {
                self.session.end_of_stream();
                let _ = self.flush(socket).await;
                Err(End::BroadcastOver)
            }
        }
    }

    /// Writes everything the session queued in one vectored write.
    ///
    /// Interop: VLC's MMST reader (modules/access/mms/mmstu.c) parses each `recv` on its own and
    /// reports "truncated packet (header incomplete)" when a data packet's 8-byte prefix arrives in
    /// a different segment from its payload, so prefixes and payloads must leave together.
    async fn flush(&mut self, socket: &mut TcpStream) -> std::io::Result<()> {
        let parts: Vec<_> = std::iter::from_fn(|| self.session.poll_transmit()).collect();
        let slices: Vec<&[u8]> = parts.iter().map(|b| b.as_ref()).collect();
        self.write(socket, &slices).await
    }

    /// A write that gives up after [`Options::write_timeout`]: a client that stopped reading
    /// must not hold its connection task forever (its feed position is already bounded).
    async fn write(&mut self, socket: &mut TcpStream, parts: &[&[u8]]) -> std::io::Result<()> {
        match tokio::time::timeout(self.write_timeout, write_all_vectored(socket, parts)).await {
            Ok(r) => {
                if r.is_ok() {
                    let n = parts.iter().map(|p| p.len() as u64).sum::<u64>();
                    self.bytes_sent += n;
                    if let Some(v) = &self.viewer {
                        v.count_sent(n);
                    }
                    self.counters.add_sent(n);
                }
                r
            }
            Err(_) => Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("the client read nothing for {:?}", self.write_timeout),
            )),
        }
    }
}

/// Reads what is there; `Ok(None)` if `deadline` passed first. Before play a client must keep
/// sending commands; while playing it may stay silent for as long as it likes.
async fn read_some(
    socket: &mut TcpStream,
    buf: &mut [u8],
    deadline: Option<Instant>,
) -> std::io::Result<Option<usize>> {
    match deadline {
        Some(t) => match tokio::time::timeout_at(t, socket.read(buf)).await {
            Ok(r) => r.map(Some),
            Err(_) => Ok(None),
        },
        None => socket.read(buf).await.map(Some),
    }
}

async fn next_item(viewer: &mut Option<Viewer>) -> Option<FeedItem> {
    match viewer {
        Some(v) => v.next().await,
        None => std::future::pending().await,
    }
}

/// Writes all slices with as few system calls as the socket allows: the 8-byte prefix and the
/// shared packet go out together without copying the packet.
async fn write_all_vectored<W: AsyncWrite + Unpin>(
    w: &mut W,
    parts: &[&[u8]],
) -> std::io::Result<()> {
    let total: usize = parts.iter().map(|p| p.len()).sum();
    let mut written = 0;
    while written < total {
        let mut skip = written;
        let slices: Vec<IoSlice<'_>> = parts
            .iter()
            .filter_map(|p| {
                if skip >= p.len() {
                    skip -= p.len();
                    None
                } else {
                    let s = IoSlice::new(&p[skip..]);
                    skip = 0;
                    Some(s)
                }
            })
            .collect();
        let n = w.write_vectored(&slices).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        written += n;
    }
    Ok(())
}

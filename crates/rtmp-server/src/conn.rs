//! One RTMP connection: feed the session, answer its events, write its output.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use access::{Action, Denial, Grant, Notice};
use bus::clients::{ClientCounters, ClientGuard, ClientInfo, Role};
use bus::{Bus, Event, Protocol, PublisherInfo};
use netutil::display::Secs;
use netutil::ConnId;
use rtmp::{ChunkError, ServerSession, ServerSessionConfig, ServerSessionEvent, SessionError};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::{sleep_until, Instant};
use tokio_util::sync::CancellationToken;

use crate::from_bus::{Batch, Player};
use crate::to_bus::Ingest;
use crate::Options;

/// Room made in the session's input buffer before a read when less than a quarter of it is
/// free: a publisher's read takes up to this much at once.
const READ_BUF: usize = 64 * 1024;
/// How long a refused client may take to close after the refusal (see `close_after_refusal`).
const REFUSAL_LINGER: Duration = Duration::from_secs(2);

/// Why a connection ended abnormally.
#[derive(Debug, thiserror::Error)]
pub enum ConnError {
    /// A socket error.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// The peer broke the protocol.
    #[error("malformed input: {0}")]
    Protocol(#[from] SessionError),
    /// The handshake did not finish in time.
    #[error("handshake not completed within {}", Secs(*.0))]
    HandshakeTimeout(Duration),
    /// The peer closed the socket in the middle of the handshake.
    #[error("peer closed the connection during the handshake (truncated handshake)")]
    TruncatedHandshake,
    /// The peer stopped reading: a write made no progress for the idle timeout.
    #[error("write stalled for {} (peer not reading)", Secs(*.0))]
    WriteStalled(Duration),
    /// No traffic for the idle timeout.
    #[error("idle for {}", Secs(*.0))]
    Idle(Duration),
}

/// Tags counted by publishes and plays that have ended.
#[derive(Debug, Default)]
struct Tally {
    tags_in: u64,
    tags_out: u64,
}

struct Publishing {
    stream_id: u32,
    ingest: Ingest,
    started: Instant,
    /// The connection's byte count when the publish started (for the on_unpublish notice).
    bytes_in_at_start: u64,
}

/// An access decision being awaited (a hook may take seconds).
type Answer = Pin<Box<dyn Future<Output = Result<Grant, Denial>> + Send>>;

/// A publish or play waiting for its access decision. The connection keeps reading (and
/// answering control messages) meanwhile; the session holds the stream as pending, so media a
/// client sends before the answer is dropped, and no bus publisher exists yet.
struct PendingCheck {
    action: Action,
    stream_id: u32,
    key: String,
    query: Option<String>,
    answer: Answer,
}

/// One accepted RTMP connection, on a TCP socket or (RTMPS) the TLS stream over one; socket
/// options were set on the TCP socket by the accept loop.
pub struct Connection<S> {
    socket: S,
    peer: SocketAddr,
    bus: Bus,
    opts: Arc<Options>,
    session: ServerSession,
    publishing: Option<Publishing>,
    player: Option<Player>,
    /// The bus key this connection publishes or plays, for logs.
    key: Option<String>,
    /// Tags of publishes and plays that have already ended on this connection, for its close line.
    ended: Tally,
    last_activity: Instant,
    /// The `?query` of `connect` (the app or tcUrl), where OBS puts a server URL's token.
    connect_query: Option<String>,
    pending: Option<PendingCheck>,
    /// Access control refused a publish or play: close once the refusal is flushed.
    denied: bool,
    /// Bytes read from the socket.
    bytes_in: u64,
    /// When the current play was accepted.
    play_started: Instant,
    /// The connection is RTMPS (the access hooks are told).
    over_tls: bool,
    /// The connection's id (its log lines' `id`), under which it is listed as a client.
    id: ConnId,
    /// Ends the connection: the accept loop's token, which a kick through the API cancels too.
    cancel: CancellationToken,
    /// Listed in the bus's clients while it publishes or plays.
    client: Option<ClientGuard>,
    /// Bytes read and written and tags skipped, for the client list (one add per socket read
    /// or write).
    counters: Arc<ClientCounters>,
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send> Connection<S> {
    /// Wraps an accepted socket.
    pub fn new(socket: S, peer: SocketAddr, bus: Bus, opts: Arc<Options>, seed: u64) -> Self {
        let session = ServerSession::new(ServerSessionConfig {
            out_chunk_size: opts.chunk_size,
            max_message_size: opts.max_message_size,
            window_ack_size: opts.ack_window,
            seed,
            epoch: 0,
        });
        Connection {
            socket,
            peer,
            bus,
            opts,
            session,
            publishing: None,
            player: None,
            key: None,
            ended: Tally::default(),
            last_activity: Instant::now(),
            connect_query: None,
            pending: None,
            denied: false,
            bytes_in: 0,
            play_started: Instant::now(),
            over_tls: false,
            id: ConnId::next(),
            cancel: CancellationToken::new(),
            client: None,
            counters: Arc::default(),
        }
    }

    /// Lists the connection under `id` (the id of its log span) rather than a fresh one.
    pub fn with_id(mut self, id: ConnId) -> Self {
        self.id = id;
        self
    }

    /// Lists the connection in the bus's clients as the publisher or a viewer of `key`.
    fn register(&mut self, role: Role, key: &str) {
        let info = ClientInfo {
            id: self.id,
            role,
            protocol: if self.over_tls { "rtmps" } else { "rtmp" },
            stream: key.to_owned(),
            peer: Some(self.peer),
        };
        let figures = Arc::clone(&self.counters);
        self.client = Some(
            self.bus
                .clients()
                .register(info, figures, self.cancel.clone()),
        );
    }

    /// Marks the connection as one over TLS (RTMPS): access checks and hooks say so.
    pub fn over_tls(mut self) -> Self {
        self.over_tls = true;
        self
    }

    /// Serves the connection until it ends, logging one line about how.
    pub async fn run(mut self, shutdown: CancellationToken) {
        self.cancel = shutdown.clone();
        let result = self.serve(shutdown).await;
        self.client = None;
        if let Some(p) = self.publishing.take() {
            self.ended.tags_in += p.ingest.tags();
            self.notify_unpublish(&p);
        }
        let key = self.key.as_deref().unwrap_or("-");
        // The whole connection's counts: an unpublish or a stop earlier on does not reset them.
        let tags_in = self.ended.tags_in;
        let tags_out = self.ended.tags_out + self.player.as_ref().map_or(0, |p| p.tags_sent);
        let bytes_out = self.player.as_ref().map_or(0, |p| p.bytes_sent);
        if let Some(p) = &self.player {
            self.notify_stop(p);
        }
        if let (Err(ConnError::WriteStalled(limit)), Some(p)) = (&result, &self.player) {
            p.subscriber.stream().count_stalled_viewer(Protocol::Rtmp);
            tracing::warn!(peer = %self.peer, stream = %key, protocol = %"rtmp", tags_out, bytes_sent = bytes_out, timeout = %Secs(*limit), "viewer dropped: its socket accepted nothing for the send timeout");
            return;
        }
        let limits = &self.opts.conn_limits;
        match &result {
            Err(ConnError::HandshakeTimeout(_) | ConnError::TruncatedHandshake)
            | Err(ConnError::Protocol(SessionError::Handshake(_))) => limits.handshake_failed(),
            Err(ConnError::Protocol(SessionError::Chunk(_))) => limits.protocol_error("chunk"),
            Err(ConnError::Protocol(SessionError::Amf { .. })) => limits.protocol_error("amf"),
            Err(ConnError::Protocol(SessionError::Aggregate(_))) => {
                limits.protocol_error("aggregate")
            }
            _ => {}
        }
        match &result {
            Err(ConnError::HandshakeTimeout(_)) => {
                self.opts.conn_limits.timed_out(netutil::Timeout::Request)
            }
            Err(ConnError::Idle(_)) => self.opts.conn_limits.timed_out(netutil::Timeout::Idle),
            Err(ConnError::Protocol(SessionError::Chunk(ChunkError::MessageTooLarge {
                ..
            }))) => self.opts.conn_limits.oversized_request(),
            _ => {}
        }
        match result {
            Ok(()) => {
                tracing::info!(peer = %self.peer, stream = %key, tags_in, tags_out, "RTMP connection closed")
            }
            Err(e) => {
                tracing::warn!(peer = %self.peer, stream = %key, tags_in, tags_out, error = %e, "RTMP connection closed")
            }
        }
    }

    async fn serve(&mut self, shutdown: CancellationToken) -> Result<(), ConnError> {
        let limit = self.opts.handshake_timeout;
        tokio::select! {
            r = tokio::time::timeout(limit, self.handshake()) => r.map_err(|_| ConnError::HandshakeTimeout(limit))??,
            _ = shutdown.cancelled() => return Ok(()),
        }
        loop {
            if self.denied {
                self.close_after_refusal().await;
                return Ok(());
            }
            let idle_at = self.last_activity + self.opts.idle_timeout;
            let wait_at = self.player.as_ref().and_then(|p| p.wait_deadline);
            // A paused player and a player waiting for its publisher are
            // silent by design; the wait has its own deadline.
            // A pending access check has the hook's own timeout.
            let idle_applies = self.pending.is_none()
                && !self
                    .player
                    .as_ref()
                    .is_some_and(|p| p.paused || p.wait_deadline.is_some());
            tokio::select! {
                _ = shutdown.cancelled() => return Ok(()),
                n = read_into(&mut self.socket, self.session.input_buffer()) => {
                    let n = n?;
                    if n == 0 {
                        return Ok(());
                    }
                    self.last_activity = Instant::now();
                    self.bytes_in += n as u64;
                    self.counters.add_received(n as u64);
                    self.session.arrived(n)?;
                    self.process_events()?;
                    self.flush_session().await?;
                }
                answer = pending_answer(&mut self.pending) => {
                    self.last_activity = Instant::now();
                    if let Some(p) = self.pending.take() {
                        self.decided(p.action, p.stream_id, p.key, p.query, answer);
                    }
                    self.flush_session().await?;
                }
                ev = next_event(&mut self.player) => {
                    self.last_activity = Instant::now();
                    if !self.on_bus_event(ev).await? {
                        return Ok(());
                    }
                }
                _ = sleep_until(wait_at.unwrap_or(idle_at)), if wait_at.is_some() => self.give_up_waiting().await?,
                _ = sleep_until(idle_at), if idle_applies => return Err(ConnError::Idle(self.opts.idle_timeout)),
            }
        }
    }

    /// Closes a connection whose publish or play was refused, once the refusal has been flushed:
    /// a FIN first, then whatever the client still sends is read and dropped for a moment.
    /// Closing with unread input would send a reset, and a client that gets the reset before it
    /// has read the refusal (ffmpeg sends a buffer-length message right after `play`) loses it.
    async fn close_after_refusal(&mut self) {
        let _ = self.socket.shutdown().await;
        let mut scratch = [0u8; 4096];
        let drain =
            async { while matches!(self.socket.read(&mut scratch).await, Ok(n) if n > 0) {} };
        let _ = tokio::time::timeout(REFUSAL_LINGER, drain).await;
    }

    async fn handshake(&mut self) -> Result<(), ConnError> {
        while !self.session.is_handshake_done() {
            let n = read_into(&mut self.socket, self.session.input_buffer()).await?;
            if n == 0 {
                return Err(ConnError::TruncatedHandshake);
            }
            self.session.arrived(n)?;
            self.flush_session().await?;
        }
        self.last_activity = Instant::now();
        // Bytes after C2 (connect) may have arrived with it.
        self.process_events()?;
        self.flush_session().await
    }

    async fn flush_session(&mut self) -> Result<(), ConnError> {
        if self.session.has_output() {
            let out = self.session.take_output();
            let limit = self.opts.send_timeout;
            // The flush sends what a TLS stream still holds; on TCP it does nothing.
            let socket = &mut self.socket;
            let write = async move {
                socket.write_all(&out).await?;
                socket.flush().await
            };
            tokio::time::timeout(limit, write)
                .await
                .map_err(|_| ConnError::WriteStalled(limit))??;
        }
        Ok(())
    }

    fn process_events(&mut self) -> Result<(), ConnError> {
        while let Some(ev) = self.session.poll_event()? {
            self.on_session_event(ev);
        }
        Ok(())
    }

    fn on_session_event(&mut self, ev: ServerSessionEvent) {
        match ev {
            ServerSessionEvent::Connected {
                app, tc_url, query, ..
            } => {
                // tcUrl may carry a token: log the URL without its query.
                let tc_url = tc_url.as_deref().map(|u| rtmp::session::split_query(u).0);
                tracing::info!(peer = %self.peer, %app, tc_url = %tc_url.unwrap_or("-"), "RTMP connect");
                self.connect_query = query;
            }
            ServerSessionEvent::PublishRequested {
                stream_id,
                app,
                name,
                query,
                ..
            } => self.ask(Action::Publish, stream_id, app, name, query),
            ServerSessionEvent::PlayRequested {
                stream_id,
                app,
                name,
                query,
                ..
            } => self.ask(Action::Play, stream_id, app, name, query),
            ServerSessionEvent::Metadata {
                stream_id,
                timestamp,
                data,
            } => {
                if let Some(p) = self
                    .publishing
                    .as_mut()
                    .filter(|p| p.stream_id == stream_id)
                {
                    p.ingest.metadata(timestamp, data);
                }
            }
            ServerSessionEvent::Audio {
                stream_id,
                timestamp,
                data,
            } => {
                if let Some(p) = self
                    .publishing
                    .as_mut()
                    .filter(|p| p.stream_id == stream_id)
                {
                    p.ingest.audio(timestamp, data);
                }
            }
            ServerSessionEvent::Video {
                stream_id,
                timestamp,
                data,
            } => {
                if let Some(p) = self
                    .publishing
                    .as_mut()
                    .filter(|p| p.stream_id == stream_id)
                {
                    p.ingest.video(timestamp, data);
                }
            }
            ServerSessionEvent::Unpublished { stream_id } => {
                if self
                    .publishing
                    .as_ref()
                    .is_some_and(|p| p.stream_id == stream_id)
                {
                    let p = self.publishing.take();
                    self.client = None;
                    let tags = p.as_ref().map_or(0, |p| p.ingest.tags());
                    self.ended.tags_in += tags;
                    if let Some(p) = &p {
                        self.notify_unpublish(p);
                    }
                    tracing::info!(peer = %self.peer, stream = %self.key.as_deref().unwrap_or("-"), tags, "RTMP unpublish");
                }
            }
            ServerSessionEvent::PlayStopped { stream_id } => {
                if self
                    .player
                    .as_ref()
                    .is_some_and(|p| p.stream_id == stream_id)
                {
                    let p = self.player.take();
                    self.client = None;
                    let tags = p.as_ref().map_or(0, |p| p.tags_sent);
                    self.ended.tags_out += tags;
                    if let Some(p) = &p {
                        self.notify_stop(p);
                    }
                    tracing::info!(peer = %self.peer, stream = %self.key.as_deref().unwrap_or("-"), tags, "RTMP play stopped");
                }
            }
            ServerSessionEvent::Paused { paused, .. } => {
                if let Some(p) = self.player.as_mut() {
                    p.paused = paused;
                }
            }
            ServerSessionEvent::ReceiveMedia {
                type_id, enabled, ..
            } => {
                if let Some(p) = self.player.as_mut() {
                    if type_id == rtmp::message::type_id::AUDIO {
                        p.audio = enabled;
                    } else {
                        p.video = enabled;
                    }
                }
            }
            ServerSessionEvent::UnknownCommand { name } => {
                tracing::debug!(peer = %self.peer, command = %name, "RTMP unknown command ignored");
            }
        }
    }

    /// Asks access control about a publish or play. Without a hook the answer is ready at once
    /// and the request is answered in place; otherwise the serve loop awaits it.
    fn ask(
        &mut self,
        action: Action,
        stream_id: u32,
        app: String,
        name: String,
        query: Option<String>,
    ) {
        if self.publishing.is_some() || self.player.is_some() || self.pending.is_some() {
            let busy = "This connection is already publishing or playing.";
            match action {
                Action::Publish => self.session.reject_publish(stream_id, busy),
                Action::Play => self.session.reject_play(stream_id, busy),
            }
            return;
        }
        let key = format!("{app}/{name}");
        // ffmpeg sends `rtmp://host/live/cam?token=x` as the stream name `cam?token=x`; OBS's
        // server field `rtmp://host/live?token=x` arrives with connect. The name's comes first.
        let query = join_queries(query, self.connect_query.as_deref());
        let access = Arc::clone(&self.opts.access);
        let (peer, q, tls) = (self.peer, query.clone(), self.over_tls);
        let mut answer: Answer = Box::pin(async move {
            let req = access::Request {
                action,
                protocol: access::Protocol::Rtmp,
                tls,
                app: &app,
                stream: &name,
                peer,
                query: q.as_deref(),
                authorization: None,
            };
            access.check(&req).await
        });
        match answer
            .as_mut()
            .poll(&mut Context::from_waker(Waker::noop()))
        {
            Poll::Ready(result) => self.decided(action, stream_id, key, query, result),
            Poll::Pending => {
                self.pending = Some(PendingCheck {
                    action,
                    stream_id,
                    key,
                    query,
                    answer,
                })
            }
        }
    }

    /// Answers a publish or play with access control's decision. A refusal goes out with its
    /// reason as the status description, and the connection closes once it is flushed.
    fn decided(
        &mut self,
        action: Action,
        stream_id: u32,
        key: String,
        query: Option<String>,
        result: Result<Grant, Denial>,
    ) {
        match (action, result) {
            (Action::Publish, Ok(_)) => self.on_publish(stream_id, key, query),
            (Action::Play, Ok(_)) => self.on_play(stream_id, key),
            (_, Err(denial)) => {
                match action {
                    Action::Publish => self.session.deny_publish(stream_id, &denial.reason),
                    Action::Play => self.session.deny_play(stream_id, &denial.reason),
                }
                self.key = Some(key);
                self.denied = true;
            }
        }
    }

    fn notify_unpublish(&self, p: &Publishing) {
        self.notify(
            Action::Publish,
            p.started,
            self.bytes_in - p.bytes_in_at_start,
        );
    }

    fn notify_stop(&self, p: &Player) {
        self.notify(Action::Play, self.play_started, p.bytes_sent);
    }

    /// Tells the on_unpublish / on_stop hook (if any) that a publish or play of `self.key` ended.
    fn notify(&self, action: Action, started: Instant, bytes: u64) {
        let Some((app, stream)) = self.key.as_deref().and_then(|k| k.split_once('/')) else {
            return;
        };
        self.opts.access.notify(Notice {
            action,
            protocol: access::Protocol::Rtmp,
            app: app.to_owned(),
            stream: stream.to_owned(),
            peer: self.peer,
            bytes: Some(bytes),
            duration: started.elapsed(),
        });
    }

    fn on_publish(&mut self, stream_id: u32, key: String, query: Option<String>) {
        let info = PublisherInfo {
            protocol: Protocol::Rtmp,
            peer: Some(self.peer),
            query,
        };
        match self.bus.publish(&key, info) {
            Ok(publisher) => {
                self.session.accept_publish(stream_id);
                tracing::info!(peer = %self.peer, stream = %key, "RTMP publish");
                self.publishing = Some(Publishing {
                    stream_id,
                    ingest: Ingest::new(publisher),
                    started: Instant::now(),
                    bytes_in_at_start: self.bytes_in,
                });
                self.register(Role::Publisher, &key);
                self.key = Some(key);
            }
            Err(e) => {
                tracing::warn!(peer = %self.peer, stream = %key, error = %e, "RTMP publish refused");
                self.session.reject_publish(stream_id, &e.to_string());
            }
        }
    }

    fn on_play(&mut self, stream_id: u32, key: String) {
        let live = self.bus.subscribe(&key, Protocol::Rtmp);
        let player = match live {
            Some(sub) => {
                self.session.accept_play(stream_id);
                Player::new(sub, stream_id, true, None)
            }
            None if self.opts.wait_for_publisher.is_zero() => {
                tracing::info!(peer = %self.peer, stream = %key, "RTMP play: stream not found");
                self.session
                    .reject_play(stream_id, &format!("{key} is not being published."));
                return;
            }
            None => {
                let sub = match self.bus.subscribe_or_wait(&key, Protocol::Rtmp) {
                    Ok(sub) => sub,
                    Err(e) => {
                        // The bus logged the cap; the player hears what a missing stream says.
                        tracing::info!(peer = %self.peer, stream = %key, error = %e, "RTMP play: cannot wait for a publisher");
                        self.session.reject_play(stream_id, &e.to_string());
                        return;
                    }
                };
                Player::new(
                    sub,
                    stream_id,
                    false,
                    Some(Instant::now() + self.opts.wait_for_publisher),
                )
            }
        };
        tracing::info!(peer = %self.peer, stream = %key, waiting = !player.started, "RTMP play");
        let mut player = player;
        player.subscriber.on_drops(self.counters.drop_counter());
        self.register(Role::Viewer, &key);
        self.player = Some(player);
        self.play_started = Instant::now();
        self.key = Some(key);
    }

    async fn give_up_waiting(&mut self) -> Result<(), ConnError> {
        if let Some(p) = self.player.take() {
            self.client = None;
            self.notify_stop(&p);
            let key = self.key.as_deref().unwrap_or("-");
            tracing::info!(peer = %self.peer, stream = %key, "RTMP play: no publisher arrived");
            self.session
                .reject_play(p.stream_id, &format!("{key} is not being published."));
        }
        self.flush_session().await
    }

    /// Writes one bus event and whatever else is already waiting, up to the
    /// batch limits. Returns false when the stream is gone.
    async fn on_bus_event(&mut self, first: Option<Event>) -> Result<bool, ConnError> {
        let Some(player) = self.player.as_mut() else {
            return Ok(true);
        };
        let mut batch = Batch::default();
        let Some(first) = first else {
            // The stream was removed from the bus.
            if player.started {
                self.session.notify_unpublished(player.stream_id);
            } else {
                self.session
                    .reject_play(player.stream_id, "The stream is gone.");
            }
            self.flush_session().await?;
            return Ok(false);
        };
        // The start-up (sequence headers, the first keyframe, the cached GOP) goes out at once;
        // after it, a tag that finds the queue empty waits `write_delay` for company.
        let live = player.media_sent;
        player.queue_event(&mut self.session, &mut batch, &first);
        let drained = drain(player, &mut self.session, &mut batch, &self.opts);
        if live && drained && !self.opts.write_delay.is_zero() {
            tokio::time::sleep(self.opts.write_delay).await;
            drain(player, &mut self.session, &mut batch, &self.opts);
        }
        // A viewer that stops reading would block this task forever; the bus
        // already skips it ahead, so give up on the socket once it has accepted
        // nothing for the send timeout.
        let limit = self.opts.send_timeout;
        let stream = Arc::clone(player.subscriber.stream());
        stream.count_batch(Protocol::Rtmp, batch.tags());
        match batch.write_within(&mut self.socket, Some(limit)).await {
            Ok(n) => {
                player.bytes_sent += n;
                stream.count_sent(Protocol::Rtmp, n);
                self.counters.add_sent(n);
            }
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                return Err(ConnError::WriteStalled(limit))
            }
            Err(e) => return Err(e.into()),
        }
        Ok(true)
    }
}

/// Adds what is already waiting for `player` to `batch`, up to the batch limits; true when it
/// stopped because the queue ran empty.
fn drain(
    player: &mut Player,
    session: &mut ServerSession,
    batch: &mut Batch,
    opts: &Options,
) -> bool {
    while batch.tags() < opts.write_batch_tags && batch.payload_bytes() < opts.write_batch_bytes {
        let Some(ev) = player.subscriber.try_recv() else {
            return true;
        };
        player.queue_event(session, batch, &ev);
    }
    false
}

/// The answer of the pending access check; never resolves without one.
async fn pending_answer(pending: &mut Option<PendingCheck>) -> Result<Grant, Denial> {
    match pending {
        Some(p) => (&mut p.answer).await,
        None => std::future::pending().await,
    }
}

/// The stream name's query, then connect's: credentials are read from the first of each name.
fn join_queries(name: Option<String>, connect: Option<&str>) -> Option<String> {
    match (name, connect) {
        (Some(n), Some(c)) => Some(format!("{n}&{c}")),
        (Some(n), None) => Some(n),
        (None, c) => c.map(str::to_owned),
    }
}

/// The next bus event for an active, unpaused player; never resolves otherwise.
async fn next_event(player: &mut Option<Player>) -> Option<Event> {
    match player {
        Some(p) if !p.paused => p.subscriber.recv().await,
        _ => std::future::pending().await,
    }
}

/// Reads from `socket` straight into the session's input buffer (no copy on the way in),
/// making room first when less than a quarter of [`READ_BUF`] is free. Cancel-safe, as
/// `read_buf` is: a read that did not complete appended nothing.
async fn read_into<S: AsyncRead + Unpin>(
    socket: &mut S,
    input: &mut bytes::BytesMut,
) -> std::io::Result<usize> {
    if input.capacity() - input.len() < READ_BUF / 4 {
        input.reserve(READ_BUF);
    }
    socket.read_buf(input).await
}

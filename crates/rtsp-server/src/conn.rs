//! One RTSP connection: read requests and interleaved frames, drive the sans-IO
//! [`ServerConnection`], and run the session's media (a writer task for TCP, a pump for UDP).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::{Buf, Bytes, BytesMut};
use rtsp::{Lower, Method, Parsed, Request, Response, ServerConnection, ServerEvent, Transport};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::auth::ConnAccess;
use crate::from_bus::{Registry, StreamRtp, CNAME};
use crate::limits::{PeerLimits, SessionSlot, SetupRefusal};
use crate::ports::{PortPair, PortPool};
use crate::session::{self, SessionStats, TcpChannels, UdpDest, UnitSource};
use crate::Options;

/// Outgoing items queued for the connection's writer task (responses are few; media does not
/// travel through this queue).
const OUT_QUEUE: usize = 32;
/// How often the session timeout is checked.
const REAP_TICK: Duration = Duration::from_secs(1);
/// How long DESCRIBE waits for a live stream's first frame (see [`bus::Stream::wait_for_frames`]).
const DESCRIBE_WAIT: Duration = Duration::from_secs(3);

/// What every connection shares. The options are not here: each connection has its own
/// snapshot, taken when it was accepted.
#[derive(Debug)]
pub struct Ctx {
    pub registry: Registry,
    pub ports: PortPool,
    pub limits: PeerLimits,
    pub shutdown: CancellationToken,
}

/// Commands for the writer task.
enum Out {
    Bytes(Bytes),
    /// Boxed: the source is large, and the channel carries many small `Bytes` messages.
    Play(Box<UnitSource>, Vec<TcpChannels>),
    Stop,
}

/// How one set-up track is sent.
enum TrackOut {
    /// The pair keeps its ports reserved until the session ends; a repeated SETUP of the track
    /// reuses it.
    Udp {
        pair: PortPair,
        dest: UdpDest,
    },
    Tcp(TcpChannels),
}

/// The media side of the connection's session.
struct Media {
    stream: Arc<StreamRtp>,
    tracks: Vec<(usize, TrackOut)>,
    stats: Arc<SessionStats>,
    /// Cancels the UDP listeners (session end).
    session_cancel: CancellationToken,
    /// Cancels the UDP pump (PAUSE or session end).
    pump_cancel: Option<CancellationToken>,
    started: Instant,
    /// Counts the session against `rtsp.max_sessions_per_ip` until it ends.
    _slot: SessionSlot,
    /// Counts the session in the stream's RTSP viewers from its first PLAY until it ends.
    viewer: Option<bus::ViewerGuard>,
    /// Lists the session in the bus's clients from its first PLAY until it ends.
    client: Option<bus::clients::ClientGuard>,
}

impl Media {
    fn is_udp(&self) -> bool {
        self.tracks
            .iter()
            .any(|(_, t)| matches!(t, TrackOut::Udp { .. }))
    }
}

struct Conn {
    ctx: Arc<Ctx>,
    /// The options in force when the connection was accepted, for its whole life.
    opts: Arc<Options>,
    peer: SocketAddr,
    /// The connection is RTSPS: media may only go interleaved on it, never over UDP in clear.
    secure: bool,
    rtsp: ServerConnection,
    out: mpsc::Sender<Out>,
    media: Option<Media>,
    /// When the last complete request arrived (or the connection opened).
    last_request: Instant,
    /// Who may play: asked before DESCRIBE, SETUP and PLAY.
    access: ConnAccess,
    /// The connection's id (its log lines' `id`), under which a playing session is listed.
    id: netutil::ConnId,
    /// Cancelled by a kick through the API: the session ends and the connection closes.
    kick: CancellationToken,
}

/// Sets the options of an accepted TCP socket, before any TLS handshake on it.
pub fn prepare(socket: &TcpStream, peer: SocketAddr, opts: &Options) {
    let _ = socket.set_nodelay(true);
    if let Some(size) = opts.tcp_send_buffer {
        if let Err(e) = socket2::SockRef::from(socket).set_send_buffer_size(size) {
            tracing::warn!(%peer, error = %e, "could not set the TCP send buffer size");
        }
    }
}

/// Serves one accepted connection, given as its read and write halves (of a TCP socket, or of
/// the TLS stream over one when `secure`), until it closes. `opts` are the options in force when
/// it was accepted; it keeps them, whatever replaces them meanwhile.
pub async fn serve<R, W>(
    ctx: Arc<Ctx>,
    opts: Arc<Options>,
    rd: R,
    wr: W,
    peer: SocketAddr,
    secure: bool,
    id: netutil::ConnId,
) where
    R: AsyncRead + Unpin + Send,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let (out, out_rx) = mpsc::channel(OUT_QUEUE);
    let writer_done = CancellationToken::new();
    // The connection's tasks log in its span (`conn{id=... peer=...}`).
    let writer = tokio::spawn(
        writer_task(
            wr,
            out_rx,
            writer_done.clone(),
            opts.write_timeout,
            opts.tcp_write_delay,
        )
        .in_current_span(),
    );
    let rtsp = ServerConnection::new(
        rand::random(),
        opts.session_timeout.as_secs() as u32,
        &opts.server_name,
    );
    let access = ConnAccess::new(Arc::clone(&opts.access), peer, secure);
    let mut conn = Conn {
        ctx,
        opts,
        peer,
        secure,
        rtsp,
        out,
        media: None,
        last_request: Instant::now(),
        access,
        id,
        kick: CancellationToken::new(),
    };
    tracing::info!(%peer, tls = secure, "RTSP connect");
    let reason = conn.run(rd, writer_done).await;
    conn.end_session(&reason).await;
    tracing::info!(%peer, %reason, "RTSP disconnect");
    drop(conn);
    let _ = writer.await;
}

impl Conn {
    async fn run<R: AsyncRead + Unpin>(
        &mut self,
        mut rd: R,
        writer_done: CancellationToken,
    ) -> String {
        let mut buf = BytesMut::with_capacity(4096);
        let mut tick = tokio::time::interval(REAP_TICK);
        loop {
            let ended = self.media.as_ref().map(|m| m.stream.ended.clone());
            tokio::select! {
                r = rd.read_buf(&mut buf) => match r {
                    Ok(0) => return "closed by client".into(),
                    Ok(_) => if let Err(why) = self.drain(&mut buf).await { return why },
                    Err(e) => return format!("read error: {e}"),
                },
                _ = tick.tick() => if let Some(why) = self.check_timeout() { return why },
                _ = async { match &ended { Some(t) => t.cancelled().await, None => std::future::pending().await } } => {
                    return "stream ended".into();
                }
                _ = writer_done.cancelled() => return "write failed".into(),
                _ = self.ctx.shutdown.cancelled() => return "server shutting down".into(),
                _ = self.kick.cancelled() => return "ended through the API".into(),
            }
        }
    }

    /// Handles every complete request and interleaved frame in `buf`.
    async fn drain(&mut self, buf: &mut BytesMut) -> Result<(), String> {
        loop {
            match rtsp::parse(buf) {
                Ok(Parsed::Incomplete) => return Ok(()),
                Ok(Parsed::Interleaved { channel, consumed }) => {
                    self.on_interleaved(channel, &buf[4..consumed]);
                    buf.advance(consumed);
                }
                Ok(Parsed::Request { request, consumed }) => {
                    buf.advance(consumed);
                    self.on_request(&request).await;
                }
                Err(e) => {
                    if is_oversized(&e) {
                        self.opts.conn_limits.oversized_request();
                    } else {
                        self.opts.conn_limits.protocol_error("bad_request");
                    }
                    // Framing is lost: answer once, then close this connection only.
                    tracing::info!(peer = %self.peer, error = %e, "bad RTSP input; closing connection");
                    let resp =
                        Response::new(e.status(), None).with_body("text/plain", format!("{e}\r\n"));
                    self.send(resp.to_bytes()).await;
                    return Err(format!("protocol error: {e}"));
                }
            }
        }
    }

    fn on_interleaved(&self, channel: u8, data: &[u8]) {
        let Some(media) = &self.media else { return };
        for (track, out) in &media.tracks {
            if let TrackOut::Tcp(ch) = out {
                if ch.rtcp == channel {
                    media.stats.on_rtcp(*track, data);
                }
            }
        }
    }

    fn check_timeout(&self) -> Option<String> {
        let limits = &self.opts.conn_limits;
        let Some(media) = self.media.as_ref() else {
            // No session: only requests keep the connection open.
            let timeout = self.opts.request_timeout;
            if self.last_request.elapsed() <= timeout {
                return None;
            }
            limits.timed_out(netutil::Timeout::Request);
            return Some(format!(
                "no complete request for {timeout:?} and no session"
            ));
        };
        // TCP sessions live as long as their connection; UDP sessions need signs of life.
        let timeout = self.opts.session_timeout;
        if !(media.is_udp() && media.stats.idle() > timeout) {
            return None;
        }
        limits.timed_out(netutil::Timeout::Idle);
        Some(format!(
            "session timed out after {timeout:?} without RTCP or requests"
        ))
    }

    fn refused(&self, why: SetupRefusal) {
        self.opts.setup_refusals.count(why);
    }

    async fn send(&self, bytes: Bytes) {
        let _ = self.out.send(Out::Bytes(bytes)).await;
    }

    async fn on_request(&mut self, req: &Request) {
        self.last_request = Instant::now();
        if let Some(m) = &self.media {
            m.stats.touch();
        }
        let event = self.rtsp.handle(req);
        if let ServerEvent::Describe { stream }
        | ServerEvent::Setup { stream, .. }
        | ServerEvent::Play { stream, .. } = &event
        {
            // Refused before anything else, so a client without access learns nothing, not
            // even whether the stream is live. The refusal is logged by crate `access`.
            if let Some(refusal) = self.access.authorize(req, stream, &mut self.rtsp).await {
                return self.send(refusal.to_bytes()).await;
            }
        }
        let resp = match event {
            ServerEvent::Respond(r) => r,
            ServerEvent::Refused { response, limit } => {
                self.refused(match limit {
                    rtsp::Limit::SessionsPerConnection => SetupRefusal::SessionsPerConnection,
                    rtsp::Limit::PrivilegedClientPort => SetupRefusal::ClientPort,
                });
                response
            }
            ServerEvent::Describe { stream } => self.describe(&stream).await,
            ServerEvent::Setup {
                stream,
                track,
                transport,
            } => self.setup(&stream, track, transport),
            ServerEvent::Play { stream, tracks } => {
                let track_ids: Vec<usize> = tracks.iter().map(|(t, _)| *t).collect();
                return self.play(&stream, &track_ids).await;
            }
            ServerEvent::Pause(r) => {
                self.stop_media().await;
                r
            }
            ServerEvent::Teardown(r) => {
                self.end_session("teardown").await;
                r
            }
        };
        if resp.status >= 400 && matches!(req.method, Method::Setup | Method::Play) {
            // A refused SETUP or PLAY is what an operator asks about ("why does my NVR get no
            // video?"); the body is our one-line reason.
            let why = String::from_utf8_lossy(&resp.body);
            // The query is left out: it may carry a token or a signed link.
            let uri = req.uri.split('?').next().unwrap_or_default();
            tracing::info!(peer = %self.peer, method = %req.method.as_str(), %uri, status = resp.status, reason = %why.trim_end(), "RTSP request refused");
        }
        self.send(resp.to_bytes()).await;
    }

    async fn describe(&mut self, stream: &str) -> Response {
        // A publisher that has just connected is live on the bus a few milliseconds before its
        // sequence headers and first frame arrive; wait for them rather than answer 404.
        if let Some(s) = self.ctx.registry.live_stream(stream) {
            s.wait_for_frames(DESCRIBE_WAIT).await;
        }
        match self.ctx.registry.get(stream) {
            Some(rtp) => {
                let mut p = rtp.presentation();
                p.origin_address = self.peer.ip().to_string();
                self.rtsp.accept_describe(&p)
            }
            None => self
                .rtsp
                .reject(404, &format!("stream {stream} is not live")),
        }
    }

    fn setup(&mut self, stream: &str, track: Option<usize>, mut transport: Transport) -> Response {
        let Some(rtp) = self
            .media
            .as_ref()
            .map(|m| Arc::clone(&m.stream))
            .or_else(|| self.ctx.registry.get(stream))
        else {
            return self
                .rtsp
                .reject(404, &format!("stream {stream} is not live"));
        };
        let udp = matches!(transport.lower, Lower::Udp { .. });
        let facts = rtsp::SetupFacts {
            stream,
            track,
            track_count: rtp.track_count(),
            transport: &transport,
            secure: self.secure,
            session_udp: self
                .media
                .as_ref()
                .filter(|m| !m.tracks.is_empty())
                .map(Media::is_udp),
            peer: self.peer.ip(),
        };
        let track = match rtsp::check_setup(&facts) {
            Ok(track) => track,
            Err(refused) => {
                if refused.kind == rtsp::RefusedKind::Destination {
                    self.refused(SetupRefusal::Destination);
                    tracing::warn!(peer = %self.peer, reason = %refused.reason, "RTSP SETUP refused: destination is not the client's address");
                }
                return self.rtsp.reject(refused.status, &refused.reason);
            }
        };
        transport.ssrc = rtp.ssrc(track);
        if let Some(resp) = self.setup_again(track, &mut transport) {
            return resp;
        }
        let slot = match self.media.as_ref() {
            Some(_) => None,
            None => match self.session_slot(stream) {
                Ok(slot) => Some(slot),
                Err(resp) => return resp,
            },
        };
        let out = match self.track_out(track, &mut transport) {
            Ok(out) => out,
            Err(resp) => return resp,
        };
        self.attach_track(rtp, slot, udp, track, out);
        self.rtsp.accept_setup(transport)
    }

    /// A session slot for this client's first SETUP, or the 453 that refuses it.
    fn session_slot(&mut self, stream: &str) -> Result<SessionSlot, Response> {
        let max = self.opts.max_sessions_per_ip;
        if let Some(slot) = self.ctx.limits.acquire(self.peer.ip(), max) {
            return Ok(slot);
        }
        self.refused(SetupRefusal::SessionsPerIp);
        tracing::warn!(peer = %self.peer, %stream, max, "RTSP SETUP refused: the client address holds rtsp.max_sessions_per_ip sessions");
        Err(self.rtsp.reject(
            453,
            &format!(
                "this address already has {max} RTSP sessions (the server's per-client limit)"
            ),
        ))
    }

    /// Where a set-up track's packets go: a fresh UDP port pair (written into `transport`) or
    /// the interleaved channels; a 453 when no pair is free.
    fn track_out(&mut self, track: usize, transport: &mut Transport) -> Result<TrackOut, Response> {
        Ok(match transport.lower {
            Lower::Udp { client_port, .. } => {
                let Some(pair) = self.ctx.ports.allocate() else {
                    self.refused(SetupRefusal::NoFreePorts);
                    tracing::warn!(peer = %self.peer, "no free UDP port pair in the configured range");
                    return Err(self
                        .rtsp
                        .reject(453, "no free UDP ports on the server; try RTP/AVP/TCP"));
                };
                transport.lower = Lower::Udp {
                    client_port,
                    server_port: Some((pair.port, pair.port + 1)),
                };
                let ip = self.peer.ip();
                let dest = UdpDest {
                    track,
                    rtp: Arc::clone(&pair.rtp),
                    rtcp: Arc::clone(&pair.rtcp),
                    rtp_to: SocketAddr::new(ip, client_port.0),
                    rtcp_to: SocketAddr::new(ip, client_port.1),
                };
                TrackOut::Udp { pair, dest }
            }
            Lower::Tcp { interleaved } => {
                let (rtp_ch, rtcp_ch) = interleaved.unwrap_or((0, 1));
                TrackOut::Tcp(TcpChannels {
                    track,
                    rtp: rtp_ch,
                    rtcp: rtcp_ch,
                })
            }
        })
    }

    /// Adds a set-up track to the session, creating the session on its first SETUP (`slot`).
    fn attach_track(
        &mut self,
        rtp: Arc<StreamRtp>,
        slot: Option<SessionSlot>,
        udp: bool,
        track: usize,
        out: TrackOut,
    ) {
        if let Some(slot) = slot {
            let stats = Arc::new(SessionStats::new(self.peer, udp));
            if let Some(table) = self.ctx.registry.session_table(rtp.key()) {
                table.insert(&stats);
            }
            self.media = Some(Media {
                stream: rtp,
                tracks: Vec::new(),
                stats,
                session_cancel: CancellationToken::new(),
                pump_cancel: None,
                started: Instant::now(),
                _slot: slot,
                viewer: None,
                client: None,
            });
        }
        let media = self
            .media
            .as_mut()
            .expect("the session's media exists after its first SETUP");
        if let TrackOut::Udp { dest, .. } = &out {
            tokio::spawn(
                session::udp_listen(
                    dest.clone(),
                    Arc::clone(&media.stats),
                    media.session_cancel.child_token(),
                )
                .in_current_span(),
            );
        }
        media.tracks.retain(|(t, _)| *t != track);
        media.tracks.push((track, out));
        media.stats.touch();
    }

    /// A SETUP of a UDP track the session has already set up keeps the track's port pair and only
    /// takes the new client ports, so repeating SETUP never takes more ports (a session holds at
    /// most one pair per track, and a stream has at most `rtsp::session::MAX_TRACK_ID + 1` tracks).
    fn setup_again(&mut self, track: usize, transport: &mut Transport) -> Option<Response> {
        let Lower::Udp { client_port, .. } = transport.lower else {
            return None;
        };
        let media = self.media.as_mut()?;
        let (pair, dest) = media.tracks.iter_mut().find_map(|(t, out)| match out {
            TrackOut::Udp { pair, dest } if *t == track => Some((pair, dest)),
            _ => None,
        })?;
        let ip = self.peer.ip();
        dest.rtp_to = SocketAddr::new(ip, client_port.0);
        dest.rtcp_to = SocketAddr::new(ip, client_port.1);
        transport.lower = Lower::Udp {
            client_port,
            server_port: Some((pair.port, pair.port + 1)),
        };
        media.stats.touch();
        Some(self.rtsp.accept_setup(*transport))
    }

    async fn play(&mut self, stream: &str, tracks: &[usize]) {
        let label = format!("{}/{stream}", self.peer);
        let Some(media) = self.media.as_mut() else {
            let r = self.rtsp.reject(455, "PLAY before SETUP");
            return self.send(r.to_bytes()).await;
        };
        if media.pump_cancel.is_some() {
            // Already playing (a repeated PLAY): answer without restarting the media.
            let (_, info) = media.stream.play(label, tracks);
            let r = self.rtsp.accept_play(&info);
            return self.send(r.to_bytes()).await;
        }
        if media.viewer.is_none() {
            media.viewer = self
                .ctx
                .registry
                .live_stream(media.stream.key())
                .map(|s| s.viewer_guard(bus::Protocol::Rtsp));
            let info = bus::clients::ClientInfo {
                id: self.id,
                role: bus::clients::Role::Viewer,
                protocol: if self.secure { "rtsps" } else { "rtsp" },
                stream: media.stream.key().to_owned(),
                peer: Some(self.peer),
            };
            let figures = Arc::clone(&media.stats) as Arc<dyn bus::clients::Figures>;
            media.client = Some(self.ctx.registry.clients().register(
                info,
                figures,
                self.kick.clone(),
            ));
        }
        let (reader, rtp_info) = media.stream.play(label.clone(), tracks);
        let mut source = UnitSource::new(reader, tracks.to_vec(), Arc::clone(&media.stats), label);
        if let Some(s) = self.ctx.registry.live_stream(stream) {
            source = source.with_stream(s);
        }
        let resp = self.rtsp.accept_play(&rtp_info);
        let _ = self.out.send(Out::Bytes(resp.to_bytes())).await;
        let media = self.media.as_mut().expect("checked above");
        let cancel = media.session_cancel.child_token();
        media.pump_cancel = Some(cancel.clone());
        let udp: Vec<UdpDest> = media
            .tracks
            .iter()
            .filter_map(|(_, t)| {
                if let TrackOut::Udp { dest, .. } = t {
                    Some(dest.clone())
                } else {
                    None
                }
            })
            .collect();
        let tcp: Vec<TcpChannels> = media
            .tracks
            .iter()
            .filter_map(|(_, t)| {
                if let TrackOut::Tcp(ch) = t {
                    Some(*ch)
                } else {
                    None
                }
            })
            .collect();
        if udp.is_empty() {
            let _ = self.out.send(Out::Play(Box::new(source), tcp)).await;
        } else {
            tokio::spawn(session::udp_pump(source, udp, cancel).in_current_span());
        }
        tracing::info!(peer = %self.peer, %stream, transport = %if media.is_udp() { "udp" } else { "tcp" }, "RTSP play");
    }

    async fn stop_media(&mut self) {
        let Some(media) = self.media.as_mut() else {
            return;
        };
        if let Some(c) = media.pump_cancel.take() {
            c.cancel();
        }
        if !media.is_udp() {
            let _ = self.out.send(Out::Stop).await;
        }
    }

    /// Stops media, sends BYE on every track, frees the ports and logs the session's statistics.
    async fn end_session(&mut self, reason: &str) {
        self.stop_media().await;
        let Some(media) = self.media.take() else {
            return;
        };
        self.rtsp.close_session();
        let now = SystemTime::now();
        for (track, out) in &media.tracks {
            let Some(info) = media.stream.sender_info(*track, now) else {
                continue;
            };
            let bye = rtp::rtcp::goodbye(&info, CNAME);
            match out {
                TrackOut::Udp { dest, .. } => {
                    let _ = dest.rtcp.send_to(&bye, dest.rtcp_to).await;
                }
                TrackOut::Tcp(ch) => {
                    if let Some(frame) = session::interleaved_frame(ch.rtcp, &bye) {
                        self.send(frame).await;
                    }
                }
            }
        }
        media.session_cancel.cancel();
        if let Some(table) = self.ctx.registry.session_table(media.stream.key()) {
            table.remove(&media.stats);
        }
        if media.viewer.is_some() {
            let bytes = media
                .stats
                .bytes_sent
                .load(std::sync::atomic::Ordering::Relaxed);
            self.access
                .stopped(media.stream.key(), bytes, media.started.elapsed());
        }
        tracing::info!(
            peer = %self.peer,
            stream = %media.stream.key(),
            %reason,
            duration = %netutil::display::Secs(media.started.elapsed()),
            dropped_units = media.stats.dropped_units.load(std::sync::atomic::Ordering::Relaxed),
            receiver_reports = %media.stats.summary(),
            "RTSP session end"
        );
    }
}

/// Whether a framing error is a request over the size limits (counted as such).
fn is_oversized(e: &rtsp::Error) -> bool {
    match e {
        rtsp::Error::HeaderTooLarge | rtsp::Error::TooManyHeaders => true,
        // A Content-Length that is a number, only too large (not garbage).
        rtsp::Error::BadContentLength { value } => {
            let v = value.trim();
            !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit())
        }
        _ => false,
    }
}

/// Most units one interleaved write carries (a 60 KB keyframe is some 45 packets, 90 slices).
const MAX_BATCH_UNITS: usize = 32;

/// Owns the write half: writes responses in order and, for a TCP session, its media.
async fn writer_task<W: AsyncWrite + Unpin>(
    mut wr: W,
    mut rx: mpsc::Receiver<Out>,
    done: CancellationToken,
    write_timeout: Duration,
    write_delay: Duration,
) {
    let mut playing: Option<(UnitSource, Vec<TcpChannels>)> = None;
    loop {
        let result = tokio::select! {
            biased;
            cmd = rx.recv() => match cmd {
                None => break,
                // The flush sends what a TLS stream still holds; on TCP it does nothing.
                Some(Out::Bytes(b)) => timed(write_timeout, async {
                    wr.write_all(&b).await?;
                    wr.flush().await
                }).await,
                Some(Out::Play(source, channels)) => {
                    playing = Some((*source, channels));
                    Ok(())
                }
                Some(Out::Stop) => {
                    playing = None;
                    Ok(())
                }
            },
            unit = next_unit(&mut playing) => match (unit, playing.as_mut()) {
                (Some(unit), Some((source, channels))) => {
                    if source.is_live() && !write_delay.is_zero() {
                        tokio::time::sleep(write_delay).await;
                    }
                    let mut units = vec![unit];
                    while units.len() < MAX_BATCH_UNITS {
                        let Some(u) = source.try_next() else { break };
                        units.push(u);
                    }
                    source.count_batch(units.len());
                    match session::write_interleaved(&mut wr, &units, channels, write_timeout).await {
                        Ok(n) => {
                            source.count_sent(n);
                            Ok(())
                        }
                        Err(e) => {
                            if e.kind() == std::io::ErrorKind::TimedOut {
                                source.on_stalled(write_timeout);
                            }
                            Err(e)
                        }
                    }
                }
                _ => {
                    playing = None;
                    Ok(())
                }
            },
        };
        if result.is_err() {
            break;
        }
    }
    done.cancel();
    let _ = wr.shutdown().await;
}

/// Fails a write that makes no progress for `limit`: the client stopped reading altogether, and its
/// connection is closed rather than held open forever.
async fn timed(
    limit: Duration,
    write: impl std::future::Future<Output = std::io::Result<()>>,
) -> std::io::Result<()> {
    tokio::time::timeout(limit, write)
        .await
        .unwrap_or_else(|_| Err(std::io::ErrorKind::TimedOut.into()))
}

async fn next_unit(
    playing: &mut Option<(UnitSource, Vec<TcpChannels>)>,
) -> Option<Arc<crate::from_bus::MediaUnit>> {
    match playing {
        Some((source, _)) => source.next().await,
        None => std::future::pending().await,
    }
}

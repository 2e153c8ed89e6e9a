//! A test-side RTSP proxy that induces RTP loss for UDP receivers, so that what the gateway reads
//! from RTCP receiver reports can be checked against a known loss.
//!
//! ```text
//!  client ──RTSP/TCP──▶ LossyRtsp ──RTSP/TCP──▶ gateway
//!  client ◀──RTP/UDP─── (every Nth dropped) ◀── gateway's server RTP port
//!  client ◀──RTCP/UDP── (untouched) ◀────────── gateway's server RTCP port
//!  client ───RTCP/UDP─▶ (receiver reports) ───▶ gateway's server RTCP port
//! ```
//!
//! It parses just enough RTSP: message heads up to the blank line with a `Content-Length` body,
//! and interleaved `$` frames, which pass through untouched. A `SETUP` whose `Transport` asks
//! for UDP (`client_port=a-b`) gets a port pair of the proxy's own (even RTP port, odd RTCP port,
//! on 127.0.0.1): the request's `client_port` becomes that pair, so the gateway sends there; the
//! reply's `server_port` becomes that pair too and its `client_port` the client's own again, so
//! the client sends its RTCP to the proxy and sees media come from the server port it was told.
//! Each pair relays from the same socket both ways, so the gateway sees the receiver reports
//! come from the `client_port` it was given. URLs are not rewritten: the client addresses the
//! proxy, and the gateway builds `Content-Base` from the request URI, so every URL the client
//! builds from it names the proxy again (ffmpeg, GStreamer and retina use `Content-Base`).
//!
//! Everything is bounded: [`MAX_CONNECTIONS`] at a time, [`MAX_TRACKS`] relayed tracks per
//! connection, [`MAX_HEAD`] bytes of message head and [`MAX_BODY`] of body. Dropping the proxy
//! shuts every connection down and joins every thread it started.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::Duration;

/// Client connections served at once; more are closed on accept.
pub const MAX_CONNECTIONS: usize = 16;
/// UDP tracks relayed per connection; further UDP SETUPs pass through unchanged.
pub const MAX_TRACKS: usize = 8;
/// The largest RTSP message head (request or status line and headers).
pub const MAX_HEAD: usize = 64 * 1024;
/// The largest RTSP message body (an SDP, a `GET_PARAMETER` body).
pub const MAX_BODY: usize = 1024 * 1024;
/// How long connecting to the gateway may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How often the UDP relays look at the stop flags.
const UDP_POLL: Duration = Duration::from_millis(100);
/// The largest datagram relayed.
const MAX_DATAGRAM: usize = 65_536;

/// A running proxy; see the module documentation.
pub struct LossyRtsp {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept: Option<JoinHandle<()>>,
}

/// What one relayed track saw, for [`LossyRtsp::tracks`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackStats {
    /// The `trackID=N` of the SETUP URL, if it had one.
    pub track: Option<usize>,
    /// The SDP media (`video`, `audio`) whose `a=control` the SETUP URL ends with.
    pub media: Option<String>,
    /// RTP packets relayed from the gateway to the client.
    pub forwarded: u64,
    /// RTP packets from the gateway that were dropped.
    pub dropped: u64,
    /// RTCP packets relayed from the gateway (sender reports) to the client.
    pub rtcp_to_client: u64,
    /// RTCP packets relayed from the client (receiver reports) to the gateway.
    pub rtcp_to_gateway: u64,
}

impl LossyRtsp {
    /// Listens on 127.0.0.1 (a port the kernel picks) and relays every connection to the
    /// gateway's RTSP listener `gateway`, dropping every `drop_every`-th RTP packet of each UDP
    /// track from the gateway (20 = 5 %; 0 drops nothing, 1 everything).
    pub fn start(gateway: SocketAddr, drop_every: u32) -> LossyRtsp {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .unwrap_or_else(|e| panic!("the lossy RTSP proxy cannot listen: {e}"));
        let addr = listener
            .local_addr()
            .expect("a bound listener has an address");
        let shared = Arc::new(Shared {
            gateway,
            drop_every,
            stop: AtomicBool::new(false),
            open: AtomicUsize::new(0),
            next_id: AtomicU64::new(0),
            streams: Mutex::default(),
            relays: Mutex::default(),
            threads: Mutex::default(),
        });
        let accept = {
            let shared = Arc::clone(&shared);
            thread::Builder::new()
                .name("lossy-rtsp-accept".into())
                .spawn(move || accept_loop(&listener, &shared))
                .expect("a thread can be started")
        };
        LossyRtsp {
            addr,
            shared,
            accept: Some(accept),
        }
    }

    /// The proxy's listening address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `rtsp://127.0.0.1:PORT/<path>`, e.g. `url("live/test")`.
    pub fn url(&self, path: &str) -> String {
        format!("rtsp://{}/{}", self.addr, path.trim_start_matches('/'))
    }

    /// RTP packets from the gateway dropped so far, over every track of every connection.
    pub fn dropped(&self) -> u64 {
        self.tracks().iter().map(|t| t.dropped).sum()
    }

    /// RTP packets from the gateway relayed to clients so far.
    pub fn forwarded(&self) -> u64 {
        self.tracks().iter().map(|t| t.forwarded).sum()
    }

    /// Every track relayed so far, in SETUP order.
    pub fn tracks(&self) -> Vec<TrackStats> {
        lock(&self.shared.relays)
            .iter()
            .map(|r| r.stats())
            .collect()
    }
}

impl Drop for LossyRtsp {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop, then unblock every connection's reads.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
        for s in lock(&self.shared.streams).values() {
            let _ = s.shutdown(Shutdown::Both);
        }
        let threads = std::mem::take(&mut *lock(&self.shared.threads));
        for t in threads {
            let _ = t.join();
        }
    }
}

/// State shared by the proxy's threads.
struct Shared {
    gateway: SocketAddr,
    drop_every: u32,
    stop: AtomicBool,
    /// Client connections being served.
    open: AtomicUsize,
    next_id: AtomicU64,
    /// Clones of every open TCP stream (both sides), shut down on drop to end blocked reads.
    streams: Mutex<HashMap<(u64, bool), TcpStream>>,
    /// Every track relayed (at most `MAX_CONNECTIONS x MAX_TRACKS` live at once; a test opens a
    /// handful in all).
    relays: Mutex<Vec<Arc<Relay>>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl Shared {
    fn spawn(&self, name: &str, f: impl FnOnce() + Send + 'static) {
        let handle = thread::Builder::new()
            .name(name.to_owned())
            .spawn(f)
            .expect("a thread can be started");
        let mut threads = lock(&self.threads);
        threads.retain(|t| !t.is_finished());
        threads.push(handle);
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn accept_loop(listener: &TcpListener, shared: &Arc<Shared>) {
    for client in listener.incoming() {
        if shared.stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok(client) = client else { continue };
        if shared.open.load(Ordering::SeqCst) >= MAX_CONNECTIONS {
            eprintln!("lossy-rtsp: refusing a connection past {MAX_CONNECTIONS}");
            continue;
        }
        shared.open.fetch_add(1, Ordering::SeqCst);
        let id = shared.next_id.fetch_add(1, Ordering::SeqCst);
        let s = Arc::clone(shared);
        shared.spawn("lossy-rtsp-conn", move || {
            serve(&s, id, client);
            lock(&s.streams).retain(|(conn, _), _| *conn != id);
            s.open.fetch_sub(1, Ordering::SeqCst);
        });
    }
}

/// One client connection's state, shared by its two directions.
struct Conn {
    id: u64,
    client_ip: IpAddr,
    /// Set when either direction ends: the connection's relays stop.
    stop: Arc<AtomicBool>,
    /// SETUPs sent to the gateway and not yet answered, by CSeq.
    pending: Mutex<HashMap<String, Pending>>,
    /// This connection's relays, by SETUP URL.
    relays: Mutex<Vec<(String, Arc<Relay>)>>,
    /// `(a=control, media)` of the latest SDP the gateway sent.
    sdp: Mutex<Vec<(String, String)>>,
}

/// A SETUP on its way: the relay it was given and the client's own ports.
struct Pending {
    relay: Arc<Relay>,
    client_ports: (u16, u16),
}

fn serve(shared: &Arc<Shared>, id: u64, client: TcpStream) {
    let Ok(peer) = client.peer_addr() else { return };
    let gateway = match TcpStream::connect_timeout(&shared.gateway, CONNECT_TIMEOUT) {
        Ok(g) => g,
        Err(e) => {
            eprintln!(
                "lossy-rtsp: cannot reach the gateway at {}: {e}",
                shared.gateway
            );
            return;
        }
    };
    let clones = (client.try_clone(), gateway.try_clone());
    let (Ok(client_w), Ok(gateway_w)) = clones else {
        return;
    };
    {
        let mut streams = lock(&shared.streams);
        for (side, s) in [(false, &client), (true, &gateway)] {
            if let Ok(c) = s.try_clone() {
                streams.insert((id, side), c);
            }
        }
    }
    if shared.stop.load(Ordering::SeqCst) {
        return;
    }
    let conn = Arc::new(Conn {
        id,
        client_ip: peer.ip(),
        stop: Arc::new(AtomicBool::new(false)),
        pending: Mutex::default(),
        relays: Mutex::default(),
        sdp: Mutex::default(),
    });
    let back = {
        let (s, c) = (Arc::clone(shared), Arc::clone(&conn));
        let (gateway_r, client_w) = (gateway, client_w);
        thread::Builder::new()
            .name("lossy-rtsp-down".into())
            .spawn(move || {
                let r = gateway_to_client(&s, &c, gateway_r, &client_w);
                end(&c, &client_w, r);
            })
            .expect("a thread can be started")
    };
    let r = client_to_gateway(shared, &conn, client, &gateway_w);
    end(&conn, &gateway_w, r);
    let _ = back.join();
}

/// Ends a connection once one direction has stopped: both sockets are shut, the relays stop.
fn end(conn: &Conn, w: &TcpStream, result: io::Result<()>) {
    if let Err(e) = result {
        if !conn.stop.load(Ordering::SeqCst) {
            eprintln!("lossy-rtsp: connection {} ends: {e}", conn.id);
        }
    }
    conn.stop.store(true, Ordering::SeqCst);
    let _ = w.shutdown(Shutdown::Both);
}

fn client_to_gateway(
    shared: &Arc<Shared>,
    conn: &Arc<Conn>,
    client: TcpStream,
    mut gateway: &TcpStream,
) -> io::Result<()> {
    let mut reader = MessageReader::new(client);
    while let Some(msg) = reader.next()? {
        match msg {
            Message::Interleaved(frame) => gateway.write_all(&frame)?,
            Message::Rtsp { head, body } => {
                let head = setup_request(shared, conn, &head).unwrap_or(head);
                gateway.write_all(&head)?;
                gateway.write_all(&body)?;
            }
        }
    }
    Ok(())
}

fn gateway_to_client(
    shared: &Shared,
    conn: &Conn,
    gateway: TcpStream,
    mut client: &TcpStream,
) -> io::Result<()> {
    let mut reader = MessageReader::new(gateway);
    while let Some(msg) = reader.next()? {
        match msg {
            Message::Interleaved(frame) => client.write_all(&frame)?,
            Message::Rtsp { head, body } => {
                let text = String::from_utf8_lossy(&head);
                if header(&text, "Content-Type")
                    .is_some_and(|t| t.to_ascii_lowercase().starts_with("application/sdp"))
                {
                    *lock(&conn.sdp) = sdp_controls(&String::from_utf8_lossy(&body));
                }
                let head = setup_reply(shared, conn, &text).unwrap_or(head);
                client.write_all(&head)?;
                client.write_all(&body)?;
            }
        }
    }
    Ok(())
}

/// For a UDP SETUP request: the head with `client_port` replaced by the track's relay pair (a
/// new one, or the one an earlier SETUP of the same URL got). `None` leaves the request as it is.
fn setup_request(shared: &Arc<Shared>, conn: &Arc<Conn>, head: &[u8]) -> Option<Vec<u8>> {
    let text = String::from_utf8_lossy(head);
    let mut words = text.lines().next()?.split_whitespace();
    if !words.next()?.eq_ignore_ascii_case("SETUP") {
        return None;
    }
    let url = words.next()?.to_owned();
    let cseq = header(&text, "CSeq")?.to_owned();
    let transport = header(&text, "Transport")?;
    let client_ports = find_ports(transport, "client_port")?;
    let relay = {
        let mut relays = lock(&conn.relays);
        match relays.iter().find(|(u, _)| *u == url) {
            Some((_, r)) => Arc::clone(r),
            None if relays.len() >= MAX_TRACKS => {
                eprintln!("lossy-rtsp: more than {MAX_TRACKS} tracks; {url} is not relayed");
                return None;
            }
            None => {
                let media = lock(&conn.sdp)
                    .iter()
                    .find(|(control, _)| url.ends_with(control.as_str()))
                    .map(|(_, m)| m.clone());
                let relay = match Relay::start(shared, conn, track_id(&url), media) {
                    Ok(r) => r,
                    Err(e) => {
                        eprintln!("lossy-rtsp: no UDP pair for {url}: {e}");
                        return None;
                    }
                };
                relays.push((url.clone(), Arc::clone(&relay)));
                relay
            }
        }
    };
    let pair = (relay.port, relay.port + 1);
    {
        let mut pending = lock(&conn.pending);
        // A client waits for each SETUP's answer; a bounded map all the same.
        if pending.len() >= MAX_TRACKS {
            pending.clear();
        }
        pending.insert(
            cseq,
            Pending {
                relay: Arc::clone(&relay),
                client_ports,
            },
        );
    }
    let out = rewrite_header(&text, "Transport", |v| {
        replace_ports(v, "client_port", pair)
    });
    eprintln!(
        "lossy-rtsp: SETUP {url}: client ports {}-{} relayed through {}-{}",
        client_ports.0, client_ports.1, pair.0, pair.1
    );
    Some(out.into_bytes())
}

/// For the reply to a relayed SETUP: learns the gateway's server ports and answers the client
/// with its own `client_port` and the relay pair as `server_port`. `None` leaves it as it is.
fn setup_reply(shared: &Shared, conn: &Conn, text: &str) -> Option<Vec<u8>> {
    if !text.starts_with("RTSP/") {
        return None;
    }
    let cseq = header(text, "CSeq")?;
    let pending = lock(&conn.pending).remove(cseq)?;
    let status = text.split_whitespace().nth(1)?;
    if status != "200" {
        return None;
    }
    let server = find_ports(header(text, "Transport")?, "server_port")?;
    let relay = &pending.relay;
    let gw = shared.gateway.ip();
    *lock(&relay.targets) = Targets {
        client_rtp: Some(SocketAddr::new(conn.client_ip, pending.client_ports.0)),
        client_rtcp: Some(SocketAddr::new(conn.client_ip, pending.client_ports.1)),
        gateway_rtp: Some(SocketAddr::new(gw, server.0)),
        gateway_rtcp: Some(SocketAddr::new(gw, server.1)),
    };
    let pair = (relay.port, relay.port + 1);
    let out = rewrite_header(text, "Transport", |v| {
        let v = replace_ports(v, "client_port", pending.client_ports);
        replace_ports(&v, "server_port", pair)
    });
    Some(out.into_bytes())
}

/// Where a relay sends, learnt from the SETUP exchange.
#[derive(Debug, Default, Clone, Copy)]
struct Targets {
    client_rtp: Option<SocketAddr>,
    client_rtcp: Option<SocketAddr>,
    gateway_rtp: Option<SocketAddr>,
    gateway_rtcp: Option<SocketAddr>,
}

/// One UDP track's port pair and counters.
struct Relay {
    track: Option<usize>,
    media: Option<String>,
    /// The even (RTP) port; RTCP is the next one.
    port: u16,
    targets: Mutex<Targets>,
    rtp_seen: AtomicU64,
    forwarded: AtomicU64,
    dropped: AtomicU64,
    rtcp_to_client: AtomicU64,
    rtcp_to_gateway: AtomicU64,
}

impl Relay {
    fn start(
        shared: &Arc<Shared>,
        conn: &Arc<Conn>,
        track: Option<usize>,
        media: Option<String>,
    ) -> io::Result<Arc<Relay>> {
        let (rtp, rtcp) = bind_pair()?;
        let port = rtp.local_addr()?.port();
        let relay = Arc::new(Relay {
            track,
            media,
            port,
            targets: Mutex::default(),
            rtp_seen: AtomicU64::new(0),
            forwarded: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            rtcp_to_client: AtomicU64::new(0),
            rtcp_to_gateway: AtomicU64::new(0),
        });
        for (socket, is_rtp) in [(rtp, true), (rtcp, false)] {
            socket.set_read_timeout(Some(UDP_POLL))?;
            let (s, c, r) = (Arc::clone(shared), Arc::clone(conn), Arc::clone(&relay));
            shared.spawn("lossy-rtsp-udp", move || {
                relay_udp(&s, &c.stop, &r, &socket, is_rtp);
            });
        }
        lock(&shared.relays).push(Arc::clone(&relay));
        Ok(relay)
    }

    fn stats(&self) -> TrackStats {
        TrackStats {
            track: self.track,
            media: self.media.clone(),
            forwarded: self.forwarded.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
            rtcp_to_client: self.rtcp_to_client.load(Ordering::Relaxed),
            rtcp_to_gateway: self.rtcp_to_gateway.load(Ordering::Relaxed),
        }
    }
}

/// Binds an even port and the next one on 127.0.0.1 (a few tries: the kernel picks the first).
fn bind_pair() -> io::Result<(UdpSocket, UdpSocket)> {
    for _ in 0..100 {
        let rtp = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))?;
        let port = rtp.local_addr()?.port();
        if port % 2 != 0 || port == u16::MAX {
            continue;
        }
        if let Ok(rtcp) = UdpSocket::bind((Ipv4Addr::LOCALHOST, port + 1)) {
            return Ok((rtp, rtcp));
        }
    }
    Err(io::Error::other(
        "no free even/odd UDP port pair on 127.0.0.1",
    ))
}

/// Relays one socket of a pair until the proxy or the connection stops: datagrams from the
/// gateway go to the client (RTP thinned out by `drop_every`), anything else goes to the
/// gateway's port of the same kind (the client's receiver reports and hole-punching packets).
fn relay_udp(
    shared: &Shared,
    conn_stop: &AtomicBool,
    relay: &Relay,
    socket: &UdpSocket,
    rtp: bool,
) {
    let mut buf = vec![0u8; MAX_DATAGRAM];
    while !shared.stop.load(Ordering::Relaxed) && !conn_stop.load(Ordering::Relaxed) {
        let (n, from) = match socket.recv_from(&mut buf) {
            Ok(r) => r,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                continue
            }
            Err(_) => {
                // An ICMP error reported on the socket: like the network, lose it and go on.
                thread::sleep(Duration::from_millis(10));
                continue;
            }
        };
        let t = *lock(&relay.targets);
        let (gateway, client) = match rtp {
            true => (t.gateway_rtp, t.client_rtp),
            false => (t.gateway_rtcp, t.client_rtcp),
        };
        let (Some(gateway), Some(client)) = (gateway, client) else {
            continue; // not set up yet
        };
        let (to, counter) = if from == gateway {
            if rtp {
                let i = relay.rtp_seen.fetch_add(1, Ordering::Relaxed) + 1;
                let every = u64::from(shared.drop_every);
                if every > 0 && i.is_multiple_of(every) {
                    relay.dropped.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                (client, Some(&relay.forwarded))
            } else {
                (client, Some(&relay.rtcp_to_client))
            }
        } else if rtp {
            (gateway, None)
        } else {
            (gateway, Some(&relay.rtcp_to_gateway))
        };
        if socket.send_to(&buf[..n], to).is_ok() {
            if let Some(c) = counter {
                c.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// One unit of an RTSP connection.
enum Message {
    /// A `$` frame (RFC 2326 §10.12), header included.
    Interleaved(Vec<u8>),
    /// A request or a response: the head up to and with its blank line, and the body.
    Rtsp { head: Vec<u8>, body: Vec<u8> },
}

/// Reads [`Message`]s off one direction of a connection.
struct MessageReader {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl MessageReader {
    fn new(stream: TcpStream) -> MessageReader {
        MessageReader {
            stream,
            buf: Vec::new(),
        }
    }

    /// The next message, `None` at the end of the stream.
    fn next(&mut self) -> io::Result<Option<Message>> {
        let mut chunk = vec![0u8; 16 * 1024];
        loop {
            // Blank lines between messages (keep-alives of some clients) carry nothing.
            let blank = self
                .buf
                .iter()
                .take_while(|b| **b == b'\r' || **b == b'\n')
                .count();
            self.buf.drain(..blank);
            if let Some(msg) = self.parse()? {
                return Ok(Some(msg));
            }
            let n = match self.stream.read(&mut chunk) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if n == 0 {
                return Ok(None);
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// A complete message at the start of the buffer, taken out of it.
    fn parse(&mut self) -> io::Result<Option<Message>> {
        let bad = |what: String| io::Error::new(io::ErrorKind::InvalidData, what);
        if self.buf.first() == Some(&b'$') {
            if self.buf.len() < 4 {
                return Ok(None);
            }
            let len = 4 + usize::from(u16::from_be_bytes([self.buf[2], self.buf[3]]));
            if self.buf.len() < len {
                return Ok(None);
            }
            return Ok(Some(Message::Interleaved(self.buf.drain(..len).collect())));
        }
        let Some(end) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") else {
            if self.buf.len() > MAX_HEAD {
                return Err(bad(format!("a message head over {MAX_HEAD} bytes")));
            }
            return Ok(None);
        };
        let head_len = end + 4;
        if head_len > MAX_HEAD {
            return Err(bad(format!("a message head over {MAX_HEAD} bytes")));
        }
        let text = String::from_utf8_lossy(&self.buf[..head_len]);
        let body_len = match header(&text, "Content-Length") {
            Some(v) => v
                .parse::<usize>()
                .map_err(|_| bad(format!("Content-Length {v:?}")))?,
            None => 0,
        };
        if body_len > MAX_BODY {
            return Err(bad(format!("a body of {body_len} bytes")));
        }
        if self.buf.len() < head_len + body_len {
            return Ok(None);
        }
        let head = self.buf.drain(..head_len).collect();
        let body = self.buf.drain(..body_len).collect();
        Ok(Some(Message::Rtsp { head, body }))
    }
}

/// The trimmed value of the first header `name` (any case) of a message head.
fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.split("\r\n")
        .skip(1)
        .take_while(|l| !l.is_empty())
        .filter_map(|l| l.split_once(':'))
        .find(|(n, _)| n.trim().eq_ignore_ascii_case(name))
        .map(|(_, v)| v.trim())
}

/// The head with every header `name` given the value `f(value)`; every other byte as it was.
fn rewrite_header(head: &str, name: &str, f: impl Fn(&str) -> String) -> String {
    let mut in_head = true;
    head.split("\r\n")
        .enumerate()
        .map(|(i, line)| {
            if line.is_empty() {
                in_head = false;
            }
            match line.split_once(':') {
                Some((n, v)) if i > 0 && in_head && n.trim().eq_ignore_ascii_case(name) => {
                    format!("{n}: {}", f(v.trim()))
                }
                _ => line.to_owned(),
            }
        })
        .collect::<Vec<_>>()
        .join("\r\n")
}

/// The first `key=a-b` (or `key=a`, then `a`, `a + 1`) in a Transport header's alternatives.
fn find_ports(transport: &str, key: &str) -> Option<(u16, u16)> {
    transport
        .split(',')
        .flat_map(|spec| spec.split(';'))
        .filter_map(|p| p.split_once('='))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case(key))
        .and_then(|(_, v)| match v.trim().split_once('-') {
            Some((a, b)) => Some((a.trim().parse().ok()?, b.trim().parse().ok()?)),
            None => {
                let a: u16 = v.trim().parse().ok()?;
                Some((a, a.checked_add(1)?))
            }
        })
}

/// The Transport header with every `key=...` of every alternative set to `pair`.
fn replace_ports(transport: &str, key: &str, pair: (u16, u16)) -> String {
    transport
        .split(',')
        .map(|spec| {
            spec.split(';')
                .map(|p| match p.split_once('=') {
                    Some((k, _)) if k.trim().eq_ignore_ascii_case(key) => {
                        format!("{k}={}-{}", pair.0, pair.1)
                    }
                    _ => p.to_owned(),
                })
                .collect::<Vec<_>>()
                .join(";")
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// `(a=control, media)` of every media section of an SDP (at most 64).
fn sdp_controls(sdp: &str) -> Vec<(String, String)> {
    let mut media = None;
    let mut out = Vec::new();
    for line in sdp.lines().map(str::trim) {
        if let Some(m) = line.strip_prefix("m=") {
            media = m.split_whitespace().next().map(str::to_owned);
        } else if let (Some(control), Some(m)) = (line.strip_prefix("a=control:"), &media) {
            if out.len() < 64 {
                out.push((control.trim().to_owned(), m.clone()));
            }
        }
    }
    out
}

/// N of a trailing `trackID=N` path segment.
fn track_id(url: &str) -> Option<usize> {
    let (_, id) = url.rsplit_once("trackID=")?;
    let digits: String = id.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transport_ports_are_found_and_replaced_in_every_alternative() {
        let t = "RTP/AVP;unicast;client_port=5000-5001,RTP/AVP/UDP;unicast;client_port=5000";
        assert_eq!(find_ports(t, "client_port"), Some((5000, 5001)));
        assert_eq!(
            find_ports("RTP/AVP;client_port=7000", "client_port"),
            Some((7000, 7001))
        );
        assert_eq!(find_ports(t, "server_port"), None);
        assert_eq!(
            replace_ports(t, "client_port", (40000, 40001)),
            "RTP/AVP;unicast;client_port=40000-40001,RTP/AVP/UDP;unicast;client_port=40000-40001"
        );
        let reply = "RTP/AVP;unicast;client_port=40000-40001;server_port=20000-20001;ssrc=0000ABCD";
        let back = replace_ports(
            &replace_ports(reply, "client_port", (5000, 5001)),
            "server_port",
            (40000, 40001),
        );
        assert_eq!(
            back,
            "RTP/AVP;unicast;client_port=5000-5001;server_port=40000-40001;ssrc=0000ABCD"
        );
    }

    #[test]
    fn only_the_named_header_of_the_head_is_rewritten() {
        let head = "SETUP rtsp://h/live/test/trackID=1 RTSP/1.0\r\nCSeq: 3\r\n\
                    transport: RTP/AVP;unicast;client_port=5000-5001\r\n\r\n";
        assert_eq!(
            header(head, "Transport"),
            Some("RTP/AVP;unicast;client_port=5000-5001")
        );
        assert_eq!(header(head, "cseq"), Some("3"));
        let out = rewrite_header(head, "Transport", |v| {
            replace_ports(v, "client_port", (6, 7))
        });
        assert_eq!(
            out,
            "SETUP rtsp://h/live/test/trackID=1 RTSP/1.0\r\nCSeq: 3\r\n\
             transport: RTP/AVP;unicast;client_port=6-7\r\n\r\n"
        );
        assert_eq!(track_id("rtsp://h/live/test/trackID=1"), Some(1));
        assert_eq!(track_id("rtsp://h/live/test/"), None);
    }

    #[test]
    fn sdp_controls_name_their_media() {
        let sdp = "v=0\r\nm=video 0 RTP/AVP 96\r\na=control:trackID=0\r\n\
                   m=audio 0 RTP/AVP 97\r\na=control:trackID=1\r\n";
        assert_eq!(
            sdp_controls(sdp),
            [
                ("trackID=0".to_owned(), "video".to_owned()),
                ("trackID=1".to_owned(), "audio".to_owned())
            ]
        );
    }

    #[test]
    fn messages_and_interleaved_frames_are_split() {
        let (a, b) = {
            let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
            let a = TcpStream::connect(l.local_addr().expect("addr")).expect("connect");
            (a, l.accept().expect("accept").0)
        };
        let mut w = &a;
        w.write_all(b"\r\nOPTIONS * RTSP/1.0\r\nCSeq: 1\r\n\r\n$\x01\x00\x03abc")
            .expect("write");
        w.write_all(b"RTSP/1.0 200 OK\r\nCSeq: 2\r\nContent-Length: 4\r\n\r\nv=0\n")
            .expect("write");
        a.shutdown(Shutdown::Write).expect("shutdown");
        let mut r = MessageReader::new(b);
        let Some(Message::Rtsp { head, body }) = r.next().expect("read") else {
            panic!("a request")
        };
        assert!(head.starts_with(b"OPTIONS") && head.ends_with(b"\r\n\r\n") && body.is_empty());
        let Some(Message::Interleaved(f)) = r.next().expect("read") else {
            panic!("a frame")
        };
        assert_eq!(f, b"$\x01\x00\x03abc");
        let Some(Message::Rtsp { body, .. }) = r.next().expect("read") else {
            panic!("a response")
        };
        assert_eq!(body, b"v=0\n");
        assert!(r.next().expect("read").is_none());
    }
}

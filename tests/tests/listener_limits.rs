//! The listeners as an attacker finds them: silent connections, request heads sent one byte at
//! a time, idle keep-alive connections, thousands of idle sockets from one host, connections
//! opened and closed in a loop, and publishers cycling through stream keys. Each is cut off by a
//! timeout or a limit and counted in `/api/limits`, while honest clients (ffprobe, ffmpeg, plain
//! requests) from another address keep being served and a long HTTP-FLV response is never cut by
//! the idle timeout.
//!
//! The RTSP transport limits (client ports below 1024, a `destination` naming a third party) are
//! tested case by case in `crates/rtsp-server/tests/setup_limits.rs`; here only that the gateway
//! counts them.
//!
//! Timeouts are one or two seconds here (set through the config) so the tests stay short.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use gateway_tests::gateway::LIVE_TIMEOUT;
use gateway_tests::{
    assert_media, ffprobe_decode, fixture, http_get, require_tool, wait_until, Expect, Ffmpeg,
    Live, TestGateway, CELL_SECS, PLAY_SECS,
};
use serde_json::Value;

/// How long a test waits for the gateway to close a connection it should close.
const CLOSE_WAIT: Duration = Duration::from_secs(8);

/// `GET /api/limits`.
fn limits(gw: &TestGateway) -> Value {
    let r = http_get(&gw.http_url("/api/limits"), Duration::from_secs(5))
        .expect("the limits API answers");
    assert_eq!(r.status, 200, "{}", r.text());
    serde_json::from_slice(&r.body).expect("the limits API answers JSON")
}

/// The counter at `path` (a JSON pointer without its leading '/') of a `/api/limits` answer.
fn counter(limits: &Value, path: &str) -> u64 {
    limits
        .pointer(&format!("/{path}"))
        .and_then(Value::as_u64)
        .unwrap_or_else(|| panic!("no counter {path} in {limits}"))
}

fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).expect("the HTTP listener accepts");
    s.set_read_timeout(Some(CLOSE_WAIT)).expect("set a timeout");
    s
}

/// Reads until the gateway closes the connection; panics if it is still open after
/// [`CLOSE_WAIT`]. Returns what was read.
fn read_until_closed(s: &mut TcpStream, what: &str) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return got,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return got,
            Err(e) => panic!(
                "{what}: the gateway kept the connection open ({e}); read so far: {:?}",
                String::from_utf8_lossy(&got)
            ),
        }
    }
}

#[test]
fn a_silent_connection_is_closed_after_the_header_timeout() {
    let gw = TestGateway::start_with(|c| c.http.header_timeout_secs = 1);
    let mut s = connect(gw.http_addr());
    let got = read_until_closed(&mut s, "silent connection");
    assert!(
        got.is_empty(),
        "nothing was asked, nothing should be answered"
    );
    let counted = limits(&gw);
    assert_eq!(counter(&counted, "listeners/http/timeouts/request"), 1);
}

#[test]
fn a_request_head_sent_one_byte_at_a_time_is_cut_off() {
    let gw = TestGateway::start_with(|c| c.http.header_timeout_secs = 1);
    let mut s = connect(gw.http_addr());
    let mut writer = s.try_clone().expect("clone the socket");
    // Slowloris: a head that trickles in forever, each byte well inside any per-read timeout.
    let trickle = std::thread::spawn(move || {
        let head = b"GET /api/streams HTTP/1.1\r\nHost: x\r\nX-Slow: ".iter();
        for &b in head.chain(std::iter::repeat(&b'a')).take(200) {
            if writer.write_all(&[b]).is_err() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    });
    let got = read_until_closed(&mut s, "slowloris");
    assert!(got.is_empty(), "an unfinished head has no answer");
    let _ = s.shutdown(std::net::Shutdown::Both);
    let _ = trickle.join();
}

#[test]
fn an_idle_keep_alive_connection_is_closed() {
    // The header timeout is long: only the idle timeout can close this connection in time.
    let gw = TestGateway::start_with(|c| {
        c.http.header_timeout_secs = 60;
        c.http.idle_timeout_secs = 1;
    });
    let mut s = connect(gw.http_addr());
    let request = b"GET /api/streams HTTP/1.1\r\nHost: x\r\n\r\n";
    s.write_all(request).expect("send a request");
    let mut buf = [0u8; 4096];
    let n = s.read(&mut buf).expect("an answer");
    let head = String::from_utf8_lossy(&buf[..n]);
    assert!(head.starts_with("HTTP/1.1 200"), "got {head:?}");
    // A second request on the same connection is still served (keep-alive works)...
    s.write_all(request).expect("send a second request");
    let n = s.read(&mut buf).expect("a second answer");
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    // ...and then the connection, idle, is closed.
    read_until_closed(&mut s, "idle keep-alive connection");
}

#[test]
fn an_oversized_request_head_is_refused() {
    let gw = TestGateway::start();
    let mut s = connect(gw.http_addr());
    let filler = "a".repeat(8 * 1024);
    let mut head = String::from("GET /api/streams HTTP/1.1\r\nHost: x\r\n");
    for i in 0..8 {
        head += &format!("X-Filler-{i}: {filler}\r\n");
    }
    head += "\r\n";
    // The gateway may close before reading it all; what matters is the answer.
    let _ = s.write_all(head.as_bytes());
    let got = read_until_closed(&mut s, "oversized head");
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 431"), "got {text:?}");
    let counted = limits(&gw);
    assert_eq!(counter(&counted, "listeners/http/oversized_requests"), 1);
}

#[test]
fn an_http_flv_stream_outlives_the_idle_and_header_timeouts() {
    if !require_tool("ffmpeg") || !require_tool("ffprobe") {
        return;
    }
    let mut live = Live::ffmpeg_with("av.flv", |c| {
        c.http.header_timeout_secs = 1;
        c.http.idle_timeout_secs = 1;
    });
    // ffprobe reads the one long response for ten seconds: ten idle timeouts.
    let url = live.http_url(&format!("/{}.flv", Live::KEY));
    let report = ffprobe_decode(&url, PLAY_SECS);
    live.assert_publishing();
    assert_media(
        "ffprobe http-flv past the idle timeout",
        &report,
        &Expect::for_fixture("av.flv", CELL_SECS),
    );
}

/// Opens `n` connections to `addr` from the loopback address `from` (another "host").
fn flood(from: &str, addr: SocketAddr, n: usize) -> Vec<TcpStream> {
    let local: SocketAddr = format!("{from}:0").parse().expect("an address");
    (0..n)
        .map(|i| {
            let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
                .expect("a socket");
            s.bind(&local.into()).expect("bind a loopback address");
            s.connect(&addr.into())
                .unwrap_or_else(|e| panic!("connection {i} of the flood: {e}"));
            let s = TcpStream::from(s);
            s.set_nonblocking(true).expect("non-blocking");
            s
        })
        .collect()
}

/// How many of `socks` the gateway has closed (a read sees the end, or a reset).
fn closed(socks: &mut [Option<TcpStream>]) -> usize {
    let mut buf = [0u8; 64];
    for slot in socks.iter_mut() {
        let Some(s) = slot else { continue };
        match s.read(&mut buf) {
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Ok(n) if n > 0 => {}
            _ => *slot = None,
        }
    }
    socks.iter().filter(|s| s.is_none()).count()
}

#[test]
fn idle_connections_from_one_host_do_not_lock_out_others() {
    if !require_tool("ffmpeg") || !require_tool("ffprobe") {
        return;
    }
    const FLOOD: usize = 2000;
    const PER_IP: usize = 50;
    // Timeouts far longer than the test: only the per-address cap can protect the others.
    let mut live = Live::ffmpeg_with("av.flv", |c| {
        c.http.header_timeout_secs = 600;
        c.http.idle_timeout_secs = 600;
        c.http.max_connections_per_ip = PER_IP;
    });
    let started = Instant::now();
    let mut socks: Vec<Option<TcpStream>> = flood("127.0.0.2", live.gateway.http_addr(), FLOOD)
        .into_iter()
        .map(Some)
        .collect();
    let refused = wait_until(Duration::from_secs(20), || {
        closed(&mut socks) >= FLOOD - PER_IP
    });
    assert!(
        refused,
        "of {FLOOD} idle connections from one address, {} were still open after {:?}; at most {PER_IP} may be",
        FLOOD - closed(&mut socks),
        started.elapsed()
    );
    // The flood's connections within the cap are still open: the cap is not a timeout.
    assert_eq!(closed(&mut socks), FLOOD - PER_IP);

    // Another host is served as usual: the API, then a viewer, while the flood holds its places.
    let api = http_get(&live.http_url("/api/streams"), Duration::from_secs(5))
        .expect("the API answers during the flood");
    assert_eq!(api.status, 200);
    let url = live.http_url(&format!("/{}.flv", Live::KEY));
    let report = ffprobe_decode(&url, PLAY_SECS);
    live.assert_publishing();
    assert_media(
        "ffprobe http-flv during a flood from another address",
        &report,
        &Expect::for_fixture("av.flv", CELL_SECS),
    );
    drop(socks);
}

#[test]
fn a_websocket_flv_stream_outlives_the_idle_and_header_timeouts() {
    if !require_tool("ffmpeg") {
        return;
    }
    let live = Live::ffmpeg_with("av.flv", |c| {
        c.http.header_timeout_secs = 1;
        c.http.idle_timeout_secs = 1;
    });
    let mut s = connect(live.gateway.http_addr());
    s.set_read_timeout(Some(Duration::from_secs(2)))
        .expect("set a timeout");
    let upgrade = format!(
        "GET /{}.flv HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        Live::KEY
    );
    s.write_all(upgrade.as_bytes()).expect("send the upgrade");
    let mut got = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    while !got.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = s.read(&mut buf).expect("the upgrade answer");
        assert!(n > 0, "closed before answering the upgrade");
        got.extend_from_slice(&buf[..n]);
    }
    let head = String::from_utf8_lossy(&got);
    assert!(head.starts_with("HTTP/1.1 101"), "got {head:?}");
    // Binary messages keep coming for four idle timeouts and after.
    let start = Instant::now();
    let mut late = 0;
    while start.elapsed() < Duration::from_secs(5) {
        let n = s
            .read(&mut buf)
            .unwrap_or_else(|e| panic!("WebSocket-FLV stalled after {:?}: {e}", start.elapsed()));
        assert!(n > 0, "WebSocket-FLV closed after {:?}", start.elapsed());
        if start.elapsed() > Duration::from_secs(4) {
            late += n;
        }
    }
    assert!(late > 0, "no media after four idle timeouts");
}

#[test]
fn a_silent_or_trickling_rtsp_connection_is_closed() {
    let gw = TestGateway::start_with(|c| c.rtsp.request_timeout_secs = 1);
    let addr = gw.rtsp_addr().expect("RTSP is enabled by default");
    let mut silent = connect(addr);
    let mut trickle = connect(addr);
    let mut writer = trickle.try_clone().expect("clone the socket");
    let slow = std::thread::spawn(move || {
        let head = b"OPTIONS rtsp://x/live/test RTSP/1.0\r\nCSeq: 1\r\nX-Slow: ";
        for &b in head.iter().chain(std::iter::repeat(&b'a')).take(200) {
            if writer.write_all(&[b]).is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    });
    assert!(read_until_closed(&mut silent, "silent RTSP connection").is_empty());
    assert!(read_until_closed(&mut trickle, "trickling RTSP request").is_empty());
    let _ = trickle.shutdown(std::net::Shutdown::Both);
    let _ = slow.join();
    let counted = limits(&gw);
    assert_eq!(counter(&counted, "listeners/rtsp/timeouts/request"), 2);
}

#[test]
fn idle_connections_from_one_host_are_capped_on_every_listener() {
    if !require_tool("ffmpeg") || !require_tool("ffprobe") {
        return;
    }
    const FLOOD: usize = 500;
    const PER_IP: usize = 50;
    // Timeouts far longer than the test: only the per-address caps can protect the others.
    let gw = TestGateway::start_with(|c| {
        c.rtmp.handshake_timeout_secs = 600;
        c.rtmp.max_connections_per_ip = PER_IP;
        c.rtsp.request_timeout_secs = 600;
        c.rtsp.max_connections_per_ip = PER_IP;
        c.mms.max_connections_per_ip = PER_IP;
    });
    let listeners = [
        ("RTMP", gw.rtmp_addr()),
        ("RTSP", gw.rtsp_addr().expect("RTSP is on by default")),
        ("MMST", gw.mms_addr().expect("MMS is on by default")),
    ];
    let mut floods = Vec::new();
    for (name, addr) in listeners {
        let mut socks: Vec<Option<TcpStream>> = flood("127.0.0.2", addr, FLOOD)
            .into_iter()
            .map(Some)
            .collect();
        let capped = wait_until(Duration::from_secs(20), || {
            closed(&mut socks) >= FLOOD - PER_IP
        });
        let open = FLOOD - closed(&mut socks);
        assert!(capped, "{name}: {open} of {FLOOD} idle connections from one address still open; at most {PER_IP} may be");
        assert_eq!(
            open, PER_IP,
            "{name}: the connections within the cap stay open"
        );
        let counted = limits(&gw);
        let key = format!(
            "listeners/{}/refused/max_connections_per_ip",
            name.to_lowercase()
        );
        assert_eq!(
            counter(&counted, &key) as usize,
            FLOOD - PER_IP,
            "{counted}"
        );
        floods.push(socks);
    }
    // A publisher and a player from another address connect as usual during the flood.
    let url = gw.rtmp_url(Live::KEY);
    let mut publisher = Ffmpeg::publish(&fixture("av.flv"), &url);
    assert!(
        gw.wait_live(Live::KEY, LIVE_TIMEOUT),
        "the publisher could not go live during the flood: {}",
        publisher.log()
    );
    let report = ffprobe_decode(&url, PLAY_SECS);
    publisher.assert_running();
    assert_media(
        "ffprobe rtmp during a flood from another address",
        &report,
        &Expect::for_fixture("av.flv", CELL_SECS),
    );
    drop(floods);
}

/// Connects to `addr` from the loopback address `from` and closes at once; false if the connect
/// itself failed.
fn connect_and_close(from: &str, addr: SocketAddr) -> bool {
    let local: SocketAddr = format!("{from}:0").parse().expect("an address");
    let s =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("a socket");
    s.bind(&local.into()).expect("bind a loopback address");
    s.connect(&addr.into()).is_ok()
}

#[test]
fn a_connection_flood_from_one_address_is_cut_at_the_limits_while_another_keeps_playing() {
    if !require_tool("ffmpeg") || !require_tool("ffprobe") {
        return;
    }
    const PER_IP: usize = 20;
    const RATE: u32 = 20;
    const BURST: u32 = 40;
    // Fewer than the burst: only the per-address cap can close some of them.
    const HELD: usize = 30;
    const CHURN: usize = 1000;
    // Connections the honest clients (viewers, API requests) may open meanwhile.
    const HONEST: u64 = 10;
    // Timeouts far longer than the test: only the limits can close the flood's connections.
    let mut live = Live::ffmpeg_with("av.flv", |c| {
        c.rtmp.handshake_timeout_secs = 600;
        c.rtmp.max_connections_per_ip = PER_IP;
        c.rtmp.connection_rate_per_ip = RATE;
        c.rtmp.connection_burst_per_ip = BURST;
        c.http.header_timeout_secs = 600;
        c.http.idle_timeout_secs = 600;
        c.http.max_connections_per_ip = PER_IP;
        c.http.connection_rate_per_ip = RATE;
        c.http.connection_burst_per_ip = BURST;
    });
    // The honest viewers come from 127.0.0.1 and play throughout; the flood comes from 127.0.0.2.
    let urls = [
        live.rtmp_url(),
        live.http_url(&format!("/{}.flv", Live::KEY)),
    ];
    let viewers: Vec<_> = urls
        .into_iter()
        .map(|url| std::thread::spawn(move || (ffprobe_decode(&url, PLAY_SECS), url)))
        .collect();
    let gw = &live.gateway;
    for (name, addr) in [("rtmp", gw.rtmp_addr()), ("http", gw.http_addr())] {
        let phase = Instant::now();
        // Idle connections past the per-address cap, within the burst: the cap holds.
        let mut socks: Vec<Option<TcpStream>> = flood("127.0.0.2", addr, HELD)
            .into_iter()
            .map(Some)
            .collect();
        let capped = wait_until(Duration::from_secs(20), || {
            closed(&mut socks) >= HELD - PER_IP
        });
        assert!(
            capped,
            "{name}: {} of {HELD} idle connections still open; at most {PER_IP} may be",
            HELD - closed(&mut socks)
        );
        assert_eq!(
            closed(&mut socks),
            HELD - PER_IP,
            "{name}: the cap is not a timeout"
        );
        let held = limits(gw);
        let key = |k: &str| format!("listeners/{name}/{k}");
        assert_eq!(
            counter(&held, &key("refused/max_connections_per_ip")) as usize,
            HELD - PER_IP,
            "{held}"
        );
        assert_eq!(
            counter(&held, &key("refused/connection_rate_per_ip")),
            0,
            "{held}"
        );
        // The flood lets go; its places are freed.
        drop(socks);
        let open_with_flood = counter(&held, &key("open"));
        let freed = wait_until(Duration::from_secs(10), || {
            counter(&limits(gw), &key("open")) + PER_IP as u64 <= open_with_flood + 1
        });
        assert!(freed, "{name}: the flood's connections were not released");
        // Then connections opened and closed in a loop: no cap on open connections triggers, the
        // rate does. At most the burst and the rate since the phase began are admitted.
        // Every connection the kernel completed is answered by the accept loop, admitted or
        // refused; a refusal for the per-address cap (a closed connection not yet reaped) counts.
        let answered = |l: &Value| {
            counter(l, &key("accepted"))
                + counter(l, &key("refused/connection_rate_per_ip"))
                + counter(l, &key("refused/max_connections_per_ip"))
        };
        let start = limits(gw);
        let (accepted_before, rate_refused_before) = (
            counter(&start, &key("accepted")),
            counter(&start, &key("refused/connection_rate_per_ip")),
        );
        let answered_before = answered(&start);
        let connected = (0..CHURN)
            .filter(|_| connect_and_close("127.0.0.2", addr))
            .count() as u64;
        // The kernel completes a handshake before the accept loop sees it: wait for the loop.
        let caught_up = wait_until(Duration::from_secs(20), || {
            answered(&limits(gw)) >= answered_before + connected
        });
        let after = limits(gw);
        assert!(
            caught_up,
            "{name}: {connected} connections completed but not all were answered: {after}"
        );
        let admitted = counter(&after, &key("accepted")) - accepted_before;
        let rate_refused =
            counter(&after, &key("refused/connection_rate_per_ip")) - rate_refused_before;
        let secs = phase.elapsed().as_secs_f64().ceil() as u64;
        let bound = u64::from(BURST) + u64::from(RATE) * secs + HONEST;
        assert!(
            admitted <= bound,
            "{name}: {admitted} of {connected} connections opened in a loop from one address were admitted in {secs} s; the rate allows {bound}: {after}"
        );
        assert!(
            rate_refused + bound >= connected,
            "{name}: the refusals are counted: {after}"
        );
    }
    for viewer in viewers {
        let (report, url) = viewer.join().expect("the viewer's thread");
        assert_media(
            &format!("ffprobe {url} from another address during the flood"),
            &report,
            &Expect::for_fixture("av.flv", CELL_SECS),
        );
    }
    live.assert_publishing();
}

#[test]
fn a_publish_past_max_streams_per_app_is_refused_with_the_reason_while_another_app_publishes() {
    if !require_tool("ffmpeg") {
        return;
    }
    let gw = TestGateway::start_with(|c| c.bus.max_streams_per_app = 2);
    let av = fixture("av.flv");
    let mut publishers = Vec::new();
    for key in ["live/a", "live/b"] {
        let mut p = Ffmpeg::publish(&av, &gw.rtmp_url(key));
        if !gw.wait_live(key, LIVE_TIMEOUT) {
            p.assert_running();
            panic!("{key} did not go live: {}", p.log());
        }
        publishers.push(p);
    }
    // A third stream in the same app: ffmpeg is told why and gives up.
    let mut third = Ffmpeg::publish(&av, &gw.rtmp_url("live/c"));
    let gave_up = wait_until(LIVE_TIMEOUT, || !third.is_running());
    assert!(
        gave_up,
        "ffmpeg kept publishing past the cap: {}",
        third.log()
    );
    let log = third.log();
    assert!(
        log.contains("bus.max_streams_per_app"),
        "ffmpeg's output does not give the reason:\n{log}"
    );
    assert!(gw.bus().stream("live/c").is_none());
    // Another app still accepts a stream, and the first two still publish.
    let mut other = Ffmpeg::publish(&av, &gw.rtmp_url("other/a"));
    if !gw.wait_live("other/a", LIVE_TIMEOUT) {
        other.assert_running();
        panic!("other/a did not go live: {}", other.log());
    }
    for p in &mut publishers {
        p.assert_running();
    }
    let counted = limits(&gw);
    assert_eq!(
        counter(&counted, "streams/refused/max_streams_per_app"),
        1,
        "{counted}"
    );
    assert_eq!(
        counter(&counted, "streams/refused/max_streams"),
        0,
        "{counted}"
    );
    assert_eq!(counter(&counted, "streams/streams"), 3, "{counted}");
}

/// Sends one RTSP request and reads its response, head and body.
fn rtsp_exchange(s: &mut TcpStream, request: &str) -> String {
    s.write_all(request.as_bytes()).expect("send the request");
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let text = String::from_utf8_lossy(&got).into_owned();
        if let Some(end) = text.find("\r\n\r\n") {
            let length = text[..end]
                .lines()
                .find_map(|l| l.strip_prefix("Content-Length: "))
                .and_then(|n| n.trim().parse::<usize>().ok())
                .unwrap_or(0);
            if got.len() >= end + 4 + length {
                return text;
            }
        }
        let n = s.read(&mut buf).expect("an answer");
        assert!(n > 0, "closed before answering; got {text:?}");
        got.extend_from_slice(&buf[..n]);
    }
}

#[test]
fn an_rtsp_setup_for_a_third_party_destination_is_refused_and_counted() {
    if !require_tool("ffmpeg") {
        return;
    }
    let live = Live::ffmpeg("av.flv");
    let addr = live.gateway.rtsp_addr().expect("RTSP is on by default");
    let url = format!("rtsp://{addr}/{}", Live::KEY);
    let mut s = connect(addr);
    // DESCRIBE first, as a client does: it also waits for the stream's first frames.
    let describe = rtsp_exchange(
        &mut s,
        &format!("DESCRIBE {url} RTSP/1.0\r\nCSeq: 1\r\n\r\n"),
    );
    assert!(describe.starts_with("RTSP/1.0 200"), "got {describe:?}");
    let setup = rtsp_exchange(
        &mut s,
        &format!(
            "SETUP {url}/trackID=0 RTSP/1.0\r\nCSeq: 2\r\n\
             Transport: RTP/AVP;unicast;destination=192.0.2.7;client_port=50000-50001\r\n\r\n"
        ),
    );
    assert!(setup.starts_with("RTSP/1.0 461"), "got {setup:?}");
    let counted = limits(&live.gateway);
    assert_eq!(
        counter(&counted, "rtsp_sessions/setups_refused/destination"),
        1,
        "{counted}"
    );
}

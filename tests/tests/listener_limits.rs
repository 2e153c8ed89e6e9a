//! The HTTP listener as an attacker finds it: silent connections, request heads sent one byte at
//! a time, idle keep-alive connections and thousands of idle sockets from one host. Each is cut
//! off by a timeout or a cap, while honest clients (ffprobe, plain requests) keep being served and
//! a long HTTP-FLV response is never cut by the idle timeout.
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

/// How long a test waits for the gateway to close a connection it should close.
const CLOSE_WAIT: Duration = Duration::from_secs(8);

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

//! Viewers that stop reading: on every TCP egress, a viewer whose socket accepts nothing for the
//! send timeout is disconnected and counted in `/api/streams` (`stalled_viewers_dropped`), its
//! viewer count goes back down, and an honest ffmpeg/ffprobe viewer of the same stream decodes
//! the whole time. An MMST connection that sends no command is closed after the idle timeout.
//!
//! The gateway runs with a 2 s send timeout and 16 KiB socket send buffers, so a stalled viewer
//! fills its buffers with the start-up burst and is dropped within seconds.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::thread::JoinHandle;
use std::time::Duration;

use gateway_tests::{
    assert_media, ffprobe_decode, ffprobe_decode_with, http_get, require_tool, wait_until, Expect,
    Live, MediaReport, CELL_SECS, PLAY_SECS,
};
use serde_json::Value;

/// The send timeout of every egress in these tests.
const SEND_TIMEOUT_SECS: u64 = 2;
/// How long a stalled viewer may take to be dropped: its buffers fill with the start-up burst at
/// once, then the send timeout runs; the rest is slack for a loaded machine.
const DROP_WITHIN: Duration = Duration::from_secs(30);

fn live() -> Live {
    Live::ffmpeg_with("av.flv", |c| {
        c.rtmp.send_timeout_secs = SEND_TIMEOUT_SECS;
        c.rtmp.send_buffer_bytes = 16 * 1024;
        c.http.send_timeout_secs = SEND_TIMEOUT_SECS;
        c.http.send_buffer_bytes = 16 * 1024;
        c.rtsp.send_timeout_secs = SEND_TIMEOUT_SECS;
        c.rtsp.send_buffer_bytes = 16 * 1024;
        c.mms.send_timeout_secs = SEND_TIMEOUT_SECS;
        c.mms.idle_timeout_secs = 2;
    })
}

/// The stream's entry in `GET /api/streams/live/test`.
fn api(live: &Live) -> Value {
    let url = live.http_url(&format!("/api/streams/{}", Live::KEY));
    let r = http_get(&url, Duration::from_secs(5)).unwrap_or_else(|e| panic!("{url}: {e}"));
    serde_json::from_slice(&r.body).unwrap_or_else(|e| panic!("{url}: {e}: {}", r.text()))
}

fn count(json: &Value, group: &str, protocol: &str) -> u64 {
    json[group][protocol].as_u64().unwrap_or(u64::MAX)
}

/// An honest viewer decoding [`PLAY_SECS`] in the background.
fn honest(url: String, input_args: &'static [&'static str]) -> JoinHandle<MediaReport> {
    std::thread::spawn(move || ffprobe_decode_with(&url, PLAY_SECS, input_args))
}

/// A raw HTTP client that sends `request` and never reads a byte of the answer.
fn stalled_http(addr: SocketAddr, request: &str) -> TcpStream {
    let mut s = TcpStream::connect(addr).expect("connect to the HTTP listener");
    s.write_all(request.as_bytes()).expect("send the request");
    s
}

/// Waits until the stalled viewer was dropped (its connection reads as closed once drained) and
/// counted, then checks the honest viewer's media and that the viewer count went back to 0.
fn check(
    mut live: Live,
    protocol: &str,
    honest: JoinHandle<MediaReport>,
    stalled_closed: impl FnOnce() -> bool,
) {
    let mut last = Value::Null;
    let counted = wait_until(DROP_WITHIN, || {
        last = api(&live);
        count(&last, "stalled_viewers_dropped", protocol) == 1
    });
    assert!(
        counted,
        "{protocol}: the stalled viewer was not dropped within {DROP_WITHIN:?}: {last}"
    );
    assert!(
        stalled_closed(),
        "{protocol}: the stalled viewer's connection is still open"
    );
    let report = honest.join().expect("the honest viewer's thread");
    live.assert_publishing();
    assert_media(
        &format!("honest {protocol} viewer next to a stalled one"),
        &report,
        &Expect::av(CELL_SECS),
    );
    let gone = wait_until(Duration::from_secs(10), || {
        last = api(&live);
        count(&last, "viewers", protocol) == 0
    });
    assert!(gone, "{protocol}: viewers did not go back to 0: {last}");
    assert_eq!(
        count(&last, "stalled_viewers_dropped", protocol),
        1,
        "{protocol}: only the stalled viewer is counted as dropped: {last}"
    );
}

/// Drains what the server sent before it gave up; true when that ends in EOF or a reset.
fn drained_to_eof(mut s: TcpStream) -> bool {
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("set a read timeout");
    let mut buf = vec![0u8; 1 << 16];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
            Err(_) => return false,
        }
    }
}

fn flv_request(key: &str, extra: &str) -> String {
    format!("GET /{key}.flv HTTP/1.1\r\nHost: gateway\r\n{extra}\r\n")
}

#[test]
fn a_stalled_http_flv_viewer_is_dropped_and_counted() {
    if !require_tool("ffmpeg") || !require_tool("ffprobe") {
        return;
    }
    let live = live();
    let url = live.http_url(&format!("/{}.flv", Live::KEY));
    let honest = honest(url, &[]);
    let stalled = stalled_http(live.gateway.http_addr(), &flv_request(Live::KEY, ""));
    check(live, "http_flv", honest, || drained_to_eof(stalled));
}

#[test]
fn a_stalled_ws_flv_viewer_is_dropped_and_counted() {
    if !require_tool("ffmpeg") || !require_tool("ffprobe") {
        return;
    }
    let live = live();
    // ffmpeg has no WebSocket client: the honest viewer plays the same stream over HTTP-FLV
    // (both count as http_flv viewers).
    let url = live.http_url(&format!("/{}.flv", Live::KEY));
    let honest = honest(url, &[]);
    let upgrade = "Upgrade: websocket\r\nConnection: Upgrade\r\n\
                   Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n";
    let stalled = stalled_http(live.gateway.http_addr(), &flv_request(Live::KEY, upgrade));
    check(live, "http_flv", honest, || drained_to_eof(stalled));
}

#[test]
fn a_stalled_mmsh_viewer_is_dropped_and_counted() {
    if !require_tool("ffmpeg") || !require_tool("ffprobe") {
        return;
    }
    let live = live();
    let url = format!("mmsh://{}/{}", live.gateway.http_addr(), Live::KEY);
    let honest = honest(url, &[]);
    let request = format!(
        "GET /{} HTTP/1.0\r\nHost: gateway\r\nUser-Agent: NSPlayer/7.10.0.3059\r\n\
         Pragma: xPlayStrm=1\r\nPragma: xClientGUID={{c77e7400-738a-11d2-9add-0020af0a3278}}\r\n\r\n",
        Live::KEY
    );
    let stalled = stalled_http(live.gateway.http_addr(), &request);
    check(live, "mms", honest, || drained_to_eof(stalled));
}

/// Runs gwload with one viewer of `protocol` that stops reading after a second and keeps its
/// connection open for `secs`, in the background.
fn stalled_gwload(protocol: gwload::Protocol, url: String, secs: u64) -> JoinHandle<Value> {
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime can be built");
        let mut opts = gwload::Options::new(protocol, &url, 1);
        opts.duration = Duration::from_secs(secs);
        opts.warmup = Duration::from_secs(1);
        opts.stall_after = Some(Duration::from_secs(1));
        let report = runtime
            .block_on(gwload::run(&opts))
            .unwrap_or_else(|e| panic!("gwload {url}: {e}"));
        report.json
    })
}

#[test]
fn a_stalled_rtmp_viewer_is_dropped_and_counted() {
    if !require_tool("ffmpeg") || !require_tool("ffprobe") {
        return;
    }
    let live = live();
    let honest = honest(live.rtmp_url(), &[]);
    let stalled = stalled_gwload(gwload::Protocol::Rtmp, live.rtmp_url(), 20);
    check(live, "rtmp", honest, || {
        let j = stalled.join().expect("gwload's thread");
        j["viewers_stalled"] == 1
    });
}

#[test]
fn a_stalled_rtsp_tcp_viewer_is_dropped_and_counted() {
    if !require_tool("ffmpeg") || !require_tool("ffprobe") {
        return;
    }
    let live = live();
    let rtsp = live.gateway.rtsp_addr().expect("RTSP is enabled");
    let url = format!("rtsp://{rtsp}/{}", Live::KEY);
    let honest = honest(url.clone(), &["-rtsp_transport", "tcp"]);
    let stalled = stalled_gwload(gwload::Protocol::RtspTcp, url, 20);
    check(live, "rtsp", honest, || {
        let j = stalled.join().expect("gwload's thread");
        j["viewers_stalled"] == 1
    });
}

/// True once the peer closed `s` (non-blocking): EOF, a reset, or a failed write.
fn peer_closed(s: &mut TcpStream) -> bool {
    let mut buf = [0u8; 64];
    match s.read(&mut buf) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => e.kind() != std::io::ErrorKind::WouldBlock,
    }
}

#[test]
fn an_mmst_connection_that_completes_no_command_is_closed() {
    if !require_tool("ffmpeg") || !require_tool("ffprobe") {
        return;
    }
    let live = live();
    let addr = live.gateway.mms_addr().expect("MMS is enabled");
    let mut silent = TcpStream::connect(addr).expect("connect to MMST");
    silent.set_nonblocking(true).expect("non-blocking");
    // The start of a command header (MS-MMSP 2.2.4), one byte every 400 ms: bytes keep coming,
    // well inside the 2 s idle timeout, but no command completes for 16 s.
    let mut header = Vec::new();
    for word in [1u32, 0xB00B_FACE, 32, u32::from_le_bytes(*b"MMS ")] {
        header.extend_from_slice(&word.to_le_bytes());
    }
    header.resize(40, 0);
    let started = std::time::Instant::now();
    let mut closed = false;
    for byte in header {
        if peer_closed(&mut silent) || silent.write(&[byte]).is_err() {
            closed = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(400));
    }
    assert!(
        closed,
        "an MMST connection trickling an incomplete command stayed open for {:?}",
        started.elapsed()
    );
    // The same gateway still serves MMST.
    let report = ffprobe_decode(&format!("mmst://{addr}/{}", Live::KEY), 3.0);
    assert!(
        report.stream(gateway_tests::Kind::Video).is_some(),
        "MMST still plays after the idle connection was closed: {report:?}"
    );
}

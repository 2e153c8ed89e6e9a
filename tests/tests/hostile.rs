//! Hostile clients against a running gateway: what a port scanner, a fuzzer or a broken encoder
//! sends, from raw sockets, while an honest publisher and honest viewers on every egress keep
//! streaming.
//!
//! One gateway runs in-process with a live ffmpeg publisher and ffmpeg viewers over RTMP,
//! HTTP-FLV, RTSP (TCP interleaved), HLS and MMSH. Then every attack case runs in turn, and each
//! asserts what an operator and a user would see:
//!
//! - the gateway logs a line naming the attacking peer (`127.0.0.1:PORT`), with the reason where
//!   the case is framing corruption;
//! - the attacker gets a clear answer (an error status) or its connection closed, as the case says;
//! - a new viewer still connects and gets the stream's first frames;
//! - every honest viewer is still running and still receiving.
//!
//! At the end: no viewer saw a gap (no packet for over [`MAX_WALL_GAP`], or a jump in a stream's
//! timestamps over [`MAX_MEDIA_GAP`]), no gateway thread panicked, no stream was left on the bus
//! by hostile keys, and the process's open files and RSS are back near their baseline.
//!
//! Attack sizes can be raised for a bigger local run: `HOSTILE_IDLE_CONNS` (idle handshaken RTMP
//! connections, default 2000, scaled down to fit `ulimit -n`), `HOSTILE_SETUPS` (SETUPs on one
//! RTSP connection, default 1000), `HOSTILE_AMF_DEPTH` (nesting depth, default 10000) and
//! `HOSTILE_SLOW_CONNS` (slowloris connections, default 50), `HOSTILE_SILENT_CONNS` (connections
//! that send nothing, per listener, default 300). `HOSTILE_ONLY=<text>` runs only the
//! cases whose name contains the text.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gateway_tests::logs::{self, Logs};
use gateway_tests::self_stat::{open_fds, raise_fd_limit, rss_kib, trim_heap};
use gateway_tests::{
    http_get, require_tool, rtmp_tags, Ffmpeg, Live, Publisher, ReadUntil, TestGateway, Watcher,
};

/// Tests in this file measure the whole process (open files, RSS), so they run one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

/// The longest an honest RTMP/FLV/RTSP/MMSH viewer may go without a packet. Packets are 23 to
/// 40 ms apart; the bound leaves room for a loaded two-core CI machine, not for a stall.
const MAX_WALL_GAP: Duration = Duration::from_millis(1500);
/// HLS viewers receive whole segments: their bound is two target durations plus the same slack.
const MAX_HLS_WALL_GAP: Duration = Duration::from_millis(2 * 2000 + 1500);
/// The largest jump between consecutive timestamps of one stream a viewer may see.
const MAX_MEDIA_GAP: f64 = 1.0;
/// Open files allowed above the baseline once every attacker has gone (HLS viewers open
/// connections per request, ffmpeg reconnects).
const FD_SLACK: usize = 16;
/// RSS allowed above the baseline once every attacker has gone, after `malloc_trim`.
const RSS_SLACK_KIB: u64 = 24 * 1024;
/// How long the gateway gets to log a case and to close what it should close.
const REACT: Duration = Duration::from_secs(5);

// The test gateway's timeouts, short so that the cases that wait for them stay short.
const HANDSHAKE_TIMEOUT_SECS: u64 = 2;
const RTMP_IDLE_SECS: u64 = 4;
const RTSP_SESSION_SECS: u64 = 3;

fn env_count(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

// ---- the tests ----

#[test]
fn hostile_clients_do_not_disturb_honest_ones() {
    if !require_tool("ffmpeg") {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut env = Env::start();
    let cases: Vec<(&str, Case)> = vec![
        ("rtmp: garbage C0", rtmp_garbage_c0),
        ("rtmp: an HTTP request on the RTMP port", rtmp_http_request),
        ("rtmp: truncated handshake", rtmp_truncated_handshake),
        ("rtmp: stalled handshake", rtmp_stalled_handshake),
        ("rtmp: set chunk size 0", rtmp_chunk_size_zero),
        ("rtmp: set chunk size 0x80000000", rtmp_chunk_size_top_bit),
        ("rtmp: 16 MB message", rtmp_huge_message),
        (
            "rtmp: chunk size 0x7fffffff, message never finished",
            rtmp_unfinished_message,
        ),
        (
            "rtmp: type 1 header on a chunk stream never opened",
            rtmp_unopened_fmt1,
        ),
        (
            "rtmp: type 3 header on a chunk stream never opened",
            rtmp_unopened_fmt3,
        ),
        (
            "rtmp: 100 chunk streams opened at once",
            rtmp_many_chunk_streams,
        ),
        (
            "rtmp: AMF0 objects nested deep in connect",
            rtmp_amf0_deep_objects,
        ),
        (
            "rtmp: AMF0 strict arrays nested deep",
            rtmp_amf0_deep_arrays,
        ),
        (
            "rtmp: AMF0 strict array claiming 4 billion items",
            rtmp_amf0_huge_count,
        ),
        (
            "rtmp: AMF3 arrays nested deep in connect",
            rtmp_amf3_deep_arrays,
        ),
        (
            "rtmp: garbage after the handshake",
            rtmp_garbage_after_handshake,
        ),
        ("rtsp: 100 KB header line", rtsp_giant_header),
        ("rtsp: 1,000 headers", rtsp_many_headers),
        ("rtsp: missing CSeq", rtsp_missing_cseq),
        ("rtsp: PLAY without SETUP", rtsp_play_without_setup),
        ("rtsp: binary garbage", rtsp_garbage),
        ("rtsp: hostile stream paths", rtsp_hostile_paths),
        (
            "rtsp: garbage datagrams at a UDP session's server ports",
            rtsp_udp_garbage,
        ),
        (
            "rtsp: interleaved frames on unknown channels",
            rtsp_interleaved_garbage,
        ),
        (
            "rtsp: interleaved frame with a lying length",
            rtsp_interleaved_lying,
        ),
        ("http: 1 MB header", http_huge_header),
        ("http: 1,000 headers", http_many_headers),
        ("http: hostile paths on every route", http_hostile_paths),
        ("ws-flv: a 16 MB client frame", ws_huge_frame),
        ("mmst: command length 0xfffffff0", mmst_huge_length),
        (
            "mmst: command length longer than what is sent",
            mmst_lying_length,
        ),
        ("mmst: truncated command", mmst_truncated),
        ("mmst: bad seal", mmst_bad_seal),
        ("mmst: server-to-client direction", mmst_bad_direction),
        ("mmst: garbage", mmst_garbage),
        ("rtsp: slowloris", rtsp_slowloris),
        ("rtmp, rtsp: silent connections", silent_rtmp_rtsp),
        (
            "rtmp: a publisher of malformed media, played on every egress",
            rtmp_bad_media,
        ),
        ("rtmp: idle handshaken connections", rtmp_idle_flood),
    ];
    for (name, case) in cases {
        env.run(name, case);
    }
    env.finish();
}

/// Cases whose fixes are on other branches of issue 10: HTTP header timeout and header size
/// limit (http), MMST idle timeout (slow), RTSP repeated SETUP and port pool (rtsp). Set
/// `HOSTILE_PENDING_CASES=1` to run them. To enable them by default once those branches are
/// merged: set the HTTP header timeout and MMST idle timeout short in [`Env::start`] (a few
/// seconds, as the RTMP and RTSP ones are), shorten the 60 s limits of [`http_slowloris`] and
/// [`silent_http_mmst`] to match, and move the cases into the list above.
#[test]
fn hostile_cases_pending_other_fixes() {
    if std::env::var_os("HOSTILE_PENDING_CASES").is_none() {
        println!("hostile_cases_pending_other_fixes: not enabled (HOSTILE_PENDING_CASES unset)");
        return;
    }
    if !require_tool("ffmpeg") {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut env = Env::start();
    let cases: Vec<(&str, Case)> = vec![
        ("http: slowloris", http_slowloris),
        ("http: 100 KB header", http_giant_header),
        ("rtsp: 1,000 SETUPs on one connection", rtsp_many_setups),
        ("http, mmst: silent connections", silent_http_mmst),
    ];
    for (name, case) in cases {
        env.run(name, case);
    }
    env.finish();
}

// ---- the harness: one gateway, its honest clients, and the checks around each case ----

/// One attack: it runs against the gateway in `Env` and reports what the runner must check.
type Case = fn(&Env) -> Attack;

/// What one attack did, for the checks the runner makes around it.
struct Attack {
    /// The attacker's addresses that the gateway's log must name.
    peers: Vec<SocketAddr>,
    /// Text the line naming a peer must also contain (the reason), if any.
    reason: Option<&'static str>,
    /// Case-specific failures (wrong answer, connection not closed).
    problems: Vec<String>,
}

impl Attack {
    fn new(peers: Vec<SocketAddr>, reason: Option<&'static str>) -> Attack {
        Attack {
            peers,
            reason,
            problems: Vec::new(),
        }
    }

    fn check(mut self, ok: bool, problem: impl FnOnce() -> String) -> Attack {
        if !ok {
            self.problems.push(problem());
        }
        self
    }
}

struct Env {
    live: Live,
    viewers: Vec<Watcher>,
    logs: Logs,
    panics: Arc<Mutex<Vec<String>>>,
    failures: Vec<String>,
    base_fds: usize,
    base_rss: u64,
    started: Instant,
    fd_limit: u64,
}

impl Env {
    fn start() -> Env {
        let logs = logs::capture();
        let panics = watch_gateway_panics();
        let fd_limit = raise_fd_limit();
        let gateway = TestGateway::start_with(|c| {
            c.rtmp.handshake_timeout_secs = HANDSHAKE_TIMEOUT_SECS;
            c.rtmp.idle_timeout_secs = RTMP_IDLE_SECS;
            c.hls.always_on = true;
            c.rtsp.session_timeout_secs = RTSP_SESSION_SECS;
            // The malformed-media publisher's stream leaves the bus soon after it stops.
            c.bus.unpublish_grace_secs = 1;
        });
        let url = gateway.rtmp_url(Live::KEY);
        let publisher = Ffmpeg::publish(&gateway_tests::fixture("av.flv"), &url);
        assert!(
            gateway.wait_live(Live::KEY, gateway_tests::gateway::LIVE_TIMEOUT),
            "the publisher did not go live; its output:\n{}",
            publisher.log()
        );
        let mut live = Live {
            publisher: Publisher::Ffmpeg(publisher),
            gateway,
        };
        let hls = live.wait_hls(1, Duration::from_secs(30));
        let g = &live.gateway;
        let rtsp = format!("rtsp://{}/{}", rtsp_addr(g), Live::KEY);
        let mmsh = format!("mmsh://{}/{}", g.http_addr(), Live::KEY);
        let viewers = vec![
            Watcher::ffmpeg("rtmp", &[], &live.rtmp_url()),
            Watcher::ffmpeg("http-flv", &[], &g.http_url(&format!("/{}.flv", Live::KEY))),
            Watcher::ffmpeg("rtsp-tcp", &["-rtsp_transport", "tcp"], &rtsp),
            Watcher::ffmpeg("hls", &[], &hls),
            Watcher::ffmpeg("mmsh", &[], &mmsh),
        ];
        for v in &viewers {
            assert!(
                v.wait_packets(0, 50, Duration::from_secs(30)),
                "the honest {} viewer received {} packets in 30 s; its output:\n{}",
                v.name,
                v.packets(),
                v.log()
            );
        }
        let mut env = Env {
            live,
            viewers,
            logs,
            panics,
            failures: Vec::new(),
            base_fds: 0,
            base_rss: 0,
            started: Instant::now(),
            fd_limit,
        };
        // The first probe warms up what every later one reuses; the baseline comes after it.
        let problems = env.probe_new_viewer("start-up");
        assert!(problems.is_empty(), "before any attack: {problems:?}");
        trim_heap();
        env.base_fds = open_fds();
        env.base_rss = rss_kib();
        env.started = Instant::now();
        println!(
            "baseline: {} open files, RSS {} KiB, fd limit {fd_limit}",
            env.base_fds, env.base_rss
        );
        env
    }

    fn gateway(&self) -> &TestGateway {
        &self.live.gateway
    }

    /// Runs one case and the checks around it; failures are collected, not raised, so one run
    /// reports every case that failed.
    fn run(&mut self, name: &str, case: Case) {
        if std::env::var("HOSTILE_ONLY").is_ok_and(|only| !name.contains(&only)) {
            return;
        }
        let mark = self.logs.mark();
        let began = Instant::now();
        let before: Vec<usize> = self.viewers.iter().map(Watcher::packets).collect();
        let attack = case(self);
        let mut problems = attack.problems;
        for peer in &attack.peers {
            let peer = peer.to_string();
            let mut needles = vec![peer.as_str()];
            needles.extend(attack.reason);
            if self.logs.wait_for(mark, &needles, REACT).is_none() {
                problems.push(format!(
                    "no log line names {peer}{}; log since the case began:\n{}",
                    attack
                        .reason
                        .map_or(String::new(), |r| format!(" with {r:?}")),
                    self.logs.tail(mark, 20)
                ));
                break;
            }
        }
        if let Some(p) = attack.peers.first() {
            let line = self.logs.lines_with(mark, &[&p.to_string()]);
            println!("{name}: logged {:?}", line.last());
        }
        problems.extend(self.viewers_still_receiving(&before));
        problems.extend(self.probe_new_viewer(name));
        println!(
            "{name}: {} in {:.1} s",
            if problems.is_empty() { "ok" } else { "FAILED" },
            began.elapsed().as_secs_f64()
        );
        for p in problems {
            self.failures.push(format!("{name}: {p}"));
        }
    }

    /// Every honest viewer is running and has received packets since `before`.
    fn viewers_still_receiving(&mut self, before: &[usize]) -> Vec<String> {
        let mut problems = Vec::new();
        for (v, &n) in self.viewers.iter_mut().zip(before) {
            if !v.is_running() {
                problems.push(format!("the {} viewer exited: {}", v.name, v.log()));
            } else if !v.wait_packets(n, 5, Duration::from_secs(6)) {
                problems.push(format!(
                    "the {} viewer received {} packets in 6 s",
                    v.name,
                    v.packets() - n
                ));
            }
        }
        problems
    }

    /// A new RTMP viewer and an API request are served.
    fn probe_new_viewer(&self, name: &str) -> Vec<String> {
        let mut problems = Vec::new();
        let until = ReadUntil::FirstFrames { audio: true };
        if let Err(e) = rtmp_tags(&self.live.rtmp_url(), until, Duration::from_secs(10)) {
            problems.push(format!("a new RTMP viewer got no frames after {name}: {e}"));
        }
        let api = self.gateway().http_url("/api/streams");
        match http_get(&api, Duration::from_secs(5)) {
            Ok(r) if r.status == 200 => {}
            Ok(r) => problems.push(format!("/api/streams answered {}", r.status)),
            Err(e) => problems.push(format!("/api/streams failed: {e}")),
        }
        problems
    }

    /// The checks over the whole run; panics with every failure collected.
    fn finish(mut self) {
        let ended = Instant::now();
        for v in &self.viewers {
            let r = v.report(self.started, ended);
            let limit = if v.name == "hls" {
                MAX_HLS_WALL_GAP
            } else {
                MAX_WALL_GAP
            };
            println!("{} viewer: {r:?}", v.name);
            if r.max_wall_gap > limit {
                self.failures.push(format!(
                    "the {} viewer went {:?} without a packet (limit {limit:?})",
                    v.name, r.max_wall_gap
                ));
            }
            for (stream, gap) in &r.max_media_gap {
                if *gap > MAX_MEDIA_GAP {
                    self.failures.push(format!(
                        "the {} viewer's stream {stream} jumped {gap:.3} s",
                        v.name
                    ));
                }
            }
            let wall = ended.duration_since(self.started).as_secs_f64();
            for (stream, secs) in &r.media_secs {
                if *secs < wall - limit.as_secs_f64() - 1.0 {
                    self.failures.push(format!(
                        "the {} viewer's stream {stream} got {secs:.1} s of media in {wall:.1} s",
                        v.name
                    ));
                }
            }
        }
        let panics = self.panics.lock().expect("panic list lock").clone();
        if !panics.is_empty() {
            self.failures
                .push(format!("gateway threads panicked: {panics:?}"));
        }
        let streams: Vec<String> = self
            .gateway()
            .bus()
            .streams()
            .iter()
            .map(|s| s.key().to_owned())
            .collect();
        if streams != [Live::KEY] {
            self.failures
                .push(format!("streams on the bus after the attacks: {streams:?}"));
        }
        self.check_resources();
        if let Publisher::Ffmpeg(p) = &mut self.live.publisher {
            if !p.is_running() {
                self.failures
                    .push(format!("the publisher exited: {}", p.log()));
            }
        }
        assert!(
            self.failures.is_empty(),
            "{} failures:\n- {}",
            self.failures.len(),
            self.failures.join("\n- ")
        );
    }

    /// Open files and RSS back near the baseline once every attacker has gone.
    fn check_resources(&mut self) {
        let mut fds = 0;
        let back = gateway_tests::wait_until(Duration::from_secs(15), || {
            fds = open_fds();
            fds <= self.base_fds + FD_SLACK
        });
        if !back {
            self.failures.push(format!(
                "{fds} open files after the attacks, baseline {} (+{FD_SLACK} allowed)",
                self.base_fds
            ));
        }
        trim_heap();
        let rss = rss_kib();
        println!(
            "after the attacks: {fds} open files (baseline {}), RSS {rss} KiB (baseline {} KiB)",
            self.base_fds, self.base_rss
        );
        if rss > self.base_rss + RSS_SLACK_KIB {
            self.failures.push(format!(
                "RSS {rss} KiB after the attacks, baseline {} KiB (+{RSS_SLACK_KIB} allowed)",
                self.base_rss
            ));
        }
    }
}

fn rtsp_addr(g: &TestGateway) -> SocketAddr {
    g.rtsp_addr().expect("RTSP is enabled by default")
}

fn mms_addr(g: &TestGateway) -> SocketAddr {
    g.mms_addr().expect("MMS is enabled by default")
}

/// Records panics on the gateway's runtime threads (a panicking connection task would otherwise
/// only print to stderr), and keeps the default hook's output.
fn watch_gateway_panics() -> Arc<Mutex<Vec<String>>> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&seen);
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let thread = std::thread::current();
        if thread
            .name()
            .is_some_and(|n| n.starts_with("gateway-under-test"))
        {
            if let Ok(mut s) = sink.lock() {
                s.push(info.to_string());
            }
        }
        previous(info);
    }));
    seen
}

// ---- raw sockets ----

/// What the gateway did with an attacker's bytes.
struct Reply {
    bytes: Vec<u8>,
    /// The gateway closed the connection (end of stream or reset) before the wait ran out.
    closed: bool,
}

impl Reply {
    /// The status code of an RTSP or HTTP response at the start of the reply.
    fn status(&self) -> Option<u16> {
        let text = String::from_utf8_lossy(&self.bytes);
        text.split_whitespace().nth(1)?.parse().ok()
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.bytes).into_owned()
    }
}

fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .expect("a timeout can be set");
    s.set_write_timeout(Some(REACT))
        .expect("a timeout can be set");
    s
}

/// A connection polled often: reads give up at once.
fn slow_connect(addr: SocketAddr) -> TcpStream {
    let s = connect(addr);
    s.set_read_timeout(Some(Duration::from_millis(1)))
        .expect("a timeout can be set");
    s
}

/// Writes `data` (the gateway may close the connection part way: that is not an error here),
/// then reads until the gateway closes it or `wait` passes.
fn send_and_read(s: &mut TcpStream, data: &[u8], wait: Duration) -> Reply {
    let _ = s.write_all(data);
    read_reply(s, wait)
}

/// Reads one RTSP or HTTP response (head and `Content-Length` body), or until `wait` passes or
/// the gateway closes the connection.
fn read_response(s: &mut TcpStream, wait: Duration) -> Reply {
    let deadline = Instant::now() + wait;
    let mut bytes = Vec::new();
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        if let Some(end) = bytes.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&bytes[..end]).to_ascii_lowercase();
            let body = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            if bytes.len() >= end + 4 + body {
                return Reply {
                    bytes,
                    closed: false,
                };
            }
        }
        match s.read(&mut buf) {
            Ok(0) => {
                return Reply {
                    bytes,
                    closed: true,
                }
            }
            Ok(n) => bytes.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => {
                return Reply {
                    bytes,
                    closed: true,
                }
            }
        }
    }
    Reply {
        bytes,
        closed: false,
    }
}

fn read_reply(s: &mut TcpStream, wait: Duration) -> Reply {
    let deadline = Instant::now() + wait;
    let mut bytes = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    while Instant::now() < deadline {
        match s.read(&mut buf) {
            Ok(0) => {
                return Reply {
                    bytes,
                    closed: true,
                }
            }
            Ok(n) => bytes.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => {
                return Reply {
                    bytes,
                    closed: true,
                }
            }
        }
    }
    Reply {
        bytes,
        closed: false,
    }
}

/// Connects, sends `data`, and waits for the gateway to close the connection.
fn closes_after(addr: SocketAddr, data: &[u8]) -> (SocketAddr, Reply) {
    let mut s = connect(addr);
    let me = s.local_addr().expect("a connected socket has an address");
    let reply = send_and_read(&mut s, data, REACT);
    (me, reply)
}

/// A deterministic byte generator (xorshift), so that a failing case can be replayed.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn expect_closed(attack: Attack, reply: &Reply) -> Attack {
    let closed = reply.closed;
    attack.check(closed, || {
        format!("the connection was not closed within {REACT:?}")
    })
}

// ---- RTMP ----

/// Connects and completes a plain handshake (C1 version field zero), as librtmp does.
fn rtmp_handshaken(addr: SocketAddr) -> std::io::Result<TcpStream> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(REACT))?;
    s.set_write_timeout(Some(REACT))?;
    let mut c0c1 = vec![3u8];
    c0c1.extend([0u8; 8]);
    c0c1.extend(noise(1528, addr.port().into()));
    s.write_all(&c0c1)?;
    let mut s0s1s2 = vec![0u8; 1 + 1536 + 1536];
    s.read_exact(&mut s0s1s2)?;
    s.write_all(&s0s1s2[1..1537])?;
    s.set_read_timeout(Some(Duration::from_millis(200)))?;
    Ok(s)
}

/// A type 0 chunk header on chunk stream `csid` (2..=63) followed by `body`, which the caller
/// keeps within the chunk size.
fn chunk0(csid: u8, type_id: u8, stream_id: u32, length: u32, body: &[u8]) -> Vec<u8> {
    let mut out = vec![csid & 0x3f];
    out.extend([0, 0, 0]);
    out.extend(&length.to_be_bytes()[1..]);
    out.push(type_id);
    out.extend(stream_id.to_le_bytes());
    out.extend(body);
    out
}

/// A whole message in chunks of the default 128 bytes.
fn message(csid: u8, type_id: u8, payload: &[u8]) -> Vec<u8> {
    let mut parts = payload.chunks(128);
    let first = parts.next().unwrap_or_default();
    let mut out = chunk0(csid, type_id, 0, payload.len() as u32, first);
    for part in parts {
        out.push(0xC0 | (csid & 0x3f));
        out.extend(part);
    }
    out
}

/// After a handshake, sends `data` and expects the gateway to close with `reason` logged.
fn rtmp_after_handshake(env: &Env, data: &[u8], reason: &'static str) -> Attack {
    let addr = env.gateway().rtmp_addr();
    let mut s = match rtmp_handshaken(addr) {
        Ok(s) => s,
        Err(e) => return Attack::new(vec![], None).check(false, || format!("handshake: {e}")),
    };
    let me = s.local_addr().expect("a connected socket has an address");
    let reply = send_and_read(&mut s, data, REACT);
    expect_closed(Attack::new(vec![me], Some(reason)), &reply)
}

fn rtmp_garbage_c0(env: &Env) -> Attack {
    let mut data = vec![0x42];
    data.extend(noise(1536, 1));
    let (me, reply) = closes_after(env.gateway().rtmp_addr(), &data);
    expect_closed(
        Attack::new(vec![me], Some("unsupported RTMP version")),
        &reply,
    )
}

fn rtmp_http_request(env: &Env) -> Attack {
    let data = b"GET / HTTP/1.1\r\nHost: scanner\r\n\r\n".repeat(64);
    let (me, reply) = closes_after(env.gateway().rtmp_addr(), &data);
    expect_closed(
        Attack::new(vec![me], Some("unsupported RTMP version")),
        &reply,
    )
}

fn rtmp_truncated_handshake(env: &Env) -> Attack {
    let mut s = connect(env.gateway().rtmp_addr());
    let me = s.local_addr().expect("a connected socket has an address");
    let mut data = vec![3u8];
    data.extend(noise(700, 2));
    let _ = s.write_all(&data);
    drop(s);
    Attack::new(vec![me], Some("truncated handshake"))
}

fn rtmp_stalled_handshake(env: &Env) -> Attack {
    let mut s = connect(env.gateway().rtmp_addr());
    let me = s.local_addr().expect("a connected socket has an address");
    let mut data = vec![3u8];
    data.extend(noise(700, 3));
    let wait = Duration::from_secs(HANDSHAKE_TIMEOUT_SECS) + REACT;
    let reply = send_and_read(&mut s, &data, wait);
    Attack::new(vec![me], Some("handshake not completed")).check(reply.closed, || {
        format!("a stalled handshake was still open after {wait:?}")
    })
}

fn set_chunk_size(size: u32) -> Vec<u8> {
    chunk0(2, 1, 0, 4, &size.to_be_bytes())
}

fn rtmp_chunk_size_zero(env: &Env) -> Attack {
    rtmp_after_handshake(env, &set_chunk_size(0), "chunk size")
}

fn rtmp_chunk_size_top_bit(env: &Env) -> Attack {
    rtmp_after_handshake(env, &set_chunk_size(0x8000_0000), "chunk size")
}

fn rtmp_huge_message(env: &Env) -> Attack {
    let mut data = set_chunk_size(0x7fff_ffff);
    data.extend(chunk0(6, 9, 1, 0xff_ffff, &noise(4096, 4)));
    rtmp_after_handshake(env, &data, "exceeds the maximum")
}

/// A 7 MB message (under the limit) of which only 64 KB ever arrives: the gateway must not
/// reserve the rest up front, and the idle timeout must end the connection.
fn rtmp_unfinished_message(env: &Env) -> Attack {
    let addr = env.gateway().rtmp_addr();
    let mut s = match rtmp_handshaken(addr) {
        Ok(s) => s,
        Err(e) => return Attack::new(vec![], None).check(false, || format!("handshake: {e}")),
    };
    let me = s.local_addr().expect("a connected socket has an address");
    let mut data = set_chunk_size(0x7fff_ffff);
    data.extend(chunk0(6, 9, 1, 7 << 20, &noise(64 * 1024, 5)));
    let wait = Duration::from_secs(RTMP_IDLE_SECS) + REACT;
    let reply = send_and_read(&mut s, &data, wait);
    Attack::new(vec![me], Some("idle")).check(reply.closed, || {
        format!("a connection with an unfinished message was still open after {wait:?}")
    })
}

fn rtmp_unopened_fmt1(env: &Env) -> Attack {
    // Type 1: delta, length, type id; no message stream id, so it needs an earlier type 0.
    let data = [0x40 | 5, 0, 0, 0, 0, 0, 16, 9, 1, 2, 3];
    rtmp_after_handshake(env, &data, "before any fmt 0 header")
}

fn rtmp_unopened_fmt3(env: &Env) -> Attack {
    let data = [0xC0 | 7, 1, 2, 3, 4];
    rtmp_after_handshake(env, &data, "before any fmt 0 header")
}

fn rtmp_many_chunk_streams(env: &Env) -> Attack {
    let mut data = Vec::new();
    for csid in 3..=62u8 {
        data.extend(chunk0(csid, 9, 1, 1000, &noise(128, csid.into())));
    }
    // Chunk streams 64 and up take a two-byte basic header (fmt 0, csid field 0).
    for id in 0..40u8 {
        data.extend([0, id]);
        data.extend([0, 0, 0, 0, 0x03, 0xe8, 9, 1, 0, 0, 0]);
        data.extend(noise(128, id.into()));
    }
    rtmp_after_handshake(env, &data, "chunk streams")
}

fn amf0_string(s: &str) -> Vec<u8> {
    let mut out = vec![0x02];
    out.extend((s.len() as u16).to_be_bytes());
    out.extend(s.as_bytes());
    out
}

/// `connect`, transaction 1, then `body` as the command object.
fn connect_command(body: &[u8]) -> Vec<u8> {
    let mut out = amf0_string("connect");
    out.push(0x00);
    out.extend(1.0f64.to_be_bytes());
    out.extend(body);
    out
}

fn depth() -> usize {
    env_count("HOSTILE_AMF_DEPTH", 10_000)
}

fn rtmp_amf0_deep_objects(env: &Env) -> Attack {
    let n = depth();
    let mut obj = vec![0x03];
    for _ in 0..n {
        obj.extend([0, 1, b'a', 0x03]);
    }
    for _ in 0..=n {
        obj.extend([0, 0, 0x09]);
    }
    rtmp_after_handshake(
        env,
        &message(3, 20, &connect_command(&obj)),
        "nesting deeper than",
    )
}

fn rtmp_amf0_deep_arrays(env: &Env) -> Attack {
    let n = depth();
    let mut arr = Vec::new();
    for _ in 0..n {
        arr.extend([0x0A, 0, 0, 0, 1]);
    }
    arr.push(0x05);
    rtmp_after_handshake(
        env,
        &message(3, 20, &connect_command(&arr)),
        "nesting deeper than",
    )
}

fn rtmp_amf0_huge_count(env: &Env) -> Attack {
    let arr = [0x0A, 0xff, 0xff, 0xff, 0xff, 0x05];
    rtmp_after_handshake(env, &message(3, 20, &connect_command(&arr)), "AMF")
}

fn rtmp_amf3_deep_arrays(env: &Env) -> Attack {
    let n = depth();
    // An AMF3 command message starts with a format byte of 0, then AMF0 values; the command
    // object switches to AMF3 (0x11) and nests dense arrays of one element.
    let mut arr = vec![0x11];
    for _ in 0..n {
        arr.extend([0x09, 0x03, 0x01]);
    }
    arr.push(0x01);
    let mut payload = vec![0];
    payload.extend(connect_command(&arr));
    rtmp_after_handshake(env, &message(3, 17, &payload), "nesting deeper than")
}

fn rtmp_garbage_after_handshake(env: &Env) -> Attack {
    rtmp_after_handshake(env, &noise(64 * 1024, 6), "RTMP connection closed")
}

/// Opens `n` connections to each of `addrs`, sends nothing, and checks the gateway closes every
/// one of them within `limit`; returns some of the attackers' addresses for the log check.
fn silent_flood(addrs: &[SocketAddr], n: usize, limit: Duration) -> (Vec<SocketAddr>, Vec<String>) {
    let mut conns: Vec<TcpStream> = Vec::new();
    for addr in addrs {
        conns.extend((0..n).map(|_| slow_connect(*addr)));
    }
    let peers = conns
        .iter()
        .step_by(n.max(1))
        .filter_map(|s| s.local_addr().ok())
        .collect();
    let began = Instant::now();
    let mut open: Vec<usize> = (0..conns.len()).collect();
    while !open.is_empty() && began.elapsed() < limit {
        std::thread::sleep(Duration::from_millis(250));
        open.retain(|&i| !read_reply(&mut conns[i], Duration::from_millis(1)).closed);
    }
    let mut problems = Vec::new();
    for addr in addrs {
        let left = open
            .iter()
            .filter(|&&i| conns[i].peer_addr().ok() == Some(*addr))
            .count();
        if left > 0 {
            problems.push(format!(
                "{left} of {n} silent connections to {addr} were still open after {limit:?}"
            ));
        }
    }
    (peers, problems)
}

fn silent_count() -> usize {
    env_count("HOSTILE_SILENT_CONNS", 300)
}

/// Connections that never send a byte: RTMP closes them at the handshake timeout, RTSP once they
/// have gone a session timeout without a request.
fn silent_rtmp_rtsp(env: &Env) -> Attack {
    let g = env.gateway();
    let limit = Duration::from_secs(HANDSHAKE_TIMEOUT_SECS.max(RTSP_SESSION_SECS)) + REACT;
    let (peers, problems) = silent_flood(&[g.rtmp_addr(), rtsp_addr(g)], silent_count(), limit);
    let mut attack = Attack::new(peers, None);
    attack.problems = problems;
    attack
}

/// As [`silent_rtmp_rtsp`] for the HTTP listener (header timeout, http branch) and MMST (idle
/// timeout, slow branch); the lead sets those timeouts short in [`Env::start`] when enabling it.
fn silent_http_mmst(env: &Env) -> Attack {
    let g = env.gateway();
    let limit = Duration::from_secs(60);
    let (peers, problems) = silent_flood(&[g.http_addr(), mms_addr(g)], silent_count(), limit);
    // The HTTP listener logs no line per connection; only the MMST peer is looked for.
    let mut attack = Attack::new(peers.into_iter().skip(1).collect(), None);
    attack.problems = problems;
    attack
}

/// Thousands of connections that complete the handshake and then say nothing: the gateway keeps
/// serving while they are open and closes each one after its idle timeout.
fn rtmp_idle_flood(env: &Env) -> Attack {
    let in_use = open_fds() as u64;
    // Each connection costs two descriptors in this process (both ends); keep a margin.
    let room = env.fd_limit.saturating_sub(in_use + 256) / 2;
    let want = env_count("HOSTILE_IDLE_CONNS", 2000);
    let n = want.min(room as usize);
    if n < want {
        println!(
            "idle flood: {n} connections instead of {want} (fd limit {})",
            env.fd_limit
        );
    }
    let addr = env.gateway().rtmp_addr();
    let began = Instant::now();
    let mut conns = Vec::with_capacity(n);
    let mut errors = Vec::new();
    for _ in 0..n {
        match rtmp_handshaken(addr) {
            Ok(s) => conns.push(s),
            Err(e) => errors.push(e.to_string()),
        }
    }
    let opened = began.elapsed();
    let peak_fds = open_fds();
    let peak_rss = rss_kib();
    println!(
        "idle flood: {} handshaken in {opened:?} ({} failed), {peak_fds} open files, RSS {peak_rss} KiB",
        conns.len(),
        errors.len()
    );
    // While they are all open, a new viewer must still be served.
    let mut attack = Attack::new(
        conns
            .iter()
            .step_by(n.div_ceil(10).max(1))
            .filter_map(|s| s.local_addr().ok())
            .collect(),
        Some("idle"),
    )
    .check(errors.is_empty(), || {
        format!(
            "{} of {n} handshakes failed, first: {:?}",
            errors.len(),
            errors.first()
        )
    });
    attack
        .problems
        .extend(env.probe_new_viewer("the idle flood"));
    // Then the gateway must close every one of them on its own.
    let deadline = began + Duration::from_secs(RTMP_IDLE_SECS) + opened + REACT * 2;
    let mut open = 0;
    for s in &mut conns {
        let left = deadline.saturating_duration_since(Instant::now());
        let _ = s.set_read_timeout(Some(left.max(Duration::from_millis(10))));
        let mut b = [0u8; 4096];
        let closed = loop {
            match s.read(&mut b) {
                Ok(0) => break true,
                Ok(_) => continue,
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    break false
                }
                Err(_) => break true,
            }
        };
        if !closed {
            open += 1;
        }
    }
    for s in &conns {
        let _ = s.shutdown(Shutdown::Both);
    }
    attack.check(open == 0, || {
        format!("{open} of {n} idle connections were still open after the idle timeout")
    })
}

/// The first tags of the committed fixture: metadata and both sequence headers, then the first
/// keyframe, so that every egress's muxer starts on real configuration before the garbage.
fn fixture_start() -> Vec<flv::FlvTag> {
    let data = std::fs::read(gateway_tests::fixture("av.flv")).expect("the fixture is readable");
    let mut reader = flv::FlvReader::new();
    reader.push(&data);
    let mut tags = Vec::new();
    while let Ok(Some(t)) = reader.next_tag() {
        let key = t.tag_type == 9 && t.body.first() == Some(&0x17) && t.body.get(1) == Some(&1);
        tags.push(t);
        if key {
            break;
        }
    }
    tags
}

/// Audio, video and script bodies a broken encoder could send: lying lengths, empty bodies,
/// impossible configurations, unknown codecs.
fn malformed_bodies() -> Vec<(u8, Vec<u8>)> {
    let mut meta = amf0_string("onMetaData");
    meta.extend([0x08, 0xff, 0xff, 0xff, 0xff]);
    meta.extend(noise(32, 10));
    vec![
        (18, meta),
        (18, vec![0x02, 0xff, 0xff]),
        (9, vec![]),
        (9, vec![0x17]),
        // An AVC configuration record whose SPS claims 65,535 bytes.
        (
            9,
            vec![
                0x17, 0, 0, 0, 0, 1, 0x64, 0, 0x1f, 0xff, 0xe1, 0xff, 0xff, 0x67,
            ],
        ),
        // NAL units whose length prefix lies, is zero, or overruns the tag.
        (
            9,
            vec![0x17, 1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x65, 1, 2, 3],
        ),
        (9, vec![0x17, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
        (9, vec![0x27, 1, 0xff, 0xff, 0xff, 0, 0, 0, 9, 0x41, 1, 2]),
        (9, [vec![0x17, 1, 0, 0, 0], noise(3000, 11)].concat()),
        // Enhanced RTMP: an HEVC sequence start and frames of garbage, an unknown FourCC.
        (
            9,
            [vec![0x90, b'h', b'v', b'c', b'1'], noise(40, 12)].concat(),
        ),
        (
            9,
            [vec![0x91, b'h', b'v', b'c', b'1'], noise(400, 13)].concat(),
        ),
        (
            9,
            [vec![0x91, b'x', b'x', b'x', b'x'], noise(40, 14)].concat(),
        ),
        // Codec ids nobody uses.
        (9, vec![0x1f, 1, 2, 3]),
        (8, vec![]),
        (8, vec![0xAF]),
        // AAC configurations: garbage, sampling index 15 without the escape, zero channels.
        (8, vec![0xAF, 0, 0xff, 0xff]),
        (8, vec![0xAF, 0, 0x17, 0x80]),
        (8, vec![0xAF, 0, 0x12, 0x00]),
        (8, [vec![0xAF, 1], noise(2000, 15)].concat()),
        (8, vec![0xAF, 1]),
        (8, [vec![0x2F, 0xff, 0xfb], noise(500, 16)].concat()),
        (8, [vec![0xBF], noise(100, 17)].concat()),
    ]
}

/// A publisher that sends real sequence headers and a keyframe, then every malformed body, in a
/// loop, while something plays the stream on every egress (so the HLS, RTSP and ASF muxers and
/// the FLV writers all see the garbage). Only that stream may suffer.
fn rtmp_bad_media(env: &Env) -> Attack {
    let g = env.gateway();
    let key = "live/hostile";
    let mark = env.logs.mark();
    let mut tags = fixture_start();
    let mut ts = tags.iter().map(|t| t.timestamp).max().unwrap_or(0);
    for (i, (tag_type, body)) in malformed_bodies().into_iter().enumerate() {
        ts += 40;
        // One step back in time, as a restarted encoder does.
        let timestamp = if i == 7 { ts - 200 } else { ts };
        tags.push(flv::FlvTag {
            tag_type,
            filtered: false,
            timestamp,
            stream_id: 0,
            body: body.into(),
        });
    }
    let publisher = gateway_tests::RtmpPublisher::publish(&tags, &g.rtmp_url(key));
    let mut attack = Attack::new(vec![], Some(key));
    if !g.wait_live(key, Duration::from_secs(10)) {
        return attack.check(false, || {
            format!(
                "the malformed publisher never went live: {:?}",
                publisher.ended()
            )
        });
    }
    // Something plays the stream on each egress for a while; what they get does not matter.
    let hls = g.http_url(&format!("/{key}/index.m3u8"));
    let _ = http_get(&hls, Duration::from_secs(5));
    let players: Vec<(SocketAddr, Vec<u8>)> = vec![
        (
            g.http_addr(),
            format!("GET /{key}.flv HTTP/1.0\r\nHost: x\r\n\r\n").into_bytes(),
        ),
        (
            g.http_addr(),
            format!(
                "GET /{key} HTTP/1.0\r\nHost: x\r\nUser-Agent: NSPlayer/7.10.0.3059\r\n\
                 Pragma: xPlayStrm=1\r\n\r\n"
            )
            .into_bytes(),
        ),
        (
            rtsp_addr(g),
            format!(
                "DESCRIBE rtsp://{}/{key} RTSP/1.0\r\nCSeq: 1\r\n\r\n",
                rtsp_addr(g)
            )
            .into_bytes(),
        ),
    ];
    let mut conns: Vec<TcpStream> = players
        .iter()
        .map(|(addr, req)| {
            let mut s = connect(*addr);
            let _ = s.write_all(req);
            s
        })
        .collect();
    let rtsp_play = rtsp_play_tcp(g, key);
    let until = Instant::now() + Duration::from_secs(4);
    while Instant::now() < until {
        let _ = http_get(&hls, Duration::from_secs(2));
        for s in &mut conns {
            let _ = read_reply(s, Duration::from_millis(50));
        }
    }
    drop(conns);
    drop(rtsp_play);
    drop(publisher);
    let gone = gateway_tests::wait_until(Duration::from_secs(10), || g.bus().stream(key).is_none());
    attack = attack.check(gone, || {
        format!("{key} stayed on the bus after its publisher left")
    });
    for line in env.logs.lines_with(mark, &[key]) {
        println!("  {line}");
    }
    attack
}

/// DESCRIBE, SETUP of track 0 over TCP and PLAY of `key`; the connection is returned open (or
/// `None` if the gateway refused, which is its right for a stream of garbage).
fn rtsp_play_tcp(g: &TestGateway, key: &str) -> Option<TcpStream> {
    let url = format!("rtsp://{}/{key}", rtsp_addr(g));
    let mut s = connect(rtsp_addr(g));
    let mut session = String::new();
    for (i, req) in [
        format!("DESCRIBE {url} RTSP/1.0\r\nCSeq: 1\r\n\r\n"),
        format!(
            "SETUP {url}/trackID=0 RTSP/1.0\r\nCSeq: 2\r\nTransport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n\r\n"
        ),
        format!("PLAY {url} RTSP/1.0\r\nCSeq: 3\r\nSession: SESSION\r\n\r\n"),
    ]
    .into_iter()
    .enumerate()
    {
        let _ = s.write_all(req.replace("SESSION", &session).as_bytes());
        let reply = read_response(&mut s, REACT);
        if reply.status() != Some(200) {
            return None;
        }
        if i == 1 {
            let text = reply.text();
            let line = text.lines().find(|l| l.starts_with("Session:"))?;
            session = line["Session:".len()..].trim().split(';').next()?.to_owned();
        }
    }
    Some(s)
}

// ---- RTSP ----

fn rtsp_exchange(env: &Env, data: &[u8], wait: Duration) -> (SocketAddr, Reply) {
    let mut s = connect(rtsp_addr(env.gateway()));
    let me = s.local_addr().expect("a connected socket has an address");
    (me, send_and_read(&mut s, data, wait))
}

fn rtsp_url(env: &Env) -> String {
    format!("rtsp://{}/{}", rtsp_addr(env.gateway()), Live::KEY)
}

/// Expects an error response with `status` and the connection closed.
fn rtsp_refused(env: &Env, data: &[u8], status: u16, reason: &'static str) -> Attack {
    let (me, reply) = rtsp_exchange(env, data, REACT);
    let got = reply.status();
    expect_closed(Attack::new(vec![me], Some(reason)), &reply).check(got == Some(status), || {
        format!("answered {got:?}, expected {status}: {:?}", reply.text())
    })
}

fn rtsp_giant_header(env: &Env) -> Attack {
    let req = format!(
        "OPTIONS {} RTSP/1.0\r\nCSeq: 1\r\nX-Long: {}\r\n\r\n",
        rtsp_url(env),
        "a".repeat(100 * 1024)
    );
    rtsp_refused(env, req.as_bytes(), 400, "larger than")
}

fn rtsp_many_headers(env: &Env) -> Attack {
    let mut req = format!("OPTIONS {} RTSP/1.0\r\nCSeq: 1\r\n", rtsp_url(env));
    for i in 0..1000 {
        req.push_str(&format!("X-H{i}: v\r\n"));
    }
    req.push_str("\r\n");
    rtsp_refused(env, req.as_bytes(), 400, "larger than")
}

/// Sends one request and expects an answer with `status` (the connection may stay open: a bad
/// request is not lost framing). The log must name the peer when it disconnects.
fn rtsp_answered(env: &Env, req: &str, status: u16) -> Attack {
    let mut s = connect(rtsp_addr(env.gateway()));
    let me = s.local_addr().expect("a connected socket has an address");
    let _ = s.write_all(req.as_bytes());
    let reply = read_response(&mut s, REACT);
    drop(s);
    let got = reply.status();
    Attack::new(vec![me], Some("rtsp disconnect")).check(got == Some(status), || {
        format!("answered {got:?}, expected {status}: {:?}", reply.text())
    })
}

fn rtsp_missing_cseq(env: &Env) -> Attack {
    let req = format!(
        "OPTIONS {} RTSP/1.0\r\nUser-Agent: x\r\n\r\n",
        rtsp_url(env)
    );
    rtsp_answered(env, &req, 400)
}

fn rtsp_play_without_setup(env: &Env) -> Attack {
    let req = format!(
        "PLAY {} RTSP/1.0\r\nCSeq: 1\r\nSession: 12345678\r\nRange: npt=0-\r\n\r\n",
        rtsp_url(env)
    );
    rtsp_answered(env, &req, 454)
}

fn rtsp_garbage(env: &Env) -> Attack {
    let mut data = noise(8 * 1024, 7);
    data[0] = 0x01;
    rtsp_refused(env, &data, 400, "malformed request line")
}

/// DESCRIBE and SETUP of paths that try to leave their app, cut a string short or are too long:
/// each is answered 4xx on the same connection, never with a stream.
fn rtsp_hostile_paths(env: &Env) -> Attack {
    let host = rtsp_addr(env.gateway());
    let mut s = connect(host);
    let me = s.local_addr().expect("a connected socket has an address");
    let mut attack = Attack::new(vec![me], Some("rtsp disconnect"));
    let mut names = hostile_names();
    names.retain(|n| n.len() < 1000);
    names.push("a".repeat(4000));
    let mut cseq = 0;
    for n in &names {
        for path in [
            format!("/live/{n}"),
            format!("/{n}/test"),
            format!("/live/test/{n}"),
            format!("/live/test/../../{n}"),
        ] {
            for method in ["DESCRIBE", "SETUP"] {
                cseq += 1;
                let transport = "Transport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n";
                let req = format!(
                    "{method} rtsp://{host}{path} RTSP/1.0\r\nCSeq: {cseq}\r\n{transport}\r\n"
                );
                let _ = s.write_all(req.as_bytes());
                let reply = read_response(&mut s, REACT);
                let status = reply.status();
                let shown = &path[..path.len().min(60)];
                attack = attack.check(matches!(status, Some(400..=499)), || {
                    format!("{method} {shown} answered {status:?}, expected 4xx")
                });
                if reply.closed {
                    return attack
                        .check(false, || format!("{method} {shown} closed the connection"));
                }
            }
        }
    }
    attack
}

/// Two UDP sockets on consecutive ports, the first even (RTP, then RTCP).
fn udp_pair() -> (std::net::UdpSocket, std::net::UdpSocket) {
    loop {
        let rtp = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind UDP");
        let port = rtp.local_addr().expect("bound").port();
        if !port.is_multiple_of(2) || port == u16::MAX {
            continue;
        }
        if let Ok(rtcp) = std::net::UdpSocket::bind(("127.0.0.1", port + 1)) {
            return (rtp, rtcp);
        }
    }
}

/// Datagrams received on `sock` within `wait`.
fn udp_count(sock: &std::net::UdpSocket, wait: Duration) -> usize {
    let _ = sock.set_read_timeout(Some(Duration::from_millis(50)));
    let deadline = Instant::now() + wait;
    let mut buf = [0u8; 2048];
    let mut n = 0;
    while Instant::now() < deadline {
        if sock.recv(&mut buf).is_ok() {
            n += 1;
        }
    }
    n
}

/// A UDP session plays while garbage, lying RTCP headers, empty and maximal datagrams hit its
/// server RTP and RTCP ports, from the session's own client ports and from a stranger: the
/// session keeps playing and its control connection keeps answering.
fn rtsp_udp_garbage(env: &Env) -> Attack {
    let host = rtsp_addr(env.gateway());
    let url = format!("rtsp://{host}/{}", Live::KEY);
    let (rtp, rtcp) = udp_pair();
    let port = rtp.local_addr().expect("bound").port();
    let mut s = connect(host);
    let me = s.local_addr().expect("a connected socket has an address");
    let mut attack = Attack::new(vec![me], Some("rtsp disconnect"));
    let ask = |s: &mut TcpStream, req: String| {
        let _ = s.write_all(req.as_bytes());
        read_response(s, REACT)
    };
    let d = ask(
        &mut s,
        format!("DESCRIBE {url} RTSP/1.0\r\nCSeq: 1\r\n\r\n"),
    );
    let setup = ask(
        &mut s,
        format!(
            "SETUP {url}/trackID=0 RTSP/1.0\r\nCSeq: 2\r\n\
             Transport: RTP/AVP;unicast;client_port={port}-{}\r\n\r\n",
            port + 1
        ),
    );
    let text = setup.text();
    let header = |name: &str| {
        text.lines()
            .find(|l| l.to_ascii_lowercase().starts_with(name))
            .map(|l| l[name.len()..].trim().to_owned())
    };
    let session = header("session:").and_then(|v| v.split(';').next().map(str::to_owned));
    let server_port = header("transport:").and_then(|t| {
        let ports = t.split(';').find_map(|p| p.strip_prefix("server_port="))?;
        ports.split('-').next()?.parse::<u16>().ok()
    });
    let (Some(session), Some(server_port), Some(200)) = (session, server_port, d.status()) else {
        return attack.check(false, || {
            format!("the UDP session was not set up: {text:?}")
        });
    };
    let play = ask(
        &mut s,
        format!("PLAY {url} RTSP/1.0\r\nCSeq: 3\r\nSession: {session}\r\n\r\n"),
    );
    attack = attack.check(play.status() == Some(200), || {
        format!("PLAY answered {:?}", play.status())
    });
    let before = udp_count(&rtp, Duration::from_millis(1000));
    let stranger = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind UDP");
    let mut datagrams: Vec<Vec<u8>> = (0..300).map(|i| noise(i * 5 % 1500, i as u64)).collect();
    datagrams.extend([
        vec![],
        vec![0x81, 201, 0xff, 0xff],
        vec![0x81, 200, 0, 6, 0, 0, 0, 1],
        vec![0x80, 203, 0, 1, 0, 0, 0, 0],
        noise(65_000, 99),
    ]);
    for target in [server_port, server_port + 1] {
        for d in &datagrams {
            let _ = rtcp.send_to(d, ("127.0.0.1", target));
            let _ = stranger.send_to(d, ("127.0.0.1", target));
        }
    }
    let after = udp_count(&rtp, Duration::from_millis(1500));
    let alive = ask(
        &mut s,
        format!("GET_PARAMETER {url} RTSP/1.0\r\nCSeq: 4\r\nSession: {session}\r\n\r\n"),
    );
    println!("udp session: {before} RTP packets before the garbage, {after} after");
    attack
        .check(before > 0 && after > 0, || {
            format!("RTP packets before the garbage: {before}, after: {after}")
        })
        .check(alive.status() == Some(200), || {
            format!(
                "GET_PARAMETER after the garbage answered {:?}",
                alive.status()
            )
        })
}

/// Interleaved frames with honest lengths on channels no session uses, then a request: the
/// frames are skipped and the request is answered on the same connection.
fn rtsp_interleaved_garbage(env: &Env) -> Attack {
    let mut data = Vec::new();
    for ch in [0u8, 1, 7, 200, 255] {
        let body = noise(1000, ch.into());
        data.extend([b'$', ch]);
        data.extend((body.len() as u16).to_be_bytes());
        data.extend(body);
    }
    data.extend(format!("OPTIONS {} RTSP/1.0\r\nCSeq: 9\r\n\r\n", rtsp_url(env)).as_bytes());
    let mut s = connect(rtsp_addr(env.gateway()));
    let me = s.local_addr().expect("a connected socket has an address");
    let _ = s.write_all(&data);
    let reply = read_response(&mut s, REACT);
    drop(s);
    let got = reply.status();
    Attack::new(vec![me], Some("rtsp disconnect")).check(got == Some(200), || {
        format!(
            "OPTIONS after interleaved frames answered {got:?}: {:?}",
            reply.text()
        )
    })
}

/// A frame announcing 65,535 bytes of which 100 arrive, then the client leaves: nothing is
/// answered (the rest would be frame data) and the disconnect is logged.
fn rtsp_interleaved_lying(env: &Env) -> Attack {
    let mut data = vec![b'$', 0, 0xff, 0xff];
    data.extend(noise(100, 8));
    data.extend(format!("OPTIONS {} RTSP/1.0\r\nCSeq: 2\r\n\r\n", rtsp_url(env)).as_bytes());
    let mut s = connect(rtsp_addr(env.gateway()));
    let me = s.local_addr().expect("a connected socket has an address");
    let reply = send_and_read(&mut s, &data, Duration::from_millis(1000));
    drop(s);
    Attack::new(vec![me], Some("rtsp disconnect")).check(reply.bytes.is_empty(), || {
        format!("answered bytes inside a frame: {:?}", reply.text())
    })
}

/// Slowloris: connections that send a request a byte at a time and never finish it. The gateway
/// closes a connection without a session once it has gone a session timeout without a complete
/// request.
fn rtsp_slowloris(env: &Env) -> Attack {
    let n = env_count("HOSTILE_SLOW_CONNS", 50);
    let addr = rtsp_addr(env.gateway());
    let mut conns: Vec<TcpStream> = (0..n).map(|_| slow_connect(addr)).collect();
    let head = format!("OPTIONS {} RTSP/1.0\r\nCSeq: 1\r\nX-Slow: ", rtsp_url(env));
    for s in &mut conns {
        let _ = s.write_all(head.as_bytes());
    }
    let peers: Vec<SocketAddr> = conns
        .iter()
        .step_by(n.div_ceil(5).max(1))
        .filter_map(|s| s.local_addr().ok())
        .collect();
    let began = Instant::now();
    let limit = Duration::from_secs(RTSP_SESSION_SECS) + REACT;
    let mut open = n;
    while open > 0 && began.elapsed() < limit {
        std::thread::sleep(Duration::from_millis(500));
        open = 0;
        for s in &mut conns {
            // A closed connection fails the write or reads end of stream.
            if s.write_all(b"a").is_ok() && !read_reply(s, Duration::from_millis(1)).closed {
                open += 1;
            }
        }
    }
    Attack::new(peers, Some("no complete request")).check(open == 0, || {
        format!("{open} of {n} slowloris connections were still open after {limit:?}")
    })
}

/// 1,000 SETUPs on one connection, each with new client ports: the gateway answers each (a
/// success replacing the transport, or an error) without running out of server ports, and a new
/// UDP viewer can still set up afterwards.
fn rtsp_many_setups(env: &Env) -> Attack {
    let n = env_count("HOSTILE_SETUPS", 1000);
    let url = rtsp_url(env);
    let mut s = connect(rtsp_addr(env.gateway()));
    let me = s.local_addr().expect("a connected socket has an address");
    let mut answered = 0;
    let mut session = String::new();
    for i in 0..n {
        let port = 20_000 + 2 * (i % 10_000);
        let mut req = format!(
            "SETUP {url}/trackID=0 RTSP/1.0\r\nCSeq: {i}\r\n\
             Transport: RTP/AVP;unicast;client_port={port}-{}\r\n",
            port + 1
        );
        if !session.is_empty() {
            req.push_str(&format!("Session: {session}\r\n"));
        }
        req.push_str("\r\n");
        let _ = s.write_all(req.as_bytes());
        let reply = read_response(&mut s, Duration::from_secs(2));
        if reply.status().is_some() {
            answered += 1;
        }
        if session.is_empty() {
            if let Some(line) = reply.text().lines().find(|l| l.starts_with("Session:")) {
                let value = line.trim_start_matches("Session:").trim();
                session = value.split(';').next().unwrap_or("").to_owned();
            }
        }
        if reply.closed {
            break;
        }
    }
    drop(s);
    let mut attack = Attack::new(vec![me], Some("rtsp disconnect")).check(answered == n, || {
        format!("{answered} of {n} SETUPs answered")
    });
    // A fresh UDP SETUP must still get server ports.
    let fresh = format!(
        "SETUP {url}/trackID=0 RTSP/1.0\r\nCSeq: 1\r\nTransport: RTP/AVP;unicast;client_port=40000-40001\r\n\r\n"
    );
    let mut s = connect(rtsp_addr(env.gateway()));
    let _ = s.write_all(fresh.as_bytes());
    let reply = read_response(&mut s, REACT);
    let status = reply.status();
    attack = attack.check(status == Some(200), || {
        format!(
            "a fresh UDP SETUP after {n} SETUPs answered {status:?}: {:?}",
            reply.text()
        )
    });
    attack
}

// ---- HTTP ----

fn http_exchange(env: &Env, req: &[u8]) -> (SocketAddr, Reply) {
    let mut s = connect(env.gateway().http_addr());
    let me = s.local_addr().expect("a connected socket has an address");
    (me, send_and_read(&mut s, req, REACT))
}

/// A header far beyond any real client's (hyper's own limit is about 400 KB).
fn http_huge_header(env: &Env) -> Attack {
    http_header_of(env, 1024 * 1024)
}

/// A 100 KB header: well past what real clients send (nginx refuses header lines over 8 KB by
/// default), but under hyper's default buffer limit, so the http branch must set one.
fn http_giant_header(env: &Env) -> Attack {
    http_header_of(env, 100 * 1024)
}

fn http_header_of(env: &Env, size: usize) -> Attack {
    let req = format!(
        "GET /{}.flv HTTP/1.1\r\nHost: x\r\nX-Long: {}\r\n\r\n",
        Live::KEY,
        "a".repeat(size)
    );
    let (_, reply) = http_exchange(env, req.as_bytes());
    let got = reply.status();
    expect_closed(Attack::new(vec![], None), &reply).check(got == Some(431), || {
        format!("answered {got:?}, expected 431")
    })
}

fn http_many_headers(env: &Env) -> Attack {
    let mut req = format!("GET /{}.flv HTTP/1.1\r\nHost: x\r\n", Live::KEY);
    for i in 0..1000 {
        req.push_str(&format!("X-H{i}: v\r\n"));
    }
    req.push_str("\r\n");
    let (_, reply) = http_exchange(env, req.as_bytes());
    let got = reply.status();
    expect_closed(Attack::new(vec![], None), &reply).check(got == Some(431), || {
        format!("answered {got:?}, expected 431")
    })
}

/// Stream keys and file names that try to leave their directory, cut a string short, or are
/// simply too long.
fn hostile_names() -> Vec<String> {
    vec![
        "..".into(),
        "%2e%2e".into(),
        "..%2f..%2f..%2fetc%2fpasswd".into(),
        "%2e%2e%2f%2e%2e%2fetc%2fpasswd".into(),
        "test%00".into(),
        "%00".into(),
        "test%00.flv".into(),
        "....%2f%2f".into(),
        "%252e%252e".into(),
        "a".repeat(10 * 1024),
    ]
}

/// Every HTTP route with each hostile name in each variable position: nothing is served but the
/// page's own files, nothing answers 5xx, nothing outside the web root leaks.
fn http_hostile_paths(env: &Env) -> Attack {
    let mut paths = vec![
        "/../../../../etc/passwd".to_owned(),
        "/%2e%2e/%2e%2e/%2e%2e/etc/passwd".to_owned(),
        "/live/../../../etc/passwd".to_owned(),
        "/vendor/..%2f..%2fpackage.json".to_owned(),
        "/vendor/%2e%2e%2fpackage.json".to_owned(),
        "/..%2fCargo.toml".to_owned(),
    ];
    for n in hostile_names() {
        paths.extend([
            format!("/live/{n}.flv"),
            format!("/{n}/test.flv"),
            format!("/live/{n}/index.m3u8"),
            format!("/{n}/test/index.m3u8"),
            format!("/live/test/{n}"),
            format!("/live/test/{n}.ts"),
            format!("/live/test/seg{n}.ts"),
            format!("/live/test/{n}.key"),
            format!("/api/streams/live/{n}/rtsp"),
            format!("/api/streams/{n}/test/rtsp"),
            format!("/live/{n}.asx"),
            format!("/{n}"),
            format!("/{n}.html"),
            format!("/vendor/{n}"),
        ]);
    }
    let mut attack = Attack::new(vec![], None);
    let mut served = 0;
    for path in &paths {
        for mmsh in [false, true] {
            // MMSH is recognised by its headers on any path.
            let extra = if mmsh {
                "User-Agent: NSPlayer/7.10.0.3059\r\nPragma: xClientGUID={00000000-0000-0000-0000-000000000000}\r\n"
            } else {
                ""
            };
            let req = format!("GET {path} HTTP/1.0\r\nHost: x\r\n{extra}\r\n");
            let (_, reply) = http_exchange(env, req.as_bytes());
            served += 1;
            let status = reply.status();
            let text = reply.text();
            let shown = &path[..path.len().min(80)];
            // An ASX is a pointer file, served for any name shaped `{app}/{stream}` (a page may
            // embed it before the stream starts); its text is XML-escaped, never a file.
            let asx =
                path.ends_with(".asx") && status == Some(200) && text.contains("\r\n\r\n<ASX");
            let ok = asx || matches!(status, Some(400..=499));
            attack = attack
                .check(ok, || {
                    format!("GET {shown} (mmsh {mmsh}) answered {status:?}, expected 4xx")
                })
                .check(
                    !text.contains("root:") && !text.contains("[workspace]"),
                    || format!("GET {shown} leaked a file outside the web root"),
                );
        }
    }
    println!("http: {served} hostile requests answered");
    attack
}

/// A WebSocket-FLV viewer that sends a frame announcing 16 MB (the gateway needs nothing from a
/// viewer but pings and a close): the gateway must close at the header, not buffer the frame.
fn ws_huge_frame(env: &Env) -> Attack {
    let mut s = connect(env.gateway().http_addr());
    let me = s.local_addr().expect("a connected socket has an address");
    let req = format!(
        "GET /{}.flv HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        Live::KEY
    );
    let _ = s.write_all(req.as_bytes());
    let head = read_response(&mut s, REACT);
    let mut attack = Attack::new(vec![me], Some("bad client message"))
        .check(head.status() == Some(101), || {
            format!("the upgrade answered {:?}", head.status())
        });
    // FIN + binary, masked, 64-bit length 16 MB, a mask key, then the first 1 MB.
    let mut frame = vec![0x82, 0x80 | 127];
    frame.extend((16u64 << 20).to_be_bytes());
    frame.extend([1, 2, 3, 4]);
    frame.extend(noise(1 << 20, 18));
    let _ = s.write_all(&frame);
    let reply = read_reply(&mut s, REACT);
    attack = attack.check(reply.closed, || {
        format!("a viewer sending a 16 MB frame was still connected after {REACT:?}")
    });
    attack
}

/// Slowloris: many connections each sending a request header a byte at a time; the gateway must
/// close them after its header timeout (the http branch of issue 10 adds it).
fn http_slowloris(env: &Env) -> Attack {
    let n = env_count("HOSTILE_SLOW_CONNS", 50);
    let addr = env.gateway().http_addr();
    let mut conns: Vec<TcpStream> = (0..n).map(|_| slow_connect(addr)).collect();
    let began = Instant::now();
    let limit = Duration::from_secs(60);
    let head = b"GET /live/test.flv HTTP/1.1\r\nHost: x\r\nX-Slow: ";
    for s in &mut conns {
        let _ = s.write_all(head);
    }
    let mut open = conns.len();
    while open > 0 && began.elapsed() < limit {
        open = 0;
        for s in &mut conns {
            if s.write_all(b"a").is_ok() && !read_reply(s, Duration::from_millis(1)).closed {
                open += 1;
            }
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    Attack::new(vec![], None).check(open == 0, || {
        format!("{open} of {n} slowloris connections were still open after {limit:?}")
    })
}

// ---- MMST ----

/// An MMST command packet (MS-MMSP 2.2.3) with a chosen length field, seal and direction.
fn mmst_command(length: u32, seal: &[u8; 4], mid: u16, direction: u16, body: &[u8]) -> Vec<u8> {
    let mut out = vec![1, 0, 0, 0];
    out.extend(0xB00B_FACEu32.to_le_bytes());
    out.extend(length.to_le_bytes());
    out.extend(seal);
    out.extend((length / 8).to_le_bytes());
    out.extend([0u8; 4]);
    out.extend([0u8; 8]);
    out.extend((length / 8).saturating_sub(2).to_le_bytes());
    out.extend(mid.to_le_bytes());
    out.extend(direction.to_le_bytes());
    out.extend(body);
    out
}

fn mmst_closes(env: &Env, data: &[u8], reason: &'static str) -> Attack {
    let (me, reply) = closes_after(mms_addr(env.gateway()), data);
    expect_closed(Attack::new(vec![me], Some(reason)), &reply)
}

fn mmst_huge_length(env: &Env) -> Attack {
    let data = mmst_command(0xffff_fff0, b"MMS ", 1, 3, &[0; 64]);
    mmst_closes(env, &data, "malformed command")
}

/// A command claiming 8,000 bytes of which 64 arrive, then the client leaves.
fn mmst_lying_length(env: &Env) -> Attack {
    let mut s = connect(mms_addr(env.gateway()));
    let me = s.local_addr().expect("a connected socket has an address");
    let _ = s.write_all(&mmst_command(8000, b"MMS ", 1, 3, &[0; 64]));
    std::thread::sleep(Duration::from_millis(200));
    drop(s);
    Attack::new(vec![me], Some("MMST"))
}

fn mmst_truncated(env: &Env) -> Attack {
    let mut s = connect(mms_addr(env.gateway()));
    let me = s.local_addr().expect("a connected socket has an address");
    let data = mmst_command(32, b"MMS ", 1, 3, &[0; 8]);
    let _ = s.write_all(&data[..10]);
    std::thread::sleep(Duration::from_millis(200));
    drop(s);
    Attack::new(vec![me], Some("MMST"))
}

fn mmst_bad_seal(env: &Env) -> Attack {
    let data = mmst_command(32, b"XXXX", 1, 3, &[0; 8]);
    mmst_closes(env, &data, "malformed command")
}

fn mmst_bad_direction(env: &Env) -> Attack {
    let data = mmst_command(32, b"MMS ", 1, 4, &[0; 8]);
    mmst_closes(env, &data, "malformed command")
}

fn mmst_garbage(env: &Env) -> Attack {
    mmst_closes(env, &noise(4096, 9), "malformed command")
}

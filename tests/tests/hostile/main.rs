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

mod floods;
mod http;
mod media;
mod mmst;
mod rtmp;
mod rtsp;

use floods::*;
use http::*;
use media::*;
use mmst::*;
use rtmp::*;
use rtsp::*;

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
const HTTP_HEADER_SECS: u64 = 3;
const MMST_IDLE_SECS: u64 = 3;

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
        ("http: slowloris", http_slowloris),
        ("http: 100 KB header", http_giant_header),
        ("rtsp: 1,000 SETUPs on one connection", rtsp_many_setups),
        ("http, mmst: silent connections", silent_http_mmst),
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
            c.rtsp.request_timeout_secs = RTSP_SESSION_SECS;
            c.http.header_timeout_secs = HTTP_HEADER_SECS;
            c.mms.idle_timeout_secs = MMST_IDLE_SECS;
            // Every attacker and every honest client here comes from 127.0.0.1: the per-address
            // caps and connection rates (tested in listener_limits.rs) would turn the floods into
            // a test of the caps.
            c.rtmp.max_connections_per_ip = 100_000;
            c.http.max_connections_per_ip = 100_000;
            c.rtsp.max_connections_per_ip = 100_000;
            c.mms.max_connections_per_ip = 100_000;
            c.rtmp.connection_rate_per_ip = 1_000_000;
            c.rtmp.connection_burst_per_ip = 1_000_000;
            c.http.connection_rate_per_ip = 1_000_000;
            c.http.connection_burst_per_ip = 1_000_000;
            c.rtsp.connection_rate_per_ip = 1_000_000;
            c.rtsp.connection_burst_per_ip = 1_000_000;
            c.mms.connection_rate_per_ip = 1_000_000;
            c.mms.connection_burst_per_ip = 1_000_000;
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
    read_until(s, wait, |bytes| {
        let Some(end) = bytes.windows(4).position(|w| w == b"\r\n\r\n") else {
            return false;
        };
        let head = String::from_utf8_lossy(&bytes[..end]).to_ascii_lowercase();
        let body = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse::<usize>().ok())
            .unwrap_or(0);
        bytes.len() >= end + 4 + body
    })
}

/// Reads until the gateway closes the connection or `wait` passes.
fn read_reply(s: &mut TcpStream, wait: Duration) -> Reply {
    read_until(s, wait, |_| false)
}

/// Reads until `complete` says the bytes so far are whole, the gateway closes the connection,
/// or `wait` passes.
fn read_until(s: &mut TcpStream, wait: Duration, complete: impl Fn(&[u8]) -> bool) -> Reply {
    let deadline = Instant::now() + wait;
    let mut bytes = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    while Instant::now() < deadline {
        if complete(&bytes) {
            return Reply {
                bytes,
                closed: false,
            };
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

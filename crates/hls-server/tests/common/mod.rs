//! Shared helpers: ffmpeg-made FLV fixtures, a real-time bus feeder, the server on port 0, and
//! a minimal HTTP/1.1 GET.

#![allow(dead_code)]

use std::sync::Arc;

use arc_swap::ArcSwap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use bus::{Bus, BusOptions, Protocol, PublisherInfo, Tag, TagKind};
use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Length of every fixture; the feeder loops it with continuous timestamps.
pub const FIXTURE_MS: u64 = 6000;

/// A per-process scratch directory.
pub fn scratch() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("hls-server-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir is writable");
    dir
}

/// Returns false (after printing `SKIPPED:`) when `tool` is missing outside CI.
pub fn have(tool: &str) -> bool {
    match std::process::Command::new(tool).arg("-version").output() {
        Ok(_) => true,
        Err(e) if std::env::var_os("CI").is_some() => panic!("{tool} is required in CI: {e}"),
        Err(e) => {
            println!("SKIPPED: {tool} not available: {e}");
            false
        }
    }
}

/// What a fixture carries.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    AudioVideo,
    AudioOnly,
    VideoOnly,
}

/// Makes a 6 s FLV with ffmpeg: testsrc 640x360 at 25 fps, H.264 with B-frames and a keyframe
/// every 2 s, and/or a 440 Hz sine (5.8 s; ffmpeg starts it about 60 ms in) as AAC at 44.1 kHz.
pub fn fixture(kind: Kind) -> Vec<flv::FlvTag> {
    let name = match kind {
        Kind::AudioVideo => "av.flv",
        Kind::AudioOnly => "a.flv",
        Kind::VideoOnly => "v.flv",
    };
    // One file per call: tests run in parallel threads of one process, and two ffmpeg runs
    // writing the same path would let one test read the other's half-written file.
    static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let path = scratch().join(format!("{call}-{name}"));
    let secs = (FIXTURE_MS / 1000).to_string();
    let video = format!("testsrc=size=640x360:rate=25:duration={secs}");
    // The audio stops a little early so that the last AAC frame ends before the last video
    // frame does: looped passes then neither overlap nor stretch the last GOP.
    let audio_secs = (FIXTURE_MS - 200) as f64 / 1000.0;
    let audio = format!("sine=frequency=440:sample_rate=44100:duration={audio_secs}");
    let mut args: Vec<&str> = vec!["-v", "error", "-y"];
    if kind != Kind::AudioOnly {
        args.extend(["-f", "lavfi", "-i", &video]);
    }
    if kind != Kind::VideoOnly {
        args.extend(["-f", "lavfi", "-i", &audio]);
    }
    if kind != Kind::AudioOnly {
        args.extend([
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-bf",
            "2",
            "-g",
            "50",
        ]);
        args.extend([
            "-keyint_min",
            "50",
            "-sc_threshold",
            "0",
            "-pix_fmt",
            "yuv420p",
        ]);
    }
    if kind != Kind::VideoOnly {
        args.extend(["-c:a", "aac", "-b:a", "96k"]);
    }
    args.extend(["-f", "flv"]);
    let status = std::process::Command::new("ffmpeg")
        .args(&args)
        .arg(&path)
        .status()
        .expect("ffmpeg runs");
    assert!(status.success(), "ffmpeg made the fixture");
    let data = Bytes::from(std::fs::read(&path).expect("fixture written"));
    flv::parse_file(&data)
        .expect("ffmpeg wrote a valid FLV")
        .tags
}

/// Converts an FLV file tag to a bus tag, timestamps shifted by `offset_ms`.
fn bus_tag(t: &flv::FlvTag, offset_ms: u64) -> Option<Tag> {
    let kind = match t.tag_type {
        8 => TagKind::Audio,
        9 => TagKind::Video,
        18 => TagKind::Script,
        _ => return None,
    };
    // As ingest does: the header parsed once, flags and media set from it.
    Some(Tag::classify(
        kind,
        u64::from(t.timestamp) + offset_ms,
        t.body.clone(),
    ))
}

/// Publishes `key` and pushes the fixture in real time, looped `loops` times with continuous
/// timestamps. Returns when done (dropping the publisher unpublishes).
pub async fn feed(bus: Bus, key: &str, tags: Vec<flv::FlvTag>, loops: u64) {
    let info = PublisherInfo {
        protocol: Protocol::Internal,
        peer: None,
        query: None,
    };
    let mut publisher = bus.publish(key, info).expect("key is free");
    let start = tokio::time::Instant::now();
    let period = loop_period(&tags);
    for round in 0..loops {
        let offset = round * period;
        for t in &tags {
            let Some(tag) = bus_tag(t, offset) else {
                continue;
            };
            if round > 0 && (tag.sequence_header || tag.kind == TagKind::Script) {
                continue;
            }
            tokio::time::sleep_until(start + Duration::from_millis(tag.timestamp)).await;
            publisher.push(tag);
        }
    }
}

/// How long one pass of the fixture lasts: the end of its last audio or video frame, so that
/// looped passes never overlap (an overlap would make audio timestamps step back).
fn loop_period(tags: &[flv::FlvTag]) -> u64 {
    let end = |t: &flv::FlvTag| match t.tag_type {
        8 => u64::from(t.timestamp) + 24, // AAC: 1024 samples at 44.1 kHz is 23.2 ms.
        9 => u64::from(t.timestamp) + 40, // 25 fps.
        _ => 0,
    };
    // Whole video frames, so the 25 fps cadence (and the 2 s GOP) carries across passes.
    tags.iter()
        .map(end)
        .max()
        .unwrap_or(FIXTURE_MS)
        .div_ceil(40)
        * 40
}

/// Starts the HLS router on 127.0.0.1:0 and returns its address.
pub async fn serve(bus: Bus, opts: hls_server::Options) -> SocketAddr {
    serve_live(bus, Arc::new(ArcSwap::from_pointee(opts))).await
}

/// [`serve`] with options the test may replace while it runs, as a reload does.
pub async fn serve_live(bus: Bus, opts: Arc<ArcSwap<hls_server::Options>>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local addr");
    let app = hls_server::router_live(bus, opts);
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .expect("serve");
    });
    addr
}

/// A bus with default options.
pub fn bus() -> Bus {
    Bus::new(BusOptions::default())
}

/// A response from [`http`].
pub struct Reply {
    pub status: u16,
    pub head: String,
    pub body: Bytes,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Sends one request (`Connection: close`) and reads the whole reply.
pub async fn http(addr: SocketAddr, method: &str, path: &str) -> Reply {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    let req = format!("{method} {path} HTTP/1.1\r\nHost: test\r\nUser-Agent: hls-test\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.expect("write");
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.expect("read");
    let split = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("header end");
    let head = String::from_utf8_lossy(&buf[..split]).into_owned();
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("status code");
    let body = Bytes::copy_from_slice(&buf[split + 4..]);
    Reply { status, head, body }
}

/// Polls the playlist until it answers 200, returning it and how long that took.
pub async fn first_playlist(addr: SocketAddr, path: &str) -> (Reply, Duration) {
    let t0 = Instant::now();
    loop {
        let r = http(addr, "GET", path).await;
        if r.status == 200 {
            return (r, t0.elapsed());
        }
        assert!(
            t0.elapsed() < Duration::from_secs(15),
            "no playlist after 15 s: {}",
            r.status
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Parses `(EXT-X-TARGETDURATION, [(EXTINF seconds, uri)])` from a playlist.
pub fn parse_playlist(text: &str) -> (f64, Vec<(f64, String)>) {
    let mut target = 0.0;
    let mut out = Vec::new();
    let mut dur = None;
    for line in text.lines() {
        if let Some(t) = line.strip_prefix("#EXT-X-TARGETDURATION:") {
            target = t.parse().expect("integer target");
        } else if let Some(d) = line.strip_prefix("#EXTINF:") {
            dur = Some(
                d.trim_end_matches(',')
                    .parse::<f64>()
                    .expect("decimal duration"),
            );
        } else if !line.starts_with('#') && !line.is_empty() {
            out.push((dur.take().expect("EXTINF before URI"), line.to_owned()));
        }
    }
    (target, out)
}

/// Runs a command to completion, returning (success, stdout, stderr).
pub async fn run(cmd: &str, args: &[&str]) -> (bool, String, String) {
    let out = tokio::process::Command::new(cmd)
        .args(args)
        .output()
        .await
        .expect("tool runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

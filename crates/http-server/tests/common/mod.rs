//! Shared harness of the integration tests: a generated fixture, a real-time feeder, the server on
//! a loopback port, and a minimal HTTP/1.1 and FLV client that checks what viewers receive.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use bus::{Bus, MediaInfo, Protocol, PublisherInfo, Tag, TagKind};
use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

/// The stream every test publishes.
pub const KEY: &str = "live/test";

/// True when the tool runs; otherwise panics under CI and tells the caller to skip.
pub fn have_tool(tool: &str) -> bool {
    let ok = Command::new(tool)
        .arg("-version")
        .output()
        .is_ok_and(|o| o.status.success())
        || Command::new(tool)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            std::env::var_os("CI").is_none(),
            "{tool} is required under CI"
        );
        println!("SKIPPED: {tool} is not installed");
    }
    ok
}

/// A shared fixture from `tests/fixtures` (see its PROVENANCE.md).
pub fn shared_fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures")
        .join(name)
}

/// A 10 s 640x360 25 fps H.264 (with B-frames) + 44.1 kHz stereo AAC file, keyframe every 2 s:
/// the shared `tests/fixtures/av.flv`, or, where that is missing, the same made once per test
/// binary with ffmpeg's lavfi test sources.
pub fn fixture() -> &'static Path {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let shared = shared_fixture("av.flv");
        if shared.exists() {
            shared
        } else {
            make_fixture("av", "400k")
        }
    })
}

/// What ingest would report for [`fixture`].
pub fn av_media_info() -> MediaInfo {
    MediaInfo {
        video_codec: Some("h264".into()),
        width: Some(640),
        height: Some(360),
        frame_rate: Some(25.0),
        audio_codec: Some("aac".into()),
        sample_rate: Some(44100),
        channels: Some(2),
    }
}

fn make_fixture(name: &str, video_bitrate: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("http-server-tests-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir is writable");
    let path = dir.join(format!("{name}.flv"));
    let status = Command::new("ffmpeg")
        .args(["-v", "error", "-y"])
        .args(["-f", "lavfi", "-i", "testsrc=size=640x360:rate=25"])
        .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100"])
        .args([
            "-t", "10", "-c:v", "libx264", "-preset", "veryfast", "-g", "50",
        ])
        .args([
            "-b:v",
            video_bitrate,
            "-maxrate",
            video_bitrate,
            "-bufsize",
            video_bitrate,
        ])
        .args([
            "-pix_fmt", "yuv420p", "-c:a", "aac", "-ar", "44100", "-ac", "2", "-b:a", "64k",
        ])
        .args(["-f", "flv"])
        .arg(&path)
        .status()
        .expect("ffmpeg runs");
    assert!(status.success(), "ffmpeg made the fixture");
    path
}

/// One parsed FLV tag.
#[derive(Debug, Clone)]
pub struct FlvTag {
    pub kind: u8,
    pub timestamp: u32,
    pub data: Bytes,
}

impl FlvTag {
    pub fn is_video_keyframe(&self) -> bool {
        self.kind == 9 && self.data.first().is_some_and(|b| b >> 4 == 1) && !self.is_header()
    }

    /// AVC/HEVC configuration record or AAC AudioSpecificConfig.
    pub fn is_header(&self) -> bool {
        let packet_type = self.data.get(1).copied();
        match (self.kind, self.data.first().map(|b| b >> 4)) {
            (9, _) => self.data.first().is_some_and(|b| b & 0x0f == 7) && packet_type == Some(0),
            (8, Some(10)) => packet_type == Some(0),
            _ => false,
        }
    }
}

/// Incremental FLV parser for test clients: file header, then tags with their trailers checked.
#[derive(Debug, Default)]
pub struct FlvParser {
    buf: BytesMut,
    pub header: Option<[u8; 9]>,
    pub tags: Vec<FlvTag>,
}

impl FlvParser {
    pub fn feed(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
        if self.header.is_none() {
            if self.buf.len() < 13 {
                return;
            }
            let mut h = [0u8; 9];
            h.copy_from_slice(&self.buf[..9]);
            assert_eq!(&h[..3], b"FLV", "FLV signature");
            assert_eq!(&self.buf[9..13], &[0, 0, 0, 0], "PreviousTagSize0");
            self.header = Some(h);
            self.buf.advance(13);
        }
        while self.buf.len() >= 11 {
            let size = u32::from_be_bytes([0, self.buf[1], self.buf[2], self.buf[3]]) as usize;
            if self.buf.len() < 11 + size + 4 {
                break;
            }
            let ts = u32::from_be_bytes([self.buf[7], self.buf[4], self.buf[5], self.buf[6]]);
            let kind = self.buf[0];
            let mut tag = self.buf.split_to(11 + size + 4);
            let trailer = u32::from_be_bytes([
                tag[11 + size],
                tag[12 + size],
                tag[13 + size],
                tag[14 + size],
            ]);
            assert_eq!(
                trailer as usize,
                11 + size,
                "PreviousTagSize after a tag of type {kind}"
            );
            tag.advance(11);
            tag.truncate(size);
            self.tags.push(FlvTag {
                kind,
                timestamp: ts,
                data: tag.freeze(),
            });
        }
    }

    pub fn has_audio(&self) -> bool {
        self.header.is_some_and(|h| h[4] & 4 != 0)
    }

    pub fn has_video(&self) -> bool {
        self.header.is_some_and(|h| h[4] & 1 != 0)
    }
}

/// Every tag of an FLV file, read with the `flv` crate's reader.
pub fn read_flv(path: &Path) -> Vec<flv::FlvTag> {
    let data = Bytes::from(std::fs::read(path).expect("fixture is readable"));
    flv::parse_file(&data).expect("fixture is FLV").tags
}

/// The bus tag for a file tag, with the flags ingest sets.
fn to_bus_tag(t: &flv::FlvTag, timestamp: u64) -> Tag {
    let kind = match t.kind() {
        Some(flv::TagType::Audio) => TagKind::Audio,
        Some(flv::TagType::Video) => TagKind::Video,
        _ => TagKind::Script,
    };
    Tag::classify(kind, timestamp, t.body.clone())
}

/// Publishes `path` (an H.264 + AAC file like [`fixture`]) on `bus` at `key` in real time,
/// looping it, until `stop` is cancelled.
pub fn spawn_feeder(bus: &Bus, key: &str, path: &Path, stop: CancellationToken) {
    spawn_feeder_with(bus, key, path, av_media_info(), stop);
}

/// Like [`spawn_feeder`], with the media info ingest would report. Headers and metadata are sent
/// once; every loop continues the timestamps.
pub fn spawn_feeder_with(
    bus: &Bus,
    key: &str,
    path: &Path,
    media: MediaInfo,
    stop: CancellationToken,
) {
    let tags = read_flv(path);
    let info = PublisherInfo {
        protocol: Protocol::Rtmp,
        peer: None,
        query: None,
    };
    let mut publisher = bus.publish(key, info).expect("the key is free");
    publisher.set_media_info(media);
    let span = tags.iter().map(|t| t.timestamp).max().unwrap_or(0) as u64 + 40;
    tokio::spawn(async move {
        let start = tokio::time::Instant::now();
        for lap in 0u64.. {
            for t in &tags {
                let config = t.tag_type == flv::TAG_TYPE_SCRIPT || t.flags().sequence_header;
                if lap > 0 && config {
                    continue;
                }
                let ts = lap * span + u64::from(t.timestamp);
                let due = start + Duration::from_millis(ts);
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep_until(due) => {}
                }
                publisher.push(to_bus_tag(t, ts));
            }
        }
    });
}

/// Serves the router on a loopback port until `stop` is cancelled.
pub async fn serve(bus: &Bus, stop: CancellationToken) -> SocketAddr {
    let opts = http_server::Options {
        web_root: web_root(),
        ..Default::default()
    };
    serve_router(http_server::router(bus.clone(), opts), stop).await
}

pub async fn serve_router(router: axum::Router, stop: CancellationToken) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let addr = listener.local_addr().expect("bound address");
    let app = router.into_make_service_with_connect_info::<SocketAddr>();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(stop.cancelled_owned())
            .await;
    });
    addr
}

/// The repository's `web/` directory.
pub fn web_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../web")
}

/// A response's status line and headers (names lowercased), and the connection to read on.
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: BytesMut,
    conn: TcpStream,
    chunked: bool,
    /// Bytes left of the current chunk, when chunked.
    chunk_left: usize,
    pub done: bool,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Reads more body bytes, decoding chunked transfer coding; empty when the body ended.
    pub async fn read_some(&mut self) -> Vec<u8> {
        loop {
            if let Some(out) = self.decode() {
                return out;
            }
            if self.done {
                return Vec::new();
            }
            let mut buf = [0u8; 65536];
            let n = self.conn.read(&mut buf).await.expect("read from server");
            if n == 0 {
                self.done = true;
                return Vec::new();
            }
            self.body.extend_from_slice(&buf[..n]);
        }
    }

    /// Decoded bytes available in the buffer, if any.
    fn decode(&mut self) -> Option<Vec<u8>> {
        if !self.chunked {
            return (!self.body.is_empty()).then(|| std::mem::take(&mut self.body).to_vec());
        }
        let mut out = Vec::new();
        loop {
            if self.chunk_left > 0 {
                let n = self.chunk_left.min(self.body.len());
                if n == 0 {
                    break;
                }
                out.extend_from_slice(&self.body.split_to(n));
                self.chunk_left -= n;
                continue;
            }
            // Chunk header: [CRLF after the previous chunk's data] size CRLF.
            while self.body.starts_with(b"\r\n") {
                self.body.advance(2);
            }
            let Some(eol) = self.body.windows(2).position(|w| w == b"\r\n") else {
                break;
            };
            let line = std::str::from_utf8(&self.body[..eol]).expect("ASCII chunk size");
            let size = usize::from_str_radix(line.trim(), 16).expect("chunk size is hex");
            self.body.advance(eol + 2);
            if size == 0 {
                self.done = true;
                break;
            }
            self.chunk_left = size;
        }
        (!out.is_empty()).then_some(out)
    }
}

/// Sends one HTTP/1.1 request and reads the status line and headers.
pub async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    extra: &[(&str, &str)],
) -> Response {
    let mut conn = TcpStream::connect(addr).await.expect("connect to server");
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (n, v) in extra {
        req.push_str(&format!("{n}: {v}\r\n"));
    }
    req.push_str("\r\n");
    conn.write_all(req.as_bytes()).await.expect("send request");
    let mut buf = BytesMut::new();
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        let mut tmp = [0u8; 4096];
        let n = conn.read(&mut tmp).await.expect("read response head");
        assert!(n > 0, "server closed before the response head");
        buf.extend_from_slice(&tmp[..n]);
    };
    let head = String::from_utf8(buf.split_to(head_end + 4).to_vec()).expect("ASCII head");
    let mut lines = head.split("\r\n");
    let status_line = lines.next().expect("status line");
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status code");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let chunked = headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.contains("chunked"));
    let no_body = method == "HEAD" || status == 204 || status == 304;
    Response {
        status,
        headers,
        body: buf,
        conn,
        chunked,
        chunk_left: 0,
        done: no_body,
    }
}

/// Reads a whole (finite) body as text.
pub async fn body_text(res: &mut Response) -> String {
    let mut all = Vec::new();
    loop {
        let part = res.read_some().await;
        if part.is_empty() {
            break;
        }
        all.extend(part);
    }
    String::from_utf8(all).expect("UTF-8 body")
}

/// Debian's Chromium, driven by playwright-core from `web/node_modules`.
pub const CHROMIUM: &str = "/usr/bin/chromium";

/// True when node, Chromium and playwright-core are there; otherwise panics under CI or skips.
pub fn have_browser() -> bool {
    let web = web_root();
    let missing = if !Path::new(CHROMIUM).exists() {
        Some(format!("{CHROMIUM} is not installed"))
    } else if !web.join("node_modules/playwright-core").exists() {
        Some("web/node_modules is missing; run `npm ci` in web/".to_owned())
    } else if !have_tool("node") {
        Some("node is not installed".to_owned())
    } else {
        None
    };
    if let Some(why) = missing {
        assert!(std::env::var_os("CI").is_none(), "{why}");
        println!("SKIPPED: {why}");
        return false;
    }
    true
}

/// Runs the browser script against `base` and returns its JSON report; panics if it failed.
pub async fn play_in_chromium(base: &str, tech: &str) -> serde_json::Value {
    let mut cmd = tokio::process::Command::new("node");
    cmd.current_dir(web_root())
        .args([
            "tests/browser.mjs",
            "--base",
            base,
            "--stream",
            KEY,
            "--tech",
            tech,
        ])
        .args(["--seconds", "5", "--chromium", CHROMIUM]);
    // Set BROWSER_SCREENSHOTS=<dir> to keep screenshots of the list and the player.
    if let Some(dir) = std::env::var_os("BROWSER_SCREENSHOTS") {
        cmd.arg("--screenshots").arg(dir);
    }
    let out = cmd.kill_on_drop(true).output().await.expect("node runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("browser report: {stdout}");
    let report: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!(
            "browser script printed no report ({e}); stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert!(out.status.success(), "browser check failed: {report}");
    assert_eq!(
        report["consoleErrors"],
        serde_json::json!([]),
        "the page logged errors"
    );
    report
}

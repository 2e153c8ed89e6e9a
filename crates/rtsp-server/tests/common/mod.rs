//! Shared helpers of the integration tests: a generated FLV fixture, a real-time bus feeder, an
//! in-process server, external-tool gating and a minimal raw RTSP client.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use bus::{Bus, BusOptions, Protocol, PublisherInfo, Tag, TagKind};
use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

/// The bus key every test publishes.
pub const KEY: &str = "live/test";
/// Fixture parameters, as the assertions expect them.
pub const WIDTH: u32 = 640;
pub const HEIGHT: u32 = 360;
pub const FPS: u32 = 25;
pub const SAMPLE_RATE: u32 = 44_100;
pub const FIXTURE_SECS: u32 = 24;

/// Returns whether `tool` runs; when it does not, panics under CI and otherwise prints `SKIPPED:`.
pub fn have_tool(tool: &str) -> bool {
    let ok = std::process::Command::new(tool)
        .arg("-version")
        .output()
        .is_ok()
        || std::process::Command::new(tool)
            .arg("--version")
            .output()
            .is_ok();
    if !ok {
        if std::env::var_os("CI").is_some() {
            panic!("{tool} is required under CI but was not found");
        }
        println!("SKIPPED: {tool} not found");
    }
    ok
}

/// The audio codec of a generated fixture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audio {
    /// AAC-LC, 44.1 kHz stereo.
    Aac,
    /// MP3 (LAME), 44.1 kHz stereo.
    Mp3,
}

/// Generates (once per test binary) a 24 s H.264 (B-frames, 2 s GOP, 2.5 Mbit/s) + AAC FLV with
/// ffmpeg's lavfi test sources. `None` when ffmpeg is missing.
pub fn fixture() -> Option<&'static Path> {
    fixture_for(Audio::Aac)
}

/// Like [`fixture`] with the given audio codec.
pub fn fixture_for(audio: Audio) -> Option<&'static Path> {
    static AAC: OnceLock<Option<PathBuf>> = OnceLock::new();
    static MP3: OnceLock<Option<PathBuf>> = OnceLock::new();
    let (cell, codec, name) = match audio {
        Audio::Aac => (&AAC, "aac", "av.flv"),
        Audio::Mp3 => (&MP3, "libmp3lame", "av-mp3.flv"),
    };
    cell.get_or_init(|| {
        if !have_tool("ffmpeg") {
            return None;
        }
        // Generated once per machine and reused; written under a per-process name and renamed so
        // that test binaries running in parallel never read a half-written file.
        let dir = std::env::temp_dir().join("rtsp-server-fixtures-v1");
        std::fs::create_dir_all(&dir).expect("temp dir is writable");
        let path = dir.join(name);
        if path.exists() {
            return Some(path);
        }
        let partial = dir.join(format!("{name}.{}.partial.flv", std::process::id()));
        let status = std::process::Command::new("ffmpeg")
            .args(["-v", "error", "-y", "-f", "lavfi", "-i"])
            .arg(format!("testsrc=size={WIDTH}x{HEIGHT}:rate={FPS}"))
            .args(["-f", "lavfi", "-i"])
            .arg(format!("sine=frequency=440:sample_rate={SAMPLE_RATE}"))
            .args(["-t", &FIXTURE_SECS.to_string()])
            .args([
                "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", "-bf", "2", "-g",
                "50",
            ])
            .args(["-b:v", "2500k", "-maxrate", "2500k", "-bufsize", "2500k"])
            .args(["-c:a", codec, "-ac", "2", "-b:a", "128k", "-f", "flv"])
            .arg(&partial)
            .status()
            .expect("ffmpeg runs");
        assert!(status.success(), "ffmpeg could not generate the fixture");
        std::fs::rename(&partial, &path).expect("rename within one directory");
        Some(path)
    })
    .as_deref()
}

/// One media tag of the fixture as the bus carries it.
pub fn fixture_tags(path: &Path) -> Vec<Tag> {
    let data = Bytes::from(std::fs::read(path).expect("fixture is readable"));
    let file = flv::parse_file(&data).expect("fixture is valid FLV");
    file.tags
        .into_iter()
        .filter_map(|t| {
            let kind = match t.tag_type {
                8 => TagKind::Audio,
                9 => TagKind::Video,
                18 => TagKind::Script,
                _ => return None,
            };
            // As ingest does: the header parsed once, flags and media set from it.
            Some(Tag::classify(kind, u64::from(t.timestamp), t.body))
        })
        .collect()
}

/// Publishes the fixture on `bus` in real time, looping with continuous timestamps, until cancelled.
pub async fn feed(bus: Bus, tags: Vec<Tag>, stop: CancellationToken) {
    feed_key(bus, KEY, tags, stop).await
}

/// Like [`feed`], on the bus key `key`.
pub async fn feed_key(bus: Bus, key: &str, tags: Vec<Tag>, stop: CancellationToken) {
    let info = PublisherInfo {
        protocol: Protocol::Internal,
        peer: None,
        query: None,
    };
    let mut publisher = bus
        .publish(key, info)
        .expect("test stream is not yet published");
    let mp3 = tags.iter().any(|t| {
        t.kind == TagKind::Audio
            && matches!(t.media, flv::Media::Audio(a) if a.codec == flv::AudioCodec::Mp3)
    });
    if mp3 {
        // What RTMP ingest records for MP3, which has no sequence header.
        publisher.set_media_info(bus::MediaInfo {
            audio_codec: Some("mp3".into()),
            ..Default::default()
        });
    }
    let start = Instant::now();
    // One video frame past the last tag, so the next lap continues the timeline without overlap.
    let span = tags.iter().map(|t| t.timestamp).max().unwrap_or(0) + 1000 / u64::from(FPS);
    for lap in 0u64.. {
        for tag in &tags {
            if lap > 0 && (tag.sequence_header || tag.kind == TagKind::Script) {
                continue;
            }
            let mut tag = tag.clone();
            tag.timestamp += lap * span;
            let due = start + Duration::from_millis(tag.timestamp);
            tokio::select! {
                _ = tokio::time::sleep_until(due.into()) => {}
                _ = stop.cancelled() => return,
            }
            publisher.push(tag);
        }
    }
}

/// A running server with a fed stream.
pub struct Harness {
    pub addr: SocketAddr,
    pub bus: Bus,
    pub stop: CancellationToken,
}

impl Harness {
    /// The stream's URL.
    pub fn url(&self) -> String {
        format!("rtsp://{}/{KEY}", self.addr)
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// Starts the server on 127.0.0.1:0 and the feeder; waits until the stream is live. `None` without ffmpeg.
pub async fn start(opts: rtsp_server::Options) -> Option<Harness> {
    start_with(opts, Audio::Aac).await
}

/// Like [`start`] with the given audio codec.
pub async fn start_with(opts: rtsp_server::Options, audio: Audio) -> Option<Harness> {
    let opts = Arc::new(ArcSwap::from_pointee(opts));
    start_swappable(opts, audio).await
}

/// Like [`start_with`], serving with options the test may replace while the server runs.
pub async fn start_swappable(
    opts: Arc<ArcSwap<rtsp_server::Options>>,
    audio: Audio,
) -> Option<Harness> {
    let tags = fixture_tags(fixture_for(audio)?);
    let _ = tracing_subscriber::fmt()
        .with_env_filter(std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()))
        .with_test_writer()
        .try_init();
    let bus = Bus::new(BusOptions::default());
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind port 0");
    let addr = listener.local_addr().expect("bound");
    let stop = CancellationToken::new();
    let listeners = rtsp_server::Listeners {
        plain: Some(netutil::Listener::new("RTSP", listener).0),
        tls: None,
    };
    tokio::spawn(rtsp_server::serve(
        listeners,
        bus.clone(),
        opts,
        stop.clone(),
    ));
    tokio::spawn(feed(bus.clone(), tags, stop.clone()));
    let ready = |s: &bus::Stream| {
        s.video_sequence_header().is_some()
            && (s.audio_sequence_header().is_some()
                || s.media_info().audio_codec.as_deref() == Some("mp3"))
    };
    while bus.stream(KEY).is_none_or(|s| !ready(&s)) {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Some(Harness { addr, bus, stop })
}

/// The first of 40 UDP ports this test process may use, so parallel test binaries do not collide.
pub fn port_base() -> u16 {
    40_000 + (std::process::id() % 500) as u16 * 40
}

/// Test options: UDP ports from the first half of this process's range.
pub fn options() -> rtsp_server::Options {
    rtsp_server::Options {
        udp_port_min: port_base(),
        udp_port_max: port_base() + 19,
        ..Default::default()
    }
}

/// A minimal RTSP client over one TCP connection that skips interleaved frames while reading responses.
pub struct RawClient {
    pub stream: TcpStream,
    buf: Vec<u8>,
    cseq: u32,
    pub session: Option<String>,
    /// Interleaved frames seen: (channel, payload).
    pub frames: Vec<(u8, Vec<u8>)>,
}

/// A response: status, headers text and body.
#[derive(Debug)]
pub struct RawResponse {
    pub status: u16,
    pub head: String,
    pub body: String,
}

impl RawResponse {
    pub fn header(&self, name: &str) -> Option<String> {
        self.head.lines().find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_owned())
        })
    }
}

impl RawClient {
    pub async fn connect(addr: SocketAddr) -> RawClient {
        let stream = TcpStream::connect(addr).await.expect("server accepts");
        RawClient::from_stream(stream)
    }

    /// Wraps an already connected stream.
    pub fn from_stream(stream: TcpStream) -> RawClient {
        RawClient {
            stream,
            buf: Vec::new(),
            cseq: 0,
            session: None,
            frames: Vec::new(),
        }
    }

    /// Sends a request with CSeq (and Session when known) and reads its response.
    pub async fn request(&mut self, method: &str, url: &str, extra: &str) -> RawResponse {
        self.cseq += 1;
        let session = self
            .session
            .as_ref()
            .map(|s| format!("Session: {s}\r\n"))
            .unwrap_or_default();
        let req = format!(
            "{method} {url} RTSP/1.0\r\nCSeq: {}\r\n{session}{extra}\r\n",
            self.cseq
        );
        self.stream
            .write_all(req.as_bytes())
            .await
            .expect("write request");
        let resp = self.read_response().await.expect("a response");
        if let Some(s) = resp.header("Session") {
            self.session = Some(s.split(';').next().unwrap_or_default().to_owned());
        }
        resp
    }

    /// Reads until a full response, collecting interleaved frames; `None` on EOF.
    pub async fn read_response(&mut self) -> Option<RawResponse> {
        loop {
            if let Some(r) = self.take_response() {
                return Some(r);
            }
            let mut chunk = vec![0u8; 65536];
            let n = tokio::time::timeout(Duration::from_secs(10), self.stream.read(&mut chunk))
                .await
                .ok()?
                .ok()?;
            if n == 0 {
                return None;
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    fn take_response(&mut self) -> Option<RawResponse> {
        loop {
            if self.buf.first() == Some(&b'$') {
                let len = usize::from(u16::from_be_bytes([*self.buf.get(2)?, *self.buf.get(3)?]));
                if self.buf.len() < 4 + len {
                    return None;
                }
                self.frames
                    .push((self.buf[1], self.buf[4..4 + len].to_vec()));
                self.buf.drain(..4 + len);
                continue;
            }
            let end = self.buf.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
            let head = String::from_utf8_lossy(&self.buf[..end]).into_owned();
            let len: usize = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse().unwrap_or(0))
                })
                .unwrap_or(0);
            if self.buf.len() < end + len {
                return None;
            }
            let body = String::from_utf8_lossy(&self.buf[end..end + len]).into_owned();
            self.buf.drain(..end + len);
            let status = head
                .split(' ')
                .nth(1)
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            return Some(RawResponse { status, head, body });
        }
    }

    /// Reads interleaved frames for `dur` (or until EOF); returns how many arrived.
    pub async fn pump_frames(&mut self, dur: Duration) -> usize {
        let before = self.frames.len();
        let deadline = tokio::time::Instant::now() + dur;
        let mut chunk = vec![0u8; 65536];
        while let Ok(Ok(n)) = tokio::time::timeout_at(deadline, self.stream.read(&mut chunk)).await
        {
            if n == 0 {
                break;
            }
            self.buf.extend_from_slice(&chunk[..n]);
            let _ = self.take_response();
        }
        self.frames.len() - before
    }

    /// Reads until a frame on `channel` arrives; returns how long that took.
    pub async fn first_frame_on(&mut self, channel: u8, limit: Duration) -> Option<Duration> {
        let start = Instant::now();
        let mut chunk = vec![0u8; 65536];
        while !self.frames.iter().any(|(ch, _)| *ch == channel) {
            let n = tokio::time::timeout(
                limit.saturating_sub(start.elapsed()),
                self.stream.read(&mut chunk),
            )
            .await
            .ok()?
            .ok()?;
            if n == 0 {
                return None;
            }
            self.buf.extend_from_slice(&chunk[..n]);
            let _ = self.take_response();
        }
        Some(start.elapsed())
    }
}

/// Runs `ffprobe -rtsp_transport T -show_entries stream=ENTRIES -of compact URL`; returns
/// (stdout, stderr) after asserting that it succeeded.
pub async fn ffprobe_streams(url: &str, transport: &str, entries: &str) -> (String, String) {
    let out = tokio::process::Command::new("ffprobe")
        .args(["-v", "error", "-rtsp_transport", transport, "-show_entries"])
        .arg(format!("stream={entries}"))
        .args(["-of", "compact", url])
        .output()
        .await
        .expect("ffprobe runs");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert!(out.status.success(), "ffprobe failed: {stderr}");
    (stdout, stderr)
}

/// Runs `ffmpeg -v error -rtsp_transport T -i URL -t SECS -f null -`; returns what it printed
/// after asserting that it succeeded.
pub async fn ffmpeg_decode(url: &str, transport: &str, secs: u32) -> String {
    let out = tokio::process::Command::new("ffmpeg")
        .args([
            "-nostdin",
            "-v",
            "error",
            "-rtsp_transport",
            transport,
            "-i",
            url,
            "-t",
        ])
        .arg(secs.to_string())
        .args(["-f", "null", "-"])
        .output()
        .await
        .expect("ffmpeg runs");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "ffmpeg failed: {stderr}");
    stderr
}

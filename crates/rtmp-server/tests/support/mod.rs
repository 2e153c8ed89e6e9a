//! Shared helpers for the loopback integration tests: an in-process server,
//! the fixture, external tools, and an RTMP client over a real socket built
//! on the sans-IO `rtmp::ClientSession`.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use bytes::Bytes;
use rtmp::{ClientSession, ClientSessionEvent};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::process::{Child, Command};
use tokio_util::sync::CancellationToken;

/// A server running on 127.0.0.1 with its own bus.
pub struct TestServer {
    pub addr: SocketAddr,
    pub bus: bus::Bus,
    pub shutdown: CancellationToken,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

pub async fn start_server(opts: rtmp_server::Options) -> TestServer {
    init_tracing();
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let addr = listener.local_addr().expect("bound address");
    // Players are told the stream ended (UnpublishNotify) when the bus removes it, one grace
    // period after its publisher left; a short grace keeps whole-stream tests short.
    let bus = bus::Bus::new(bus::BusOptions {
        unpublish_grace: std::time::Duration::from_secs(1),
        ..bus::BusOptions::default()
    });
    let shutdown = CancellationToken::new();
    tokio::spawn(rtmp_server::run(
        listener,
        bus.clone(),
        opts,
        shutdown.clone(),
    ));
    TestServer {
        addr,
        bus,
        shutdown,
    }
}

fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()))
        .with_test_writer()
        .try_init();
}

/// True if `tool` runs; otherwise panics under CI or prints SKIPPED.
pub fn have_tool(tool: &str, version_arg: &str) -> bool {
    let ok = std::process::Command::new(tool)
        .arg(version_arg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    if !ok {
        if std::env::var_os("CI").is_some() {
            panic!("{tool} is required under CI but was not found");
        }
        println!("SKIPPED: {tool} not installed");
    }
    ok
}

/// The shared fixture (H.264 640x360 25 fps + AAC 44.1 kHz stereo, 10 s),
/// or an equivalent generated into `tmp` if it is missing.
pub fn fixture(tmp: &Path) -> PathBuf {
    let shared = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/av.flv");
    if shared.is_file() {
        return shared;
    }
    let out = tmp.join("av.flv");
    let status = std::process::Command::new("ffmpeg")
        .args(["-hide_banner", "-nostdin", "-loglevel", "error", "-y"])
        .args(["-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25"])
        .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100"])
        .args([
            "-c:v", "libx264", "-preset", "veryfast", "-g", "50", "-b:v", "400k",
        ])
        .args([
            "-c:a", "aac", "-ac", "2", "-ar", "44100", "-t", "10", "-f", "flv",
        ])
        .arg(&out)
        .status()
        .expect("ffmpeg runs");
    assert!(status.success(), "generating the fixture failed");
    out
}

pub fn url(addr: SocketAddr, key: &str) -> String {
    format!("rtmp://{addr}/{key}")
}

/// Starts `ffmpeg -re -i fixture -c copy -f flv rtmp://...`.
pub fn ffmpeg_publish(fixture: &Path, addr: SocketAddr, key: &str) -> Child {
    Command::new("ffmpeg")
        .args([
            "-hide_banner",
            "-nostdin",
            "-loglevel",
            "error",
            "-re",
            "-i",
        ])
        .arg(fixture)
        .args(["-c", "copy", "-f", "flv"])
        .arg(url(addr, key))
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn ffmpeg publisher")
}

/// Starts `ffmpeg -i rtmp://... -c copy -f flv out` (records what a player sees).
pub fn ffmpeg_record(addr: SocketAddr, key: &str, out: &Path) -> Child {
    Command::new("ffmpeg")
        .args(["-hide_banner", "-nostdin", "-loglevel", "error", "-y", "-i"])
        .arg(url(addr, key))
        .args(["-c", "copy", "-f", "flv"])
        .arg(out)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn ffmpeg recorder")
}

/// Waits for a child with a deadline, killing it on timeout.
pub async fn wait_child(mut child: Child, limit: Duration, what: &str) -> std::process::ExitStatus {
    match tokio::time::timeout(limit, child.wait()).await {
        Ok(status) => status.expect("wait for child"),
        Err(_) => {
            let _ = child.kill().await;
            panic!("{what} did not finish within {limit:?}");
        }
    }
}

/// Waits until `key` is live on the bus.
pub async fn wait_live(bus: &bus::Bus, key: &str, limit: Duration) {
    let deadline = tokio::time::Instant::now() + limit;
    while !bus
        .stream(key)
        .is_some_and(|s| s.is_live() && s.video_sequence_header().is_some())
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{key} did not go live within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Per-stream facts ffprobe reports about a file or URL.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Probe {
    pub video_codec: String,
    pub width: u32,
    pub height: u32,
    pub audio_codec: String,
    pub sample_rate: u32,
    pub video_packets: usize,
    pub audio_packets: usize,
    /// Video packet DTS in ms, relative to the first.
    pub video_dts_ms: Vec<i64>,
}

/// Runs ffprobe on `input` (a file or URL), counting packets.
pub async fn probe(input: &str) -> Probe {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "stream=index,codec_type,codec_name,width,height,sample_rate",
        ])
        .args([
            "-show_entries",
            "packet=stream_index,codec_type,dts_time",
            "-of",
            "compact=p=1:nk=0",
            input,
        ])
        .output()
        .await
        .expect("ffprobe runs");
    let text = String::from_utf8_lossy(&out.stdout);
    let mut p = Probe::default();
    let mut first_dts = None;
    for line in text.lines() {
        let field = |k: &str| {
            line.split('|')
                .find_map(|kv| kv.strip_prefix(k).and_then(|r| r.strip_prefix('=')))
                .unwrap_or("")
        };
        match (line.split('|').next(), field("codec_type")) {
            (Some("stream"), "video") => {
                p.video_codec = field("codec_name").into();
                p.width = field("width").parse().unwrap_or(0);
                p.height = field("height").parse().unwrap_or(0);
            }
            (Some("stream"), "audio") => {
                p.audio_codec = field("codec_name").into();
                p.sample_rate = field("sample_rate").parse().unwrap_or(0);
            }
            (Some("packet"), "video") => {
                p.video_packets += 1;
                if let Ok(t) = field("dts_time").parse::<f64>() {
                    let ms = (t * 1000.0).round() as i64;
                    let base = *first_dts.get_or_insert(ms);
                    p.video_dts_ms.push(ms - base);
                }
            }
            (Some("packet"), "audio") => p.audio_packets += 1,
            _ => {}
        }
    }
    p
}

/// An RTMP client over a real socket, for tests that need to see messages.
pub struct Client {
    pub socket: TcpStream,
    pub session: ClientSession,
    pub stream_id: u32,
    buf: Vec<u8>,
}

impl Client {
    /// Connects, handshakes, sends `connect` and `createStream`.
    pub async fn connect(addr: SocketAddr, app: &str) -> Client {
        let socket = TcpStream::connect(addr).await.expect("connect to server");
        let mut c = Client {
            socket,
            session: ClientSession::new(9, false),
            stream_id: 0,
            buf: vec![0; 65536],
        };
        c.flush().await;
        while !c.session.is_handshake_done() {
            c.read_some().await.expect("handshake bytes");
        }
        c.session.connect(app, &format!("rtmp://{addr}/{app}"));
        c.session.create_stream();
        c.flush().await;
        loop {
            match c.next_event().await.expect("connect answered") {
                ClientSessionEvent::StreamCreated(id) => {
                    c.stream_id = id;
                    return c;
                }
                _ => continue,
            }
        }
    }

    pub async fn flush(&mut self) {
        let out = self.session.take_output();
        self.socket.write_all(&out).await.expect("write to server");
    }

    async fn read_some(&mut self) -> Option<()> {
        let n = self.socket.read(&mut self.buf).await.ok()?;
        if n == 0 {
            return None;
        }
        self.session
            .feed(&self.buf[..n])
            .expect("server sends valid RTMP");
        self.flush().await;
        Some(())
    }

    /// The next event; `None` when the server closed the connection.
    pub async fn next_event(&mut self) -> Option<ClientSessionEvent> {
        loop {
            if let Some(ev) = self.session.poll_event().expect("server sends valid RTMP") {
                return Some(ev);
            }
            self.read_some().await?;
        }
    }

    /// Waits for a status code, returning it.
    pub async fn next_status(&mut self) -> Option<String> {
        loop {
            if let ClientSessionEvent::Status { code, .. } = self.next_event().await? {
                return Some(code);
            }
        }
    }

    pub async fn play(&mut self, name: &str) {
        self.session.play(self.stream_id, name);
        self.flush().await;
    }

    pub async fn publish(&mut self, name: &str) {
        self.session.publish(self.stream_id, name);
        self.flush().await;
    }

    pub async fn send_media(&mut self, type_id: u8, ts: u32, payload: Bytes) {
        self.session
            .send_media(self.stream_id, type_id, ts, &payload);
        self.flush().await;
    }

    /// Counts media messages received within `limit`.
    pub async fn count_media(&mut self, limit: Duration) -> usize {
        let deadline = tokio::time::Instant::now() + limit;
        let mut n = 0;
        while let Ok(Some(ev)) = tokio::time::timeout_at(deadline, self.next_event()).await {
            if matches!(ev, ClientSessionEvent::Media(_)) {
                n += 1;
            }
        }
        n
    }
}

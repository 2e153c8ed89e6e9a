//! A bounded RTSP load client: opens TCP and UDP sessions against one URL, counts what arrives,
//! and reports the time from sending PLAY to the first RTP packet of a keyframe.
//!
//! `cargo run --release -p rtsp-server --example rtsp_load -- rtsp://127.0.0.1:8554/live/test 200 200 30`
//! (URL, TCP sessions, UDP sessions, seconds). At most [`MAX_SESSIONS`] sessions in all.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

/// The most sessions one run may open.
const MAX_SESSIONS: usize = 2000;
/// Bytes buffered per TCP session while parsing frames.
const READ_CHUNK: usize = 64 * 1024;

#[derive(Default)]
struct Stats {
    bytes: AtomicU64,
    packets: AtomicU64,
    failed: AtomicU64,
    latencies: Mutex<Vec<Duration>>,
}

fn keyframe_start(rtp: &[u8]) -> bool {
    let Some(p) = rtp.get(12..) else { return false };
    match p.first().map(|b| b & 0x1f) {
        Some(24) => p.get(3).is_some_and(|b| b & 0x1f == 7),
        Some(5) | Some(7) => true,
        Some(28) => p.get(1).is_some_and(|b| b & 0x80 != 0 && b & 0x1f == 5),
        _ => false,
    }
}

/// Reads one response, returning its head and any bytes after it.
async fn response(s: &mut TcpStream, buf: &mut Vec<u8>) -> std::io::Result<String> {
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end + 4]).into_owned();
            let len: usize = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .and_then(|v| v.trim().parse().ok())
                })
                .unwrap_or(0);
            if buf.len() >= end + 4 + len {
                buf.drain(..end + 4 + len);
                return Ok(head);
            }
        }
        let mut chunk = [0u8; 4096];
        let n = s.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

async fn request(
    s: &mut TcpStream,
    buf: &mut Vec<u8>,
    cseq: &mut u32,
    line: &str,
    extra: &str,
) -> std::io::Result<String> {
    *cseq += 1;
    s.write_all(format!("{line} RTSP/1.0\r\nCSeq: {cseq}\r\n{extra}\r\n").as_bytes())
        .await?;
    let head = response(s, buf).await?;
    if !head.starts_with("RTSP/1.0 200") {
        return Err(std::io::Error::other(
            head.lines().next().unwrap_or_default().to_owned(),
        ));
    }
    Ok(head)
}

fn session_header(head: &str) -> String {
    head.lines()
        .find_map(|l| l.strip_prefix("Session: "))
        .and_then(|v| v.split(';').next())
        .unwrap_or_default()
        .to_owned()
}

async fn session(url: String, tcp: bool, until: Instant, stats: Arc<Stats>) -> std::io::Result<()> {
    let authority = url
        .trim_start_matches("rtsp://")
        .split('/')
        .next()
        .unwrap_or_default()
        .to_owned();
    let mut s = TcpStream::connect(&authority).await?;
    let (mut buf, mut cseq) = (Vec::new(), 0);
    request(&mut s, &mut buf, &mut cseq, &format!("DESCRIBE {url}"), "").await?;
    let mut udp = Vec::new();
    let mut session = String::new();
    for track in 0..2 {
        let transport = if tcp {
            format!(
                "RTP/AVP/TCP;unicast;interleaved={}-{}",
                track * 2,
                track * 2 + 1
            )
        } else {
            let rtp = UdpSocket::bind("127.0.0.1:0").await?;
            let rtcp = UdpSocket::bind("127.0.0.1:0").await?;
            let t = format!(
                "RTP/AVP;unicast;client_port={}-{}",
                rtp.local_addr()?.port(),
                rtcp.local_addr()?.port()
            );
            udp.push(rtp);
            t
        };
        let sess = if session.is_empty() {
            String::new()
        } else {
            format!("Session: {session}\r\n")
        };
        let head = request(
            &mut s,
            &mut buf,
            &mut cseq,
            &format!("SETUP {url}/trackID={track}"),
            &format!("Transport: {transport}\r\n{sess}"),
        )
        .await?;
        session = session_header(&head);
    }
    let play_sent = Instant::now();
    request(
        &mut s,
        &mut buf,
        &mut cseq,
        &format!("PLAY {url}/"),
        &format!("Session: {session}\r\n"),
    )
    .await?;
    if tcp {
        count_tcp(&mut s, buf, play_sent, until, &stats).await
    } else {
        count_udp(&udp, play_sent, until, &stats).await
    }
}

async fn count_tcp(
    s: &mut TcpStream,
    mut buf: Vec<u8>,
    play_sent: Instant,
    until: Instant,
    stats: &Stats,
) -> std::io::Result<()> {
    let mut first = true;
    let mut chunk = vec![0u8; READ_CHUNK];
    loop {
        while buf.len() >= 4 && buf[0] == b'$' {
            let len = usize::from(u16::from_be_bytes([buf[2], buf[3]]));
            if buf.len() < 4 + len {
                break;
            }
            if first && buf[1] == 0 && keyframe_start(&buf[4..4 + len]) {
                stats
                    .latencies
                    .lock()
                    .expect("not poisoned")
                    .push(play_sent.elapsed());
                first = false;
            }
            stats.packets.fetch_add(1, Ordering::Relaxed);
            stats.bytes.fetch_add(len as u64, Ordering::Relaxed);
            buf.drain(..4 + len);
        }
        let Ok(n) = tokio::time::timeout_at(until.into(), s.read(&mut chunk)).await else {
            return Ok(());
        };
        match n? {
            0 => return Err(std::io::ErrorKind::UnexpectedEof.into()),
            n => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

async fn count_udp(
    socks: &[UdpSocket],
    play_sent: Instant,
    until: Instant,
    stats: &Stats,
) -> std::io::Result<()> {
    let mut first = true;
    let (mut a, mut b) = (vec![0u8; 2048], vec![0u8; 2048]);
    loop {
        let got = tokio::time::timeout_at(until.into(), async {
            tokio::select! {
                r = socks[0].recv(&mut a) => r.map(|n| (0, n)),
                r = socks[1].recv(&mut b) => r.map(|n| (1, n)),
            }
        })
        .await;
        let Ok(r) = got else { return Ok(()) };
        let (track, n) = r?;
        if first && track == 0 && keyframe_start(&a[..n]) {
            stats
                .latencies
                .lock()
                .expect("not poisoned")
                .push(play_sent.elapsed());
            first = false;
        }
        stats.packets.fetch_add(1, Ordering::Relaxed);
        stats.bytes.fetch_add(n as u64, Ordering::Relaxed);
    }
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [url, tcp, udp, secs] = args.as_slice() else {
        eprintln!("usage: rtsp_load URL TCP_SESSIONS UDP_SESSIONS SECONDS");
        std::process::exit(2);
    };
    let (tcp, udp, secs): (usize, usize, u64) = (
        tcp.parse().unwrap_or(0),
        udp.parse().unwrap_or(0),
        secs.parse().unwrap_or(10),
    );
    if tcp + udp > MAX_SESSIONS {
        eprintln!("at most {MAX_SESSIONS} sessions");
        std::process::exit(2);
    }
    let stats = Arc::new(Stats::default());
    let until = Instant::now() + Duration::from_secs(secs);
    let mut tasks = Vec::new();
    for i in 0..tcp + udp {
        let (url, stats) = (url.clone(), Arc::clone(&stats));
        tasks.push(tokio::spawn(async move {
            if let Err(e) = session(url, i < tcp, until, Arc::clone(&stats)).await {
                stats.failed.fetch_add(1, Ordering::Relaxed);
                eprintln!("session {i}: {e}");
            }
        }));
        // Spread the connects a little, as real viewers arrive.
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    for t in tasks {
        let _ = t.await;
    }
    let mut lat = stats.latencies.lock().expect("not poisoned").clone();
    lat.sort();
    let pct = |p: usize| {
        lat.get((lat.len() * p / 100).min(lat.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    let bytes = stats.bytes.load(Ordering::Relaxed);
    println!(
        "sessions {} (tcp {tcp}, udp {udp}), failed {}, packets {}, payload {:.1} Mbit/s total, {:.2} Mbit/s per session",
        tcp + udp,
        stats.failed.load(Ordering::Relaxed),
        stats.packets.load(Ordering::Relaxed),
        bytes as f64 * 8.0 / secs as f64 / 1e6,
        bytes as f64 * 8.0 / secs as f64 / 1e6 / (tcp + udp).max(1) as f64
    );
    println!(
        "PLAY to first keyframe RTP packet: p50 {:?}, p95 {:?}, max {:?} ({} sessions)",
        pct(50),
        pct(95),
        lat.last().copied().unwrap_or_default(),
        lat.len()
    );
}

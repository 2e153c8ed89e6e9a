//! A load client: N RTMP players on one stream, each counting what it
//! receives, built on the sans-IO `rtmp::ClientSession` (plain handshake).
//!
//! ```text
//! cargo run --release -p rtmp-server --example load -- rtmp://127.0.0.1:1935/live/load 100 30
//! ```
//!
//! Start a publisher separately, e.g.
//! `ffmpeg -re -stream_loop -1 -i target/fixtures/av-2500k.flv -c copy -f flv rtmp://127.0.0.1:1935/live/load`.

use std::time::Duration;

use rtmp::{ClientSession, ClientSessionEvent};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[derive(Debug, Default, Clone, Copy)]
struct Stats {
    bytes: u64,
    media: u64,
}

async fn player(
    host: String,
    app: String,
    name: String,
    seconds: u64,
    seed: u64,
) -> std::io::Result<Stats> {
    let mut socket = TcpStream::connect(&host).await?;
    let mut s = ClientSession::new(seed, false);
    let mut buf = vec![0u8; 64 * 1024];
    let mut stats = Stats::default();
    let mut state = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(seconds);
    loop {
        let out = s.take_output();
        socket.write_all(&out).await?;
        let n = match tokio::time::timeout_at(deadline, socket.read(&mut buf)).await {
            Ok(n) => n?,
            Err(_) => return Ok(stats),
        };
        if n == 0 {
            return Ok(stats);
        }
        stats.bytes += n as u64;
        s.feed(&buf[..n]).map_err(std::io::Error::other)?;
        if state == 0 && s.is_handshake_done() {
            s.connect(&app, &format!("rtmp://{host}/{app}"));
            s.create_stream();
            state = 1;
        }
        while let Some(ev) = s.poll_event().map_err(std::io::Error::other)? {
            match ev {
                ClientSessionEvent::StreamCreated(id) => s.play(id, &name),
                ClientSessionEvent::Media(_) => stats.media += 1,
                _ => {}
            }
        }
    }
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let url = args
        .first()
        .cloned()
        .unwrap_or_else(|| "rtmp://127.0.0.1:1935/live/load".into());
    let players: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(100);
    let seconds: u64 = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(30);
    let rest = url.strip_prefix("rtmp://").expect("an rtmp:// URL");
    let mut parts = rest.splitn(3, '/');
    let (host, app, name) = match (parts.next(), parts.next(), parts.next()) {
        (Some(h), Some(a), Some(n)) => (h.to_owned(), a.to_owned(), n.to_owned()),
        _ => panic!("URL must be rtmp://host:port/app/stream"),
    };
    let tasks: Vec<_> = (0..players)
        .map(|i| {
            tokio::spawn(player(
                host.clone(),
                app.clone(),
                name.clone(),
                seconds,
                i as u64,
            ))
        })
        .collect();
    let mut all = Vec::new();
    for t in tasks {
        match t.await {
            Ok(Ok(s)) => all.push(s),
            Ok(Err(e)) => eprintln!("player failed: {e}"),
            Err(e) => eprintln!("player panicked: {e}"),
        }
    }
    let total: u64 = all.iter().map(|s| s.bytes).sum();
    let min = all.iter().map(|s| s.bytes).min().unwrap_or(0);
    let media_min = all.iter().map(|s| s.media).min().unwrap_or(0);
    println!(
        "{} players ok of {players}; {seconds} s; total {:.1} MB ({:.1} Mbit/s); per player min {:.1} Mbit/s, min {media_min} media messages",
        all.len(),
        total as f64 / 1e6,
        total as f64 * 8.0 / 1e6 / seconds as f64,
        min as f64 * 8.0 / 1e6 / seconds as f64,
    );
}

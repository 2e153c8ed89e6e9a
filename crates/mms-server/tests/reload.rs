//! Options replaced while the shell runs (a configuration reload): publishing points follow the
//! current options at every new request, a viewer that was playing keeps playing, and a stream's
//! ASF muxer keeps the options it started with while a muxer that starts later takes the new
//! ones.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use common::*;
use mms_server::{Options, PublishingPoint};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Sends an MMSH play request for `path`.
async fn play(http: SocketAddr, path: &str) -> TcpStream {
    let mut s = TcpStream::connect(http).await.expect("connect");
    let req = format!(
        "GET {path} HTTP/1.0\r\nUser-Agent: NSPlayer/4.1.0.3856\r\nHost: {http}\r\nPragma: xPlayStrm=1\r\n\r\n"
    );
    s.write_all(req.as_bytes()).await.expect("send");
    s
}

/// Reads what arrives for `dur` into `body`; panics if the server closes the connection.
async fn read_for(s: &mut TcpStream, body: &mut Vec<u8>, dur: Duration) {
    let until = tokio::time::Instant::now() + dur;
    let mut buf = vec![0u8; 64 * 1024];
    while let Ok(read) = tokio::time::timeout_at(until, s.read(&mut buf)).await {
        let n = read.expect("read");
        assert!(n > 0, "the viewer was disconnected");
        body.extend_from_slice(&buf[..n]);
    }
}

/// The whole response of a request the server answers and closes: its status and body.
async fn answer(mut s: TcpStream) -> (u16, Vec<u8>) {
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut out))
        .await
        .expect("answered in time")
        .expect("read");
    let status = String::from_utf8_lossy(&out)
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, out)
}

/// The MMSH chunks of a response (after its head): (letter, chunk body length).
fn chunks(response: &[u8]) -> Vec<(u8, usize)> {
    let start = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("response head")
        + 4;
    let mut b = &response[start..];
    let mut out = Vec::new();
    while b.len() >= 4 {
        assert_eq!(b[0], b'$', "chunk framing at {} chunks", out.len());
        let len = usize::from(u16::from_le_bytes([b[2], b[3]]));
        if b.len() < 4 + len {
            break;
        }
        out.push((b[1], len));
        b = &b[4 + len..];
    }
    out
}

/// The ASF packet sizes of a response's data chunks (each `$D` body is an 8-byte MMSH header
/// and one packet).
fn packet_sizes(response: &[u8]) -> Vec<usize> {
    chunks(response)
        .into_iter()
        .filter(|(k, _)| *k == b'D')
        .map(|(_, len)| len - 8)
        .collect()
}

fn point(name: &str, stream: &str) -> PublishingPoint {
    PublishingPoint {
        name: name.into(),
        stream: stream.into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishing_points_follow_the_replaced_options_and_viewers_keep_playing() {
    let first = Options {
        publishing_points: vec![point("LiveEvents", KEY)],
        packet_size: 4096,
        ..Options::default()
    };
    let opts = Arc::new(ArcSwap::from_pointee(first.clone()));
    let h = start_swappable(fixture(), KEY, Arc::clone(&opts)).await;
    let other = "live/other";
    tokio::spawn(publish_loop(
        h.bus.clone(),
        fixture(),
        other,
        h.shutdown.child_token(),
    ));
    let mut old = play(h.http, "/LiveEvents").await;
    let mut old_body = Vec::new();
    read_for(&mut old, &mut old_body, Duration::from_millis(1500)).await;
    assert!(!packet_sizes(&old_body).is_empty(), "the viewer plays");

    // The reload: LiveEvents is removed, NewEvents (the same stream) and Other are added, and
    // new muxers make smaller packets.
    opts.store(Arc::new(Options {
        publishing_points: vec![point("NewEvents", KEY), point("Other", other)],
        packet_size: 2048,
        ..first
    }));

    // A removed point is refused to new requests, MMSH and ASX alike...
    let (status, _) = answer(play(h.http, "/LiveEvents").await).await;
    assert_eq!(status, 404, "the removed publishing point");
    let mut asx = TcpStream::connect(h.http).await.expect("connect");
    asx.write_all(b"GET /LiveEvents.asx HTTP/1.0\r\nHost: x\r\n\r\n")
        .await
        .expect("send");
    assert_eq!(
        answer(asx).await.0,
        404,
        "no playlist for the removed point"
    );
    let mut asx = TcpStream::connect(h.http).await.expect("connect");
    asx.write_all(b"GET /NewEvents.asx HTTP/1.0\r\nHost: x\r\n\r\n")
        .await
        .expect("send");
    let (status, body) = answer(asx).await;
    assert_eq!(status, 200);
    assert!(String::from_utf8_lossy(&body).contains("mms://x/NewEvents"));

    // ... while an added one plays at once, from the stream's running muxer, which keeps the
    // packet size it started with.
    let mut added = play(h.http, "/NewEvents").await;
    let mut added_body = Vec::new();
    read_for(&mut added, &mut added_body, Duration::from_millis(1500)).await;
    let sizes = packet_sizes(&added_body);
    assert!(!sizes.is_empty(), "the added point plays");
    assert!(
        sizes.iter().all(|&n| n == 4096),
        "the running muxer's packets"
    );

    // A muxer that starts now (the first viewer of the other stream) takes the new size.
    let mut fresh = play(h.http, "/Other").await;
    let mut fresh_body = Vec::new();
    read_for(&mut fresh, &mut fresh_body, Duration::from_millis(1500)).await;
    let sizes = packet_sizes(&fresh_body);
    assert!(!sizes.is_empty(), "the other stream plays");
    assert!(sizes.iter().all(|&n| n == 2048), "the new muxer's packets");

    // The viewer of the removed point was never disturbed: still data, no end of stream.
    read_for(&mut old, &mut old_body, Duration::from_millis(1500)).await;
    let kinds: Vec<u8> = chunks(&old_body).into_iter().map(|(k, _)| k).collect();
    assert_eq!(kinds.first(), Some(&b'H'));
    assert!(
        kinds[1..].iter().all(|&k| k == b'D'),
        "only data chunks, no end-of-stream"
    );
    assert!(
        kinds.len() > 10,
        "the viewer kept receiving: {} chunks",
        kinds.len()
    );
}

/// ffprobe of an `mmst://` URL: whether it found a stream.
async fn mmst_probes(url: &str) -> bool {
    let args = ["-v", "error", "-show_entries", "stream=codec_name", url];
    let (ok, out, _) = run_tool("ffprobe", &args, Duration::from_secs(40)).await;
    ok && out.contains("codec_name=")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mmst_open_file_resolves_against_the_replaced_options() {
    if !have_tool("ffprobe").await {
        return;
    }
    let first = options();
    let opts = Arc::new(ArcSwap::from_pointee(first.clone()));
    let h = start_swappable(fixture(), KEY, Arc::clone(&opts)).await;
    assert!(mmst_probes(&format!("mmst://{}/LiveEvents", h.mmst)).await);
    assert!(!mmst_probes(&format!("mmst://{}/NewEvents", h.mmst)).await);
    opts.store(Arc::new(Options {
        publishing_points: vec![point("NewEvents", KEY)],
        ..first
    }));
    assert!(
        mmst_probes(&format!("mmst://{}/NewEvents", h.mmst)).await,
        "the added point"
    );
    assert!(
        !mmst_probes(&format!("mmst://{}/LiveEvents", h.mmst)).await,
        "the removed point"
    );
}

//! When the publisher leaves, every MMS viewer is told the broadcast ended and disconnected.

mod common;

use std::time::Duration;

use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn viewers_end_with_end_of_stream_when_the_publisher_leaves() {
    if !have_tool("ffmpeg").await {
        return;
    }
    let h = start().await;
    let mmst_url = format!("mmst://{}/LiveEvents", h.mmst);
    let mut mmst = tokio::process::Command::new("ffmpeg")
        .args(["-v", "error", "-i", &mmst_url, "-f", "null", "-"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("ffmpeg spawns");
    let mut mmsh = TcpStream::connect(h.http).await.expect("connect");
    let req = format!(
        "GET /LiveEvents HTTP/1.0\r\nUser-Agent: NSPlayer/4.1.0.3856\r\nHost: {}\r\nPragma: xPlayStrm=1\r\n\r\n",
        h.http
    );
    mmsh.write_all(req.as_bytes()).await.expect("send");
    tokio::time::sleep(Duration::from_secs(2)).await;
    h.publisher.cancel();
    let mut body = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), mmsh.read_to_end(&mut body))
        .await
        .expect("the MMSH response ends promptly")
        .expect("read");
    assert!(
        body.ends_with(&[b'$', b'E', 4, 0, 0, 0, 0, 0]),
        "MMSH body ends with $E"
    );
    // ffmpeg's mmst.c reports the server's end-of-stream report (0x1e) as unexpected; whether
    // it then exits is ffmpeg's business, so stop it ourselves and read what it said.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let _ = mmst.start_kill();
    let out = mmst.wait_with_output().await.expect("ffmpeg output");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("0x1e"),
        "MMST viewer saw the end-of-stream report: {err}"
    );
}

/// Splits an MMSH body into (chunk letter, body length) pairs; panics on broken framing.
fn chunks(mut b: &[u8]) -> Vec<(u8, usize)> {
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publisher_that_reconnects_keeps_its_mms_viewers() {
    let h = start().await;
    let mut mmsh = TcpStream::connect(h.http).await.expect("connect");
    let req = format!(
        "GET /LiveEvents HTTP/1.0\r\nUser-Agent: NSPlayer/4.1.0.3856\r\nHost: {}\r\nPragma: xPlayStrm=1\r\n\r\n",
        h.http
    );
    mmsh.write_all(req.as_bytes()).await.expect("send");
    tokio::time::sleep(Duration::from_secs(1)).await;
    h.publisher.cancel();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let again = h.shutdown.child_token();
    tokio::spawn(publish_loop(h.bus.clone(), fixture(), KEY, again.clone()));
    let mut body = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    // What arrived before the new publisher's media could have.
    while let Ok(Ok(n)) = tokio::time::timeout(Duration::from_millis(50), mmsh.read(&mut buf)).await
    {
        assert!(n > 0, "the viewer was disconnected");
        body.extend_from_slice(&buf[..n]);
    }
    let before = body.len();
    let until = tokio::time::Instant::now() + Duration::from_secs(4);
    while let Ok(read) = tokio::time::timeout_at(until, mmsh.read(&mut buf)).await {
        let n = read.expect("read");
        assert!(n > 0, "the viewer was disconnected");
        body.extend_from_slice(&buf[..n]);
    }
    again.cancel();
    let start = body
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("response head")
        + 4;
    let kinds: Vec<u8> = chunks(&body[start..]).into_iter().map(|(k, _)| k).collect();
    assert_eq!(kinds.first(), Some(&b'H'), "the header chunk first");
    assert!(
        kinds[1..].iter().all(|&k| k == b'D'),
        "only data chunks, no end-of-stream"
    );
    // The fixture makes about 5 packets a second: 4 s after the reconnect bring well over 10.
    let after = (body.len() - before) / (12 + 4096);
    assert!(
        after >= 10,
        "the stream kept flowing after the reconnect: {after} packets"
    );
}

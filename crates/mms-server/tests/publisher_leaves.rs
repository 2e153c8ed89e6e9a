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

//! A connection's close line counts every tag of the connection, including those of a publish
//! that ended (unpublish) before the connection closed.

mod support;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use rtmp::message::type_id;
use support::*;

/// Collects the log output of this test binary.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(|p| p.into_inner())).into_owned()
    }
}

/// The first log line containing every one of `needles`, waiting up to 5 s for it.
async fn line_with(log: &Captured, needles: &[&str]) -> String {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let text = log.text();
        if let Some(line) = text.lines().find(|l| needles.iter().all(|n| l.contains(n))) {
            return line.to_owned();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no log line with {needles:?} in:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_close_line_counts_the_tags_of_an_unpublished_stream() {
    let log = Captured::default();
    let writer = log.clone();
    tracing_subscriber::fmt()
        .with_env_filter("rtmp_server=info")
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .init();
    let server = start_server(Default::default()).await;
    let mut c = Client::connect(server.addr, "live").await;
    c.publish("counted").await;
    assert_eq!(
        c.next_status().await.as_deref(),
        Some("NetStream.Publish.Start")
    );
    // An AAC sequence header, then raw AAC frames.
    c.send_media(
        type_id::AUDIO,
        0,
        Bytes::from_static(&[0xaf, 0x00, 0x12, 0x10]),
    )
    .await;
    for ts in 1..=6u32 {
        c.send_media(
            type_id::AUDIO,
            ts * 23,
            Bytes::from_static(&[0xaf, 0x01, 0x21, 0x00]),
        )
        .await;
    }
    let id = c.stream_id;
    c.session.delete_stream(id);
    c.flush().await;
    let unpublish = line_with(&log, &["RTMP unpublish", "live/counted"]).await;
    assert!(unpublish.contains("tags=7"), "{unpublish}");
    drop(c);
    let closed = line_with(&log, &["RTMP connection closed", "live/counted"]).await;
    assert!(
        closed.contains("tags_in=7"),
        "the close line counts the 7 tags published before the unpublish: {closed}"
    );
}

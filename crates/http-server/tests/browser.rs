//! The web page in headless Chromium (Debian's `/usr/bin/chromium`, driven by playwright-core
//! through `web/tests/browser.mjs`): the list shows the stream, and the player plays it.

mod common;

use bus::Bus;
use common::{have_browser, play_in_chromium, KEY};
use tokio_util::sync::CancellationToken;

/// Serves a live stream on this crate's router alone and plays it with mpegts.js over `tech`.
async fn check_mpegts_playback(tech: &str) {
    if !common::have_tool("ffmpeg") || !have_browser() {
        return;
    }
    let bus = Bus::default();
    let stop = CancellationToken::new();
    common::spawn_feeder(&bus, KEY, common::fixture(), stop.clone());
    let addr = common::serve(&bus, stop.clone()).await;
    let report = play_in_chromium(&format!("http://{addr}"), tech).await;
    stop.cancel();
    assert_eq!(report["engine"], "mpegts.js");
    assert!(
        report["currentTime"].as_f64().is_some_and(|t| t > 5.0),
        "{report}"
    );
    assert_eq!(
        (
            report["videoWidth"].as_u64(),
            report["videoHeight"].as_u64()
        ),
        (Some(640), Some(360))
    );
    assert!(
        report["listVideo"]
            .as_str()
            .is_some_and(|v| v.contains("H.264 · 640×360")),
        "{report}"
    );
    let urls = report["urls"].as_array().map_or(0, Vec::len);
    assert_eq!(urls, 6, "every protocol's URL is shown: {report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_lists_the_stream_and_plays_http_flv_with_mpegts_js() {
    check_mpegts_playback("flv").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_plays_websocket_flv_with_mpegts_js() {
    check_mpegts_playback("ws").await;
}

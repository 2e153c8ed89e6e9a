//! HLS playback in the web page, through the gateway's composition of routers: this crate's
//! merged with the `hls-server` crate's, in headless Chromium.

mod common;

use bus::Bus;
use common::{have_browser, play_in_chromium, KEY};
use tokio_util::sync::CancellationToken;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_plays_hls_with_hls_js_from_the_merged_router() {
    if !common::have_tool("ffmpeg") || !have_browser() {
        return;
    }
    let bus = Bus::default();
    let stop = CancellationToken::new();
    common::spawn_feeder(&bus, KEY, common::fixture(), stop.clone());
    // The gateway's composition: this crate's router merged with the HLS shell's.
    let opts = http_server::Options {
        web_root: common::web_root(),
        ..Default::default()
    };
    let router = http_server::router(bus.clone(), opts).merge(hls_server::router(
        bus.clone(),
        hls_server::Options::default(),
    ));
    let addr = common::serve_router(router, stop.clone()).await;
    let report = play_in_chromium(&format!("http://{addr}"), "hls").await;
    stop.cancel();
    assert_eq!(report["engine"], "hls.js");
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
}

//! The web page in headless Chromium (Debian's `/usr/bin/chromium`, driven by playwright-core
//! through `web/tests/browser.mjs`): the list shows the stream, and the player plays it.

mod common;

use std::path::Path;

use bus::Bus;
use common::KEY;
use tokio_util::sync::CancellationToken;

const CHROMIUM: &str = "/usr/bin/chromium";

/// True when node, Chromium and playwright-core are there; otherwise panics under CI or skips.
fn have_browser() -> bool {
    let web = common::web_root();
    let missing = if !Path::new(CHROMIUM).exists() {
        Some(format!("{CHROMIUM} is not installed"))
    } else if !web.join("node_modules/playwright-core").exists() {
        Some("web/node_modules is missing; run `npm ci` in web/".to_owned())
    } else if !common::have_tool("node") {
        Some("node is not installed".to_owned())
    } else {
        None
    };
    if let Some(why) = missing {
        assert!(std::env::var_os("CI").is_none(), "{why}");
        println!("SKIPPED: {why}");
        return false;
    }
    true
}

/// Runs the browser script against `base` and returns its JSON report; panics if it failed.
pub async fn play_in_chromium(base: &str, tech: &str) -> serde_json::Value {
    let mut cmd = tokio::process::Command::new("node");
    cmd.current_dir(common::web_root())
        .args([
            "tests/browser.mjs",
            "--base",
            base,
            "--stream",
            KEY,
            "--tech",
            tech,
        ])
        .args(["--seconds", "5", "--chromium", CHROMIUM]);
    // Set BROWSER_SCREENSHOTS=<dir> to keep screenshots of the list and the player.
    if let Some(dir) = std::env::var_os("BROWSER_SCREENSHOTS") {
        cmd.arg("--screenshots").arg(dir);
    }
    let out = cmd.kill_on_drop(true).output().await.expect("node runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("browser report: {stdout}");
    let report: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!(
            "browser script printed no report ({e}); stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert!(out.status.success(), "browser check failed: {report}");
    assert_eq!(
        report["consoleErrors"],
        serde_json::json!([]),
        "the page logged errors"
    );
    report
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_lists_the_stream_and_plays_http_flv_with_mpegts_js() {
    if !common::have_tool("ffmpeg") || !have_browser() {
        return;
    }
    let bus = Bus::default();
    let stop = CancellationToken::new();
    common::spawn_feeder(&bus, KEY, common::fixture(), stop.clone());
    let addr = common::serve(&bus, stop.clone()).await;
    let report = play_in_chromium(&format!("http://{addr}"), "flv").await;
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

//! The JSON stream list and the web page's files, as the page's scripts fetch them.

mod common;

use bus::Bus;
use common::{body_text, request, KEY};
use tokio_util::sync::CancellationToken;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_lists_live_streams_with_codecs_counters_and_urls() {
    let bus = Bus::default();
    let stop = CancellationToken::new();
    common::spawn_feeder(&bus, KEY, common::fixture(), stop.clone());
    let addr = common::serve(&bus, stop.clone()).await;
    // One HTTP-FLV viewer, and enough time for the bitrate meter's first second.
    let mut viewer = request(addr, "GET", &format!("/{KEY}.flv"), &[]).await;
    let _ = viewer.read_some().await;
    tokio::time::sleep(std::time::Duration::from_millis(2200)).await;

    let mut res = request(addr, "GET", "/api/streams", &[("Host", "gw.example:8080")]).await;
    assert_eq!(res.status, 200);
    assert_eq!(res.header("access-control-allow-origin"), Some("*"));
    let list: serde_json::Value = serde_json::from_str(&body_text(&mut res).await).expect("JSON");
    let streams = list["streams"].as_array().expect("streams array");
    assert_eq!(streams.len(), 1);
    let s = &streams[0];
    assert_eq!(s["key"], KEY);
    assert_eq!(
        (s["app"].as_str(), s["name"].as_str()),
        (Some("live"), Some("test"))
    );
    assert_eq!(
        (s["video_codec"].as_str(), s["width"].as_u64()),
        (Some("h264"), Some(640))
    );
    assert_eq!(
        (s["audio_codec"].as_str(), s["sample_rate"].as_u64()),
        (Some("aac"), Some(44100))
    );
    assert_eq!(s["viewers"]["http_flv"], 1);
    let kbps = s["bitrate_kbps"].as_u64().expect("bitrate");
    assert!(
        (100..2000).contains(&kbps),
        "about 460 kbit/s published, API says {kbps}"
    );
    assert!(s["uptime_secs"].as_u64().is_some_and(|u| u >= 2));
    assert_eq!(
        s["urls"]["http_flv"],
        format!("http://{addr}/live/test.flv")
    );
    assert_eq!(s["urls"]["ws_flv"], format!("ws://{addr}/live/test.flv"));
    assert_eq!(s["urls"]["rtmp"], "rtmp://127.0.0.1:1935/live/test");

    let mut res = request(addr, "GET", "/api/streams/live/test", &[]).await;
    assert_eq!(res.status, 200);
    let one: serde_json::Value = serde_json::from_str(&body_text(&mut res).await).expect("JSON");
    assert_eq!(one["key"], KEY);
    let res = request(addr, "GET", "/api/streams/live/nobody", &[]).await;
    assert_eq!(res.status, 404);

    // A viewer that disconnects stops being counted (its subscription is dropped with the body).
    drop(viewer);
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let mut res = request(addr, "GET", "/api/streams/live/test", &[]).await;
    let one: serde_json::Value = serde_json::from_str(&body_text(&mut res).await).expect("JSON");
    assert_eq!(one["viewers"]["http_flv"], 0);
    stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_web_page_and_its_player_libraries_are_served() {
    let bus = Bus::default();
    let stop = CancellationToken::new();
    let addr = common::serve(&bus, stop.clone()).await;

    let mut res = request(addr, "GET", "/", &[]).await;
    assert_eq!(res.status, 200);
    assert!(res
        .header("content-type")
        .is_some_and(|t| t.starts_with("text/html")));
    assert!(
        body_text(&mut res).await.contains("<h1>Live streams</h1>"),
        "the stream list page"
    );
    for (path, kind) in [
        ("/player.html", "text/html"),
        ("/app.css", "text/css"),
        ("/player.js", "javascript"),
    ] {
        let res = request(addr, "GET", path, &[]).await;
        assert_eq!(res.status, 200, "{path}");
        assert!(
            res.header("content-type").is_some_and(|t| t.contains(kind)),
            "{path}"
        );
    }
    // A name longer than the filesystem allows is simply not there (not a 500).
    let too_long = format!("/{}.html", "a".repeat(300));
    for private in [
        "/package.json",
        "/README.md",
        "/no-such-page.html",
        "/%2E%2E%2FCargo.toml",
        &too_long,
    ] {
        let res = request(addr, "GET", private, &[]).await;
        assert_eq!(res.status, 404, "{private}");
    }
    let res = request(addr, "GET", "/vendor/not-a-library.js", &[]).await;
    assert_eq!(res.status, 404);

    if !common::web_root().join("node_modules").exists() {
        assert!(
            std::env::var_os("CI").is_none(),
            "run `npm ci` in web/ before the tests"
        );
        println!("SKIPPED: web/node_modules is missing; run `npm ci` in web/");
        stop.cancel();
        return;
    }
    for path in ["/vendor/hls.min.js", "/vendor/mpegts.js"] {
        let mut res = request(addr, "GET", path, &[]).await;
        assert_eq!(res.status, 200, "{path}");
        assert!(
            body_text(&mut res).await.len() > 100_000,
            "{path} is the library"
        );
    }
    stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_web_root_without_node_modules_answers_404_for_the_libraries() {
    let bus = Bus::default();
    let stop = CancellationToken::new();
    let empty = std::env::temp_dir().join(format!("http-server-empty-web-{}", std::process::id()));
    std::fs::create_dir_all(&empty).expect("temp dir is writable");
    let opts = http_server::Options {
        web_root: empty,
        ..Default::default()
    };
    let addr = common::serve_router(http_server::router(bus, opts), stop.clone()).await;
    let res = request(addr, "GET", "/vendor/hls.min.js", &[]).await;
    assert_eq!(res.status, 404);
    let res = request(addr, "GET", "/", &[]).await;
    assert_eq!(res.status, 404);
    stop.cancel();
}

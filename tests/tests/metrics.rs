//! `/metrics` and stream health against a live gateway: Prometheus's own parser (`promtool check
//! metrics`) accepts the exposition; the per-stream figures move when an ffmpeg HTTP-FLV viewer
//! joins and leaves, when an RTSP viewer plays, and when HLS segments are fetched; the token
//! guards `/metrics` unless `metrics.public`; a publisher that goes silent is flagged in
//! `/api/streams`, counted, and posted to `health.on_stream_unhealthy`, and recovers.

use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use gateway_tests::{
    http_get, http_get_with, require_tool, wait_until, Ffmpeg, GetOptions, HookServer, Live,
};
use serde_json::Value;

const TOKEN: &str = "metrics-test-token";

/// The samples of an exposition: `name{labels}` to value (the labels as written).
fn samples(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            Some((series.to_owned(), value.parse().ok()?))
        })
        .collect()
}

fn scrape(live: &Live, token: Option<&str>) -> (u16, String) {
    let auth = token.map(|t| format!("Bearer {t}"));
    let headers: Vec<(&str, &str)> = auth
        .as_deref()
        .map(|a| vec![("Authorization", a)])
        .unwrap_or_default();
    let opts = GetOptions {
        headers: &headers,
        ..GetOptions::default()
    };
    let res = http_get_with(&live.http_url("/metrics"), Duration::from_secs(10), &opts)
        .expect("GET /metrics");
    (res.status, res.text())
}

fn value(text: &str, series: &str) -> Option<f64> {
    samples(text).get(series).copied()
}

/// Runs `promtool check metrics` on `text`; returns its output when it refuses.
fn promtool(text: &str) -> Result<(), String> {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run promtool");
    child
        .stdin
        .take()
        .expect("piped")
        .write_all(text.as_bytes())
        .expect("write to promtool");
    let out = child.wait_with_output().expect("promtool finishes");
    match out.status.success() {
        true => Ok(()),
        false => Err(format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )),
    }
}

const S: &str = r#"app="live",stream="test""#;

#[test]
fn metrics_pass_promtool_and_follow_viewers() {
    if !require_tool("ffmpeg") || !require_tool("promtool") {
        return;
    }
    let mut live = Live::ffmpeg_with("av.flv", |c| c.auth.api_token = TOKEN.into());
    let (status, _) = scrape(&live, None);
    assert_eq!(status, 401, "/metrics needs the API token by default");
    let (status, text) = scrape(&live, Some(TOKEN));
    assert_eq!(status, 200);
    promtool(&text).unwrap_or_else(|e| panic!("promtool refused /metrics: {e}\n{text}"));
    let flv_viewers = format!(r#"gateway_stream_viewers{{{S},protocol="http-flv"}}"#);
    let flv_bytes = format!(r#"gateway_stream_egress_bytes_total{{{S},protocol="http-flv"}}"#);
    assert_eq!(value(&text, &flv_viewers), Some(0.0), "{text}");
    assert_eq!(
        value(&text, &format!("gateway_stream_live{{{S}}}")),
        Some(1.0)
    );

    // An HTTP-FLV viewer, an RTSP viewer and HLS segment fetches.
    let url = live.http_url("/live/test.flv");
    let mut flv = Ffmpeg::spawn(&["-i", &url, "-f", "null", "-"]);
    let rtsp = live.gateway.rtsp_addr().expect("RTSP is on by default");
    let rtsp_url = format!("rtsp://{rtsp}/live/test");
    let mut rtsp_viewer =
        Ffmpeg::spawn(&["-rtsp_transport", "udp", "-i", &rtsp_url, "-f", "null", "-"]);
    let playlist_url = live.wait_hls(2, Duration::from_secs(40));
    let playlist = http_get(&playlist_url, Duration::from_secs(10))
        .expect("GET the playlist")
        .text();
    for seg in playlist.lines().filter(|l| l.ends_with(".ts")).take(2) {
        let seg_url = live.http_url(&format!("/live/test/{seg}"));
        let res = http_get(&seg_url, Duration::from_secs(10)).expect("GET a segment");
        assert_eq!(res.status, 200);
    }
    let mut last = String::new();
    let moved = wait_until(Duration::from_secs(30), || {
        last = scrape(&live, Some(TOKEN)).1;
        let s = samples(&last);
        let get = |k: &str| s.get(k).copied().unwrap_or(0.0);
        get(&flv_viewers) == 1.0
            && get(&format!("gateway_stream_ingest_bytes_total{{{S}}}")) > 0.0
            && get(&flv_bytes) > 100_000.0
            && get(&format!(r#"gateway_stream_viewers{{{S},protocol="rtsp"}}"#)) == 1.0
            && get(&format!(
                r#"gateway_stream_egress_bytes_total{{{S},protocol="rtsp"}}"#
            )) > 10_000.0
            && get(&format!(
                r#"gateway_stream_egress_bytes_total{{{S},protocol="hls"}}"#
            )) > 10_000.0
            && get(&format!("gateway_rtsp_sessions{{{S}}}")) == 1.0
            && s.keys()
                .any(|k| k.starts_with("gateway_rtsp_receiver_jitter{"))
            && get(&format!("gateway_hls_segments_total{{{S}}}")) >= 2.0
            && get(&format!(
                r#"gateway_write_batch_units_count{{{S},protocol="http-flv"}}"#
            )) > 0.0
            && get(&format!("gateway_stream_keyframe_interval_seconds{{{S}}}")) > 0.0
    });
    flv.assert_running();
    rtsp_viewer.assert_running();
    live.assert_publishing();
    assert!(moved, "the figures did not move as expected:\n{last}");
    promtool(&last).unwrap_or_else(|e| panic!("promtool refused /metrics with viewers: {e}"));
    let accepted = value(
        &last,
        r#"gateway_listener_connections_accepted_total{listener="http"}"#,
    );
    assert!(accepted.unwrap_or(0.0) >= 3.0, "{last}");

    // Every metric the Grafana dashboard queries is one this gateway exposes.
    let exposed: Vec<&str> = last
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split(' ').next())
        .collect();
    let dashboard =
        std::fs::read_to_string(gateway_tests::workspace_root().join("docs/grafana/gateway.json"))
            .expect("read docs/grafana/gateway.json");
    let mut queried: Vec<String> = Vec::new();
    for (i, _) in dashboard.match_indices("gateway_") {
        let name: String = dashboard[i..]
            .chars()
            .take_while(|c| c.is_ascii_lowercase() || *c == '_' || c.is_ascii_digit())
            .collect();
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| name.strip_suffix(s))
            .unwrap_or(&name)
            .to_owned();
        if !queried.contains(&family) {
            queried.push(family);
        }
    }
    assert!(queried.len() > 10, "the dashboard queries {queried:?}");
    let missing: Vec<&String> = queried
        .iter()
        .filter(|q| !exposed.contains(&q.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "the dashboard queries metrics /metrics does not have: {missing:?}"
    );

    // The HTTP-FLV viewer leaves: its gauge falls back, its bytes stay counted.
    let sent = value(&last, &flv_bytes).unwrap_or(0.0);
    drop(flv);
    let left = wait_until(Duration::from_secs(15), || {
        last = scrape(&live, Some(TOKEN)).1;
        value(&last, &flv_viewers) == Some(0.0)
    });
    assert!(left, "the HTTP-FLV viewer is still counted:\n{last}");
    assert!(value(&last, &flv_bytes).unwrap_or(0.0) >= sent);
    drop(rtsp_viewer);
}

#[test]
fn public_metrics_need_no_token_and_disabled_metrics_are_absent() {
    if !require_tool("ffmpeg") {
        return;
    }
    let live = Live::ffmpeg_with("av.flv", |c| {
        c.auth.api_token = TOKEN.into();
        c.metrics.public = true;
    });
    let (status, text) = scrape(&live, None);
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("gateway_stream_live{"), "{text}");
    drop(live);
    let live = Live::ffmpeg_with("av.flv", |c| c.metrics.enabled = false);
    let (status, _) = scrape(&live, None);
    assert_eq!(status, 404);
}

#[test]
fn a_silent_publisher_is_flagged_counted_and_posted_then_recovers() {
    if !require_tool("ffmpeg") {
        return;
    }
    let hook = HookServer::start(|_| (200, Duration::ZERO));
    let url = hook.url("unhealthy");
    let live = Live::ffmpeg_with("av.flv", |c| {
        c.health.publisher_silent_secs = 2;
        c.health.on_stream_unhealthy = url.clone();
    });
    let health = |live: &Live| -> Value {
        let res = http_get(
            &live.http_url("/api/streams/live/test"),
            Duration::from_secs(10),
        )
        .expect("GET the stream");
        let v: Value = serde_json::from_slice(&res.body).unwrap_or_default();
        v["health"].clone()
    };
    assert_eq!(health(&live)["healthy"], Value::Bool(true));
    // Freeze the publisher: its connection stays open, nothing arrives.
    let pid = match &live.publisher {
        gateway_tests::Publisher::Ffmpeg(f) => f.pid(),
        _ => unreachable!("an ffmpeg publisher"),
    };
    let signal = |sig: &str| {
        let ok = Command::new("kill")
            .args([sig, &pid.to_string()])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "kill {sig} {pid}");
    };
    signal("-STOP");
    let flagged = wait_until(Duration::from_secs(15), || {
        health(&live)["reasons"] == serde_json::json!(["publisher_silent"])
    });
    let posted = hook.wait_for(Duration::from_secs(10), |b| b["action"] == "unhealthy");
    let (_, text) = scrape(&live, None);
    signal("-CONT");
    assert!(flagged, "not flagged: {}", health(&live));
    let posted = posted.expect("on_stream_unhealthy was posted");
    assert_eq!(posted["app"], "live");
    assert_eq!(posted["stream"], "test");
    assert_eq!(posted["reasons"], serde_json::json!(["publisher_silent"]));
    assert_eq!(
        value(&text, &format!("gateway_stream_healthy{{{S}}}")),
        Some(0.0),
        "{text}"
    );
    let counted = format!(r#"gateway_stream_unhealthy_total{{{S},reason="publisher_silent"}}"#);
    assert_eq!(value(&text, &counted), Some(1.0), "{text}");
    let recovered = wait_until(Duration::from_secs(15), || {
        health(&live)["healthy"] == Value::Bool(true)
    });
    assert!(recovered, "never recovered: {}", health(&live));
    assert!(hook
        .wait_for(Duration::from_secs(10), |b| b["action"] == "healthy")
        .is_some());
}

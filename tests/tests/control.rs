//! The control API against real clients: `GET /api/clients` lists ffmpeg viewers over RTMP,
//! HTTP-FLV and RTSP beside the publisher, `DELETE /api/clients/{id}` ends one viewer while the
//! others keep playing, and `DELETE /api/streams/{app}/{name}` ends the publisher's ffmpeg.

use std::net::SocketAddr;
use std::time::Duration;

use gateway_tests::{http_request, require_tool, wait_until, Ffmpeg, Live, Publisher};
use serde_json::Value;

const TIMEOUT: Duration = Duration::from_secs(10);
const TOKEN: &str = "control-test-token";

/// `method path` with HTTP/1.0 and the API token; the status and the body.
fn request(addr: SocketAddr, method: &str, path: &str) -> (u16, String) {
    let auth = format!("Bearer {TOKEN}");
    http_request(addr, method, path, &[("Authorization", &auth)], TIMEOUT)
}

fn clients(addr: SocketAddr) -> Vec<Value> {
    let (status, body) = request(addr, "GET", "/api/clients?stream=live/test");
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).expect("JSON");
    v["clients"].as_array().cloned().unwrap_or_default()
}

fn viewer(clients: &[Value], protocol: &str) -> Option<Value> {
    clients
        .iter()
        .find(|c| c["role"] == "viewer" && c["protocol"] == protocol)
        .cloned()
}

#[test]
fn kicking_one_viewer_leaves_the_others_and_kicking_the_publisher_ends_it() {
    if !require_tool("ffmpeg") {
        return;
    }
    let mut live = Live::ffmpeg_with("av.flv", |c| c.auth.api_token = TOKEN.into());
    let http = live.gateway.http_addr();
    let rtsp = live.gateway.rtsp_addr().expect("RTSP is on by default");
    let play = |url: &str, pre: &[&str]| {
        let mut args: Vec<&str> = pre.to_vec();
        args.extend(["-i", url, "-f", "null", "-"]);
        Ffmpeg::spawn(&args)
    };
    let mut rtmp_viewer = play(&live.rtmp_url(), &[]);
    let mut flv_viewer = play(&live.http_url("/live/test.flv"), &[]);
    let rtsp_url = format!("rtsp://{rtsp}/live/test");
    let mut rtsp_viewer = play(&rtsp_url, &["-rtsp_transport", "tcp"]);

    let all_listed = wait_until(Duration::from_secs(30), || {
        let c = clients(http);
        ["rtmp", "http-flv", "rtsp"]
            .iter()
            .all(|p| viewer(&c, p).is_some_and(|v| v["bytes_sent"].as_u64() > Some(0)))
    });
    assert!(
        all_listed,
        "not every viewer was listed with bytes sent: {:#?}\nRTMP: {}\nHTTP-FLV: {}\nRTSP: {}",
        clients(http),
        rtmp_viewer.log(),
        flv_viewer.log(),
        rtsp_viewer.log()
    );
    let listed = clients(http);
    let publisher = listed
        .iter()
        .find(|c| c["role"] == "publisher")
        .unwrap_or_else(|| panic!("no publisher listed: {listed:#?}"));
    assert_eq!(publisher["protocol"], "rtmp");
    assert!(
        publisher["bytes_received"].as_u64() > Some(0),
        "{publisher}"
    );
    assert!(publisher["peer"]
        .as_str()
        .is_some_and(|p| p.starts_with("127.0.0.1:")));

    // Kick the HTTP-FLV viewer: its ffmpeg sees the body end and exits; the others play on.
    let flv = viewer(&listed, "http-flv").expect("listed above");
    let id = flv["id"].as_str().expect("an id");
    let (status, body) = request(http, "DELETE", &format!("/api/clients/{id}"));
    assert_eq!(status, 204, "{body}");
    assert!(
        wait_until(Duration::from_secs(20), || !flv_viewer.is_running()),
        "the kicked HTTP-FLV viewer kept running"
    );
    assert!(
        wait_until(TIMEOUT, || viewer(&clients(http), "http-flv").is_none()),
        "the kicked viewer is still listed"
    );
    // The same id again: gone.
    let (status, body) = request(http, "DELETE", &format!("/api/clients/{id}"));
    assert_eq!(status, 404, "{body}");
    assert_eq!(body, r#"{"error":"client not found"}"#);

    // The other two still receive media after the kick.
    let sent = |p: &str| viewer(&clients(http), p).and_then(|v| v["bytes_sent"].as_u64());
    let (rtmp_before, rtsp_before) = (sent("rtmp"), sent("rtsp"));
    assert!(
        wait_until(Duration::from_secs(20), || {
            sent("rtmp") > rtmp_before && sent("rtsp") > rtsp_before
        }),
        "the other viewers stopped receiving after one was kicked"
    );
    rtmp_viewer.assert_running();
    rtsp_viewer.assert_running();

    // Kick the publisher: its ffmpeg loses the connection and exits.
    let (status, body) = request(http, "DELETE", "/api/streams/live/test");
    assert_eq!(status, 204, "{body}");
    let Publisher::Ffmpeg(publisher) = &mut live.publisher else {
        unreachable!("Live::ffmpeg_with publishes with ffmpeg")
    };
    assert!(
        wait_until(Duration::from_secs(20), || !publisher.is_running()),
        "the kicked publisher kept running"
    );
    assert!(
        wait_until(TIMEOUT, || clients(http)
            .iter()
            .all(|c| c["role"] != "publisher")),
        "the kicked publisher is still listed"
    );
    let (status, body) = request(http, "DELETE", "/api/streams/live/test");
    assert_eq!(status, 404, "{body}");
    assert_eq!(body, r#"{"error":"stream has no publisher"}"#);
}

//! Real clients against the MMS shell: ffprobe and ffmpeg over `mmsh://` and `mmst://`.

mod common;

use std::time::Duration;

use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// ffprobe's view of the streams: one map of field name to value per stream.
async fn probe(url: &str) -> Vec<std::collections::HashMap<String, String>> {
    let entries = "stream=codec_name,width,height,sample_rate,r_frame_rate";
    let args = [
        "-v",
        "error",
        "-show_entries",
        entries,
        "-of",
        "compact=p=0",
        url,
    ];
    let (ok, out, err) = run_tool("ffprobe", &args, Duration::from_secs(40)).await;
    assert!(ok, "ffprobe {url} failed: {err}");
    out.lines()
        .map(|l| {
            l.split('|')
                .filter_map(|kv| kv.split_once('='))
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect()
        })
        .collect()
}

fn check_probe(url: &str, streams: &[std::collections::HashMap<String, String>]) {
    let find = |codec: &str| {
        streams
            .iter()
            .find(|s| s.get("codec_name").map(String::as_str) == Some(codec))
            .unwrap_or_else(|| panic!("{url}: no {codec} in {streams:?}"))
    };
    let video = find("h264");
    let dims = (video["width"].as_str(), video["height"].as_str());
    assert_eq!(
        dims,
        (WIDTH.to_string().as_str(), HEIGHT.to_string().as_str()),
        "{url}: dimensions"
    );
    assert_eq!(
        video["r_frame_rate"],
        format!("{FPS}/1"),
        "{url}: frame rate"
    );
    assert_eq!(
        find("aac")["sample_rate"],
        SAMPLE_RATE.to_string(),
        "{url}: sample rate"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ffprobe_reports_h264_and_aac_over_mmsh_and_mmst() {
    if !have_tool("ffprobe").await || !have_tool("ffmpeg").await {
        return;
    }
    let h = start().await;
    for url in [
        format!("mmsh://{}/LiveEvents", h.http),
        format!("mmst://{}/LiveEvents", h.mmst),
        format!("mmsh://{}/live/test", h.http),
    ] {
        let streams = probe(&url).await;
        check_probe(&url, &streams);
    }
}

/// Decodes 10 s and returns the number of video frames; asserts ffmpeg printed no error.
async fn decode_ten_seconds(url: &str) -> u64 {
    let args = [
        "-hide_banner",
        "-nostats",
        "-v",
        "error",
        "-i",
        url,
        "-t",
        "10",
        "-f",
        "null",
        "-",
        "-progress",
        "pipe:1",
    ];
    let (ok, out, err) = run_tool("ffmpeg", &args, Duration::from_secs(60)).await;
    assert!(ok, "ffmpeg {url} failed: {err}");
    assert!(
        err.trim().is_empty(),
        "ffmpeg {url} reported errors:\n{err}"
    );
    let frames = out
        .lines()
        .rev()
        .filter_map(|l| l.strip_prefix("frame="))
        .find_map(|n| n.trim().parse().ok());
    println!("{url}: {frames:?} video frames decoded in 10 s");
    frames.unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ffmpeg_decodes_ten_seconds_without_errors_while_others_misbehave() {
    if !have_tool("ffmpeg").await {
        return;
    }
    let h = start().await;
    let mmsh = tokio::spawn(decode_ten_seconds_owned(format!(
        "mmsh://{}/LiveEvents",
        h.http
    )));
    let mmst = tokio::spawn(decode_ten_seconds_owned(format!(
        "mmst://{}/LiveEvents",
        h.mmst
    )));
    tokio::time::sleep(Duration::from_secs(2)).await;
    // Meanwhile: viewers that leave mid-stream, a malformed MMST command, unknown names.
    mmsh_viewer_disconnects_mid_stream(&h).await;
    mmst_viewer_is_killed_mid_stream(&h).await;
    malformed_mmst_command_is_closed(&h).await;
    unknown_publishing_point_is_refused(&h).await;
    for (name, task) in [("mmsh", mmsh), ("mmst", mmst)] {
        let frames = task.await.expect("decode task");
        let expect = 10 * u64::from(FPS);
        assert!(
            frames.abs_diff(expect) <= 10,
            "{name}: {frames} frames in 10 s, expected about {expect}"
        );
    }
}

async fn decode_ten_seconds_owned(url: String) -> u64 {
    decode_ten_seconds(&url).await
}

fn play_request(path: &str, host: std::net::SocketAddr) -> String {
    format!(
        "GET {path} HTTP/1.0\r\nAccept: */*\r\nUser-Agent: NSPlayer/4.1.0.3856\r\nHost: {host}\r\n\
         Pragma: no-cache,rate=1.000000,request-context=2\r\nPragma: xPlayStrm=1\r\n\
         Pragma: xClientGUID={{c77e7400-738a-11d2-9add-0020af0a3278}}\r\n\
         Pragma: stream-switch-count=2\r\nPragma: stream-switch-entry=ffff:1:0 ffff:2:0\r\n\r\n"
    )
}

async fn mmsh_viewer_disconnects_mid_stream(h: &Harness) {
    let mut s = TcpStream::connect(h.http).await.expect("connect");
    s.write_all(play_request("/LiveEvents", h.http).as_bytes())
        .await
        .expect("send");
    let mut buf = vec![0u8; 64 * 1024];
    let mut first = Vec::new();
    while first.len() < 20_000 {
        let n = s.read(&mut buf).await.expect("read");
        assert!(n > 0, "stream ended early");
        first.extend_from_slice(&buf[..n]);
    }
    let head = String::from_utf8_lossy(&first[..300]).into_owned();
    assert!(head.starts_with("HTTP/1.0 200"), "play response: {head}");
    assert!(
        head.contains("application/x-mms-framed"),
        "play content type: {head}"
    );
    drop(s);
}

async fn mmst_viewer_is_killed_mid_stream(h: &Harness) {
    let url = format!("mmst://{}/LiveEvents", h.mmst);
    let mut child = tokio::process::Command::new("ffmpeg")
        .args(["-v", "error", "-i", &url, "-f", "null", "-"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("ffmpeg spawns");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        child.try_wait().expect("status").is_none(),
        "the MMST viewer was still playing"
    );
    child.kill().await.expect("kill our ffmpeg");
}

async fn malformed_mmst_command_is_closed(h: &Harness) {
    let mut s = TcpStream::connect(h.mmst).await.expect("connect");
    let mut garbage = vec![1u8, 0, 0, 0, 0xCE, 0xFA, 0x0B, 0xB0];
    garbage.extend_from_slice(&0x7fff_fff0u32.to_le_bytes());
    garbage.extend_from_slice(b"MMS ");
    s.write_all(&garbage).await.expect("send");
    let mut buf = [0u8; 64];
    let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
        .await
        .expect("server closes promptly");
    assert!(
        matches!(n, Ok(0) | Err(_)),
        "connection closed without an answer: {n:?}"
    );
}

async fn unknown_publishing_point_is_refused(h: &Harness) {
    let mut s = TcpStream::connect(h.http).await.expect("connect");
    s.write_all(play_request("/Nowhere", h.http).as_bytes())
        .await
        .expect("send");
    let mut resp = String::new();
    s.read_to_string(&mut resp).await.expect("read");
    assert!(
        resp.starts_with("HTTP/1.0 404"),
        "MMSH unknown name: {resp}"
    );
    let (ok, _, err) = run_tool(
        "ffprobe",
        &["-v", "error", &format!("mmst://{}/Nowhere", h.mmst)],
        Duration::from_secs(20),
    )
    .await;
    assert!(!ok, "ffprobe must fail on an unknown publishing point");
    assert!(
        err.contains("0xc00d001a"),
        "MMST refusal names NS_E_FILE_NOT_FOUND: {err}"
    );
}

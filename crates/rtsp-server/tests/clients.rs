//! Real third-party clients against the server: ffprobe and ffmpeg over TCP and UDP, and
//! GStreamer's rtspsrc over TCP and UDP for 10 s each.

mod common;

use std::process::Stdio;
use std::time::Duration;

use tokio::process::Command;

async fn ffprobe(transport: &str) {
    if !common::have_tool("ffprobe") {
        return;
    }
    let Some(h) = common::start(common::options()).await else {
        return;
    };
    let (stdout, _) = common::ffprobe_streams(
        &h.url(),
        transport,
        "codec_name,width,height,sample_rate,channels",
    )
    .await;
    assert!(
        stdout.contains("stream|codec_name=h264|width=640|height=360"),
        "ffprobe saw: {stdout}"
    );
    assert!(
        stdout.contains("stream|codec_name=aac|sample_rate=44100|channels=2"),
        "ffprobe saw: {stdout}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ffprobe_over_tcp_reports_codecs() {
    ffprobe("tcp").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ffprobe_over_udp_reports_codecs() {
    ffprobe("udp").await;
}

/// `ffmpeg -v error ... -t 10 -f null -` must decode 10 s and print nothing.
async fn ffmpeg_decodes_silently(transport: &str) {
    if !common::have_tool("ffmpeg") {
        return;
    }
    let Some(h) = common::start(common::options()).await else {
        return;
    };
    let stderr = common::ffmpeg_decode(&h.url(), transport, 10).await;
    assert_eq!(stderr, "", "ffmpeg reported errors");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ffmpeg_over_udp_decodes_without_errors() {
    ffmpeg_decodes_silently("udp").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ffmpeg_over_tcp_decodes_without_errors() {
    ffmpeg_decodes_silently("tcp").await;
}

/// rtspsrc feeds one fakesink per track for 10 s; both must keep receiving and nothing may fail.
async fn gstreamer_plays(protocols: &str) {
    if !common::have_tool("gst-launch-1.0") {
        return;
    }
    let Some(h) = common::start(common::options()).await else {
        return;
    };
    let mut child = Command::new("gst-launch-1.0")
        .arg("-v")
        .arg("rtspsrc")
        .arg(format!("location={}", h.url()))
        .arg(format!("protocols={protocols}"))
        .args([
            "name=s",
            "s.",
            "!",
            "queue",
            "!",
            "fakesink",
            "name=sink0",
            "silent=false",
        ])
        .args([
            "s.",
            "!",
            "queue",
            "!",
            "fakesink",
            "name=sink1",
            "silent=false",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("gst-launch-1.0 runs");
    tokio::time::sleep(Duration::from_secs(10)).await;
    let early_exit = child.try_wait().expect("child status");
    // SIGINT (not SIGKILL) so that gst-launch-1.0 flushes its block-buffered stdout on exit.
    let pid = child.id().expect("child is running").to_string();
    Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .await
        .expect("kill runs");
    let out = tokio::time::timeout(Duration::from_secs(10), child.wait_with_output())
        .await
        .expect("gst-launch-1.0 stops on SIGINT")
        .expect("output");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        early_exit.is_none(),
        "gst-launch-1.0 exited early: {stderr}\n{}",
        &stdout[stdout.len().saturating_sub(2000)..]
    );
    assert!(
        !stdout.contains("ERROR") && !stderr.contains("ERROR"),
        "GStreamer reported an error: {stderr}"
    );
    for sink in ["sink0", "sink1"] {
        let buffers = stdout
            .lines()
            .filter(|l| l.contains(sink) && l.contains("chain"))
            .count();
        // 10 s of 25 fps video is 250 frames of several packets; 10 s of AAC is 430 packets.
        println!("{protocols}: {sink} received {buffers} buffers");
        assert!(buffers >= 250, "{sink} received only {buffers} buffers");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gstreamer_over_tcp_plays_ten_seconds() {
    gstreamer_plays("tcp").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gstreamer_over_udp_plays_ten_seconds() {
    gstreamer_plays("udp").await;
}

/// An H.264 + MP3 stream: the MP3 track is sent as MPA (RFC 2250) and decodes cleanly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mp3_audio_is_served_as_mpa() {
    if !common::have_tool("ffprobe") {
        return;
    }
    let Some(h) = common::start_with(common::options(), common::Audio::Mp3).await else {
        return;
    };
    let (stdout, stderr) = common::ffprobe_streams(&h.url(), "tcp", "codec_name,sample_rate").await;
    assert!(
        stdout.contains("stream|codec_name=mp3|sample_rate=44100"),
        "ffprobe saw: {stdout} {stderr}"
    );
    let stderr = common::ffmpeg_decode(&h.url(), "udp", 5).await;
    assert_eq!(stderr, "", "ffmpeg reported errors");
}

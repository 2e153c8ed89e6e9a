//! Third-party clients other than ffmpeg: rtmpdump (librtmp, digest
//! handshake), GStreamer `rtmp2src` / `rtmpsrc` playing and `rtmp2sink`
//! publishing.

mod support;

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use support::*;
use tokio::process::{Child, Command};

fn waiting_opts() -> rtmp_server::Options {
    rtmp_server::Options {
        wait_for_publisher: Duration::from_secs(20),
        ..Default::default()
    }
}

fn spawn(program: &str, args: &[&str]) -> Child {
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {program}: {e}"))
}

/// Waits until `n` RTMP viewers wait on `key`.
async fn wait_viewers(bus: &bus::Bus, key: &str, n: u64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while bus
        .stream(key)
        .map_or(0, |s| s.stats().viewers_of(bus::Protocol::Rtmp))
        < n
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "player did not connect to {key}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Starts `player`, publishes the fixture with ffmpeg, stops the player once
/// the publisher is done (if it did not stop itself) and probes its output.
async fn play_whole_stream(
    name: &str,
    player: impl FnOnce(&str) -> Child,
    out: &Path,
) -> (Probe, Probe) {
    let tmp = tempfile::tempdir().expect("temp dir");
    let fixture = fixture(tmp.path());
    let want = probe(fixture.to_str().expect("utf-8 path")).await;
    let server = start_server(waiting_opts()).await;
    let key = format!("live/{name}");
    let mut child = player(&url(server.addr, &key));
    wait_viewers(&server.bus, &key, 1).await;
    let publisher = ffmpeg_publish(&fixture, server.addr, &key);
    let status = wait_child(publisher, Duration::from_secs(40), "ffmpeg publisher").await;
    assert!(status.success(), "publisher failed: {status}");
    // Players that ignore UnpublishNotify are interrupted (gst-launch -e
    // then sends EOS, so sinks flush) and killed if that does not work.
    if tokio::time::timeout(Duration::from_secs(3), child.wait())
        .await
        .is_err()
    {
        if let Some(pid) = child.id() {
            let _ = Command::new("kill")
                .args(["-INT", &pid.to_string()])
                .status()
                .await;
        }
        if tokio::time::timeout(Duration::from_secs(3), child.wait())
            .await
            .is_err()
        {
            let _ = child.kill().await;
        }
    }
    (want, probe(out.to_str().expect("utf-8 path")).await)
}

fn assert_same_media(name: &str, want: &Probe, got: &Probe) {
    assert_eq!(
        (
            &got.video_codec[..],
            got.width,
            got.height,
            &got.audio_codec[..],
            got.sample_rate
        ),
        ("h264", 640, 360, "aac", 44100),
        "{name}"
    );
    assert_eq!(
        got.video_packets, want.video_packets,
        "{name}: video frame count"
    );
    assert_eq!(
        got.audio_packets, want.audio_packets,
        "{name}: audio frame count"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rtmpdump_plays_the_whole_stream() {
    if !have_tool("ffmpeg", "-version") || !have_tool("rtmpdump", "--help") {
        return;
    }
    let tmp = tempfile::tempdir().expect("temp dir");
    let out = tmp.path().join("rtmpdump.flv");
    let out_s = out.to_str().expect("utf-8 path").to_owned();
    let (want, got) = play_whole_stream(
        "rtmpdump",
        |u| spawn("rtmpdump", &["-q", "--live", "-r", u, "-o", &out_s]),
        &out,
    )
    .await;
    assert_same_media("rtmpdump", &want, &got);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gstreamer_rtmp2src_plays_the_whole_stream() {
    if !have_tool("ffmpeg", "-version") || !have_tool("gst-launch-1.0", "--version") {
        return;
    }
    let tmp = tempfile::tempdir().expect("temp dir");
    let out = tmp.path().join("rtmp2src.flv");
    let sink = format!("location={}", out.to_str().expect("utf-8 path"));
    let player = |u: &str| {
        spawn(
            "gst-launch-1.0",
            &[
                "-q",
                "-e",
                "rtmp2src",
                &format!("location={u}"),
                "!",
                "filesink",
                "buffer-mode=unbuffered",
                &sink,
            ],
        )
    };
    let (want, mut got) = play_whole_stream("rtmp2src", player, &out).await;
    // rtmp2src 1.22 drops the stream's last tag in about half the runs when
    // StreamEOF follows it closely (observed: the final AAC frame at 10.065 s
    // is missing from its output while ffmpeg, rtmpdump and rtmpsrc receive
    // it from the same server). Allow exactly that one audio frame.
    if got.audio_packets + 1 == want.audio_packets {
        got.audio_packets += 1;
    }
    assert_same_media("rtmp2src", &want, &got);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gstreamer_rtmpsrc_plays_the_whole_stream() {
    if !have_tool("ffmpeg", "-version") || !have_tool("gst-launch-1.0", "--version") {
        return;
    }
    let tmp = tempfile::tempdir().expect("temp dir");
    let out = tmp.path().join("rtmpsrc.flv");
    let sink = format!("location={}", out.to_str().expect("utf-8 path"));
    let player = |u: &str| {
        let loc = format!("location={u} live=1");
        spawn(
            "gst-launch-1.0",
            &[
                "-q",
                "-e",
                "rtmpsrc",
                &loc,
                "!",
                "filesink",
                "buffer-mode=unbuffered",
                &sink,
            ],
        )
    };
    let (want, got) = play_whole_stream("rtmpsrc", player, &out).await;
    assert_same_media("rtmpsrc", &want, &got);
}

/// GStreamer's `rtmp2sink` publishes; an ffmpeg player records every frame.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gstreamer_rtmp2sink_publishes() {
    if !have_tool("ffmpeg", "-version") || !have_tool("gst-launch-1.0", "--version") {
        return;
    }
    let tmp = tempfile::tempdir().expect("temp dir");
    let fixture = fixture(tmp.path());
    let want = probe(fixture.to_str().expect("utf-8 path")).await;
    let server = start_server(waiting_opts()).await;
    let out = tmp.path().join("from-gst.flv");
    let recorder = ffmpeg_record(server.addr, "live/gst", &out);
    wait_viewers(&server.bus, "live/gst", 1).await;
    let src = format!("location={}", fixture.to_str().expect("utf-8 path"));
    let sink = format!("location={}", url(server.addr, "live/gst"));
    let pipeline = [
        "-q",
        "filesrc",
        &src,
        "!",
        "flvdemux",
        "name=d",
        "d.video",
        "!",
        "queue",
        "!",
        "h264parse",
        "!",
        "flvmux",
        "name=m",
        "streamable=true",
        "!",
        "rtmp2sink",
        &sink,
        "d.audio",
        "!",
        "queue",
        "!",
        "aacparse",
        "!",
        "m.",
    ];
    let publisher = spawn("gst-launch-1.0", &pipeline);
    let status = wait_child(publisher, Duration::from_secs(40), "gst publisher").await;
    assert!(status.success(), "gst publisher failed: {status}");
    let status = wait_child(recorder, Duration::from_secs(20), "ffmpeg recorder").await;
    assert!(status.success(), "recorder failed: {status}");
    let got = probe(out.to_str().expect("utf-8 path")).await;
    assert_same_media("rtmp2sink", &want, &got);
}

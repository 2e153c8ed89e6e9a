//! Real third-party clients against the server: ffprobe and ffmpeg over TCP and UDP, and
//! GStreamer's rtspsrc over TCP and UDP for at least 10 s of media each.

mod common;

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
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

/// With TCP write batching on, ffmpeg still decodes 10 s over interleaved TCP without an error
/// (a lost, repeated or reordered packet would break an H.264 or AAC frame and show as an error).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ffmpeg_over_tcp_with_write_batching_decodes_without_errors() {
    if !common::have_tool("ffmpeg") {
        return;
    }
    let opts = rtsp_server::Options {
        tcp_write_delay: Duration::from_millis(100),
        ..common::options()
    };
    let Some(h) = common::start(opts).await else {
        return;
    };
    let stderr = common::ffmpeg_decode(&h.url(), "tcp", 10).await;
    assert_eq!(stderr, "", "ffmpeg reported errors");
}

/// rtspsrc feeds one fakesink per track (RTP packets) until each has received at least 430:
/// 10 s of AAC is 430 packets, and 10 s of the 25 fps video is 250 frames of several packets
/// each, so that is at least 10 s of media; both must keep receiving and nothing may fail. The buffer count, not the wall
/// clock, decides when it has played enough, so a slow start on a loaded machine (GStreamer
/// builds its plugin registry on first use) does not fail the test.
async fn gstreamer_plays(protocols: &str) {
    if !common::have_tool("gst-launch-1.0") || !common::have_tool("stdbuf") {
        return;
    }
    let Some(h) = common::start(common::options()).await else {
        return;
    };
    // stdbuf -oL: gst-launch-1.0's stdout is block-buffered into a pipe; line buffering lets the
    // test count buffers as they arrive.
    let mut child = Command::new("stdbuf")
        .args(["-oL", "gst-launch-1.0", "-v", "rtspsrc"])
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
    let stdout = child.stdout.take().expect("piped stdout");
    let mut stderr = child.stderr.take().expect("piped stderr");
    let stderr_task = tokio::spawn(async move {
        let mut buf = Vec::new();
        let _ = stderr.read_to_end(&mut buf).await;
        String::from_utf8_lossy(&buf).into_owned()
    });
    const ENOUGH: usize = 430;
    let mut counts = [0usize; 2];
    let mut errors = Vec::new();
    let mut tail = std::collections::VecDeque::new();
    let mut lines = BufReader::new(stdout).lines();
    let counted = tokio::time::timeout(Duration::from_secs(60), async {
        while let Ok(Some(line)) = lines.next_line().await {
            if line.contains("ERROR") {
                errors.push(line.clone());
            }
            if line.contains("chain") {
                for (i, sink) in ["sink0", "sink1"].iter().enumerate() {
                    if line.contains(sink) {
                        counts[i] += 1;
                    }
                }
            }
            tail.push_back(line);
            if tail.len() > 20 {
                tail.pop_front();
            }
            if counts.iter().all(|&c| c >= ENOUGH) {
                return true;
            }
        }
        false
    })
    .await;
    // Keep draining stdout, or gst-launch-1.0 would block on a full pipe and never shut down.
    let drain = tokio::spawn(async move {
        let mut errors = Vec::new();
        while let Ok(Some(line)) = lines.next_line().await {
            if line.contains("ERROR") {
                errors.push(line);
            }
        }
        errors
    });
    let early_exit = child.try_wait().expect("child status");
    if early_exit.is_none() {
        // SIGINT so that gst-launch-1.0 shuts its pipeline down cleanly.
        let pid = child.id().expect("child is running").to_string();
        Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .await
            .expect("kill runs");
    }
    tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .expect("gst-launch-1.0 stops on SIGINT")
        .expect("exit status");
    let stderr = stderr_task.await.expect("stderr reader");
    errors.extend(drain.await.expect("stdout reader"));
    let tail: Vec<String> = tail.into();
    println!("{protocols}: sink0/sink1 received {counts:?} buffers");
    assert!(
        matches!(counted, Ok(true)),
        "gst-launch-1.0 stopped or stalled before {ENOUGH} buffers per sink \
         (got {counts:?}, exited early: {early_exit:?}): {stderr}\n{}",
        tail.join("\n")
    );
    // On SIGINT rtspsrc sends PAUSE and then, from another thread, flushes its own connection
    // to send TEARDOWN. When that flush lands while the PAUSE reply is being read, GStreamer
    // reports the PAUSE as failed ("Received end-of-file") although the server answered it and
    // then saw the TEARDOWN. Only that error, and only after the interrupt, is its own shutdown.
    let stderr_errors: Vec<&str> = stderr
        .split("ERROR: ")
        .skip(1)
        .filter(|block| !is_own_pause_interrupted(block))
        .collect();
    assert!(
        errors.is_empty() && stderr_errors.is_empty(),
        "GStreamer reported an error: {errors:?} {stderr}"
    );
}

/// Whether a GStreamer error block is rtspsrc's PAUSE cut short by its own shutdown.
fn is_own_pause_interrupted(block: &str) -> bool {
    block.contains("Could not send message")
        && (block.contains("gst_rtspsrc_pause ()") || block.contains("gst_rtspsrc_try_send ()"))
        && !block.contains("gst_rtspsrc_play")
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

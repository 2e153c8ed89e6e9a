//! H.264 with B-frames (the fixtures are Main profile, up to 2 reordered frames) through the
//! egresses that carry presentation times: RTP timestamps are PTS (RFC 6184 §5.1) and ASF payloads
//! carry PTS as their presentation time with the decode time in the timing extension. ffmpeg
//! reading them with `-c copy` into MP4 checks every packet's DTS against the previous one; a
//! DTS that steps back is reported as "Non-monotonous DTS" (fftools) or "non monotonically
//! increasing dts" (libavformat). Sending DTS as RTP time, for example, makes ffmpeg derive
//! DTS from reordered times and report exactly that; so does an ASF stream without the timing
//! extension.
//!
//! What ffmpeg still prints, and why it is not ours: neither RTP (RFC 3550 §5.1 has one
//! timestamp) nor the ASF timing extension gives ffmpeg a DTS, so its demuxer leaves DTS unset and
//! libavformat derives it by reordering PTS over the stream's B-frame delay. The first packets of
//! a session, before that delay is filled, have no DTS, and the MP4 muxer warns once "Timestamps
//! are unset in a packet for stream 0". That line is allowed here; DTS stepping back is not.

use std::process::Command;
use std::time::Duration;

use gateway_tests::{require_tool, run_with_timeout, Live, TempDir};

/// Seconds each reader copies.
const READ_SECS: &str = "8";
/// How long one reader may take (start-up on two shared cores included).
const READ_TIMEOUT: Duration = Duration::from_secs(40);

/// Copies `url` into an MP4 with ffmpeg and returns its stderr (warnings and errors).
fn copy_to_mp4(input_args: &[&str], url: &str) -> String {
    let dir = TempDir::new("bframes");
    let out = dir.join("out.mp4");
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-hide_banner", "-nostdin", "-loglevel", "warning"])
        .args(input_args)
        .args(["-i", url, "-t", READ_SECS, "-c", "copy", "-f", "mp4", "-y"])
        .arg(&out);
    let run = run_with_timeout(cmd, READ_TIMEOUT);
    let stderr = String::from_utf8_lossy(&run.stderr).into_owned();
    assert!(
        run.status.success(),
        "ffmpeg copying {url} failed ({}):\n{stderr}",
        run.status
    );
    assert!(out.is_file(), "ffmpeg wrote nothing from {url}:\n{stderr}");
    stderr
}

fn assert_monotonic_dts(what: &str, stderr: &str) {
    let bad: Vec<&str> = stderr
        .lines()
        .filter(|l| l.to_ascii_lowercase().contains("monoton"))
        .collect();
    assert!(
        bad.is_empty(),
        "{what}: ffmpeg saw decode times step back ({} lines), first: {:?}\nfull stderr:\n{stderr}",
        bad.len(),
        bad.first()
    );
}

fn rtsp_has_monotonic_dts(transport: &str) {
    if !require_tool("ffmpeg") {
        return;
    }
    let mut live = Live::ffmpeg("av.flv");
    let addr = live
        .gateway
        .rtsp_addr()
        .expect("RTSP is enabled by default");
    let url = format!("rtsp://{addr}/{}", Live::KEY);
    let stderr = copy_to_mp4(&["-rtsp_transport", transport], &url);
    live.assert_publishing();
    assert_monotonic_dts(&format!("rtsp/{transport}"), &stderr);
}

#[test]
fn rtsp_over_tcp_of_a_b_frame_stream_has_monotonic_dts() {
    rtsp_has_monotonic_dts("tcp");
}

#[test]
fn rtsp_over_udp_of_a_b_frame_stream_has_monotonic_dts() {
    rtsp_has_monotonic_dts("udp");
}

#[test]
fn mmsh_of_a_b_frame_stream_has_monotonic_dts() {
    if !require_tool("ffmpeg") {
        return;
    }
    let mut live = Live::ffmpeg("av.flv");
    let url = format!("mmsh://{}/{}", live.gateway.http_addr(), Live::KEY);
    let stderr = copy_to_mp4(&[], &url);
    live.assert_publishing();
    assert_monotonic_dts("mmsh", &stderr);
}

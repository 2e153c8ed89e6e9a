//! H.264 with B-frames (the fixtures are Main profile, up to 2 reordered frames) through the
//! egresses that carry presentation times: RTP timestamps are PTS (RFC 6184 §5.1) and ASF payloads
//! carry PTS in the DVR-MS timing extension with the decode time in the replicated data.
//!
//! Two checks per egress. ffprobe's packets must keep the reordering (PTS steps back somewhere,
//! as the encoder's did) while the DTS ffmpeg derives only grows and never passes PTS; sending
//! DTS as RTP time, or ASF without the timing extension, breaks this. And ffmpeg copying into MP4
//! (whose muxer checks each DTS against the previous one) must not report "Non-monotonous DTS"
//! (fftools) or "non monotonically increasing dts" (libavformat).
//!
//! What ffmpeg prints regardless, and why it is not ours: RTP has one timestamp (RFC 3550 §5.1),
//! so ffmpeg's demuxer sets PTS only and libavformat derives DTS by reordering PTS; and its H.264
//! parser hands out the first frame of an RTP session with no timestamp at all. ffmpeg sending
//! RTP to itself (`ffmpeg -re -i base.flv -c copy -f rtp rtp://127.0.0.1:45000`, read with
//! `ffmpeg -i s.sdp -c copy -f mp4`) shows the same first packet without PTS and DTS, and for a
//! stream without B-frames the same "Timestamps are unset in a packet" warning followed by one
//! "Non-monotonous DTS ... previous: 0, current: 0". Those first-packet lines are allowed here;
//! any other DTS stepping back is not.

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
    // ffmpeg's own first-packet artefact over RTP (see the crate doc): the packet without
    // timestamps is given DTS 0, and so is the next one once the start time is subtracted.
    let first_packet = |l: &str| l.contains("previous: 0, current: 0;");
    let bad: Vec<&str> = stderr
        .lines()
        .filter(|l| l.to_ascii_lowercase().contains("monoton") && !first_packet(l))
        .collect();
    assert!(
        bad.is_empty(),
        "{what}: ffmpeg saw decode times step back ({} lines), first: {:?}\nfull stderr:\n{stderr}",
        bad.len(),
        bad.first()
    );
}

/// ffprobe's (PTS, DTS) of the first seconds of video packets of `url`, `None` for N/A.
fn probe_video_times(input_args: &[&str], url: &str) -> Vec<(Option<i64>, Option<i64>)> {
    let mut cmd = Command::new("ffprobe");
    cmd.args(["-v", "error"])
        .args(input_args)
        .args(["-select_streams", "v:0", "-show_entries", "packet=pts,dts"])
        .args(["-of", "csv=p=0", "-read_intervals", "%+6", url]);
    let run = run_with_timeout(cmd, READ_TIMEOUT);
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "ffprobe of {url} failed ({}):\n{}",
        run.status,
        String::from_utf8_lossy(&run.stderr)
    );
    stdout
        .lines()
        .filter_map(|l| {
            let (pts, dts) = l.trim().trim_end_matches(',').split_once(',')?;
            Some((pts.parse().ok(), dts.parse().ok()))
        })
        .collect()
}

/// The reordering survives (PTS steps back somewhere) and the DTS ffmpeg derives only grows and
/// never passes PTS.
fn assert_reordered_times(what: &str, times: &[(Option<i64>, Option<i64>)]) {
    assert!(
        times.len() >= 50,
        "{what}: only {} video packets",
        times.len()
    );
    let pts: Vec<i64> = times.iter().filter_map(|t| t.0).collect();
    assert!(
        pts.windows(2).any(|w| w[1] < w[0]),
        "{what}: presentation times never step back, so B-frames lost their order: {pts:?}"
    );
    let dts: Vec<i64> = times.iter().filter_map(|t| t.1).collect();
    assert!(
        dts.windows(2).all(|w| w[1] > w[0]),
        "{what}: decode times are not increasing: {dts:?}"
    );
    for (p, d) in times.iter().filter_map(|t| Some((t.0?, t.1?))) {
        assert!(
            p >= d,
            "{what}: a packet presented (PTS {p}) before it is decoded (DTS {d})"
        );
    }
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
    let args = ["-rtsp_transport", transport];
    let times = probe_video_times(&args, &url);
    let stderr = copy_to_mp4(&args, &url);
    live.assert_publishing();
    let what = format!("rtsp/{transport}");
    assert_reordered_times(&what, &times);
    assert_monotonic_dts(&what, &stderr);
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
    let times = probe_video_times(&[], &url);
    let stderr = copy_to_mp4(&[], &url);
    live.assert_publishing();
    assert_reordered_times("mmsh", &times);
    assert_monotonic_dts("mmsh", &stderr);
}

//! HLS interop: ffmpeg publishes over RTMP into the gateway, real clients play
//! `http://host/live/test/index.m3u8`. Each cell asserts the codecs, picture size and at least
//! [`CELL_SECS`] seconds decoded without errors.

use std::time::Duration;

use gateway_tests::{
    assert_media, browser_play, ffmpeg_record, ffprobe_decode, gst_timeout, require_browser_check,
    require_gst_player, require_tool, vlc_record, Expect, Gst, Live, TempDir, CELL_SECS, PLAY_SECS,
    RECORD_SECS,
};

/// The first segment needs a whole GOP (2 s in the fixtures) after the muxer starts.
const FIRST_SEGMENT_TIMEOUT: Duration = Duration::from_secs(20);

fn ffprobe_plays(name: &str) {
    if !require_tool("ffmpeg") || !require_tool("ffprobe") {
        return;
    }
    let mut live = Live::ffmpeg(name);
    let url = live.wait_hls(1, FIRST_SEGMENT_TIMEOUT);
    let report = ffprobe_decode(&url, PLAY_SECS);
    live.assert_publishing();
    let what = format!("ffprobe hls play of {name}");
    assert_media(&what, &report, &Expect::for_fixture(name, CELL_SECS));
}

#[test]
fn ffprobe_plays_h264_aac() {
    ffprobe_plays("av.flv");
}

#[test]
fn ffprobe_plays_h264_only() {
    ffprobe_plays("video-only.flv");
}

#[test]
fn ffprobe_plays_aac_only() {
    ffprobe_plays("audio-only.flv");
}

#[test]
fn ffmpeg_records_h264_aac() {
    if !require_tool("ffmpeg") || !require_tool("ffprobe") {
        return;
    }
    let mut live = Live::ffmpeg("av.flv");
    let url = live.wait_hls(1, FIRST_SEGMENT_TIMEOUT);
    let dir = TempDir::new("ffmpeg-hls");
    let out = dir.join("rec.mkv");
    let stderr = ffmpeg_record(&url, RECORD_SECS, &out);
    live.assert_publishing();
    let mut report = ffprobe_decode(&out.to_string_lossy(), PLAY_SECS);
    report.errors.extend(stderr.lines().map(str::to_owned));
    assert_media("ffmpeg hls record", &report, &Expect::av(CELL_SECS));
}

#[test]
fn gstreamer_hlsdemux_plays_h264_aac() {
    let expect = Expect::av(CELL_SECS);
    let elements = ["souphttpsrc", "hlsdemux", "tsdemux"];
    if !require_tool("ffmpeg") || !require_gst_player(&expect, &elements) {
        return;
    }
    let mut live = Live::ffmpeg("av.flv");
    let url = live.wait_hls(1, FIRST_SEGMENT_TIMEOUT);
    let source = format!("souphttpsrc location={url}");
    let pipeline = Gst::decode_pipeline(&source, "hlsdemux ! tsdemux", &expect);
    let report = Gst::decode(&pipeline, &expect, gst_timeout());
    live.assert_publishing();
    assert_media("gstreamer hls play", &report, &expect);
}

#[test]
fn vlc_records_h264_aac() {
    if !require_tool("ffmpeg") || !require_tool("cvlc") || !require_tool("ffprobe") {
        return;
    }
    let mut live = Live::ffmpeg("av.flv");
    let url = live.wait_hls(1, FIRST_SEGMENT_TIMEOUT);
    let dir = TempDir::new("vlc-hls");
    let out = dir.join("rec.mkv");
    let run = vlc_record(&url, RECORD_SECS, &out);
    live.assert_publishing();
    assert!(
        out.is_file(),
        "VLC wrote nothing ({}); stderr:\n{}",
        run.status,
        String::from_utf8_lossy(&run.stderr)
    );
    // See rtmp.rs: VLC 3.0 writes its first frames before its clock has a reference.
    let report = ffprobe_decode(&out.to_string_lossy(), f64::INFINITY);
    let expect = Expect {
        max_outliers: 2,
        ..Expect::av(CELL_SECS)
    };
    assert_media("vlc hls record", &report, &expect);
}

#[test]
fn chromium_plays_hls_with_hls_js() {
    if !require_tool("ffmpeg") || !require_browser_check() {
        return;
    }
    let mut live = Live::ffmpeg("av.flv");
    live.wait_hls(1, FIRST_SEGMENT_TIMEOUT);
    let report = browser_play(&live.http_url(""), Live::KEY, "hls", CELL_SECS as u32);
    live.assert_publishing();
    assert_eq!(report["engine"], "hls.js", "{report}");
    assert_eq!(
        (
            report["videoWidth"].as_u64(),
            report["videoHeight"].as_u64()
        ),
        (Some(640), Some(360)),
        "{report}"
    );
}

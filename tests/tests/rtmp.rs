//! RTMP interop matrix: real publishers into the gateway, real players out of it.
//!
//! Each cell publishes over RTMP, plays over RTMP with one client, and asserts what the user would
//! see: the codecs and picture size, and at least [`CELL_SECS`] seconds of frames decoded without
//! errors. A cell whose client is not installed prints `SKIPPED:` (or fails under CI).

use gateway_tests::{
    assert_media, ffmpeg_record, ffprobe_decode, gst_timeout, require_gst_encoder,
    require_gst_player, require_tool, rtmpdump_record, vlc_record, Expect, Gst, Live, TempDir,
    CELL_SECS, PLAY_SECS, RECORD_SECS,
};

// ---- Players, with ffmpeg publishing av.flv (H.264 Main with B-frames + AAC-LC) ----

#[test]
fn ffprobe_plays_h264_aac() {
    ffprobe_plays_fixture("av.flv");
}

#[test]
fn ffmpeg_records_h264_aac() {
    if !require_tool("ffmpeg") || !require_tool("ffprobe") {
        return;
    }
    let mut live = Live::ffmpeg("av.flv");
    let dir = TempDir::new("ffmpeg-rec");
    let out = dir.join("rec.mkv");
    let stderr = ffmpeg_record(&live.rtmp_url(), RECORD_SECS, &out);
    live.assert_publishing();
    let mut report = ffprobe_decode(&out.to_string_lossy(), PLAY_SECS);
    report.errors.extend(stderr.lines().map(str::to_owned));
    assert_media("ffmpeg rtmp record", &report, &Expect::av(CELL_SECS));
}

#[test]
fn rtmpdump_records_h264_aac() {
    if !require_tool("ffmpeg") || !require_tool("rtmpdump") || !require_tool("ffprobe") {
        return;
    }
    let mut live = Live::ffmpeg("av.flv");
    let dir = TempDir::new("rtmpdump");
    let out = dir.join("rec.flv");
    let stderr = rtmpdump_record(&live.rtmp_url(), RECORD_SECS, &out);
    live.assert_publishing();
    assert!(out.is_file(), "rtmpdump wrote nothing; stderr:\n{stderr}");
    let report = ffprobe_decode(&out.to_string_lossy(), PLAY_SECS);
    assert_media("rtmpdump record", &report, &Expect::av(CELL_SECS));
}

#[test]
fn gstreamer_rtmp2src_plays_h264_aac() {
    gstreamer_plays("rtmp2src", "av.flv");
}

#[test]
fn gstreamer_rtmpsrc_librtmp_plays_h264_aac() {
    gstreamer_plays("rtmpsrc", "av.flv");
}

#[test]
fn vlc_records_h264_aac() {
    if !require_tool("ffmpeg") || !require_tool("cvlc") || !require_tool("ffprobe") {
        return;
    }
    let mut live = Live::ffmpeg("av.flv");
    let dir = TempDir::new("vlc");
    let out = dir.join("rec.mkv");
    let run = vlc_record(&live.rtmp_url(), RECORD_SECS, &out);
    live.assert_publishing();
    assert!(
        out.is_file(),
        "VLC wrote nothing ({}); stderr:\n{}",
        run.status,
        String::from_utf8_lossy(&run.stderr)
    );
    // VLC 3.0 stream output writes the first frames it receives, before its input clock has a
    // reference, with their input timestamps and everything after on its own clock, so the
    // recording is decoded whole and up to two frames per stream may sit outside the run.
    let report = ffprobe_decode(&out.to_string_lossy(), f64::INFINITY);
    let expect = Expect {
        max_outliers: 2,
        ..Expect::av(CELL_SECS)
    };
    assert_media("vlc rtmp record", &report, &expect);
}

// ---- Track layouts ----

#[test]
fn h264_only_stream_plays_without_audio() {
    ffprobe_plays_fixture("video-only.flv");
}

#[test]
fn aac_only_stream_plays_without_video() {
    ffprobe_plays_fixture("audio-only.flv");
}

#[test]
fn h264_with_mp3_plays() {
    ffprobe_plays_fixture("mp3.flv");
}

#[test]
fn gstreamer_plays_aac_only_stream() {
    gstreamer_plays("rtmp2src", "audio-only.flv");
}

#[test]
fn gstreamer_plays_h264_only_stream() {
    gstreamer_plays("rtmp2src", "video-only.flv");
}

// ---- Publishers other than ffmpeg, ffprobe playing ----

#[test]
fn gstreamer_rtmp2sink_publishes() {
    gstreamer_publishes("rtmp2sink", true, true);
}

#[test]
fn gstreamer_rtmpsink_librtmp_publishes() {
    gstreamer_publishes("rtmpsink", true, true);
}

#[test]
fn gstreamer_publishes_h264_only() {
    gstreamer_publishes("rtmp2sink", true, false);
}

#[test]
fn gstreamer_publishes_aac_only() {
    gstreamer_publishes("rtmp2sink", false, true);
}

// ---- cells ----

fn ffprobe_plays_fixture(name: &str) {
    if !require_tool("ffmpeg") || !require_tool("ffprobe") {
        return;
    }
    let mut live = Live::ffmpeg(name);
    let report = ffprobe_decode(&live.rtmp_url(), PLAY_SECS);
    live.assert_publishing();
    let what = format!("ffprobe rtmp play of {name}");
    assert_media(&what, &report, &Expect::for_fixture(name, CELL_SECS));
}

fn gstreamer_plays(source: &str, name: &str) {
    let expect = Expect::for_fixture(name, CELL_SECS);
    if !require_tool("ffmpeg") || !require_gst_player(&expect, &[source, "flvdemux"]) {
        return;
    }
    let mut live = Live::ffmpeg(name);
    let source = format!("{source} location={}", live.rtmp_url());
    let pipeline = Gst::decode_pipeline(&source, "flvdemux", &expect);
    let report = Gst::decode(&pipeline, &expect, gst_timeout());
    live.assert_publishing();
    assert_media(
        &format!("gstreamer {source} play of {name}"),
        &report,
        &expect,
    );
}

fn gstreamer_publishes(sink: &str, video: bool, audio: bool) {
    if !require_gst_encoder(sink) || !require_tool("ffprobe") {
        return;
    }
    let mut live =
        Live::gst(|url| Gst::encoder_to(&format!("{sink} location={url}"), video, audio));
    let report = ffprobe_decode(&live.rtmp_url(), PLAY_SECS);
    live.assert_publishing();
    let expect = match (video, audio) {
        (true, false) => Expect::video_only(CELL_SECS),
        (false, true) => Expect::audio_only(CELL_SECS),
        _ => Expect::av(CELL_SECS),
    };
    assert_media(
        &format!("ffprobe play of a {sink} publish"),
        &report,
        &expect,
    );
}

//! HTTP-FLV (and WebSocket-FLV) interop: ffmpeg publishes over RTMP into the gateway, real
//! clients play `http://host/live/test.flv`. Each cell asserts the codecs, picture size and at
//! least [`CELL_SECS`] seconds decoded without errors.

use gateway_tests::{
    assert_media, browser_play, ffmpeg_record, ffprobe_decode, gst_timeout, require_browser_check,
    require_gst_player, require_tool, vlc_record, Expect, Gst, Live, TempDir, CELL_SECS, PLAY_SECS,
    RECORD_SECS,
};

fn flv_url(live: &Live) -> String {
    live.http_url(&format!("/{}.flv", Live::KEY))
}

fn ffprobe_plays(name: &str) {
    if !require_tool("ffmpeg") || !require_tool("ffprobe") {
        return;
    }
    let mut live = Live::ffmpeg(name);
    let report = ffprobe_decode(&flv_url(&live), PLAY_SECS);
    live.assert_publishing();
    let what = format!("ffprobe http-flv play of {name}");
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
    let dir = TempDir::new("ffmpeg-httpflv");
    let out = dir.join("rec.mkv");
    let stderr = ffmpeg_record(&flv_url(&live), RECORD_SECS, &out);
    live.assert_publishing();
    let mut report = ffprobe_decode(&out.to_string_lossy(), PLAY_SECS);
    report.errors.extend(stderr.lines().map(str::to_owned));
    assert_media("ffmpeg http-flv record", &report, &Expect::av(CELL_SECS));
}

#[test]
fn gstreamer_souphttpsrc_plays_h264_aac() {
    let expect = Expect::av(CELL_SECS);
    if !require_tool("ffmpeg") || !require_gst_player(&expect, &["souphttpsrc", "flvdemux"]) {
        return;
    }
    let mut live = Live::ffmpeg("av.flv");
    let source = format!("souphttpsrc is-live=true location={}", flv_url(&live));
    let pipeline = Gst::decode_pipeline(&source, "flvdemux", &expect);
    let report = Gst::decode(&pipeline, &expect, gst_timeout());
    live.assert_publishing();
    assert_media("gstreamer http-flv play", &report, &expect);
}

#[test]
fn vlc_records_h264_aac() {
    if !require_tool("ffmpeg") || !require_tool("cvlc") || !require_tool("ffprobe") {
        return;
    }
    let mut live = Live::ffmpeg("av.flv");
    let dir = TempDir::new("vlc-httpflv");
    let out = dir.join("rec.mkv");
    let run = vlc_record(&flv_url(&live), RECORD_SECS, &out);
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
    assert_media("vlc http-flv record", &report, &expect);
}

fn browser_plays(tech: &str) {
    if !require_tool("ffmpeg") || !require_browser_check() {
        return;
    }
    let mut live = Live::ffmpeg("av.flv");
    let report = browser_play(&live.http_url(""), Live::KEY, tech, CELL_SECS as u32);
    live.assert_publishing();
    assert_eq!(
        (
            report["videoWidth"].as_u64(),
            report["videoHeight"].as_u64()
        ),
        (Some(640), Some(360)),
        "{report}"
    );
    assert!(
        report["currentTime"]
            .as_f64()
            .is_some_and(|t| t >= CELL_SECS),
        "{report}"
    );
}

#[test]
fn chromium_plays_http_flv_with_mpegts_js() {
    browser_plays("flv");
}

#[test]
fn chromium_plays_websocket_flv_with_mpegts_js() {
    browser_plays("ws");
}

//! MMS interop: ffmpeg publishes over RTMP into the gateway, legacy clients play the stream as
//! ASF over MMSH (`mmsh://host:http-port/live/test`) and MMST (`mmst://host:1755/live/test`).
//! Each cell asserts the codecs, picture size and at least [`CELL_SECS`] seconds decoded without
//! errors.

use gateway_tests::{
    assert_media, ffprobe_decode, require_tool, vlc_record, Expect, Live, TempDir, CELL_SECS,
    PLAY_SECS, RECORD_SECS,
};

fn mmsh_url(live: &Live) -> String {
    format!("mmsh://{}/{}", live.gateway.http_addr(), Live::KEY)
}

fn mmst_url(live: &Live) -> String {
    let addr = live
        .gateway
        .mms_addr()
        .expect("MMS is enabled in the default configuration");
    format!("mmst://{addr}/{}", Live::KEY)
}

fn ffprobe_plays(name: &str, url: fn(&Live) -> String) {
    if !require_tool("ffmpeg") || !require_tool("ffprobe") {
        return;
    }
    let mut live = Live::ffmpeg(name);
    let url = url(&live);
    let report = ffprobe_decode(&url, PLAY_SECS);
    live.assert_publishing();
    let what = format!("ffprobe {url} play of {name}");
    assert_media(&what, &report, &Expect::for_fixture(name, CELL_SECS));
}

#[test]
fn ffprobe_plays_h264_aac_over_mmsh() {
    ffprobe_plays("av.flv", mmsh_url);
}

#[test]
fn ffprobe_plays_h264_aac_over_mmst() {
    ffprobe_plays("av.flv", mmst_url);
}

#[test]
fn ffprobe_plays_h264_only_over_mmsh() {
    ffprobe_plays("video-only.flv", mmsh_url);
}

#[test]
fn vlc_records_over_mmsh() {
    if !require_tool("ffmpeg") || !require_tool("cvlc") || !require_tool("ffprobe") {
        return;
    }
    let mut live = Live::ffmpeg("av.flv");
    let dir = TempDir::new("vlc-mmsh");
    let out = dir.join("rec.mkv");
    let run = vlc_record(&mmsh_url(&live), RECORD_SECS, &out);
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
    assert_media("vlc mmsh record", &report, &expect);
}

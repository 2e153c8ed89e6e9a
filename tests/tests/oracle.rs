//! The oracles checked against the committed fixtures: if ffprobe's or GStreamer's report of a
//! known file is wrong, every interop cell built on it would be meaningless.

use std::time::Duration;

use gateway_tests::{
    assert_media, check_media, ffprobe_decode, fixture, require_gst_element, require_tool, Expect,
    Gst, Kind,
};

/// Seconds a 10 s fixture file must decode (its last frame starts just before 10 s).
const FILE_SECS: f64 = 9.9;

#[test]
fn every_fixture_decodes_as_its_provenance_says() {
    if !require_tool("ffprobe") {
        return;
    }
    for name in ["av.flv", "video-only.flv", "audio-only.flv", "mp3.flv"] {
        let path = fixture(name);
        let report = ffprobe_decode(&path.to_string_lossy(), FILE_SECS);
        assert_media(name, &report, &Expect::for_fixture(name, FILE_SECS));
    }
}

#[test]
fn av_fixture_has_a_keyframe_every_two_seconds() {
    if !require_tool("ffprobe") {
        return;
    }
    let report = ffprobe_decode(&fixture("av.flv").to_string_lossy(), FILE_SECS);
    let video = report.stream(Kind::Video).expect("av.flv has video");
    assert_eq!(video.keyframes, 5, "{video:?}");
}

#[test]
fn hevc_fixture_is_h265_at_640x360() {
    if !require_tool("ffprobe") {
        return;
    }
    let report = ffprobe_decode(&fixture("hevc.mp4").to_string_lossy(), FILE_SECS);
    let expect = Expect {
        video: Some(("hevc", 640, 360, 25.0)),
        ..Expect::av(FILE_SECS)
    };
    assert_media("hevc.mp4", &report, &expect);
}

#[test]
fn the_oracle_rejects_a_file_that_does_not_match() {
    if !require_tool("ffprobe") {
        return;
    }
    let report = ffprobe_decode(&fixture("video-only.flv").to_string_lossy(), FILE_SECS);
    let problems = check_media(&report, &Expect::av(FILE_SECS));
    assert!(
        problems.iter().any(|p| p.contains("no audio stream")),
        "{problems:?}"
    );
    let too_long = check_media(&report, &Expect::video_only(20.0));
    assert!(!too_long.is_empty(), "a 10 s file must not pass as 20 s");
}

#[test]
fn gstreamer_decodes_the_fixture_files() {
    for element in [
        "flvdemux",
        "avdec_h264",
        "avdec_aac",
        "avdec_mp3",
        "h264parse",
        "aacparse",
    ] {
        if !require_gst_element(element) {
            return;
        }
    }
    let secs = 9.5;
    for name in ["av.flv", "video-only.flv", "audio-only.flv", "mp3.flv"] {
        let expect = Expect::for_fixture(name, secs);
        let source = format!("filesrc location={}", fixture(name).display());
        let pipeline = Gst::decode_pipeline(&source, "flvdemux", &expect);
        let report = Gst::decode(&pipeline, &expect, Duration::from_secs(60));
        assert_media(&format!("gst {name}"), &report, &expect);
    }
}

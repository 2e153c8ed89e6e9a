//! H.265 over Enhanced RTMP, through the gateway to every reader that can take it.
//!
//! ffmpeg 5.1 (Debian 12) cannot publish Enhanced RTMP, so the project's own RTMP client publishes
//! `hevc.mp4` as `hvc1` tags (see `gateway_tests::rtmp_publish`). The cells then check:
//!
//! | egress | reader | what is asserted |
//! |---|---|---|
//! | RTSP (RFC 7798) over TCP | ffprobe | hevc 640x360 + AAC, 10 s decoded without errors |
//! | HLS (TS stream_type 0x24) | ffprobe | the same, and the PMT's stream type |
//! | HTTP-FLV, RTMP play | ffprobe where it reads E-RTMP FLV (ffmpeg 6.1+); else the project's own reader, whose H.265 is decoded by ffprobe as an elementary stream | sequence start first, keyframe first, 10 s decoded |
//! | MMSH (ASF) | ffprobe if the ASF stream carries H.265 | otherwise reported: the ASF egress has no H.265 mapping |

use std::process::Command;
use std::time::Duration;

use gateway_tests::ffmpeg::FRAME_ENTRIES;
use gateway_tests::{
    assert_media, check_start, ffprobe_decode, ffprobe_decode_with, fixture,
    hevc_mp4_to_enhanced_flv, http_flv_tags, require_tool, rtmp_tags, run_with_timeout,
    skip_unsupported, Expect, Live, ReadUntil, StartRole, StartTag, TempDir, CELL_SECS, PLAY_SECS,
};
use serde_json::json;

/// `hevc.mp4`: H.265 640x360 at 25 fps plus AAC.
fn expect_hevc(secs: f64) -> Expect {
    Expect {
        video: Some(("hevc", 640, 360, 25.0)),
        ..Expect::av(secs)
    }
}

/// A gateway with `hevc.mp4` published over Enhanced RTMP by the project's own client.
fn live_hevc() -> Option<Live> {
    if !require_tool("ffprobe") {
        return None;
    }
    let tags = hevc_mp4_to_enhanced_flv(&fixture("hevc.mp4"));
    Some(Live::rtmp_client(&tags))
}

#[test]
fn ffprobe_plays_h265_over_rtsp_tcp() {
    let Some(mut live) = live_hevc() else {
        return;
    };
    let addr = live
        .gateway
        .rtsp_addr()
        .expect("RTSP is enabled by default");
    let url = format!("rtsp://{addr}/{}", Live::KEY);
    let report = ffprobe_decode_with(&url, PLAY_SECS, &["-rtsp_transport", "tcp"]);
    live.assert_publishing();
    assert_media(
        "ffprobe rtsp/tcp play of H.265",
        &report,
        &expect_hevc(CELL_SECS),
    );
}

#[test]
fn ffprobe_plays_h265_over_hls_with_ts_stream_type_0x24() {
    let Some(mut live) = live_hevc() else {
        return;
    };
    let url = live.wait_hls(1, Duration::from_secs(20));
    let streams = gateway_tests::ffprobe_json(
        &url,
        &["-show_entries", "stream=codec_type,codec_name,codec_tag"],
    );
    let video = streams["streams"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|s| s["codec_type"] == "video")
        .cloned()
        .unwrap_or_else(|| panic!("no video stream in {streams}"));
    // ffmpeg's TS demuxer reports the PMT stream_type as the codec tag; 0x24 is HEVC
    // (ISO/IEC 13818-1 Table 2-34).
    assert_eq!(video["codec_tag"], "0x0024", "{video}");
    let report = ffprobe_decode(&url, PLAY_SECS);
    live.assert_publishing();
    assert_media(
        "ffprobe hls play of H.265",
        &report,
        &expect_hevc(CELL_SECS),
    );
}

/// True if ffprobe finds H.265 at `url`; otherwise returns what ffprobe saw.
fn ffprobe_finds_hevc(url: &str) -> Result<(), String> {
    let mut cmd = Command::new("ffprobe");
    cmd.args(["-hide_banner", "-v", "error", "-of", "compact=p=0"])
        .args(["-rw_timeout", "15000000", "-read_intervals", "%+1"])
        // Without a known codec ffprobe would read until its 5 MB probe size (100 s of this
        // stream); 3 s of media tell whether it recognises the video.
        .args(["-analyzeduration", "3000000", "-probesize", "1000000"])
        .args(["-show_entries", "stream=codec_type,codec_name"])
        .arg(url);
    let started = std::time::Instant::now();
    let out = run_with_timeout(cmd, Duration::from_secs(30));
    let elapsed = started.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if stdout.contains("codec_name=hevc") {
        return Ok(());
    }
    let version = Command::new("ffprobe")
        .arg("-version")
        .output()
        .map(|o| {
            let text = String::from_utf8_lossy(&o.stdout).into_owned();
            text.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let said = stderr.lines().next().unwrap_or("nothing on stderr");
    Err(format!(
        "{version} after {:.1} s reports streams [{}] and says: {said}",
        elapsed.as_secs_f64(),
        stdout.trim().replace('\n', "; ")
    ))
}

/// The own reader's view of an H.265 FLV stream: the start is an `hvc1` sequence start followed
/// by a keyframe, and the H.265 in it decodes with ffprobe as an elementary stream.
fn assert_hevc_flv(what: &str, tags: &[StartTag]) {
    let start = check_start(tags, false, true).unwrap_or_else(|e| panic!("{what}: {e}"));
    let first_video = tags
        .iter()
        .find(|t| t.tag_type == 9)
        .expect("check_start found video");
    assert_eq!(
        first_video.body.get(..5),
        Some(&b"\x90hvc1"[..]),
        "{what}: the first video tag is not an Enhanced RTMP hvc1 SequenceStart"
    );
    let annex_b = gateway_tests::flv_start::hevc_annex_b(tags).unwrap_or_else(|e| panic!("{e}"));
    let dir = TempDir::new("hevc-flv");
    let file = dir.join("video.hevc");
    std::fs::write(&file, annex_b).expect("the elementary stream can be written");
    // An elementary stream has no timestamps (ffprobe reports none for its frames), so the frames
    // are counted here and the 10 s span is the FLV timeline the reader stopped at.
    let (json, stderr) = gateway_tests::ffmpeg::ffprobe_json_within(
        &file.to_string_lossy(),
        &["-show_entries", FRAME_ENTRIES],
        Duration::from_secs(60),
    );
    let stream = &json["streams"][0];
    let frames = json["frames"].as_array().cloned().unwrap_or_default();
    let keyframes = frames.iter().filter(|f| f["key_frame"] == 1).count();
    let want = (25.0 * CELL_SECS * 0.95) as usize;
    assert!(
        stderr.trim().is_empty(),
        "{what}: decoder errors:\n{stderr}"
    );
    assert_eq!(
        (&stream["codec_name"], &stream["width"], &stream["height"]),
        (&json!("hevc"), &json!(640), &json!(360)),
        "{what}: {stream}"
    );
    assert!(
        frames.len() >= want && keyframes >= 5,
        "{what}: {} frames ({keyframes} key) decoded, expected {want} and 5 keyframes",
        frames.len()
    );
    let video: Vec<u32> = tags
        .iter()
        .filter(|t| matches!(t.role(), StartRole::KeyFrame | StartRole::InterFrame))
        .map(|t| t.timestamp)
        .collect();
    let span = video.last().zip(video.first()).map_or(0, |(l, f)| l - f);
    println!(
        "{what}: ok hevc 640x360, {} frames ({keyframes} key) decoded without errors over \
         {span} ms of FLV timestamps; first keyframe after {:?}",
        frames.len(),
        start.first_keyframe
    );
}

/// Why ffprobe may not read the FLV-family egresses.
const FLV_REASON: &str = "ffmpeg reads H.265 in FLV (the Enhanced RTMP FourCC hvc1) from 6.1 on";

/// Media read by the own FLV readers: a little more than a cell's worth of video.
const READ: ReadUntil = ReadUntil::VideoMillis((PLAY_SECS * 1000.0) as u32);

/// How long the own readers may take for [`READ`] (real time, plus start-up on two busy cores).
const READ_TIMEOUT: Duration = Duration::from_secs(25);

#[test]
fn h265_plays_over_http_flv() {
    let Some(mut live) = live_hevc() else {
        return;
    };
    let url = live.http_url(&format!("/{}.flv", Live::KEY));
    match ffprobe_finds_hevc(&url) {
        Ok(()) => {
            let report = ffprobe_decode(&url, PLAY_SECS);
            assert_media(
                "ffprobe http-flv play of H.265",
                &report,
                &expect_hevc(CELL_SECS),
            );
        }
        Err(why) => {
            skip_unsupported(&format!("ffprobe over HTTP-FLV: {FLV_REASON}: {why}"));
            let tags = http_flv_tags(&url, READ, READ_TIMEOUT).unwrap_or_else(|e| panic!("{e}"));
            assert_hevc_flv(
                "http-flv H.265 (flv crate reader, ffprobe on the ES)",
                &tags,
            );
        }
    }
    live.assert_publishing();
}

#[test]
fn h265_plays_over_rtmp() {
    let Some(mut live) = live_hevc() else {
        return;
    };
    let url = live.rtmp_url();
    match ffprobe_finds_hevc(&url) {
        Ok(()) => {
            let report = ffprobe_decode(&url, PLAY_SECS);
            assert_media(
                "ffprobe rtmp play of H.265",
                &report,
                &expect_hevc(CELL_SECS),
            );
        }
        Err(why) => {
            skip_unsupported(&format!("ffprobe over RTMP: {FLV_REASON}: {why}"));
            let tags = rtmp_tags(&url, READ, READ_TIMEOUT).unwrap_or_else(|e| panic!("{e}"));
            assert_hevc_flv("rtmp H.265 (own RTMP client, ffprobe on the ES)", &tags);
        }
    }
    live.assert_publishing();
}

#[test]
fn mmsh_h265_is_played_or_reported() {
    let Some(mut live) = live_hevc() else {
        return;
    };
    let url = format!("mmsh://{}/{}", live.gateway.http_addr(), Live::KEY);
    match ffprobe_finds_hevc(&url) {
        Ok(()) => {
            let report = ffprobe_decode(&url, PLAY_SECS);
            assert_media(
                "ffprobe mmsh play of H.265",
                &report,
                &expect_hevc(CELL_SECS),
            );
        }
        Err(why) => {
            // crates/asf maps H.264, AAC and MP3 onto ASF stream properties; an hvc1 video tag is
            // `VideoTag::Unsupported`, so the ASF stream has no video.
            skip_unsupported(&format!(
                "MMSH: the gateway's ASF egress carries no H.265 (no ASF mapping for hvc1): {why}"
            ));
        }
    }
    live.assert_publishing();
}

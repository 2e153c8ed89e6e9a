//! RTSP interop: ffmpeg publishes over RTMP into the gateway, real clients play
//! `rtsp://host/live/test` with RTP over UDP and over TCP (interleaved). Each cell asserts the
//! codecs, picture size and at least [`CELL_SECS`] seconds decoded without errors.

use gateway_tests::{
    assert_media, ffprobe_decode, ffprobe_decode_with, gst_timeout, require_gst_player,
    require_tool, skip_unsupported, vlc_has_plugin, vlc_record_with, Expect, Gst, Live, TempDir,
    CELL_SECS, PLAY_SECS, RECORD_SECS,
};

fn rtsp_url(live: &Live) -> String {
    let addr = live
        .gateway
        .rtsp_addr()
        .expect("RTSP is enabled in the default configuration");
    format!("rtsp://{addr}/{}", Live::KEY)
}

fn ffprobe_plays(name: &str, transport: &str) {
    if !require_tool("ffmpeg") || !require_tool("ffprobe") {
        return;
    }
    let mut live = Live::ffmpeg(name);
    let args = ["-rtsp_transport", transport];
    let report = ffprobe_decode_with(&rtsp_url(&live), PLAY_SECS, &args);
    live.assert_publishing();
    let what = format!("ffprobe rtsp/{transport} play of {name}");
    assert_media(&what, &report, &Expect::for_fixture(name, CELL_SECS));
}

#[test]
fn ffprobe_plays_h264_aac_over_tcp() {
    ffprobe_plays("av.flv", "tcp");
}

#[test]
fn ffprobe_plays_h264_aac_over_udp() {
    ffprobe_plays("av.flv", "udp");
}

#[test]
fn ffprobe_plays_h264_only_over_tcp() {
    ffprobe_plays("video-only.flv", "tcp");
}

#[test]
fn ffprobe_plays_aac_only_over_tcp() {
    ffprobe_plays("audio-only.flv", "tcp");
}

fn gstreamer_plays(protocols: &str) {
    let expect = Expect::av(CELL_SECS);
    let elements = ["rtspsrc", "rtph264depay", "rtpmp4gdepay"];
    if !require_tool("ffmpeg") || !require_gst_player(&expect, &elements) {
        return;
    }
    let mut live = Live::ffmpeg("av.flv");
    let pipeline = Gst::rtsp_pipeline(&rtsp_url(&live), protocols, &expect);
    let report = Gst::decode(&pipeline, &expect, gst_timeout());
    live.assert_publishing();
    assert_media(&format!("gstreamer rtspsrc {protocols}"), &report, &expect);
}

#[test]
fn gstreamer_rtspsrc_plays_over_tcp() {
    gstreamer_plays("tcp");
}

#[test]
fn gstreamer_rtspsrc_plays_over_udp() {
    gstreamer_plays("udp");
}

#[test]
fn vlc_records_over_tcp() {
    if !require_tool("ffmpeg") || !require_tool("cvlc") || !require_tool("ffprobe") {
        return;
    }
    if !vlc_has_plugin("live555") {
        // Debian 12 builds VLC without live555 (no package provides liblive555_plugin.so), so
        // VLC there cannot open rtsp:// at all; the cell runs wherever the plugin exists.
        skip_unsupported("needs VLC's live555 RTSP plugin");
        return;
    }
    let mut live = Live::ffmpeg("av.flv");
    let dir = TempDir::new("vlc-rtsp");
    let out = dir.join("rec.mkv");
    let run = vlc_record_with(&rtsp_url(&live), RECORD_SECS, &out, &["--rtsp-tcp"]);
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
    assert_media("vlc rtsp/tcp record", &report, &expect);
}

/// The stats API lists a playing UDP session with the receiver reports ffmpeg sends for it.
#[test]
fn stats_api_shows_receiver_reports_of_a_udp_session() {
    if !require_tool("ffmpeg") {
        return;
    }
    let live = Live::ffmpeg("av.flv");
    let url = rtsp_url(&live);
    let player = gateway_tests::Ffmpeg::spawn(&[
        "-rtsp_transport",
        "udp",
        "-i",
        &url,
        "-t",
        "20",
        "-f",
        "null",
        "-",
    ]);
    let api = live.http_url("/api/streams/live/test/rtsp");
    let mut last = String::new();
    let reported = gateway_tests::wait_until(std::time::Duration::from_secs(20), || {
        let Ok(res) = gateway_tests::http_get(&api, std::time::Duration::from_secs(5)) else {
            return false;
        };
        last = res.text();
        let Ok(json) = serde_json::from_str::<serde_json::Value>(&last) else {
            return false;
        };
        json["sessions"].as_array().is_some_and(|sessions| {
            sessions.iter().any(|s| {
                s["transport"] == "udp"
                    && s["tracks"].as_array().is_some_and(|tracks| {
                        tracks
                            .iter()
                            .any(|t| t["receiver_reports"].as_u64() > Some(0))
                    })
            })
        })
    });
    drop(player);
    assert!(
        reported,
        "no UDP session with receiver reports in {api}; last answer: {last}"
    );
    let gone = gateway_tests::http_get(
        &live.http_url("/api/streams/live/nothing/rtsp"),
        std::time::Duration::from_secs(5),
    )
    .expect("the API answers");
    assert_eq!(
        gone.status,
        404,
        "a stream that is not live: {}",
        gone.text()
    );
}

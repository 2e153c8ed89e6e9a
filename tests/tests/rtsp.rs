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

/// What retina received in one session.
struct RetinaReceived {
    /// Video frames: (timestamp in 90 kHz ticks, random access point).
    video: Vec<(i64, bool)>,
    audio_frames: usize,
    /// Codec and picture size from the SDP's parameters (sprop-parameter-sets).
    codec: String,
    dims: Option<(u32, u32)>,
}

/// Plays the live stream with retina over `transport` until [`PLAY_SECS`] of video timestamps
/// have arrived (or a generous deadline passes), failing on any retina error.
fn retina_receive(live: &Live, transport: retina::client::Transport) -> RetinaReceived {
    use futures_util::StreamExt;
    use retina::codec::{CodecItem, ParametersRef};
    let url = url::Url::parse(&rtsp_url(live)).expect("a valid URL");
    let want_ticks = (PLAY_SECS * 90_000.0) as i64;
    live.gateway.block_on(async move {
        // No retry: DESCRIBE right after the stream goes live must succeed (the gateway waits
        // for the first frame rather than answering 404).
        let session =
            retina::client::Session::describe(url, retina::client::SessionOptions::default())
                .await
                .expect("DESCRIBE succeeds");
        let mut r = RetinaReceived {
            video: Vec::new(),
            audio_frames: 0,
            codec: String::new(),
            dims: None,
        };
        for stream in session.streams() {
            if let Some(ParametersRef::Video(v)) = stream.parameters() {
                r.codec = v.rfc6381_codec().to_owned();
                r.dims = Some(v.pixel_dimensions());
            }
        }
        let mut demuxed = gateway_tests::retina_play::setup_all_and_play(session, transport).await;
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(25);
        while let Ok(item) = tokio::time::timeout_at(deadline, demuxed.next()).await {
            match item.expect("the session goes on").expect("no retina error") {
                CodecItem::VideoFrame(f) => {
                    r.video
                        .push((f.timestamp().elapsed(), f.is_random_access_point()));
                    let first = r.video[0].0;
                    if f.timestamp().elapsed() - first >= want_ticks {
                        break;
                    }
                }
                CodecItem::AudioFrame(_) => r.audio_frames += 1,
                _ => {}
            }
        }
        r
    })
}

fn retina_plays(transport: retina::client::Transport, name: &str) {
    if !require_tool("ffmpeg") {
        return;
    }
    let mut live = Live::ffmpeg("av.flv");
    let r = retina_receive(&live, transport);
    live.assert_publishing();
    let what = format!("retina rtsp/{name}");
    assert!(
        r.codec.starts_with("avc1."),
        "{what}: SDP codec {:?}",
        r.codec
    );
    assert_eq!(r.dims, Some((640, 360)), "{what}: size from the SDP's SPS");
    let first = r.video.first().copied().expect("video frames arrived");
    assert!(first.1, "{what}: the first video frame is not a keyframe");
    let span = (r.video.last().map_or(0, |l| l.0) - first.0) as f64 / 90_000.0;
    let want = (25.0 * CELL_SECS * 0.95) as usize;
    assert!(
        span >= CELL_SECS && r.video.len() >= want,
        "{what}: {} video frames over {span:.2} s, expected {want} over {CELL_SECS} s",
        r.video.len()
    );
    let keyframes = r.video.iter().filter(|v| v.1).count();
    // The fixture has a keyframe every 2 s.
    assert!(
        keyframes >= 5,
        "{what}: {keyframes} keyframes in {span:.2} s"
    );
    assert!(
        r.audio_frames as f64 >= 43.0 * CELL_SECS * 0.95,
        "{what}: {} audio frames",
        r.audio_frames
    );
    println!(
        "{what}: ok {} {:?} {} video frames ({keyframes} key) over {span:.2} s, {} audio frames",
        r.codec,
        r.dims,
        r.video.len(),
        r.audio_frames
    );
}

#[test]
fn retina_plays_over_tcp() {
    retina_plays(retina::client::Transport::Tcp(Default::default()), "tcp");
}

#[test]
fn retina_plays_over_udp() {
    retina_plays(retina::client::Transport::Udp(Default::default()), "udp");
}

/// `/api/streams` counts an RTSP session playing over TCP (interleaved) as one RTSP viewer, and
/// none once it has left.
#[test]
fn stats_api_counts_a_tcp_session_as_an_rtsp_viewer() {
    if !require_tool("ffmpeg") {
        return;
    }
    let live = Live::ffmpeg("av.flv");
    let url = rtsp_url(&live);
    let api = live.http_url("/api/streams/live/test");
    let rtsp_viewers = || -> Option<u64> {
        let res = gateway_tests::http_get(&api, std::time::Duration::from_secs(5)).ok()?;
        let json: serde_json::Value = serde_json::from_str(&res.text()).ok()?;
        json["viewers"]["rtsp"].as_u64()
    };
    assert_eq!(rtsp_viewers(), Some(0), "before any RTSP client");
    let player = gateway_tests::Ffmpeg::spawn(&[
        "-rtsp_transport",
        "tcp",
        "-i",
        &url,
        "-t",
        "20",
        "-f",
        "null",
        "-",
    ]);
    let wait = std::time::Duration::from_secs(20);
    let counted = gateway_tests::wait_until(wait, || rtsp_viewers() == Some(1));
    let during = rtsp_viewers();
    drop(player);
    assert!(
        counted,
        "viewers.rtsp of {api} while ffmpeg plays over TCP: {during:?}"
    );
    let left = gateway_tests::wait_until(wait, || rtsp_viewers() == Some(0));
    assert!(left, "viewers.rtsp after ffmpeg left: {:?}", rtsp_viewers());
}

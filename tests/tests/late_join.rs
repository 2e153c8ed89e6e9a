//! A viewer joining a running stream starts on a keyframe, with the sequence headers first, on
//! every egress.
//!
//! ffmpeg publishes `av.flv` (GOP 2 s) into the gateway; each cell waits [`JOIN_AFTER`] so the
//! stream is mid-GOP, then joins once. Where the project's own client can see the first tags (RTMP
//! play, HTTP-FLV) their order is checked directly; in every cell ffprobe confirms that the first
//! decoded video frame is a keyframe and that the start decodes without errors. The measured time
//! to the first keyframe is printed; it is only held to a sanity bound, never timed as a
//! performance assertion (the load tool measures start-up times).

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use gateway_tests::{
    check_start, http_flv_tags, http_get, require_tool, rtmp_tags, Live, ReadUntil, StartReport,
    TempDir,
};
use serde_json::Value;

/// How long the stream runs before the viewer joins: 1.5 GOPs of the fixture, so the newest
/// keyframe is about a second old.
const JOIN_AFTER: Duration = Duration::from_millis(3000);

/// A generous bound on the time to the first keyframe (the gateway sends its cached GOP at once).
const SANITY: Duration = Duration::from_secs(5);

/// How far into the stream ffprobe decodes to find the first frames.
const PROBE_SECS: &str = "%+2";

/// The first keyframe a joiner gets may be at most one GOP (2 s of the fixture) plus slack behind
/// the live edge.
const MAX_KEYFRAME_AGE_MS: u32 = 2500;

/// Read 2.5 s of video: the join burst (the GOP so far) and some live frames after it.
const AV_START: ReadUntil = ReadUntil::VideoMillis(2500);

fn live_mid_gop() -> Option<Live> {
    if !require_tool("ffmpeg") || !require_tool("ffprobe") {
        return None;
    }
    let live = Live::ffmpeg("av.flv");
    std::thread::sleep(JOIN_AFTER);
    Some(live)
}

/// What ffprobe decodes from the start of `url`: the first video frame, and its stderr.
struct FirstFrames {
    first_video: Value,
    first_audio: Option<Value>,
    video_frames: usize,
    stderr: String,
    elapsed: Duration,
}

fn ffprobe_first_frames(url: &str, input_args: &[&str]) -> FirstFrames {
    let mut args = input_args.to_vec();
    args.extend([
        "-show_entries",
        "stream=index,codec_type,codec_name,width,height:\
         frame=stream_index,media_type,key_frame,pict_type,pts_time",
        "-read_intervals",
        PROBE_SECS,
    ]);
    let started = Instant::now();
    let (json, stderr) =
        gateway_tests::ffmpeg::ffprobe_json_within(url, &args, Duration::from_secs(40));
    let elapsed = started.elapsed();
    let frames = json["frames"].as_array().cloned().unwrap_or_default();
    let of = |kind: &str| {
        frames
            .iter()
            .filter(|f| f["media_type"] == kind)
            .cloned()
            .collect::<Vec<_>>()
    };
    let video = of("video");
    let first_video = video
        .first()
        .cloned()
        .unwrap_or_else(|| panic!("ffprobe decoded no video frame from {url}; stderr:\n{stderr}"));
    FirstFrames {
        first_video,
        first_audio: of("audio").first().cloned(),
        video_frames: video.len(),
        stderr,
        elapsed,
    }
}

/// ffprobe's first decoded video frame of `url` is a keyframe (an I picture), ffprobe printed no
/// error, and audio starts within a GOP of the video.
fn assert_ffprobe_starts_on_keyframe(what: &str, url: &str, input_args: &[&str]) -> FirstFrames {
    let f = ffprobe_first_frames(url, input_args);
    assert!(
        f.stderr.trim().is_empty(),
        "{what}: ffprobe reported errors at the start:\n{}",
        f.stderr
    );
    assert_eq!(
        (
            f.first_video["key_frame"].as_u64(),
            f.first_video["pict_type"].as_str()
        ),
        (Some(1), Some("I")),
        "{what}: the first decoded video frame is not a keyframe: {}",
        f.first_video
    );
    let time = |v: &Value| v["pts_time"].as_str().and_then(|t| t.parse::<f64>().ok());
    let video_pts = time(&f.first_video);
    let audio_pts = f.first_audio.as_ref().and_then(time);
    if let (Some(v), Some(a)) = (video_pts, audio_pts) {
        assert!(
            (v - a).abs() < 2.0,
            "{what}: audio starts at {a:.3} s, video at {v:.3} s"
        );
    }
    println!(
        "{what}: ffprobe first video frame {} (pts {video_pts:?} s, audio {audio_pts:?} s), \
         {} video frames in {PROBE_SECS}, ffprobe run {:.2} s",
        f.first_video,
        f.video_frames,
        f.elapsed.as_secs_f64()
    );
    f
}

fn assert_sane(what: &str, first_keyframe: Duration) {
    println!(
        "{what}: time to first keyframe {:.0} ms",
        first_keyframe.as_secs_f64() * 1000.0
    );
    assert!(
        first_keyframe < SANITY,
        "{what}: first keyframe after {first_keyframe:?}"
    );
}

/// Tags that arrive within this of the first keyframe belong to the join burst (the cached GOP
/// the gateway sends at once); the newest of them is the live edge at the time of joining.
const BURST: Duration = Duration::from_millis(200);

/// The own client's view of an FLV-family start, checked and printed.
fn assert_flv_start(what: &str, tags: &[gateway_tests::StartTag]) -> StartReport {
    let start = check_start(tags, true, true).unwrap_or_else(|e| panic!("{what}: {e}"));
    let edge = tags
        .iter()
        .filter(|t| t.arrived <= start.first_keyframe + BURST)
        .map(|t| t.timestamp)
        .max()
        .unwrap_or(start.keyframe_ts);
    let age = edge.saturating_sub(start.keyframe_ts);
    let before = gateway_tests::flv_start::roles(&tags[..start.tags_before_keyframe]);
    println!(
        "{what}: {before:?} before the keyframe, keyframe ts {} ms, first audio ts {:?} ms, \
         live edge in the join burst {edge} ms: the keyframe is {age} ms behind it",
        start.keyframe_ts, start.audio_ts
    );
    assert!(
        age <= MAX_KEYFRAME_AGE_MS,
        "{what}: the first keyframe ({} ms) is more than a GOP behind the live edge ({edge} ms)",
        start.keyframe_ts
    );
    assert_sane(what, start.first_keyframe);
    start
}

#[test]
fn rtmp_play_joiner_starts_on_a_keyframe_after_sequence_headers() {
    let Some(mut live) = live_mid_gop() else {
        return;
    };
    let url = live.rtmp_url();
    let tags = rtmp_tags(&url, AV_START, Duration::from_secs(15))
        .unwrap_or_else(|e| panic!("rtmp play: {e}"));
    assert_flv_start("rtmp play (own client)", &tags);
    assert_ffprobe_starts_on_keyframe("rtmp play", &url, &[]);
    live.assert_publishing();
}

#[test]
fn http_flv_joiner_starts_on_a_keyframe_after_sequence_headers() {
    let Some(mut live) = live_mid_gop() else {
        return;
    };
    let url = live.http_url(&format!("/{}.flv", Live::KEY));
    let tags = http_flv_tags(&url, AV_START, Duration::from_secs(15))
        .unwrap_or_else(|e| panic!("http-flv: {e}"));
    let start = assert_flv_start("http-flv (flv crate reader)", &tags);
    // The HTTP-FLV egress rebases every viewer onto its own zero (http-server crate docs).
    assert!(
        start.keyframe_ts <= 100,
        "http-flv: the first keyframe is at {} ms of the viewer's timeline",
        start.keyframe_ts
    );
    assert_ffprobe_starts_on_keyframe("http-flv", &url, &[]);
    live.assert_publishing();
}

#[test]
fn hls_joiner_gets_a_first_segment_that_starts_on_a_keyframe() {
    let Some(mut live) = live_mid_gop() else {
        return;
    };
    // The HLS muxer of a stream starts at its first request; this viewer is that request, so the
    // measured time includes cutting the first segment (up to a target duration after the cached
    // keyframe).
    let started = Instant::now();
    let playlist_url = live.wait_hls(1, Duration::from_secs(20));
    let playlist = http_get(&playlist_url, Duration::from_secs(5)).expect("the playlist answers");
    let first = playlist
        .text()
        .lines()
        .find(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .unwrap_or_else(|| panic!("no segment in {}", playlist.text()));
    let base = playlist_url
        .rsplit_once('/')
        .map(|(b, _)| b.to_owned())
        .expect("the playlist URL has a path");
    let segment_url = if first.starts_with("http") {
        first.clone()
    } else if first.starts_with('/') {
        live.http_url(&first)
    } else {
        format!("{base}/{first}")
    };
    let segment = http_get(&segment_url, Duration::from_secs(5)).expect("the segment answers");
    let elapsed = started.elapsed();
    assert_eq!(segment.status, 200, "{segment_url}");
    assert_sane("hls (first segment in hand)", elapsed);
    let dir = TempDir::new("late-join-hls");
    let file = dir.join("first.ts");
    std::fs::write(&file, &segment.body).expect("the segment can be written");
    // The segment on its own, from its first byte: decodable only if it opens on a keyframe with
    // the parameter sets in front of it.
    let f = assert_ffprobe_starts_on_keyframe("hls first segment", &file.to_string_lossy(), &[]);
    assert!(
        f.video_frames >= 25,
        "a 2 s segment has 50 frames: {}",
        f.video_frames
    );
    live.assert_publishing();
}

fn rtsp_url(live: &Live) -> String {
    let addr = live
        .gateway
        .rtsp_addr()
        .expect("RTSP is enabled by default");
    format!("rtsp://{addr}/{}", Live::KEY)
}

/// retina over TCP: the time from DESCRIBE to the first video frame, which must be a random access
/// point.
fn retina_first_video_frame(live: &Live) -> Duration {
    use retina::client::{SessionOptions, Transport};
    let url = url::Url::parse(&rtsp_url(live)).expect("a valid URL");
    live.gateway.block_on(async move {
        let started = Instant::now();
        let session = retina::client::Session::describe(url, SessionOptions::default())
            .await
            .expect("DESCRIBE succeeds");
        let tcp = Transport::Tcp(Default::default());
        let mut demuxed = gateway_tests::retina_play::setup_all_and_play(session, tcp).await;
        loop {
            let item = tokio::time::timeout(SANITY, demuxed.next())
                .await
                .expect("a frame within the sanity bound")
                .expect("the stream goes on")
                .expect("no depacketization error");
            if let retina::codec::CodecItem::VideoFrame(f) = item {
                assert!(
                    f.is_random_access_point(),
                    "rtsp: retina's first video frame is not a random access point"
                );
                return started.elapsed();
            }
        }
    })
}

#[test]
fn rtsp_joiner_starts_on_a_keyframe() {
    let Some(mut live) = live_mid_gop() else {
        return;
    };
    let url = rtsp_url(&live);
    assert_ffprobe_starts_on_keyframe("rtsp/tcp", &url, &["-rtsp_transport", "tcp"]);
    let first = retina_first_video_frame(&live);
    assert_sane("rtsp/tcp (retina, DESCRIBE to first video frame)", first);
    live.assert_publishing();
}

#[test]
fn mmsh_joiner_starts_on_a_keyframe() {
    let Some(mut live) = live_mid_gop() else {
        return;
    };
    let url = format!("mmsh://{}/{}", live.gateway.http_addr(), Live::KEY);
    let f = assert_ffprobe_starts_on_keyframe("mmsh", &url, &[]);
    // No own MMSH client here: the ffprobe run (process start, connect, 2 s read window) bounds
    // the time to the first keyframe from above.
    println!(
        "mmsh: ffprobe open-to-exit {:.2} s for a {PROBE_SECS} read window (upper bound)",
        f.elapsed.as_secs_f64()
    );
    live.assert_publishing();
}

//! retina, a strict Rust RTSP client, plays the stream over TCP and over UDP; the frames it
//! depacketizes must match the fixture's access units.

mod common;

use std::time::Duration;

use bus::TagKind;
use futures_util::StreamExt;
use retina::client::{PlayOptions, SessionOptions, SetupOptions, Transport};
use retina::codec::{CodecItem, ParametersRef};

/// How long each client receives.
const RECEIVE: Duration = Duration::from_secs(6);

struct Received {
    /// (PTS in 90 kHz ticks, random access point) per video frame, in arrival order.
    video: Vec<(i64, bool)>,
    /// Audio frame timestamps in sample-rate ticks.
    audio: Vec<i64>,
    dims: Option<(u32, u32)>,
    codec: String,
    audio_params: Option<(u32, u16)>,
}

async fn receive(url: &str, transport: Transport) -> Received {
    let url = url::Url::parse(url).expect("valid URL");
    let mut session = retina::client::Session::describe(url, SessionOptions::default())
        .await
        .expect("DESCRIBE succeeds");
    for i in 0..session.streams().len() {
        session
            .setup(i, SetupOptions::default().transport(transport.clone()))
            .await
            .expect("SETUP succeeds");
    }
    let mut demuxed = session
        .play(PlayOptions::default())
        .await
        .expect("PLAY succeeds")
        .demuxed()
        .expect("demuxable");
    let mut r = Received {
        video: Vec::new(),
        audio: Vec::new(),
        dims: None,
        codec: String::new(),
        audio_params: None,
    };
    let deadline = tokio::time::Instant::now() + RECEIVE;
    while let Ok(Some(item)) = tokio::time::timeout_at(deadline, demuxed.next()).await {
        match item.expect("no depacketization error") {
            CodecItem::VideoFrame(f) => {
                if let Some(ParametersRef::Video(v)) = demuxed.streams()[f.stream_id()].parameters()
                {
                    r.dims = Some(v.pixel_dimensions());
                    r.codec = v.rfc6381_codec().to_owned();
                }
                r.video
                    .push((f.timestamp().elapsed(), f.is_random_access_point()));
            }
            CodecItem::AudioFrame(f) => {
                if let Some(ParametersRef::Audio(a)) = demuxed.streams()[f.stream_id()].parameters()
                {
                    r.audio_params = Some((a.clock_rate(), a.channels().get()));
                }
                r.audio.push(f.timestamp().elapsed());
            }
            _ => {}
        }
    }
    r
}

/// Checks the received frames against the fixture: the video is a contiguous run of the fixture's
/// access units starting at a keyframe (same count, order and PTS spacing), audio is gapless.
fn check(r: &Received) {
    println!(
        "received {} video frames (first {:?}), {} audio frames",
        r.video.len(),
        &r.video[..r.video.len().min(6)],
        r.audio.len()
    );
    let path = common::fixture().expect("fixture exists when the harness started");
    let tags = common::fixture_tags(path);
    let video: Vec<(i64, bool)> = tags
        .iter()
        .filter(|t| t.kind == TagKind::Video && !t.sequence_header)
        .map(|t| (t.pts() as i64 * 90, t.keyframe))
        .collect();
    assert_eq!(
        r.dims,
        Some((common::WIDTH, common::HEIGHT)),
        "SPS learned from SDP/STAP-A"
    );
    assert!(r.codec.starts_with("avc1."), "codec {}", r.codec);
    assert_eq!(r.audio_params, Some((common::SAMPLE_RATE, 2)));
    let min_frames = (RECEIVE.as_secs() as usize - 1) * common::FPS as usize;
    assert!(
        r.video.len() >= min_frames,
        "only {} video frames in {RECEIVE:?}",
        r.video.len()
    );
    assert!(r.video[0].1, "the first frame is a keyframe");
    let start = video
        .iter()
        .enumerate()
        .filter(|(_, (_, key))| *key)
        .map(|(i, _)| i)
        .find(|&i| {
            let base = video[i].0 - r.video[0].0;
            let run = &video[i..(i + r.video.len()).min(video.len())];
            run.len() == r.video.len()
                && run
                    .iter()
                    .zip(&r.video)
                    .all(|(f, g)| f.0 - base == g.0 && f.1 == g.1)
        });
    assert!(
        start.is_some(),
        "received video {:?}... is not a contiguous run of the fixture",
        &r.video[..10]
    );
    let min_audio = (RECEIVE.as_secs() as usize - 1) * common::SAMPLE_RATE as usize / 1024;
    assert!(
        r.audio.len() >= min_audio,
        "only {} audio frames",
        r.audio.len()
    );
    for w in r.audio.windows(2) {
        assert_eq!(w[1] - w[0], 1024, "AAC frames are 1024 samples apart");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retina_over_tcp_receives_fixture_frames() {
    let Some(h) = common::start(common::options()).await else {
        return;
    };
    let r = receive(&h.url(), Transport::Tcp(Default::default())).await;
    check(&r);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retina_over_udp_receives_fixture_frames() {
    let Some(h) = common::start(common::options()).await else {
        return;
    };
    let r = receive(&h.url(), Transport::Udp(Default::default())).await;
    check(&r);
}

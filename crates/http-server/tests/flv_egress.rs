//! HTTP-FLV and WebSocket-FLV as real clients see them: ffprobe, ffmpeg, a late joiner, a
//! WebSocket client, browsers' CORS rules, and the end of a stream.

mod common;

use std::time::{Duration, Instant};

use bus::Bus;
use common::{have_tool, request, FlvParser, KEY};
use futures_util::StreamExt;
use tokio_util::sync::CancellationToken;

/// A bus with `live/test` being fed in real time, and the server on a loopback port.
async fn live_server() -> (std::net::SocketAddr, Bus, CancellationToken) {
    let bus = Bus::default();
    let stop = CancellationToken::new();
    common::spawn_feeder(&bus, KEY, common::fixture(), stop.clone());
    let addr = common::serve(&bus, stop.clone()).await;
    (addr, bus, stop)
}

async fn run_tool(tool: &str, args: &[&str]) -> std::process::Output {
    tokio::process::Command::new(tool)
        .args(args)
        .kill_on_drop(true)
        .output()
        .await
        .unwrap_or_else(|e| panic!("{tool} runs: {e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ffprobe_reports_the_published_codecs() {
    if !have_tool("ffprobe") {
        return;
    }
    let (addr, _bus, stop) = live_server().await;
    let url = format!("http://{addr}/{KEY}.flv");
    let out = run_tool(
        "ffprobe",
        &["-v", "error", "-show_streams", "-of", "json", &url],
    )
    .await;
    stop.cancel();
    assert!(
        out.status.success(),
        "ffprobe: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("ffprobe JSON");
    let streams = json["streams"].as_array().expect("streams array");
    let video = streams
        .iter()
        .find(|s| s["codec_type"] == "video")
        .expect("a video stream");
    let audio = streams
        .iter()
        .find(|s| s["codec_type"] == "audio")
        .expect("an audio stream");
    assert_eq!(video["codec_name"], "h264");
    assert_eq!(
        (video["width"].as_u64(), video["height"].as_u64()),
        (Some(640), Some(360))
    );
    assert_eq!(audio["codec_name"], "aac");
    assert_eq!(audio["sample_rate"], "44100");
    assert_eq!(audio["channels"], 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ffmpeg_decodes_ten_seconds_without_errors() {
    if !have_tool("ffmpeg") {
        return;
    }
    let (addr, _bus, stop) = live_server().await;
    // Join mid-GOP, as a real viewer would.
    tokio::time::sleep(Duration::from_millis(2300)).await;
    let url = format!("http://{addr}/{KEY}.flv");
    let out = run_tool(
        "ffmpeg",
        &["-v", "error", "-i", &url, "-t", "10", "-f", "null", "-"],
    )
    .await;
    stop.cancel();
    assert!(out.status.success(), "ffmpeg exit status {:?}", out.status);
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "",
        "ffmpeg -v error printed something"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_joiner_starts_on_a_keyframe_after_the_headers() {
    let (addr, _bus, stop) = live_server().await;
    tokio::time::sleep(Duration::from_millis(3300)).await;
    let asked = Instant::now();
    let mut res = request(addr, "GET", &format!("/{KEY}.flv"), &[]).await;
    assert_eq!(res.status, 200);
    assert_eq!(res.header("content-type"), Some("video/x-flv"));
    let mut flv = FlvParser::default();
    let first_frame = loop {
        flv.feed(&res.read_some().await);
        if flv.tags.iter().any(|t| t.kind == 9 && !t.is_header()) {
            break asked.elapsed();
        }
    };
    println!("HTTP-FLV late joiner: first video frame after {first_frame:?}");
    // Two seconds more of live tags.
    let until = Instant::now() + Duration::from_secs(2);
    while Instant::now() < until {
        flv.feed(&res.read_some().await);
    }
    stop.cancel();

    assert!(
        flv.has_audio() && flv.has_video(),
        "header flags {:?}",
        flv.header
    );
    let kinds: Vec<(u8, bool)> = flv
        .tags
        .iter()
        .take(3)
        .map(|t| (t.kind, t.is_header()))
        .collect();
    assert_eq!(
        kinds,
        [(18, false), (9, true), (8, true)],
        "metadata, then the sequence headers"
    );
    let first_video = flv
        .tags
        .iter()
        .find(|t| t.kind == 9 && !t.is_header())
        .expect("video");
    assert!(
        first_video.is_video_keyframe(),
        "the first video frame is a keyframe"
    );
    let first_media = flv.tags.iter().filter(|t| !t.is_header() && t.kind != 18);
    let start = first_media.map(|t| t.timestamp).min().expect("media tags");
    assert_eq!(start, 0, "the viewer's timeline starts at zero");
    let video_ts: Vec<u32> = flv
        .tags
        .iter()
        .filter(|t| t.kind == 9 && !t.is_header())
        .map(|t| t.timestamp)
        .collect();
    assert!(
        video_ts.windows(2).all(|w| w[0] < w[1]),
        "video timestamps rise: {video_ts:?}"
    );
    let span = video_ts.last().copied().unwrap_or(0);
    assert!(
        span >= 1500,
        "two seconds of live video arrived after the burst (span {span} ms)"
    );
    assert!(
        first_frame < Duration::from_millis(500),
        "first frame took {first_frame:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_head_options_and_not_found() {
    let (addr, _bus, stop) = live_server().await;
    let path = format!("/{KEY}.flv");

    let res = request(
        addr,
        "HEAD",
        &path,
        &[("Origin", "http://elsewhere.example")],
    )
    .await;
    assert_eq!(res.status, 200);
    assert_eq!(res.header("content-type"), Some("video/x-flv"));
    assert_eq!(res.header("access-control-allow-origin"), Some("*"));

    let preflight = [
        ("Origin", "http://elsewhere.example"),
        ("Access-Control-Request-Method", "GET"),
        ("Access-Control-Request-Headers", "range"),
    ];
    let res = request(addr, "OPTIONS", &path, &preflight).await;
    assert_eq!(res.status, 204);
    assert_eq!(res.header("access-control-allow-origin"), Some("*"));
    assert!(res
        .header("access-control-allow-methods")
        .is_some_and(|m| m.contains("GET")));
    assert_eq!(res.header("access-control-allow-headers"), Some("range"));

    let mut res = request(
        addr,
        "GET",
        &path,
        &[("Origin", "http://elsewhere.example")],
    )
    .await;
    assert_eq!(res.status, 200);
    assert_eq!(res.header("access-control-allow-origin"), Some("*"));
    assert!(res.header("access-control-expose-headers").is_some());
    assert_eq!(&res.read_some().await[..3], b"FLV");

    let mut res = request(addr, "GET", "/live/nobody.flv", &[]).await;
    assert_eq!(res.status, 404);
    // The key is not repeated in the error body.
    assert_eq!(common::body_text(&mut res).await, "stream not found\n");
    let res = request(addr, "HEAD", "/live/nobody.flv", &[]).await;
    assert_eq!(res.status, 404);
    let res = request(addr, "GET", "/live/test.mp4", &[]).await;
    assert_eq!(res.status, 404);
    stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_that_ends_closes_the_body() {
    let bus = Bus::default();
    let stop = CancellationToken::new();
    let feed = CancellationToken::new();
    common::spawn_feeder(&bus, KEY, common::fixture(), feed.clone());
    let addr = common::serve(&bus, stop.clone()).await;
    let mut res = request(addr, "GET", &format!("/{KEY}.flv"), &[]).await;
    assert_eq!(res.status, 200);
    let mut flv = FlvParser::default();
    flv.feed(&res.read_some().await);
    // The publisher leaves: the feeder task ends and drops its `Publisher`.
    feed.cancel();
    let ended = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            let part = res.read_some().await;
            if part.is_empty() {
                break;
            }
            flv.feed(&part);
        }
    })
    .await;
    stop.cancel();
    assert!(
        ended.is_ok(),
        "the body ended within 5 s of the publisher leaving"
    );
    assert!(res.done, "the chunked body ended with its last chunk");
    assert!(!flv.tags.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_carries_the_flv_stream() {
    let (addr, _bus, stop) = live_server().await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let url = format!("ws://{addr}/{KEY}.flv");
    let (mut ws, response) = tokio_tungstenite::connect_async(url.as_str())
        .await
        .expect("WebSocket");
    assert_eq!(response.status(), 101);
    let mut flv = FlvParser::default();
    let mut first = true;
    while flv
        .tags
        .iter()
        .filter(|t| t.kind == 9 && !t.is_header())
        .count()
        < 30
    {
        let msg = tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .expect("a message within 5 s")
            .expect("the socket stays open")
            .expect("a valid message");
        let tokio_tungstenite::tungstenite::Message::Binary(data) = msg else {
            panic!("expected binary messages, got {msg:?}");
        };
        if first {
            assert_eq!(
                &data[..3],
                b"FLV",
                "the first message starts with the FLV header"
            );
            first = false;
        }
        flv.feed(&data);
    }
    assert!(flv.has_audio() && flv.has_video());
    let first_video = flv
        .tags
        .iter()
        .find(|t| t.kind == 9 && !t.is_header())
        .expect("video");
    assert!(first_video.is_video_keyframe());

    // A stream that is not live answers the upgrade request with a plain 404.
    let upgrade = [
        ("Upgrade", "websocket"),
        ("Sec-WebSocket-Version", "13"),
        ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
    ];
    let res = request(addr, "GET", "/live/nobody.flv", &upgrade).await;
    assert_eq!(res.status, 404);
    stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn header_flags_are_true_to_the_stream() {
    // (fixture, audio flag, video flag). No media info is set, as from an ingest that could not
    // parse the codecs: the flags then come from the cached headers and the start-up tags.
    let table = [
        ("video-only.flv", false, true),
        ("audio-only.flv", true, false),
        ("mp3.flv", true, true),
    ];
    for (file, audio, video) in table {
        let path = common::shared_fixture(file);
        if !path.exists() {
            assert!(
                std::env::var_os("CI").is_none(),
                "tests/fixtures/{file} is missing"
            );
            println!("SKIPPED: tests/fixtures/{file} is missing");
            continue;
        }
        let bus = Bus::default();
        let stop = CancellationToken::new();
        common::spawn_feeder_with(&bus, KEY, &path, bus::MediaInfo::default(), stop.clone());
        let addr = common::serve(&bus, stop.clone()).await;
        tokio::time::sleep(Duration::from_millis(600)).await;
        let mut res = request(addr, "GET", &format!("/{KEY}.flv"), &[]).await;
        let mut flv = FlvParser::default();
        while flv
            .tags
            .iter()
            .filter(|t| t.kind != 18 && !t.is_header())
            .count()
            < 5
        {
            flv.feed(&res.read_some().await);
        }
        stop.cancel();
        assert_eq!((flv.has_audio(), flv.has_video()), (audio, video), "{file}");
        let kinds: std::collections::BTreeSet<u8> = flv.tags.iter().map(|t| t.kind).collect();
        assert_eq!(
            (kinds.contains(&8), kinds.contains(&9)),
            (audio, video),
            "{file} tags"
        );
    }
}

/// A viewer that connects after the publisher's audio header but before its video header still
/// gets an FLV header announcing video (the request waits for the first frame).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_of_a_stream_that_just_started_is_told_about_both_tracks() {
    let tags = common::read_flv(common::fixture());
    let bus = Bus::default();
    let stop = CancellationToken::new();
    let addr = common::serve(&bus, stop.clone()).await;
    let info = bus::PublisherInfo {
        protocol: bus::Protocol::Rtmp,
        peer: None,
        query: None,
    };
    let mut publisher = bus.publish(KEY, info).expect("the key is free");
    let bus_tag = |t: &flv::FlvTag| {
        let flags = t.flags();
        bus::Tag {
            keyframe: flags.keyframe,
            sequence_header: flags.sequence_header,
            ..bus::Tag::new(
                if t.tag_type == 8 {
                    bus::TagKind::Audio
                } else {
                    bus::TagKind::Video
                },
                u64::from(t.timestamp),
                t.body.clone(),
            )
        }
    };
    let media: Vec<&flv::FlvTag> = tags
        .iter()
        .filter(|t| matches!(t.tag_type, 8 | 9))
        .collect();
    let audio_header = media
        .iter()
        .find(|t| t.tag_type == 8 && t.flags().sequence_header)
        .expect("the fixture has an AAC header");
    publisher.push(bus_tag(audio_header));
    let viewer = tokio::spawn(async move {
        let mut res = request(addr, "GET", &format!("/{KEY}.flv"), &[]).await;
        let mut flv = FlvParser::default();
        while flv.tags.iter().filter(|t| !t.is_header()).count() < 3 {
            let more = res.read_some().await;
            assert!(!more.is_empty(), "the body ended early");
            flv.feed(&more);
        }
        flv
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    for t in media
        .iter()
        .filter(|t| !(t.tag_type == 8 && t.flags().sequence_header))
        .take(20)
    {
        publisher.push(bus_tag(t));
    }
    let flv = tokio::time::timeout(Duration::from_secs(10), viewer)
        .await
        .expect("the viewer gets frames")
        .expect("viewer task");
    stop.cancel();
    assert!(flv.has_video() && flv.has_audio(), "both tracks announced");
}

/// Publishes synthetic H.264-shaped tags fast (`tag_bytes` every 10 ms, a keyframe every 10th)
/// so that a viewer's socket buffers fill within a second.
fn spawn_fast_feeder(bus: &Bus, tag_bytes: usize, stop: CancellationToken) {
    let info = bus::PublisherInfo {
        protocol: bus::Protocol::Rtmp,
        peer: None,
        query: None,
    };
    let mut publisher = bus.publish(KEY, info).expect("the key is free");
    let header = bytes::Bytes::from_static(&[0x17, 0, 0, 0, 0, 1, 0x64, 0, 0x1f]);
    publisher.push(bus::Tag {
        keyframe: true,
        sequence_header: true,
        ..bus::Tag::new(bus::TagKind::Video, 0, header)
    });
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(10));
        for i in 0u64.. {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tick.tick() => {}
            }
            let key = i % 10 == 0;
            let mut body = vec![0u8; tag_bytes];
            body[..5].copy_from_slice(&[if key { 0x17 } else { 0x27 }, 1, 0, 0, 0]);
            let tag = bus::Tag {
                keyframe: key,
                ..bus::Tag::new(bus::TagKind::Video, i * 10, body.into())
            };
            publisher.push(tag);
        }
    });
}

/// Video timestamps of `flv` where the stream jumps by more than one tag interval, paired with
/// whether the tag after the jump is a keyframe.
fn gaps(flv: &FlvParser) -> Vec<(u32, bool)> {
    let video: Vec<_> = flv
        .tags
        .iter()
        .filter(|t| t.kind == 9 && !t.is_header())
        .collect();
    video
        .windows(2)
        .filter(|w| w[1].timestamp - w[0].timestamp > 10)
        .map(|w| (w[1].timestamp, w[1].is_video_keyframe()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_viewer_resumes_on_a_keyframe_and_others_lose_nothing() {
    // A 128-tag ring is 1.3 s of this 5 MB/s stream.
    let bus = Bus::new(bus::BusOptions {
        queue_tags: 128,
        ..Default::default()
    });
    let stop = CancellationToken::new();
    spawn_fast_feeder(&bus, 50_000, stop.clone());
    let addr = common::serve(&bus, stop.clone()).await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    let path = format!("/{KEY}.flv");
    let mut stalled = request(addr, "GET", &path, &[]).await;
    let mut steady = request(addr, "GET", &path, &[]).await;
    let mut steady_flv = FlvParser::default();
    let mut stalled_flv = FlvParser::default();
    // The steady viewer reads for 4 s while the other reads nothing.
    let until = Instant::now() + Duration::from_secs(4);
    while Instant::now() < until {
        steady_flv.feed(&steady.read_some().await);
    }
    // Then the stalled one catches up on what is buffered and live for another second.
    let until = Instant::now() + Duration::from_secs(1);
    while Instant::now() < until {
        stalled_flv.feed(&stalled.read_some().await);
    }
    let mut res = request(addr, "GET", &format!("/api/streams/{KEY}"), &[]).await;
    let api: serde_json::Value =
        serde_json::from_str(&common::body_text(&mut res).await).expect("JSON");
    stop.cancel();

    assert_eq!(gaps(&steady_flv), [], "the steady viewer lost nothing");
    let stalled_gaps = gaps(&stalled_flv);
    assert!(!stalled_gaps.is_empty(), "the stalled viewer skipped tags");
    assert!(
        stalled_gaps.iter().all(|&(_, key)| key),
        "every skip ends on a keyframe: {stalled_gaps:?}"
    );
    assert!(
        api["dropped_tags"].as_u64().is_some_and(|d| d > 0),
        "drops are counted: {api}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_viewer_sending_a_large_message_is_disconnected() {
    use futures_util::SinkExt;
    use tokio_tungstenite::tungstenite::Message;
    let (addr, _bus, stop) = live_server().await;
    let url = format!("ws://{addr}/{KEY}.flv");
    let (mut ws, _) = tokio_tungstenite::connect_async(url.as_str())
        .await
        .expect("WebSocket");
    // A ping is what a viewer may send; a 1 MB message is not.
    ws.send(Message::Ping(vec![1, 2, 3].into()))
        .await
        .expect("ping");
    let _ = ws.send(Message::Binary(vec![0u8; 1 << 20].into())).await;
    let ended = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return,
                Some(Ok(_)) => {}
            }
        }
    })
    .await;
    stop.cancel();
    assert!(
        ended.is_ok(),
        "the gateway kept a viewer that sent a 1 MB message"
    );
}

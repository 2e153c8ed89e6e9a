//! Codecs beyond H.264 + AAC: MP3 from ffmpeg, and H.265 / AV1 / VP9 tags in
//! their legacy (codec id 12) and Enhanced RTMP forms, carried untouched.

mod support;

use std::time::Duration;

use bytes::Bytes;
use rtmp::message::type_id;
use rtmp::ClientSessionEvent;
use support::*;

/// ffmpeg publishes H.264 + MP3; ffprobe over RTMP sees MP3 at 44.1 kHz.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mp3_audio_from_ffmpeg_plays_back() {
    if !have_tool("ffmpeg", "-version") || !have_tool("ffprobe", "-version") {
        return;
    }
    let mp3 = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/mp3.flv");
    if !mp3.is_file() {
        println!("SKIPPED: tests/fixtures/mp3.flv not present");
        return;
    }
    let server = start_server(Default::default()).await;
    let _publisher = ffmpeg_publish(&mp3, server.addr, "live/mp3");
    wait_live(&server.bus, "live/mp3", Duration::from_secs(10)).await;
    let out = tokio::process::Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "stream=codec_name,sample_rate",
            "-of",
            "compact=p=0:nk=0",
        ])
        .arg(url(server.addr, "live/mp3"))
        .output();
    let out = tokio::time::timeout(Duration::from_secs(20), out)
        .await
        .expect("ffprobe finishes")
        .expect("ffprobe runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("codec_name=mp3|sample_rate=44100"), "{text}");
    let info = server.bus.stream("live/mp3").expect("stream").media_info();
    assert_eq!(
        (info.audio_codec.as_deref(), info.sample_rate),
        (Some("mp3"), Some(44100))
    );
}

/// Video tags in every header form reach a player byte for byte, with the
/// sequence header first, and the bus learns the codec.
#[tokio::test]
async fn hevc_av1_vp9_tags_pass_through_untouched() {
    let cases: [(&str, &str, [&[u8]; 2]); 4] = [
        (
            "hevc12",
            "h265",
            [
                &[0x1c, 0, 0, 0, 0, 1, 2, 3],
                &[0x1c, 1, 0, 0, 0, 0, 0, 0, 2, 0x26, 1],
            ],
        ),
        (
            "hvc1",
            "h265",
            [
                &[0x90, b'h', b'v', b'c', b'1', 1, 2],
                &[0x91, b'h', b'v', b'c', b'1', 0, 0, 0, 0, 0, 0, 1],
            ],
        ),
        (
            "av01",
            "av1",
            [
                &[0x90, b'a', b'v', b'0', b'1', 0x81, 0],
                &[0x93, b'a', b'v', b'0', b'1', 0x12, 0],
            ],
        ),
        (
            "vp09",
            "vp9",
            [
                &[0x90, b'v', b'p', b'0', b'9', 1, 0],
                &[0x93, b'v', b'p', b'0', b'9', 0x82, 0x49],
            ],
        ),
    ];
    let server = start_server(Default::default()).await;
    for (name, codec, [header, frame]) in cases {
        let mut publisher = Client::connect(server.addr, "live").await;
        publisher.publish(name).await;
        assert_eq!(
            publisher.next_status().await.as_deref(),
            Some("NetStream.Publish.Start"),
            "{name}"
        );
        publisher
            .send_media(type_id::VIDEO, 0, Bytes::from_static(header))
            .await;
        publisher
            .send_media(type_id::VIDEO, 40, Bytes::from_static(frame))
            .await;
        wait_live(&server.bus, &format!("live/{name}"), Duration::from_secs(5)).await;
        let mut player = Client::connect(server.addr, "live").await;
        player.play(name).await;
        let mut videos = Vec::new();
        while videos.len() < 2 {
            let ev = tokio::time::timeout(Duration::from_secs(5), player.next_event())
                .await
                .expect("video arrives");
            if let Some(ClientSessionEvent::Media(m)) = ev {
                if m.type_id == type_id::VIDEO {
                    videos.push(m.payload);
                }
            }
        }
        assert_eq!(
            videos,
            vec![Bytes::from_static(header), Bytes::from_static(frame)],
            "{name}"
        );
        let info = server
            .bus
            .stream(&format!("live/{name}"))
            .expect("stream")
            .media_info();
        assert_eq!(info.video_codec.as_deref(), Some(codec), "{name}");
    }
}

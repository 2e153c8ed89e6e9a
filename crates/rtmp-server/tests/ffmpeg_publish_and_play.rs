//! Real ffmpeg publishes the fixture; real ffmpeg/ffprobe players watch it.

mod support;

use std::time::Duration;

use support::*;

fn waiting_opts() -> rtmp_server::Options {
    rtmp_server::Options {
        wait_for_publisher: Duration::from_secs(20),
        ..Default::default()
    }
}

/// Players that connect before the publisher receive the whole stream: the
/// same codecs, size, sample rate, frame count and frame timestamps as the file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_players_receive_every_frame_of_an_ffmpeg_publish() {
    if !have_tool("ffmpeg", "-version") || !have_tool("ffprobe", "-version") {
        return;
    }
    let tmp = tempfile::tempdir().expect("temp dir");
    let fixture = fixture(tmp.path());
    let want = probe(fixture.to_str().expect("utf-8 path")).await;
    assert!(
        want.video_packets >= 100 && want.audio_packets >= 100,
        "fixture probe: {want:?}"
    );
    let server = start_server(waiting_opts()).await;
    let outs: Vec<_> = (0..10)
        .map(|i| tmp.path().join(format!("player{i}.flv")))
        .collect();
    let players: Vec<_> = outs
        .iter()
        .map(|o| ffmpeg_record(server.addr, "live/test", o))
        .collect();
    // Let every player reach the waiting state before the publisher starts.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while server
        .bus
        .stream("live/test")
        .map_or(0, |s| s.stats().viewers_of(bus::Protocol::Rtmp))
        < 10
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "players did not all connect"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let publisher = ffmpeg_publish(&fixture, server.addr, "live/test");
    let status = wait_child(publisher, Duration::from_secs(40), "ffmpeg publisher").await;
    assert!(status.success(), "publisher failed: {status}");
    for (i, player) in players.into_iter().enumerate() {
        let status = wait_child(player, Duration::from_secs(20), "ffmpeg player").await;
        assert!(status.success(), "player {i} failed: {status}");
        let got = probe(outs[i].to_str().expect("utf-8 path")).await;
        assert_eq!(
            (
                &got.video_codec[..],
                got.width,
                got.height,
                &got.audio_codec[..],
                got.sample_rate
            ),
            ("h264", 640, 360, "aac", 44100),
            "player {i}"
        );
        assert_eq!(
            got.video_packets, want.video_packets,
            "player {i} video frame count"
        );
        assert_eq!(
            got.audio_packets, want.audio_packets,
            "player {i} audio frame count"
        );
        assert_eq!(
            got.video_dts_ms, want.video_dts_ms,
            "player {i} video timestamps"
        );
    }
}

/// ffprobe pointed at a live stream over RTMP sees the fixture's codecs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ffprobe_over_rtmp_reports_the_published_codecs() {
    if !have_tool("ffmpeg", "-version") || !have_tool("ffprobe", "-version") {
        return;
    }
    let tmp = tempfile::tempdir().expect("temp dir");
    let fixture = fixture(tmp.path());
    let server = start_server(Default::default()).await;
    let _publisher = ffmpeg_publish(&fixture, server.addr, "live/probe");
    wait_live(&server.bus, "live/probe", Duration::from_secs(10)).await;
    let out = tokio::process::Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "stream=codec_name,width,height,sample_rate,channels",
        ])
        .args(["-of", "compact=p=0:nk=0"])
        .arg(url(server.addr, "live/probe"))
        .output();
    let out = tokio::time::timeout(Duration::from_secs(20), out)
        .await
        .expect("ffprobe finishes")
        .expect("ffprobe runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("codec_name=h264|width=640|height=360"),
        "{text}"
    );
    assert!(
        text.contains("codec_name=aac|sample_rate=44100|channels=2"),
        "{text}"
    );
    let info = server
        .bus
        .stream("live/probe")
        .expect("stream exists")
        .media_info();
    assert_eq!(
        (info.video_codec.as_deref(), info.width, info.height),
        (Some("h264"), Some(640), Some(360))
    );
    assert_eq!(
        (info.audio_codec.as_deref(), info.sample_rate, info.channels),
        (Some("aac"), Some(44100), Some(2))
    );
}

/// Without waiting, playing a stream nobody publishes is refused at once.
#[tokio::test]
async fn play_of_missing_stream_is_stream_not_found() {
    let server = start_server(Default::default()).await;
    let mut c = Client::connect(server.addr, "live").await;
    c.play("nobody").await;
    assert_eq!(
        c.next_status().await.as_deref(),
        Some("NetStream.Play.StreamNotFound")
    );
}

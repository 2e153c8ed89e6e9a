//! Late joiners, a refused second publisher, and malformed input that must
//! close only the offending connection.

mod support;

use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use rtmp::message::type_id;
use rtmp::{ClientSessionEvent, RawMessage};
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Collects the first `n` media/data messages a player receives.
async fn first_media(c: &mut Client, n: usize) -> Vec<RawMessage> {
    let mut out = Vec::new();
    while out.len() < n {
        let ev = tokio::time::timeout(Duration::from_secs(10), c.next_event())
            .await
            .expect("media keeps coming");
        match ev {
            Some(ClientSessionEvent::Media(m)) => out.push(m),
            Some(_) => {}
            None => panic!("server closed the player"),
        }
    }
    out
}

fn is_video_seq_header(m: &RawMessage) -> bool {
    m.type_id == type_id::VIDEO && m.payload.get(1) == Some(&0)
}

fn is_audio_seq_header(m: &RawMessage) -> bool {
    m.type_id == type_id::AUDIO && m.payload.get(1) == Some(&0)
}

/// A player joining mid-stream gets metadata and both sequence headers
/// before any frame, and its first video frame is a keyframe.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_joiner_starts_on_a_keyframe_after_sequence_headers() {
    if !have_tool("ffmpeg", "-version") {
        return;
    }
    let tmp = tempfile::tempdir().expect("temp dir");
    let fixture = fixture(tmp.path());
    let server = start_server(Default::default()).await;
    let _publisher = ffmpeg_publish(&fixture, server.addr, "live/late");
    wait_live(&server.bus, "live/late", Duration::from_secs(10)).await;
    // Join well after the first keyframe (the fixture has one every 2 s).
    tokio::time::sleep(Duration::from_millis(3100)).await;
    let mut c = Client::connect(server.addr, "live").await;
    c.play("late").await;
    let msgs = first_media(&mut c, 40).await;
    let first_frame = msgs
        .iter()
        .position(|m| !is_video_seq_header(m) && !is_audio_seq_header(m) && m.type_id != 18);
    let first_frame = first_frame.expect("frames arrive");
    let head = &msgs[..first_frame];
    assert!(
        head.iter().any(|m| m.type_id == type_id::DATA_AMF0),
        "metadata before frames"
    );
    assert!(
        head.iter().any(is_video_seq_header),
        "video sequence header before frames"
    );
    assert!(
        head.iter().any(is_audio_seq_header),
        "audio sequence header before frames"
    );
    let first_video = msgs[first_frame..]
        .iter()
        .find(|m| m.type_id == type_id::VIDEO)
        .expect("a video frame");
    assert_eq!(
        first_video.payload[0] >> 4,
        1,
        "first video frame is a keyframe"
    );
    assert!(
        first_video.timestamp >= 1900,
        "joined mid-stream (ts {})",
        first_video.timestamp
    );
}

/// With write batching on, a player still gets its start-up burst first and then every live
/// frame, once and in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_delay_keeps_every_frame_in_order() {
    if !have_tool("ffmpeg", "-version") {
        return;
    }
    let tmp = tempfile::tempdir().expect("temp dir");
    let fixture = fixture(tmp.path());
    let opts = rtmp_server::Options {
        write_delay: Duration::from_millis(100),
        ..Default::default()
    };
    let server = start_server(opts).await;
    let _publisher = ffmpeg_publish(&fixture, server.addr, "live/batched");
    wait_live(&server.bus, "live/batched", Duration::from_secs(10)).await;
    let mut c = Client::connect(server.addr, "live").await;
    c.play("batched").await;
    // About 3 s of media: well past any start-up burst.
    let msgs = first_media(&mut c, 200).await;
    let video: Vec<u32> = msgs
        .iter()
        .filter(|m| m.type_id == type_id::VIDEO && !is_video_seq_header(m))
        .map(|m| m.timestamp)
        .collect();
    assert!(video.len() > 60, "video frames: {}", video.len());
    // The fixture is 25 fps: consecutive frames are 40 ms apart, so a lost or repeated frame
    // shows as another step.
    assert!(
        video.windows(2).all(|w| w[1].wrapping_sub(w[0]) == 40),
        "every frame once, in order: {video:?}"
    );
    let audio: Vec<u32> = msgs
        .iter()
        .filter(|m| m.type_id == type_id::AUDIO && !is_audio_seq_header(m))
        .map(|m| m.timestamp)
        .collect();
    assert!(
        audio.windows(2).all(|w| w[0] < w[1]),
        "audio in order: {audio:?}"
    );
}

/// Publishing a key that is live is refused with BadName; the first
/// publisher and its player carry on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_publisher_gets_bad_name_and_first_is_unharmed() {
    if !have_tool("ffmpeg", "-version") {
        return;
    }
    let tmp = tempfile::tempdir().expect("temp dir");
    let fixture = fixture(tmp.path());
    let server = start_server(Default::default()).await;
    let publisher = ffmpeg_publish(&fixture, server.addr, "live/dup");
    wait_live(&server.bus, "live/dup", Duration::from_secs(10)).await;
    let mut player = Client::connect(server.addr, "live").await;
    player.play("dup").await;
    let mut second = Client::connect(server.addr, "live").await;
    second.publish("dup").await;
    assert_eq!(
        second.next_status().await.as_deref(),
        Some("NetStream.Publish.BadName")
    );
    // The refused client may still talk; its media goes nowhere.
    second
        .send_media(type_id::VIDEO, 0, Bytes::from_static(&[0x17, 1, 0, 0, 0]))
        .await;
    assert!(
        player.count_media(Duration::from_secs(2)).await > 20,
        "player keeps receiving"
    );
    let status = wait_child(publisher, Duration::from_secs(30), "first publisher").await;
    assert!(status.success(), "first publisher failed: {status}");
}

/// Handshake bytes for a plain client, then `rest`.
fn after_handshake(rest: &[u8]) -> Vec<u8> {
    let mut v = vec![3u8];
    v.extend_from_slice(&[0u8; 1536]);
    v.extend_from_slice(&[0u8; 1536]);
    v.extend_from_slice(rest);
    v
}

/// Sends `bytes` on a fresh connection and reports whether the server closed
/// it within two seconds.
async fn server_closes_after(
    addr: std::net::SocketAddr,
    bytes: &[u8],
    then_close_write: bool,
) -> bool {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    s.write_all(bytes).await.expect("send malformed input");
    if then_close_write {
        s.shutdown().await.expect("half-close");
    }
    let mut buf = vec![0u8; 65536];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    loop {
        match tokio::time::timeout_at(deadline, s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
            Err(_) => return false,
        }
    }
}

fn chunk(csid: u8, type_id: u8, body: &[u8]) -> Vec<u8> {
    let mut b = BytesMut::new();
    b.put_u8(csid);
    b.put_slice(&[0, 0, 0]);
    b.put_slice(&(body.len() as u32).to_be_bytes()[1..]);
    b.put_u8(type_id);
    b.put_u32_le(0);
    b.put_slice(body);
    b.to_vec()
}

/// Each kind of malformed input ends its own connection; a player of a live
/// stream keeps receiving throughout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_input_closes_only_that_connection() {
    if !have_tool("ffmpeg", "-version") {
        return;
    }
    let tmp = tempfile::tempdir().expect("temp dir");
    let fixture = fixture(tmp.path());
    let opts = rtmp_server::Options {
        max_message_size: 1024 * 1024,
        ..Default::default()
    };
    let server = start_server(opts).await;
    let _publisher = ffmpeg_publish(&fixture, server.addr, "live/faults");
    wait_live(&server.bus, "live/faults", Duration::from_secs(10)).await;
    let mut player = Client::connect(server.addr, "live").await;
    player.play("faults").await;
    assert!(
        player.count_media(Duration::from_millis(500)).await > 0,
        "player receives before the faults"
    );

    let oversized = {
        let mut v = vec![0x04, 0, 0, 0, 0xff, 0xff, 0xff, 9];
        v.extend_from_slice(&1u32.to_le_bytes());
        v
    };
    let cases: Vec<(&str, Vec<u8>, bool)> = vec![
        (
            "truncated handshake",
            [&[3u8][..], &[0u8; 700]].concat(),
            true,
        ),
        ("wrong RTMP version", vec![6u8; 1537], false),
        (
            "chunk stream never opened with fmt 0",
            after_handshake(&[0x45, 0, 0, 0, 0, 0, 4, 20, 1, 2, 3, 4]),
            false,
        ),
        (
            "oversized message length",
            after_handshake(&oversized),
            false,
        ),
        (
            "garbage AMF command",
            after_handshake(&chunk(3, 20, &[0x02, 0x00, 0x10, b'c', 0xff, 0xfe])),
            false,
        ),
    ];
    for (name, bytes, half_close) in cases {
        assert!(
            server_closes_after(server.addr, &bytes, half_close).await,
            "{name}: server kept the connection"
        );
        assert!(
            player.count_media(Duration::from_millis(1000)).await > 0,
            "{name}: player stopped receiving"
        );
    }
    assert!(
        server
            .bus
            .stream("live/faults")
            .is_some_and(|s| s.is_live()),
        "publisher still live"
    );
}

/// A client that never finishes its handshake is dropped after the timeout.
#[tokio::test]
async fn silent_client_is_dropped_after_the_handshake_timeout() {
    let opts = rtmp_server::Options {
        handshake_timeout: Duration::from_millis(300),
        ..Default::default()
    };
    let server = start_server(opts).await;
    assert!(
        server_closes_after(server.addr, &[3u8], false).await,
        "server kept a silent client"
    );
}

/// A waiting player whose publisher never comes gets StreamNotFound when
/// the wait ends.
#[tokio::test]
async fn waiting_player_gets_stream_not_found_when_no_publisher_comes() {
    let opts = rtmp_server::Options {
        wait_for_publisher: Duration::from_millis(300),
        ..Default::default()
    };
    let server = start_server(opts).await;
    let mut c = Client::connect(server.addr, "live").await;
    c.play("later").await;
    let status = tokio::time::timeout(Duration::from_secs(3), c.next_status())
        .await
        .expect("answered in time");
    assert_eq!(status.as_deref(), Some("NetStream.Play.StreamNotFound"));
}

/// A waiting player starts (Play.Reset, Play.Start) when the publisher
/// arrives, and receives what it publishes.
#[tokio::test]
async fn waiting_player_starts_when_the_publisher_arrives() {
    let opts = rtmp_server::Options {
        wait_for_publisher: Duration::from_secs(5),
        ..Default::default()
    };
    let server = start_server(opts).await;
    let mut player = Client::connect(server.addr, "live").await;
    player.play("soon").await;
    let mut publisher = Client::connect(server.addr, "live").await;
    publisher.publish("soon?token=x").await;
    assert_eq!(
        publisher.next_status().await.as_deref(),
        Some("NetStream.Publish.Start")
    );
    let seq = Bytes::from_static(&[0x17, 0, 0, 0, 0, 1, 0x4d, 0, 0x1e, 0xff]);
    publisher.send_media(type_id::VIDEO, 0, seq.clone()).await;
    assert_eq!(
        player.next_status().await.as_deref(),
        Some("NetStream.Play.Reset")
    );
    assert_eq!(
        player.next_status().await.as_deref(),
        Some("NetStream.Play.Start")
    );
    let media = first_media(&mut player, 2).await;
    let video = media
        .iter()
        .find(|m| m.type_id == type_id::VIDEO)
        .expect("video arrives");
    assert_eq!(video.payload, seq);
    let stats = server
        .bus
        .stream("live/soon")
        .expect("stream exists")
        .stats();
    assert_eq!(
        stats.publisher.and_then(|p| p.query).as_deref(),
        Some("token=x")
    );
}

/// A viewer that stops reading neither slows the publisher nor the other
/// viewers, and is disconnected once its socket accepts nothing for the send timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_viewer_does_not_hold_back_anyone() {
    if !have_tool("ffmpeg", "-version") {
        return;
    }
    let tmp = tempfile::tempdir().expect("temp dir");
    let fixture = fixture(tmp.path());
    let opts = rtmp_server::Options {
        send_timeout: Duration::from_secs(1),
        wait_for_publisher: Duration::from_secs(10),
        ..Default::default()
    };
    let server = start_server(opts).await;
    // The stalled viewer: a tiny receive buffer, plays, then never reads again.
    let mut stalled = Client::connect(server.addr, "live").await;
    stalled.play("stall").await;
    let mut healthy = Client::connect(server.addr, "live").await;
    healthy.play("stall").await;
    // Publish 11 copies of the fixture (about 7 MB) as fast as ffmpeg can.
    let publisher = tokio::process::Command::new("ffmpeg")
        .args([
            "-hide_banner",
            "-nostdin",
            "-loglevel",
            "error",
            "-stream_loop",
            "10",
            "-i",
        ])
        .arg(&fixture)
        .args(["-c", "copy", "-f", "flv"])
        .arg(url(server.addr, "live/stall"))
        .kill_on_drop(true)
        .spawn()
        .expect("spawn ffmpeg");
    let started = tokio::time::Instant::now();
    let received = healthy.count_media(Duration::from_secs(4)).await;
    assert!(
        received > 500,
        "healthy viewer received only {received} messages"
    );
    let status = wait_child(publisher, Duration::from_secs(30), "fast publisher").await;
    assert!(status.success(), "publisher failed: {status}");
    assert!(
        started.elapsed() < Duration::from_secs(25),
        "publisher was held back"
    );
    // The server gave up on the stalled viewer: draining its socket ends in EOF or reset.
    let mut buf = vec![0u8; 1 << 20];
    let closed = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            match stalled.socket.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => continue,
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "stalled viewer was never disconnected");
}

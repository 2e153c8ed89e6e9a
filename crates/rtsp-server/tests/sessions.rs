//! Session behaviours seen from a raw RTSP client: RTP-Info and the keyframe start, keepalive by
//! RTCP receiver reports, reaping of silent sessions and reuse of their ports, clear errors for bad
//! input while other sessions keep playing, a slow TCP viewer that skips to the next keyframe, and
//! a connection without a session closed once it stops completing requests (slowloris).

mod common;

use std::time::Duration;

use common::{RawClient, RawResponse};
use tokio::net::UdpSocket;

const TCP_BOTH: [&str; 2] = [
    "RTP/AVP/TCP;unicast;interleaved=0-1",
    "RTP/AVP/TCP;unicast;interleaved=2-3",
];

/// DESCRIBE, SETUP every track with the given transports, PLAY; returns the PLAY response.
async fn play(c: &mut RawClient, url: &str, transports: &[String]) -> RawResponse {
    let d = c
        .request("DESCRIBE", url, "Accept: application/sdp\r\n")
        .await;
    assert_eq!(d.status, 200, "DESCRIBE: {d:?}");
    for (i, t) in transports.iter().enumerate() {
        let s = c
            .request(
                "SETUP",
                &format!("{url}/trackID={i}"),
                &format!("Transport: {t}\r\n"),
            )
            .await;
        assert_eq!(s.status, 200, "SETUP: {s:?}");
    }
    let p = c
        .request("PLAY", &format!("{url}/"), "Range: npt=0.000-\r\n")
        .await;
    assert_eq!(p.status, 200, "PLAY: {p:?}");
    p
}

/// Returns whether an H.264 RTP payload starts a keyframe: STAP-A with SPS, an IDR, or FU-A of an IDR.
fn starts_keyframe(payload: &[u8]) -> bool {
    match payload.first().map(|b| b & 0x1f) {
        Some(24) => payload.get(3).is_some_and(|b| b & 0x1f == 7),
        Some(5) | Some(7) => true,
        Some(28) => payload
            .get(1)
            .is_some_and(|b| b & 0x80 != 0 && b & 0x1f == 5),
        _ => false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn play_starts_on_a_keyframe_at_the_rtp_info_position() {
    let Some(h) = common::start(common::options()).await else {
        return;
    };
    // Let the stream pass its first keyframe so the session starts from the GOP cache mid-stream.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let mut c = RawClient::connect(h.addr).await;
    let p = play(&mut c, &h.url(), &TCP_BOTH.map(String::from)).await;
    assert_eq!(p.header("Range").as_deref(), Some("npt=now-"));
    let info = p.header("RTP-Info").expect("PLAY answers RTP-Info");
    let entries: Vec<&str> = info.split(',').collect();
    assert_eq!(entries.len(), 2, "one entry per track: {info}");
    assert!(
        entries[0].starts_with(&format!("url={}/trackID=0;seq=", h.url())),
        "{info}"
    );
    let field = |e: &str, k: &str| -> u32 {
        e.split(';')
            .find_map(|f| f.strip_prefix(k))
            .and_then(|v| v.parse().ok())
            .expect("field present")
    };
    let (seq, rtptime) = (field(entries[0], "seq="), field(entries[0], "rtptime="));
    let latency = c
        .first_frame_on(0, Duration::from_secs(5))
        .await
        .expect("video RTP within 5 s");
    println!("PLAY to first video RTP packet: {latency:?} (after the PLAY response)");
    let first = &c
        .frames
        .iter()
        .find(|(ch, _)| *ch == 0)
        .expect("video frame")
        .1;
    let pkt = rtp::RtpPacketRef::parse(first).expect("valid RTP");
    assert_eq!(u32::from(pkt.header.sequence), seq);
    assert_eq!(pkt.header.timestamp, rtptime);
    assert!(
        starts_keyframe(pkt.payload),
        "first payload {:02x?}",
        &pkt.payload[..4]
    );
    let first_rtcp = &c
        .frames
        .iter()
        .find(|(ch, _)| *ch == 1)
        .expect("an RTCP frame")
        .1;
    assert_eq!(
        first_rtcp.get(1),
        Some(&200),
        "a Sender Report comes first on the RTCP channel"
    );
}

/// Opens a UDP session on track 0; returns the client, its RTP and RTCP sockets and the server ports.
async fn udp_session(h: &common::Harness) -> (RawClient, UdpSocket, UdpSocket, u16) {
    let rtp = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    let rtcp = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    let (a, b) = (
        rtp.local_addr().expect("bound").port(),
        rtcp.local_addr().expect("bound").port(),
    );
    let mut c = RawClient::connect(h.addr).await;
    let url = h.url();
    assert_eq!(c.request("DESCRIBE", &url, "").await.status, 200);
    let s = c
        .request(
            "SETUP",
            &format!("{url}/trackID=0"),
            &format!("Transport: RTP/AVP;unicast;client_port={a}-{b}\r\n"),
        )
        .await;
    assert_eq!(s.status, 200, "{s:?}");
    let transport = s.header("Transport").expect("Transport");
    let server_port: u16 = transport
        .split(';')
        .find_map(|p| p.strip_prefix("server_port="))
        .and_then(|p| p.split('-').next()?.parse().ok())
        .expect("server_port in reply");
    assert_eq!(server_port % 2, 0, "RTP on an even port");
    assert_eq!(c.request("PLAY", &format!("{url}/"), "").await.status, 200);
    (c, rtp, rtcp, server_port)
}

/// Counts datagrams arriving on `s` within `dur`; returns (count, saw an RTCP BYE).
async fn drain(s: &UdpSocket, dur: Duration) -> (usize, bool) {
    let deadline = tokio::time::Instant::now() + dur;
    let mut buf = vec![0u8; 2048];
    let (mut n, mut bye) = (0, false);
    while let Ok(Ok(len)) = tokio::time::timeout_at(deadline, s.recv(&mut buf)).await {
        n += 1;
        bye |= rtp::rtcp::parse_compound(&buf[..len])
            .is_ok_and(|p| p.contains(&rtp::rtcp::RtcpPacket::Bye));
    }
    (n, bye)
}

fn receiver_report(ssrc: u32) -> Vec<u8> {
    let mut rr = vec![0x81, 201, 0, 7, 0, 0, 0, 42];
    rr.extend_from_slice(&ssrc.to_be_bytes());
    rr.extend_from_slice(&[
        0x10, 0, 0, 3, 0, 0, 1, 0, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0, 0,
    ]);
    rr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receiver_reports_keep_a_session_alive_and_a_silent_one_is_reaped() {
    let base = common::port_base() + 20;
    let timeout = Duration::from_secs(2);
    // Two port pairs: one for the kept-alive session, one for the silent session and then its successor.
    let opts = rtsp_server::Options {
        udp_port_min: base,
        udp_port_max: base + 3,
        session_timeout: timeout,
        ..Default::default()
    };
    let Some(h) = common::start(opts).await else {
        return;
    };
    let (mut kept, kept_rtp, kept_rtcp, kept_port) = udp_session(&h).await;
    let (mut silent, silent_rtp, silent_rtcp, silent_port) = udp_session(&h).await;
    assert_ne!(kept_port, silent_port);
    let server_rtcp = std::net::SocketAddr::from(([127, 0, 0, 1], kept_port + 1));
    let rr = receiver_report(0);
    let reporter = tokio::spawn(async move {
        for _ in 0..8 {
            kept_rtcp.send_to(&rr, server_rtcp).await.expect("send RR");
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        kept_rtcp
    });
    let (during, _) = drain(&silent_rtp, Duration::from_millis(500)).await;
    assert!(during > 0, "the silent session plays before its timeout");
    // Past twice the timeout: the silent session is gone, its connection closed.
    tokio::time::sleep(timeout * 2).await;
    assert!(
        silent.read_response().await.is_none(),
        "the reaped session's connection is closed"
    );
    let (_, bye) = drain(&silent_rtcp, Duration::from_millis(200)).await;
    assert!(bye, "the reaped session got an RTCP BYE");
    let _ = drain(&silent_rtp, Duration::from_millis(200)).await;
    let (after, _) = drain(&silent_rtp, Duration::from_millis(500)).await;
    assert_eq!(after, 0, "no media after reaping");
    let (alive, _) = drain(&kept_rtp, Duration::from_millis(500)).await;
    assert!(
        alive > 0,
        "the session kept alive only by receiver reports still plays"
    );
    let stream = h.bus.stream(common::KEY).expect("live");
    let listed = rtsp_server::sessions(&stream);
    assert_eq!(
        listed.len(),
        1,
        "only the kept session is listed: {listed:?}"
    );
    let track = listed[0].tracks.first().expect("receiver reports recorded");
    assert!(track.receiver_reports >= 3, "{track:?}");
    assert_eq!(
        (track.fraction_lost, track.cumulative_lost, track.jitter),
        (16.0 / 256.0, 3, 7)
    );
    // The freed pair is handed out again.
    let (_next, _, _, next_port) = udp_session(&h).await;
    assert_eq!(
        next_port, silent_port,
        "the reaped session's ports are reused"
    );
    let _ = reporter.await;
    let keepalive = kept
        .request("GET_PARAMETER", &format!("{}/", h.url()), "")
        .await;
    assert_eq!(
        keepalive.status, 200,
        "the kept session is still known: {keepalive:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_clear_errors_while_others_keep_playing() {
    let Some(h) = common::start(common::options()).await else {
        return;
    };
    let mut viewer = RawClient::connect(h.addr).await;
    play(&mut viewer, &h.url(), &TCP_BOTH.map(String::from)).await;
    assert!(viewer.pump_frames(Duration::from_millis(500)).await > 0);

    let mut garbage = RawClient::connect(h.addr).await;
    tokio::io::AsyncWriteExt::write_all(&mut garbage.stream, b"\x16\x03\x01\x02\x00garbage\r\n")
        .await
        .expect("write");
    let r = garbage.read_response().await.expect("an answer to garbage");
    assert_eq!(r.status, 400, "{r:?}");
    assert!(r.body.contains("malformed request line"), "{r:?}");
    assert!(
        garbage.read_response().await.is_none(),
        "closed after garbage"
    );

    let mut big = RawClient::connect(h.addr).await;
    let huge = format!(
        "OPTIONS * RTSP/1.0\r\nCSeq: 1\r\nX-Big: {}\r\n\r\n",
        "a".repeat(rtsp::MAX_HEADER_BYTES)
    );
    tokio::io::AsyncWriteExt::write_all(&mut big.stream, huge.as_bytes())
        .await
        .expect("write");
    let r = big
        .read_response()
        .await
        .expect("an answer to an oversized header");
    assert_eq!(r.status, 400, "{r:?}");
    assert!(
        r.body.contains("request header larger than 8192 bytes"),
        "{r:?}"
    );

    let mut c = RawClient::connect(h.addr).await;
    let url = h.url();
    let r = c
        .request(
            "SETUP",
            &format!("{url}/trackID=7"),
            "Transport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n",
        )
        .await;
    assert_eq!(r.status, 404, "{r:?}");
    assert_eq!(
        r.body,
        "track 7 does not exist; stream live/test has 2 track(s)\r\n"
    );
    let r = c
        .request("DESCRIBE", &format!("rtsp://{}/live/none", h.addr), "")
        .await;
    assert_eq!(
        (r.status, r.body.as_str()),
        (404, "stream live/none is not live\r\n")
    );
    let r = c.request("PLAY", &format!("{url}/"), "").await;
    assert_eq!(r.status, 455, "{r:?}");
    let r = c
        .request(
            "SETUP",
            &format!("{url}/trackID=0"),
            "Transport: RTP/AVP;multicast\r\n",
        )
        .await;
    assert_eq!(r.status, 461, "{r:?}");
    let r = c
        .request("SETUP", &url, "Transport: RTP/AVP/TCP;unicast\r\n")
        .await;
    assert_eq!(
        r.status, 459,
        "aggregate SETUP of a two-track stream: {r:?}"
    );

    let mut mixed = RawClient::connect(h.addr).await;
    let r = mixed
        .request(
            "SETUP",
            &format!("{url}/trackID=0"),
            "Transport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n",
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    let r = mixed
        .request(
            "SETUP",
            &format!("{url}/trackID=1"),
            "Transport: RTP/AVP;unicast;client_port=5000-5001\r\n",
        )
        .await;
    assert_eq!(r.status, 461, "UDP and TCP mixed in one session: {r:?}");

    let before = viewer.frames.len();
    assert!(
        viewer.pump_frames(Duration::from_secs(1)).await > 20,
        "the first viewer kept playing"
    );
    assert!(viewer.frames.len() > before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_tcp_viewer_skips_to_a_keyframe_without_delaying_others() {
    let opts = rtsp_server::Options {
        queue_units: 32,
        tcp_send_buffer: Some(8192),
        ..common::options()
    };
    let Some(h) = common::start(opts).await else {
        return;
    };
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket
        .set_recv_buffer_size(4096)
        .expect("small receive buffer");
    let mut slow = RawClient::from_stream(socket.connect(h.addr).await.expect("connect"));
    let mut fast = RawClient::connect(h.addr).await;
    play(&mut slow, &h.url(), &TCP_BOTH.map(String::from)).await;
    play(&mut fast, &h.url(), &TCP_BOTH.map(String::from)).await;
    // The slow viewer stops reading for 6 s; the fast one must keep its full rate meanwhile.
    let fast_frames = fast.pump_frames(Duration::from_secs(6)).await;
    assert!(
        fast_frames > 6 * 25,
        "the fast viewer received only {fast_frames} frames in 6 s"
    );
    slow.pump_frames(Duration::from_secs(3)).await;
    let video: Vec<rtp::RtpHeader> = slow
        .frames
        .iter()
        .filter(|(ch, _)| *ch == 0)
        .filter_map(|(_, f)| rtp::RtpPacketRef::parse(f).ok().map(|p| p.header))
        .collect();
    let gap = video
        .windows(2)
        .position(|w| w[1].sequence != w[0].sequence.wrapping_add(1));
    let gap = gap.expect("the stalled viewer lost packets");
    let resumed = slow
        .frames
        .iter()
        .filter(|(ch, _)| *ch == 0)
        .nth(gap + 1)
        .expect("packets after the gap");
    let pkt = rtp::RtpPacketRef::parse(&resumed.1).expect("valid RTP");
    assert!(
        starts_keyframe(pkt.payload),
        "after the gap the stream resumes on a keyframe: {:02x?}",
        &pkt.payload[..4]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_stops_media_and_play_resumes_on_a_keyframe() {
    let Some(h) = common::start(common::options()).await else {
        return;
    };
    let mut c = RawClient::connect(h.addr).await;
    play(&mut c, &h.url(), &TCP_BOTH.map(String::from)).await;
    assert!(c.pump_frames(Duration::from_millis(500)).await > 0);
    let r = c.request("PAUSE", &format!("{}/", h.url()), "").await;
    assert_eq!(r.status, 200, "{r:?}");
    c.pump_frames(Duration::from_millis(200)).await;
    assert_eq!(
        c.pump_frames(Duration::from_millis(1000)).await,
        0,
        "no media while paused"
    );
    c.frames.clear();
    let r = c.request("PLAY", &format!("{}/", h.url()), "").await;
    assert_eq!(r.status, 200, "{r:?}");
    c.first_frame_on(0, Duration::from_secs(3))
        .await
        .expect("media after PLAY");
    let first = &c.frames.iter().find(|(ch, _)| *ch == 0).expect("video").1;
    let pkt = rtp::RtpPacketRef::parse(first).expect("valid RTP");
    assert!(
        starts_keyframe(pkt.payload),
        "resumed on {:02x?}",
        &pkt.payload[..4]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_end_sends_bye_and_closes_the_session() {
    let Some(path) = common::fixture() else {
        return;
    };
    let tags = common::fixture_tags(path);
    let bus = bus::Bus::new(bus::BusOptions {
        unpublish_grace: Duration::from_millis(300),
        ..Default::default()
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind port 0");
    let addr = listener.local_addr().expect("bound");
    let (server_stop, feed_stop) = (
        tokio_util::sync::CancellationToken::new(),
        tokio_util::sync::CancellationToken::new(),
    );
    let _guard = server_stop.clone().drop_guard();
    tokio::spawn(rtsp_server::run(
        listener,
        bus.clone(),
        common::options(),
        server_stop.clone(),
    ));
    tokio::spawn(common::feed(bus.clone(), tags, feed_stop.clone()));
    while bus
        .stream(common::KEY)
        .is_none_or(|s| s.audio_sequence_header().is_none())
    {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let url = format!("rtsp://{addr}/{}", common::KEY);
    let mut c = RawClient::connect(addr).await;
    play(&mut c, &url, &TCP_BOTH.map(String::from)).await;
    assert!(c.pump_frames(Duration::from_millis(500)).await > 0);
    feed_stop.cancel();
    assert!(
        c.read_response().await.is_none(),
        "the server closes the connection when the stream ends"
    );
    let byes = c.frames.iter().filter(|(ch, f)| {
        *ch % 2 == 1
            && rtp::rtcp::parse_compound(f).is_ok_and(|p| p.contains(&rtp::rtcp::RtcpPacket::Bye))
    });
    assert_eq!(byes.count(), 2, "one BYE per track");
    let again = RawClient::connect(addr)
        .await
        .request("DESCRIBE", &url, "")
        .await;
    assert_eq!(again.status, 404, "the ended stream is no longer described");
}

/// A DESCRIBE that arrives while a publisher has sent its audio header but not yet its video
/// header or first frame waits for them, and the SDP lists both tracks (answering at once would
/// be a 404, or worse a presentation without video for the stream's whole life).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn describe_of_a_stream_that_just_started_waits_for_its_first_frame() {
    let Some(path) = common::fixture() else {
        return;
    };
    let tags = common::fixture_tags(path);
    let bus = bus::Bus::new(bus::BusOptions::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind port 0");
    let addr = listener.local_addr().expect("bound");
    let stop = tokio_util::sync::CancellationToken::new();
    tokio::spawn(rtsp_server::run(
        listener,
        bus.clone(),
        common::options(),
        stop.clone(),
    ));
    let info = bus::PublisherInfo {
        protocol: bus::Protocol::Internal,
        peer: None,
        query: None,
    };
    let mut publisher = bus.publish(common::KEY, info).expect("free key");
    let audio_header = tags
        .iter()
        .find(|t| t.kind == bus::TagKind::Audio && t.sequence_header)
        .expect("fixture has an AAC header");
    publisher.push(audio_header.clone());
    let url = format!("rtsp://{addr}/{}", common::KEY);
    let describe = tokio::spawn(async move {
        let mut c = RawClient::connect(addr).await;
        c.request("DESCRIBE", &url, "Accept: application/sdp\r\n")
            .await
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    // The rest of the start: video header, then frames up to the second video frame.
    let mut video_frames = 0;
    for t in tags
        .iter()
        .filter(|t| !(t.kind == bus::TagKind::Audio && t.sequence_header))
    {
        publisher.push(t.clone());
        if t.kind == bus::TagKind::Video && !t.sequence_header {
            video_frames += 1;
            if video_frames == 2 {
                break;
            }
        }
    }
    let resp = describe.await.expect("describe task");
    assert_eq!(resp.status, 200, "{}", resp.head);
    assert!(resp.body.contains("m=video"), "video track: {}", resp.body);
    assert!(resp.body.contains("m=audio"), "audio track: {}", resp.body);
    stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_without_a_session_must_keep_sending_whole_requests() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let timeout = Duration::from_secs(2);
    let opts = rtsp_server::Options {
        request_timeout: timeout,
        ..common::options()
    };
    let Some(h) = common::start(opts).await else {
        return;
    };
    // A slowloris client trickles one request a byte at a time and never finishes it.
    let mut slow = tokio::net::TcpStream::connect(h.addr)
        .await
        .expect("server accepts");
    let head = format!("OPTIONS {} RTSP/1.0\r\nCSeq: 1\r\nX-Slow: ", h.url());
    slow.write_all(head.as_bytes()).await.expect("write");
    // An honest client without a session asks something now and then.
    let mut honest = RawClient::connect(h.addr).await;
    let started = tokio::time::Instant::now();
    let mut closed_after = None;
    while started.elapsed() < timeout * 3 {
        tokio::time::sleep(Duration::from_millis(400)).await;
        let r = honest.request("OPTIONS", &h.url(), "").await;
        assert_eq!(r.status, 200, "the honest connection is served: {r:?}");
        let mut b = [0u8; 64];
        let wrote = slow.write_all(b"a").await.is_ok();
        let read = tokio::time::timeout(Duration::from_millis(10), slow.read(&mut b)).await;
        if !wrote || matches!(read, Ok(Ok(0)) | Ok(Err(_))) {
            closed_after = Some(started.elapsed());
            break;
        }
    }
    let closed_after = closed_after.expect("the slowloris connection was never closed");
    assert!(
        closed_after >= timeout,
        "closed after {closed_after:?}, before the {timeout:?} timeout"
    );
}

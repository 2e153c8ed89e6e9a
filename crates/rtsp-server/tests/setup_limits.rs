//! What one client may take from the server: a repeated SETUP reuses its track's port pair, a
//! client address holds a bounded number of sessions and a connection one, client ports below
//! 1024 and a `destination` naming another host are refused (each refusal counted for the stats
//! API), and a playing session counts as an RTSP viewer on the bus.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::RawClient;
use futures_util::StreamExt;
use retina::client::{PlayOptions, SessionOptions, SetupOptions, Transport};
use retina::codec::CodecItem;

fn server_port(resp: &common::RawResponse) -> u16 {
    resp.header("Transport")
        .and_then(|t| {
            t.split(';')
                .find_map(|p| p.strip_prefix("server_port="))
                .and_then(|p| p.split('-').next()?.parse().ok())
        })
        .unwrap_or_else(|| panic!("server_port in the reply: {resp:?}"))
}

/// retina DESCRIBEs, SETUPs every track over UDP and PLAYs; returns the video frames received
/// within `limit` (at most 10).
async fn retina_udp_frames(url: &str, limit: Duration) -> usize {
    let url = url::Url::parse(url).expect("valid URL");
    let mut session = retina::client::Session::describe(url, SessionOptions::default())
        .await
        .expect("DESCRIBE succeeds");
    for i in 0..session.streams().len() {
        session
            .setup(
                i,
                SetupOptions::default().transport(Transport::Udp(Default::default())),
            )
            .await
            .expect("SETUP over UDP succeeds");
    }
    let mut demuxed = session
        .play(PlayOptions::default())
        .await
        .expect("PLAY succeeds")
        .demuxed()
        .expect("demuxable");
    let deadline = tokio::time::Instant::now() + limit;
    let mut frames = 0;
    while let Ok(Some(item)) = tokio::time::timeout_at(deadline, demuxed.next()).await {
        if let Ok(CodecItem::VideoFrame(_)) = item {
            frames += 1;
            if frames == 10 {
                break;
            }
        }
    }
    frames
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_setups_on_one_connection_keep_one_pair_and_others_still_play() {
    // The test pool has 10 pairs: without reuse the 11th SETUP would find it empty.
    let Some(h) = common::start(common::options()).await else {
        return;
    };
    let url = h.url();
    let mut c = RawClient::connect(h.addr).await;
    assert_eq!(c.request("DESCRIBE", &url, "").await.status, 200);
    let mut first_port = None;
    for i in 0..1000u16 {
        let rtp = 50_000 + 2 * (i % 100);
        let s = c
            .request(
                "SETUP",
                &format!("{url}/trackID=0"),
                &format!(
                    "Transport: RTP/AVP;unicast;client_port={rtp}-{}\r\n",
                    rtp + 1
                ),
            )
            .await;
        assert_eq!(s.status, 200, "SETUP number {}: {s:?}", i + 1);
        let port = server_port(&s);
        assert_eq!(
            *first_port.get_or_insert(port),
            port,
            "SETUP number {} of the same track moved to another port pair",
            i + 1
        );
        assert!(
            s.header("Transport")
                .is_some_and(|t| t.contains(&format!("client_port={rtp}-{}", rtp + 1))),
            "the reply names the latest client ports: {s:?}"
        );
    }
    let frames = retina_udp_frames(&url, Duration::from_secs(10)).await;
    assert!(
        frames > 0,
        "a second client got no video over UDP after 1,000 SETUPs by the first"
    );
    drop(c);
}

/// SETUPs track 0 of `url`, over TCP for even `n` and UDP for odd `n`.
async fn setup(c: &mut RawClient, url: &str, n: u16) -> common::RawResponse {
    let transport = if n.is_multiple_of(2) {
        "RTP/AVP/TCP;unicast;interleaved=0-1".to_owned()
    } else {
        format!(
            "RTP/AVP;unicast;client_port={}-{}",
            52_000 + n * 2,
            52_001 + n * 2
        )
    };
    c.request(
        "SETUP",
        &format!("{url}/trackID=0"),
        &format!("Transport: {transport}\r\n"),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_address_holds_at_most_max_sessions_per_ip() {
    let opts = rtsp_server::Options {
        max_sessions_per_ip: 2,
        ..common::options()
    };
    let refusals = Arc::clone(&opts.setup_refusals);
    let Some(h) = common::start(opts).await else {
        return;
    };
    let url = h.url();
    let mut held = Vec::new();
    for n in 0..2 {
        let mut c = RawClient::connect(h.addr).await;
        let s = setup(&mut c, &url, n).await;
        assert_eq!(s.status, 200, "session {}: {s:?}", n + 1);
        held.push(c);
    }
    let mut third = RawClient::connect(h.addr).await;
    let refused = setup(&mut third, &url, 3).await;
    assert_eq!(refused.status, 453, "a third session: {refused:?}");
    assert!(
        refused.body.contains("2 RTSP sessions"),
        "the refusal says why: {refused:?}"
    );
    // The same connection may still set up its own session's other track: no new session.
    let mut first = held.remove(0);
    assert_eq!(
        first
            .request(
                "SETUP",
                &format!("{url}/trackID=1"),
                "Transport: RTP/AVP/TCP;unicast;interleaved=2-3\r\n"
            )
            .await
            .status,
        200
    );
    // A second session on one connection (another stream, no Session header) is refused too:
    // a connection holds one session, whatever the per-address cap.
    let session = first.session.take();
    let other = format!("rtsp://{}/live/other/trackID=0", h.addr);
    let second = first
        .request("SETUP", &other, "Transport: RTP/AVP/TCP;unicast\r\n")
        .await;
    assert_eq!(second.status, 455, "a second session: {second:?}");
    assert!(second.body.contains("one per connection"), "{second:?}");
    first.session = session;
    // Ending a session frees its slot.
    assert_eq!(first.request("TEARDOWN", &url, "").await.status, 200);
    let again = setup(&mut third, &url, 4).await;
    assert_eq!(again.status, 200, "after a TEARDOWN: {again:?}");
    let counted = refusals.stats();
    assert_eq!(
        (counted.sessions_per_ip, counted.sessions_per_connection),
        (1, 1),
        "{counted:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn privileged_client_ports_and_foreign_destinations_are_refused() {
    let opts = common::options();
    let refusals = Arc::clone(&opts.setup_refusals);
    let Some(h) = common::start(opts).await else {
        return;
    };
    let url = h.url();
    let track = format!("{url}/trackID=0");
    let mut c = RawClient::connect(h.addr).await;
    let cases = [
        ("RTP/AVP;unicast;client_port=0-1", 461, "1024 or above"),
        ("RTP/AVP;unicast;client_port=1-2", 461, "1024 or above"),
        ("RTP/AVP/UDP;unicast;client_port=123", 461, "1024 or above"),
        (
            "RTP/AVP;unicast;destination=192.0.2.7;client_port=50000-50001",
            461,
            "destination 192.0.2.7 is not allowed",
        ),
        (
            "RTP/AVP;unicast;destination=victim.example;client_port=50000-50001",
            461,
            "is not allowed",
        ),
        // The client's own address as destination is what some clients send; it is harmless.
        (
            "RTP/AVP;unicast;destination=127.0.0.1;client_port=50000-50001",
            200,
            "",
        ),
    ];
    for (transport, status, why) in cases {
        let s = c
            .request("SETUP", &track, &format!("Transport: {transport}\r\n"))
            .await;
        assert_eq!(s.status, status, "{transport}: {s:?}");
        assert!(s.body.contains(why), "{transport}: {s:?}");
        if status == 200 {
            let reply = s.header("Transport").unwrap_or_default();
            assert!(!reply.contains("destination"), "{reply}");
        }
    }
    let counted = refusals.stats();
    assert_eq!(
        (counted.client_port, counted.destination),
        (3, 2),
        "{counted:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn playing_sessions_count_as_rtsp_viewers_over_tcp_and_udp() {
    let Some(h) = common::start(common::options()).await else {
        return;
    };
    let url = h.url();
    let viewers = || {
        h.bus
            .stream(common::KEY)
            .map_or(0, |s| s.stats().viewers_of(bus::Protocol::Rtsp))
    };
    assert_eq!(viewers(), 0);
    let mut tcp = RawClient::connect(h.addr).await;
    let s = tcp
        .request(
            "SETUP",
            &format!("{url}/trackID=0"),
            "Transport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n",
        )
        .await;
    assert_eq!(s.status, 200);
    assert_eq!(tcp.request("PLAY", &url, "").await.status, 200);
    assert_eq!(viewers(), 1, "one TCP session playing");
    let mut udp = RawClient::connect(h.addr).await;
    let s = udp
        .request(
            "SETUP",
            &format!("{url}/trackID=0"),
            "Transport: RTP/AVP;unicast;client_port=50100-50101\r\n",
        )
        .await;
    assert_eq!(s.status, 200);
    assert_eq!(udp.request("PLAY", &url, "").await.status, 200);
    assert_eq!(viewers(), 2, "a TCP and a UDP session playing");
    assert_eq!(tcp.request("TEARDOWN", &url, "").await.status, 200);
    assert_eq!(viewers(), 1, "after the TCP session's TEARDOWN");
    drop(udp);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while viewers() != 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        viewers(),
        0,
        "the UDP session's viewer is gone with its connection"
    );
}

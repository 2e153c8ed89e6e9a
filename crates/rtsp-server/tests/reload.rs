//! Options replaced while the server runs (a configuration reload): a session playing over TCP
//! keeps playing with the options it started with, while connections and packetizers that start
//! after the replacement take the new ones.

mod common;

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use common::{RawClient, RawResponse};

const TCP_BOTH: [&str; 2] = [
    "RTP/AVP/TCP;unicast;interleaved=0-1",
    "RTP/AVP/TCP;unicast;interleaved=2-3",
];

/// DESCRIBE, SETUP both tracks over TCP, PLAY; returns the first SETUP's response.
async fn play(c: &mut RawClient, url: &str) -> RawResponse {
    let d = c
        .request("DESCRIBE", url, "Accept: application/sdp\r\n")
        .await;
    assert_eq!(d.status, 200, "DESCRIBE: {d:?}");
    let mut first = None;
    for (i, t) in TCP_BOTH.iter().enumerate() {
        let s = c
            .request(
                "SETUP",
                &format!("{url}/trackID={i}"),
                &format!("Transport: {t}\r\n"),
            )
            .await;
        assert_eq!(s.status, 200, "SETUP: {s:?}");
        first.get_or_insert(s);
    }
    let p = c
        .request("PLAY", &format!("{url}/"), "Range: npt=0.000-\r\n")
        .await;
    assert_eq!(p.status, 200, "PLAY: {p:?}");
    first.expect("two tracks were set up")
}

/// The `timeout=` of a SETUP response's Session header.
fn session_timeout(setup: &RawResponse) -> Option<u64> {
    setup
        .header("Session")?
        .split(';')
        .find_map(|p| p.trim().strip_prefix("timeout="))?
        .parse()
        .ok()
}

/// The largest RTP packet (interleaved payload on an RTP channel) received from `from` on.
fn largest_rtp(c: &RawClient, from: usize) -> usize {
    c.frames[from..]
        .iter()
        .filter(|(ch, _)| ch % 2 == 0)
        .map(|(_, f)| f.len())
        .max()
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_playing_session_keeps_its_options_and_new_ones_take_the_replacement() {
    let first = rtsp_server::Options {
        session_timeout: Duration::from_secs(60),
        ..common::options()
    };
    let opts = Arc::new(ArcSwap::from_pointee(first.clone()));
    let Some(h) = common::start_swappable(Arc::clone(&opts), common::Audio::Aac).await else {
        return;
    };
    let mut old = RawClient::connect(h.addr).await;
    let setup = play(&mut old, &h.url()).await;
    assert_eq!(session_timeout(&setup), Some(60));
    assert!(old.pump_frames(Duration::from_millis(800)).await > 0);
    assert!(
        largest_rtp(&old, 0) > 600,
        "a 2.5 Mbit/s stream fills packets up to the default MTU"
    );

    // The replacement: the shared handles stay, the rest changes.
    opts.store(Arc::new(rtsp_server::Options {
        mtu: 600,
        session_timeout: Duration::from_secs(17),
        tcp_write_delay: Duration::from_millis(20),
        max_sessions_per_ip: 2,
        ..first
    }));

    // The running session is not disturbed: it keeps receiving, from the packetizer that
    // started before the replacement (still with the old MTU).
    let seen = old.frames.len();
    assert!(old.pump_frames(Duration::from_millis(1500)).await > 20);
    assert!(
        largest_rtp(&old, seen) > 600,
        "the running packetizer keeps its MTU"
    );

    // A connection accepted now answers with the new session timeout.
    let mut same_stream = RawClient::connect(h.addr).await;
    let setup = play(&mut same_stream, &h.url()).await;
    assert_eq!(session_timeout(&setup), Some(17));
    assert!(same_stream.pump_frames(Duration::from_millis(500)).await > 0);

    // A stream whose packetizer starts now packetizes with the new MTU.
    let tags = common::fixture_tags(common::fixture().expect("the harness has a fixture"));
    let second = "live/second";
    tokio::spawn(common::feed_key(
        h.bus.clone(),
        second,
        tags,
        h.stop.clone(),
    ));
    while h.bus.stream(second).is_none_or(|s| !s.has_frames()) {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Two sessions of 127.0.0.1 already play and the new cap is 2: a third is refused.
    let url = format!("rtsp://{}/{second}", h.addr);
    let mut refused = RawClient::connect(h.addr).await;
    assert_eq!(refused.request("DESCRIBE", &url, "").await.status, 200);
    let s = refused
        .request(
            "SETUP",
            &format!("{url}/trackID=0"),
            &format!("Transport: {}\r\n", TCP_BOTH[0]),
        )
        .await;
    assert_eq!(s.status, 453, "the lowered max_sessions_per_ip: {s:?}");
    drop(same_stream);
    drop(refused);
    // The server sees the close at its next read; give it a moment to free the slot.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut new = RawClient::connect(h.addr).await;
    play(&mut new, &url).await;
    assert!(new.pump_frames(Duration::from_millis(1500)).await > 20);
    let largest = largest_rtp(&new, 0);
    assert!(
        largest <= 600 && largest > 300,
        "the new packetizer's MTU is 600: {largest}"
    );

    // And the first session still plays.
    assert!(old.pump_frames(Duration::from_millis(500)).await > 0);
}

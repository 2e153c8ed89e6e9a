//! The harness's in-process gateway: parallel tests each get their own gateway on kernel-chosen
//! loopback ports, and dropping it shuts it down promptly.

use std::net::TcpStream;
use std::time::{Duration, Instant};

use gateway_tests::{http_get, TestGateway};

#[test]
fn two_gateways_run_side_by_side_on_their_own_ports() {
    let a = TestGateway::start();
    let b = TestGateway::start();
    let ports = |g: &TestGateway| {
        let mut p = vec![g.rtmp_addr(), g.http_addr()];
        p.extend(g.rtsp_addr());
        p.extend(g.mms_addr());
        p
    };
    let (pa, pb) = (ports(&a), ports(&b));
    assert_eq!(pa.len(), 4, "RTSP and MMS are enabled by default: {pa:?}");
    for addr in pa.iter().chain(&pb) {
        assert!(addr.ip().is_loopback() && addr.port() != 0, "{addr}");
    }
    // Whether each protocol answers is the protocol matrices' business; here only HTTP.
    for g in [&a, &b] {
        TcpStream::connect_timeout(&g.http_addr(), Duration::from_secs(5))
            .unwrap_or_else(|e| panic!("{} does not accept connections: {e}", g.http_addr()));
    }
    assert!(pa.iter().all(|p| !pb.contains(p)), "{pa:?} vs {pb:?}");
    let reply = http_get(&a.http_url("/no-such-page"), Duration::from_secs(5))
        .expect("the HTTP listener answers");
    assert!(reply.status >= 200, "{reply:?}");
}

#[test]
fn dropping_the_gateway_closes_its_listeners_promptly() {
    let gateway = TestGateway::start();
    let http = gateway.http_addr();
    let started = Instant::now();
    drop(gateway);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert!(
        TcpStream::connect_timeout(&http, Duration::from_secs(1)).is_err(),
        "{http} still accepts after shutdown"
    );
}

#[test]
fn no_stream_is_live_on_a_fresh_gateway() {
    let gateway = TestGateway::start();
    assert!(!gateway.wait_live("live/test", Duration::from_millis(200)));
}

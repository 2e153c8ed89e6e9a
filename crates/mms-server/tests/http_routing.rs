//! The MMSH middleware in front of the gateway's other routes: what it takes, what it passes on.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use axum::routing::get;
use axum::Router;
use bus::Bus;
use common::{options, KEY};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Serves `inner` wrapped by the MMSH layer; returns its address.
async fn serve(bus: Bus) -> SocketAddr {
    let inner = Router::new()
        .route("/live/test.flv", get(|| async { "flv route" }))
        .route("/LiveEvents", get(|| async { "other route" }))
        .fallback(|| async { (axum::http::StatusCode::NOT_FOUND, "inner 404") });
    let opts = std::sync::Arc::new(arc_swap::ArcSwap::from_pointee(options()));
    let app = mms_server::mmsh_layer_or_router(inner, bus, opts);
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

async fn get_raw(addr: SocketAddr, path: &str, extra: &str) -> String {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    let req = format!("GET {path} HTTP/1.0\r\nHost: media.example:8080\r\n{extra}\r\n");
    s.write_all(req.as_bytes()).await.expect("send");
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut out))
        .await
        .expect("answer in time")
        .expect("read");
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn routing_table() {
    let bus = Bus::default();
    let addr = serve(bus.clone()).await;
    let wm = "User-Agent: NSPlayer/4.1.0.3856\r\nPragma: xClientGUID={c77e7400-738a-11d2-9add-0020af0a3278}\r\n";
    let cases: &[(&str, &str, &str, &str)] = &[
        // (path, extra headers, expected status line start, expected body fragment)
        (
            "/LiveEvents.asx",
            "",
            "HTTP/1.0 200",
            "<REF HREF=\"mms://media.example/LiveEvents\" />",
        ),
        (
            "/liveevents.ASX",
            "",
            "HTTP/1.0 200",
            "<REF HREF=\"mmsh://media.example:8080/liveevents\" />",
        ),
        (
            "/live/test.asx",
            "",
            "HTTP/1.0 200",
            "<REF HREF=\"http://media.example:8080/live/test\" />",
        ),
        ("/a/b/c.asx", "", "HTTP/1.0 404", "inner 404"),
        ("/live/test.flv", "", "HTTP/1.0 200", "flv route"),
        (
            "/LiveEvents",
            "User-Agent: Mozilla/5.0\r\n",
            "HTTP/1.0 200",
            "other route",
        ),
        // A Windows Media client for a name that is not live gets a clear 404 from us.
        (
            "/LiveEvents",
            wm,
            "HTTP/1.0 404",
            "No publishing point or live stream at this address",
        ),
        (
            "/Nowhere",
            wm,
            "HTTP/1.0 404",
            "No publishing point or live stream at this address",
        ),
    ];
    for (path, extra, status, body) in cases {
        let resp = get_raw(addr, path, extra).await;
        assert!(resp.starts_with(status), "{path} {extra:?}: {resp}");
        assert!(resp.contains(body), "{path} {extra:?}: {resp}");
    }
    let asx = get_raw(addr, "/LiveEvents.asx", "").await;
    assert!(
        asx.to_ascii_lowercase()
            .contains("content-type: video/x-ms-asf"),
        "{asx}"
    );
    assert!(KEY.contains('/'));
}

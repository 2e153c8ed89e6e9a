//! The HTTP listener's routes as the gateway merges them (HTTP-FLV and WS-FLV, `/api/streams`,
//! the web page, HLS, MMSH and `.asx`), driven with arbitrary request lines and headers: the
//! input's first line is `METHOD TARGET`, each further line a `Name: value` header. No request
//! may make a handler panic or answer 5xx, and an `.asx` playlist stays well-formed XML whatever
//! the path and `Host` hold. The pure path parsers behind the handlers get the same strings,
//! with their own invariants.

use std::sync::OnceLock;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use tower::ServiceExt;

/// Largest response body read back; every answer to a request for a stream that is not live is
/// a few hundred bytes, the web page a few kilobytes.
const MAX_BODY: usize = 1 << 20;

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a current-thread runtime builds")
    })
}

/// The gateway's merged router (see `crates/gateway/src/wiring.rs`) over an empty bus.
fn router() -> Router {
    static ROUTER: OnceLock<Router> = OnceLock::new();
    ROUTER
        .get_or_init(|| {
            let _guard = runtime().enter();
            let bus = bus::Bus::new(bus::BusOptions::default());
            let http = http_server::Options {
                web_root: concat!(env!("CARGO_MANIFEST_DIR"), "/../web").into(),
                ..http_server::Options::default()
            };
            let app = http_server::router(bus.clone(), http).merge(hls_server::router(
                bus.clone(),
                hls_server::Options::default(),
            ));
            let mms = mms_server::Options {
                publishing_points: vec![mms_server::PublishingPoint {
                    name: "LiveEvents".into(),
                    stream: "live/test".into(),
                }],
                ..mms_server::Options::default()
            };
            let mms = std::sync::Arc::new(arc_swap::ArcSwap::from_pointee(mms));
            mms_server::mmsh_layer_or_router(app, bus, mms)
        })
        .clone()
}

pub fn run(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut lines = text.split('\n');
    let first = lines.next().unwrap_or_default();
    let (method, target) = first.split_once(' ').unwrap_or(("GET", first));
    let headers: Vec<(&str, &str)> = lines.filter_map(|l| l.split_once(':')).collect();
    pure_parsers(target, &headers);
    let mut req = Request::builder().method(method).uri(target);
    for (name, value) in &headers {
        req = req.header(name.trim(), value.trim());
    }
    let Ok(req) = req.body(Body::empty()) else {
        return;
    };
    let (status, content_type, body) = runtime().block_on(async {
        let resp = router()
            .oneshot(req)
            .await
            .expect("the router is infallible");
        let status = resp.status();
        let ct = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = http_body_util::Limited::new(resp.into_body(), MAX_BODY)
            .collect()
            .await;
        (status, ct, body.map(|b| b.to_bytes()))
    });
    assert!(!status.is_server_error(), "{status} for {first:?}");
    let body = body.expect("a bounded body for a stream that is not live");
    if status == StatusCode::OK && content_type.as_deref() == Some("video/x-ms-asf") {
        check_asx(&String::from_utf8_lossy(&body));
    }
}

/// The ASX template has nine elements and four quoted attributes; an unescaped `<` or `"`
/// from the path or the Host header would add to them.
fn check_asx(body: &str) {
    assert_eq!(body.matches('<').count(), 9, "ASX elements: {body}");
    assert_eq!(body.matches('"').count(), 8, "ASX attribute quotes: {body}");
}

fn pure_parsers(target: &str, headers: &[(&str, &str)]) {
    let path = target.split('?').next().unwrap_or_default();
    let mut segs = path.trim_start_matches('/').splitn(3, '/');
    let (app, file, name) = (
        segs.next().unwrap_or_default(),
        segs.next().unwrap_or_default(),
        segs.next().unwrap_or_default(),
    );
    if let Some(key) = http_server::stream_key(app, file) {
        let name = file
            .strip_suffix(".flv")
            .expect("an FLV key comes from a .flv name");
        assert_eq!(key, format!("{app}/{name}"), "FLV stream key");
    }
    for (_, value) in headers {
        let host = http_server::host_part(value.trim());
        assert!(value.contains(host));
        let (h, port) = mms_server::split_host(value.trim(), 80);
        check_asx(&mms_server::asx_playlist(path, &h, port, 1755));
    }
    for prefix in ["", "s1-"] {
        use hls_server::RequestedFile;
        let file = hls_server::classify_file(name, prefix);
        if let Some(RequestedFile::Segment(seq)) = file {
            let again = hls_server::classify_file(&format!("{prefix}{seq}.ts"), prefix);
            assert_eq!(again, Some(RequestedFile::Segment(seq)));
        }
    }
    let opts = mms_server::Options::default();
    if let Some(stem) = mms_server::strip_asx(path) {
        assert!(path.len() == stem.len() + 4);
        if let Some(t) = mms_server::resolve(&opts, stem) {
            assert_eq!(t.key.matches('/').count(), 1, "a bus key is app/stream");
        }
    }
}

//! Hostile request paths on every HTTP route: error answers are 400 or 404, never echo the
//! request, and nothing outside the web root is ever served.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use gateway_tests::TestGateway;

/// A marker no error body may contain: it appears only in the requested paths.
const MARKER: &str = "zq<script>x";

/// Sends `GET {path}` byte for byte (no client-side normalisation) and returns the status line,
/// the headers and the body.
fn get_raw(addr: SocketAddr, path: &str, extra: &str) -> (u16, String, String) {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let req = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{extra}\r\n");
    s.write_all(req.as_bytes()).expect("send");
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status line for {path:?}: {text:?}"));
    (status, head.to_owned(), body.to_owned())
}

#[test]
fn bad_paths_are_refused_without_echo_or_escape_from_the_web_root() {
    let gw = TestGateway::start();
    let long = "k".repeat(10 * 1024);
    let m = "zq%3Cscript%3Ex";
    let paths = [
        // HTTP-FLV, the API, HLS (playlist, segment, key): unknown streams.
        format!("/live/{m}.flv"),
        format!("/live/{long}{m}.flv"),
        format!("/{m}/{m}.flv"),
        format!("/api/streams/live/{m}"),
        format!("/api/streams/live/{m}/rtsp"),
        format!("/live/{m}/index.m3u8"),
        format!("/live/{m}/s1.ts"),
        format!("/live/{m}/k1.key"),
        format!("/live/{long}{m}/index.m3u8"),
        // MMSH (a Windows Media client).
        format!("/live/{m}"),
        // The web page: traversal in every spelling, NUL, long names.
        "/../Cargo.toml".to_owned(),
        "/..%2fCargo.toml".to_owned(),
        "/%2e%2e/Cargo.toml".to_owned(),
        "/%2e%2e%2fCargo.toml".to_owned(),
        "/%2e%2e%2f%2e%2e%2fetc%2fpasswd".to_owned(),
        "/x%2f..%2f..%2fREADME.html".to_owned(),
        "/vendor/..%2f..%2fCargo.toml".to_owned(),
        "/vendor/%2e%2e%2fpackage.json".to_owned(),
        "/index.html%00.png".to_owned(),
        "/%00".to_owned(),
        "/package.json".to_owned(),
        format!("/{long}.html"),
        format!("/{m}.html"),
    ];
    for path in &paths {
        let extra = match path.starts_with("/live/zq") && !path.contains('.') {
            true => "User-Agent: NSPlayer/12.0\r\nPragma: xPlayStrm=1\r\n",
            false => "",
        };
        let (status, head, body) = get_raw(gw.http_addr(), path, extra);
        let short = path.get(..80).unwrap_or(path);
        assert!(
            status == 400 || status == 404,
            "{short}: want 400 or 404, got {status}: {body:?}"
        );
        assert!(
            !body.contains(MARKER) && !body.contains(&long[..64]),
            "{short}: the error body echoes the request: {body:?}"
        );
        assert!(!body.contains("[workspace]"), "{short}: served Cargo.toml");
        assert!(!body.contains("root:"), "{short}: served /etc/passwd");
        let ctype = head.to_ascii_lowercase();
        assert!(
            body.is_empty()
                || ctype.contains("content-type: text/plain")
                || ctype.contains("content-type: application/json"),
            "{short}: an error body must be plain text or JSON: {head}"
        );
    }
    // An ASX playlist names any stream key, live or not, so it answers 200; what it repeats of
    // the request is XML-escaped (and still percent-encoded), never raw markup.
    let (status, head, body) = get_raw(gw.http_addr(), &format!("/live/{m}.asx"), "");
    assert_eq!(status, 200, "{body}");
    assert!(
        head.to_ascii_lowercase().contains("video/x-ms-asf"),
        "{head}"
    );
    assert!(!body.contains("<script"), "{body}");
    // The page itself is still served.
    let (status, _, body) = get_raw(gw.http_addr(), "/", "");
    assert_eq!(status, 200);
    assert!(body.contains("<html") || body.contains("<!DOCTYPE") || body.contains("<!doctype"));
}

//! A minimal HTTP/1.0 GET for polling the gateway (playlists, the API) from blocking tests.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// The largest response body read.
const MAX_BODY: u64 = 16 << 20;

/// A response: status code and body.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    pub status: u16,
    pub body: Vec<u8>,
}

impl HttpResponse {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// GETs `url` (`http://host:port/path`) with HTTP/1.0, so the body is close-delimited and never
/// chunked. Errors are described as text for test failure messages.
pub fn http_get(url: &str, timeout: Duration) -> Result<HttpResponse, String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("not an http:// URL: {url}"))?;
    let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let path = if path.is_empty() { "/" } else { path };
    let mut stream = TcpStream::connect(host).map_err(|e| format!("connect {host}: {e}"))?;
    stream
        .set_read_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    stream
        .set_write_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    let request =
        format!("GET {path} HTTP/1.0\r\nHost: {host}\r\nUser-Agent: gateway-tests\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .map_err(|e| format!("send to {host}: {e}"))?;
    let mut raw = Vec::new();
    stream
        .take(MAX_BODY)
        .read_to_end(&mut raw)
        .map_err(|e| format!("read from {host}: {e}"))?;
    parse_response(&raw).ok_or_else(|| format!("malformed response from {url}"))
}

fn parse_response(raw: &[u8]) -> Option<HttpResponse> {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(raw.get(..end)?).ok()?;
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    Some(HttpResponse {
        status,
        body: raw.get(end + 4..)?.to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses_parse() {
        let r = parse_response(b"HTTP/1.1 200 OK\r\nContent-Type: x\r\n\r\nbody").unwrap();
        assert_eq!((r.status, r.text().as_str()), (200, "body"));
        let r = parse_response(b"HTTP/1.1 404 Not Found\r\n\r\n").unwrap();
        assert_eq!((r.status, r.body.len()), (404, 0));
        assert!(parse_response(b"HTTP/1.1 200 OK\r\n").is_none());
        assert!(parse_response(b"garbage\r\n\r\n").is_none());
    }

    #[test]
    fn a_refused_connection_is_an_error() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let err = http_get(&format!("http://{port}/x"), Duration::from_secs(1)).unwrap_err();
        assert!(err.starts_with("connect"), "{err}");
    }
}

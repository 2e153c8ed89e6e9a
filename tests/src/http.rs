//! A minimal HTTP/1.0 GET for polling the gateway (playlists, the API) from blocking tests,
//! optionally from a chosen loopback source address and with extra request headers.

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::time::Duration;

/// The largest response body read.
const MAX_BODY: u64 = 16 << 20;

/// A response: status code, headers (names lowercased) and body.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The first header called `name` (lowercase).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Options of [`http_get_with`].
#[derive(Debug, Clone, Default)]
pub struct GetOptions<'a> {
    /// Extra request headers.
    pub headers: &'a [(&'a str, &'a str)],
    /// The local address to connect from (127.0.0.2 plays another host).
    pub from: Option<IpAddr>,
    /// Stop reading after this many body bytes (a live FLV body never ends by itself).
    pub max_body: Option<u64>,
}

/// GETs `url` (`http://host:port/path`) with HTTP/1.0, so the body is close-delimited and never
/// chunked. Errors are described as text for test failure messages.
pub fn http_get(url: &str, timeout: Duration) -> Result<HttpResponse, String> {
    http_get_with(url, timeout, &GetOptions::default())
}

/// As [`http_get`], with extra headers, a source address and a body limit.
pub fn http_get_with(
    url: &str,
    timeout: Duration,
    opts: &GetOptions<'_>,
) -> Result<HttpResponse, String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("not an http:// URL: {url}"))?;
    let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let path = if path.is_empty() { "/" } else { path };
    let mut stream = connect(host, opts.from).map_err(|e| format!("connect {host}: {e}"))?;
    stream
        .set_read_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    stream
        .set_write_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    let extra: String = opts
        .headers
        .iter()
        .map(|(k, v)| format!("{k}: {v}\r\n"))
        .collect();
    let request =
        format!("GET {path} HTTP/1.0\r\nHost: {host}\r\nUser-Agent: gateway-tests\r\n{extra}\r\n");
    stream
        .write_all(request.as_bytes())
        .map_err(|e| format!("send to {host}: {e}"))?;
    let mut raw = Vec::new();
    let limit = opts.max_body.map_or(MAX_BODY, |m| m.min(MAX_BODY));
    read_response(&mut stream, limit, &mut raw).map_err(|e| format!("read from {host}: {e}"))?;
    parse_response(&raw).ok_or_else(|| format!("malformed response from {url}"))
}

fn connect(host: &str, from: Option<IpAddr>) -> std::io::Result<TcpStream> {
    let Some(ip) = from else {
        return TcpStream::connect(host);
    };
    let to: SocketAddr = host
        .parse()
        .map_err(|_| std::io::Error::other("a source address needs an IP:port host"))?;
    let domain = socket2::Domain::for_address(to);
    let s = socket2::Socket::new(domain, socket2::Type::STREAM, None)?;
    s.bind(&SocketAddr::new(ip, 0).into())?;
    s.connect(&to.into())?;
    Ok(s.into())
}

/// Reads the head and then at most `limit` body bytes (or to the end, if sooner).
fn read_response(stream: &mut TcpStream, limit: u64, raw: &mut Vec<u8>) -> std::io::Result<()> {
    let mut buf = [0u8; 16 * 1024];
    loop {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        raw.extend_from_slice(&buf[..n]);
        if let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            if (raw.len() - end - 4) as u64 >= limit {
                raw.truncate(end + 4 + limit as usize);
                return Ok(());
            }
        }
    }
}

fn parse_response(raw: &[u8]) -> Option<HttpResponse> {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(raw.get(..end)?).ok()?;
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split_whitespace().nth(1)?.parse().ok()?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Some(HttpResponse {
        status,
        headers,
        body: raw.get(end + 4..)?.to_vec(),
    })
}

/// Sends `method path` with HTTP/1.0, an empty body and `headers` to `addr`, and reads the
/// whole answer: its status and its body as text. Panics (a test failure) when the gateway does
/// not answer with HTTP within `timeout`.
pub fn http_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    timeout: Duration,
) -> (u16, String) {
    let mut s = TcpStream::connect_timeout(&addr, timeout).expect("connect");
    s.set_read_timeout(Some(timeout)).expect("timeout");
    let extra: String = headers
        .iter()
        .map(|(k, v)| format!("{k}: {v}\r\n"))
        .collect();
    let req = format!("{method} {path} HTTP/1.0\r\nHost: gw\r\nContent-Length: 0\r\n{extra}\r\n");
    s.write_all(req.as_bytes()).expect("send");
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("an answer");
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP answer: {text:?}"));
    let body = text
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_owned();
    (status, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses_parse() {
        let r = parse_response(b"HTTP/1.1 200 OK\r\nContent-Type: x\r\n\r\nbody").unwrap();
        assert_eq!((r.status, r.text().as_str()), (200, "body"));
        assert_eq!(r.header("content-type"), Some("x"));
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

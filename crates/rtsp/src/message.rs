//! RTSP messages: the request parser and the response writer (RFC 2326 §6, §7, §10.12).

use bytes::Bytes;

use crate::{Error, MAX_BODY_BYTES, MAX_HEADERS, MAX_HEADER_BYTES};

/// An RTSP method (RFC 2326 §10).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Method {
    /// OPTIONS.
    Options,
    /// DESCRIBE.
    Describe,
    /// SETUP.
    Setup,
    /// PLAY.
    Play,
    /// PAUSE.
    Pause,
    /// TEARDOWN.
    Teardown,
    /// GET_PARAMETER.
    GetParameter,
    /// SET_PARAMETER.
    SetParameter,
    /// A method this server knows but does not allow (ANNOUNCE, RECORD, REDIRECT).
    NotAllowed(String),
    /// Any other token.
    Other(String),
}

impl Method {
    /// The method's name as it appears on the request line (digest authentication hashes it).
    pub fn as_str(&self) -> &str {
        match self {
            Method::Options => "OPTIONS",
            Method::Describe => "DESCRIBE",
            Method::Setup => "SETUP",
            Method::Play => "PLAY",
            Method::Pause => "PAUSE",
            Method::Teardown => "TEARDOWN",
            Method::GetParameter => "GET_PARAMETER",
            Method::SetParameter => "SET_PARAMETER",
            Method::NotAllowed(m) | Method::Other(m) => m,
        }
    }

    fn parse(token: &str) -> Method {
        match token {
            "OPTIONS" => Method::Options,
            "DESCRIBE" => Method::Describe,
            "SETUP" => Method::Setup,
            "PLAY" => Method::Play,
            "PAUSE" => Method::Pause,
            "TEARDOWN" => Method::Teardown,
            "GET_PARAMETER" => Method::GetParameter,
            "SET_PARAMETER" => Method::SetParameter,
            "ANNOUNCE" | "RECORD" | "REDIRECT" => Method::NotAllowed(token.to_owned()),
            _ => Method::Other(token.to_owned()),
        }
    }
}

/// One header line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// The name as sent.
    pub name: String,
    /// The value, surrounding whitespace removed.
    pub value: String,
}

/// A parsed RTSP request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The method.
    pub method: Method,
    /// The request URI as sent.
    pub uri: String,
    /// The protocol version, e.g. `RTSP/1.0`.
    pub version: String,
    /// The headers in order.
    pub headers: Vec<Header>,
    /// The body (Content-Length bytes).
    pub body: Bytes,
}

impl Request {
    /// Returns the value of the first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value.as_str())
    }
}

/// The result of looking at the front of a connection's input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    /// More bytes are needed.
    Incomplete,
    /// A complete request occupying the first `consumed` bytes.
    Request {
        /// The request.
        request: Request,
        /// Bytes to drop from the input.
        consumed: usize,
    },
    /// An interleaved binary frame (RFC 2326 §10.12): `$`, channel, 16-bit length, data.
    Interleaved {
        /// The channel number.
        channel: u8,
        /// The frame's data is `input[4..consumed]`.
        consumed: usize,
    },
}

/// Parses the next request or interleaved frame at the front of `buf`.
pub fn parse(buf: &[u8]) -> Result<Parsed, Error> {
    if buf.first() == Some(&b'$') {
        let Some(head) = buf.get(..4) else {
            return Ok(Parsed::Incomplete);
        };
        let consumed = 4 + usize::from(u16::from_be_bytes([head[2], head[3]]));
        return Ok(if buf.len() < consumed {
            Parsed::Incomplete
        } else {
            Parsed::Interleaved {
                channel: head[1],
                consumed,
            }
        });
    }
    // Reject garbage as soon as the first line is complete rather than after MAX_HEADER_BYTES.
    // The first LF ends the first line whether or not a CR precedes it.
    if let Some(eol) = find(buf, b"\n") {
        parse_request_line(&buf[..eol])?;
    }
    let window = &buf[..buf.len().min(MAX_HEADER_BYTES)];
    let Some(head_len) = find(window, b"\r\n\r\n")
        .map(|i| i + 4)
        .or_else(|| find(window, b"\n\n").map(|i| i + 2))
    else {
        return if buf.len() >= MAX_HEADER_BYTES {
            Err(Error::HeaderTooLarge)
        } else {
            Ok(Parsed::Incomplete)
        };
    };
    let head = std::str::from_utf8(&buf[..head_len]).map_err(|_| Error::BadHeader { index: 0 })?;
    let mut lines = head.lines();
    let (method, uri, version) = parse_request_line(lines.next().unwrap_or_default().as_bytes())?;
    let headers = parse_headers(lines)?;
    let body_len = content_length(&headers)?;
    let consumed = head_len + body_len;
    let Some(body) = buf.get(head_len..consumed) else {
        return Ok(Parsed::Incomplete);
    };
    let request = Request {
        method,
        uri,
        version,
        headers,
        body: Bytes::copy_from_slice(body),
    };
    Ok(Parsed::Request { request, consumed })
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn parse_request_line(line: &[u8]) -> Result<(Method, String, String), Error> {
    let bad = || Error::BadRequestLine {
        line: String::from_utf8_lossy(&line[..line.len().min(80)])
            .trim_end()
            .to_owned(),
    };
    let text = std::str::from_utf8(line).map_err(|_| bad())?.trim_end();
    // A CR that does not end the line would be echoed into a response header (the URL goes
    // into Content-Base), where a client may read it as a line end (RFC 2326 §15.1: CRLF).
    if text.contains('\r') {
        return Err(bad());
    }
    let mut parts = text.split(' ');
    let (Some(method), Some(uri), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad());
    };
    let token_ok =
        !method.is_empty() && method.bytes().all(|b| b.is_ascii_uppercase() || b == b'_');
    if !token_ok || uri.is_empty() || !version.starts_with("RTSP/") {
        return Err(bad());
    }
    Ok((Method::parse(method), uri.to_owned(), version.to_owned()))
}

fn parse_headers<'a>(lines: impl Iterator<Item = &'a str>) -> Result<Vec<Header>, Error> {
    let mut headers = Vec::new();
    for (index, line) in lines.take_while(|l| !l.is_empty()).enumerate() {
        if index >= MAX_HEADERS {
            return Err(Error::TooManyHeaders);
        }
        // A bare CR inside a header line (CSeq is echoed in every response) is refused for the
        // same reason as in the request line.
        if line.contains('\r') {
            return Err(Error::BadHeader { index });
        }
        let (name, value) = line.split_once(':').ok_or(Error::BadHeader { index })?;
        headers.push(Header {
            name: name.trim().to_owned(),
            value: value.trim().to_owned(),
        });
    }
    Ok(headers)
}

fn content_length(headers: &[Header]) -> Result<usize, Error> {
    let Some(h) = headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("Content-Length"))
    else {
        return Ok(0);
    };
    match h.value.parse::<usize>() {
        Ok(n) if n <= MAX_BODY_BYTES => Ok(n),
        _ => Err(Error::BadContentLength {
            value: h.value.chars().take(20).collect(),
        }),
    }
}

/// An RTSP response under construction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// The headers in the order they are written (Content-Length is added by [`Response::to_bytes`]).
    pub headers: Vec<Header>,
    /// The body.
    pub body: Bytes,
}

impl Response {
    /// Creates a response with `CSeq` (when known) as its first header.
    pub fn new(status: u16, cseq: Option<&str>) -> Response {
        let mut r = Response {
            status,
            headers: Vec::new(),
            body: Bytes::new(),
        };
        if let Some(cseq) = cseq {
            r = r.with("CSeq", cseq);
        }
        r
    }

    /// Adds a header.
    pub fn with(mut self, name: &str, value: impl Into<String>) -> Response {
        self.headers.push(Header {
            name: name.to_owned(),
            value: value.into(),
        });
        self
    }

    /// Sets the body and its Content-Type.
    pub fn with_body(self, content_type: &str, body: impl Into<Bytes>) -> Response {
        let mut r = self.with("Content-Type", content_type);
        r.body = body.into();
        r
    }

    /// Returns the value of the first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value.as_str())
    }

    /// Serializes the response; Content-Length is written when there is a body.
    pub fn to_bytes(&self) -> Bytes {
        let mut out = format!("RTSP/1.0 {} {}\r\n", self.status, reason(self.status));
        for h in &self.headers {
            out.push_str(&format!("{}: {}\r\n", h.name, h.value));
        }
        if !self.body.is_empty() {
            out.push_str(&format!("Content-Length: {}\r\n", self.body.len()));
        }
        out.push_str("\r\n");
        let mut bytes = out.into_bytes();
        bytes.extend_from_slice(&self.body);
        Bytes::from(bytes)
    }
}

/// Returns the reason phrase of an RTSP status code (RFC 2326 §7.1.1).
pub fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        413 => "Request Entity Too Large",
        453 => "Not Enough Bandwidth",
        454 => "Session Not Found",
        455 => "Method Not Valid in This State",
        459 => "Aggregate Operation Not Allowed",
        461 => "Unsupported Transport",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        505 => "RTSP Version Not Supported",
        _ => "Unknown",
    }
}

/// Returns the 4-byte prefix of an interleaved frame, or `None` when `len` does not fit 16 bits.
pub fn interleaved_header(channel: u8, len: usize) -> Option<[u8; 4]> {
    let len = u16::try_from(len).ok()?;
    let [hi, lo] = len.to_be_bytes();
    Some([b'$', channel, hi, lo])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &[u8], want: Result<Option<(Method, &str, usize, usize)>, Error>) {
        let got = parse(input).map(|p| match p {
            Parsed::Incomplete => None,
            Parsed::Request { request, consumed } => {
                Some((request.method, request.uri, request.headers.len(), consumed))
            }
            Parsed::Interleaved { channel, consumed } => Some((
                Method::Other(format!("${channel}")),
                String::new(),
                0,
                consumed,
            )),
        });
        let want = want.map(|o| o.map(|(m, u, h, c)| (m, u.to_owned(), h, c)));
        assert_eq!(got, want, "input {:?}", String::from_utf8_lossy(input));
    }

    #[test]
    fn parse_table() {
        let options = b"OPTIONS rtsp://h/a/b RTSP/1.0\r\nCSeq: 1\r\n\r\n";
        check(
            options,
            Ok(Some((Method::Options, "rtsp://h/a/b", 1, options.len()))),
        );
        check(&options[..20], Ok(None));
        check(&options[..options.len() - 1], Ok(None));
        let lf_only = b"OPTIONS * RTSP/1.0\nCSeq: 1\n\n";
        check(lf_only, Ok(Some((Method::Options, "*", 1, lf_only.len()))));
        let body = b"SET_PARAMETER rtsp://h/a RTSP/1.0\r\nCSeq: 2\r\nContent-Length: 3\r\n\r\nabcX";
        check(
            body,
            Ok(Some((
                Method::SetParameter,
                "rtsp://h/a",
                2,
                body.len() - 1,
            ))),
        );
        check(&body[..body.len() - 2], Ok(None));
        check(
            b"$\x01\x00\x02ab$",
            Ok(Some((Method::Other("$1".into()), "", 0, 6))),
        );
        check(b"$\x01\x00\x02a", Ok(None));
        check(b"$\x01", Ok(None));
        check(
            b"RECORD rtsp://h/a RTSP/1.0\r\n\r\n",
            Ok(Some((
                Method::NotAllowed("RECORD".into()),
                "rtsp://h/a",
                0,
                30,
            ))),
        );
        check(
            b"\x16\x03\x01garbage\r\n",
            Err(Error::BadRequestLine {
                line: "\u{16}\u{3}\u{1}garbage".into(),
            }),
        );
        check(
            b"GET / HTTP/1.1\r\n",
            Err(Error::BadRequestLine {
                line: "GET / HTTP/1.1".into(),
            }),
        );
        check(
            b"OPTIONS * RTSP/1.0\r\nNoColon\r\n\r\n",
            Err(Error::BadHeader { index: 0 }),
        );
        check(
            b"OPTIONS * RTSP/1.0\r\nContent-Length: 99999\r\n\r\n",
            Err(Error::BadContentLength {
                value: "99999".into(),
            }),
        );
        let mut huge = b"OPTIONS * RTSP/1.0\r\nX: ".to_vec();
        huge.resize(MAX_HEADER_BYTES, b'a');
        check(&huge, Err(Error::HeaderTooLarge));
        check(&huge[..MAX_HEADER_BYTES - 1], Ok(None));
        let mut many = b"OPTIONS * RTSP/1.0\r\n".to_vec();
        for i in 0..=MAX_HEADERS {
            many.extend_from_slice(format!("X{i}: y\r\n").as_bytes());
        }
        many.extend_from_slice(b"\r\n");
        check(&many, Err(Error::TooManyHeaders));
        // A first line ended by LF alone, later lines by CRLF.
        let mixed = b"OPTIONS * RTSP/1.0\nCSeq: 1\r\n\r\n";
        check(mixed, Ok(Some((Method::Options, "*", 1, mixed.len()))));
    }

    /// Found by the `rtsp` fuzz target: a CR inside a header value (or the URL) was echoed into
    /// the response head, where a client may take it for a line end.
    #[test]
    fn bare_cr_is_refused() {
        check(
            b"OPTIONS * RTSP/1.0\r\nCSeq: 1\r\x0e12 r-Agent: x\r\n\r\n",
            Err(Error::BadHeader { index: 0 }),
        );
        check(
            b"DESCRIBE rtsp://h/a\rb RTSP/1.0\r\nCSeq: 1\r\n\r\n",
            Err(Error::BadRequestLine {
                line: "DESCRIBE rtsp://h/a\rb RTSP/1.0".into(),
            }),
        );
    }

    #[test]
    fn response_golden() {
        let r = Response::new(200, Some("3"))
            .with("Public", "OPTIONS")
            .with_body("text/plain", "hi");
        assert_eq!(&r.to_bytes()[..], b"RTSP/1.0 200 OK\r\nCSeq: 3\r\nPublic: OPTIONS\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nhi");
        assert_eq!(interleaved_header(3, 258), Some([b'$', 3, 1, 2]));
        assert_eq!(interleaved_header(3, 70_000), None);
    }
}

//! A minimal HTTP/1.1 GET client (RFC 9112) for viewers: keep-alive, `Content-Length`,
//! chunked and close-delimited bodies, streamed to a sink without buffering the body.

use memchr::memmem;
use tokio::net::TcpStream;

use crate::net::{read_with, write_all, Reader};
use crate::ViewError;

/// Largest response head accepted.
pub const MAX_HEAD: usize = 16 * 1024;
/// Longest chunk-size line accepted (hex digits plus extensions).
const MAX_CHUNK_LINE: usize = 256;

/// How the body of a response is delimited (RFC 9112 6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    /// `Content-Length`.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// Until the server closes the connection.
    Close,
}

/// The parts of a response head a viewer needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseHead {
    /// Status code.
    pub status: u16,
    /// Body framing.
    pub body: BodyKind,
    /// False when the server will close the connection after this response.
    pub keep_alive: bool,
}

/// Parses a response head (status line and headers, without the final empty line).
pub fn parse_head(head: &[u8]) -> Result<ResponseHead, ViewError> {
    let text = std::str::from_utf8(head)
        .map_err(|_| ViewError::Protocol("HTTP response head is not UTF-8".into()))?;
    let mut lines = text.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or_default();
    let status = parts
        .next()
        .and_then(|s| s.parse::<u16>().ok())
        .filter(|_| version.starts_with("HTTP/1."))
        .ok_or_else(|| ViewError::Protocol(format!("bad HTTP status line {status_line:?}")))?;
    let mut body = BodyKind::Close;
    let mut keep_alive = version == "HTTP/1.1";
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        match name.trim().to_ascii_lowercase().as_str() {
            "content-length" if body != BodyKind::Chunked => {
                let n = value
                    .parse()
                    .map_err(|_| ViewError::Protocol(format!("bad Content-Length {value:?}")))?;
                body = BodyKind::Length(n);
            }
            "transfer-encoding" if value.to_ascii_lowercase().contains("chunked") => {
                body = BodyKind::Chunked;
            }
            "connection" => keep_alive = !value.eq_ignore_ascii_case("close"),
            _ => {}
        }
    }
    if body == BodyKind::Close || status == 204 || status == 304 {
        keep_alive &= body != BodyKind::Close;
    }
    Ok(ResponseHead {
        status,
        body,
        keep_alive,
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chunk {
    Size,
    Data(u64),
    DataEnd,
    Trailer { line_len: usize },
    Done,
}

/// Decodes one body incrementally.
#[derive(Debug)]
pub struct BodyDecoder {
    kind: BodyKind,
    left: u64,
    chunk: Chunk,
    line: Vec<u8>,
}

impl BodyDecoder {
    /// A decoder for a body framed as `kind`.
    pub fn new(kind: BodyKind) -> Self {
        let left = match kind {
            BodyKind::Length(n) => n,
            _ => 0,
        };
        BodyDecoder {
            kind,
            left,
            chunk: Chunk::Size,
            line: Vec::new(),
        }
    }

    /// True once the body is complete (never for close-delimited bodies).
    pub fn is_done(&self) -> bool {
        match self.kind {
            BodyKind::Length(_) => self.left == 0,
            BodyKind::Chunked => self.chunk == Chunk::Done,
            BodyKind::Close => false,
        }
    }

    /// Passes body bytes in `data` to `sink`; returns how many bytes of `data` were consumed.
    pub fn feed<F>(&mut self, data: &[u8], sink: &mut F) -> Result<usize, ViewError>
    where
        F: FnMut(&[u8]) -> Result<(), ViewError>,
    {
        match self.kind {
            BodyKind::Close => {
                sink(data)?;
                Ok(data.len())
            }
            BodyKind::Length(_) => {
                let n = usize::try_from(self.left)
                    .unwrap_or(usize::MAX)
                    .min(data.len());
                self.left -= n as u64;
                sink(&data[..n])?;
                Ok(n)
            }
            BodyKind::Chunked => self.chunked(data, sink),
        }
    }

    fn chunked<F>(&mut self, data: &[u8], sink: &mut F) -> Result<usize, ViewError>
    where
        F: FnMut(&[u8]) -> Result<(), ViewError>,
    {
        let mut pos = 0;
        while pos < data.len() && self.chunk != Chunk::Done {
            let rest = &data[pos..];
            match self.chunk {
                Chunk::Size => {
                    let (n, line_done) = take_line(rest, &mut self.line, MAX_CHUNK_LINE)?;
                    pos += n;
                    if line_done {
                        let size = chunk_size(&self.line)?;
                        self.line.clear();
                        self.chunk = if size == 0 {
                            Chunk::Trailer { line_len: 0 }
                        } else {
                            Chunk::Data(size)
                        };
                    }
                }
                Chunk::Data(left) => {
                    let n = usize::try_from(left).unwrap_or(usize::MAX).min(rest.len());
                    sink(&rest[..n])?;
                    pos += n;
                    self.chunk = match left - n as u64 {
                        0 => Chunk::DataEnd,
                        l => Chunk::Data(l),
                    };
                }
                Chunk::DataEnd => {
                    let (n, line_done) = take_line(rest, &mut self.line, 2)?;
                    pos += n;
                    if line_done {
                        self.line.clear();
                        self.chunk = Chunk::Size;
                    }
                }
                Chunk::Trailer { line_len } => {
                    pos += 1;
                    self.chunk = match rest[0] {
                        b'\n' if line_len == 0 => Chunk::Done,
                        b'\n' => Chunk::Trailer { line_len: 0 },
                        b'\r' => Chunk::Trailer { line_len },
                        _ => Chunk::Trailer {
                            line_len: line_len + 1,
                        },
                    };
                }
                Chunk::Done => {}
            }
        }
        Ok(pos)
    }
}

/// Appends `data` up to and including a LF to `line`; returns (consumed, line complete).
fn take_line(data: &[u8], line: &mut Vec<u8>, max: usize) -> Result<(usize, bool), ViewError> {
    let (n, done) = match memchr::memchr(b'\n', data) {
        Some(i) => (i + 1, true),
        None => (data.len(), false),
    };
    if line.len() + n > max + 2 {
        return Err(ViewError::Protocol("chunk framing line too long".into()));
    }
    line.extend_from_slice(&data[..n]);
    Ok((n, done))
}

fn chunk_size(line: &[u8]) -> Result<u64, ViewError> {
    let text = std::str::from_utf8(line).unwrap_or_default();
    let hex = text.split(';').next().unwrap_or_default().trim();
    u64::from_str_radix(hex, 16)
        .map_err(|_| ViewError::Protocol(format!("bad chunk size line {text:?}")))
}

/// One keep-alive connection to one server.
#[derive(Debug)]
pub struct HttpConn {
    authority: String,
    sock: Option<TcpStream>,
    /// Read pacing for long bodies (HTTP-FLV); none reads eagerly.
    pub reader: Option<Reader>,
}

impl HttpConn {
    /// A connection to `authority` (`host:port`), opened on first use.
    pub fn new(authority: String) -> Self {
        HttpConn {
            authority,
            sock: None,
            reader: None,
        }
    }

    /// GETs `path`, streaming the body to `sink`; returns the status. Reconnects once if a
    /// reused connection turns out to be closed.
    pub async fn get<F>(&mut self, path: &str, sink: &mut F) -> Result<u16, ViewError>
    where
        F: FnMut(&[u8]) -> Result<(), ViewError>,
    {
        let reused = self.sock.is_some();
        match self.try_get(path, sink).await {
            Err(ViewError::Stale) if reused => {
                self.sock = None;
                self.try_get(path, sink).await
            }
            Err(ViewError::Stale) => Err(ViewError::Closed),
            r => r,
        }
    }

    async fn try_get<F>(&mut self, path: &str, sink: &mut F) -> Result<u16, ViewError>
    where
        F: FnMut(&[u8]) -> Result<(), ViewError>,
    {
        let sock = match self.sock.take() {
            Some(s) => s,
            None => TcpStream::connect(&self.authority).await?,
        };
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {}\r\nUser-Agent: gwload\r\nAccept: */*\r\n\r\n",
            self.authority
        );
        write_all(&sock, request.as_bytes()).await?;
        let mut head_buf = Vec::new();
        let (head, rest) = loop {
            let n = read_with(&sock, |d: &[u8]| {
                head_buf.extend_from_slice(d);
                Ok(())
            })
            .await?;
            if n == 0 {
                return Err(if head_buf.is_empty() {
                    ViewError::Stale
                } else {
                    ViewError::Closed
                });
            }
            if let Some(end) = memmem::find(&head_buf, b"\r\n\r\n") {
                let rest = head_buf.split_off(end + 4);
                head_buf.truncate(end);
                break (parse_head(&head_buf)?, rest);
            }
            if head_buf.len() > MAX_HEAD {
                return Err(ViewError::Protocol("HTTP response head too long".into()));
            }
        };
        let mut decoder = BodyDecoder::new(head.body);
        decoder.feed(&rest, sink)?;
        while !decoder.is_done() {
            let n = read_with(&sock, |d: &[u8]| decoder.feed(d, sink).map(drop)).await?;
            if n == 0 {
                if head.body == BodyKind::Close {
                    break;
                }
                return Err(ViewError::Closed);
            }
            if let Some(r) = &mut self.reader {
                r.after_read(n, &sock).await?;
            }
        }
        if head.keep_alive {
            self.sock = Some(sock);
        }
        Ok(head.status)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads_table() {
        let cases: [(&str, u16, BodyKind, bool); 5] = [
            (
                "HTTP/1.1 200 OK\r\nContent-Length: 12",
                200,
                BodyKind::Length(12),
                true,
            ),
            (
                "HTTP/1.1 200 OK\r\ntransfer-encoding: Chunked\r\nContent-Length: 5",
                200,
                BodyKind::Chunked,
                true,
            ),
            (
                "HTTP/1.1 200 OK\r\nConnection: close",
                200,
                BodyKind::Close,
                false,
            ),
            (
                "HTTP/1.0 404 Not Found\r\nContent-Length: 0",
                404,
                BodyKind::Length(0),
                false,
            ),
            (
                "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close",
                200,
                BodyKind::Length(3),
                false,
            ),
        ];
        for (head, status, body, keep_alive) in cases {
            let want = ResponseHead {
                status,
                body,
                keep_alive,
            };
            assert_eq!(parse_head(head.as_bytes()).ok(), Some(want), "{head}");
        }
        for bad in [
            "RTSP/1.0 200 OK",
            "HTTP/1.1 abc",
            "HTTP/1.1 200 OK\r\nContent-Length: x",
        ] {
            assert!(parse_head(bad.as_bytes()).is_err(), "{bad}");
        }
    }

    fn decode(kind: BodyKind, wire: &[u8], piece: usize) -> (Vec<u8>, bool, usize) {
        let mut d = BodyDecoder::new(kind);
        let mut out = Vec::new();
        let mut used = 0;
        for chunk in wire.chunks(piece) {
            used += d
                .feed(chunk, &mut |b: &[u8]| {
                    out.extend_from_slice(b);
                    Ok(())
                })
                .expect("valid body");
        }
        (out, d.is_done(), used)
    }

    #[test]
    fn bodies_decode_in_any_split() {
        let chunked = b"5;ext=1\r\nhello\r\n1\r\n \r\n5\r\nworld\r\n0\r\nX-T: 1\r\n\r\nNEXT";
        for piece in [1, 2, 3, 7, chunked.len()] {
            let (out, done, used) = decode(BodyKind::Chunked, chunked, piece);
            assert_eq!(
                (&out[..], done),
                (&b"hello world"[..], true),
                "piece {piece}"
            );
            assert_eq!(used, chunked.len() - 4, "piece {piece}");
            let (out, done, used) = decode(BodyKind::Length(5), b"helloNEXT", piece);
            assert_eq!(
                (&out[..], done, used),
                (&b"hello"[..], true, 5),
                "piece {piece}"
            );
        }
        let (out, done, _) = decode(BodyKind::Close, b"abc", 1);
        assert_eq!((&out[..], done), (&b"abc"[..], false));
    }

    #[test]
    fn bad_chunk_sizes_are_errors() {
        for wire in [&b"zz\r\n"[..], &[b'1'; 300][..]] {
            let mut d = BodyDecoder::new(BodyKind::Chunked);
            assert!(d.feed(wire, &mut |_: &[u8]| Ok(())).is_err());
        }
    }
}

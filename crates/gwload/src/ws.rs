//! A minimal WebSocket client (RFC 6455) for WebSocket-FLV viewers: the opening handshake, then
//! the server's frames streamed to a sink without buffering a message.
//!
//! Only what a viewer needs: one fixed `Sec-WebSocket-Key` (the accept value is not checked, the
//! `101` status is), unmasked server frames (section 5.1: a server never masks), binary and
//! continuation payloads passed on, control frames skipped, a close frame ends the view. The
//! viewer never sends a data frame, so it never needs to mask one.

use memchr::memmem;
use tokio::net::TcpStream;

use crate::http::MAX_HEAD;
use crate::net::{read_with, split_url, with_port, write_all, Reader};
use crate::ViewError;

/// Largest frame header: 2 bytes, an 8-byte extended length and a 4-byte masking key.
const MAX_FRAME_HEADER: usize = 14;
/// Largest control frame payload (RFC 6455 section 5.5).
const MAX_CONTROL_PAYLOAD: u64 = 125;
/// Largest data frame accepted. The payload is streamed, never buffered; this only rejects a
/// length no FLV server sends (mpegts.js's server sends one FLV batch per message).
const MAX_DATA_FRAME: u64 = 1 << 30;

/// Opcodes (RFC 6455 section 5.2).
const OP_CONTINUATION: u8 = 0x0;
const OP_BINARY: u8 = 0x2;
const OP_CLOSE: u8 = 0x8;

/// Decodes the server's frames incrementally.
#[derive(Debug, Default)]
pub struct FrameDecoder {
    header: [u8; MAX_FRAME_HEADER],
    header_len: usize,
    /// Payload bytes left in the current frame; `None` while reading a header.
    left: Option<u64>,
    opcode: u8,
    closed: bool,
}

impl FrameDecoder {
    /// True once a close frame has been received.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Passes the binary payload bytes in `data` to `sink`.
    pub fn feed<F>(&mut self, mut data: &[u8], sink: &mut F) -> Result<(), ViewError>
    where
        F: FnMut(&[u8]) -> Result<(), ViewError>,
    {
        while !data.is_empty() && !self.closed {
            match self.left {
                None => {
                    let n = self.take_header(data)?;
                    data = &data[n..];
                }
                Some(left) => {
                    let n = usize::try_from(left).unwrap_or(usize::MAX).min(data.len());
                    if matches!(self.opcode, OP_BINARY | OP_CONTINUATION) {
                        sink(&data[..n])?;
                    }
                    data = &data[n..];
                    self.payload_done(left - n as u64);
                }
            }
        }
        Ok(())
    }

    /// Consumes header bytes from `data`; returns how many.
    fn take_header(&mut self, data: &[u8]) -> Result<usize, ViewError> {
        let mut used = 0;
        while used < data.len() {
            let want = self.header_size();
            if self.header_len == want {
                break;
            }
            self.header[self.header_len] = data[used];
            self.header_len += 1;
            used += 1;
        }
        if self.header_len == self.header_size() {
            self.start_payload()?;
        }
        Ok(used)
    }

    /// The size of the header being read, as far as the bytes so far tell.
    fn header_size(&self) -> usize {
        if self.header_len < 2 {
            return 2;
        }
        let ext = match self.header[1] & 0x7f {
            126 => 2,
            127 => 8,
            _ => 0,
        };
        let mask = if self.header[1] & 0x80 != 0 { 4 } else { 0 };
        2 + ext + mask
    }

    fn start_payload(&mut self) -> Result<(), ViewError> {
        if self.header[1] & 0x80 != 0 {
            return Err(ViewError::Protocol(
                "the server masked a WebSocket frame".into(),
            ));
        }
        let len = match self.header[1] & 0x7f {
            126 => u64::from(u16::from_be_bytes([self.header[2], self.header[3]])),
            127 => {
                let mut b = [0u8; 8];
                b.copy_from_slice(&self.header[2..10]);
                u64::from_be_bytes(b)
            }
            n => u64::from(n),
        };
        self.opcode = self.header[0] & 0x0f;
        let max = if self.opcode & 0x8 != 0 {
            MAX_CONTROL_PAYLOAD
        } else {
            MAX_DATA_FRAME
        };
        if len > max {
            return Err(ViewError::Protocol(format!(
                "WebSocket frame of {len} bytes (opcode {:#x})",
                self.opcode
            )));
        }
        self.header_len = 0;
        self.payload_done(len);
        Ok(())
    }

    fn payload_done(&mut self, left: u64) {
        if left > 0 {
            self.left = Some(left);
            return;
        }
        self.left = None;
        if self.opcode == OP_CLOSE {
            self.closed = true;
        }
    }
}

/// Opens `ws://host:port/path` (RFC 6455 section 4.1) and streams the binary payload to `sink`
/// until the server closes. Returns `Err(Closed)` at the end, like the HTTP-FLV viewer.
pub async fn view<F>(url: &str, mut reader: Reader, sink: &mut F) -> Result<(), ViewError>
where
    F: FnMut(&[u8]) -> Result<(), ViewError>,
{
    let (authority, path) = split_url(url, "ws")?;
    let authority = with_port(authority, 80);
    let sock = TcpStream::connect(&authority).await?;
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {authority}\r\nUser-Agent: gwload\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Key: Z3dsb2FkIHdzLWZsdiBrZXk=\r\n\
         Sec-WebSocket-Version: 13\r\n\r\n"
    );
    write_all(&sock, request.as_bytes()).await?;
    let rest = read_head(&sock, path).await?;
    let mut frames = FrameDecoder::default();
    frames.feed(&rest, sink)?;
    while !frames.is_closed() {
        let n = read_with(&sock, |d: &[u8]| frames.feed(d, sink)).await?;
        if n == 0 {
            break;
        }
        reader.after_read(n, &sock).await?;
    }
    Err(ViewError::Closed)
}

/// Reads the handshake response; returns the bytes after it (the first frames).
async fn read_head(sock: &TcpStream, path: &str) -> Result<Vec<u8>, ViewError> {
    let mut buf = Vec::new();
    loop {
        let n = read_with(sock, |d: &[u8]| {
            buf.extend_from_slice(d);
            Ok(())
        })
        .await?;
        if n == 0 {
            return Err(ViewError::Closed);
        }
        if let Some(end) = memmem::find(&buf, b"\r\n\r\n") {
            let rest = buf.split_off(end + 4);
            let head = crate::http::parse_head(&buf[..end])?;
            if head.status != 101 {
                return Err(ViewError::Status(head.status, path.to_owned()));
            }
            return Ok(rest);
        }
        if buf.len() > MAX_HEAD {
            return Err(ViewError::Protocol("HTTP response head too long".into()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
        let mut f = vec![0x80 | opcode];
        match payload.len() {
            n if n < 126 => f.push(n as u8),
            n if n < 65536 => {
                f.push(126);
                f.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                f.push(127);
                f.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        f.extend_from_slice(payload);
        f
    }

    /// Feeds `wire` in pieces of `step` bytes; returns the binary payload and whether it closed.
    fn check(wire: &[u8], step: usize) -> (Vec<u8>, bool) {
        let mut d = FrameDecoder::default();
        let mut out = Vec::new();
        for piece in wire.chunks(step) {
            d.feed(piece, &mut |b: &[u8]| {
                out.extend_from_slice(b);
                Ok(())
            })
            .expect("valid frames");
        }
        (out, d.is_closed())
    }

    #[test]
    fn binary_payloads_pass_through_whatever_the_read_boundaries() {
        let big: Vec<u8> = (0..70_000u32).map(|i| i as u8).collect();
        let mut wire = frame(OP_BINARY, b"FLV");
        wire.extend(frame(0x9, b"ping"));
        wire.extend(frame(OP_BINARY, &big[..300]));
        wire.extend(frame(OP_BINARY, &big));
        let mut want = b"FLV".to_vec();
        want.extend_from_slice(&big[..300]);
        want.extend_from_slice(&big);
        for step in [1, 2, 3, 13, 4096, wire.len()] {
            assert_eq!(check(&wire, step), (want.clone(), false), "step {step}");
        }
    }

    #[test]
    fn a_close_frame_ends_the_stream() {
        let mut wire = frame(OP_BINARY, b"ab");
        wire.extend(frame(OP_CLOSE, &[0x03, 0xe8]));
        wire.extend(frame(OP_BINARY, b"after"));
        assert_eq!(check(&wire, 1), (b"ab".to_vec(), true));
    }

    #[test]
    fn masked_or_oversized_frames_are_errors() {
        let mut d = FrameDecoder::default();
        let masked = [0x82, 0x81, 1, 2, 3, 4, 0];
        assert!(d.feed(&masked, &mut |_: &[u8]| Ok(())).is_err());
        let mut d = FrameDecoder::default();
        let huge_ping = [0x89, 126, 0x01, 0x00];
        assert!(d.feed(&huge_ping, &mut |_: &[u8]| Ok(())).is_err());
    }
}

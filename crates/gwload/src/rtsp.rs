//! The RTSP viewer (RFC 2326): OPTIONS, DESCRIBE, SETUP of every track over TCP interleaved
//! (10.12) or UDP, PLAY, an OPTIONS keepalive, and RTP counting (RFC 3550 5.1). A "frame" is
//! an RTP packet with the marker bit set on the video track.

use std::sync::Arc;
use std::time::{Duration, Instant};

use memchr::memmem;
use tokio::net::{TcpStream, UdpSocket};

use crate::net::{read_with, recv_with, split_url, with_port, write_all, Reader};
use crate::sei;
use crate::viewer::{Probe, Shared, ViewerStats};
use crate::ViewError;

/// Largest RTSP response (head and body) accepted.
pub const MAX_RESPONSE: usize = 64 * 1024;
/// Bytes of each interleaved RTP packet kept for parsing and the stamp scan.
const HEAD_CAP: usize = 512;
/// Seconds between OPTIONS keepalives (servers time sessions out after 60 s by default).
const KEEPALIVE: Duration = Duration::from_secs(20);
const RTP_HEADER_LEN: usize = 12;

/// A parsed RTSP response head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Headers in order, names as sent.
    pub headers: Vec<(String, String)>,
}

impl Response {
    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// `Content-Length`, 0 when absent.
    pub fn content_length(&self) -> Result<usize, ViewError> {
        self.header("content-length").map_or(Ok(0), |v| {
            v.parse()
                .map_err(|_| ViewError::Protocol(format!("bad Content-Length {v:?}")))
        })
    }

    /// The session id without parameters such as `;timeout=60`.
    pub fn session(&self) -> Option<&str> {
        self.header("session")
            .and_then(|v| v.split(';').next())
            .map(str::trim)
    }
}

/// Parses a response head (without the final empty line).
pub fn parse_response(head: &[u8]) -> Result<Response, ViewError> {
    let text = String::from_utf8_lossy(head);
    let mut lines = text.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .strip_prefix("RTSP/1.0 ")
        .and_then(|r| r.get(..3))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| ViewError::Protocol(format!("bad RTSP status line {status_line:?}")))?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    Ok(Response { status, headers })
}

/// One media section of an SDP (RFC 8866 5.14).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Track {
    /// `a=control:` value.
    pub control: String,
    /// True for `m=video`.
    pub video: bool,
}

/// The tracks of an SDP, in order.
pub fn parse_sdp(sdp: &str) -> Vec<Track> {
    let mut tracks: Vec<Track> = Vec::new();
    for line in sdp.lines().map(str::trim) {
        if let Some(m) = line.strip_prefix("m=") {
            tracks.push(Track {
                control: String::new(),
                video: m.starts_with("video"),
            });
        } else if let (Some(c), Some(t)) = (line.strip_prefix("a=control:"), tracks.last_mut()) {
            t.control = c.to_owned();
        }
    }
    tracks
}

/// The URL for a track's `control` relative to `base` (C.1.1).
pub fn control_url(base: &str, control: &str) -> String {
    if control.contains("://") {
        control.to_owned()
    } else if control.is_empty() || control == "*" {
        base.to_owned()
    } else if base.ends_with('/') {
        format!("{base}{control}")
    } else {
        format!("{base}/{control}")
    }
}

/// The control connection.
struct Control {
    sock: TcpStream,
    pending: Vec<u8>,
    cseq: u32,
    session: Option<String>,
}

impl Control {
    fn request_text(&mut self, method: &str, url: &str, extra: &str) -> String {
        request_text(&mut self.cseq, self.session.as_deref(), method, url, extra)
    }

    /// Sends a request and reads its response; non-200 is an error.
    async fn request(
        &mut self,
        method: &str,
        url: &str,
        extra: &str,
    ) -> Result<(Response, Vec<u8>), ViewError> {
        let text = self.request_text(method, url, extra);
        write_all(&self.sock, text.as_bytes()).await?;
        loop {
            if let Some(end) = memmem::find(&self.pending, b"\r\n\r\n") {
                let resp = parse_response(&self.pending[..end])?;
                let total = end + 4 + resp.content_length()?;
                if total > MAX_RESPONSE {
                    return Err(ViewError::Protocol("RTSP response too large".into()));
                }
                if self.pending.len() >= total {
                    let body = self.pending[end + 4..total].to_vec();
                    self.pending.drain(..total);
                    if resp.status != 200 {
                        return Err(ViewError::Status(resp.status, format!("{method} {url}")));
                    }
                    return Ok((resp, body));
                }
            }
            if self.pending.len() > MAX_RESPONSE {
                return Err(ViewError::Protocol("RTSP response too large".into()));
            }
            let pending = &mut self.pending;
            let n = read_with(&self.sock, |d: &[u8]| {
                pending.extend_from_slice(d);
                Ok(())
            })
            .await?;
            if n == 0 {
                return Err(ViewError::Closed);
            }
        }
    }
}

fn request_text(
    cseq: &mut u32,
    session: Option<&str>,
    method: &str,
    url: &str,
    extra: &str,
) -> String {
    *cseq += 1;
    let session = session
        .map(|s| format!("Session: {s}\r\n"))
        .unwrap_or_default();
    format!("{method} {url} RTSP/1.0\r\nCSeq: {cseq}\r\nUser-Agent: gwload\r\n{session}{extra}\r\n")
}

/// Runs one RTSP viewer until cancelled or failed.
pub async fn view(
    url: &str,
    tcp: bool,
    reader: Reader,
    stats: Arc<ViewerStats>,
    shared: Arc<Shared>,
) -> Result<(), ViewError> {
    let started = Instant::now();
    let (authority, _) = split_url(url, "rtsp")?;
    let sock = TcpStream::connect(with_port(authority, 554)).await?;
    let mut c = Control {
        sock,
        pending: Vec::new(),
        cseq: 0,
        session: None,
    };
    c.request("OPTIONS", url, "").await?;
    let (resp, body) = c
        .request("DESCRIBE", url, "Accept: application/sdp\r\n")
        .await?;
    let base = resp
        .header("content-base")
        .or(resp.header("content-location"))
        .unwrap_or(url)
        .to_owned();
    let tracks = parse_sdp(&String::from_utf8_lossy(&body));
    if tracks.is_empty() {
        return Err(ViewError::Protocol("SDP has no media".into()));
    }
    let mut udp = Vec::new();
    let mut video_channel = None;
    for (i, track) in tracks.iter().enumerate() {
        let transport = if tcp {
            format!("RTP/AVP/TCP;unicast;interleaved={}-{}", 2 * i, 2 * i + 1)
        } else {
            let rtp = UdpSocket::bind("0.0.0.0:0").await?;
            let rtcp = UdpSocket::bind("0.0.0.0:0").await?;
            let t = format!(
                "RTP/AVP;unicast;client_port={}-{}",
                rtp.local_addr()?.port(),
                rtcp.local_addr()?.port()
            );
            udp.push((rtp, rtcp, track.video));
            t
        };
        if track.video && video_channel.is_none() {
            video_channel = Some(2 * i as u8);
        }
        let extra = format!("Transport: {transport}\r\n");
        let (resp, _) = c
            .request("SETUP", &control_url(&base, &track.control), &extra)
            .await?;
        if c.session.is_none() {
            c.session = resp.session().map(str::to_owned);
        }
    }
    c.request("PLAY", &base, "Range: npt=0.000-\r\n").await?;
    let counter = RtpCounter {
        stats,
        shared,
        started,
        probe: Probe::default(),
        probing: reader.probing(),
    };
    if tcp {
        interleaved(c, url, video_channel, reader, counter).await
    } else {
        over_udp(c, url, udp, counter).await
    }
}

/// Counts RTP packets for one viewer.
struct RtpCounter {
    stats: Arc<ViewerStats>,
    shared: Arc<Shared>,
    started: Instant,
    probe: Probe,
    probing: bool,
}

impl RtpCounter {
    /// Counts one RTP packet of `total` bytes whose first bytes are `head`.
    fn packet(&mut self, head: &[u8], total: usize, video: bool) {
        let Some(offset) = rtp_payload_offset(head) else {
            return;
        };
        self.stats.add_bytes(total.saturating_sub(offset));
        if !video {
            return;
        }
        if head.get(1).is_some_and(|b| b & 0x80 != 0) {
            self.stats.add_frame(self.started);
        }
        if self.probing && self.probe.due() {
            let payload = head.get(offset..).unwrap_or_default();
            self.probe.record(&self.shared, sei::find(payload));
        }
    }
}

/// Where the payload starts in an RTP packet (RFC 3550 5.1, 5.3.1); `None` if not RTP v2.
pub fn rtp_payload_offset(p: &[u8]) -> Option<usize> {
    let first = *p.first()?;
    if first >> 6 != 2 {
        return None;
    }
    let mut off = RTP_HEADER_LEN + 4 * usize::from(first & 0x0f);
    if first & 0x10 != 0 {
        let ext = p.get(off + 2..off + 4)?;
        off += 4 + 4 * usize::from(u16::from_be_bytes([ext[0], ext[1]]));
    }
    Some(off)
}

#[derive(Debug)]
enum Frame {
    Start,
    Header { got: usize },
    Packet { left: usize, total: usize },
    Response,
}

/// Splits the TCP stream after PLAY into `$`-framed packets (RFC 2326 10.12) and responses
/// to our keepalives.
struct Interleaved {
    state: Frame,
    header: [u8; 4],
    head: Vec<u8>,
    response: Vec<u8>,
    response_body_left: usize,
}

impl Interleaved {
    fn feed(
        &mut self,
        mut data: &[u8],
        video_channel: Option<u8>,
        counter: &mut RtpCounter,
    ) -> Result<(), ViewError> {
        while let Some(&b) = data.first() {
            match self.state {
                Frame::Start if self.response_body_left > 0 => {
                    let n = self.response_body_left.min(data.len());
                    self.response_body_left -= n;
                    data = &data[n..];
                }
                Frame::Start if b == b'$' => {
                    self.state = Frame::Header { got: 0 };
                }
                Frame::Start if b == b'R' => {
                    self.state = Frame::Response;
                }
                Frame::Start => {
                    return Err(ViewError::Protocol(format!(
                        "RTSP interleaved stream lost framing at byte {b:#04x}"
                    )))
                }
                Frame::Header { got } => {
                    let n = (4 - got).min(data.len());
                    self.header[got..got + n].copy_from_slice(&data[..n]);
                    data = &data[n..];
                    if got + n == 4 {
                        let len = usize::from(u16::from_be_bytes([self.header[2], self.header[3]]));
                        self.head.clear();
                        self.state = Frame::Packet {
                            left: len,
                            total: len,
                        };
                    } else {
                        self.state = Frame::Header { got: got + n };
                    }
                }
                Frame::Packet { left, total } => {
                    let n = left.min(data.len());
                    let take = n.min(HEAD_CAP - self.head.len());
                    self.head.extend_from_slice(&data[..take]);
                    data = &data[n..];
                    if left == n {
                        let ch = self.header[1];
                        if ch & 1 == 0 {
                            counter.packet(&self.head, total, Some(ch) == video_channel);
                        }
                        self.state = Frame::Start;
                    } else {
                        self.state = Frame::Packet {
                            left: left - n,
                            total,
                        };
                    }
                }
                Frame::Response => data = self.response_bytes(data)?,
            }
        }
        Ok(())
    }

    fn response_bytes<'a>(&mut self, data: &'a [u8]) -> Result<&'a [u8], ViewError> {
        let old = self.response.len();
        let n = data.len().min(MAX_RESPONSE - old);
        self.response.extend_from_slice(&data[..n]);
        let from = old.saturating_sub(3);
        let Some(end) = memmem::find(&self.response[from..], b"\r\n\r\n").map(|e| e + from) else {
            if self.response.len() >= MAX_RESPONSE {
                return Err(ViewError::Protocol("RTSP response too large".into()));
            }
            return Ok(&data[n..]);
        };
        let resp = parse_response(&self.response[..end])?;
        if resp.status != 200 {
            return Err(ViewError::Status(resp.status, "keepalive OPTIONS".into()));
        }
        self.response_body_left = resp.content_length()?.min(MAX_RESPONSE);
        let used = end + 4 - old;
        self.response.clear();
        self.state = Frame::Start;
        Ok(&data[used..])
    }
}

async fn interleaved(
    c: Control,
    url: &str,
    video_channel: Option<u8>,
    mut reader: Reader,
    mut counter: RtpCounter,
) -> Result<(), ViewError> {
    let mut framer = Interleaved {
        state: Frame::Start,
        header: [0; 4],
        head: Vec::with_capacity(HEAD_CAP),
        response: Vec::new(),
        response_body_left: 0,
    };
    let Control {
        sock,
        pending,
        mut cseq,
        session,
    } = c;
    framer.feed(&pending, video_channel, &mut counter)?;
    let mut keepalive = tokio::time::Instant::now() + KEEPALIVE;
    loop {
        tokio::select! {
            n = read_with(&sock, |d: &[u8]| framer.feed(d, video_channel, &mut counter)) => {
                let n = n?;
                if n == 0 {
                    return Err(ViewError::Closed);
                }
                reader.after_read(n, &sock).await?;
            }
            _ = tokio::time::sleep_until(keepalive) => {
                let text = request_text(&mut cseq, session.as_deref(), "OPTIONS", url, "");
                write_all(&sock, text.as_bytes()).await?;
                keepalive += KEEPALIVE;
            }
        }
    }
}

async fn over_udp(
    c: Control,
    url: &str,
    udp: Vec<(UdpSocket, UdpSocket, bool)>,
    counter: RtpCounter,
) -> Result<(), ViewError> {
    let Control {
        sock,
        mut cseq,
        session,
        ..
    } = c;
    // Both receive branches need the counter; they never run at the same time, so this lock is
    // uncontended (a RefCell would make the task !Send).
    let counter = std::sync::Mutex::new(counter);
    let (Some((rtp_a, _rtcp_a, video_a)), rest) = (udp.first(), udp.get(1)) else {
        return Err(ViewError::Protocol("no UDP track".into()));
    };
    let mut keepalive = tokio::time::Instant::now() + KEEPALIVE;
    loop {
        // The second track (if any) is polled in the same select; with one track its branch
        // is disabled.
        tokio::select! {
            r = recv_with(rtp_a, |d: &[u8]| {
                counter
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .packet(d.get(..HEAD_CAP).unwrap_or(d), d.len(), *video_a);
                Ok(())
            }) => { r?; }
            r = async {
                match rest {
                    Some((rtp_b, _, video_b)) => recv_with(rtp_b, |d: &[u8]| {
                        counter
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .packet(d.get(..HEAD_CAP).unwrap_or(d), d.len(), *video_b);
                        Ok(())
                    }).await,
                    None => std::future::pending().await,
                }
            } => { r?; }
            n = read_with(&sock, |_: &[u8]| Ok(())) => {
                // Keepalive responses are read and dropped; EOF ends the session.
                if n? == 0 {
                    return Err(ViewError::Closed);
                }
            }
            _ = tokio::time::sleep_until(keepalive) => {
                let text = request_text(&mut cseq, session.as_deref(), "OPTIONS", url, "");
                write_all(&sock, text.as_bytes()).await?;
                keepalive += KEEPALIVE;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses_table() {
        let r = parse_response(
            b"RTSP/1.0 200 OK\r\nCSeq: 3\r\nSession: 12AB;timeout=60\r\nContent-Length: 42",
        )
        .expect("valid");
        assert_eq!(r.status, 200);
        assert_eq!(r.session(), Some("12AB"));
        assert_eq!(r.content_length().ok(), Some(42));
        assert_eq!(r.header("cseq"), Some("3"));
        let r = parse_response(b"RTSP/1.0 454 Session Not Found").expect("valid");
        assert_eq!((r.status, r.session()), (454, None));
        for bad in [&b"HTTP/1.1 200 OK"[..], b"RTSP/1.0 2x0 OK", b""] {
            assert!(parse_response(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn sdp_tracks_and_control_urls() {
        let sdp = "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=x\r\na=control:*\r\n\
                   m=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\na=control:trackID=0\r\n\
                   m=audio 0 RTP/AVP 97\r\na=control:rtsp://h/live/s/trackID=1\r\n";
        let tracks = parse_sdp(sdp);
        assert_eq!(
            tracks,
            vec![
                Track {
                    control: "trackID=0".into(),
                    video: true
                },
                Track {
                    control: "rtsp://h/live/s/trackID=1".into(),
                    video: false
                },
            ]
        );
        let cases = [
            ("rtsp://h/live/s/", "trackID=0", "rtsp://h/live/s/trackID=0"),
            ("rtsp://h/live/s", "trackID=0", "rtsp://h/live/s/trackID=0"),
            ("rtsp://h/live/s", "rtsp://x/y", "rtsp://x/y"),
            ("rtsp://h/live/s", "", "rtsp://h/live/s"),
        ];
        for (base, control, want) in cases {
            assert_eq!(control_url(base, control), want, "{base} {control}");
        }
    }

    #[test]
    fn rtp_payload_offsets() {
        let cases: [(&[u8], Option<usize>); 4] = [
            (&[0x80, 0x60], Some(12)),
            (&[0x82, 0x60], Some(20)),
            (
                &[0x90, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xbe, 0xde, 0, 2],
                Some(24),
            ),
            (&[0x40, 0x60], None),
        ];
        for (p, want) in cases {
            assert_eq!(rtp_payload_offset(p), want, "{p:02x?}");
        }
    }
}

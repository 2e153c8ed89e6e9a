//! The RTMP viewer (plain handshake, connect, createStream, play) on the sans-IO
//! `rtmp::ClientSession`, over TCP or (`rtmps://`) TLS, and the HTTP-FLV viewer on
//! [`FlvScanner`].

use std::sync::Arc;
use std::time::Instant;

use rtmp::{ClientSession, ClientSessionEvent};
use rustls::ClientConfig;

use crate::flv_scan::{FlvScanner, HEAD_CAP};
use crate::http::HttpConn;
use crate::net::{split_url, with_port, Reader};
use crate::sei;
use crate::tls::Conn;
use crate::viewer::{Probe, Shared, ViewerStats};
use crate::ViewError;

/// RTMP message type ids (RTMP 7.1): audio and video.
const TYPE_AUDIO: u8 = 8;
const TYPE_VIDEO: u8 = 9;
/// Bytes received between our Acknowledgement messages (RTMP 5.4.3). `ClientSession` does not
/// report the server's Window Acknowledgement Size, so we acknowledge at least this often,
/// which is below the windows servers announce (ours 2.5 MB, nginx-rtmp 5 MB), so a server
/// that throttles unacknowledging peers never waits for us.
const ACK_EVERY: u64 = 1024 * 1024;
/// Protocol control messages go on chunk stream 2 (RTMP 5.4). `rtmp::ChunkEncoder` writes a
/// full (type 0) header for every message, so sharing the stream with the session's own control
/// messages leaves no header compression state to clash. (An id above 31 is not an option:
/// nginx-rtmp closes the connection on a chunk stream id at or above its `max_streams`, 32.)
const ACK_CSID: u32 = rtmp::message::csid::CONTROL;

/// Sends Acknowledgement messages for a viewer.
#[derive(Debug, Default)]
struct Acker {
    encoder: rtmp::ChunkEncoder,
    received: u64,
    acked: u64,
}

impl Acker {
    /// Counts `n` received bytes; returns an Acknowledgement to send when one is due.
    fn received(&mut self, n: usize) -> Option<bytes::BytesMut> {
        self.received += n as u64;
        if self.received - self.acked < ACK_EVERY {
            return None;
        }
        self.acked = self.received;
        // The sequence number is the byte count modulo 2^32 (5.4.3).
        let seq = (self.received as u32).to_be_bytes();
        let mut out = bytes::BytesMut::new();
        self.encoder.write(
            ACK_CSID,
            0,
            rtmp::message::type_id::ACKNOWLEDGEMENT,
            0,
            &seq,
            &mut out,
        );
        Some(out)
    }
}

/// The parts of `rtmp://host[:port]/app/stream` (or `rtmps://`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtmpUrl {
    /// `rtmps://`: RTMP over TLS.
    pub tls: bool,
    /// `host:port`.
    pub authority: String,
    /// Application name.
    pub app: String,
    /// Stream name (with any query).
    pub stream: String,
}

impl RtmpUrl {
    /// Parses an RTMP URL; the app is the first path segment, the stream the rest. RTMPS
    /// defaults to port 443, as ffmpeg's does.
    pub fn parse(url: &str) -> Result<RtmpUrl, ViewError> {
        let tls = url.starts_with("rtmps://");
        let (scheme, port) = if tls { ("rtmps", 443) } else { ("rtmp", 1935) };
        let (authority, path) = split_url(url, scheme)?;
        let (app, stream) = path[1..]
            .split_once('/')
            .filter(|(a, s)| !a.is_empty() && !s.is_empty())
            .ok_or_else(|| ViewError::Url(format!("{url}: expected rtmp://host/app/stream")))?;
        Ok(RtmpUrl {
            tls,
            authority: with_port(authority, port),
            app: app.to_owned(),
            stream: stream.to_owned(),
        })
    }

    /// The `tcUrl` for `connect`.
    pub fn tc_url(&self) -> String {
        let scheme = if self.tls { "rtmps" } else { "rtmp" };
        format!("{scheme}://{}/{}", self.authority, self.app)
    }
}

/// Connects (over TLS with `tls` for an `rtmps://` URL) and completes the handshake, `connect`
/// and `createStream`; returns the session and the message stream id.
pub async fn open(
    url: &RtmpUrl,
    seed: u64,
    tls: Option<&Arc<ClientConfig>>,
) -> Result<(Conn, ClientSession, u32), ViewError> {
    let tls = match (url.tls, tls) {
        (false, _) => None,
        (true, Some(config)) => Some(config),
        (true, None) => {
            return Err(ViewError::Url(
                "rtmps:// needs --ca-file FILE or --insecure".into(),
            ))
        }
    };
    let mut sock = Conn::connect(&url.authority, tls).await?;
    let mut s = ClientSession::new(seed, false);
    let mut asked = false;
    loop {
        sock.write_all(&s.take_output()).await?;
        if sock.read_with(|d: &[u8]| Ok(s.feed(d)?)).await? == 0 {
            return Err(ViewError::Closed);
        }
        if !asked && s.is_handshake_done() {
            s.connect(&url.app, &url.tc_url());
            s.create_stream();
            asked = true;
        }
        while let Some(ev) = s.poll_event()? {
            match ev {
                ClientSessionEvent::StreamCreated(id) => return Ok((sock, s, id)),
                ClientSessionEvent::Status { level, code, .. } if level == "error" => {
                    return Err(ViewError::Protocol(format!("RTMP connect: {code}")))
                }
                _ => {}
            }
        }
    }
}

/// Runs one RTMP viewer until cancelled or failed.
pub async fn view(
    url: &RtmpUrl,
    tls: Option<&Arc<ClientConfig>>,
    seed: u64,
    mut reader: Reader,
    stats: Arc<ViewerStats>,
    shared: Arc<Shared>,
) -> Result<(), ViewError> {
    let started = Instant::now();
    let (mut sock, mut s, id) = open(url, seed, tls).await?;
    s.play(id, &url.stream);
    let mut probe = Probe::default();
    let mut acker = Acker::default();
    loop {
        sock.write_all(&s.take_output()).await?;
        let mut failure = None;
        let mut ack = None;
        let n = sock
            .read_with(|d: &[u8]| {
                ack = acker.received(d.len());
                s.feed(d)?;
                while let Some(ev) = s.poll_event()? {
                    match ev {
                        ClientSessionEvent::Media(m) if m.type_id == TYPE_VIDEO => {
                            stats.add_bytes(m.payload.len());
                            stats.add_frame(started);
                            if reader.probing() && probe.due() {
                                let head = m.payload.get(..HEAD_CAP).unwrap_or(&m.payload);
                                probe.record(&shared, sei::find(head));
                            }
                        }
                        ClientSessionEvent::Media(m) if m.type_id == TYPE_AUDIO => {
                            stats.add_bytes(m.payload.len());
                        }
                        ClientSessionEvent::Status { level, code, .. } if level == "error" => {
                            failure = Some(code);
                        }
                        _ => {}
                    }
                }
                Ok(())
            })
            .await?;
        if let Some(ack) = ack {
            sock.write_all(&ack).await?;
        }
        if let Some(code) = failure {
            return Err(ViewError::Protocol(format!("RTMP play: {code}")));
        }
        if n == 0 {
            return Err(ViewError::Closed);
        }
        reader.after_read(n, sock.tcp()).await?;
    }
}

/// Runs one HTTP-FLV viewer until cancelled or failed.
pub async fn view_flv(
    url: &str,
    reader: Reader,
    stats: Arc<ViewerStats>,
    shared: Arc<Shared>,
) -> Result<(), ViewError> {
    let (authority, path) = split_url(url, "http")?;
    let mut conn = HttpConn::new(with_port(authority, 80));
    let mut flv = FlvCounter::new(reader.probing());
    conn.reader = Some(reader);
    let status = conn
        .get(path, &mut |d: &[u8]| flv.feed(d, &stats, &shared))
        .await?;
    Err(match status {
        200 => ViewError::Closed,
        s => ViewError::Status(s, path.to_owned()),
    })
}

/// One WebSocket-FLV viewer: the same FLV byte stream as [`view_flv`], in binary messages.
pub async fn view_ws_flv(
    url: &str,
    reader: Reader,
    stats: Arc<ViewerStats>,
    shared: Arc<Shared>,
) -> Result<(), ViewError> {
    let mut flv = FlvCounter::new(reader.probing());
    crate::ws::view(url, reader, &mut |d: &[u8]| flv.feed(d, &stats, &shared)).await
}

/// Counts an FLV byte stream's media bytes and video frames for one viewer and, on an unpaced
/// viewer, records the latency probes stamped into it.
struct FlvCounter {
    started: Instant,
    scanner: FlvScanner,
    probe: Probe,
    probes: bool,
}

impl FlvCounter {
    fn new(probes: bool) -> FlvCounter {
        FlvCounter {
            started: Instant::now(),
            scanner: FlvScanner::default(),
            probe: Probe::default(),
            probes,
        }
    }

    fn feed(&mut self, d: &[u8], stats: &ViewerStats, shared: &Shared) -> Result<(), ViewError> {
        let scanner = &mut self.scanner;
        let (bytes, frames) = (scanner.media_bytes, scanner.video_tags);
        scanner.want_stamp = self.probes && self.probe.due();
        scanner.feed(d)?;
        stats.add_bytes((scanner.media_bytes - bytes) as usize);
        for _ in frames..scanner.video_tags {
            stats.add_frame(self.started);
        }
        if scanner.want_stamp {
            self.probe.record(shared, scanner.stamp.take());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acknowledgements_follow_the_byte_count() {
        let mut a = Acker::default();
        assert!(a.received(ACK_EVERY as usize - 1).is_none());
        let ack = a.received(1).expect("a window's worth received");
        // A type 0 chunk header on csid 2 (one byte), 11 bytes of message header, 4 of body.
        assert_eq!(ack.len(), 1 + 11 + 4);
        assert_eq!(ack[0], ACK_CSID as u8);
        assert_eq!(ack[7], rtmp::message::type_id::ACKNOWLEDGEMENT);
        assert_eq!(&ack[12..], &(ACK_EVERY as u32).to_be_bytes());
        assert!(a.received(10).is_none());
    }

    #[test]
    fn rtmp_urls_table() {
        let u = RtmpUrl::parse("rtmp://h/live/s?k=v").expect("valid");
        assert_eq!(
            (u.authority.as_str(), u.app.as_str(), u.stream.as_str()),
            ("h:1935", "live", "s?k=v")
        );
        assert_eq!(u.tc_url(), "rtmp://h:1935/live");
        assert!(!u.tls);
        let s = RtmpUrl::parse("rtmps://h/live/s").expect("valid");
        assert_eq!((s.tls, s.authority.as_str()), (true, "h:443"));
        assert_eq!(s.tc_url(), "rtmps://h:443/live");
        for bad in ["rtmp://h/live", "rtmp://h//s", "http://h/a/b"] {
            assert!(RtmpUrl::parse(bad).is_err(), "{bad}");
        }
    }
}

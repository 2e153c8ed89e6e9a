//! Sending a playing session's media: the unit source with keyframe resynchronisation, the UDP
//! pump, the interleaved-TCP framing, and the receiver-report statistics of a session.

use std::io::IoSlice;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use rtp::rtcp::{parse_compound, ReportBlock, RtcpPacket};
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::net::UdpSocket;
use tokio_util::sync::CancellationToken;

use crate::from_bus::{MediaUnit, UnitKind, UnitReader};

/// The largest datagram read on a server port (RTCP from clients is small).
const MAX_DATAGRAM: usize = 2048;

/// Liveness and receiver statistics of one session, shared with its UDP listeners.
#[derive(Debug)]
pub struct SessionStats {
    peer: SocketAddr,
    udp: bool,
    epoch: Instant,
    last_activity_ms: AtomicU64,
    /// The latest report block per track, and how many RRs arrived.
    reports: Mutex<Vec<(usize, ReportBlock, u64)>>,
    /// Units skipped by this session because it fell behind.
    pub dropped_units: AtomicU64,
    /// RTP and RTCP bytes sent to the session's client (UDP payloads or interleaved frames).
    pub bytes_sent: AtomicU64,
}

/// A playing session's figures in the bus's client list are these counters.
impl bus::clients::Figures for SessionStats {
    fn bytes_sent(&self) -> u64 {
        self.bytes_sent.load(Ordering::Relaxed)
    }
    fn dropped(&self) -> u64 {
        self.dropped_units.load(Ordering::Relaxed)
    }
}

impl SessionStats {
    /// Creates statistics with the session alive now.
    pub fn new(peer: SocketAddr, udp: bool) -> Self {
        SessionStats {
            peer,
            udp,
            epoch: Instant::now(),
            last_activity_ms: AtomicU64::new(0),
            reports: Mutex::default(),
            dropped_units: AtomicU64::new(0),
            bytes_sent: AtomicU64::new(0),
        }
    }

    /// Records a sign of life (a request, an RTCP or RTP packet from the client).
    pub fn touch(&self) {
        self.last_activity_ms
            .store(self.epoch.elapsed().as_millis() as u64, Ordering::Relaxed);
    }

    /// Time since the last sign of life.
    pub fn idle(&self) -> Duration {
        let last = Duration::from_millis(self.last_activity_ms.load(Ordering::Relaxed));
        self.epoch.elapsed().saturating_sub(last)
    }

    /// Parses an RTCP packet from the client, keeping the report blocks about `track`.
    pub fn on_rtcp(&self, track: usize, data: &[u8]) {
        let Ok(packets) = parse_compound(data) else {
            return;
        };
        self.touch();
        let mut reports = self.reports.lock().unwrap_or_else(|p| p.into_inner());
        for block in packets.iter().flat_map(|p| match p {
            RtcpPacket::Report { blocks, .. } => blocks.as_slice(),
            _ => &[],
        }) {
            match reports.iter_mut().find(|(t, _, _)| *t == track) {
                Some(entry) => *entry = (track, *block, entry.2 + 1),
                None => reports.push((track, *block, 1)),
            }
        }
    }

    /// The latest receiver report of each track.
    pub fn track_reports(&self) -> Vec<TrackReport> {
        let reports = self.reports.lock().unwrap_or_else(|p| p.into_inner());
        reports
            .iter()
            .map(|(track, b, n)| TrackReport {
                track: *track,
                receiver_reports: *n,
                fraction_lost: f64::from(b.fraction_lost) / 256.0,
                cumulative_lost: b.cumulative_lost,
                jitter: b.jitter,
            })
            .collect()
    }

    /// A snapshot for the stats API.
    pub fn info(&self) -> SessionInfo {
        SessionInfo {
            peer: self.peer,
            transport: if self.udp { "udp" } else { "tcp" },
            duration: self.epoch.elapsed(),
            dropped_units: self.dropped_units.load(Ordering::Relaxed),
            tracks: self.track_reports(),
        }
    }

    /// A one-line summary for the session-end log: per track, fraction lost, cumulative lost, jitter.
    pub fn summary(&self) -> String {
        let reports = self.track_reports();
        if reports.is_empty() {
            return "no receiver reports".to_owned();
        }
        let parts: Vec<String> = reports
            .iter()
            .map(|r| {
                format!(
                    "track {}: {} RRs, fraction lost {:.1}%, cumulative lost {}, jitter {}",
                    r.track,
                    r.receiver_reports,
                    r.fraction_lost * 100.0,
                    r.cumulative_lost,
                    r.jitter
                )
            })
            .collect();
        parts.join("; ")
    }
}

/// What a client's latest RTCP receiver report says about one track (RFC 3550 §6.4.1).
#[derive(Debug, Clone, PartialEq)]
pub struct TrackReport {
    /// The track index (`trackID`).
    pub track: usize,
    /// Receiver reports received for this track.
    pub receiver_reports: u64,
    /// Fraction of packets lost since the previous report (0.0 to 1.0).
    pub fraction_lost: f64,
    /// Cumulative packets lost.
    pub cumulative_lost: i32,
    /// Interarrival jitter in RTP timestamp units.
    pub jitter: u32,
}

/// One playing RTSP session, for the stats API.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionInfo {
    /// The client's address.
    pub peer: SocketAddr,
    /// `"udp"` or `"tcp"` (interleaved).
    pub transport: &'static str,
    /// Time since SETUP.
    pub duration: Duration,
    /// Access units skipped because the session fell behind.
    pub dropped_units: u64,
    /// Receiver-report figures per track.
    pub tracks: Vec<TrackReport>,
}

/// The RTSP sessions of one bus stream, kept in a [`bus::Stream::attachment`].
#[derive(Debug, Default)]
pub struct SessionTable {
    sessions: Mutex<Vec<Arc<SessionStats>>>,
}

impl SessionTable {
    /// Adds a session.
    pub fn insert(&self, stats: &Arc<SessionStats>) {
        self.sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(Arc::clone(stats));
    }

    /// Removes a session.
    pub fn remove(&self, stats: &Arc<SessionStats>) {
        self.sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|s| !Arc::ptr_eq(s, stats));
    }

    /// Snapshots every session.
    pub fn snapshot(&self) -> Vec<SessionInfo> {
        self.sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|s| s.info())
            .collect()
    }
}

/// A session's ordered supply of units: its stream ring's [`bus::ring::Reader`] (a Sender Report
/// per track and the GOP, then live units, with the ring's lag policy), limited to the tracks the
/// session plays.
pub struct UnitSource {
    reader: UnitReader,
    /// The tracks this session receives.
    tracks: Vec<usize>,
    stats: Arc<SessionStats>,
    label: String,
    /// The bus stream, to count the session on it if it stops reading.
    stream: Option<Arc<bus::Stream>>,
    /// Bytes written to a TCP-interleaved session's socket so far.
    pub bytes_sent: u64,
}

impl UnitSource {
    /// Wraps a session's reader for the given tracks; `label` names the session in logs.
    pub fn new(
        reader: UnitReader,
        tracks: Vec<usize>,
        stats: Arc<SessionStats>,
        label: String,
    ) -> Self {
        let counted = Arc::clone(&stats);
        let reader = reader.on_drops(move |n| {
            counted.dropped_units.fetch_add(n, Ordering::Relaxed);
        });
        UnitSource {
            reader,
            tracks,
            stats,
            label,
            stream: None,
            bytes_sent: 0,
        }
    }

    /// Names the bus stream this session plays, on which [`UnitSource::on_stalled`] counts it.
    pub fn with_stream(mut self, stream: Arc<bus::Stream>) -> Self {
        self.stream = Some(stream);
        self
    }

    /// Counts `n` bytes written for this session.
    pub fn count_sent(&mut self, n: u64) {
        self.bytes_sent += n;
        self.stats.bytes_sent.fetch_add(n, Ordering::Relaxed);
        if let Some(s) = &self.stream {
            s.count_sent(bus::Protocol::Rtsp, n);
        }
    }

    /// The session's socket accepted nothing for `timeout` and is being closed: logs it once and
    /// counts it on the stream.
    pub fn on_stalled(&self, timeout: Duration) {
        let stream = self.stream.as_ref();
        if let Some(s) = stream {
            s.count_stalled_viewer(bus::Protocol::Rtsp);
        }
        tracing::warn!(
            session = %self.label,
            stream = stream.map(|s| tracing::field::display(s.key())),
            protocol = %"rtsp-tcp",
            bytes_sent = self.bytes_sent,
            timeout = %netutil::display::Secs(timeout),
            "viewer dropped: its socket accepted nothing for the send timeout"
        );
    }

    /// The next unit for this session; `None` when the stream's ring is closed.
    pub async fn next(&mut self) -> Option<Arc<MediaUnit>> {
        loop {
            let unit = self.reader.recv().await?;
            if self.tracks.contains(&unit.track) {
                return Some(unit);
            }
        }
    }

    /// A unit that is ready now, without waiting; `None` when there is none (a closed ring is
    /// left for [`UnitSource::next`] to report).
    pub fn try_next(&mut self) -> Option<Arc<MediaUnit>> {
        loop {
            let unit = self.reader.try_recv()?;
            if self.tracks.contains(&unit.track) {
                return Some(unit);
            }
        }
    }

    /// Records one interleaved write of `units` access units on the stream.
    pub fn count_batch(&self, units: usize) {
        if let Some(s) = &self.stream {
            s.count_batch(bus::Protocol::Rtsp, units);
        }
    }

    /// Whether the session is past its start-up: the snapshot is sent and a live unit has gone
    /// out before the latest one, so write batching may now delay it.
    pub fn is_live(&self) -> bool {
        self.reader.is_live()
    }
}

/// Where one track's packets go over UDP.
#[derive(Debug, Clone)]
pub struct UdpDest {
    /// The track index.
    pub track: usize,
    /// Our RTP socket.
    pub rtp: Arc<UdpSocket>,
    /// Our RTCP socket.
    pub rtcp: Arc<UdpSocket>,
    /// The client's RTP address.
    pub rtp_to: SocketAddr,
    /// The client's RTCP address.
    pub rtcp_to: SocketAddr,
}

/// Sends a session's units over UDP until cancelled or the ring closes.
pub async fn udp_pump(mut source: UnitSource, dests: Vec<UdpDest>, cancel: CancellationToken) {
    loop {
        let unit = tokio::select! {
            u = source.next() => u,
            _ = cancel.cancelled() => return,
        };
        let Some(unit) = unit else { return };
        let Some(d) = dests.iter().find(|d| d.track == unit.track) else {
            continue;
        };
        let (socket, to) = match unit.kind {
            UnitKind::Rtcp => (&d.rtcp, d.rtcp_to),
            UnitKind::Rtp { .. } => (&d.rtp, d.rtp_to),
        };
        for packet in &unit.packets {
            // A failed send (ICMP port unreachable, full buffer) loses this packet only, like the network would.
            if let Ok(n) = socket.send_to(packet, to).await {
                source.count_sent(n as u64);
            }
        }
    }
}

/// Listens on a track's server ports: RTCP is parsed for receiver reports, anything else (NAT
/// hole-punching packets) only proves the client is alive.
pub async fn udp_listen(dest: UdpDest, stats: Arc<SessionStats>, cancel: CancellationToken) {
    let mut rtp_buf = vec![0u8; MAX_DATAGRAM];
    let mut rtcp_buf = vec![0u8; MAX_DATAGRAM];
    loop {
        tokio::select! {
            r = dest.rtcp.recv_from(&mut rtcp_buf) => if let Ok((n, _)) = r {
                stats.on_rtcp(dest.track, &rtcp_buf[..n]);
            },
            r = dest.rtp.recv_from(&mut rtp_buf) => if r.is_ok() {
                stats.touch();
            },
            _ = cancel.cancelled() => return,
        }
    }
}

/// Interleaved channels of one track.
#[derive(Debug, Clone, Copy)]
pub struct TcpChannels {
    /// The track index.
    pub track: usize,
    /// The RTP channel.
    pub rtp: u8,
    /// The RTCP channel.
    pub rtcp: u8,
}

/// Writes units as interleaved frames (RFC 2326 §10.12) with vectored writes; a unit of a track
/// without channels is skipped. Fails with `TimedOut` once one write call has waited
/// `send_timeout` without the socket accepting a byte. Returns the bytes written.
pub async fn write_interleaved<W: AsyncWrite + Unpin>(
    w: &mut W,
    units: &[Arc<MediaUnit>],
    channels: &[TcpChannels],
    send_timeout: Duration,
) -> std::io::Result<u64> {
    let mut frames: Vec<([u8; 4], &Bytes)> = Vec::new();
    for unit in units {
        let Some(ch) = channels.iter().find(|c| c.track == unit.track) else {
            continue;
        };
        let channel = if unit.kind == UnitKind::Rtcp {
            ch.rtcp
        } else {
            ch.rtp
        };
        frames.extend(
            unit.packets.iter().filter_map(|p| {
                rtsp::message::interleaved_header(channel, p.len()).map(|h| (h, p))
            }),
        );
    }
    let mut slices: Vec<IoSlice<'_>> = Vec::with_capacity(frames.len() * 2);
    for (h, p) in &frames {
        slices.push(IoSlice::new(h));
        slices.push(IoSlice::new(p));
    }
    write_all_vectored(w, &mut slices, send_timeout).await
}

/// Writes a single frame (used for BYE).
pub fn interleaved_frame(channel: u8, packet: &Bytes) -> Option<Bytes> {
    let header = rtsp::message::interleaved_header(channel, packet.len())?;
    let mut out = Vec::with_capacity(4 + packet.len());
    out.extend_from_slice(&header);
    out.extend_from_slice(packet);
    Some(Bytes::from(out))
}

/// Writes every slice; each write call may wait at most `send_timeout` for the socket to accept
/// a byte, so a slow reader is never cut off but one that stopped reading is.
async fn write_all_vectored<W: AsyncWrite + Unpin>(
    w: &mut W,
    mut slices: &mut [IoSlice<'_>],
    send_timeout: Duration,
) -> std::io::Result<u64> {
    let mut written = 0u64;
    while !slices.is_empty() {
        let n = tokio::time::timeout(send_timeout, w.write_vectored(slices))
            .await
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))??;
        if n == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        written += n as u64;
        IoSlice::advance_slices(&mut slices, n);
    }
    // A TLS stream may hold the last records until flushed (a TCP socket holds nothing).
    tokio::time::timeout(send_timeout, w.flush())
        .await
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))??;
    Ok(written)
}

//! Sans-IO RTP and RTCP for the gateway's RTSP egress.
//!
//! This crate turns access units (already split into NAL units or audio frames by the caller) into
//! RTP packets, and builds and parses the RTCP packets a media sender needs. It does no networking,
//! never reads the clock (the caller passes `now` as a wall-clock [`std::time::SystemTime`]) and takes
//! its randomness (SSRC, initial sequence number and timestamp) as constructor arguments.
//!
//! It is not a depacketizer and not a jitter buffer: the gateway only sends media over RTP.
//!
//! | spec | what is implemented |
//! |---|---|
//! | RFC 3550 §5.1 | RTP fixed header, written and parsed (no CSRC, no extension on output) |
//! | RFC 3550 §6.4 | Sender Report written, Receiver Report blocks parsed (fraction lost, cumulative lost, jitter) |
//! | RFC 3550 §6.5, §6.6 | SDES CNAME and BYE written |
//! | RFC 3550 §6.4.1 | one media-to-wall-clock mapping per stream for the SR's NTP/RTP pair ([`MediaClock`]) |
//! | RFC 6184 §5.6, §5.7.1, §5.8 | H.264 single NAL unit, STAP-A (SPS/PPS), FU-A (packetization-mode=1) |
//! | RFC 7798 §4.4.1–§4.4.3 | H.265 single NAL unit, aggregation packet (VPS/SPS/PPS), fragmentation unit |
//! | RFC 3640 §3.2, §3.3.6 | mpeg4-generic AAC-hbr: AU-headers-length, 13-bit size + 3-bit index, fragmentation |
//! | RFC 2250 §3.5 | MPEG audio (MPA): 4-byte header with fragment offset, 90 kHz clock |
//!
//! Architecture Invariant: a packetizer's output is a list of complete RTP packets as `Bytes`;
//! callers share them between any number of receivers without copying.

pub mod aac;
pub mod clock;
pub mod h264;
pub mod h265;
pub mod header;
pub mod mpa;
pub mod rtcp;
mod writer;

pub use clock::{MediaClock, TrackClock};
pub use header::{RtpHeader, RtpPacketRef};
pub use writer::{PacketWriter, TrackParams};

/// The smallest MTU a packetizer accepts; below it the fragmentation headers would not leave room for data.
pub const MIN_MTU: usize = 64;
/// The largest MTU a packetizer accepts (one UDP datagram over Ethernet jumbo frames).
pub const MAX_MTU: usize = 9000;
/// The default MTU: the RTP packet size (header included) kept under typical path MTUs with room for tunnels.
pub const DEFAULT_MTU: usize = 1400;
/// The RTP clock rate for video (RFC 6184 §8.2.1, RFC 7798 §7.1) and MPEG audio (RFC 2250 §3).
pub const VIDEO_CLOCK_RATE: u32 = 90_000;

/// Errors from building packetizers or parsing RTP/RTCP.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    /// The configured MTU is outside `MIN_MTU..=MAX_MTU`.
    #[error("MTU {mtu} is outside {MIN_MTU}..={MAX_MTU}")]
    BadMtu {
        /// The rejected MTU.
        mtu: usize,
    },
    /// An RTP packet was malformed.
    #[error("bad RTP packet: {reason} (length {len})")]
    BadRtp {
        /// What was wrong.
        reason: &'static str,
        /// The packet length in bytes.
        len: usize,
    },
    /// An RTCP packet was malformed.
    #[error("bad RTCP packet at offset {offset}: {reason}")]
    BadRtcp {
        /// What was wrong.
        reason: &'static str,
        /// Byte offset of the offending RTCP packet within the compound packet.
        offset: usize,
    },
}

/// Converts a millisecond timestamp on the bus timeline to an RTP timestamp offset at `clock_rate`.
///
/// The result wraps modulo 2^32 as RTP timestamps do (RFC 3550 §5.1).
pub fn ms_to_rtp(ms: i64, clock_rate: u32) -> u32 {
    let ticks = i128::from(ms) * i128::from(clock_rate) / 1000;
    ticks as u32
}

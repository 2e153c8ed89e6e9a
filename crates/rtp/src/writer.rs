//! Shared per-track RTP state: SSRC, sequence numbers, counters for Sender Reports.

use bytes::Bytes;

use crate::header::{RtpHeader, HEADER_LEN};
use crate::{Error, MAX_MTU, MIN_MTU};

/// The per-track constants a packetizer is built from.
///
/// The random fields come from the caller so this crate stays deterministic under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrackParams {
    /// The RTP payload type written in every packet.
    pub payload_type: u8,
    /// The synchronisation source identifier (random, RFC 3550 §8.1).
    pub ssrc: u32,
    /// The first sequence number (random, RFC 3550 §5.1).
    pub initial_sequence: u16,
    /// The RTP timestamp of media time zero (random, RFC 3550 §5.1).
    pub timestamp_offset: u32,
    /// The largest RTP packet to emit, header included.
    pub mtu: usize,
}

/// Writes RTP packets for one track and counts what it wrote.
#[derive(Debug, Clone)]
pub struct PacketWriter {
    params: TrackParams,
    next_sequence: u16,
    packet_count: u32,
    octet_count: u32,
}

impl PacketWriter {
    /// Creates a writer, rejecting an MTU outside `MIN_MTU..=MAX_MTU`.
    pub fn new(params: TrackParams) -> Result<Self, Error> {
        if !(MIN_MTU..=MAX_MTU).contains(&params.mtu) {
            return Err(Error::BadMtu { mtu: params.mtu });
        }
        Ok(PacketWriter {
            next_sequence: params.initial_sequence,
            params,
            packet_count: 0,
            octet_count: 0,
        })
    }

    /// Returns the constants this writer was built with.
    pub fn params(&self) -> &TrackParams {
        &self.params
    }

    /// Returns the most payload bytes one packet can carry.
    pub fn max_payload(&self) -> usize {
        self.params.mtu - HEADER_LEN
    }

    /// Returns the sequence number the next packet will carry.
    pub fn next_sequence(&self) -> u16 {
        self.next_sequence
    }

    /// Returns (packets, payload octets) sent so far, as Sender Reports carry them (RFC 3550 §6.4.1).
    pub fn counts(&self) -> (u32, u32) {
        (self.packet_count, self.octet_count)
    }

    /// Converts a media timestamp in clock ticks (relative to media time zero) to an RTP timestamp.
    pub fn rtp_timestamp(&self, ticks: u32) -> u32 {
        ticks.wrapping_add(self.params.timestamp_offset)
    }

    /// Emits one packet whose payload is the concatenation of `parts`.
    pub fn emit(&mut self, marker: bool, ticks: u32, parts: &[&[u8]]) -> Bytes {
        let len: usize = parts.iter().map(|p| p.len()).sum();
        let mut out = Vec::with_capacity(HEADER_LEN + len);
        RtpHeader {
            marker,
            payload_type: self.params.payload_type,
            sequence: self.next_sequence,
            timestamp: self.rtp_timestamp(ticks),
            ssrc: self.params.ssrc,
        }
        .write(&mut out);
        for part in parts {
            out.extend_from_slice(part);
        }
        self.next_sequence = self.next_sequence.wrapping_add(1);
        self.packet_count = self.packet_count.wrapping_add(1);
        self.octet_count = self.octet_count.wrapping_add(len as u32);
        Bytes::from(out)
    }

    /// Emits one aggregation packet (H.264 STAP-A, H.265 AP): `header`, then each unit behind its
    /// 16-bit size. Returns `None`, emitting nothing, when the units do not fit one packet.
    pub fn emit_aggregate(&mut self, ticks: u32, header: &[u8], units: &[Bytes]) -> Option<Bytes> {
        let size = header.len() + units.iter().map(|u| 2 + u.len()).sum::<usize>();
        if size > self.max_payload() || units.iter().any(|u| u.len() > usize::from(u16::MAX)) {
            return None;
        }
        let mut payload = Vec::with_capacity(size);
        payload.extend_from_slice(header);
        for unit in units {
            payload.extend_from_slice(&(unit.len() as u16).to_be_bytes());
            payload.extend_from_slice(unit);
        }
        Some(self.emit(false, ticks, &[&payload]))
    }

    /// Emits `data` split over as many packets as needed, each prefixed by `header` and the
    /// fragment header `fu(start, end)` (H.264 FU-A, H.265 FU). `marker` goes on the last fragment.
    pub fn emit_fragments(
        &mut self,
        ticks: u32,
        marker: bool,
        header: &[u8],
        fu: impl Fn(bool, bool) -> u8,
        data: &[u8],
        out: &mut Vec<Bytes>,
    ) {
        let room = self.max_payload() - header.len() - 1;
        let mut chunks = data.chunks(room).peekable();
        let mut start = true;
        while let Some(chunk) = chunks.next() {
            let end = chunks.peek().is_none();
            out.push(self.emit(marker && end, ticks, &[header, &[fu(start, end)], chunk]));
            start = false;
        }
    }
}

//! MPEG audio (MP3) packetization (RFC 2250 §3.5, payload type 14, 90 kHz clock).
//!
//! Each frame is preceded by the 4-byte MPEG audio-specific header: 16 bits that must be zero and a
//! 16-bit fragment offset. Frames over the MTU are split, the offset locating each fragment.

use bytes::Bytes;

use crate::writer::{PacketWriter, TrackParams};
use crate::{ms_to_rtp, Error, VIDEO_CLOCK_RATE};

/// The static payload type of MPEG audio (RFC 3551 §6).
pub const PAYLOAD_TYPE: u8 = 14;
/// The largest frame accepted; MPEG-1 Layer III frames are at most 2881 bytes.
pub const MAX_FRAME_SIZE: usize = 8192;

/// Packetizes MPEG audio frames for one track.
#[derive(Debug, Clone)]
pub struct MpaPacketizer {
    writer: PacketWriter,
}

impl MpaPacketizer {
    /// Creates a packetizer; the payload type in `params` should be [`PAYLOAD_TYPE`].
    pub fn new(params: TrackParams) -> Result<Self, Error> {
        Ok(MpaPacketizer {
            writer: PacketWriter::new(params)?,
        })
    }

    /// Returns the RTP state of this track.
    pub fn writer(&self) -> &PacketWriter {
        &self.writer
    }

    /// Returns the RTP timestamp for a media time in milliseconds.
    pub fn rtp_timestamp(&self, ms: i64) -> u32 {
        self.writer.rtp_timestamp(ms_to_rtp(ms, VIDEO_CLOCK_RATE))
    }

    /// Appends the packets of one frame; returns false for an empty or oversized frame.
    pub fn packetize(&mut self, ms: i64, frame: &[u8], out: &mut Vec<Bytes>) -> bool {
        if frame.is_empty() || frame.len() > MAX_FRAME_SIZE {
            return false;
        }
        let ticks = ms_to_rtp(ms, VIDEO_CLOCK_RATE);
        let mut offset = 0u16;
        for chunk in frame.chunks(self.writer.max_payload() - 4) {
            let [hi, lo] = offset.to_be_bytes();
            out.push(self.writer.emit(false, ticks, &[&[0, 0, hi, lo], chunk]));
            offset += chunk.len() as u16;
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RtpPacketRef;

    /// (timestamp, 4-byte MPA header, data length) per packet.
    type Expected = (u32, [u8; 4], usize);

    #[test]
    fn packetize_table() {
        let cases: &[(usize, usize, &[Expected])] = &[
            (1400, 417, &[(90, [0, 0, 0, 0], 417)]),
            (
                64,
                100,
                &[
                    (90, [0, 0, 0, 0], 48),
                    (90, [0, 0, 0, 48], 48),
                    (90, [0, 0, 0, 96], 4),
                ],
            ),
            (1400, 0, &[]),
            (1400, MAX_FRAME_SIZE + 1, &[]),
        ];
        for &(mtu, len, want) in cases {
            let params = TrackParams {
                payload_type: PAYLOAD_TYPE,
                ssrc: 3,
                initial_sequence: 0,
                timestamp_offset: 0,
                mtu,
            };
            let mut p = MpaPacketizer::new(params).expect("valid mtu");
            let mut out = Vec::new();
            p.packetize(1, &vec![0xff; len], &mut out);
            let got: Vec<_> = out
                .iter()
                .map(|b| {
                    let pkt = RtpPacketRef::parse(b).expect("valid RTP");
                    (
                        pkt.header.timestamp,
                        <[u8; 4]>::try_from(&pkt.payload[..4]).expect("4 bytes"),
                        pkt.payload.len() - 4,
                    )
                })
                .collect();
            assert_eq!(got, want, "mtu {mtu} len {len}");
        }
    }
}

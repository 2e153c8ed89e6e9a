//! AAC packetization as mpeg4-generic AAC-hbr (RFC 3640 §3.3.6).
//!
//! One access unit per packet, each preceded by a 16-bit AU-headers-length and one AU-header with a
//! 13-bit AU-size and a 3-bit AU-Index of zero. An AU larger than the MTU is fragmented over several
//! packets (§3.2.3); every fragment carries the AU-header with the size of the whole AU and only the
//! last has the marker bit.

use bytes::Bytes;

use crate::writer::{PacketWriter, TrackParams};
use crate::{ms_to_rtp, Error};

/// The largest AU the 13-bit AU-size field can describe.
pub const MAX_AU_SIZE: usize = (1 << 13) - 1;
/// Samples per AAC-LC frame; the spacing of RTP timestamps between consecutive AUs.
pub const SAMPLES_PER_FRAME: u32 = 1024;

/// Keeps audio RTP timestamps sample-exact although the bus carries millisecond timestamps.
///
/// A millisecond timeline rounds 1024-sample frames at 44.1 kHz to 23 or 24 ms, which would make
/// the RTP timestamps jitter by up to 44 ticks. When a frame arrives within a millisecond or so of
/// where the previous frame predicts, the predicted timestamp is used instead.
#[derive(Debug, Clone, Default)]
pub struct AudioClock {
    next: Option<u32>,
}

impl AudioClock {
    /// Returns the clock ticks for a frame at `ms` lasting `frame_ticks`.
    pub fn ticks(&mut self, ms: i64, clock_rate: u32, frame_ticks: u32) -> u32 {
        let measured = ms_to_rtp(ms, clock_rate);
        let tolerance = clock_rate / 500; // 2 ms: covers the rounding of both timestamps.
        let ticks = match self.next {
            Some(next) if measured.wrapping_sub(next).wrapping_add(tolerance) <= 2 * tolerance => {
                next
            }
            _ => measured,
        };
        self.next = Some(ticks.wrapping_add(frame_ticks));
        ticks
    }
}

/// Packetizes AAC access units (raw, without ADTS headers) for one track.
#[derive(Debug, Clone)]
pub struct AacPacketizer {
    writer: PacketWriter,
    clock_rate: u32,
    clock: AudioClock,
}

impl AacPacketizer {
    /// Creates a packetizer whose RTP clock is the sampling rate.
    pub fn new(params: TrackParams, clock_rate: u32) -> Result<Self, Error> {
        Ok(AacPacketizer {
            writer: PacketWriter::new(params)?,
            clock_rate: clock_rate.max(1),
            clock: AudioClock::default(),
        })
    }

    /// Returns the RTP state of this track.
    pub fn writer(&self) -> &PacketWriter {
        &self.writer
    }

    /// Returns the RTP clock rate (the sampling rate).
    pub fn clock_rate(&self) -> u32 {
        self.clock_rate
    }

    /// Returns the RTP timestamp for a media time in milliseconds.
    pub fn rtp_timestamp(&self, ms: i64) -> u32 {
        self.writer.rtp_timestamp(ms_to_rtp(ms, self.clock_rate))
    }

    /// Appends the packets of one AU; returns false (and writes nothing) for an empty or oversized AU.
    pub fn packetize(&mut self, ms: i64, au: &[u8], out: &mut Vec<Bytes>) -> bool {
        if au.is_empty() || au.len() > MAX_AU_SIZE {
            return false;
        }
        let ticks = self.clock.ticks(ms, self.clock_rate, SAMPLES_PER_FRAME);
        let size = (au.len() as u16) << 3;
        let headers = [0x00, 0x10, (size >> 8) as u8, size as u8];
        let mut chunks = au
            .chunks(self.writer.max_payload() - headers.len())
            .peekable();
        while let Some(chunk) = chunks.next() {
            let last = chunks.peek().is_none();
            out.push(self.writer.emit(last, ticks, &[&headers, chunk]));
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RtpPacketRef;

    fn check(mtu: usize, frames: &[(i64, usize)], want: &[(bool, u32, Vec<u8>, usize)]) {
        let params = TrackParams {
            payload_type: 97,
            ssrc: 2,
            initial_sequence: 0,
            timestamp_offset: 0,
            mtu,
        };
        let mut p = AacPacketizer::new(params, 44_100).expect("valid mtu");
        let mut out = Vec::new();
        for &(ms, len) in frames {
            p.packetize(ms, &vec![0xaa; len], &mut out);
        }
        let got: Vec<_> = out
            .iter()
            .map(|b| {
                let pkt = RtpPacketRef::parse(b).expect("valid RTP");
                (
                    pkt.header.marker,
                    pkt.header.timestamp,
                    pkt.payload[..4].to_vec(),
                    pkt.payload.len() - 4,
                )
            })
            .collect();
        assert_eq!(got, want, "frames {frames:?} mtu {mtu}");
    }

    #[test]
    fn packetize_table() {
        let h = |len: u16| vec![0, 0x10, ((len << 3) >> 8) as u8, (len << 3) as u8];
        // 44.1 kHz frames at 0, 23, 46, 70 ms are 0, 1024, 2048, 3072 samples; a 1 s gap resets.
        check(
            1400,
            &[(0, 10), (23, 11), (46, 12), (70, 13), (1070, 1)],
            &[
                (true, 0, h(10), 10),
                (true, 1024, h(11), 11),
                (true, 2048, h(12), 12),
                (true, 3072, h(13), 13),
                (true, 47_187, h(1), 1),
            ],
        );
        // 100 bytes at MTU 64: 48 bytes of AU a packet, each fragment with the whole AU's size.
        check(
            64,
            &[(0, 100)],
            &[
                (false, 0, h(100), 48),
                (false, 0, h(100), 48),
                (true, 0, h(100), 4),
            ],
        );
        check(1400, &[(0, 0), (0, MAX_AU_SIZE + 1)], &[]);
    }
}

//! H.264 packetization (RFC 6184, packetization-mode=1).
//!
//! Each access unit becomes single NAL unit packets (§5.6) or FU-A fragments (§5.8) when a NAL
//! unit does not fit the MTU. Before every IDR access unit the current SPS and PPS are sent in one
//! STAP-A (§5.7.1) so a receiver that joins or loses packets can start decoding at any keyframe,
//! even when the encoder sends parameter sets only out of band (as RTMP publishers do).

use bytes::Bytes;

use crate::writer::{PacketWriter, TrackParams};
use crate::{ms_to_rtp, Error, VIDEO_CLOCK_RATE};

use codecs::avc::{is_aud, is_idr, is_sps};

const STAP_A: u8 = 24;
const FU_A: u8 = 28;

/// Packetizes H.264 access units for one track.
#[derive(Debug, Clone)]
pub struct H264Packetizer {
    writer: PacketWriter,
    sps: Vec<Bytes>,
    pps: Vec<Bytes>,
}

impl H264Packetizer {
    /// Creates a packetizer with the parameter sets from the decoder configuration record.
    pub fn new(params: TrackParams, sps: Vec<Bytes>, pps: Vec<Bytes>) -> Result<Self, Error> {
        Ok(H264Packetizer {
            writer: PacketWriter::new(params)?,
            sps,
            pps,
        })
    }

    /// Replaces the parameter sets after a new sequence header.
    pub fn set_parameter_sets(&mut self, sps: Vec<Bytes>, pps: Vec<Bytes>) {
        self.sps = sps;
        self.pps = pps;
    }

    /// Returns the RTP state of this track.
    pub fn writer(&self) -> &PacketWriter {
        &self.writer
    }

    /// Returns the RTP timestamp for a presentation time in milliseconds.
    pub fn rtp_timestamp(&self, pts_ms: i64) -> u32 {
        self.writer
            .rtp_timestamp(ms_to_rtp(pts_ms, VIDEO_CLOCK_RATE))
    }

    /// Appends the packets of one access unit (NAL units without start codes or length prefixes).
    ///
    /// The marker bit is set on the last packet (RFC 6184 §5.1). Access unit delimiters are dropped:
    /// RTP carries the access unit boundary in the marker bit and timestamp instead.
    pub fn packetize(&mut self, pts_ms: i64, nals: &[Bytes], out: &mut Vec<Bytes>) {
        let ticks = ms_to_rtp(pts_ms, VIDEO_CLOCK_RATE);
        let nals: Vec<&Bytes> = nals
            .iter()
            .filter(|n| !n.is_empty() && !is_aud(n))
            .collect();
        if nals.iter().any(|n| is_idr(n)) && !nals.iter().any(|n| is_sps(n)) {
            self.write_parameter_sets(ticks, out);
        }
        let last = nals.len().saturating_sub(1);
        for (i, nal) in nals.iter().enumerate() {
            self.write_nal(ticks, nal, i == last, out);
        }
    }

    fn write_parameter_sets(&mut self, ticks: u32, out: &mut Vec<Bytes>) {
        let sets: Vec<Bytes> = self
            .sps
            .iter()
            .chain(&self.pps)
            .filter(|s| !s.is_empty())
            .cloned()
            .collect();
        // The STAP-A NRI is the highest NRI of the aggregated units (RFC 6184 §5.7).
        let nri = sets.iter().map(|s| s[0] & 0x60).max().unwrap_or(0x60);
        let stap = (sets.len() >= 2)
            .then(|| self.writer.emit_aggregate(ticks, &[nri | STAP_A], &sets))
            .flatten();
        match stap {
            Some(packet) => out.push(packet),
            None => sets
                .iter()
                .for_each(|set| self.write_nal(ticks, set, false, out)),
        }
    }

    fn write_nal(&mut self, ticks: u32, nal: &[u8], last: bool, out: &mut Vec<Bytes>) {
        if nal.len() <= self.writer.max_payload() {
            out.push(self.writer.emit(last, ticks, &[nal]));
            return;
        }
        let indicator = (nal[0] & 0xe0) | FU_A;
        let kind = nal[0] & 0x1f;
        let fu = |start: bool, end: bool| (u8::from(start) << 7) | (u8::from(end) << 6) | kind;
        self.writer
            .emit_fragments(ticks, last, &[indicator], fu, &nal[1..], out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RtpPacketRef;

    /// (marker, payload) per packet.
    type Packets = Vec<(bool, Vec<u8>)>;

    fn params(mtu: usize) -> TrackParams {
        TrackParams {
            payload_type: 96,
            ssrc: 1,
            initial_sequence: 65535,
            timestamp_offset: 10,
            mtu,
        }
    }

    /// Packetizes one access unit and returns (marker, payload) per packet.
    fn run(mtu: usize, nals: &[&[u8]]) -> Vec<(bool, Vec<u8>)> {
        let mut p = H264Packetizer::new(
            params(mtu),
            vec![Bytes::from_static(&[0x67, 1, 2])],
            vec![Bytes::from_static(&[0x68, 3])],
        )
        .expect("valid mtu");
        let nals: Vec<Bytes> = nals.iter().map(|n| Bytes::copy_from_slice(n)).collect();
        let mut out = Vec::new();
        p.packetize(1000, &nals, &mut out);
        out.iter()
            .map(|b| {
                let pkt = RtpPacketRef::parse(b).expect("packetizer writes valid RTP");
                assert_eq!(pkt.header.timestamp, 90_010);
                (pkt.header.marker, pkt.payload.to_vec())
            })
            .collect()
    }

    #[test]
    fn packetize_table() {
        let big: Vec<u8> = std::iter::once(0x65).chain(0..150u8).collect();
        let cases: Vec<(&str, usize, Vec<&[u8]>, Packets)> = vec![
            (
                "single non-IDR",
                1400,
                vec![&[0x41, 9, 9]],
                vec![(true, vec![0x41, 9, 9])],
            ),
            (
                "AUD dropped",
                1400,
                vec![&[0x09, 0xf0], &[0x41, 9]],
                vec![(true, vec![0x41, 9])],
            ),
            (
                "IDR gets STAP-A first",
                1400,
                vec![&[0x65, 7]],
                vec![
                    (false, vec![0x78, 0, 3, 0x67, 1, 2, 0, 2, 0x68, 3]),
                    (true, vec![0x65, 7]),
                ],
            ),
            (
                "in-band SPS suppresses STAP-A",
                1400,
                vec![&[0x67, 5], &[0x68, 6], &[0x65, 7]],
                vec![
                    (false, vec![0x67, 5]),
                    (false, vec![0x68, 6]),
                    (true, vec![0x65, 7]),
                ],
            ),
        ];
        for (name, mtu, nals, want) in cases {
            assert_eq!(run(mtu, &nals), want, "{name}");
        }
        // FU-A: 150 payload bytes, 64-byte MTU leaves 52 - 2 = 50 bytes a fragment.
        let got = run(64, &[&big]);
        let frags: Vec<_> = got[1..]
            .iter()
            .map(|(m, p)| (*m, p[0], p[1], p.len()))
            .collect();
        assert_eq!(
            frags,
            vec![
                (false, 0x7c, 0x85, 52),
                (false, 0x7c, 0x05, 52),
                (true, 0x7c, 0x45, 52)
            ]
        );
        let joined: Vec<u8> = got[1..].iter().flat_map(|(_, p)| p[2..].to_vec()).collect();
        assert_eq!(joined, big[1..]);
    }

    #[test]
    fn sequence_wraps_and_counts() {
        let mut p = H264Packetizer::new(params(1400), vec![], vec![]).expect("valid mtu");
        let mut out = Vec::new();
        p.packetize(0, &[Bytes::from_static(&[0x41, 1])], &mut out);
        p.packetize(40, &[Bytes::from_static(&[0x41, 1])], &mut out);
        let seqs: Vec<u16> = out
            .iter()
            .map(|b| RtpPacketRef::parse(b).expect("valid").header.sequence)
            .collect();
        assert_eq!(seqs, vec![65535, 0]);
        assert_eq!(p.writer().counts(), (2, 4));
        assert!(H264Packetizer::new(params(10), vec![], vec![]).is_err());
    }
}

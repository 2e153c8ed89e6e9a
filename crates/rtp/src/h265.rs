//! H.265 packetization (RFC 7798).
//!
//! Single NAL unit packets (§4.4.1), fragmentation units (§4.4.3) for NAL units over the MTU, and an
//! aggregation packet (§4.4.2) carrying VPS, SPS and PPS before every IRAP picture. No DONL fields
//! are written (sprop-max-don-diff is 0).

use bytes::Bytes;

use crate::writer::{PacketWriter, TrackParams};
use crate::{ms_to_rtp, Error, VIDEO_CLOCK_RATE};

use codecs::hevc::{is_aud, is_irap, nal_type};

const NAL_VPS: u8 = 32;
const NAL_AP: u8 = 48;
const NAL_FU: u8 = 49;

/// The parameter sets of an H.265 stream, each a list of NAL units.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct H265ParameterSets {
    /// Video parameter sets.
    pub vps: Vec<Bytes>,
    /// Sequence parameter sets.
    pub sps: Vec<Bytes>,
    /// Picture parameter sets.
    pub pps: Vec<Bytes>,
}

/// Packetizes H.265 access units for one track.
#[derive(Debug, Clone)]
pub struct H265Packetizer {
    writer: PacketWriter,
    sets: H265ParameterSets,
}

impl H265Packetizer {
    /// Creates a packetizer with the parameter sets from the decoder configuration record.
    pub fn new(params: TrackParams, sets: H265ParameterSets) -> Result<Self, Error> {
        Ok(H265Packetizer {
            writer: PacketWriter::new(params)?,
            sets,
        })
    }

    /// Replaces the parameter sets after a new sequence header.
    pub fn set_parameter_sets(&mut self, sets: H265ParameterSets) {
        self.sets = sets;
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

    /// Appends the packets of one access unit; the marker bit is set on the last (RFC 7798 §4.1).
    pub fn packetize(&mut self, pts_ms: i64, nals: &[Bytes], out: &mut Vec<Bytes>) {
        let ticks = ms_to_rtp(pts_ms, VIDEO_CLOCK_RATE);
        let nals: Vec<&Bytes> = nals.iter().filter(|n| n.len() >= 2 && !is_aud(n)).collect();
        if nals.iter().any(|n| is_irap(n)) && !nals.iter().any(|n| nal_type(n) == Some(NAL_VPS)) {
            self.write_parameter_sets(ticks, out);
        }
        let last = nals.len().saturating_sub(1);
        for (i, nal) in nals.iter().enumerate() {
            self.write_nal(ticks, nal, i == last, out);
        }
    }

    fn write_parameter_sets(&mut self, ticks: u32, out: &mut Vec<Bytes>) {
        let s = &self.sets;
        let sets: Vec<Bytes> = s
            .vps
            .iter()
            .chain(&s.sps)
            .chain(&s.pps)
            .filter(|n| n.len() >= 2)
            .cloned()
            .collect();
        // Layer 0, TemporalId 0 (TID field 1), as every parameter set of a single-layer stream.
        let ap = (sets.len() >= 2)
            .then(|| self.writer.emit_aggregate(ticks, &[NAL_AP << 1, 1], &sets))
            .flatten();
        match ap {
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
        // The payload header keeps F, LayerId and TID and takes type 49 (RFC 7798 §4.4.3).
        let header = [(nal[0] & 0x81) | (NAL_FU << 1), nal[1]];
        let kind = (nal[0] >> 1) & 0x3f;
        let fu = |start: bool, end: bool| (u8::from(start) << 7) | (u8::from(end) << 6) | kind;
        self.writer
            .emit_fragments(ticks, last, &header, fu, &nal[2..], out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RtpPacketRef;

    /// (marker, payload) per packet.
    type Packets = Vec<(bool, Vec<u8>)>;

    fn run(mtu: usize, nals: &[&[u8]]) -> Vec<(bool, Vec<u8>)> {
        let params = TrackParams {
            payload_type: 96,
            ssrc: 1,
            initial_sequence: 0,
            timestamp_offset: 0,
            mtu,
        };
        let sets = H265ParameterSets {
            vps: vec![Bytes::from_static(&[0x40, 1, 0xa])],
            sps: vec![Bytes::from_static(&[0x42, 1, 0xb])],
            pps: vec![Bytes::from_static(&[0x44, 1, 0xc])],
        };
        let mut p = H265Packetizer::new(params, sets).expect("valid mtu");
        let nals: Vec<Bytes> = nals.iter().map(|n| Bytes::copy_from_slice(n)).collect();
        let mut out = Vec::new();
        p.packetize(0, &nals, &mut out);
        out.iter()
            .map(|b| {
                let pkt = RtpPacketRef::parse(b).expect("valid RTP");
                (pkt.header.marker, pkt.payload.to_vec())
            })
            .collect()
    }

    #[test]
    fn packetize_table() {
        let ap = vec![
            0x60, 1, 0, 3, 0x40, 1, 0xa, 0, 3, 0x42, 1, 0xb, 0, 3, 0x44, 1, 0xc,
        ];
        let cases: Vec<(&str, Vec<&[u8]>, Packets)> = vec![
            (
                "trailing picture",
                vec![&[0x02, 1, 7]],
                vec![(true, vec![0x02, 1, 7])],
            ),
            (
                "IDR_W_RADL gets AP",
                vec![&[0x26, 1, 7]],
                vec![(false, ap.clone()), (true, vec![0x26, 1, 7])],
            ),
            (
                "CRA gets AP",
                vec![&[0x2a, 1, 7]],
                vec![(false, ap), (true, vec![0x2a, 1, 7])],
            ),
            (
                "AUD dropped",
                vec![&[0x46, 1, 0x50], &[0x02, 1]],
                vec![(true, vec![0x02, 1])],
            ),
        ];
        for (name, nals, want) in cases {
            assert_eq!(run(1400, &nals), want, "{name}");
        }
        let big: Vec<u8> = [0x02, 0x01].into_iter().chain(0..100u8).collect();
        let got = run(64, &[&big]);
        let heads: Vec<_> = got
            .iter()
            .map(|(m, p)| (*m, p[0], p[1], p[2], p.len()))
            .collect();
        assert_eq!(
            heads,
            vec![
                (false, 0x62, 1, 0x81, 52),
                (false, 0x62, 1, 0x01, 52),
                (true, 0x62, 1, 0x41, 5)
            ]
        );
        let joined: Vec<u8> = got.iter().flat_map(|(_, p)| p[3..].to_vec()).collect();
        assert_eq!(joined, big[2..]);
    }
}

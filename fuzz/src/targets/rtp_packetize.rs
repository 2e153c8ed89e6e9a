//! Structure-aware RTP packetizing: arbitrary access units (H.264, H.265 NAL units, AAC and
//! MPEG audio frames) and MTUs. Every packet parses, fits the MTU and continues the sequence;
//! the marker closes each access unit; and depacketizing (single NAL, STAP-A/AP, FU-A/FU,
//! RFC 3640 and RFC 2250 fragments) gives back exactly the units sent, parameter sets in front
//! of a key frame that lacked them.

use arbitrary::{Arbitrary, Unstructured};
use bytes::Bytes;
use rtp::aac::AacPacketizer;
use rtp::h264::H264Packetizer;
use rtp::h265::{H265Packetizer, H265ParameterSets};
use rtp::mpa::MpaPacketizer;
use rtp::{RtpPacketRef, TrackParams};

#[derive(Debug, Arbitrary)]
enum Input {
    H264 {
        sps: Vec<Vec<u8>>,
        pps: Vec<Vec<u8>>,
        units: Vec<Vec<Vec<u8>>>,
    },
    H265 {
        vps: Vec<Vec<u8>>,
        sps: Vec<Vec<u8>>,
        pps: Vec<Vec<u8>>,
        units: Vec<Vec<Vec<u8>>>,
    },
    Aac {
        rate: u32,
        frames: Vec<Vec<u8>>,
    },
    Mpa {
        frames: Vec<Vec<u8>>,
    },
}

pub fn run(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let (Ok(mtu), Ok(seq), Ok(input)) = (
        u16::arbitrary(&mut u),
        u16::arbitrary(&mut u),
        Input::arbitrary(&mut u),
    ) else {
        return;
    };
    let mtu = rtp::MIN_MTU + usize::from(mtu) % (rtp::MAX_MTU - rtp::MIN_MTU + 1);
    let params = TrackParams {
        payload_type: 96,
        ssrc: 7,
        initial_sequence: seq,
        timestamp_offset: 1000,
        mtu,
    };
    let mut seq = Sequence { next: seq, mtu };
    match input {
        Input::H264 { sps, pps, units } => {
            let sps = nals264(sps);
            let pps = nals264(pps);
            let mut p = H264Packetizer::new(params, sps.clone(), pps.clone()).expect("valid MTU");
            for (i, unit) in units.into_iter().enumerate() {
                let unit = nals264(unit);
                let mut out = Vec::new();
                p.packetize(i as i64 * 40, &unit, &mut out);
                let got = depacketize(&seq.check(&out), 1, 24, 28);
                let sent: Vec<Bytes> = unit
                    .into_iter()
                    .filter(|n| !n.is_empty() && n[0] & 0x1f != 9)
                    .collect();
                let keyframe = sent.iter().any(|n| n[0] & 0x1f == 5);
                let has_sps = sent.iter().any(|n| n[0] & 0x1f == 7);
                let mut want = Vec::new();
                if keyframe && !has_sps {
                    want.extend(sps.iter().chain(&pps).filter(|s| !s.is_empty()).cloned());
                }
                want.extend(sent);
                assert_eq!(got, want, "H.264 units come back");
            }
        }
        Input::H265 {
            vps,
            sps,
            pps,
            units,
        } => {
            let sets = H265ParameterSets {
                vps: nals265(vps),
                sps: nals265(sps),
                pps: nals265(pps),
            };
            let mut p = H265Packetizer::new(params, sets.clone()).expect("valid MTU");
            for (i, unit) in units.into_iter().enumerate() {
                let unit = nals265(unit);
                let mut out = Vec::new();
                p.packetize(i as i64 * 40, &unit, &mut out);
                let got = depacketize(&seq.check(&out), 2, 48, 49);
                let kind = |n: &Bytes| (n[0] >> 1) & 0x3f;
                let sent: Vec<Bytes> = unit
                    .into_iter()
                    .filter(|n| n.len() >= 2 && kind(n) != 35)
                    .collect();
                let irap = sent.iter().any(|n| (16..=23).contains(&kind(n)));
                let has_vps = sent.iter().any(|n| kind(n) == 32);
                let mut want = Vec::new();
                if irap && !has_vps {
                    let all = sets.vps.iter().chain(&sets.sps).chain(&sets.pps);
                    want.extend(all.filter(|s| s.len() >= 2).cloned());
                }
                want.extend(sent);
                assert_eq!(got, want, "H.265 units come back");
            }
        }
        Input::Aac { rate, frames } => {
            let mut p = AacPacketizer::new(params, rate % 96_001).expect("valid MTU");
            for (i, f) in frames.iter().enumerate() {
                let mut out = Vec::new();
                let sent = p.packetize(i as i64 * 23, f, &mut out);
                let payloads = seq.check(&out);
                if !sent {
                    assert!(payloads.is_empty());
                    continue;
                }
                let mut au = Vec::new();
                for (_, payload) in &payloads {
                    assert_eq!(&payload[..2], &[0x00, 0x10], "one 16-bit AU header");
                    let size = usize::from(u16::from_be_bytes([payload[2], payload[3]]) >> 3);
                    assert_eq!(size, f.len(), "the AU header gives the whole AU size");
                    au.extend_from_slice(&payload[4..]);
                }
                assert_eq!(&au, f, "the AAC frame comes back");
            }
        }
        Input::Mpa { frames } => {
            let mut p = MpaPacketizer::new(params).expect("valid MTU");
            for (i, f) in frames.iter().enumerate() {
                let mut out = Vec::new();
                let sent = p.packetize(i as i64 * 26, f, &mut out);
                let payloads = seq.check_unmarked(&out);
                let mut frame = Vec::new();
                for (_, payload) in &payloads {
                    let offset = usize::from(u16::from_be_bytes([payload[2], payload[3]]));
                    assert_eq!(
                        offset,
                        frame.len(),
                        "the fragment offset is the bytes so far"
                    );
                    frame.extend_from_slice(&payload[4..]);
                }
                if sent {
                    assert_eq!(&frame, f, "the MPEG audio frame comes back");
                }
            }
        }
    }
}

/// H.264 NAL units with their type in 1..=23: types 24 to 31 are RTP payload structures
/// (RFC 6184 §5.2), not bitstream NAL units, and 0 is unspecified.
fn nals264(v: Vec<Vec<u8>>) -> Vec<Bytes> {
    v.into_iter()
        .map(|mut n| {
            if let Some(h) = n.first_mut() {
                if *h & 0x1f == 0 || *h & 0x1f >= 24 {
                    *h = (*h & 0xe0) | 1;
                }
            }
            Bytes::from(n)
        })
        .collect()
}

/// H.265 NAL units with their type below 48 (48 to 50 are RTP structures, RFC 7798 §4.4).
fn nals265(v: Vec<Vec<u8>>) -> Vec<Bytes> {
    v.into_iter()
        .map(|mut n| {
            if let Some(h) = n.first_mut() {
                if (*h >> 1) & 0x3f >= 48 {
                    *h &= 0x81;
                }
            }
            Bytes::from(n)
        })
        .collect()
}

struct Sequence {
    next: u16,
    mtu: usize,
}

impl Sequence {
    /// Parses one access unit's packets; the marker must be on the last one only.
    fn check(&mut self, out: &[Bytes]) -> Vec<(bool, Vec<u8>)> {
        let got = self.check_unmarked(out);
        for (i, (marker, _)) in got.iter().enumerate() {
            assert_eq!(
                *marker,
                i + 1 == got.len(),
                "the marker is on the last packet only"
            );
        }
        got
    }

    fn check_unmarked(&mut self, out: &[Bytes]) -> Vec<(bool, Vec<u8>)> {
        let mut ts = None;
        out.iter()
            .map(|b| {
                assert!(
                    b.len() <= self.mtu,
                    "packet of {} bytes over MTU {}",
                    b.len(),
                    self.mtu
                );
                let p = RtpPacketRef::parse(b).expect("the packetizer writes valid RTP");
                assert_eq!(
                    p.header.sequence, self.next,
                    "sequence numbers are consecutive"
                );
                assert_eq!(*ts.get_or_insert(p.header.timestamp), p.header.timestamp);
                self.next = self.next.wrapping_add(1);
                (p.header.marker, p.payload.to_vec())
            })
            .collect()
    }
}

/// Reassembles NAL units from payloads: `header_len` 1 (H.264) or 2 (H.265), and the payload
/// types of the aggregation and fragmentation structures.
fn depacketize(packets: &[(bool, Vec<u8>)], header_len: usize, agg: u8, frag: u8) -> Vec<Bytes> {
    let kind = |p: &[u8]| {
        if header_len == 1 {
            p[0] & 0x1f
        } else {
            (p[0] >> 1) & 0x3f
        }
    };
    let mut nals = Vec::new();
    let mut partial: Option<Vec<u8>> = None;
    for (_, p) in packets {
        let k = kind(p);
        if k == agg {
            let mut rest = &p[header_len..];
            while !rest.is_empty() {
                let n = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
                nals.push(Bytes::copy_from_slice(&rest[2..2 + n]));
                rest = &rest[2 + n..];
            }
        } else if k == frag {
            let fu = p[header_len];
            let data = &p[header_len + 1..];
            if fu & 0x80 != 0 {
                let mut nal = if header_len == 1 {
                    vec![(p[0] & 0xe0) | (fu & 0x1f)]
                } else {
                    vec![(p[0] & 0x81) | ((fu & 0x3f) << 1), p[1]]
                };
                nal.extend_from_slice(data);
                partial = Some(nal);
            } else {
                partial
                    .as_mut()
                    .expect("a fragment follows a start")
                    .extend_from_slice(data);
            }
            if fu & 0x40 != 0 {
                nals.push(Bytes::from(partial.take().expect("an end follows a start")));
            }
        } else {
            nals.push(Bytes::copy_from_slice(p));
        }
    }
    assert!(partial.is_none(), "no fragmented unit is left open");
    nals
}

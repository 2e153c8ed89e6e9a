//! RTCP for a media sender (RFC 3550 §6): Sender Report, SDES CNAME and BYE written; Receiver
//! Report blocks parsed.

use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;

use crate::Error;

const PT_SR: u8 = 200;
const PT_RR: u8 = 201;
const PT_SDES: u8 = 202;
const PT_BYE: u8 = 203;
const SDES_CNAME: u8 = 1;
/// Seconds between the NTP epoch (1900) and the Unix epoch (1970).
const NTP_UNIX_OFFSET: u64 = 2_208_988_800;
/// The longest CNAME written; SDES item lengths are one byte.
pub const MAX_CNAME_LEN: usize = 255;

/// Converts a wall-clock time to a 64-bit NTP timestamp (RFC 3550 §4).
pub fn ntp_timestamp(now: SystemTime) -> u64 {
    let since = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs().wrapping_add(NTP_UNIX_OFFSET);
    let frac = (u64::from(since.subsec_nanos()) << 32) / 1_000_000_000;
    (secs << 32) | frac
}

/// The sender information of a Sender Report (RFC 3550 §6.4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SenderInfo {
    /// The sender's SSRC.
    pub ssrc: u32,
    /// The wall-clock time of this report, as [`ntp_timestamp`] returns it.
    pub ntp: u64,
    /// The RTP timestamp corresponding to the same instant as `ntp`.
    pub rtp_timestamp: u32,
    /// RTP packets sent since the start.
    pub packet_count: u32,
    /// RTP payload octets sent since the start.
    pub octet_count: u32,
}

fn push_header(out: &mut Vec<u8>, count: u8, pt: u8, words_after: usize) {
    out.push(0x80 | (count & 0x1f));
    out.push(pt);
    out.extend_from_slice(&(words_after as u16).to_be_bytes());
}

fn push_sr(out: &mut Vec<u8>, info: &SenderInfo) {
    push_header(out, 0, PT_SR, 6);
    out.extend_from_slice(&info.ssrc.to_be_bytes());
    out.extend_from_slice(&info.ntp.to_be_bytes());
    out.extend_from_slice(&info.rtp_timestamp.to_be_bytes());
    out.extend_from_slice(&info.packet_count.to_be_bytes());
    out.extend_from_slice(&info.octet_count.to_be_bytes());
}

fn push_sdes_cname(out: &mut Vec<u8>, ssrc: u32, cname: &str) {
    let cname = &cname.as_bytes()[..cname.len().min(MAX_CNAME_LEN)];
    // SSRC, item type, item length, text, then at least one zero byte padded to a word boundary.
    let chunk_len = (4 + 2 + cname.len() + 1).div_ceil(4) * 4;
    push_header(out, 1, PT_SDES, chunk_len / 4);
    let start = out.len();
    out.extend_from_slice(&ssrc.to_be_bytes());
    out.extend_from_slice(&[SDES_CNAME, cname.len() as u8]);
    out.extend_from_slice(cname);
    out.resize(start + chunk_len, 0);
}

/// Builds the compound packet sent every few seconds: SR followed by SDES CNAME (RFC 3550 §6.1).
pub fn sender_report(info: &SenderInfo, cname: &str) -> Bytes {
    let mut out = Vec::with_capacity(64);
    push_sr(&mut out, info);
    push_sdes_cname(&mut out, info.ssrc, cname);
    Bytes::from(out)
}

/// Builds the compound packet sent when a track ends: SR, SDES CNAME and BYE (RFC 3550 §6.6).
pub fn goodbye(info: &SenderInfo, cname: &str) -> Bytes {
    let mut out = Vec::with_capacity(72);
    push_sr(&mut out, info);
    push_sdes_cname(&mut out, info.ssrc, cname);
    push_header(&mut out, 1, PT_BYE, 1);
    out.extend_from_slice(&info.ssrc.to_be_bytes());
    Bytes::from(out)
}

/// One reception report block (RFC 3550 §6.4.1), as a receiver describes one of our SSRCs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReportBlock {
    /// The SSRC this block reports on (ours).
    pub ssrc: u32,
    /// Fraction of packets lost since the previous report, in 1/256 units.
    pub fraction_lost: u8,
    /// Cumulative number of packets lost (signed 24-bit; duplicates can make it negative).
    pub cumulative_lost: i32,
    /// Extended highest sequence number received.
    pub highest_sequence: u32,
    /// Interarrival jitter in RTP timestamp units.
    pub jitter: u32,
    /// Middle 32 bits of the NTP timestamp of the last SR received.
    pub last_sr: u32,
    /// Delay since that SR, in 1/65536 seconds.
    pub delay_since_last_sr: u32,
}

/// One packet of a received compound RTCP packet, reduced to what a sender uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RtcpPacket {
    /// A Receiver Report, or the report blocks of a Sender Report.
    Report {
        /// The SSRC of the reporter.
        reporter: u32,
        /// The report blocks.
        blocks: Vec<ReportBlock>,
    },
    /// A BYE from the receiver.
    Bye,
    /// Any other packet type (SDES, APP, feedback), skipped.
    Other {
        /// The RTCP packet type.
        packet_type: u8,
    },
}

/// Parses a compound RTCP packet, validating every length against the buffer.
pub fn parse_compound(buf: &[u8]) -> Result<Vec<RtcpPacket>, Error> {
    let mut packets = Vec::new();
    let mut offset = 0;
    while offset < buf.len() {
        let bad = |reason| Error::BadRtcp { reason, offset };
        let head = buf
            .get(offset..offset + 4)
            .ok_or_else(|| bad("truncated header"))?;
        if head[0] >> 6 != 2 {
            return Err(bad("version is not 2"));
        }
        let len = (usize::from(u16::from_be_bytes([head[2], head[3]])) + 1) * 4;
        let body = buf
            .get(offset + 4..offset + len)
            .ok_or_else(|| bad("length beyond datagram"))?;
        let count = usize::from(head[0] & 0x1f);
        let packet =
            match head[1] {
                PT_RR => parse_report(body, 4, count)
                    .ok_or_else(|| bad("report blocks beyond packet"))?,
                PT_SR => parse_report(body, 24, count)
                    .ok_or_else(|| bad("report blocks beyond packet"))?,
                PT_BYE => RtcpPacket::Bye,
                packet_type => RtcpPacket::Other { packet_type },
            };
        packets.push(packet);
        offset += len;
    }
    Ok(packets)
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn parse_report(body: &[u8], blocks_at: usize, count: usize) -> Option<RtcpPacket> {
    let reporter = be32(body, 0)?;
    let blocks = (0..count)
        .map(|i| parse_block(body.get(blocks_at + i * 24..blocks_at + i * 24 + 24)?))
        .collect::<Option<_>>()?;
    Some(RtcpPacket::Report { reporter, blocks })
}

fn parse_block(b: &[u8]) -> Option<ReportBlock> {
    let lost = be32(b, 4)?;
    // Sign-extend the 24-bit cumulative count.
    let cumulative_lost = ((lost << 8) as i32) >> 8;
    Some(ReportBlock {
        ssrc: be32(b, 0)?,
        fraction_lost: (lost >> 24) as u8,
        cumulative_lost,
        highest_sequence: be32(b, 8)?,
        jitter: be32(b, 12)?,
        last_sr: be32(b, 16)?,
        delay_since_last_sr: be32(b, 20)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn ntp_table() {
        let cases = [
            (Duration::ZERO, NTP_UNIX_OFFSET << 32),
            (
                Duration::from_millis(1500),
                ((NTP_UNIX_OFFSET + 1) << 32) | 0x8000_0000,
            ),
        ];
        for (since, want) in cases {
            assert_eq!(ntp_timestamp(UNIX_EPOCH + since), want, "{since:?}");
        }
    }

    #[test]
    fn sender_report_golden() {
        let info = SenderInfo {
            ssrc: 0x0102_0304,
            ntp: 0x1122_3344_5566_7788,
            rtp_timestamp: 9,
            packet_count: 2,
            octet_count: 3,
        };
        let sr = sender_report(&info, "gw");
        let want: &[u8] = &[
            0x80, 200, 0, 6, 1, 2, 3, 4, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0, 0, 0,
            9, 0, 0, 0, 2, 0, 0, 0, 3, //
            0x81, 202, 0, 3, 1, 2, 3, 4, 1, 2, b'g', b'w', 0, 0, 0, 0,
        ];
        assert_eq!(&sr[..], want);
        let bye = goodbye(&info, "gw");
        assert_eq!(&bye[want.len()..], &[0x81, 203, 0, 1, 1, 2, 3, 4]);
        let parsed = parse_compound(&bye).expect("own output parses");
        assert_eq!(
            parsed[1..],
            [RtcpPacket::Other { packet_type: 202 }, RtcpPacket::Bye]
        );
    }

    fn check(input: &[u8], want: Result<Vec<RtcpPacket>, &'static str>) {
        match (parse_compound(input), want) {
            (Ok(got), Ok(want)) => assert_eq!(got, want),
            (Err(Error::BadRtcp { reason, .. }), Err(r)) => assert_eq!(reason, r),
            (got, want) => panic!("{input:02x?}: got {got:?}, want {want:?}"),
        }
    }

    #[test]
    fn parse_table() {
        let rr: &[u8] = &[
            0x81, 201, 0, 7, 0, 0, 0, 9, // header, reporter 9
            0, 0, 0, 5, 0x40, 0xff, 0xff, 0xfe, 0, 1, 0, 10, 0, 0, 0, 33, 0, 0, 0, 1, 0, 0, 0, 2,
        ];
        let block = ReportBlock {
            ssrc: 5,
            fraction_lost: 0x40,
            cumulative_lost: -2,
            highest_sequence: 0x1000a,
            jitter: 33,
            last_sr: 1,
            delay_since_last_sr: 2,
        };
        check(
            rr,
            Ok(vec![RtcpPacket::Report {
                reporter: 9,
                blocks: vec![block],
            }]),
        );
        check(
            &[0x80, 201, 0, 1, 0, 0, 0, 9],
            Ok(vec![RtcpPacket::Report {
                reporter: 9,
                blocks: vec![],
            }]),
        );
        check(&rr[..20], Err("length beyond datagram"));
        check(
            &[0x81, 201, 0, 1, 0, 0, 0, 9],
            Err("report blocks beyond packet"),
        );
        check(&[0x80, 201], Err("truncated header"));
        check(&[0x40, 201, 0, 0], Err("version is not 2"));
        check(&[], Ok(vec![]));
    }
}

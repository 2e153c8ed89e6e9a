//! The RTP fixed header (RFC 3550 §5.1).

use crate::Error;

/// The length of the RTP fixed header without CSRCs.
pub const HEADER_LEN: usize = 12;

/// The fields of an RTP fixed header that this gateway writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpHeader {
    /// Set on the last packet of an access unit (video) or frame (audio).
    pub marker: bool,
    /// The payload type, 96..=127 for dynamic types.
    pub payload_type: u8,
    /// The sequence number.
    pub sequence: u16,
    /// The media timestamp at the track's clock rate.
    pub timestamp: u32,
    /// The synchronisation source.
    pub ssrc: u32,
}

impl RtpHeader {
    /// Appends the 12-byte header (version 2, no padding, no extension, no CSRC) to `out`.
    pub fn write(&self, out: &mut Vec<u8>) {
        out.push(0x80);
        out.push((u8::from(self.marker) << 7) | (self.payload_type & 0x7f));
        out.extend_from_slice(&self.sequence.to_be_bytes());
        out.extend_from_slice(&self.timestamp.to_be_bytes());
        out.extend_from_slice(&self.ssrc.to_be_bytes());
    }
}

/// A parsed RTP packet borrowing its input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpPacketRef<'a> {
    /// The fixed header fields.
    pub header: RtpHeader,
    /// The payload, CSRCs, extension and padding removed.
    pub payload: &'a [u8],
}

impl<'a> RtpPacketRef<'a> {
    /// Parses an RTP packet, validating the version, CSRC count, extension and padding lengths.
    pub fn parse(buf: &'a [u8]) -> Result<Self, Error> {
        let bad = |reason| Error::BadRtp {
            reason,
            len: buf.len(),
        };
        if buf.len() < HEADER_LEN {
            return Err(bad("shorter than the fixed header"));
        }
        if buf[0] >> 6 != 2 {
            return Err(bad("version is not 2"));
        }
        let csrc_len = usize::from(buf[0] & 0x0f) * 4;
        let mut start = HEADER_LEN + csrc_len;
        if buf[0] & 0x10 != 0 {
            let ext = buf
                .get(start..start + 4)
                .ok_or_else(|| bad("truncated extension header"))?;
            start += 4 + usize::from(u16::from_be_bytes([ext[2], ext[3]])) * 4;
        }
        let mut end = buf.len();
        if buf[0] & 0x20 != 0 {
            let pad = usize::from(buf[end - 1]);
            end = end
                .checked_sub(pad)
                .ok_or_else(|| bad("padding longer than packet"))?;
        }
        let payload = buf
            .get(start..end)
            .ok_or_else(|| bad("header longer than packet"))?;
        let header = RtpHeader {
            marker: buf[1] & 0x80 != 0,
            payload_type: buf[1] & 0x7f,
            sequence: u16::from_be_bytes([buf[2], buf[3]]),
            timestamp: u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]),
            ssrc: u32::from_be_bytes([buf[8], buf[9], buf[10], buf[11]]),
        };
        Ok(RtpPacketRef { header, payload })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &[u8], want: Result<(RtpHeader, &[u8]), &'static str>) {
        let got = RtpPacketRef::parse(input);
        match (got, want) {
            (Ok(p), Ok((h, payload))) => {
                assert_eq!(p.header, h);
                assert_eq!(p.payload, payload);
            }
            (Err(Error::BadRtp { reason, .. }), Err(r)) => assert_eq!(reason, r),
            (got, want) => panic!("input {input:02x?}: got {got:?}, want {want:?}"),
        }
    }

    const H: RtpHeader = RtpHeader {
        marker: true,
        payload_type: 96,
        sequence: 0x1234,
        timestamp: 0xdeadbeef,
        ssrc: 7,
    };

    #[test]
    fn parse_table() {
        let mut plain = Vec::new();
        H.write(&mut plain);
        plain.extend_from_slice(b"abc");
        check(&plain, Ok((H, b"abc")));
        let mut padded = plain.clone();
        padded[0] |= 0x20;
        padded.extend_from_slice(&[0, 2]);
        check(&padded, Ok((H, b"abc")));
        let mut ext = plain[..12].to_vec();
        ext[0] |= 0x10;
        ext.extend_from_slice(&[0xbe, 0xde, 0, 1, 1, 2, 3, 4, b'x']);
        check(&ext, Ok((H, b"x")));
        check(&plain[..11], Err("shorter than the fixed header"));
        check(&[0x40; 12], Err("version is not 2"));
        let mut csrc = plain[..12].to_vec();
        csrc[0] |= 0x0f;
        check(&csrc, Err("header longer than packet"));
        let mut bad_pad = plain[..12].to_vec();
        bad_pad[0] |= 0x20;
        bad_pad[11] = 200;
        check(&bad_pad, Err("padding longer than packet"));
    }
}

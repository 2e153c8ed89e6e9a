//! The latency stamp: an H.264 SEI NAL unit (ITU-T H.264 7.3.2.3, D.1.6
//! `user_data_unregistered`) carrying our UUID and the send time.
//!
//! The 8 time bytes are four 16-bit words, each holding 15 bits of the send time in
//! microseconds with its high bit set. Every other byte is then >= 0x80, so two zero bytes in a
//! row cannot occur and no emulation-prevention byte (7.4.1) is ever needed: the bytes a viewer
//! finds are exactly the bytes the publisher wrote, in an RTMP payload, an RTP payload or a TS
//! PES payload alike. 60 bits of microseconds last some 36,000 years.

use memchr::memmem;

/// Our `uuid_iso_iec_11578`; no zero byte, so it cannot form a start-code prefix either.
pub const UUID: [u8; 16] = [
    0x67, 0x77, 0x6c, 0x6f, 0x61, 0x64, 0xa5, 0x5a, 0xc3, 0x3c, 0x96, 0x69, 0x4b, 0xb4, 0x1e, 0xe1,
];

/// Bytes of SEI payload: the UUID and the encoded time.
const PAYLOAD_LEN: usize = 16 + 8;

/// The SEI NAL unit without length prefix: header, type 5, size 24, payload, stop bit.
pub const NAL_LEN: usize = 1 + 1 + 1 + PAYLOAD_LEN + 1;

/// Encodes `micros` (the low 60 bits) as four words with the high bit set.
pub fn encode_time(micros: u64) -> [u8; 8] {
    let mut out = [0u8; 8];
    for (i, word) in out.chunks_exact_mut(2).enumerate() {
        let shift = 45 - 15 * i as u32;
        let v = 0x8000 | ((micros >> shift) & 0x7fff) as u16;
        word.copy_from_slice(&v.to_be_bytes());
    }
    out
}

/// Decodes [`encode_time`]'s output; `None` if a word lacks its high bit.
pub fn decode_time(b: &[u8; 8]) -> Option<u64> {
    let mut micros = 0u64;
    for word in b.chunks_exact(2) {
        let v = u16::from_be_bytes([word[0], word[1]]);
        if v & 0x8000 == 0 {
            return None;
        }
        micros = (micros << 15) | u64::from(v & 0x7fff);
    }
    Some(micros)
}

/// The SEI NAL unit stamped with `micros`.
pub fn nal(micros: u64) -> [u8; NAL_LEN] {
    let mut out = [0u8; NAL_LEN];
    out[0] = 0x06; // forbidden_zero_bit 0, nal_ref_idc 0, nal_unit_type 6 (SEI)
    out[1] = 5; // payloadType user_data_unregistered
    out[2] = PAYLOAD_LEN as u8;
    out[3..19].copy_from_slice(&UUID);
    out[19..27].copy_from_slice(&encode_time(micros));
    out[27] = 0x80; // rbsp_stop_one_bit and alignment
    out
}

/// Finds the first stamp in `data` and returns its time; a cheap scan for our UUID.
pub fn find(data: &[u8]) -> Option<u64> {
    let mut from = 0;
    while let Some(pos) = memmem::find(data.get(from..)?, &UUID) {
        let at = from + pos + UUID.len();
        let time: &[u8; 8] = data.get(at..at + 8)?.try_into().ok()?;
        if let Some(t) = decode_time(time) {
            return Some(t);
        }
        from = at;
    }
    None
}

/// Where to insert the SEI in an AVCC access unit of `nalus` with `length_size`-byte lengths:
/// after any leading AUD, SPS and PPS (the AUD must come first, 7.4.1.2.3) and before the
/// first other NAL unit. `None` if the framing is inconsistent.
pub fn insertion_offset(nalus: &[u8], length_size: usize) -> Option<usize> {
    let mut pos = 0;
    while pos < nalus.len() {
        let len_bytes = nalus.get(pos..pos + length_size)?;
        let len = len_bytes
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        let nal_type = nalus.get(pos + length_size)? & 0x1f;
        if !matches!(nal_type, 7..=9) {
            return Some(pos);
        }
        pos = pos.checked_add(length_size + len)?;
    }
    (pos == nalus.len()).then_some(pos)
}

/// Returns the FLV AVC video tag `body` (an AVC NALU packet) with a stamp inserted, or `None`
/// if it is not one or its framing is broken.
pub fn stamp_flv_video(body: &[u8], length_size: usize, micros: u64) -> Option<Vec<u8>> {
    // E.4.3.1: FrameType|CodecID (7 = AVC), AVCPacketType (1 = NALU), CompositionTime (3 bytes).
    const AVC_HEADER: usize = 5;
    let (&first, &packet_type) = (body.first()?, body.get(1)?);
    if first & 0x0f != 7 || packet_type != 1 || !(1..=4).contains(&length_size) {
        return None;
    }
    let nalus = body.get(AVC_HEADER..)?;
    let at = AVC_HEADER + insertion_offset(nalus, length_size)?;
    let mut out = Vec::with_capacity(body.len() + length_size + NAL_LEN);
    out.extend_from_slice(&body[..at]);
    let len = (NAL_LEN as u32).to_be_bytes();
    out.extend_from_slice(&len[4 - length_size..]);
    out.extend_from_slice(&nal(micros));
    out.extend_from_slice(&body[at..]);
    Some(out)
}

/// The NAL length size from an FLV AVC sequence header body (AVCDecoderConfigurationRecord
/// `lengthSizeMinusOne`, ISO/IEC 14496-15 5.2.4.1).
pub fn avcc_length_size(body: &[u8]) -> Option<usize> {
    if body.first()? & 0x0f != 7 || *body.get(1)? != 0 {
        return None;
    }
    Some(usize::from(body.get(5 + 4)? & 0x03) + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_round_trips_and_never_has_two_zero_bytes() {
        for micros in [0, 1, 0x7fff, 0x8000, 1_763_800_000_000_000, (1 << 60) - 1] {
            let enc = encode_time(micros);
            assert_eq!(decode_time(&enc), Some(micros), "{micros}");
            let n = nal(micros);
            assert!(!n.windows(2).any(|w| w == [0, 0]), "{micros}: {n:02x?}");
        }
    }

    fn check(nal_types: &[u8], expected_index: usize) {
        let mut au = Vec::new();
        let mut offsets = Vec::new();
        for t in nal_types {
            offsets.push(au.len());
            au.extend_from_slice(&[0, 0, 0, 3, *t, 0xaa, 0xbb]);
        }
        offsets.push(au.len());
        assert_eq!(
            insertion_offset(&au, 4),
            Some(offsets[expected_index]),
            "{nal_types:?}"
        );
    }

    #[test]
    fn sei_goes_after_aud_sps_pps_and_before_the_rest() {
        check(&[0x09, 0x67, 0x68, 0x65], 3);
        check(&[0x65], 0);
        check(&[0x09, 0x06, 0x41], 1);
        check(&[0x41, 0x41], 0);
        check(&[0x09], 1);
    }

    #[test]
    fn stamped_flv_tag_is_found_again() {
        let mut body = vec![0x27, 1, 0, 0, 0];
        body.extend_from_slice(&[0, 0, 0, 2, 0x09, 0xf0, 0, 0, 0, 3, 0x41, 1, 2]);
        let stamped = stamp_flv_video(&body, 4, 123_456_789).expect("an AVC NALU tag");
        assert_eq!(stamped.len(), body.len() + 4 + NAL_LEN);
        assert_eq!(&stamped[..11], &body[..11]);
        assert_eq!(&stamped[stamped.len() - 7..], &body[11..]);
        assert_eq!(find(&stamped), Some(123_456_789));
        assert_eq!(insertion_offset(&stamped[5..], 4), Some(6));
    }

    #[test]
    fn broken_or_foreign_input_is_refused() {
        assert_eq!(stamp_flv_video(&[0x27, 0, 0, 0, 0], 4, 1), None);
        assert_eq!(stamp_flv_video(&[0x2c, 1, 0, 0, 0], 4, 1), None);
        assert_eq!(
            stamp_flv_video(&[0x27, 1, 0, 0, 0, 0, 0, 0, 9, 0x09], 4, 1),
            None
        );
        assert_eq!(find(&UUID), None);
        let mut cut = UUID.to_vec();
        cut.extend_from_slice(&[0x80, 0, 0x80]);
        assert_eq!(find(&cut), None);
        assert_eq!(find(b""), None);
    }
}

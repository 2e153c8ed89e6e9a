//! FLV file framing for writers (HTTP-FLV egress, test fixtures): the file header, tag
//! headers with the extended timestamp byte, and PreviousTagSize fields (FLV 10.1 E.2, E.3,
//! E.4.1).
//!
//! These return fixed-size arrays so that a writer can send header, shared body `Bytes`
//! and trailer as three slices of one vectored write, without copying the body.

use bytes::{BufMut, Bytes, BytesMut};

/// Length of the FLV file header plus PreviousTagSize0.
pub const FILE_HEADER_LEN: usize = 13;
/// Length of a tag header.
pub const TAG_HEADER_LEN: usize = 11;
/// Length of a PreviousTagSize field.
pub const PREVIOUS_TAG_SIZE_LEN: usize = 4;
/// The largest tag body a 24-bit `DataSize` can describe.
pub const MAX_TAG_DATA_SIZE: u32 = 0x00ff_ffff;

/// Builds the 9-byte FLV header (signature, version 1, `TypeFlags`, `DataOffset` 9)
/// followed by the 4-byte PreviousTagSize0, which is always 0.
pub fn file_header(has_audio: bool, has_video: bool) -> [u8; FILE_HEADER_LEN] {
    let flags = (u8::from(has_audio) << 2) | u8::from(has_video);
    [b'F', b'L', b'V', 1, flags, 0, 0, 0, 9, 0, 0, 0, 0]
}

/// Builds an 11-byte tag header: `TagType`, 24-bit `DataSize`, 24-bit `Timestamp` plus
/// the `TimestampExtended` byte holding bits 24-31, and `StreamID` 0.
///
/// `data_size` must not exceed [`MAX_TAG_DATA_SIZE`]; an RTMP message (whose length field
/// is also 24 bits) always fits, so callers relaying bus tags need no check.
pub fn tag_header(tag_type: u8, data_size: u32, timestamp_ms: u32) -> [u8; TAG_HEADER_LEN] {
    debug_assert!(
        data_size <= MAX_TAG_DATA_SIZE,
        "tag body fits a 24-bit DataSize"
    );
    let size = data_size.min(MAX_TAG_DATA_SIZE).to_be_bytes();
    let ts = timestamp_ms.to_be_bytes();
    [
        tag_type & 0x1f,
        size[1],
        size[2],
        size[3],
        ts[1],
        ts[2],
        ts[3],
        ts[0],
        0,
        0,
        0,
    ]
}

/// Builds the PreviousTagSize that follows a tag: its header plus body length.
pub fn previous_tag_size(tag_size: u32) -> [u8; PREVIOUS_TAG_SIZE_LEN] {
    tag_size.to_be_bytes()
}

/// Returns the PreviousTagSize value for a tag with a body of `data_size` bytes.
pub fn tag_size(data_size: u32) -> u32 {
    data_size.saturating_add(TAG_HEADER_LEN as u32)
}

/// Appends one whole tag (header, body, PreviousTagSize) to `out`, copying the body.
/// Meant for fixtures and tools; egress should write the three parts without the copy.
pub fn write_tag(out: &mut BytesMut, tag_type: u8, timestamp_ms: u32, body: &[u8]) {
    let size = u32::try_from(body.len())
        .unwrap_or(u32::MAX)
        .min(MAX_TAG_DATA_SIZE);
    let body = &body[..size as usize];
    out.reserve(TAG_HEADER_LEN + body.len() + PREVIOUS_TAG_SIZE_LEN);
    out.put_slice(&tag_header(tag_type, size, timestamp_ms));
    out.put_slice(body);
    out.put_slice(&previous_tag_size(tag_size(size)));
}

/// Encodes one whole tag as a new buffer; see [`write_tag`].
pub fn encode_tag(tag_type: u8, timestamp_ms: u32, body: &[u8]) -> Bytes {
    let mut out = BytesMut::new();
    write_tag(&mut out, tag_type, timestamp_ms, body);
    out.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_header_table() {
        let cases = [
            (true, true, 0x05),
            (true, false, 0x04),
            (false, true, 0x01),
            (false, false, 0x00),
        ];
        for (audio, video, flags) in cases {
            let h = file_header(audio, video);
            assert_eq!(&h[..4], b"FLV\x01");
            assert_eq!(h[4], flags, "audio {audio} video {video}");
            assert_eq!(&h[5..], &[0, 0, 0, 9, 0, 0, 0, 0]);
        }
    }

    #[test]
    fn tag_header_table() {
        // (type, size, timestamp, bytes)
        let cases: &[(u8, u32, u32, [u8; 11])] = &[
            (9, 0x2f, 0, [9, 0, 0, 0x2f, 0, 0, 0, 0, 0, 0, 0]),
            (8, 0x01_0203, 40, [8, 1, 2, 3, 0, 0, 40, 0, 0, 0, 0]),
            // Timestamps past 2^24 ms (4.66 hours) use the extended byte.
            (
                18,
                1,
                0x1234_5678,
                [18, 0, 0, 1, 0x34, 0x56, 0x78, 0x12, 0, 0, 0],
            ),
            (
                9,
                MAX_TAG_DATA_SIZE,
                u32::MAX,
                [9, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, 0],
            ),
        ];
        for &(ty, size, ts, want) in cases {
            assert_eq!(
                tag_header(ty, size, ts),
                want,
                "type {ty} size {size} ts {ts}"
            );
        }
        assert_eq!(previous_tag_size(tag_size(0x2f)), [0, 0, 0, 0x3a]);
    }
}

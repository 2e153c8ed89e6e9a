//! A sans-IO FLV file/stream reader (FLV 10.1 E.2 header, E.3 body, E.4.1 tags).
//!
//! [`FlvReader`] takes bytes as they arrive and hands out whole tags; "need more bytes"
//! is `Ok(None)`, not an error. [`parse_file`] does the same over a complete file held in
//! memory, with tag bodies as zero-copy slices of it.

use bytes::{Buf, Bytes, BytesMut};
use thiserror::Error;

use crate::body::Media;
use crate::tag::{classify, TagFlags, TagType};
use crate::writer::{MAX_TAG_DATA_SIZE, PREVIOUS_TAG_SIZE_LEN, TAG_HEADER_LEN};

/// Length of the FLV header without PreviousTagSize0.
pub const HEADER_LEN: usize = 9;

/// The largest `DataOffset` accepted. Version 1 files use 9; a few writers pad the
/// header, and anything past this is not an FLV file.
pub const MAX_DATA_OFFSET: u32 = 1024;

/// An error that ends reading of one FLV file or stream.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ReadError {
    /// The input does not start with `FLV`.
    #[error("not an FLV stream: signature {found:02x?}")]
    BadSignature {
        /// The first three bytes.
        found: [u8; 3],
    },
    /// The header's `DataOffset` is below 9 or above [`MAX_DATA_OFFSET`].
    #[error("FLV header DataOffset {0} out of range 9..={MAX_DATA_OFFSET}")]
    BadDataOffset(u32),
    /// A tag's `DataSize` exceeds the reader's limit.
    #[error("tag at byte {offset}: DataSize {size} exceeds the limit of {max}")]
    TagTooLarge {
        /// Byte offset of the tag header in the stream.
        offset: u64,
        /// The declared body size.
        size: u32,
        /// The configured limit.
        max: u32,
    },
}

/// The FLV file header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlvHeader {
    /// The version byte (1).
    pub version: u8,
    /// `TypeFlagsAudio`.
    pub has_audio: bool,
    /// `TypeFlagsVideo`.
    pub has_video: bool,
    /// `DataOffset`: the header length.
    pub data_offset: u32,
}

/// One tag read from an FLV stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlvTag {
    /// `TagType` (low five bits): 8 audio, 9 video, 18 script.
    pub tag_type: u8,
    /// The `Filter` bit: the body is encrypted (FLV 10.1 E.4.1); gateways pass these on.
    pub filtered: bool,
    /// The full 32-bit timestamp in milliseconds (`Timestamp` | `TimestampExtended` << 24).
    pub timestamp: u32,
    /// `StreamID` (always 0 in valid files).
    pub stream_id: u32,
    /// The tag body, audio/video/script header included.
    pub body: Bytes,
}

impl FlvTag {
    /// Returns the tag type, if it is one of the three known ones.
    pub fn kind(&self) -> Option<TagType> {
        TagType::from_u8(self.tag_type)
    }

    /// Classifies the tag for the bus; see [`classify`].
    pub fn flags(&self) -> TagFlags {
        classify(self.tag_type, &self.body)
    }

    /// Parses the tag's audio/video header; see [`Media::of`].
    pub fn media(&self) -> Media {
        Media::of(self.tag_type, &self.body)
    }
}

fn parse_header(data: &[u8]) -> Result<Option<(FlvHeader, usize)>, ReadError> {
    let Some(h) = data.get(..HEADER_LEN) else {
        return Ok(None);
    };
    if &h[..3] != b"FLV" {
        return Err(ReadError::BadSignature {
            found: [h[0], h[1], h[2]],
        });
    }
    let data_offset = u32::from_be_bytes([h[5], h[6], h[7], h[8]]);
    if !(HEADER_LEN as u32..=MAX_DATA_OFFSET).contains(&data_offset) {
        return Err(ReadError::BadDataOffset(data_offset));
    }
    // The header is followed by PreviousTagSize0, which is consumed with it.
    let consumed = data_offset as usize + PREVIOUS_TAG_SIZE_LEN;
    if data.len() < consumed {
        return Ok(None);
    }
    let header = FlvHeader {
        version: h[3],
        has_audio: h[4] & 0x04 != 0,
        has_video: h[4] & 0x01 != 0,
        data_offset,
    };
    Ok(Some((header, consumed)))
}

/// A tag located in a buffer, before its body is split off.
struct TagFrame {
    tag_type: u8,
    filtered: bool,
    timestamp: u32,
    stream_id: u32,
    body_len: usize,
    previous_tag_size: u32,
}

impl TagFrame {
    /// Bytes the tag occupies: header, body and the PreviousTagSize after it.
    fn total_len(&self) -> usize {
        TAG_HEADER_LEN + self.body_len + PREVIOUS_TAG_SIZE_LEN
    }
}

fn parse_tag(data: &[u8], offset: u64, max: u32) -> Result<Option<TagFrame>, ReadError> {
    let Some(h) = data.get(..TAG_HEADER_LEN) else {
        return Ok(None);
    };
    let size = u32::from_be_bytes([0, h[1], h[2], h[3]]);
    if size > max {
        return Err(ReadError::TagTooLarge { offset, size, max });
    }
    let body_len = size as usize;
    let end = TAG_HEADER_LEN + body_len;
    let Some(prev) = data.get(end..end + PREVIOUS_TAG_SIZE_LEN) else {
        return Ok(None);
    };
    Ok(Some(TagFrame {
        tag_type: h[0] & 0x1f,
        filtered: h[0] & 0x20 != 0,
        timestamp: u32::from_be_bytes([h[7], h[4], h[5], h[6]]),
        stream_id: u32::from_be_bytes([0, h[8], h[9], h[10]]),
        body_len,
        previous_tag_size: u32::from_be_bytes([prev[0], prev[1], prev[2], prev[3]]),
    }))
}

impl TagFrame {
    fn into_tag(self, body: Bytes) -> FlvTag {
        FlvTag {
            tag_type: self.tag_type,
            filtered: self.filtered,
            timestamp: self.timestamp,
            stream_id: self.stream_id,
            body,
        }
    }

    /// Whether PreviousTagSize matches; many writers get it wrong, so it is only counted.
    fn previous_size_ok(&self) -> bool {
        self.previous_tag_size as usize == TAG_HEADER_LEN + self.body_len
    }
}

/// An incremental FLV reader: push bytes in, pull tags out.
#[derive(Debug)]
pub struct FlvReader {
    buf: BytesMut,
    header: Option<FlvHeader>,
    offset: u64,
    max_tag_size: u32,
    previous_size_mismatches: u64,
}

impl Default for FlvReader {
    fn default() -> Self {
        Self::new()
    }
}

impl FlvReader {
    /// Creates a reader that accepts tags up to [`MAX_TAG_DATA_SIZE`] (16 MiB).
    pub fn new() -> Self {
        Self::with_max_tag_size(MAX_TAG_DATA_SIZE)
    }

    /// Creates a reader that rejects tags with bodies larger than `max` bytes, which bounds
    /// its buffer to about `max` plus one push.
    pub fn with_max_tag_size(max: u32) -> Self {
        FlvReader {
            buf: BytesMut::new(),
            header: None,
            offset: 0,
            max_tag_size: max.min(MAX_TAG_DATA_SIZE),
            previous_size_mismatches: 0,
        }
    }

    /// Appends received bytes.
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// Returns the file header once it has been read.
    pub fn header(&self) -> Option<&FlvHeader> {
        self.header.as_ref()
    }

    /// Returns the bytes buffered but not yet returned as tags.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Returns the stream offset of the next unread byte.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Returns how many tags had a PreviousTagSize that did not match their size.
    pub fn previous_size_mismatches(&self) -> u64 {
        self.previous_size_mismatches
    }

    /// Returns the next complete tag, `Ok(None)` if more bytes are needed, or an error
    /// if the stream is not valid FLV (after which the reader should be dropped).
    pub fn next_tag(&mut self) -> Result<Option<FlvTag>, ReadError> {
        if self.header.is_none() {
            let Some((header, consumed)) = parse_header(&self.buf)? else {
                return Ok(None);
            };
            self.buf.advance(consumed);
            self.offset += consumed as u64;
            self.header = Some(header);
        }
        let Some(frame) = parse_tag(&self.buf, self.offset, self.max_tag_size)? else {
            return Ok(None);
        };
        if !frame.previous_size_ok() {
            self.previous_size_mismatches += 1;
        }
        let mut whole = self.buf.split_to(frame.total_len());
        self.offset += whole.len() as u64;
        whole.advance(TAG_HEADER_LEN);
        whole.truncate(frame.body_len);
        Ok(Some(frame.into_tag(whole.freeze())))
    }
}

/// A whole FLV file parsed from memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlvFile {
    /// The file header.
    pub header: FlvHeader,
    /// Every complete tag, in file order.
    pub tags: Vec<FlvTag>,
    /// Bytes at the end that do not form a complete tag (a cut-off recording).
    pub trailing_bytes: usize,
    /// Tags whose PreviousTagSize did not match.
    pub previous_size_mismatches: u64,
}

/// Parses a complete FLV file; tag bodies are zero-copy slices of `data`. An incomplete
/// last tag is reported in `trailing_bytes`, not as an error.
pub fn parse_file(data: &Bytes) -> Result<FlvFile, ReadError> {
    let Some((header, mut pos)) = parse_header(data)? else {
        return Err(ReadError::BadSignature {
            found: first_three(data),
        });
    };
    let mut file = FlvFile {
        header,
        tags: Vec::new(),
        trailing_bytes: 0,
        previous_size_mismatches: 0,
    };
    while let Some(frame) = parse_tag(&data[pos..], pos as u64, MAX_TAG_DATA_SIZE)? {
        if !frame.previous_size_ok() {
            file.previous_size_mismatches += 1;
        }
        let body_start = pos + TAG_HEADER_LEN;
        let next = pos + frame.total_len();
        let body = data.slice(body_start..body_start + frame.body_len);
        file.tags.push(frame.into_tag(body));
        pos = next;
    }
    file.trailing_bytes = data.len() - pos;
    Ok(file)
}

fn first_three(data: &[u8]) -> [u8; 3] {
    let mut out = [0; 3];
    for (o, b) in out.iter_mut().zip(data) {
        *o = *b;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::writer::{encode_tag, file_header};

    /// (tag type, timestamp, body) of one tag.
    type TagSummary = (u8, u32, Vec<u8>);

    fn sample_file() -> (Vec<u8>, Vec<TagSummary>) {
        let tags: Vec<TagSummary> = vec![
            (18, 0, b"\x02\x00\x0aonMetaData\x05".to_vec()),
            (9, 0, vec![0x17, 0, 0, 0, 0, 1, 0x64, 0, 0x1f]),
            (8, 0, vec![0xaf, 0, 0x12, 0x10]),
            (9, 40, vec![0x17, 1, 0, 0, 0, 0, 0, 0, 1, 0x65]),
            (8, 23, vec![0xaf, 1, 0x21]),
            (9, 0x0100_0000, vec![0x27, 1, 0, 0, 0, 0, 0, 0, 1, 0x41]),
            (9, 80, vec![]),
        ];
        let mut file = file_header(true, true).to_vec();
        for (ty, ts, body) in &tags {
            file.extend_from_slice(&encode_tag(*ty, *ts, body));
        }
        (file, tags)
    }

    fn summary(tags: &[FlvTag]) -> Vec<TagSummary> {
        tags.iter()
            .map(|t| (t.tag_type, t.timestamp, t.body.to_vec()))
            .collect()
    }

    #[test]
    fn writer_reader_round_trip_whole_file() {
        let (file, tags) = sample_file();
        let parsed = parse_file(&Bytes::from(file)).unwrap();
        assert_eq!(
            parsed.header,
            FlvHeader {
                version: 1,
                has_audio: true,
                has_video: true,
                data_offset: 9
            }
        );
        assert_eq!(summary(&parsed.tags), tags);
        assert_eq!(
            (parsed.trailing_bytes, parsed.previous_size_mismatches),
            (0, 0)
        );
    }

    #[test]
    fn incremental_reader_at_every_split_size() {
        let (file, tags) = sample_file();
        for chunk in [1, 2, 3, 7, 13, 64, file.len()] {
            let mut reader = FlvReader::new();
            let mut got = Vec::new();
            for piece in file.chunks(chunk) {
                reader.push(piece);
                while let Some(tag) = reader.next_tag().unwrap() {
                    got.push(tag);
                }
            }
            assert_eq!(summary(&got), tags, "chunk size {chunk}");
            assert_eq!(reader.buffered(), 0);
            assert_eq!(reader.offset(), file.len() as u64);
        }
    }

    #[test]
    fn truncated_file_reports_trailing_bytes() {
        let (file, tags) = sample_file();
        let cut = Bytes::from(file[..file.len() - 2].to_vec());
        let parsed = parse_file(&cut).unwrap();
        assert_eq!(parsed.tags.len(), tags.len() - 1);
        assert_eq!(
            parsed.trailing_bytes,
            TAG_HEADER_LEN + PREVIOUS_TAG_SIZE_LEN - 2
        );
    }

    #[test]
    fn error_table() {
        let big_tag = {
            let mut f = file_header(false, true).to_vec();
            f.extend_from_slice(&[9, 0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
            f
        };
        let cases: &[(&[u8], u32, ReadError)] = &[
            (
                b"FLX\x01\x05\x00\x00\x00\x09",
                MAX_TAG_DATA_SIZE,
                ReadError::BadSignature { found: *b"FLX" },
            ),
            (
                b"FLV\x01\x05\x00\x00\x00\x08",
                MAX_TAG_DATA_SIZE,
                ReadError::BadDataOffset(8),
            ),
            (
                b"FLV\x01\x05\x00\x01\x00\x00",
                MAX_TAG_DATA_SIZE,
                ReadError::BadDataOffset(65536),
            ),
            (
                &big_tag,
                65535,
                ReadError::TagTooLarge {
                    offset: 13,
                    size: 65536,
                    max: 65535,
                },
            ),
        ];
        for (input, max, want) in cases {
            let mut reader = FlvReader::with_max_tag_size(*max);
            reader.push(input);
            assert_eq!(reader.next_tag(), Err(want.clone()), "{input:02x?}");
        }
        assert!(parse_file(&Bytes::from_static(b"FL")).is_err());
    }

    #[test]
    fn need_more_bytes_is_not_an_error() {
        let mut reader = FlvReader::new();
        assert_eq!(reader.next_tag(), Ok(None));
        reader.push(b"FLV\x01\x01\x00\x00\x00\x09\x00\x00");
        assert_eq!(reader.next_tag(), Ok(None));
        reader.push(&[0, 0]);
        assert_eq!(reader.next_tag(), Ok(None));
        assert!(reader.header().is_some_and(|h| h.has_video && !h.has_audio));
    }

    #[test]
    fn previous_tag_size_mismatch_is_counted() {
        let mut file = file_header(false, true).to_vec();
        file.extend_from_slice(&encode_tag(9, 0, &[0x17, 2, 0, 0, 0]));
        let n = file.len();
        file[n - 1] ^= 0xff;
        let parsed = parse_file(&Bytes::from(file)).unwrap();
        assert_eq!((parsed.tags.len(), parsed.previous_size_mismatches), (1, 1));
    }
}

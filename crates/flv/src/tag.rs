//! Tag types, the per-tag errors, and [`classify`], the one call ingest makes per tag.

use thiserror::Error;

use crate::body::Media;

/// Tag type of an audio tag (FLV 10.1 E.4.1).
pub const TAG_TYPE_AUDIO: u8 = 8;
/// Tag type of a video tag.
pub const TAG_TYPE_VIDEO: u8 = 9;
/// Tag type of a script data (AMF0) tag.
pub const TAG_TYPE_SCRIPT: u8 = 18;

/// The three FLV tag types. The same numbers are RTMP message type ids 8, 9 and 18.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum TagType {
    /// Audio data.
    Audio = TAG_TYPE_AUDIO,
    /// Video data.
    Video = TAG_TYPE_VIDEO,
    /// Script data (AMF0), e.g. `onMetaData`.
    Script = TAG_TYPE_SCRIPT,
}

impl TagType {
    /// Maps the low five bits of a tag's first byte (or an RTMP message type) to a tag type.
    pub fn from_u8(value: u8) -> Option<Self> {
        match value & 0x1f {
            TAG_TYPE_AUDIO => Some(TagType::Audio),
            TAG_TYPE_VIDEO => Some(TagType::Video),
            TAG_TYPE_SCRIPT => Some(TagType::Script),
            _ => None,
        }
    }
}

impl From<TagType> for u8 {
    fn from(t: TagType) -> u8 {
        t as u8
    }
}

/// An error in an audio or video tag header.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TagHeaderError {
    /// The tag body ended inside its header.
    #[error("{what} needs {need} bytes but the tag body has {have}")]
    Truncated {
        /// What was being read (e.g. "AVC packet header", "E-RTMP FourCC").
        what: &'static str,
        /// Bytes needed from the start of the body.
        need: usize,
        /// Bytes in the body.
        have: usize,
    },
}

pub(crate) fn need(body: &[u8], need: usize, what: &'static str) -> Result<(), TagHeaderError> {
    if body.len() < need {
        return Err(TagHeaderError::Truncated {
            what,
            need,
            have: body.len(),
        });
    }
    Ok(())
}

/// What ingest records on a bus tag: whether it starts a GOP, whether it is a decoder
/// configuration.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TagFlags {
    /// A video key frame carrying coded pictures (not a sequence header), where a
    /// viewer can start decoding.
    pub keyframe: bool,
    /// A decoder configuration: AVC/HEVC/AV1/VP9 sequence start or AAC AudioSpecificConfig.
    pub sequence_header: bool,
}

/// Classifies one tag body for the bus. Malformed or unknown tags classify as neither
/// key frame nor sequence header; ingest forwards them unchanged.
///
/// `tag_type` is the FLV tag type or RTMP message type (8, 9, 18). This is
/// [`Media::of`] followed by [`Media::flags`]; ingest keeps the [`Media`] too.
pub fn classify(tag_type: u8, body: &[u8]) -> TagFlags {
    Media::of(tag_type, body).flags()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classify_table() {
        // (tag type, body, keyframe, sequence header)
        let cases: &[(u8, &[u8], bool, bool)] = &[
            (9, &[0x17, 0, 0, 0, 0, 1, 0x64], false, true), // AVC sequence header
            (9, &[0x17, 1, 0, 0, 0x50, 0, 0, 0, 1, 0x65], true, false), // AVC key frame
            (9, &[0x27, 1, 0, 0, 0x50, 0, 0, 0, 1, 0x41], false, false), // AVC inter frame
            (9, &[0x17, 2, 0, 0, 0], false, false),         // AVC end of sequence
            (9, &[0x1c, 0, 0, 0, 0, 1], false, true),       // legacy HEVC (codec id 12) header
            (9, &[0x1c, 1, 0, 0, 0, 0, 0, 0, 1, 0x26], true, false),
            (9, b"\x90hvc1\x01", false, true), // E-RTMP SequenceStart
            (9, b"\x93hvc1\x00\x00\x00\x01\x26", true, false), // E-RTMP CodedFramesX key
            (9, b"\xa3hvc1\x00\x00\x00\x01\x02", false, false), // E-RTMP inter
            (9, b"\x92av01", false, false),    // E-RTMP SequenceEnd
            (9, &[0x17], false, false),        // truncated AVC header
            (9, &[], false, false),
            (8, &[0xaf, 0, 0x12, 0x10], false, true), // AAC AudioSpecificConfig
            (8, &[0xaf, 1, 0x21], false, false),      // AAC raw frame
            (8, &[0x2f, 0xff, 0xfb], false, false),   // MP3
            (8, b"\x90mp4a\x12\x10", false, true),    // E-RTMP v2 audio SequenceStart
            (18, b"\x02\x00\x0aonMetaData", false, false),
            (7, &[0x17, 0], false, false),
        ];
        for &(ty, body, keyframe, sequence_header) in cases {
            assert_eq!(
                classify(ty, body),
                TagFlags {
                    keyframe,
                    sequence_header
                },
                "type {ty} body {body:02x?}"
            );
        }
    }

    #[test]
    fn tag_type_round_trip() {
        for t in [TagType::Audio, TagType::Video, TagType::Script] {
            assert_eq!(TagType::from_u8(u8::from(t)), Some(t));
        }
        // The FLV filter bit (0x20) and reserved bits do not change the type.
        assert_eq!(TagType::from_u8(0x29), Some(TagType::Video));
        assert_eq!(TagType::from_u8(0), None);
    }
}

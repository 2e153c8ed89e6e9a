//! [`Media`]: what an audio or video tag body's header says, parsed once.
//!
//! Ingest calls [`Media::of`] once per tag and keeps the result on the bus tag, so no egress
//! parses a tag header again: each one matches on the codec and packet kind and takes its
//! payload with [`Media::payload`].

use crate::audio::{AudioCodec, AudioPacketKind, AudioTagHeader};
use crate::tag::{TagFlags, TagType};
use crate::video::{FrameType, VideoCodec, VideoPacketKind, VideoTagHeader};

/// The parsed header of one tag body. `Copy` and small, so it travels with every tag.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Media {
    /// Script data, an unknown tag type, or an audio/video header that does not parse
    /// (truncated). Egress treats it as carrying no media.
    #[default]
    Opaque,
    /// A video tag.
    Video(VideoMedia),
    /// An audio tag.
    Audio(AudioMedia),
}

/// The parts of a [`VideoTagHeader`] that egress needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VideoMedia {
    /// The codec.
    pub codec: VideoCodec,
    /// What the tag carries.
    pub packet: VideoPacketKind,
    /// The frame type.
    pub frame_type: FrameType,
    /// Composition time offset in milliseconds (PTS = DTS + this); 0 when absent.
    pub composition_time: i32,
    /// Offset in the body where the codec payload begins (at most the body's length).
    pub header_len: u32,
}

impl VideoMedia {
    /// A key frame carrying pictures (not a sequence header): a viewer can start here.
    pub fn is_keyframe(&self) -> bool {
        self.frame_type == FrameType::Key && self.packet == VideoPacketKind::Frame
    }
}

/// The parts of an [`AudioTagHeader`] that egress needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AudioMedia {
    /// The codec.
    pub codec: AudioCodec,
    /// What the tag carries.
    pub packet: AudioPacketKind,
    /// Offset in the body where the codec payload begins (at most the body's length).
    pub header_len: u32,
}

impl Media {
    /// Parses the header of one tag body. `tag_type` is the FLV tag type or RTMP message
    /// type (8, 9, 18); script data, other types and headers that do not parse are
    /// [`Media::Opaque`]. Never panics, whatever the body.
    pub fn of(tag_type: u8, body: &[u8]) -> Media {
        match TagType::from_u8(tag_type) {
            Some(TagType::Video) => VideoTagHeader::parse(body).map_or(Media::Opaque, |h| {
                Media::Video(VideoMedia {
                    codec: h.codec,
                    packet: h.packet,
                    frame_type: h.frame_type,
                    composition_time: h.composition_time,
                    header_len: offset(h.header_len),
                })
            }),
            Some(TagType::Audio) => AudioTagHeader::parse(body).map_or(Media::Opaque, |h| {
                Media::Audio(AudioMedia {
                    codec: h.codec,
                    packet: h.packet,
                    header_len: offset(h.header_len),
                })
            }),
            Some(TagType::Script) | None => Media::Opaque,
        }
    }

    /// The codec payload of `body` (the body this was parsed from): the bytes after the
    /// header; the whole body for [`Media::Opaque`]; empty if the header is longer than
    /// `body` (another body was passed). Never panics.
    pub fn payload<'a>(&self, body: &'a [u8]) -> &'a [u8] {
        body.get(self.header_len()..).unwrap_or_default()
    }

    /// Where the codec payload starts in the body: 0 for [`Media::Opaque`].
    pub fn header_len(&self) -> usize {
        let len = match self {
            Media::Opaque => 0,
            Media::Video(v) => v.header_len,
            Media::Audio(a) => a.header_len,
        };
        usize::try_from(len).unwrap_or(usize::MAX)
    }

    /// Composition time offset in milliseconds: a video tag's, otherwise 0.
    pub fn composition_time(&self) -> i32 {
        match self {
            Media::Video(v) => v.composition_time,
            _ => 0,
        }
    }

    /// The bus flags: key frame (video pictures that start a GOP) and sequence header
    /// (a decoder configuration). [`Media::Opaque`] has neither.
    pub fn flags(&self) -> TagFlags {
        match self {
            Media::Video(v) => TagFlags {
                keyframe: v.is_keyframe(),
                sequence_header: v.packet == VideoPacketKind::SequenceHeader,
            },
            Media::Audio(a) => TagFlags {
                keyframe: false,
                sequence_header: a.packet == AudioPacketKind::SequenceHeader,
            },
            Media::Opaque => TagFlags::default(),
        }
    }
}

/// A header length as stored: the parsers never report one past the body, and bodies are
/// bounded far below 4 GiB, but a longer one saturates (and `payload` is then empty).
fn offset(header_len: usize) -> u32 {
    u32::try_from(header_len).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::video::FourCc;
    use proptest::prelude::*;

    fn video(
        codec: VideoCodec,
        packet: VideoPacketKind,
        frame_type: FrameType,
        composition_time: i32,
        header_len: u32,
    ) -> Media {
        Media::Video(VideoMedia {
            codec,
            packet,
            frame_type,
            composition_time,
            header_len,
        })
    }

    fn audio(codec: AudioCodec, packet: AudioPacketKind, header_len: u32) -> Media {
        Media::Audio(AudioMedia {
            codec,
            packet,
            header_len,
        })
    }

    /// Parses `body` as a tag of `tag_type` and compares the media and the payload.
    fn check(tag_type: u8, body: &[u8], want: Media, payload: &[u8]) {
        let got = Media::of(tag_type, body);
        assert_eq!(got, want, "type {tag_type} body {body:02x?}");
        assert_eq!(got.payload(body), payload, "payload of {body:02x?}");
    }

    #[test]
    fn video_table() {
        use FrameType::*;
        use VideoCodec::*;
        use VideoPacketKind::*;
        let cases: &[(&[u8], Media, &[u8])] = &[
            // Legacy AVC: sequence header, key frame with CTS 80, inter frame with CTS -40.
            (
                &[0x17, 0, 0, 0, 0, 1, 0x64],
                video(Avc, SequenceHeader, Key, 0, 5),
                &[1, 0x64],
            ),
            (
                &[0x17, 1, 0, 0, 0x50, 0, 0, 0, 1, 0x65],
                video(Avc, Frame, Key, 80, 5),
                &[0, 0, 0, 1, 0x65],
            ),
            (
                &[0x27, 1, 0xff, 0xff, 0xd8, 9],
                video(Avc, Frame, Inter, -40, 5),
                &[9],
            ),
            (
                &[0x17, 2, 0, 0, 0],
                video(Avc, EndOfSequence, Key, 0, 5),
                &[],
            ),
            // Legacy HEVC, codec id 12, with the AVC layout.
            (
                &[0x1c, 0, 0, 0, 0, 1],
                video(Hevc, SequenceHeader, Key, 0, 5),
                &[1],
            ),
            (
                &[0x2c, 1, 0, 0, 0x28, 7],
                video(Hevc, Frame, Inter, 40, 5),
                &[7],
            ),
            // Sorenson H.263: no packet header.
            (
                &[0x22, 0, 0],
                video(OtherId(2), Frame, Inter, 0, 1),
                &[0, 0],
            ),
            // E-RTMP hvc1: SequenceStart, CodedFrames with CTS, CodedFramesX without.
            (
                b"\x90hvc1\x01",
                video(Hevc, SequenceHeader, Key, 0, 5),
                &[1],
            ),
            (
                b"\x91hvc1\x00\x00\x50\x26",
                video(Hevc, Frame, Key, 80, 8),
                &[0x26],
            ),
            (
                b"\x93hvc1\x00\x00\x00\x01\x26",
                video(Hevc, Frame, Key, 0, 5),
                &[0, 0, 0, 1, 0x26],
            ),
            (b"\xa3hvc1", video(Hevc, Frame, Inter, 0, 5), &[]),
            // E-RTMP v2 avc1: CodedFrames carries CTS like hvc1; CodedFramesX does not.
            (
                b"\x90avc1\x01\x64",
                video(Avc, SequenceHeader, Key, 0, 5),
                &[1, 0x64],
            ),
            (
                b"\x91avc1\x00\x00\x28\x09",
                video(Avc, Frame, Key, 40, 8),
                &[9],
            ),
            (b"\xa3avc1\x09", video(Avc, Frame, Inter, 0, 5), &[9]),
            // AV1 and VP9 carry no CTS; an unknown FourCC is kept.
            (b"\x91av01\x12", video(Av1, Frame, Key, 0, 5), &[0x12]),
            (b"\xa1vp09\x00", video(Vp9, Frame, Inter, 0, 5), &[0]),
            (
                b"\x91vvc1",
                video(OtherFourCc(FourCc(*b"vvc1")), Frame, Key, 0, 5),
                &[],
            ),
            // Truncated headers are opaque.
            (&[], Media::Opaque, &[]),
            (&[0x17], Media::Opaque, &[0x17]),
            (&[0x17, 1, 0, 0], Media::Opaque, &[0x17, 1, 0, 0]),
            (b"\x91hvc", Media::Opaque, b"\x91hvc"),
            (b"\x91hvc1\x00\x00", Media::Opaque, b"\x91hvc1\x00\x00"),
            (b"\x97\x05\x00", Media::Opaque, b"\x97\x05\x00"),
        ];
        for (body, want, payload) in cases {
            check(9, body, *want, payload);
        }
    }

    #[test]
    fn audio_and_other_table() {
        use AudioCodec::*;
        use AudioPacketKind::*;
        let cases: &[(u8, &[u8], Media, &[u8])] = &[
            (
                8,
                &[0xaf, 0, 0x12, 0x10],
                audio(Aac, SequenceHeader, 2),
                &[0x12, 0x10],
            ),
            (8, &[0xaf, 1, 0x21], audio(Aac, Frame, 2), &[0x21]),
            (8, &[0x2f, 0xff, 0xfb], audio(Mp3, Frame, 1), &[0xff, 0xfb]),
            (
                8,
                b"\x90mp4a\x12\x10",
                audio(Aac, SequenceHeader, 5),
                &[0x12, 0x10],
            ),
            (8, b"\x91Opus\x4f", audio(Opus, Frame, 5), &[0x4f]),
            (8, &[0xaf], Media::Opaque, &[0xaf]),
            (8, b"\x90Opu", Media::Opaque, b"\x90Opu"),
            (8, &[], Media::Opaque, &[]),
            // Script data and unknown types are opaque: the payload is the whole body.
            (
                18,
                b"\x02\x00\x0aonMetaData",
                Media::Opaque,
                b"\x02\x00\x0aonMetaData",
            ),
            (7, &[0x17, 0], Media::Opaque, &[0x17, 0]),
        ];
        for (ty, body, want, payload) in cases {
            check(*ty, body, *want, payload);
        }
    }

    #[test]
    fn flags_and_accessors() {
        let key = Media::of(9, &[0x17, 1, 0, 0, 0x50, 0, 0, 0, 1, 0x65]);
        assert_eq!(
            key.flags(),
            TagFlags {
                keyframe: true,
                sequence_header: false
            }
        );
        assert_eq!((key.composition_time(), key.header_len()), (80, 5));
        let asc = Media::of(8, &[0xaf, 0, 0x12, 0x10]);
        assert_eq!(
            asc.flags(),
            TagFlags {
                keyframe: false,
                sequence_header: true
            }
        );
        assert_eq!(asc.composition_time(), 0);
        assert_eq!(Media::Opaque.flags(), TagFlags::default());
        // A header applied to a shorter body than its own gives an empty payload.
        assert_eq!(key.payload(&[0x17, 1]), &[] as &[u8]);
    }

    proptest! {
        #[test]
        fn of_never_panics_and_payload_is_inside_the_body(
            ty in prop_oneof![Just(8u8), Just(9u8), Just(18u8), any::<u8>()],
            body in proptest::collection::vec(any::<u8>(), 0..64),
        ) {
            let media = Media::of(ty, &body);
            prop_assert!(media.header_len() <= body.len());
            let payload = media.payload(&body);
            prop_assert_eq!(payload, &body[media.header_len()..]);
            // The header parsers agree on where the payload starts.
            let parsed = match TagType::from_u8(ty) {
                Some(TagType::Video) => VideoTagHeader::parse(&body).ok().map(|h| h.header_len),
                Some(TagType::Audio) => AudioTagHeader::parse(&body).ok().map(|h| h.header_len),
                _ => None,
            };
            prop_assert_eq!(parsed.unwrap_or(0), media.header_len());
            prop_assert_eq!(media.flags(), crate::classify(ty, &body));
        }
    }
}

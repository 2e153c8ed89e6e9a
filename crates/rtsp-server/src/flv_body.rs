//! Maps what ingest found in a bus tag's FLV header ([`Tag::media`], parsed once, when the tag was
//! built) to the packetizer's input ([`rtsp::packetize::Input`]): the codec, whether the tag is a
//! decoder configuration, the composition time and the payload as a zero-copy slice. Nothing here
//! parses.

use bus::{Tag, TagKind};
use flv::{AudioCodec, AudioPacketKind, Media, VideoPacketKind};
use rtsp::packetize::{Audio, Input, Video, VideoCodec};

/// A tag as the packetizer takes it; `None` for script data and for tags [`video`] or [`audio`]
/// give nothing for.
pub fn input(tag: &Tag) -> Option<Input> {
    match tag.kind {
        TagKind::Video => video(tag).map(Input::Video),
        TagKind::Audio => audio(tag).map(Input::Audio),
        TagKind::Script => None,
    }
}

/// A video tag's body; `None` for other codecs, end-of-sequence, commands or a header that did
/// not parse.
pub fn video(tag: &Tag) -> Option<Video> {
    let Media::Video(h) = tag.media else {
        return None;
    };
    let codec = match h.codec {
        flv::VideoCodec::Avc => VideoCodec::H264,
        flv::VideoCodec::Hevc => VideoCodec::H265,
        _ => return None,
    };
    let sequence_header = match h.packet {
        VideoPacketKind::SequenceHeader => true,
        VideoPacketKind::Frame => false,
        _ => return None,
    };
    Some(Video {
        codec,
        sequence_header,
        keyframe: tag.keyframe,
        composition_time: h.composition_time,
        payload: tag.payload(),
    })
}

/// An audio tag's body; `None` for other formats or a header that did not parse.
pub fn audio(tag: &Tag) -> Option<Audio> {
    let Media::Audio(h) = tag.media else {
        return None;
    };
    let payload = tag.payload();
    match (h.codec, h.packet) {
        (AudioCodec::Aac, AudioPacketKind::SequenceHeader) => Some(Audio::AacConfig(payload)),
        (AudioCodec::Aac, AudioPacketKind::Frame) => Some(Audio::AacFrame(payload)),
        (AudioCodec::Mp3, AudioPacketKind::Frame) => Some(Audio::Mp3(payload)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    /// (codec, sequence header, keyframe, composition time, payload).
    type Expected = (VideoCodec, bool, bool, i32, &'static [u8]);

    #[test]
    fn video_table() {
        let cases: &[(&[u8], Option<Expected>)] = &[
            (
                &[0x17, 0, 0, 0, 0, 1, 2],
                Some((VideoCodec::H264, true, false, 0, &[1, 2])),
            ),
            (
                &[0x27, 1, 0xff, 0xff, 0xd8, 9],
                Some((VideoCodec::H264, false, false, -40, &[9])),
            ),
            (
                &[0x1c, 1, 0, 0, 40, 9],
                Some((VideoCodec::H265, false, true, 40, &[9])),
            ),
            (
                &[0x91, b'h', b'v', b'c', b'1', 0, 0, 1, 7],
                Some((VideoCodec::H265, false, true, 1, &[7])),
            ),
            (&[0x17, 2, 0, 0, 0], None),
            (&[0x12, 0, 0, 0, 0], None),
            (&[], None),
        ];
        for (input, want) in cases {
            let tag = Tag::classify(TagKind::Video, 0, Bytes::copy_from_slice(input));
            let got = video(&tag).map(|v| {
                (
                    v.codec,
                    v.sequence_header,
                    v.keyframe,
                    v.composition_time,
                    v.payload.to_vec(),
                )
            });
            assert_eq!(
                got,
                want.map(|(c, s, k, t, p)| (c, s, k, t, p.to_vec())),
                "{input:02x?}"
            );
        }
    }

    #[test]
    fn audio_table() {
        let b = |s: &[u8]| Bytes::copy_from_slice(s);
        let cases: &[(&[u8], Option<Audio>)] = &[
            (
                &[0xaf, 0, 0x12, 0x10],
                Some(Audio::AacConfig(b(&[0x12, 0x10]))),
            ),
            (&[0xaf, 1, 5], Some(Audio::AacFrame(b(&[5])))),
            (&[0x2f, 0xff, 0xfb], Some(Audio::Mp3(b(&[0xff, 0xfb])))),
            (&[0x7f, 0], None),
        ];
        for (input, want) in cases {
            let tag = Tag::classify(TagKind::Audio, 0, b(input));
            assert_eq!(audio(&tag), *want, "{input:02x?}");
        }
    }

    #[test]
    fn input_by_tag_kind() {
        let b = |s: &[u8]| Bytes::copy_from_slice(s);
        let video = Tag::classify(TagKind::Video, 0, b(&[0x27, 1, 0, 0, 0, 9]));
        assert!(matches!(input(&video), Some(Input::Video(v)) if !v.keyframe));
        let audio = Tag::classify(TagKind::Audio, 0, b(&[0xaf, 1, 5]));
        assert_eq!(input(&audio), Some(Input::Audio(Audio::AacFrame(b(&[5])))));
        let script = Tag::classify(TagKind::Script, 0, b(&[2, 0, 1, b'x']));
        assert_eq!(input(&script), None);
    }
}

//! Maps what ingest found in a bus tag's FLV header ([`Tag::media`], parsed once, when the tag was
//! built) to what the packetizers need: the codec, whether the tag is a decoder configuration, the
//! composition time and the payload as a zero-copy slice. Nothing here parses.

use bus::Tag;
use bytes::Bytes;
use flv::{AudioCodec, AudioPacketKind, Media, VideoPacketKind};

/// Video codecs this shell packetizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VideoCodec {
    /// H.264.
    H264,
    /// H.265.
    H265,
}

/// A video tag body, as its media says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VideoBody {
    /// The codec.
    pub codec: VideoCodec,
    /// True for a decoder configuration record.
    pub sequence_header: bool,
    /// Composition time offset in milliseconds.
    pub composition_time: i32,
    /// The configuration record or the length-prefixed NAL units.
    pub payload: Bytes,
}

/// A video tag's body; `None` for other codecs, end-of-sequence, commands or a header that did
/// not parse.
pub fn video(tag: &Tag) -> Option<VideoBody> {
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
    Some(VideoBody {
        codec,
        sequence_header,
        composition_time: h.composition_time,
        payload: tag.payload(),
    })
}

/// An audio tag body, as its media says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AudioBody {
    /// AAC AudioSpecificConfig.
    AacConfig(Bytes),
    /// One raw AAC access unit.
    AacFrame(Bytes),
    /// MPEG audio frames.
    Mp3(Bytes),
}

/// An audio tag's body; `None` for other formats or a header that did not parse.
pub fn audio(tag: &Tag) -> Option<AudioBody> {
    let Media::Audio(h) = tag.media else {
        return None;
    };
    let payload = tag.payload();
    match (h.codec, h.packet) {
        (AudioCodec::Aac, AudioPacketKind::SequenceHeader) => Some(AudioBody::AacConfig(payload)),
        (AudioCodec::Aac, AudioPacketKind::Frame) => Some(AudioBody::AacFrame(payload)),
        (AudioCodec::Mp3, AudioPacketKind::Frame) => Some(AudioBody::Mp3(payload)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bus::TagKind;

    /// (codec, sequence header, composition time, payload).
    type Expected = (VideoCodec, bool, i32, &'static [u8]);

    #[test]
    fn video_table() {
        let cases: &[(&[u8], Option<Expected>)] = &[
            (
                &[0x17, 0, 0, 0, 0, 1, 2],
                Some((VideoCodec::H264, true, 0, &[1, 2])),
            ),
            (
                &[0x27, 1, 0xff, 0xff, 0xd8, 9],
                Some((VideoCodec::H264, false, -40, &[9])),
            ),
            (
                &[0x1c, 1, 0, 0, 40, 9],
                Some((VideoCodec::H265, false, 40, &[9])),
            ),
            (
                &[0x91, b'h', b'v', b'c', b'1', 0, 0, 1, 7],
                Some((VideoCodec::H265, false, 1, &[7])),
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
                    v.composition_time,
                    v.payload.to_vec(),
                )
            });
            assert_eq!(
                got,
                want.map(|(c, s, t, p)| (c, s, t, p.to_vec())),
                "{input:02x?}"
            );
        }
    }

    #[test]
    fn audio_table() {
        let b = |s: &[u8]| Bytes::copy_from_slice(s);
        let cases: &[(&[u8], Option<AudioBody>)] = &[
            (
                &[0xaf, 0, 0x12, 0x10],
                Some(AudioBody::AacConfig(b(&[0x12, 0x10]))),
            ),
            (&[0xaf, 1, 5], Some(AudioBody::AacFrame(b(&[5])))),
            (&[0x2f, 0xff, 0xfb], Some(AudioBody::Mp3(b(&[0xff, 0xfb])))),
            (&[0x7f, 0], None),
        ];
        for (input, want) in cases {
            let tag = Tag::classify(TagKind::Audio, 0, b(input));
            assert_eq!(audio(&tag), *want, "{input:02x?}");
        }
    }
}

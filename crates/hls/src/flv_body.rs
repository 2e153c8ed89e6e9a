//! Maps what ingest found in an FLV tag's header ([`flv::Media`], parsed once, when the tag
//! was built) to the payloads the muxer carries. Nothing here parses: the payload is the slice of
//! the body after the header.

use flv::{AudioCodec, AudioPacketKind, VideoCodec as FlvVideo, VideoPacketKind};
use ts_mux::VideoCodec;

use crate::HlsError;

/// What one tag body carries, as far as the muxer cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Media<'a> {
    /// A decoder configuration record (avcC or hvcC).
    VideoConfig(VideoCodec, &'a [u8]),
    /// Length-prefixed NAL units of one access unit.
    VideoFrame(VideoCodec, &'a [u8]),
    /// An AAC AudioSpecificConfig.
    AacConfig(&'a [u8]),
    /// One raw AAC frame.
    AacFrame(&'a [u8]),
    /// One MPEG audio (MP3) frame.
    Mp3Frame(&'a [u8]),
    /// Something the muxer does not carry (end of sequence, command frames, other codecs).
    Ignored,
}

/// Maps an audio or video tag's media and body; an opaque header (one that did not parse at
/// ingest) is an error, so the tag is counted as skipped.
pub(crate) fn media(media: flv::Media, body: &[u8]) -> Result<Media<'_>, HlsError> {
    let payload = media.payload(body);
    Ok(match media {
        flv::Media::Opaque => return Err(HlsError::TagHeader),
        flv::Media::Video(v) => {
            let codec = match v.codec {
                FlvVideo::Avc => VideoCodec::H264,
                FlvVideo::Hevc => VideoCodec::H265,
                _ => return Ok(Media::Ignored),
            };
            match v.packet {
                VideoPacketKind::SequenceHeader => Media::VideoConfig(codec, payload),
                VideoPacketKind::Frame => Media::VideoFrame(codec, payload),
                _ => Media::Ignored,
            }
        }
        flv::Media::Audio(a) => match (a.codec, a.packet) {
            (AudioCodec::Aac, AudioPacketKind::SequenceHeader) => Media::AacConfig(payload),
            (AudioCodec::Aac, AudioPacketKind::Frame) => Media::AacFrame(payload),
            (AudioCodec::Mp3, AudioPacketKind::Frame) => Media::Mp3Frame(payload),
            _ => Media::Ignored,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn video_bodies() {
        let table: &[(&[u8], Option<Media<'_>>)] = &[
            (
                &[0x17, 0, 0, 0, 0, 1, 2],
                Some(Media::VideoConfig(VideoCodec::H264, &[1, 2])),
            ),
            (
                &[0x27, 1, 0, 0, 0x50, 9],
                Some(Media::VideoFrame(VideoCodec::H264, &[9])),
            ),
            (
                &[0x1C, 1, 0, 0, 0, 9],
                Some(Media::VideoFrame(VideoCodec::H265, &[9])),
            ),
            (&[0x17, 2, 0, 0, 0], Some(Media::Ignored)),
            (&[0x12, 0, 0], Some(Media::Ignored)),
            (
                &[0x90, b'h', b'v', b'c', b'1', 7],
                Some(Media::VideoConfig(VideoCodec::H265, &[7])),
            ),
            (
                &[0x91, b'h', b'v', b'c', b'1', 0, 0, 0, 7],
                Some(Media::VideoFrame(VideoCodec::H265, &[7])),
            ),
            (
                &[0x93, b'a', b'v', b'c', b'1', 7],
                Some(Media::VideoFrame(VideoCodec::H264, &[7])),
            ),
            (&[0x91, b'a', b'v', b'0', b'1', 7], Some(Media::Ignored)),
            (&[0x17, 1, 0], None),
            (&[], None),
        ];
        for (body, want) in table {
            assert_eq!(
                media(flv::Media::of(9, body), body).ok(),
                *want,
                "body {body:02x?}"
            );
        }
    }

    #[test]
    fn audio_bodies() {
        let table: &[(&[u8], Option<Media<'_>>)] = &[
            (
                &[0xAF, 0, 0x12, 0x10],
                Some(Media::AacConfig(&[0x12, 0x10])),
            ),
            (&[0xAF, 1, 0x21], Some(Media::AacFrame(&[0x21]))),
            (&[0x2F, 0xFF, 0xFB], Some(Media::Mp3Frame(&[0xFF, 0xFB]))),
            (&[0x6F, 1], Some(Media::Ignored)),
            (&[0xAF], None),
        ];
        for (body, want) in table {
            assert_eq!(
                media(flv::Media::of(8, body), body).ok(),
                *want,
                "body {body:02x?}"
            );
        }
    }
}

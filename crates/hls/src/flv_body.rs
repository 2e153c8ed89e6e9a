//! Splits FLV audio/video tag bodies into codec payloads (FLV 10.1 E.4.2, E.4.3, and the
//! Enhanced RTMP v1 extended video header).
//!
//! Local on purpose: the segmenter only needs the payload offset and the codec, and the `flv`
//! crate was not ready when this was written. The bus has already set the keyframe,
//! sequence-header and composition-time flags, so they are not re-derived here.

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
    /// Something the muxer does not carry (end of sequence, video info frames, other codecs).
    Ignored,
}

/// FLV CodecID 7 (AVC).
const CODEC_AVC: u8 = 7;
/// CodecID 12: HEVC in the legacy FLV header, as widely deployed by Chinese CDNs and OBS forks.
const CODEC_HEVC_LEGACY: u8 = 12;

/// Parses a video tag body.
pub(crate) fn video(body: &[u8]) -> Result<Media<'_>, HlsError> {
    let (&b0, rest) = body
        .split_first()
        .ok_or(HlsError::BadTag("empty video tag"))?;
    if b0 & 0x80 != 0 {
        return enhanced_video(b0, rest);
    }
    let codec = match b0 & 0x0F {
        CODEC_AVC => VideoCodec::H264,
        CODEC_HEVC_LEGACY => VideoCodec::H265,
        _ => return Ok(Media::Ignored),
    };
    // AVCPacketType (1 byte) and CompositionTime (3 bytes) precede the payload.
    let (hdr, payload) = rest
        .split_at_checked(4)
        .ok_or(HlsError::BadTag("short AVC video tag"))?;
    Ok(match hdr[0] {
        0 => Media::VideoConfig(codec, payload),
        1 => Media::VideoFrame(codec, payload),
        _ => Media::Ignored,
    })
}

/// Enhanced RTMP: `[1 IsExHeader][3 FrameType][4 PacketType][FourCC]...`.
fn enhanced_video(b0: u8, rest: &[u8]) -> Result<Media<'_>, HlsError> {
    let (fourcc, rest) = rest
        .split_at_checked(4)
        .ok_or(HlsError::BadTag("short extended video tag"))?;
    let codec = match fourcc {
        b"avc1" => VideoCodec::H264,
        b"hvc1" => VideoCodec::H265,
        _ => return Ok(Media::Ignored),
    };
    if (b0 >> 4) & 0x07 == 5 {
        return Ok(Media::Ignored); // Video info / command frame.
    }
    Ok(match b0 & 0x0F {
        0 => Media::VideoConfig(codec, rest),
        1 => {
            let payload = rest
                .get(3..)
                .ok_or(HlsError::BadTag("short CodedFrames tag"))?;
            Media::VideoFrame(codec, payload)
        }
        3 => Media::VideoFrame(codec, rest),
        _ => Media::Ignored,
    })
}

/// Parses an audio tag body.
pub(crate) fn audio(body: &[u8]) -> Result<Media<'_>, HlsError> {
    let (&b0, rest) = body
        .split_first()
        .ok_or(HlsError::BadTag("empty audio tag"))?;
    match b0 >> 4 {
        10 => {
            let (&packet_type, payload) = rest
                .split_first()
                .ok_or(HlsError::BadTag("short AAC tag"))?;
            Ok(if packet_type == 0 {
                Media::AacConfig(payload)
            } else {
                Media::AacFrame(payload)
            })
        }
        2 | 14 => Ok(Media::Mp3Frame(rest)),
        _ => Ok(Media::Ignored),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn video_bodies() {
        let table: &[(&[u8], Result<Media<'_>, HlsError>)] = &[
            (
                &[0x17, 0, 0, 0, 0, 1, 2],
                Ok(Media::VideoConfig(VideoCodec::H264, &[1, 2])),
            ),
            (
                &[0x27, 1, 0, 0, 0x50, 9],
                Ok(Media::VideoFrame(VideoCodec::H264, &[9])),
            ),
            (
                &[0x1C, 1, 0, 0, 0, 9],
                Ok(Media::VideoFrame(VideoCodec::H265, &[9])),
            ),
            (&[0x17, 2, 0, 0, 0], Ok(Media::Ignored)),
            (&[0x12, 0, 0], Ok(Media::Ignored)),
            (
                &[0x90, b'h', b'v', b'c', b'1', 7],
                Ok(Media::VideoConfig(VideoCodec::H265, &[7])),
            ),
            (
                &[0x91, b'h', b'v', b'c', b'1', 0, 0, 0, 7],
                Ok(Media::VideoFrame(VideoCodec::H265, &[7])),
            ),
            (
                &[0xA3, b'a', b'v', b'c', b'1', 7],
                Ok(Media::VideoFrame(VideoCodec::H264, &[7])),
            ),
            (&[0x91, b'a', b'v', b'0', b'1', 7], Ok(Media::Ignored)),
            (&[0x17, 1, 0], Err(HlsError::BadTag("short AVC video tag"))),
            (&[], Err(HlsError::BadTag("empty video tag"))),
        ];
        for (body, want) in table {
            assert_eq!(&video(body), want, "body {body:02x?}");
        }
    }

    #[test]
    fn audio_bodies() {
        let table: &[(&[u8], Result<Media<'_>, HlsError>)] = &[
            (&[0xAF, 0, 0x12, 0x10], Ok(Media::AacConfig(&[0x12, 0x10]))),
            (&[0xAF, 1, 0x21], Ok(Media::AacFrame(&[0x21]))),
            (&[0x2F, 0xFF, 0xFB], Ok(Media::Mp3Frame(&[0xFF, 0xFB]))),
            (&[0x6F, 1], Ok(Media::Ignored)),
            (&[0xAF], Err(HlsError::BadTag("short AAC tag"))),
        ];
        for (body, want) in table {
            assert_eq!(&audio(body), want, "body {body:02x?}");
        }
    }
}

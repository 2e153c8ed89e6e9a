//! MPEG audio (MP1/MP2/MP3) frame headers (ISO 11172-3 2.4.1.3, ISO 13818-3, and the
//! unofficial MPEG 2.5 extension for 8 to 12 kHz, which FLV's "MP3 8 kHz" format uses).

use thiserror::Error;

/// Length of an MPEG audio frame header.
pub const HEADER_LEN: usize = 4;

/// An error in an MPEG audio frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum Mp3Error {
    /// Fewer than four bytes were given.
    #[error("MPEG audio header needs 4 bytes, got {0}")]
    Truncated(usize),
    /// The 11-bit frame sync is missing.
    #[error("MPEG audio frame sync missing")]
    NoSync,
    /// The version bits hold the reserved value `01`.
    #[error("reserved MPEG audio version")]
    ReservedVersion,
    /// The layer bits hold the reserved value `00`.
    #[error("reserved MPEG audio layer")]
    ReservedLayer,
    /// The bitrate index is the invalid value 15.
    #[error("invalid bitrate index 15")]
    BadBitrate,
    /// The sampling rate index is the reserved value 3.
    #[error("reserved sampling rate index 3")]
    ReservedSampleRate,
}

/// The MPEG audio version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MpegVersion {
    /// MPEG-1 (32, 44.1, 48 kHz).
    Mpeg1,
    /// MPEG-2 low sampling frequencies (16, 22.05, 24 kHz).
    Mpeg2,
    /// MPEG 2.5 (8, 11.025, 12 kHz).
    Mpeg25,
}

/// The MPEG audio layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layer {
    /// Layer I.
    Layer1,
    /// Layer II.
    Layer2,
    /// Layer III (MP3).
    Layer3,
}

/// A parsed MPEG audio frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mp3FrameHeader {
    /// The MPEG version.
    pub version: MpegVersion,
    /// The layer.
    pub layer: Layer,
    /// A 16-bit CRC follows the header.
    pub has_crc: bool,
    /// Bitrate in kbit/s, or `None` for free format (index 0).
    pub bitrate_kbps: Option<u32>,
    /// Sampling rate in Hz.
    pub sample_rate: u32,
    /// The padding slot is present.
    pub padding: bool,
    /// 1 for single channel, otherwise 2 (stereo, joint stereo, dual channel).
    pub channels: u8,
    /// Whole frame length in bytes including the header, or `None` for free format.
    pub frame_length: Option<usize>,
    /// PCM samples per channel in this frame.
    pub samples_per_frame: u32,
}

/// Bitrates in kbit/s by index 1..=14, per (version group, layer) (ISO 11172-3 Table
/// 2.4.2.3, ISO 13818-3 Table 2.4.2.3).
const BITRATES: [[u16; 14]; 5] = [
    [
        32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448,
    ], // V1 L1
    [
        32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384,
    ], // V1 L2
    [
        32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320,
    ], // V1 L3
    [
        32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256,
    ], // V2 L1
    [8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160], // V2 L2/L3
];

impl Mp3FrameHeader {
    /// Parses the four header bytes at the start of `data`.
    pub fn parse(data: &[u8]) -> Result<Self, Mp3Error> {
        let h: [u8; 4] = data
            .get(..HEADER_LEN)
            .and_then(|s| s.try_into().ok())
            .ok_or(Mp3Error::Truncated(data.len()))?;
        if h[0] != 0xff || h[1] & 0xe0 != 0xe0 {
            return Err(Mp3Error::NoSync);
        }
        let version = match (h[1] >> 3) & 3 {
            0 => MpegVersion::Mpeg25,
            2 => MpegVersion::Mpeg2,
            3 => MpegVersion::Mpeg1,
            _ => return Err(Mp3Error::ReservedVersion),
        };
        let layer = match (h[1] >> 1) & 3 {
            1 => Layer::Layer3,
            2 => Layer::Layer2,
            3 => Layer::Layer1,
            _ => return Err(Mp3Error::ReservedLayer),
        };
        let bitrate_kbps = bitrate(version, layer, h[2] >> 4)?;
        let sample_rate = sample_rate(version, (h[2] >> 2) & 3)?;
        let padding = h[2] & 0x02 != 0;
        let samples_per_frame = samples_per_frame(version, layer);
        Ok(Mp3FrameHeader {
            version,
            layer,
            has_crc: h[1] & 1 == 0,
            bitrate_kbps,
            sample_rate,
            padding,
            channels: if h[3] >> 6 == 3 { 1 } else { 2 },
            frame_length: bitrate_kbps
                .map(|kbps| frame_length(layer, samples_per_frame, kbps, sample_rate, padding)),
            samples_per_frame,
        })
    }
}

fn bitrate(version: MpegVersion, layer: Layer, index: u8) -> Result<Option<u32>, Mp3Error> {
    let row = match (version, layer) {
        (MpegVersion::Mpeg1, Layer::Layer1) => 0,
        (MpegVersion::Mpeg1, Layer::Layer2) => 1,
        (MpegVersion::Mpeg1, Layer::Layer3) => 2,
        (_, Layer::Layer1) => 3,
        _ => 4,
    };
    match index {
        0 => Ok(None),
        15 => Err(Mp3Error::BadBitrate),
        i => Ok(Some(u32::from(BITRATES[row][usize::from(i) - 1]))),
    }
}

fn sample_rate(version: MpegVersion, index: u8) -> Result<u32, Mp3Error> {
    let base = match index {
        0 => 44100,
        1 => 48000,
        2 => 32000,
        _ => return Err(Mp3Error::ReservedSampleRate),
    };
    Ok(match version {
        MpegVersion::Mpeg1 => base,
        MpegVersion::Mpeg2 => base / 2,
        MpegVersion::Mpeg25 => base / 4,
    })
}

fn samples_per_frame(version: MpegVersion, layer: Layer) -> u32 {
    match (layer, version) {
        (Layer::Layer1, _) => 384,
        (Layer::Layer2, _) | (Layer::Layer3, MpegVersion::Mpeg1) => 1152,
        (Layer::Layer3, _) => 576,
    }
}

/// Frame length in bytes: slots of 4 bytes for Layer I, 1 byte otherwise.
fn frame_length(layer: Layer, samples: u32, kbps: u32, rate: u32, padding: bool) -> usize {
    let bits = u64::from(samples) * u64::from(kbps) * 1000;
    let len = match layer {
        Layer::Layer1 => (bits / 32 / u64::from(rate) + u64::from(padding)) * 4,
        _ => bits / 8 / u64::from(rate) + u64::from(padding),
    };
    // At most 1152 * 448000 / 8 / 8000 bytes, which fits any usize.
    len as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(h: [u8; 4], want: (MpegVersion, Layer, Option<u32>, u32, u8, Option<usize>, u32)) {
        let p = Mp3FrameHeader::parse(&h).unwrap_or_else(|e| panic!("{h:02x?}: {e}"));
        let got = (
            p.version,
            p.layer,
            p.bitrate_kbps,
            p.sample_rate,
            p.channels,
            p.frame_length,
            p.samples_per_frame,
        );
        assert_eq!(got, want, "{h:02x?}");
    }

    #[test]
    fn header_table() {
        use Layer::*;
        use MpegVersion::*;
        // Real first frames: libmp3lame via ffmpeg 5.1.9,
        // `ffmpeg -f lavfi -i sine=frequency=440:sample_rate=RATE [-ac 2] -c:a libmp3lame
        // -b:a RATEk -t 0.3 out.flv` (the FLV audio tag body after its one-byte header).
        // 44100 -ac 2 -b:a 128k: MPEG-1 Layer III joint stereo, 417 bytes (418 padded).
        check(
            [0xff, 0xfb, 0x90, 0x64],
            (Mpeg1, Layer3, Some(128), 44100, 2, Some(417), 1152),
        );
        check(
            [0xff, 0xfb, 0x92, 0x64],
            (Mpeg1, Layer3, Some(128), 44100, 2, Some(418), 1152),
        );
        // 48000 -b:a 64k, mono: 192 bytes.
        check(
            [0xff, 0xfb, 0x54, 0xc4],
            (Mpeg1, Layer3, Some(64), 48000, 1, Some(192), 1152),
        );
        // 22050 -b:a 32k, mono: MPEG-2, 72 * 32000 / 22050 = 104 bytes, 576 samples.
        check(
            [0xff, 0xf3, 0x40, 0xc4],
            (Mpeg2, Layer3, Some(32), 22050, 1, Some(104), 576),
        );
        // 8000 -b:a 8k written with `-f mp3 -write_xing 0 -id3v2_version 0` (FLV refuses
        // 8 kHz in ffmpeg): MPEG 2.5, 72 bytes. FLV sound format 14 carries these.
        check(
            [0xff, 0xe3, 0x18, 0xc4],
            (Mpeg25, Layer3, Some(8), 8000, 1, Some(72), 576),
        );
        // `-c:a mp2 -b:a 192k` at 48000, mono: MPEG-1 Layer II, 576 bytes.
        check(
            [0xff, 0xfd, 0xa4, 0xc4],
            (Mpeg1, Layer2, Some(192), 48000, 1, Some(576), 1152),
        );
        // Hand-built: MPEG-1 Layer I 384 kbit/s 48 kHz: 12 * 384000 / 48000 * 4 = 384 bytes.
        check(
            [0xff, 0xff, 0xc4, 0x04],
            (Mpeg1, Layer1, Some(384), 48000, 2, Some(384), 384),
        );
        // Free format.
        check(
            [0xff, 0xfb, 0x00, 0x04],
            (Mpeg1, Layer3, None, 44100, 2, None, 1152),
        );
    }

    #[test]
    fn error_table() {
        let cases: &[(&[u8], Mp3Error)] = &[
            (&[0xff, 0xfb, 0x90], Mp3Error::Truncated(3)),
            (&[0x49, 0x44, 0x33, 0x04], Mp3Error::NoSync),
            (&[0xff, 0xeb, 0x90, 0x64], Mp3Error::ReservedVersion),
            (&[0xff, 0xf9, 0x90, 0x64], Mp3Error::ReservedLayer),
            (&[0xff, 0xfb, 0xf0, 0x64], Mp3Error::BadBitrate),
            (&[0xff, 0xfb, 0x9c, 0x64], Mp3Error::ReservedSampleRate),
        ];
        for (h, want) in cases {
            assert_eq!(Mp3FrameHeader::parse(h), Err(*want), "{h:02x?}");
        }
    }
}

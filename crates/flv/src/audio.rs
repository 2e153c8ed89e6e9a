//! Audio tag headers: legacy FLV (FLV 10.1 E.4.2.1) and the E-RTMP v2 extended header.

use crate::tag::{need, TagHeaderError};
use crate::video::FourCc;

/// `SoundFormat`, the high nibble of an audio tag's first byte (FLV 10.1 E.4.2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SoundFormat {
    /// 0: linear PCM, platform endian.
    LinearPcmPlatformEndian,
    /// 1: ADPCM.
    Adpcm,
    /// 2: MP3.
    Mp3,
    /// 3: linear PCM, little endian.
    LinearPcmLittleEndian,
    /// 4: Nellymoser 16 kHz mono.
    Nellymoser16kMono,
    /// 5: Nellymoser 8 kHz mono.
    Nellymoser8kMono,
    /// 6: Nellymoser.
    Nellymoser,
    /// 7: G.711 A-law.
    G711ALaw,
    /// 8: G.711 mu-law.
    G711MuLaw,
    /// 9: reserved in FLV 10.1; E-RTMP v2 uses it for the extended header (FourCC follows).
    ExHeader,
    /// 10: AAC.
    Aac,
    /// 11: Speex.
    Speex,
    /// 14: MP3 8 kHz.
    Mp3_8k,
    /// 15: device-specific sound.
    DeviceSpecific,
    /// 12 and 13: reserved.
    Reserved(u8),
}

impl SoundFormat {
    /// Maps a 4-bit `SoundFormat` value.
    pub fn from_u8(v: u8) -> Self {
        use SoundFormat::*;
        match v & 0x0f {
            0 => LinearPcmPlatformEndian,
            1 => Adpcm,
            2 => Mp3,
            3 => LinearPcmLittleEndian,
            4 => Nellymoser16kMono,
            5 => Nellymoser8kMono,
            6 => Nellymoser,
            7 => G711ALaw,
            8 => G711MuLaw,
            9 => ExHeader,
            10 => Aac,
            11 => Speex,
            14 => Mp3_8k,
            15 => DeviceSpecific,
            other => Reserved(other),
        }
    }

    /// Returns the 4-bit wire value.
    pub fn id(self) -> u8 {
        use SoundFormat::*;
        match self {
            LinearPcmPlatformEndian => 0,
            Adpcm => 1,
            Mp3 => 2,
            LinearPcmLittleEndian => 3,
            Nellymoser16kMono => 4,
            Nellymoser8kMono => 5,
            Nellymoser => 6,
            G711ALaw => 7,
            G711MuLaw => 8,
            ExHeader => 9,
            Aac => 10,
            Speex => 11,
            Mp3_8k => 14,
            DeviceSpecific => 15,
            Reserved(v) => v & 0x0f,
        }
    }
}

/// The audio codec, unified over legacy sound formats and E-RTMP FourCCs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AudioCodec {
    /// AAC (legacy format 10, or E-RTMP `mp4a`).
    Aac,
    /// MP3 (legacy formats 2 and 14, or E-RTMP `.mp3`).
    Mp3,
    /// Opus (E-RTMP `Opus`).
    Opus,
    /// FLAC (E-RTMP `fLaC`).
    Flac,
    /// AC-3 (E-RTMP `ac-3`).
    Ac3,
    /// E-AC-3 (E-RTMP `ec-3`).
    Eac3,
    /// G.711 A-law (legacy format 7).
    G711ALaw,
    /// G.711 mu-law (legacy format 8).
    G711MuLaw,
    /// Another legacy sound format.
    OtherFormat(SoundFormat),
    /// Another E-RTMP FourCC.
    OtherFourCc(FourCc),
}

/// What an audio tag carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AudioPacketKind {
    /// Decoder configuration (AAC AudioSpecificConfig, E-RTMP SequenceStart).
    SequenceHeader,
    /// Coded audio frames.
    Frame,
    /// End of sequence (E-RTMP SequenceEnd).
    EndOfSequence,
    /// Another packet type (E-RTMP multichannel config, multitrack), by its raw value.
    Other(u8),
}

/// E-RTMP v2 audio packet types (Enhanced RTMP v2, "ExAudioTagHeader").
mod ex_audio {
    pub const SEQUENCE_START: u8 = 0;
    pub const CODED_FRAMES: u8 = 1;
    pub const SEQUENCE_END: u8 = 2;
    pub const MOD_EX: u8 = 7;
}

/// A parsed audio tag header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AudioTagHeader {
    /// The `SoundFormat` nibble.
    pub format: SoundFormat,
    /// The codec.
    pub codec: AudioCodec,
    /// `SoundRate` index: 0 = 5.5 kHz, 1 = 11 kHz, 2 = 22 kHz, 3 = 44 kHz. Nominal only:
    /// AAC always says 3; the AudioSpecificConfig has the real rate. 0 for E-RTMP.
    pub rate_index: u8,
    /// `SoundSize`: 16-bit samples (false = 8-bit). Meaningful for PCM only.
    pub sample_size_16bit: bool,
    /// `SoundType`: stereo (false = mono). AAC always says stereo.
    pub stereo: bool,
    /// What the tag carries.
    pub packet: AudioPacketKind,
    /// The raw `AACPacketType` (legacy AAC) or `AudioPacketType` (E-RTMP), if present.
    pub raw_packet_type: Option<u8>,
    /// Offset in the tag body where the codec payload (an AudioSpecificConfig or a raw
    /// frame) begins.
    pub header_len: usize,
    /// The tag uses the E-RTMP extended header.
    pub enhanced: bool,
}

impl AudioTagHeader {
    /// Parses the header at the start of an audio tag body.
    pub fn parse(body: &[u8]) -> Result<Self, TagHeaderError> {
        need(body, 1, "audio tag header")?;
        let b0 = body[0];
        let format = SoundFormat::from_u8(b0 >> 4);
        if format == SoundFormat::ExHeader {
            return parse_enhanced(body);
        }
        let mut h = AudioTagHeader {
            format,
            codec: legacy_codec(format),
            rate_index: (b0 >> 2) & 3,
            sample_size_16bit: b0 & 0x02 != 0,
            stereo: b0 & 0x01 != 0,
            packet: AudioPacketKind::Frame,
            raw_packet_type: None,
            header_len: 1,
            enhanced: false,
        };
        if format == SoundFormat::Aac {
            need(body, 2, "AAC packet type")?;
            h.raw_packet_type = Some(body[1]);
            h.packet = match body[1] {
                0 => AudioPacketKind::SequenceHeader,
                1 => AudioPacketKind::Frame,
                other => AudioPacketKind::Other(other),
            };
            h.header_len = 2;
        }
        Ok(h)
    }

    /// Returns the nominal `SoundRate` in Hz (5512, 11025, 22050, 44100).
    pub fn rate_hz(&self) -> u32 {
        [5512, 11025, 22050, 44100][usize::from(self.rate_index & 3)]
    }
}

fn legacy_codec(format: SoundFormat) -> AudioCodec {
    match format {
        SoundFormat::Aac => AudioCodec::Aac,
        SoundFormat::Mp3 | SoundFormat::Mp3_8k => AudioCodec::Mp3,
        SoundFormat::G711ALaw => AudioCodec::G711ALaw,
        SoundFormat::G711MuLaw => AudioCodec::G711MuLaw,
        other => AudioCodec::OtherFormat(other),
    }
}

fn fourcc_audio_codec(f: FourCc) -> AudioCodec {
    match &f.0 {
        b"mp4a" => AudioCodec::Aac,
        b".mp3" => AudioCodec::Mp3,
        b"Opus" => AudioCodec::Opus,
        b"fLaC" => AudioCodec::Flac,
        b"ac-3" => AudioCodec::Ac3,
        b"ec-3" => AudioCodec::Eac3,
        _ => AudioCodec::OtherFourCc(f),
    }
}

/// Parses `ExAudioTagHeader` (E-RTMP v2): `SoundFormat` 9, `AudioPacketType` in the low
/// nibble, optional ModEx blocks, then the FourCC. Multitrack packets are reported as
/// `Other(5)` with `header_len` after the first byte.
fn parse_enhanced(body: &[u8]) -> Result<AudioTagHeader, TagHeaderError> {
    let mut packet_type = body[0] & 0x0f;
    let mut pos = 1;
    while packet_type == ex_audio::MOD_EX {
        let (next_type, next_pos) = crate::video::skip_mod_ex(body, pos)?;
        packet_type = next_type;
        pos = next_pos;
    }
    let mut h = AudioTagHeader {
        format: SoundFormat::ExHeader,
        codec: AudioCodec::OtherFormat(SoundFormat::ExHeader),
        rate_index: 0,
        sample_size_16bit: false,
        stereo: false,
        packet: AudioPacketKind::Other(packet_type),
        raw_packet_type: Some(packet_type),
        header_len: pos,
        enhanced: true,
    };
    if !matches!(
        packet_type,
        ex_audio::SEQUENCE_START | ex_audio::CODED_FRAMES | ex_audio::SEQUENCE_END
    ) {
        return Ok(h);
    }
    need(body, pos + 4, "E-RTMP audio FourCC")?;
    let fourcc = FourCc([body[pos], body[pos + 1], body[pos + 2], body[pos + 3]]);
    h.codec = fourcc_audio_codec(fourcc);
    h.header_len = pos + 4;
    h.packet = match packet_type {
        ex_audio::SEQUENCE_START => AudioPacketKind::SequenceHeader,
        ex_audio::CODED_FRAMES => AudioPacketKind::Frame,
        _ => AudioPacketKind::EndOfSequence,
    };
    Ok(h)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(body: &[u8], codec: AudioCodec, packet: AudioPacketKind, header_len: usize) {
        let h = AudioTagHeader::parse(body).unwrap_or_else(|e| panic!("{body:02x?}: {e}"));
        assert_eq!(
            (h.codec, h.packet, h.header_len),
            (codec, packet, header_len),
            "{body:02x?}"
        );
    }

    #[test]
    fn audio_header_table() {
        use AudioPacketKind::*;
        // 0xaf = AAC, 44 kHz, 16-bit, stereo: what ffmpeg's FLV muxer writes for AAC.
        check(
            &[0xaf, 0x00, 0x12, 0x10],
            AudioCodec::Aac,
            SequenceHeader,
            2,
        );
        check(&[0xaf, 0x01, 0x21, 0x10], AudioCodec::Aac, Frame, 2);
        // 0x2e = MP3, 44 kHz, 16-bit, mono.
        check(&[0x2e, 0xff, 0xfb], AudioCodec::Mp3, Frame, 1);
        check(&[0xe2, 0xff, 0xe3], AudioCodec::Mp3, Frame, 1);
        check(&[0x72, 0xd5], AudioCodec::G711ALaw, Frame, 1);
        check(&[0x82, 0xd5], AudioCodec::G711MuLaw, Frame, 1);
        check(
            &[0xb2, 0x00],
            AudioCodec::OtherFormat(SoundFormat::Speex),
            Frame,
            1,
        );
        // E-RTMP v2: SoundFormat 9, packet type in the low nibble, FourCC.
        check(b"\x90Opus\x4f", AudioCodec::Opus, SequenceHeader, 5);
        check(b"\x91fLaC\x00", AudioCodec::Flac, Frame, 5);
        check(b"\x92mp4a", AudioCodec::Aac, EndOfSequence, 5);
        check(b"\x91ac-3\x0b\x77", AudioCodec::Ac3, Frame, 5);
        check(b"\x91ec-3\x0b\x77", AudioCodec::Eac3, Frame, 5);
        check(b"\x91.mp3\xff", AudioCodec::Mp3, Frame, 5);
        // ModEx (size 1 => 0x00 means 1 byte of data) then CodedFrames with Opus.
        check(b"\x97\x00\x2a\x01Opus", AudioCodec::Opus, Frame, 8);
    }

    #[test]
    fn audio_fields_and_truncation() {
        let h = AudioTagHeader::parse(&[0xaf, 0x01]).unwrap();
        assert_eq!(h.format, SoundFormat::Aac);
        assert_eq!(
            (h.rate_hz(), h.sample_size_16bit, h.stereo),
            (44100, true, true)
        );
        let h = AudioTagHeader::parse(&[0x26]).unwrap();
        assert_eq!(
            (h.rate_hz(), h.sample_size_16bit, h.stereo),
            (11025, true, false)
        );
        for body in [&b""[..], &[0xaf], b"\x90Opu"] {
            assert!(AudioTagHeader::parse(body).is_err(), "{body:02x?}");
        }
        for v in 0..16 {
            assert_eq!(SoundFormat::from_u8(v).id(), v);
        }
    }
}

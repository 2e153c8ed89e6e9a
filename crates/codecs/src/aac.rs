//! AAC: the AudioSpecificConfig (the body of an FLV AAC sequence header and of MP4's
//! `esds` DecoderSpecificInfo) and the ADTS header that MPEG-TS carries before each frame.

use thiserror::Error;

use crate::bits::{BitError, BitReader};

/// PCM samples per AAC frame for every object type this gateway carries (AAC LC, HE-AAC,
/// HE-AACv2 core). The 960-sample variant is flagged by [`AudioSpecificConfig::frame_length_flag`].
pub const SAMPLES_PER_FRAME: u32 = 1024;

/// Length of an ADTS header without CRC.
pub const ADTS_HEADER_LEN: usize = 7;

/// The largest AAC frame payload an ADTS header can describe (13-bit `frame_length`
/// minus the header).
pub const MAX_ADTS_PAYLOAD: usize = 0x1fff - ADTS_HEADER_LEN;

/// Sampling frequencies by `samplingFrequencyIndex` (ISO 14496-3 Table 1.18).
pub const SAMPLING_FREQUENCIES: [u32; 13] = [
    96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350,
];

/// Audio object type of AAC Main.
pub const AOT_AAC_MAIN: u8 = 1;
/// Audio object type of AAC LC, what almost every encoder sends.
pub const AOT_AAC_LC: u8 = 2;
/// Audio object type of SBR (HE-AAC), when signalled explicitly.
pub const AOT_SBR: u8 = 5;
/// Audio object type of PS (HE-AACv2), when signalled explicitly.
pub const AOT_PS: u8 = 29;

/// An error in AAC configuration or framing.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum AacError {
    /// The AudioSpecificConfig bitstream ended early.
    #[error("AudioSpecificConfig: {0}")]
    Bits(#[from] BitError),
    /// `samplingFrequencyIndex` is one of the reserved values 13 or 14.
    #[error("reserved samplingFrequencyIndex {0}")]
    ReservedFrequencyIndex(u8),
    /// ADTS can only express object types 1 to 4 (its 2-bit `profile` field).
    #[error("audio object type {0} cannot be carried in ADTS (only 1 to 4)")]
    AdtsObjectType(u8),
    /// ADTS needs a sampling frequency index, and this rate has none.
    #[error("sampling frequency {0} Hz has no index, so cannot be carried in ADTS")]
    AdtsFrequency(u32),
    /// The channel configuration does not fit ADTS's 3-bit field.
    #[error("channel configuration {0} cannot be carried in ADTS")]
    AdtsChannels(u8),
    /// The frame is larger than [`MAX_ADTS_PAYLOAD`].
    #[error("AAC frame of {0} bytes exceeds the ADTS maximum of {MAX_ADTS_PAYLOAD}")]
    AdtsTooLarge(usize),
    /// An ADTS header did not start with the 12-bit syncword.
    #[error("ADTS syncword missing")]
    AdtsSync,
}

/// A parsed AudioSpecificConfig (ISO 14496-3 1.6.2.1).
///
/// With explicit SBR/PS signalling (object type 5 or 29 first), `object_type` and
/// `sampling_frequency` describe the core AAC layer, which is what ADTS needs, and the
/// extension is reported in `sbr_present`, `ps_present` and `extension_sampling_frequency`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudioSpecificConfig {
    /// `audioObjectType` of the core (2 = AAC LC), escape-decoded (31 + 6 bits).
    pub object_type: u8,
    /// `samplingFrequencyIndex`, or `None` when the rate was given explicitly.
    pub sampling_frequency_index: Option<u8>,
    /// The core sampling frequency in Hz.
    pub sampling_frequency: u32,
    /// `channelConfiguration` (0 = defined in a program config element).
    pub channel_configuration: u8,
    /// SBR was signalled explicitly (object type 5 or 29 first).
    pub sbr_present: bool,
    /// PS was signalled explicitly (object type 29 first).
    pub ps_present: bool,
    /// The SBR output sampling frequency, when SBR was signalled.
    pub extension_sampling_frequency: Option<u32>,
    /// GASpecificConfig `frameLengthFlag`: frames have 960 samples instead of 1024.
    pub frame_length_flag: bool,
}

impl AudioSpecificConfig {
    /// Parses an AudioSpecificConfig. Bits after the fields this gateway needs (the rest
    /// of GASpecificConfig, backward-compatible extension signalling) are ignored.
    pub fn parse(data: &[u8]) -> Result<Self, AacError> {
        let mut r = BitReader::new(data);
        let mut object_type = read_object_type(&mut r)?;
        let (sampling_frequency_index, sampling_frequency) = read_frequency(&mut r)?;
        let mut channel_configuration = r.read_u8(4)?;
        let mut asc = AudioSpecificConfig {
            object_type,
            sampling_frequency_index,
            sampling_frequency,
            channel_configuration,
            sbr_present: false,
            ps_present: false,
            extension_sampling_frequency: None,
            frame_length_flag: false,
        };
        if object_type == AOT_SBR || object_type == AOT_PS {
            // Explicit hierarchical signalling (ISO 14496-3 1.6.5.2): the extension rate,
            // then the core object type.
            asc.sbr_present = true;
            asc.ps_present = object_type == AOT_PS;
            asc.extension_sampling_frequency = Some(read_frequency(&mut r)?.1);
            object_type = read_object_type(&mut r)?;
            if object_type == 22 {
                channel_configuration = r.read_u8(4)?;
            }
            asc.object_type = object_type;
            asc.channel_configuration = channel_configuration;
        }
        if has_ga_specific_config(object_type) {
            asc.frame_length_flag = r.read_bit().unwrap_or(false);
            // The rest of GASpecificConfig is only walked when it has a fixed size, so
            // that the backward-compatible extension after it can be found.
            let simple = asc.channel_configuration != 0 && (1..=4).contains(&object_type);
            if simple && skip_ga_tail(&mut r).is_ok() && !asc.sbr_present {
                read_sync_extension(&mut r, &mut asc);
            }
        }
        Ok(asc)
    }

    /// Returns PCM samples per frame: 1024, or 960 with `frameLengthFlag`.
    pub fn samples_per_frame(&self) -> u32 {
        if self.frame_length_flag {
            960
        } else {
            SAMPLES_PER_FRAME
        }
    }

    /// Returns the channel count for configurations 1 to 7 (Table 1.19), or `None` for 0
    /// (program config element) and reserved values.
    pub fn channel_count(&self) -> Option<u8> {
        match self.channel_configuration {
            c @ 1..=6 => Some(c),
            7 => Some(8),
            _ => None,
        }
    }

    /// Returns the RFC 6381 codec string, e.g. `mp4a.40.2`.
    pub fn codec_string(&self) -> String {
        let aot = if self.ps_present {
            AOT_PS
        } else if self.sbr_present {
            AOT_SBR
        } else {
            self.object_type
        };
        format!("mp4a.40.{aot}")
    }

    /// Serialises the minimal two-byte form (object type, frequency index, channels) for
    /// object types under 31 and indexed frequencies; other configs use the escape forms.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = BitWriter::default();
        write_object_type(&mut w, self.object_type);
        match self.sampling_frequency_index {
            Some(i) => w.put(u32::from(i), 4),
            None => {
                w.put(15, 4);
                w.put(self.sampling_frequency & 0xff_ffff, 24);
            }
        }
        w.put(u32::from(self.channel_configuration), 4);
        w.put(u32::from(self.frame_length_flag), 1);
        w.finish()
    }

    /// Builds the 7-byte ADTS header (ISO 14496-3 1.A.2.2, ISO 13818-7 6.2) for one raw
    /// AAC frame of `payload_len` bytes, without CRC.
    pub fn adts_header(&self, payload_len: usize) -> Result<[u8; ADTS_HEADER_LEN], AacError> {
        adts_header(self, payload_len)
    }
}

/// Skips `dependsOnCoreCoder` (+ `coreCoderDelay`) and `extensionFlag` of a
/// GASpecificConfig for object types 1 to 4 with a non-zero channel configuration
/// (ISO 14496-3 4.4.1), which have no further fields.
fn skip_ga_tail(r: &mut BitReader<'_>) -> Result<(), BitError> {
    if r.read_bit()? {
        r.skip(14)?;
    }
    r.skip(1)
}

/// The sync extension that marks backward-compatible SBR signalling.
const SYNC_EXTENSION_SBR: u32 = 0x2b7;
/// The sync extension that marks backward-compatible PS signalling.
const SYNC_EXTENSION_PS: u32 = 0x548;

/// Reads backward-compatible (implicit-looking) SBR/PS signalling after the core config
/// (ISO 14496-3 1.6.5.2, "backward compatible explicit signalling"), as fdk-aac and
/// Apple encoders write for HE-AAC. Malformed or absent tails leave `asc` unchanged.
fn read_sync_extension(r: &mut BitReader<'_>, asc: &mut AudioSpecificConfig) {
    let mut try_read = || -> Result<(), AacError> {
        if r.bits_left() < 16 || r.read_bits(11)? != SYNC_EXTENSION_SBR {
            return Ok(());
        }
        if read_object_type(r)? != AOT_SBR || !r.read_bit()? {
            return Ok(());
        }
        let ext_rate = read_frequency(r)?.1;
        asc.sbr_present = true;
        asc.extension_sampling_frequency = Some(ext_rate);
        if r.bits_left() >= 12 && r.read_bits(11)? == SYNC_EXTENSION_PS {
            asc.ps_present = r.read_bit()?;
        }
        Ok(())
    };
    let _ = try_read();
}

/// Object types whose config continues with GASpecificConfig (ISO 14496-3 Table 1.15).
fn has_ga_specific_config(aot: u8) -> bool {
    matches!(aot, 1..=4 | 6 | 7 | 17 | 19..=23)
}

fn read_object_type(r: &mut BitReader<'_>) -> Result<u8, AacError> {
    let aot = r.read_u8(5)?;
    if aot == 31 {
        return Ok(32 + r.read_u8(6)?);
    }
    Ok(aot)
}

fn read_frequency(r: &mut BitReader<'_>) -> Result<(Option<u8>, u32), AacError> {
    let index = r.read_u8(4)?;
    match index {
        15 => Ok((None, r.read_bits(24)?)),
        13 | 14 => Err(AacError::ReservedFrequencyIndex(index)),
        i => Ok((Some(i), SAMPLING_FREQUENCIES[usize::from(i)])),
    }
}

fn write_object_type(w: &mut BitWriter, aot: u8) {
    if aot >= 31 {
        w.put(31, 5);
        w.put(u32::from(aot - 32) & 0x3f, 6);
    } else {
        w.put(u32::from(aot), 5);
    }
}

/// Returns the `samplingFrequencyIndex` of a rate, if the table has it.
pub fn frequency_index(hz: u32) -> Option<u8> {
    SAMPLING_FREQUENCIES
        .iter()
        .position(|&f| f == hz)
        .and_then(|i| u8::try_from(i).ok())
}

/// Builds the 7-byte ADTS header for one raw AAC frame of `payload_len` bytes: MPEG-4 ID,
/// no CRC, buffer fullness 0x7FF (variable bit rate), one raw data block.
pub fn adts_header(
    asc: &AudioSpecificConfig,
    payload_len: usize,
) -> Result<[u8; ADTS_HEADER_LEN], AacError> {
    if !(1..=4).contains(&asc.object_type) {
        return Err(AacError::AdtsObjectType(asc.object_type));
    }
    let sfi = asc
        .sampling_frequency_index
        .or_else(|| frequency_index(asc.sampling_frequency))
        .ok_or(AacError::AdtsFrequency(asc.sampling_frequency))?;
    if asc.channel_configuration > 7 {
        return Err(AacError::AdtsChannels(asc.channel_configuration));
    }
    if payload_len > MAX_ADTS_PAYLOAD {
        return Err(AacError::AdtsTooLarge(payload_len));
    }
    let profile = asc.object_type - 1;
    let ch = asc.channel_configuration;
    let len = payload_len + ADTS_HEADER_LEN;
    Ok([
        0xff,
        0xf1, // syncword low bits, ID 0 (MPEG-4), layer 0, protection_absent 1
        (profile << 6) | (sfi << 2) | (ch >> 2),
        ((ch & 3) << 6) | ((len >> 11) as u8 & 0x03),
        (len >> 3) as u8,
        (((len & 7) as u8) << 5) | 0x1f,
        0xfc,
    ])
}

/// The fields of an ADTS header (used to check muxed output and to ingest ADTS streams).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdtsHeader {
    /// Audio object type (`profile + 1`).
    pub object_type: u8,
    /// `sampling_frequency_index`.
    pub sampling_frequency_index: u8,
    /// `channel_configuration`.
    pub channel_configuration: u8,
    /// Whole frame length including the header.
    pub frame_length: usize,
    /// Header length: 7, or 9 with CRC.
    pub header_len: usize,
}

impl AdtsHeader {
    /// Parses an ADTS fixed and variable header from the start of `data`.
    pub fn parse(data: &[u8]) -> Result<Self, AacError> {
        let mut r = BitReader::new(data);
        if r.read_bits(12)? != 0xfff {
            return Err(AacError::AdtsSync);
        }
        r.skip(3)?; // ID, layer
        let protection_absent = r.read_bit()?;
        let profile = r.read_u8(2)?;
        let sampling_frequency_index = r.read_u8(4)?;
        r.skip(1)?; // private_bit
        let channel_configuration = r.read_u8(3)?;
        r.skip(4)?; // original_copy, home, copyright bits
        let frame_length = r.read_bits(13)? as usize;
        Ok(AdtsHeader {
            object_type: profile + 1,
            sampling_frequency_index,
            channel_configuration,
            frame_length,
            header_len: if protection_absent { 7 } else { 9 },
        })
    }
}

/// A tiny MSB-first bit writer for serialising configs.
#[derive(Default)]
struct BitWriter {
    out: Vec<u8>,
    bits: usize,
}

impl BitWriter {
    fn put(&mut self, value: u32, n: usize) {
        for i in (0..n).rev() {
            if self.bits % 8 == 0 {
                self.out.push(0);
            }
            let bit = ((value >> i) & 1) as u8;
            if let Some(last) = self.out.last_mut() {
                *last |= bit << (7 - self.bits % 8);
            }
            self.bits += 1;
        }
    }

    fn finish(self) -> Vec<u8> {
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(bytes: &[u8], want: AudioSpecificConfig) {
        assert_eq!(
            AudioSpecificConfig::parse(bytes).as_ref(),
            Ok(&want),
            "{bytes:02x?}"
        );
    }

    fn lc(index: u8, hz: u32, ch: u8) -> AudioSpecificConfig {
        AudioSpecificConfig {
            object_type: 2,
            sampling_frequency_index: Some(index),
            sampling_frequency: hz,
            channel_configuration: ch,
            sbr_present: false,
            ps_present: false,
            extension_sampling_frequency: None,
            frame_length_flag: false,
        }
    }

    #[test]
    fn asc_table() {
        // Real AudioSpecificConfigs from ffmpeg 5.1.9's native AAC encoder, taken from the
        // FLV AAC sequence header (tag body after `af 00`) of
        // `ffmpeg -f lavfi -i sine=frequency=440:sample_rate=RATE [-ac N] -c:a aac -t 0.3 out.flv`.
        // The `56 e5 00` tail is backward-compatible SBR signalling (sync extension 0x2b7,
        // SBR absent), which is ignored.
        check(&[0x12, 0x08, 0x56, 0xe5, 0x00], lc(4, 44100, 1)); // 44100, mono
        check(&[0x11, 0x90, 0x56, 0xe5, 0x00], lc(3, 48000, 2)); // 48000 -ac 2
        check(&[0x15, 0x88, 0x56, 0xe5, 0x00], lc(11, 8000, 1)); // 8000, mono
        check(&[0x13, 0x90, 0x56, 0xe5, 0x00], lc(7, 22050, 2)); // 22050 -ac 2
        check(&[0x12, 0x30, 0x56, 0xe5, 0x00], lc(4, 44100, 6)); // 44100 -ac 6 (5.1)
                                                                 // Hand-built minimal forms (ISO 14496-3 1.6.2.1 bit layout).
        check(&[0x12, 0x10], lc(4, 44100, 2));
        check(&[0x11, 0x88], lc(3, 48000, 1));
        // Backward-compatible HE-AAC signalling, as fdk-aac writes it: AAC LC 22.05 kHz
        // stereo core, then sync extension 0x2b7, AOT 5, sbrPresentFlag 1, ext index 4.
        let mut bc = lc(7, 22050, 2);
        bc.sbr_present = true;
        bc.extension_sampling_frequency = Some(44100);
        check(&[0x13, 0x90, 0x56, 0xe5, 0xa0], bc.clone());
        assert_eq!(bc.codec_string(), "mp4a.40.5");
        // The same with the PS sync extension 0x548 and psPresentFlag 1 appended.
        let mut bc_ps = bc.clone();
        bc_ps.ps_present = true;
        check(&[0x13, 0x90, 0x56, 0xe5, 0xa5, 0x48, 0x80], bc_ps);
        // Explicit 24-bit rate: index 15 then 0x00ac44 (44100).
        let mut explicit = lc(0, 44100, 2);
        explicit.sampling_frequency_index = None;
        check(&[0x17, 0x80, 0x56, 0x22, 0x10], explicit);
        // HE-AAC explicit: AOT 5, 24 kHz core index 6, stereo, ext index 3 (48 kHz), AOT 2.
        let mut he = lc(6, 24000, 2);
        he.sbr_present = true;
        he.extension_sampling_frequency = Some(48000);
        check(&[0x2b, 0x11, 0x88, 0x00], he.clone());
        // HE-AACv2: AOT 29, same layout, mono core.
        let mut he2 = lc(6, 24000, 1);
        he2.sbr_present = true;
        he2.ps_present = true;
        he2.extension_sampling_frequency = Some(48000);
        check(&[0xeb, 0x09, 0x88, 0x00], he2.clone());
        assert_eq!(he2.codec_string(), "mp4a.40.29");
        assert_eq!(he.codec_string(), "mp4a.40.5");
    }

    #[test]
    fn escaped_object_type_and_errors() {
        // AOT 31 escape + 6 bits 10 -> 42 (USAC), index 3, channels 2.
        let asc = AudioSpecificConfig::parse(&[0xf9, 0x46, 0x40]).unwrap();
        assert_eq!(
            (
                asc.object_type,
                asc.sampling_frequency,
                asc.channel_configuration
            ),
            (42, 48000, 2)
        );
        assert_eq!(
            AudioSpecificConfig::parse(&[0x16, 0x80]),
            Err(AacError::ReservedFrequencyIndex(13))
        );
        assert!(matches!(
            AudioSpecificConfig::parse(&[0x12]),
            Err(AacError::Bits(_))
        ));
        assert!(matches!(
            asc.adts_header(10),
            Err(AacError::AdtsObjectType(42))
        ));
    }

    #[test]
    fn asc_round_trip() {
        for bytes in [[0x12u8, 0x10], [0x11, 0x90], [0x15, 0x88], [0x13, 0x08]] {
            let asc = AudioSpecificConfig::parse(&bytes).unwrap();
            assert_eq!(asc.to_bytes(), bytes.to_vec());
        }
    }

    #[test]
    fn adts_table() {
        // (asc, payload length, expected header). The first two are the first frames of
        // `ffmpeg -i IN.flv -c:a copy -f adts out.aac` for the 48 kHz stereo and 44.1 kHz
        // mono files above, whose first raw frames are 288 and 258 bytes.
        let cases: &[(&[u8], usize, [u8; 7])] = &[
            (
                &[0x11, 0x90, 0x56, 0xe5, 0x00],
                288,
                [0xff, 0xf1, 0x4c, 0x80, 0x24, 0xff, 0xfc],
            ),
            (
                &[0x12, 0x08, 0x56, 0xe5, 0x00],
                258,
                [0xff, 0xf1, 0x50, 0x40, 0x21, 0x3f, 0xfc],
            ),
            (&[0x11, 0x88], 0, [0xff, 0xf1, 0x4c, 0x40, 0x00, 0xff, 0xfc]),
            (
                &[0x12, 0x10],
                MAX_ADTS_PAYLOAD,
                [0xff, 0xf1, 0x50, 0x83, 0xff, 0xff, 0xfc],
            ),
        ];
        for (asc, len, want) in cases {
            let asc = AudioSpecificConfig::parse(asc).unwrap();
            let header = adts_header(&asc, *len).unwrap();
            assert_eq!(&header, want, "asc {asc:?} len {len}");
            let back = AdtsHeader::parse(&header).unwrap();
            assert_eq!(back.frame_length, len + 7);
            assert_eq!(back.object_type, asc.object_type);
            assert_eq!(
                Some(back.sampling_frequency_index),
                asc.sampling_frequency_index
            );
            assert_eq!(back.channel_configuration, asc.channel_configuration);
        }
        let asc = AudioSpecificConfig::parse(&[0x12, 0x10]).unwrap();
        assert_eq!(
            adts_header(&asc, MAX_ADTS_PAYLOAD + 1),
            Err(AacError::AdtsTooLarge(8185))
        );
    }
}

//! Small codec helpers the muxer needs: decoder-configuration parsing, AVCC/HVCC to Annex B,
//! ADTS headers and MPEG audio version detection.
//!
//! These are deliberately local and minimal (the shared `codecs` crate was still being written
//! when this crate was started); each one validates every length against the input it reads.

use crate::MuxError;

/// The Annex B start code written before every NAL unit.
pub const START_CODE: [u8; 4] = [0, 0, 0, 1];
/// An H.264 access unit delimiter (nal_unit_type 9, primary_pic_type 7 = any slice type).
pub const H264_AUD: [u8; 2] = [0x09, 0xF0];
/// An H.265 access unit delimiter (nal_unit_type 35, pic_type 2 = any slice type).
pub const H265_AUD: [u8; 3] = [0x46, 0x01, 0x50];
/// The largest ADTS frame: `frame_length` is a 13-bit field that includes the 7-byte header.
pub const MAX_ADTS_FRAME: usize = (1 << 13) - 1;
/// The ADTS header length without CRC (protection_absent = 1).
pub const ADTS_HEADER_LEN: usize = 7;

/// Parameter sets taken from a decoder configuration record, plus its NAL length size.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParamSets {
    /// Bytes in each NAL unit length prefix of the coded frames (1, 2 or 4).
    pub nal_length_size: usize,
    /// VPS (H.265 only), SPS and PPS NAL units in decoding order, without start codes.
    pub nals: Vec<Vec<u8>>,
}

/// Parses an AVCDecoderConfigurationRecord (ISO/IEC 14496-15 5.3.3.1).
pub fn parse_avcc(rec: &[u8]) -> Result<ParamSets, MuxError> {
    let bad = |what: &'static str| MuxError::BadConfig { codec: "avc", what };
    let header = rec.get(..6).ok_or(bad("record shorter than 6 bytes"))?;
    if header[0] != 1 {
        return Err(bad("configurationVersion is not 1"));
    }
    let nal_length_size = usize::from(header[4] & 0x03) + 1;
    let mut nals = Vec::new();
    let mut rest = &rec[5..];
    for mask in [0x1F, 0xFF] {
        let (&count, tail) = rest
            .split_first()
            .ok_or(bad("missing parameter-set count"))?;
        rest = tail;
        for _ in 0..(count & mask) {
            let (nal, tail) = take_u16_prefixed(rest).ok_or(bad("truncated parameter set"))?;
            nals.push(nal.to_vec());
            rest = tail;
        }
    }
    check_nal_length_size(nal_length_size, "avc")?;
    Ok(ParamSets {
        nal_length_size,
        nals,
    })
}

/// Parses an HEVCDecoderConfigurationRecord (ISO/IEC 14496-15 8.3.3.1), keeping VPS, SPS and
/// PPS arrays (SEI arrays are dropped: they are not needed to start decoding).
pub fn parse_hvcc(rec: &[u8]) -> Result<ParamSets, MuxError> {
    let bad = |what: &'static str| MuxError::BadConfig {
        codec: "hevc",
        what,
    };
    let header = rec.get(..23).ok_or(bad("record shorter than 23 bytes"))?;
    let nal_length_size = usize::from(header[21] & 0x03) + 1;
    let mut rest = &rec[23..];
    let mut nals = Vec::new();
    for _ in 0..header[22] {
        let (hdr, tail) = rest
            .split_first_chunk::<3>()
            .ok_or(bad("truncated NAL array"))?;
        let nal_type = hdr[0] & 0x3F;
        rest = tail;
        for _ in 0..u16::from_be_bytes([hdr[1], hdr[2]]) {
            let (nal, tail) = take_u16_prefixed(rest).ok_or(bad("truncated NAL unit"))?;
            if (32..=34).contains(&nal_type) {
                nals.push(nal.to_vec());
            }
            rest = tail;
        }
    }
    // Keep VPS, SPS, PPS order regardless of array order in the record.
    nals.sort_by_key(|n| n.first().map(|b| (b >> 1) & 0x3F));
    check_nal_length_size(nal_length_size, "hevc")?;
    Ok(ParamSets {
        nal_length_size,
        nals,
    })
}

fn check_nal_length_size(size: usize, codec: &'static str) -> Result<(), MuxError> {
    match size {
        1 | 2 | 4 => Ok(()),
        _ => Err(MuxError::BadConfig {
            codec,
            what: "lengthSizeMinusOne is 2",
        }),
    }
}

fn take_u16_prefixed(buf: &[u8]) -> Option<(&[u8], &[u8])> {
    let (len, rest) = buf.split_first_chunk::<2>()?;
    let len = usize::from(u16::from_be_bytes(*len));
    (rest.len() >= len).then(|| rest.split_at(len))
}

/// Iterates over the NAL units of a length-prefixed (AVCC/HVCC) access unit.
pub struct LengthPrefixedNals<'a> {
    buf: &'a [u8],
    size: usize,
}

impl<'a> LengthPrefixedNals<'a> {
    /// Creates an iterator over `buf` whose NAL lengths take `size` bytes each.
    pub fn new(buf: &'a [u8], size: usize) -> Self {
        LengthPrefixedNals { buf, size }
    }
}

impl<'a> Iterator for LengthPrefixedNals<'a> {
    type Item = Result<&'a [u8], MuxError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.buf.is_empty() {
            return None;
        }
        let Some((len, rest)) = self.buf.split_at_checked(self.size) else {
            self.buf = &[];
            return Some(Err(MuxError::BadFrame("truncated NAL length prefix")));
        };
        let len = len
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        let Some((nal, rest)) = rest.split_at_checked(len) else {
            self.buf = &[];
            return Some(Err(MuxError::BadFrame("NAL length exceeds the frame")));
        };
        self.buf = rest;
        Some(Ok(nal))
    }
}

/// The AAC parameters needed to build ADTS headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AacConfig {
    /// ADTS `profile` (audio object type minus one; 1 = AAC LC).
    pub profile: u8,
    /// The sampling frequency index (ISO/IEC 14496-3 1.6.3.3).
    pub sampling_frequency_index: u8,
    /// The channel configuration (1 = mono, 2 = stereo, ...).
    pub channel_configuration: u8,
}

impl AacConfig {
    /// The sampling rate in Hz, for duration bookkeeping.
    pub fn sample_rate(&self) -> u32 {
        const RATES: [u32; 13] = [
            96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350,
        ];
        RATES
            .get(usize::from(self.sampling_frequency_index))
            .copied()
            .unwrap_or(44100)
    }
}

/// Parses an AudioSpecificConfig (ISO/IEC 14496-3 1.6.2.1) far enough to write ADTS headers.
///
/// HE-AAC (object types 5 and 29, explicit hierarchical signalling) is carried in ADTS as its
/// AAC LC core with the core sampling rate; decoders find SBR/PS implicitly.
pub fn parse_audio_specific_config(asc: &[u8]) -> Result<AacConfig, MuxError> {
    let bad = |what: &'static str| MuxError::BadConfig { codec: "aac", what };
    let mut bits = BitReader::new(asc);
    let mut object_type = bits.read(5).ok_or(bad("truncated AudioSpecificConfig"))?;
    if object_type == 31 {
        object_type = 32 + bits.read(6).ok_or(bad("truncated audioObjectTypeExt"))?;
    }
    let sfi = bits
        .read(4)
        .ok_or(bad("truncated samplingFrequencyIndex"))?;
    if sfi == 15 {
        return Err(bad(
            "explicit sampling frequency cannot be signalled in ADTS",
        ));
    }
    let channels = bits.read(4).ok_or(bad("truncated channelConfiguration"))?;
    if object_type == 5 || object_type == 29 {
        object_type = 2;
    }
    if !(1..=4).contains(&object_type) {
        return Err(bad("audio object type cannot be carried in ADTS"));
    }
    Ok(AacConfig {
        profile: object_type as u8 - 1,
        sampling_frequency_index: sfi as u8,
        channel_configuration: channels as u8,
    })
}

/// Writes the 7-byte ADTS header (ISO/IEC 13818-7 6.2, protection_absent = 1) for a raw AAC
/// frame of `payload_len` bytes.
pub fn adts_header(cfg: &AacConfig, payload_len: usize) -> Result<[u8; 7], MuxError> {
    let len = payload_len + ADTS_HEADER_LEN;
    if len > MAX_ADTS_FRAME {
        return Err(MuxError::BadFrame(
            "AAC frame longer than an ADTS frame can be",
        ));
    }
    let ch = cfg.channel_configuration;
    Ok([
        0xFF,
        0xF1,
        (cfg.profile << 6) | (cfg.sampling_frequency_index << 2) | ((ch >> 2) & 0x01),
        ((ch & 0x03) << 6) | (len >> 11) as u8,
        (len >> 3) as u8,
        (((len & 0x07) as u8) << 5) | 0x1F,
        0xFC,
    ])
}

/// Returns the MPEG-TS stream type for an MPEG audio frame: 0x03 for MPEG-1 Layer III, 0x04
/// for MPEG-2/2.5 (the low sampling rates), or `None` when `frame` does not start with a
/// frame sync (ISO/IEC 11172-3 2.4.2.3).
pub fn mpeg_audio_stream_type(frame: &[u8]) -> Option<u8> {
    match frame {
        [0xFF, b1, ..] if b1 & 0xE0 == 0xE0 => {
            Some(if (b1 >> 3) & 0x03 == 0x03 { 0x03 } else { 0x04 })
        }
        _ => None,
    }
}

/// A big-endian bit reader over a byte slice.
struct BitReader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> BitReader<'a> {
    fn new(buf: &'a [u8]) -> Self {
        BitReader { buf, pos: 0 }
    }

    fn read(&mut self, n: usize) -> Option<u32> {
        let mut v = 0u32;
        for _ in 0..n {
            let byte = self.buf.get(self.pos / 8)?;
            v = (v << 1) | u32::from((byte >> (7 - self.pos % 8)) & 1);
            self.pos += 1;
        }
        Some(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audio_specific_config_table() {
        // (ASC bytes, expected (profile, sampling index, channels))
        type Case = (&'static [u8], Option<(u8, u8, u8)>);
        let table: &[Case] = &[
            (&[0x12, 0x10], Some((1, 4, 2))), // AAC LC 44.1 kHz stereo
            (&[0x11, 0x90], Some((1, 3, 2))), // AAC LC 48 kHz stereo
            (&[0x13, 0x08], Some((1, 6, 1))), // AAC LC 24 kHz mono
            (&[0x2B, 0x92, 0x08, 0x00], Some((1, 7, 2))), // HE-AAC: core 22.05 kHz
            (&[0x12], None),
            (&[0x17, 0x80, 0, 0, 0], None), // explicit frequency
            (&[], None),
        ];
        for (asc, want) in table {
            let got = parse_audio_specific_config(asc).ok().map(|c| {
                (
                    c.profile,
                    c.sampling_frequency_index,
                    c.channel_configuration,
                )
            });
            assert_eq!(got, *want, "asc {asc:02x?}");
        }
    }

    #[test]
    fn adts_header_worked_example() {
        // A 371-byte AAC LC 44.1 kHz stereo frame, worked out by hand from ISO/IEC 13818-7 6.2.
        let cfg = parse_audio_specific_config(&[0x12, 0x10]).unwrap();
        assert_eq!(
            adts_header(&cfg, 364).unwrap(),
            [0xFF, 0xF1, 0x50, 0x80, 0x2E, 0x7F, 0xFC]
        );
        assert!(adts_header(&cfg, MAX_ADTS_FRAME).is_err());
    }

    #[test]
    fn avcc_parses_and_rejects_truncation() {
        let rec = [
            1, 0x64, 0, 0x1E, 0xFF, 0xE1, 0, 3, 0x67, 0x64, 0, 1, 0, 2, 0x68, 0xEE,
        ];
        let ps = parse_avcc(&rec).unwrap();
        assert_eq!(ps.nal_length_size, 4);
        assert_eq!(ps.nals, vec![vec![0x67, 0x64, 0], vec![0x68, 0xEE]]);
        for cut in 0..rec.len() {
            assert!(parse_avcc(&rec[..cut]).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn hvcc_keeps_parameter_sets_in_order() {
        let mut rec = vec![1u8; 21];
        rec.push(0x0F); // lengthSizeMinusOne = 3
        rec.push(3); // numOfArrays
        for (ty, nal) in [(34u8, [0x44, 0x01]), (32, [0x40, 0x01]), (33, [0x42, 0x01])] {
            rec.extend([0x80 | ty, 0, 1, 0, 2]);
            rec.extend(nal);
        }
        let ps = parse_hvcc(&rec).unwrap();
        assert_eq!(ps.nals, vec![vec![0x40, 1], vec![0x42, 1], vec![0x44, 1]]);
        assert!(parse_hvcc(&rec[..rec.len() - 1]).is_err());
    }

    #[test]
    fn length_prefixed_nals_reports_truncation() {
        let frame = [0, 0, 0, 2, 0x65, 0x88, 0, 0, 0, 9, 0x41];
        let got: Vec<_> = LengthPrefixedNals::new(&frame, 4).collect();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].as_ref().unwrap(), &[0x65, 0x88]);
        assert!(got[1].is_err());
    }

    #[test]
    fn mpeg_audio_versions() {
        assert_eq!(mpeg_audio_stream_type(&[0xFF, 0xFB, 0x90]), Some(0x03)); // MPEG-1 L3
        assert_eq!(mpeg_audio_stream_type(&[0xFF, 0xF3, 0x90]), Some(0x04)); // MPEG-2 L3
        assert_eq!(mpeg_audio_stream_type(&[0xFF, 0xE3, 0x90]), Some(0x04)); // MPEG-2.5 L3
        assert_eq!(mpeg_audio_stream_type(&[0x00, 0xFB]), None);
    }
}

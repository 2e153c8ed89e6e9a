//! What the muxer needs from the `codecs` crate, in the shape the muxer uses: parameter sets
//! from decoder configuration records, ADTS-capable AAC configurations, and the MPEG-TS stream
//! type of MPEG audio.

use bytes::Bytes;
use codecs::mp3::MpegVersion;
use codecs::{AudioSpecificConfig, AvcDecoderConfig, HevcDecoderConfig, Mp3FrameHeader};

use crate::MuxError;

/// The Annex B start code written before every NAL unit.
pub const START_CODE: [u8; 4] = codecs::nal::START_CODE;
/// An H.264 access unit delimiter (nal_unit_type 9, primary_pic_type 7 = any slice type).
pub const H264_AUD: [u8; 2] = [0x09, 0xF0];
/// An H.265 access unit delimiter (nal_unit_type 35, pic_type 2 = any slice type).
pub const H265_AUD: [u8; 3] = [0x46, 0x01, 0x50];

/// Parameter sets taken from a decoder configuration record, plus its NAL length size.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParamSets {
    /// Bytes in each NAL unit length prefix of the coded frames (1, 2 or 4).
    pub nal_length_size: u8,
    /// VPS (H.265 only), SPS and PPS NAL units in decoding order, without start codes.
    pub nals: Vec<Bytes>,
}

/// Takes the SPS and PPS of an AVCDecoderConfigurationRecord (ISO/IEC 14496-15 5.3.3.1).
pub fn parse_avcc(rec: &[u8]) -> Result<ParamSets, MuxError> {
    let cfg = AvcDecoderConfig::parse(rec).map_err(|e| bad_config("avc", e))?;
    check_nal_length_size(cfg.nal_length_size, "avc")?;
    let nals = cfg.sps.into_iter().chain(cfg.pps).collect();
    Ok(ParamSets {
        nal_length_size: cfg.nal_length_size,
        nals,
    })
}

/// Takes the VPS, SPS and PPS of an HEVCDecoderConfigurationRecord (ISO/IEC 14496-15
/// 8.3.3.1), in that order whatever the array order in the record; SEI arrays are dropped,
/// they are not needed to start decoding.
pub fn parse_hvcc(rec: &[u8]) -> Result<ParamSets, MuxError> {
    let cfg = HevcDecoderConfig::parse(rec).map_err(|e| bad_config("hevc", e))?;
    check_nal_length_size(cfg.nal_length_size, "hevc")?;
    let mut arrays: Vec<_> = cfg
        .arrays
        .into_iter()
        .filter(|a| (32..=34).contains(&a.nal_type))
        .collect();
    arrays.sort_by_key(|a| a.nal_type);
    let nals = arrays.into_iter().flat_map(|a| a.nals).collect();
    Ok(ParamSets {
        nal_length_size: cfg.nal_length_size,
        nals,
    })
}

fn check_nal_length_size(size: u8, codec: &'static str) -> Result<(), MuxError> {
    match size {
        1 | 2 | 4 => Ok(()),
        _ => Err(MuxError::BadConfig {
            codec,
            reason: "lengthSizeMinusOne is 2".into(),
        }),
    }
}

fn bad_config(codec: &'static str, e: impl std::fmt::Display) -> MuxError {
    MuxError::BadConfig {
        codec,
        reason: e.to_string(),
    }
}

/// Parses an AudioSpecificConfig and checks that ADTS can carry it (object types 1 to 4, an
/// indexed sampling rate), so a bad configuration fails once, not on every frame.
pub fn parse_audio_specific_config(asc: &[u8]) -> Result<AudioSpecificConfig, MuxError> {
    let cfg = AudioSpecificConfig::parse(asc).map_err(|e| bad_config("aac", e))?;
    cfg.adts_header(0).map_err(|e| bad_config("aac", e))?;
    Ok(cfg)
}

/// Returns the MPEG-TS stream type for an MPEG audio frame: 0x03 for MPEG-1, 0x04 for the
/// MPEG-2 low sampling rates (and MPEG-2.5), or `None` when `frame` has no valid header.
pub fn mpeg_audio_stream_type(frame: &[u8]) -> Option<u8> {
    match Mp3FrameHeader::parse(frame).ok()?.version {
        MpegVersion::Mpeg1 => Some(0x03),
        _ => Some(0x04),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aac_configs_adts_can_or_cannot_carry() {
        // (ASC bytes, whether ADTS can carry it)
        let table: &[(&[u8], bool)] = &[
            (&[0x12, 0x10], true),             // AAC LC 44.1 kHz stereo
            (&[0x2B, 0x92, 0x08, 0x00], true), // HE-AAC, explicit: core AAC LC 22.05 kHz
            (&[0x17, 0x80, 0, 0, 0], false),   // explicit 24-bit sampling frequency
            (&[0xF8, 0x80], false),            // escape object type
            (&[0x12], false),
        ];
        for (asc, ok) in table {
            assert_eq!(
                parse_audio_specific_config(asc).is_ok(),
                *ok,
                "asc {asc:02x?}"
            );
        }
    }

    #[test]
    fn avcc_keeps_sps_then_pps_and_rejects_truncation() {
        let rec = [
            1, 0x64, 0, 0x1E, 0xFF, 0xE1, 0, 3, 0x67, 0x64, 0, 1, 0, 2, 0x68, 0xEE,
        ];
        let ps = parse_avcc(&rec).unwrap();
        assert_eq!(ps.nal_length_size, 4);
        assert_eq!(
            ps.nals,
            vec![
                Bytes::from_static(&[0x67, 0x64, 0]),
                Bytes::from_static(&[0x68, 0xEE])
            ]
        );
        for cut in 0..rec.len() {
            assert!(parse_avcc(&rec[..cut]).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn hvcc_orders_parameter_sets() {
        let mut rec = vec![1u8; 21];
        rec.push(0x0F); // lengthSizeMinusOne = 3
        rec.push(3); // numOfArrays
        for (ty, nal) in [(34u8, [0x44, 0x01]), (32, [0x40, 0x01]), (33, [0x42, 0x01])] {
            rec.extend([0x80 | ty, 0, 1, 0, 2]);
            rec.extend(nal);
        }
        let ps = parse_hvcc(&rec).unwrap();
        let firsts: Vec<u8> = ps.nals.iter().map(|n| n[0]).collect();
        assert_eq!(firsts, vec![0x40, 0x42, 0x44]);
        assert!(parse_hvcc(&rec[..rec.len() - 1]).is_err());
    }

    #[test]
    fn mpeg_audio_versions() {
        assert_eq!(
            mpeg_audio_stream_type(&[0xFF, 0xFB, 0x90, 0x64]),
            Some(0x03)
        ); // MPEG-1 L3
        assert_eq!(
            mpeg_audio_stream_type(&[0xFF, 0xF3, 0x90, 0x64]),
            Some(0x04)
        ); // MPEG-2 L3
        assert_eq!(
            mpeg_audio_stream_type(&[0xFF, 0xE3, 0x90, 0x64]),
            Some(0x04)
        ); // MPEG-2.5 L3
        assert_eq!(mpeg_audio_stream_type(&[0x00, 0xFB, 0x90, 0x64]), None);
    }
}

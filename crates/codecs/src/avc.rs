//! H.264 / AVC: the decoder configuration record (`avcC`), SPS fields that egress needs
//! (size, profile, level, frame rate), NAL type helpers and Annex B conversion for MPEG-TS.

use bytes::{Bytes, BytesMut};
use thiserror::Error;

use crate::bits::{unescape_rbsp, BitError, BitReader};
pub use crate::nal::{nal_units, NalError, NalUnits};
use crate::nal::{write_annex_b, write_length_prefixed};

/// NAL unit type of a non-IDR coded slice (H.264 Table 7-1).
pub const NAL_SLICE: u8 = 1;
/// NAL unit type of an IDR coded slice.
pub const NAL_IDR: u8 = 5;
/// NAL unit type of supplemental enhancement information.
pub const NAL_SEI: u8 = 6;
/// NAL unit type of a sequence parameter set.
pub const NAL_SPS: u8 = 7;
/// NAL unit type of a picture parameter set.
pub const NAL_PPS: u8 = 8;
/// NAL unit type of an access unit delimiter.
pub const NAL_AUD: u8 = 9;
/// NAL unit type of end of sequence.
pub const NAL_END_OF_SEQUENCE: u8 = 10;
/// NAL unit type of a sequence parameter set extension.
pub const NAL_SPS_EXT: u8 = 13;

/// An access unit delimiter NAL unit with `primary_pic_type` 7 ("any slice type"), as
/// MPEG-TS muxers put at the start of every access unit (ISO 13818-1 2.14 requires it
/// for AVC in TS; ffmpeg and x264 write these same two bytes).
pub const AUD_NAL: [u8; 2] = [0x09, 0xf0];

/// The largest SPS (after unescaping) this module will parse; real ones are under 100 bytes.
pub const MAX_SPS_LEN: usize = 4096;

/// The largest picture dimension in macroblocks accepted from an SPS (level 6.2 allows
/// 139,264 macroblocks per frame, far under this bound for either axis).
const MAX_DIMENSION_MBS: u32 = 1 << 12;

/// An error while parsing H.264 configuration or parameter sets.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum AvcError {
    /// The AVCDecoderConfigurationRecord ended early.
    #[error("avcC truncated at byte {offset}: {field} needs {need} bytes, {have} left")]
    ConfigTruncated {
        /// Byte offset where the field starts.
        offset: usize,
        /// Which field was being read.
        field: &'static str,
        /// Bytes the field needs.
        need: usize,
        /// Bytes left.
        have: usize,
    },
    /// The record's `configurationVersion` is not 1.
    #[error("avcC configurationVersion {0} is not 1")]
    ConfigVersion(u8),
    /// The NAL unit given as an SPS is not one.
    #[error("expected an SPS NAL unit (type 7), got type {0}")]
    NotSps(u8),
    /// The NAL unit is empty.
    #[error("empty NAL unit")]
    EmptyNal,
    /// The SPS is larger than [`MAX_SPS_LEN`].
    #[error("SPS of {0} bytes exceeds the {MAX_SPS_LEN}-byte limit")]
    SpsTooLarge(usize),
    /// An SPS field is out of its allowed range.
    #[error("SPS field {field} = {value} is out of range")]
    SpsRange {
        /// The syntax element name from H.264 7.3.2.1.1.
        field: &'static str,
        /// The value read.
        value: u32,
    },
    /// The SPS bitstream ended early or held an oversized code.
    #[error("SPS bitstream: {0}")]
    Bits(#[from] BitError),
    /// NAL unit framing of a sample is broken.
    #[error(transparent)]
    Nal(#[from] NalError),
}

/// Returns the `nal_unit_type` of a NAL unit (its first byte's low five bits).
pub fn nal_type(nal: &[u8]) -> Option<u8> {
    nal.first().map(|b| b & 0x1f)
}

/// Returns whether the NAL unit is an IDR slice.
pub fn is_idr(nal: &[u8]) -> bool {
    nal_type(nal) == Some(NAL_IDR)
}

/// Returns whether the NAL unit is a sequence parameter set.
pub fn is_sps(nal: &[u8]) -> bool {
    nal_type(nal) == Some(NAL_SPS)
}

/// Returns whether the NAL unit is a picture parameter set.
pub fn is_pps(nal: &[u8]) -> bool {
    nal_type(nal) == Some(NAL_PPS)
}

/// Returns whether the NAL unit is an access unit delimiter.
pub fn is_aud(nal: &[u8]) -> bool {
    nal_type(nal) == Some(NAL_AUD)
}

/// Returns whether the NAL unit is SEI.
pub fn is_sei(nal: &[u8]) -> bool {
    nal_type(nal) == Some(NAL_SEI)
}

/// The AVCDecoderConfigurationRecord (ISO 14496-15 5.3.3.1, historically 5.2.4.1), the
/// body of an FLV AVC sequence header and of an MP4 `avcC` box.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AvcDecoderConfig {
    /// `AVCProfileIndication` (the SPS `profile_idc`).
    pub profile_indication: u8,
    /// `profile_compatibility` (the SPS constraint flags byte).
    pub profile_compatibility: u8,
    /// `AVCLevelIndication` (the SPS `level_idc`).
    pub level_indication: u8,
    /// Bytes in each NAL length prefix of a sample (`lengthSizeMinusOne + 1`).
    pub nal_length_size: u8,
    /// Sequence parameter set NAL units, headers included.
    pub sps: Vec<Bytes>,
    /// Picture parameter set NAL units, headers included.
    pub pps: Vec<Bytes>,
    /// High-profile extension fields, when the record carries them.
    pub ext: Option<AvcConfigExt>,
}

/// The extension of an AVCDecoderConfigurationRecord for profiles 100, 110, 122 and 144.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AvcConfigExt {
    /// `chroma_format` (0 monochrome, 1 4:2:0, 2 4:2:2, 3 4:4:4).
    pub chroma_format: u8,
    /// `bit_depth_luma_minus8 + 8`.
    pub bit_depth_luma: u8,
    /// `bit_depth_chroma_minus8 + 8`.
    pub bit_depth_chroma: u8,
    /// Sequence parameter set extension NAL units.
    pub sps_ext: Vec<Bytes>,
}

/// A cursor over a configuration record that reports truncation with context.
struct ByteCursor<'a> {
    data: &'a Bytes,
    pos: usize,
}

impl<'a> ByteCursor<'a> {
    fn take(&mut self, n: usize, field: &'static str) -> Result<Bytes, AvcError> {
        let have = self.data.len() - self.pos;
        if have < n {
            return Err(AvcError::ConfigTruncated {
                offset: self.pos,
                field,
                need: n,
                have,
            });
        }
        let out = self.data.slice(self.pos..self.pos + n);
        self.pos += n;
        Ok(out)
    }

    fn u8(&mut self, field: &'static str) -> Result<u8, AvcError> {
        Ok(self.take(1, field)?[0])
    }

    fn u16(&mut self, field: &'static str) -> Result<u16, AvcError> {
        let b = self.take(2, field)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    /// Reads `count` NAL units each prefixed by a 16-bit length.
    fn nal_list(&mut self, count: usize, field: &'static str) -> Result<Vec<Bytes>, AvcError> {
        let mut out = Vec::with_capacity(count);
        for _ in 0..count {
            let len = self.u16(field)?;
            out.push(self.take(usize::from(len), field)?);
        }
        Ok(out)
    }

    fn remaining(&self) -> usize {
        self.data.len() - self.pos
    }
}

impl AvcDecoderConfig {
    /// Parses a record, copying it once so the parameter sets can be `Bytes`.
    pub fn parse(data: &[u8]) -> Result<Self, AvcError> {
        Self::parse_bytes(&Bytes::copy_from_slice(data))
    }

    /// Parses a record; the parameter sets are zero-copy slices of `data`.
    ///
    /// A missing or truncated high-profile extension is tolerated (ffmpeg and some
    /// encoders omit it) and yields `ext: None`.
    pub fn parse_bytes(data: &Bytes) -> Result<Self, AvcError> {
        let mut c = ByteCursor { data, pos: 0 };
        let version = c.u8("configurationVersion")?;
        if version != 1 {
            return Err(AvcError::ConfigVersion(version));
        }
        let profile_indication = c.u8("AVCProfileIndication")?;
        let profile_compatibility = c.u8("profile_compatibility")?;
        let level_indication = c.u8("AVCLevelIndication")?;
        let nal_length_size = (c.u8("lengthSizeMinusOne")? & 0x03) + 1;
        let num_sps = usize::from(c.u8("numOfSequenceParameterSets")? & 0x1f);
        let sps = c.nal_list(num_sps, "sequenceParameterSetNALUnit")?;
        let num_pps = usize::from(c.u8("numOfPictureParameterSets")?);
        let pps = c.nal_list(num_pps, "pictureParameterSetNALUnit")?;
        let ext = if has_config_ext(profile_indication) && c.remaining() >= 4 {
            parse_ext(&mut c).ok()
        } else {
            None
        };
        Ok(AvcDecoderConfig {
            profile_indication,
            profile_compatibility,
            level_indication,
            nal_length_size,
            sps,
            pps,
            ext,
        })
    }

    /// Serialises the record (the inverse of [`parse`](Self::parse)).
    ///
    /// Parameter sets longer than 65,535 bytes or lists longer than the record's count
    /// fields allow are cut to fit; no real encoder produces them.
    pub fn to_bytes(&self) -> Bytes {
        let mut out = Vec::with_capacity(
            16 + self
                .sps
                .iter()
                .chain(&self.pps)
                .map(|s| s.len() + 2)
                .sum::<usize>(),
        );
        out.extend_from_slice(&[
            1,
            self.profile_indication,
            self.profile_compatibility,
            self.level_indication,
            0xfc | (self.nal_length_size.clamp(1, 4) - 1),
            0xe0 | self.sps.len().min(31) as u8,
        ]);
        put_nal_list(&mut out, self.sps.iter().take(31));
        out.push(self.pps.len().min(255) as u8);
        put_nal_list(&mut out, self.pps.iter().take(255));
        if let Some(ext) = &self.ext {
            out.push(0xfc | (ext.chroma_format & 3));
            out.push(0xf8 | (ext.bit_depth_luma.saturating_sub(8) & 7));
            out.push(0xf8 | (ext.bit_depth_chroma.saturating_sub(8) & 7));
            out.push(ext.sps_ext.len().min(255) as u8);
            put_nal_list(&mut out, ext.sps_ext.iter().take(255));
        }
        Bytes::from(out)
    }

    /// Parses the first SPS of the record.
    pub fn sps_info(&self) -> Result<SpsInfo, AvcError> {
        let sps = self.sps.first().ok_or(AvcError::EmptyNal)?;
        SpsInfo::parse(sps)
    }

    /// Returns the RFC 6381 codec string, e.g. `avc1.64001f`, for HLS `CODECS` and DASH.
    pub fn codec_string(&self) -> String {
        format!(
            "avc1.{:02x}{:02x}{:02x}",
            self.profile_indication, self.profile_compatibility, self.level_indication
        )
    }
}

/// Profiles whose records may carry the extension fields. ISO 14496-15 5.3.3.1.1 lists
/// 100, 110, 122 and 144; ffmpeg 5.1 also writes them for every other non-Baseline/Main/
/// Extended profile (e.g. 244, High 4:4:4 Predictive), so any such profile is accepted.
fn has_config_ext(profile: u8) -> bool {
    !matches!(profile, 66 | 77 | 88)
}

fn parse_ext(c: &mut ByteCursor<'_>) -> Result<AvcConfigExt, AvcError> {
    let chroma_format = c.u8("chroma_format")? & 0x03;
    let bit_depth_luma = (c.u8("bit_depth_luma_minus8")? & 0x07) + 8;
    let bit_depth_chroma = (c.u8("bit_depth_chroma_minus8")? & 0x07) + 8;
    let n = usize::from(c.u8("numOfSequenceParameterSetExt")?);
    let sps_ext = c.nal_list(n, "sequenceParameterSetExtNALUnit")?;
    Ok(AvcConfigExt {
        chroma_format,
        bit_depth_luma,
        bit_depth_chroma,
        sps_ext,
    })
}

fn put_nal_list<'a>(out: &mut Vec<u8>, nals: impl Iterator<Item = &'a Bytes>) {
    for nal in nals {
        let n = &nal[..nal.len().min(usize::from(u16::MAX))];
        out.extend_from_slice(&(n.len() as u16).to_be_bytes());
        out.extend_from_slice(n);
    }
}

/// The fields of an H.264 sequence parameter set that egress needs (H.264 7.3.2.1.1).
#[derive(Debug, Clone, PartialEq)]
pub struct SpsInfo {
    /// `profile_idc`.
    pub profile_idc: u8,
    /// The constraint flags byte (`constraint_set0_flag` .. `reserved_zero_2bits`).
    pub constraint_flags: u8,
    /// `level_idc` (e.g. 31 for level 3.1).
    pub level_idc: u8,
    /// `seq_parameter_set_id`.
    pub sps_id: u32,
    /// `chroma_format_idc` (1 = 4:2:0 when absent).
    pub chroma_format_idc: u32,
    /// Luma bit depth.
    pub bit_depth_luma: u32,
    /// Chroma bit depth.
    pub bit_depth_chroma: u32,
    /// Whether every picture is a frame (no field coding).
    pub frame_mbs_only: bool,
    /// Displayed width in pixels, after the cropping rectangle.
    pub width: u32,
    /// Displayed height in pixels, after the cropping rectangle.
    pub height: u32,
    /// VUI timing: `num_units_in_tick` and `time_scale`, when present and non-zero.
    pub timing: Option<(u32, u32)>,
    /// Frame rate from VUI timing (`time_scale / (2 * num_units_in_tick)`), when present.
    pub frame_rate: Option<f64>,
}

/// Profiles whose SPS carries `chroma_format_idc`, bit depths and scaling lists.
fn has_chroma_info(profile_idc: u8) -> bool {
    matches!(
        profile_idc,
        100 | 110 | 122 | 244 | 44 | 83 | 86 | 118 | 128 | 138 | 139 | 134 | 135
    )
}

impl SpsInfo {
    /// Parses an SPS NAL unit (header byte included, emulation prevention still in).
    pub fn parse(nal: &[u8]) -> Result<Self, AvcError> {
        let ty = nal_type(nal).ok_or(AvcError::EmptyNal)?;
        if ty != NAL_SPS {
            return Err(AvcError::NotSps(ty));
        }
        if nal.len() > MAX_SPS_LEN {
            return Err(AvcError::SpsTooLarge(nal.len()));
        }
        let rbsp = unescape_rbsp(&nal[1..]);
        let mut r = BitReader::new(&rbsp);
        parse_sps_rbsp(&mut r)
    }

    /// Returns the RFC 6184 `profile-level-id` (hex of profile, constraints, level).
    pub fn profile_level_id(&self) -> String {
        format!(
            "{:02x}{:02x}{:02x}",
            self.profile_idc, self.constraint_flags, self.level_idc
        )
    }
}

fn parse_sps_rbsp(r: &mut BitReader<'_>) -> Result<SpsInfo, AvcError> {
    let profile_idc = r.read_u8(8)?;
    let constraint_flags = r.read_u8(8)?;
    let level_idc = r.read_u8(8)?;
    let sps_id = r.read_ue()?;
    let chroma = read_chroma_info(r, profile_idc)?;
    let _log2_max_frame_num_minus4 = r.read_ue()?;
    skip_pic_order_cnt(r)?;
    let _max_num_ref_frames = r.read_ue()?;
    let _gaps_in_frame_num_allowed = r.read_bit()?;
    let width_mbs = checked_dim(r.read_ue()?, "pic_width_in_mbs_minus1")?;
    let height_units = checked_dim(r.read_ue()?, "pic_height_in_map_units_minus1")?;
    let frame_mbs_only = r.read_bit()?;
    if !frame_mbs_only {
        let _mb_adaptive_frame_field = r.read_bit()?;
    }
    let _direct_8x8_inference = r.read_bit()?;
    let crop = read_crop(r)?;
    let (width, height) = cropped_size(width_mbs, height_units, frame_mbs_only, &chroma, crop)?;
    // VUI problems must not hide the picture size, so timing is best-effort.
    let timing = if r.read_bit().unwrap_or(false) {
        read_vui_timing(r).ok().flatten()
    } else {
        None
    };
    Ok(SpsInfo {
        profile_idc,
        constraint_flags,
        level_idc,
        sps_id,
        chroma_format_idc: chroma.format_idc,
        bit_depth_luma: chroma.bit_depth_luma,
        bit_depth_chroma: chroma.bit_depth_chroma,
        frame_mbs_only,
        width,
        height,
        timing,
        frame_rate: timing.map(|(units, scale)| f64::from(scale) / (2.0 * f64::from(units))),
    })
}

struct ChromaInfo {
    format_idc: u32,
    separate_colour_plane: bool,
    bit_depth_luma: u32,
    bit_depth_chroma: u32,
}

fn read_chroma_info(r: &mut BitReader<'_>, profile_idc: u8) -> Result<ChromaInfo, AvcError> {
    let mut info = ChromaInfo {
        format_idc: 1,
        separate_colour_plane: false,
        bit_depth_luma: 8,
        bit_depth_chroma: 8,
    };
    if !has_chroma_info(profile_idc) {
        return Ok(info);
    }
    info.format_idc = r.read_ue()?;
    if info.format_idc > 3 {
        return Err(AvcError::SpsRange {
            field: "chroma_format_idc",
            value: info.format_idc,
        });
    }
    if info.format_idc == 3 {
        info.separate_colour_plane = r.read_bit()?;
    }
    info.bit_depth_luma = bit_depth(r.read_ue()?, "bit_depth_luma_minus8")?;
    info.bit_depth_chroma = bit_depth(r.read_ue()?, "bit_depth_chroma_minus8")?;
    let _qpprime_y_zero_transform_bypass = r.read_bit()?;
    if r.read_bit()? {
        let lists = if info.format_idc == 3 { 12 } else { 8 };
        for i in 0..lists {
            if r.read_bit()? {
                skip_scaling_list(r, if i < 6 { 16 } else { 64 })?;
            }
        }
    }
    Ok(info)
}

fn bit_depth(minus8: u32, field: &'static str) -> Result<u32, AvcError> {
    if minus8 > 6 {
        return Err(AvcError::SpsRange {
            field,
            value: minus8,
        });
    }
    Ok(minus8 + 8)
}

/// Skips a `scaling_list()` (H.264 7.3.2.1.1.1); its values do not matter here.
fn skip_scaling_list(r: &mut BitReader<'_>, size: usize) -> Result<(), AvcError> {
    let mut last = 8i32;
    let mut next = 8i32;
    for _ in 0..size {
        if next != 0 {
            let delta = r.read_se()?;
            // delta_scale is in -128..=127 in a valid stream; any se(v) may arrive.
            next = (i64::from(last) + i64::from(delta)).rem_euclid(256) as i32;
        }
        if next != 0 {
            last = next;
        }
    }
    Ok(())
}

fn skip_pic_order_cnt(r: &mut BitReader<'_>) -> Result<(), AvcError> {
    match r.read_ue()? {
        0 => {
            let _log2_max_pic_order_cnt_lsb_minus4 = r.read_ue()?;
        }
        1 => {
            let _delta_pic_order_always_zero = r.read_bit()?;
            let _offset_for_non_ref_pic = r.read_se()?;
            let _offset_for_top_to_bottom_field = r.read_se()?;
            let cycle = r.read_ue()?;
            if cycle > 255 {
                return Err(AvcError::SpsRange {
                    field: "num_ref_frames_in_pic_order_cnt_cycle",
                    value: cycle,
                });
            }
            for _ in 0..cycle {
                let _offset_for_ref_frame = r.read_se()?;
            }
        }
        2 => {}
        other => {
            return Err(AvcError::SpsRange {
                field: "pic_order_cnt_type",
                value: other,
            })
        }
    }
    Ok(())
}

fn checked_dim(minus1: u32, field: &'static str) -> Result<u32, AvcError> {
    if minus1 >= MAX_DIMENSION_MBS {
        return Err(AvcError::SpsRange {
            field,
            value: minus1,
        });
    }
    Ok(minus1 + 1)
}

/// `frame_crop_{left,right,top,bottom}_offset`, zero when cropping is off.
type Crop = [u32; 4];

fn read_crop(r: &mut BitReader<'_>) -> Result<Crop, AvcError> {
    if !r.read_bit()? {
        return Ok([0; 4]);
    }
    Ok([r.read_ue()?, r.read_ue()?, r.read_ue()?, r.read_ue()?])
}

/// Applies the cropping rectangle with the units of H.264 equations 7-19 to 7-22.
fn cropped_size(
    width_mbs: u32,
    height_units: u32,
    frame_mbs_only: bool,
    chroma: &ChromaInfo,
    crop: Crop,
) -> Result<(u32, u32), AvcError> {
    let field_factor: u32 = if frame_mbs_only { 1 } else { 2 };
    let chroma_array_type = if chroma.separate_colour_plane {
        0
    } else {
        chroma.format_idc
    };
    let (sub_w, sub_h): (u32, u32) = match chroma_array_type {
        1 => (2, 2),
        2 => (2, 1),
        _ => (1, 1),
    };
    let (unit_x, unit_y) = if chroma_array_type == 0 {
        (1, field_factor)
    } else {
        (sub_w, sub_h * field_factor)
    };
    let full_w = width_mbs * 16;
    let full_h = height_units * 16 * field_factor;
    let crop_w = u64::from(unit_x) * (u64::from(crop[0]) + u64::from(crop[1]));
    let crop_h = u64::from(unit_y) * (u64::from(crop[2]) + u64::from(crop[3]));
    if crop_w >= u64::from(full_w) || crop_h >= u64::from(full_h) {
        return Err(AvcError::SpsRange {
            field: "frame_crop_offset",
            value: crop.iter().copied().max().unwrap_or(0),
        });
    }
    // Both crops are below the full size, which fits u32, so the casts are lossless.
    Ok((full_w - crop_w as u32, full_h - crop_h as u32))
}

/// Reads the VUI up to `timing_info` (H.264 E.1.1) and returns it when present.
fn read_vui_timing(r: &mut BitReader<'_>) -> Result<Option<(u32, u32)>, AvcError> {
    if r.read_bit()? {
        // aspect_ratio_idc 255 is Extended_SAR with explicit width and height.
        if r.read_u8(8)? == 255 {
            r.skip(32)?;
        }
    }
    if r.read_bit()? {
        let _overscan_appropriate = r.read_bit()?;
    }
    if r.read_bit()? {
        r.skip(4)?; // video_format, video_full_range_flag
        if r.read_bit()? {
            r.skip(24)?; // colour_primaries, transfer_characteristics, matrix_coefficients
        }
    }
    if r.read_bit()? {
        let _top = r.read_ue()?;
        let _bottom = r.read_ue()?;
    }
    if !r.read_bit()? {
        return Ok(None);
    }
    let units = r.read_bits(32)?;
    let scale = r.read_bits(32)?;
    Ok((units != 0 && scale != 0).then_some((units, scale)))
}

/// What [`access_unit_to_annex_b`] wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccessUnitInfo {
    /// The access unit contains an IDR slice.
    pub idr: bool,
    /// Parameter sets from the configuration were inserted before the IDR.
    pub inserted_parameter_sets: bool,
    /// NAL units written, the inserted AUD and parameter sets included.
    pub nal_count: usize,
}

/// Converts one length-prefixed access unit (an FLV AVC frame payload) to Annex B for
/// MPEG-TS: an AUD first, then, when the unit holds an IDR but no SPS, the configuration's
/// SPS and PPS, then the unit's own NAL units minus any AUDs it carried.
///
/// This is the layout Apple's HLS authoring spec and ISO 13818-1 2.14 expect; players
/// joining at a segment start need the parameter sets in-band.
pub fn access_unit_to_annex_b(
    sample: &Bytes,
    config: &AvcDecoderConfig,
    out: &mut BytesMut,
) -> Result<AccessUnitInfo, AvcError> {
    let mut idr = false;
    let mut has_sps = false;
    for nal in nal_units(sample, config.nal_length_size) {
        let nal = nal?;
        idr |= is_idr(&nal);
        has_sps |= is_sps(&nal);
    }
    write_annex_b(out, &AUD_NAL);
    let mut info = AccessUnitInfo {
        idr,
        inserted_parameter_sets: idr && !has_sps,
        nal_count: 1,
    };
    if info.inserted_parameter_sets {
        for ps in config.sps.iter().chain(&config.pps) {
            write_annex_b(out, ps);
            info.nal_count += 1;
        }
    }
    // Framing was validated by the first pass, so errors cannot appear here.
    for nal in nal_units(sample, config.nal_length_size).flatten() {
        if !is_aud(&nal) {
            write_annex_b(out, &nal);
            info.nal_count += 1;
        }
    }
    Ok(info)
}

/// Converts Annex B NAL units to one length-prefixed sample with 4-byte prefixes, dropping
/// AUDs and (when `strip_parameter_sets`) SPS/PPS, which FLV carries in the sequence header.
pub fn annex_b_to_sample<'a>(
    nals: impl IntoIterator<Item = &'a [u8]>,
    strip_parameter_sets: bool,
) -> Bytes {
    let mut out = BytesMut::new();
    for nal in nals {
        let skip = is_aud(nal) || (strip_parameter_sets && (is_sps(nal) || is_pps(nal)));
        if !skip && !nal.is_empty() {
            // A 4-byte prefix fits any unit under 4 GiB; larger cannot come from one frame.
            let _ = write_length_prefixed(&mut out, nal, 4);
        }
    }
    out.freeze()
}

#[cfg(test)]
mod tests {
    /// Found by the `codec_config` fuzz target: a scaling list's delta is any se(v) on the
    /// wire, and adding it to the previous scale overflowed.
    #[test]
    fn a_huge_scaling_list_delta_is_not_an_overflow() {
        // ue(v) of 2^32 - 3, that is se(v) 2^31 - 1: 31 zero bits, a one, then 31 more bits.
        let mut bits = "0".repeat(31) + "1" + &"1".repeat(30) + "0";
        bits.push_str(&"1".repeat(64)); // then small deltas (se 0) to the end of the list
        let bytes: Vec<u8> = bits
            .as_bytes()
            .chunks(8)
            .map(|c| {
                let s: String = c.iter().map(|&b| b as char).collect();
                u8::from_str_radix(&format!("{s:0<8}"), 2).expect("binary digits")
            })
            .collect();
        let mut r = BitReader::new(&bytes);
        assert!(skip_scaling_list(&mut r, 16).is_ok());
    }

    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("test hex is valid"))
            .collect()
    }

    #[test]
    fn nal_type_helpers() {
        // (nal, type, [idr, sps, pps, aud])
        type Case = (&'static [u8], Option<u8>, [bool; 4]);
        let cases: &[Case] = &[
            (&[0x65, 0x88], Some(5), [true, false, false, false]),
            (&[0x67, 0x64], Some(7), [false, true, false, false]),
            (&[0x68, 0xeb], Some(8), [false, false, true, false]),
            (&[0x09, 0xf0], Some(9), [false, false, false, true]),
            (&[0x41, 0x9a], Some(1), [false; 4]),
            (&[], None, [false; 4]),
        ];
        for &(nal, ty, flags) in cases {
            assert_eq!(nal_type(nal), ty, "{nal:02x?}");
            assert_eq!(
                [is_idr(nal), is_sps(nal), is_pps(nal), is_aud(nal)],
                flags,
                "{nal:02x?}"
            );
        }
        assert!(is_sei(&[0x06, 0x05]));
    }

    /// One real avcC and what its first SPS must decode to.
    struct RealAvc {
        /// The command that produced it (testsrc, libx264 164, ffmpeg 5.1.9), run as
        /// `ffmpeg -f lavfi -i testsrc=size=WxH:rate=R -c:v libx264 ARGS -t 0.2 out.flv`;
        /// the hex is the first video tag body after its 5-byte AVC header.
        args: &'static str,
        avcc: &'static str,
        /// (profile, level, width, height, chroma_format_idc, luma bits, frame_mbs_only)
        sps: (u8, u8, u32, u32, u32, u32, bool),
        /// VUI (num_units_in_tick, time_scale), as `trace_headers` prints it.
        timing: (u32, u32),
        /// The record's extension: (chroma_format, luma bits, chroma bits).
        ext: Option<(u8, u8, u8)>,
    }

    const REAL_AVC: &[RealAvc] = &[
        RealAvc {
            args: "640x360 25 -pix_fmt yuv420p",
            avcc: "0164001effe1001a6764001eacd940a02ff97011000003000100000300320f162d96\
                   01000668ebe3cb22c0fdf8f800",
            sps: (100, 30, 640, 360, 1, 8, true),
            timing: (1, 50),
            ext: Some((1, 8, 8)),
        },
        RealAvc {
            args: "320x240 30 -profile:v baseline -pix_fmt yuv420p",
            avcc: "0142c00dffe100186742c00dd90141fb0110000003001000000303c0f142a480\
                   01000568cb83cb20",
            sps: (66, 13, 320, 240, 1, 8, true),
            timing: (1, 60),
            ext: None,
        },
        RealAvc {
            // testsrc is RGB, so libx264 picks yuv444p: High 4:4:4 Predictive.
            args: "640x360 25 (no -pix_fmt)",
            avcc: "01f4001effe1001b67f4001e919b281405ff1380880000030008000003019078b16cb0\
                   01000668ebe3c44844fff8f800",
            sps: (244, 30, 640, 360, 3, 8, true),
            timing: (1, 50),
            ext: Some((3, 8, 8)),
        },
        RealAvc {
            args: "1920x1080 25 -pix_fmt yuv420p -flags +ildct -x264-params interlaced=1",
            avcc: "01640028ffe1001a67640028acd94078044fde0220000003002000000643e2c5b2c0\
                   01000668fba3cb22c0fdf8f800",
            sps: (100, 40, 1920, 1080, 1, 8, false),
            timing: (1, 50),
            ext: Some((1, 8, 8)),
        },
        RealAvc {
            args: "640x360 25 -pix_fmt yuv420p10le",
            avcc: "016e001effe1001b676e001ea6cd940a02ff97011000000300100000030320f162d960\
                   01000668ebe3cb22c0fdfafa00",
            sps: (110, 30, 640, 360, 1, 10, true),
            timing: (1, 50),
            ext: Some((1, 10, 10)),
        },
        RealAvc {
            args: "640x360 30000/1001 -pix_fmt yuv422p",
            avcc: "017a001effe10019677a001ebcd940a02ff89c04400000fa40003a9803c58b6580\
                   01000668ebe3cb22c0fef8f800",
            sps: (122, 30, 640, 360, 2, 8, true),
            timing: (1001, 60000),
            ext: Some((2, 8, 8)),
        },
        RealAvc {
            args: "646x362 50 -pix_fmt yuv420p",
            avcc: "0164001fffe1001a6764001facd940a42fe6930110000003001000000640f1831960\
                   01000668ebe3cb22c0fdf8f800",
            sps: (100, 31, 646, 362, 1, 8, true),
            timing: (1, 100),
            ext: Some((1, 8, 8)),
        },
    ];

    #[test]
    fn real_x264_records() {
        for case in REAL_AVC {
            let raw = hex(case.avcc);
            let config =
                AvcDecoderConfig::parse(&raw).unwrap_or_else(|e| panic!("{}: {e}", case.args));
            assert_eq!(
                (config.nal_length_size, config.sps.len(), config.pps.len()),
                (4, 1, 1),
                "{}",
                case.args
            );
            let ext = config
                .ext
                .as_ref()
                .map(|e| (e.chroma_format, e.bit_depth_luma, e.bit_depth_chroma));
            assert_eq!(ext, case.ext, "{}", case.args);
            assert_eq!(
                config.to_bytes(),
                Bytes::from(raw),
                "{}: re-serialised",
                case.args
            );
            let sps = config
                .sps_info()
                .unwrap_or_else(|e| panic!("{}: {e}", case.args));
            let got = (
                sps.profile_idc,
                sps.level_idc,
                sps.width,
                sps.height,
                sps.chroma_format_idc,
                sps.bit_depth_luma,
                sps.frame_mbs_only,
            );
            assert_eq!(got, case.sps, "{}", case.args);
            assert_eq!(sps.timing, Some(case.timing), "{}", case.args);
            assert_eq!(config.profile_indication, sps.profile_idc);
        }
    }

    #[test]
    fn frame_rate_and_codec_strings() {
        let config = AvcDecoderConfig::parse(&hex(REAL_AVC[0].avcc)).unwrap();
        assert_eq!(config.codec_string(), "avc1.64001e");
        let sps = config.sps_info().unwrap();
        assert_eq!(sps.frame_rate, Some(25.0));
        assert_eq!(sps.profile_level_id(), "64001e");
        let ntsc = AvcDecoderConfig::parse(&hex(REAL_AVC[5].avcc))
            .unwrap()
            .sps_info()
            .unwrap();
        let fps = ntsc.frame_rate.unwrap();
        assert!((fps - 29.97).abs() < 0.001, "{fps}");
    }

    #[test]
    fn sps_with_scaling_lists() {
        // Real x264 SPSs with explicit scaling lists spliced in by
        // testdata/insert_scaling_lists.py (lists 0 and 6 of the 4:2:0 High SPS above; lists
        // 1, 7 and 11 of the 4:4:4 one, 64-entry lists included). ffprobe and trace_headers
        // read them as 640x360 with timing 1/50, and ffmpeg decodes the spliced streams.
        let cases = [
            ("6764001ead840ffff82103fffffffffffffffed940a02ff97011000003000100000300320f162d96", 1),
            (
                "67f4001e91a840ffff82103fffffffffffffffe2103ffffffffffffffffb281405ff13808800000300\
                 08000003019078b16cb0",
                3,
            ),
        ];
        for (sps, chroma) in cases {
            let info = SpsInfo::parse(&hex(sps)).unwrap_or_else(|e| panic!("{sps}: {e}"));
            assert_eq!(
                (info.width, info.height, info.chroma_format_idc),
                (640, 360, chroma)
            );
            assert_eq!(info.timing, Some((1, 50)));
        }
    }

    #[test]
    fn sps_error_table() {
        let good = hex("6764001eacd940a02ff97011000003000100000300320f162d96");
        type Case = (Vec<u8>, fn(&AvcError) -> bool);
        let cases: Vec<Case> = vec![
            (vec![], |e| *e == AvcError::EmptyNal),
            (hex("68ebe3cb22c0"), |e| *e == AvcError::NotSps(8)),
            (good[..6].to_vec(), |e| matches!(e, AvcError::Bits(_))),
            // 0x8a: sps_id ue '1' = 0, then chroma_format_idc ue '0001010' = 9, out of range.
            (hex("6764001e8a"), |e| {
                matches!(
                    e,
                    AvcError::SpsRange {
                        field: "chroma_format_idc",
                        ..
                    }
                )
            }),
            (vec![0x67; MAX_SPS_LEN + 1], |e| {
                matches!(e, AvcError::SpsTooLarge(_))
            }),
        ];
        for (nal, want) in cases {
            let err = SpsInfo::parse(&nal).unwrap_err();
            assert!(want(&err), "{nal:02x?}: {err:?}");
        }
    }

    #[test]
    fn every_truncation_of_a_real_record_fails_cleanly() {
        let raw = hex(REAL_AVC[0].avcc);
        // Cutting inside the lists fails; cutting inside the optional extension drops it.
        let lists_end = raw.len() - 4;
        for cut in 0..raw.len() {
            let result = AvcDecoderConfig::parse(&raw[..cut]);
            if cut < lists_end {
                assert!(result.is_err(), "cut at {cut}");
            } else {
                assert_eq!(result.map(|c| c.ext), Ok(None), "cut at {cut}");
            }
        }
    }

    #[test]
    fn truncated_config_reports_field() {
        let err =
            AvcDecoderConfig::parse(&[1, 0x64, 0, 0x1f, 0xff, 0xe1, 0, 10, 0x67]).unwrap_err();
        assert_eq!(
            err,
            AvcError::ConfigTruncated {
                offset: 8,
                field: "sequenceParameterSetNALUnit",
                need: 10,
                have: 1
            }
        );
        assert_eq!(
            AvcDecoderConfig::parse(&[]).unwrap_err(),
            AvcError::ConfigTruncated {
                offset: 0,
                field: "configurationVersion",
                need: 1,
                have: 0
            }
        );
        assert_eq!(
            AvcDecoderConfig::parse(&[0, 1, 2]).unwrap_err(),
            AvcError::ConfigVersion(0)
        );
    }

    #[test]
    fn access_unit_gets_aud_and_parameter_sets() {
        let config = AvcDecoderConfig {
            profile_indication: 66,
            profile_compatibility: 0xc0,
            level_indication: 30,
            nal_length_size: 4,
            sps: vec![Bytes::from_static(&[0x67, 0x42])],
            pps: vec![Bytes::from_static(&[0x68, 0xce])],
            ext: None,
        };
        let idr = Bytes::from(hex("00000002 09f0 00000002 0605 00000002 6588"));
        let mut out = BytesMut::new();
        let info = access_unit_to_annex_b(&idr, &config, &mut out).unwrap();
        assert_eq!(
            info,
            AccessUnitInfo {
                idr: true,
                inserted_parameter_sets: true,
                nal_count: 5
            }
        );
        assert_eq!(
            &out[..],
            &hex("00000001 09f0 00000001 6742 00000001 68ce 00000001 0605 00000001 6588")[..]
        );
        let mut out = BytesMut::new();
        let inter = Bytes::from(hex("00000002 419a"));
        let info = access_unit_to_annex_b(&inter, &config, &mut out).unwrap();
        assert!(!info.idr && !info.inserted_parameter_sets);
        assert_eq!(&out[..], &hex("00000001 09f0 00000001 419a")[..]);
        let broken = Bytes::from(hex("00000009 419a"));
        assert!(access_unit_to_annex_b(&broken, &config, &mut BytesMut::new()).is_err());
    }

    #[test]
    fn annex_b_to_sample_strips_aud_and_parameter_sets() {
        let nals: [&[u8]; 4] = [&[0x09, 0xf0], &[0x67, 1], &[0x68, 2], &[0x65, 3]];
        assert_eq!(&annex_b_to_sample(nals, true)[..], &[0, 0, 0, 2, 0x65, 3]);
        assert_eq!(annex_b_to_sample(nals, false).len(), 18);
    }
}

//! H.265 / HEVC: the decoder configuration record (`hvcC`), SPS picture size, NAL type
//! helpers and Annex B conversion for MPEG-TS.

use bytes::{Bytes, BytesMut};
use thiserror::Error;

use crate::bits::{unescape_rbsp, BitError, BitReader};
use crate::nal::write_annex_b;
pub use crate::nal::{nal_units, NalError, NalUnits};

/// NAL unit type of a BLA picture with leading pictures (first IRAP type, H.265 Table 7-1).
pub const NAL_BLA_W_LP: u8 = 16;
/// NAL unit type of an IDR picture with RADL pictures.
pub const NAL_IDR_W_RADL: u8 = 19;
/// NAL unit type of an IDR picture without leading pictures.
pub const NAL_IDR_N_LP: u8 = 20;
/// NAL unit type of a CRA picture.
pub const NAL_CRA: u8 = 21;
/// NAL unit type of a video parameter set.
pub const NAL_VPS: u8 = 32;
/// NAL unit type of a sequence parameter set.
pub const NAL_SPS: u8 = 33;
/// NAL unit type of a picture parameter set.
pub const NAL_PPS: u8 = 34;
/// NAL unit type of an access unit delimiter.
pub const NAL_AUD: u8 = 35;
/// NAL unit type of a prefix SEI message.
pub const NAL_PREFIX_SEI: u8 = 39;
/// NAL unit type of a suffix SEI message.
pub const NAL_SUFFIX_SEI: u8 = 40;

/// An access unit delimiter (type 35, layer 0, `TemporalId` 0) with `pic_type` 2 ("I, P
/// or B slices"), the unit MPEG-TS muxers put first in every HEVC access unit.
pub const AUD_NAL: [u8; 3] = [0x46, 0x01, 0x50];

/// The largest SPS (escaped) this module will parse; real ones are under 200 bytes.
pub const MAX_SPS_LEN: usize = 4096;

/// The largest picture dimension accepted from an SPS (level 6.2 allows 8,444 pixels on
/// one side at the maximum picture size; this bound is generous and prevents overflow).
const MAX_DIMENSION: u32 = 1 << 16;

/// An error while parsing H.265 configuration or parameter sets.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum HevcError {
    /// The HEVCDecoderConfigurationRecord ended early.
    #[error("hvcC truncated at byte {offset}: {field} needs {need} bytes, {have} left")]
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
    /// The NAL unit given as an SPS is not one.
    #[error("expected an SPS NAL unit (type 33), got type {0}")]
    NotSps(u8),
    /// The NAL unit is shorter than its two-byte header.
    #[error("NAL unit shorter than its 2-byte header")]
    ShortNal,
    /// The SPS is larger than [`MAX_SPS_LEN`].
    #[error("SPS of {0} bytes exceeds the {MAX_SPS_LEN}-byte limit")]
    SpsTooLarge(usize),
    /// An SPS field is out of its allowed range.
    #[error("SPS field {field} = {value} is out of range")]
    SpsRange {
        /// The syntax element name from H.265 7.3.2.2.
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

/// Returns the `nal_unit_type` of a NAL unit (bits 1-6 of its first byte).
pub fn nal_type(nal: &[u8]) -> Option<u8> {
    nal.first().map(|b| (b >> 1) & 0x3f)
}

/// Returns whether a NAL unit type is an IRAP picture (BLA, IDR, CRA or reserved IRAP,
/// types 16 to 23): a random access point where decoding can start.
pub fn is_irap_type(nal_type: u8) -> bool {
    (16..=23).contains(&nal_type)
}

/// Returns whether the NAL unit is an IRAP picture slice.
pub fn is_irap(nal: &[u8]) -> bool {
    nal_type(nal).is_some_and(is_irap_type)
}

/// Returns whether the NAL unit is an IDR slice (types 19 and 20).
pub fn is_idr(nal: &[u8]) -> bool {
    matches!(nal_type(nal), Some(NAL_IDR_W_RADL | NAL_IDR_N_LP))
}

/// Returns whether the NAL unit is a VPS, SPS or PPS.
pub fn is_parameter_set(nal: &[u8]) -> bool {
    matches!(nal_type(nal), Some(NAL_VPS | NAL_SPS | NAL_PPS))
}

/// Returns whether the NAL unit is an access unit delimiter.
pub fn is_aud(nal: &[u8]) -> bool {
    nal_type(nal) == Some(NAL_AUD)
}

/// Returns whether the NAL unit is a prefix or suffix SEI.
pub fn is_sei(nal: &[u8]) -> bool {
    matches!(nal_type(nal), Some(NAL_PREFIX_SEI | NAL_SUFFIX_SEI))
}

/// One array of same-type parameter sets in an `hvcC` record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HevcNalArray {
    /// `array_completeness`: all units of this type are in the array, none in-band.
    pub completeness: bool,
    /// `NAL_unit_type` of every unit in the array.
    pub nal_type: u8,
    /// The NAL units, headers included.
    pub nals: Vec<Bytes>,
}

/// The HEVCDecoderConfigurationRecord (ISO 14496-15 8.3.3.1), the body of an FLV/E-RTMP
/// HEVC sequence header and of an MP4 `hvcC` box.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HevcDecoderConfig {
    /// `configurationVersion` (1; some early muxers wrote 0, which is tolerated).
    pub version: u8,
    /// `general_profile_space`.
    pub general_profile_space: u8,
    /// `general_tier_flag` (true = High tier).
    pub general_tier_flag: bool,
    /// `general_profile_idc` (1 Main, 2 Main 10, 3 Main Still Picture, 4 range extensions).
    pub general_profile_idc: u8,
    /// `general_profile_compatibility_flags`.
    pub general_profile_compatibility_flags: u32,
    /// `general_constraint_indicator_flags` (48 bits).
    pub general_constraint_indicator_flags: u64,
    /// `general_level_idc` (30 times the level number, e.g. 93 for level 3.1).
    pub general_level_idc: u8,
    /// `chromaFormat`.
    pub chroma_format: u8,
    /// `bitDepthLumaMinus8 + 8`.
    pub bit_depth_luma: u8,
    /// `bitDepthChromaMinus8 + 8`.
    pub bit_depth_chroma: u8,
    /// `avgFrameRate` in frames per 256 seconds (0 = unspecified).
    pub avg_frame_rate: u16,
    /// `numTemporalLayers`.
    pub num_temporal_layers: u8,
    /// Bytes in each NAL length prefix of a sample (`lengthSizeMinusOne + 1`).
    pub nal_length_size: u8,
    /// The parameter set arrays, in record order.
    pub arrays: Vec<HevcNalArray>,
}

/// Bytes before the first array: fixed fields through `numOfArrays`.
const HVCC_FIXED_LEN: usize = 23;

struct Cursor<'a> {
    data: &'a Bytes,
    pos: usize,
}

impl Cursor<'_> {
    fn take(&mut self, n: usize, field: &'static str) -> Result<Bytes, HevcError> {
        let have = self.data.len() - self.pos;
        if have < n {
            return Err(HevcError::ConfigTruncated {
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

    fn u8(&mut self, field: &'static str) -> Result<u8, HevcError> {
        Ok(self.take(1, field)?[0])
    }

    fn u16(&mut self, field: &'static str) -> Result<u16, HevcError> {
        let b = self.take(2, field)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }
}

impl HevcDecoderConfig {
    /// Parses a record, copying it once so the parameter sets can be `Bytes`.
    pub fn parse(data: &[u8]) -> Result<Self, HevcError> {
        Self::parse_bytes(&Bytes::copy_from_slice(data))
    }

    /// Parses a record; the parameter sets are zero-copy slices of `data`.
    pub fn parse_bytes(data: &Bytes) -> Result<Self, HevcError> {
        let mut c = Cursor { data, pos: 0 };
        let fixed = c.take(HVCC_FIXED_LEN - 1, "fixed header")?;
        let mut r = BitReader::new(&fixed);
        let mut config = read_fixed(&mut r)?;
        let num_arrays = c.u8("numOfArrays")?;
        for _ in 0..num_arrays {
            config.arrays.push(read_array(&mut c)?);
        }
        Ok(config)
    }

    /// Returns the NAL units of one type across all arrays.
    pub fn nals_of_type(&self, nal_type: u8) -> impl Iterator<Item = &Bytes> + '_ {
        self.arrays
            .iter()
            .filter(move |a| a.nal_type == nal_type)
            .flat_map(|a| a.nals.iter())
    }

    /// Returns VPS, SPS and PPS in that order, the order decoders want them in-band.
    pub fn parameter_sets(&self) -> impl Iterator<Item = &Bytes> + '_ {
        self.nals_of_type(NAL_VPS)
            .chain(self.nals_of_type(NAL_SPS))
            .chain(self.nals_of_type(NAL_PPS))
    }

    /// Parses the first SPS of the record.
    pub fn sps_info(&self) -> Result<HevcSpsInfo, HevcError> {
        let sps = self
            .nals_of_type(NAL_SPS)
            .next()
            .ok_or(HevcError::ShortNal)?;
        HevcSpsInfo::parse(sps)
    }

    /// Returns the ISO 14496-15 Annex E codec string, e.g. `hvc1.1.6.L93.B0`, for HLS
    /// `CODECS` and DASH.
    pub fn codec_string(&self) -> String {
        let space = match self.general_profile_space {
            1 => "A",
            2 => "B",
            3 => "C",
            _ => "",
        };
        // The compatibility flags are written in reverse bit order (Annex E.3).
        let compat = self.general_profile_compatibility_flags.reverse_bits();
        let tier = if self.general_tier_flag { 'H' } else { 'L' };
        let mut s = format!(
            "hvc1.{space}{}.{compat:X}.{tier}{}",
            self.general_profile_idc, self.general_level_idc
        );
        let constraints = self.general_constraint_indicator_flags.to_be_bytes();
        let used = constraints[2..]
            .iter()
            .rposition(|&b| b != 0)
            .map_or(0, |i| i + 1);
        for b in &constraints[2..2 + used] {
            s.push_str(&format!(".{b:X}"));
        }
        s
    }
}

fn read_fixed(r: &mut BitReader<'_>) -> Result<HevcDecoderConfig, HevcError> {
    let version = r.read_u8(8)?;
    let general_profile_space = r.read_u8(2)?;
    let general_tier_flag = r.read_bit()?;
    let general_profile_idc = r.read_u8(5)?;
    let general_profile_compatibility_flags = r.read_bits(32)?;
    let general_constraint_indicator_flags = r.read_u64(48)?;
    let general_level_idc = r.read_u8(8)?;
    r.skip(4 + 12 + 6 + 2 + 6)?; // min_spatial_segmentation_idc, parallelismType
    let chroma_format = r.read_u8(2)?;
    r.skip(5)?;
    let bit_depth_luma = r.read_u8(3)? + 8;
    r.skip(5)?;
    let bit_depth_chroma = r.read_u8(3)? + 8;
    let avg_frame_rate = r.read_bits(16)? as u16;
    r.skip(2)?; // constantFrameRate
    let num_temporal_layers = r.read_u8(3)?;
    r.skip(1)?; // temporalIdNested
    let nal_length_size = r.read_u8(2)? + 1;
    Ok(HevcDecoderConfig {
        version,
        general_profile_space,
        general_tier_flag,
        general_profile_idc,
        general_profile_compatibility_flags,
        general_constraint_indicator_flags,
        general_level_idc,
        chroma_format,
        bit_depth_luma,
        bit_depth_chroma,
        avg_frame_rate,
        num_temporal_layers,
        nal_length_size,
        arrays: Vec::new(),
    })
}

fn read_array(c: &mut Cursor<'_>) -> Result<HevcNalArray, HevcError> {
    let head = c.u8("array header")?;
    let count = c.u16("numNalus")?;
    let mut nals = Vec::with_capacity(usize::from(count).min(64));
    for _ in 0..count {
        let len = c.u16("nalUnitLength")?;
        nals.push(c.take(usize::from(len), "nalUnit")?);
    }
    Ok(HevcNalArray {
        completeness: head & 0x80 != 0,
        nal_type: head & 0x3f,
        nals,
    })
}

/// The fields of an H.265 sequence parameter set that egress needs (H.265 7.3.2.2.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HevcSpsInfo {
    /// `general_profile_idc`.
    pub profile_idc: u8,
    /// `general_tier_flag`.
    pub tier_flag: bool,
    /// `general_level_idc`.
    pub level_idc: u8,
    /// `chroma_format_idc`.
    pub chroma_format_idc: u32,
    /// Displayed width in pixels, after the conformance window.
    pub width: u32,
    /// Displayed height in pixels, after the conformance window.
    pub height: u32,
    /// Luma bit depth.
    pub bit_depth_luma: u32,
    /// Chroma bit depth.
    pub bit_depth_chroma: u32,
    /// VUI timing: `vui_num_units_in_tick` and `vui_time_scale`, when present and
    /// non-zero. Read best-effort: a problem after the bit depths leaves this `None`.
    pub timing: Option<(u32, u32)>,
}

impl HevcSpsInfo {
    /// Returns the frame rate from VUI timing (`time_scale / num_units_in_tick`; unlike
    /// H.264 there is no factor of two, H.265 E.3.1).
    pub fn frame_rate(&self) -> Option<f64> {
        self.timing
            .map(|(units, scale)| f64::from(scale) / f64::from(units))
    }

    /// Parses an SPS NAL unit (two-byte header included, emulation prevention still in).
    pub fn parse(nal: &[u8]) -> Result<Self, HevcError> {
        if nal.len() < 2 {
            return Err(HevcError::ShortNal);
        }
        let ty = (nal[0] >> 1) & 0x3f;
        if ty != NAL_SPS {
            return Err(HevcError::NotSps(ty));
        }
        if nal.len() > MAX_SPS_LEN {
            return Err(HevcError::SpsTooLarge(nal.len()));
        }
        let rbsp = unescape_rbsp(&nal[2..]);
        parse_sps_rbsp(&mut BitReader::new(&rbsp))
    }
}

fn parse_sps_rbsp(r: &mut BitReader<'_>) -> Result<HevcSpsInfo, HevcError> {
    r.skip(4)?; // sps_video_parameter_set_id
    let max_sub_layers_minus1 = r.read_u8(3)?;
    r.skip(1)?; // sps_temporal_id_nesting_flag
    let (profile_idc, tier_flag, level_idc) = read_profile_tier_level(r, max_sub_layers_minus1)?;
    let _sps_id = r.read_ue()?;
    let chroma_format_idc = r.read_ue()?;
    if chroma_format_idc > 3 {
        return Err(HevcError::SpsRange {
            field: "chroma_format_idc",
            value: chroma_format_idc,
        });
    }
    let separate_colour_plane = chroma_format_idc == 3 && r.read_bit()?;
    let full_w = dimension(r.read_ue()?, "pic_width_in_luma_samples")?;
    let full_h = dimension(r.read_ue()?, "pic_height_in_luma_samples")?;
    let window = if r.read_bit()? {
        [r.read_ue()?, r.read_ue()?, r.read_ue()?, r.read_ue()?]
    } else {
        [0; 4]
    };
    let chroma_array_type = if separate_colour_plane {
        0
    } else {
        chroma_format_idc
    };
    let (width, height) = apply_window(full_w, full_h, chroma_array_type, window)?;
    let bit_depth_luma = r.read_ue()?.saturating_add(8);
    let bit_depth_chroma = r.read_ue()?.saturating_add(8);
    Ok(HevcSpsInfo {
        profile_idc,
        tier_flag,
        level_idc,
        chroma_format_idc,
        width,
        height,
        bit_depth_luma,
        bit_depth_chroma,
        timing: read_sps_tail_timing(r, max_sub_layers_minus1)
            .ok()
            .flatten(),
    })
}

/// The largest `num_short_term_ref_pic_sets` (H.265 7.4.3.2.1).
const MAX_SHORT_TERM_REF_PIC_SETS: u32 = 64;
/// The largest `num_long_term_ref_pics_sps`.
const MAX_LONG_TERM_REF_PICS_SPS: u32 = 32;
/// The largest number of pictures one short-term RPS may list (`sps_max_dec_pic_buffering`).
const MAX_DELTA_POCS: u32 = 16;

/// Walks the SPS from `log2_max_pic_order_cnt_lsb_minus4` to the VUI timing info
/// (H.265 7.3.2.2.1, E.2.1) and returns it when present.
fn read_sps_tail_timing(
    r: &mut BitReader<'_>,
    max_sub_layers_minus1: u8,
) -> Result<Option<(u32, u32)>, HevcError> {
    let log2_max_poc_lsb = r.read_ue()?.saturating_add(4);
    let ordering_info_for_all = r.read_bit()?;
    let first = if ordering_info_for_all {
        0
    } else {
        max_sub_layers_minus1
    };
    for _ in first..=max_sub_layers_minus1 {
        for _ in 0..3 {
            r.read_ue()?; // max_dec_pic_buffering, max_num_reorder, max_latency_increase
        }
    }
    for _ in 0..6 {
        r.read_ue()?; // coding/transform block sizes and hierarchy depths
    }
    if r.read_bit()? && r.read_bit()? {
        skip_scaling_list_data(r)?;
    }
    r.skip(2)?; // amp_enabled_flag, sample_adaptive_offset_enabled_flag
    if r.read_bit()? {
        r.skip(8)?; // pcm sample bit depths
        r.read_ue()?;
        r.read_ue()?;
        r.skip(1)?;
    }
    skip_short_term_ref_pic_sets(r)?;
    if r.read_bit()? {
        let n = bounded(
            r.read_ue()?,
            MAX_LONG_TERM_REF_PICS_SPS,
            "num_long_term_ref_pics_sps",
        )?;
        for _ in 0..n {
            r.skip(log2_max_poc_lsb as usize + 1)?; // lt_ref_pic_poc_lsb_sps, used flag
        }
    }
    r.skip(2)?; // sps_temporal_mvp_enabled_flag, strong_intra_smoothing_enabled_flag
    if !r.read_bit()? {
        return Ok(None);
    }
    read_vui_timing(r)
}

fn bounded(value: u32, max: u32, field: &'static str) -> Result<u32, HevcError> {
    if value > max {
        return Err(HevcError::SpsRange { field, value });
    }
    Ok(value)
}

/// Skips `scaling_list_data()` (H.265 7.3.4).
fn skip_scaling_list_data(r: &mut BitReader<'_>) -> Result<(), HevcError> {
    for size_id in 0..4 {
        let step = if size_id == 3 { 3 } else { 1 };
        for _ in (0..6).step_by(step) {
            if !r.read_bit()? {
                r.read_ue()?; // scaling_list_pred_matrix_id_delta
                continue;
            }
            let coefs = 64.min(1 << (4 + (size_id << 1)));
            if size_id > 1 {
                r.read_se()?; // scaling_list_dc_coef_minus8
            }
            for _ in 0..coefs {
                r.read_se()?;
            }
        }
    }
    Ok(())
}

/// Skips the SPS's `st_ref_pic_set(i)` list (H.265 7.3.7), tracking each set's
/// `NumDeltaPocs`, which inter-RPS prediction of the next set depends on.
fn skip_short_term_ref_pic_sets(r: &mut BitReader<'_>) -> Result<(), HevcError> {
    let count = bounded(
        r.read_ue()?,
        MAX_SHORT_TERM_REF_PIC_SETS,
        "num_short_term_ref_pic_sets",
    )?;
    let mut num_delta_pocs: Vec<u32> = Vec::with_capacity(count as usize);
    for idx in 0..count as usize {
        let predicted = idx != 0 && r.read_bit()?;
        let n = if predicted {
            r.skip(1)?; // delta_rps_sign
            r.read_ue()?; // abs_delta_rps_minus1
                          // In the SPS the reference set is always the previous one (delta_idx = 1).
            let reference = num_delta_pocs.last().copied().unwrap_or(0);
            let mut n = 0;
            for _ in 0..=reference {
                let used = r.read_bit()?;
                if used || r.read_bit()? {
                    n += 1;
                }
            }
            n
        } else {
            let negative = bounded(r.read_ue()?, MAX_DELTA_POCS, "num_negative_pics")?;
            let positive = bounded(r.read_ue()?, MAX_DELTA_POCS, "num_positive_pics")?;
            for _ in 0..negative + positive {
                r.read_ue()?; // delta_poc_s*_minus1
                r.skip(1)?; // used_by_curr_pic_s*_flag
            }
            negative + positive
        };
        num_delta_pocs.push(n);
    }
    Ok(())
}

/// Reads `vui_parameters()` up to the timing info (H.265 E.2.1).
fn read_vui_timing(r: &mut BitReader<'_>) -> Result<Option<(u32, u32)>, HevcError> {
    if r.read_bit()? && r.read_u8(8)? == 255 {
        r.skip(32)?; // sar_width, sar_height
    }
    if r.read_bit()? {
        r.skip(1)?; // overscan_appropriate_flag
    }
    if r.read_bit()? {
        r.skip(4)?; // video_format, video_full_range_flag
        if r.read_bit()? {
            r.skip(24)?; // colour description
        }
    }
    if r.read_bit()? {
        r.read_ue()?;
        r.read_ue()?;
    }
    r.skip(3)?; // neutral_chroma_indication, field_seq, frame_field_info_present
    if r.read_bit()? {
        for _ in 0..4 {
            r.read_ue()?; // default display window offsets
        }
    }
    if !r.read_bit()? {
        return Ok(None);
    }
    let units = r.read_bits(32)?;
    let scale = r.read_bits(32)?;
    Ok((units != 0 && scale != 0).then_some((units, scale)))
}

/// Reads `profile_tier_level(1, max_sub_layers_minus1)` (H.265 7.3.3) and returns the
/// general profile, tier and level.
fn read_profile_tier_level(
    r: &mut BitReader<'_>,
    max_sub_layers_minus1: u8,
) -> Result<(u8, bool, u8), HevcError> {
    r.skip(2)?; // general_profile_space
    let tier = r.read_bit()?;
    let profile = r.read_u8(5)?;
    r.skip(32 + 48)?; // compatibility flags, constraint flags
    let level = r.read_u8(8)?;
    let n = usize::from(max_sub_layers_minus1);
    let mut present = [(false, false); 8];
    for p in present.iter_mut().take(n) {
        *p = (r.read_bit()?, r.read_bit()?);
    }
    if n > 0 {
        r.skip(2 * (8 - n))?; // reserved_zero_2bits
    }
    for &(profile_present, level_present) in present.iter().take(n) {
        if profile_present {
            r.skip(88)?;
        }
        if level_present {
            r.skip(8)?;
        }
    }
    Ok((profile, tier, level))
}

fn dimension(value: u32, field: &'static str) -> Result<u32, HevcError> {
    if value == 0 || value > MAX_DIMENSION {
        return Err(HevcError::SpsRange { field, value });
    }
    Ok(value)
}

/// Applies `conf_win_*_offset` in chroma units (H.265 7.4.3.2, Table 6-1).
fn apply_window(
    full_w: u32,
    full_h: u32,
    chroma_array_type: u32,
    window: [u32; 4],
) -> Result<(u32, u32), HevcError> {
    let (sub_w, sub_h) = match chroma_array_type {
        1 => (2u64, 2u64),
        2 => (2, 1),
        _ => (1, 1),
    };
    let crop_w = sub_w * (u64::from(window[0]) + u64::from(window[1]));
    let crop_h = sub_h * (u64::from(window[2]) + u64::from(window[3]));
    if crop_w >= u64::from(full_w) || crop_h >= u64::from(full_h) {
        return Err(HevcError::SpsRange {
            field: "conf_win_offset",
            value: window.iter().copied().max().unwrap_or(0),
        });
    }
    // Both crops are below the full size, which fits u32, so the casts are lossless.
    Ok((full_w - crop_w as u32, full_h - crop_h as u32))
}

/// What [`access_unit_to_annex_b`] wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccessUnitInfo {
    /// The access unit contains an IRAP picture.
    pub irap: bool,
    /// Parameter sets from the configuration were inserted before the IRAP.
    pub inserted_parameter_sets: bool,
    /// NAL units written, the inserted AUD and parameter sets included.
    pub nal_count: usize,
}

/// Converts one length-prefixed HEVC access unit to Annex B for MPEG-TS: an AUD first,
/// then, when the unit holds an IRAP picture but no SPS, the configuration's VPS, SPS and
/// PPS, then the unit's own NAL units minus any AUDs (ISO 13818-1 2.17 requires the AUD).
pub fn access_unit_to_annex_b(
    sample: &Bytes,
    config: &HevcDecoderConfig,
    out: &mut BytesMut,
) -> Result<AccessUnitInfo, HevcError> {
    let mut irap = false;
    let mut has_sps = false;
    for nal in nal_units(sample, config.nal_length_size) {
        let nal = nal?;
        irap |= is_irap(&nal);
        has_sps |= nal_type(&nal) == Some(NAL_SPS);
    }
    write_annex_b(out, &AUD_NAL);
    let mut info = AccessUnitInfo {
        irap,
        inserted_parameter_sets: irap && !has_sps,
        nal_count: 1,
    };
    if info.inserted_parameter_sets {
        for ps in config.parameter_sets() {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nal_type_table() {
        let cases: &[(&[u8], Option<u8>, bool, bool)] = &[
            // (nal, type, irap, parameter set)
            (&[0x40, 0x01], Some(32), false, true),
            (&[0x42, 0x01], Some(33), false, true),
            (&[0x44, 0x01], Some(34), false, true),
            (&[0x26, 0x01], Some(19), true, false),
            (&[0x28, 0x01], Some(20), true, false),
            (&[0x2a, 0x01], Some(21), true, false),
            (&[0x20, 0x01], Some(16), true, false),
            (&[0x2e, 0x01], Some(23), true, false),
            (&[0x30, 0x01], Some(24), false, false),
            (&[0x02, 0x01], Some(1), false, false),
            (&[], None, false, false),
        ];
        for &(nal, ty, irap, ps) in cases {
            assert_eq!(nal_type(nal), ty, "{nal:02x?}");
            assert_eq!(
                (is_irap(nal), is_parameter_set(nal)),
                (irap, ps),
                "{nal:02x?}"
            );
        }
        assert!(is_aud(&AUD_NAL));
        assert!(is_sei(&[0x4e, 0x01]) && is_sei(&[0x50, 0x01]));
        assert!(is_idr(&[0x26, 0x01]) && !is_idr(&[0x2a, 0x01]));
    }

    /// One real x265 hvcC (see testdata/PROVENANCE.md for the commands) and the values
    /// ffprobe and trace_headers report for it.
    struct RealHevc {
        name: &'static str,
        record: &'static [u8],
        /// (profile, level, width, height, chroma_format_idc, luma bits)
        sps: (u8, u8, u32, u32, u32, u32),
        codec_string: &'static str,
    }

    const REAL_HEVC: &[RealHevc] = &[
        RealHevc {
            name: "main 640x360",
            record: include_bytes!("../testdata/x265_main.hvcC"),
            sps: (1, 63, 640, 360, 1, 8),
            codec_string: "hvc1.1.6.L63.90",
        },
        RealHevc {
            name: "main 1366x768 (coded 1368, conformance window)",
            record: include_bytes!("../testdata/x265_win.hvcC"),
            sps: (1, 120, 1366, 768, 1, 8),
            codec_string: "hvc1.1.6.L120.90",
        },
        RealHevc {
            name: "main 10",
            record: include_bytes!("../testdata/x265_10.hvcC"),
            sps: (2, 63, 640, 360, 1, 10),
            codec_string: "hvc1.2.4.L63.90",
        },
        RealHevc {
            name: "main 4:4:4",
            record: include_bytes!("../testdata/x265_444.hvcC"),
            sps: (4, 63, 640, 360, 3, 8),
            codec_string: "hvc1.4.10.L63.9E.8",
        },
        RealHevc {
            name: "two temporal layers",
            record: include_bytes!("../testdata/x265_tl.hvcC"),
            sps: (1, 63, 640, 360, 1, 8),
            codec_string: "hvc1.1.6.L63.90",
        },
    ];

    #[test]
    fn real_x265_records() {
        for case in REAL_HEVC {
            let config = HevcDecoderConfig::parse(case.record)
                .unwrap_or_else(|e| panic!("{}: {e}", case.name));
            assert_eq!(config.nal_length_size, 4, "{}", case.name);
            // x265 writes VPS, SPS, PPS and its version string as a prefix SEI array.
            let types: Vec<u8> = config.arrays.iter().map(|a| a.nal_type).collect();
            assert_eq!(
                types,
                vec![NAL_VPS, NAL_SPS, NAL_PPS, NAL_PREFIX_SEI],
                "{}",
                case.name
            );
            let ps_types: Vec<Option<u8>> = config.parameter_sets().map(|n| nal_type(n)).collect();
            assert_eq!(
                ps_types,
                vec![Some(32), Some(33), Some(34)],
                "{}",
                case.name
            );
            let sps = config
                .sps_info()
                .unwrap_or_else(|e| panic!("{}: {e}", case.name));
            let got = (
                sps.profile_idc,
                sps.level_idc,
                sps.width,
                sps.height,
                sps.chroma_format_idc,
                sps.bit_depth_luma,
            );
            assert_eq!(got, case.sps, "{}", case.name);
            assert_eq!(
                (
                    config.general_profile_idc,
                    config.general_level_idc,
                    u32::from(config.bit_depth_luma)
                ),
                (sps.profile_idc, sps.level_idc, sps.bit_depth_luma),
                "{}: record and SPS agree",
                case.name
            );
            assert_eq!(config.codec_string(), case.codec_string, "{}", case.name);
            // trace_headers: vui_num_units_in_tick 1, vui_time_scale 25.
            assert_eq!(sps.timing, Some((1, 25)), "{}", case.name);
            assert_eq!(sps.frame_rate(), Some(25.0), "{}", case.name);
        }
    }

    #[test]
    fn sps_with_scaling_lists_and_short_term_rps() {
        // The x265_main.hvcC SPS with explicit scaling_list_data() and two short-term RPSs
        // (the second inter-predicted) spliced in by testdata/splice_hevc_sps.py, because
        // x265 writes neither in the SPS. ffmpeg's trace_headers reads it through to
        // vui_num_units_in_tick 1 / vui_time_scale 25, which is only reachable by skipping
        // both structures exactly.
        let sps = "42010101600000030090000003000003003fa00502016965959a493e4fffec9fffd93fff\
             ac9fffffffffffffffd93fffffffffffffffb27fffffffffffffff8827ffffffffffffff\
             f6209fffffffffffffffd8827fffffffffffffff58827fffffffffffffff4dad6b4bc05a\
             020000030002000003003210";
        let hex: String = sps.split_whitespace().collect();
        let bytes: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("test hex is valid"))
            .collect();
        let info = HevcSpsInfo::parse(&bytes).expect("spliced SPS parses");
        assert_eq!(
            (info.width, info.height, info.timing),
            (640, 360, Some((1, 25)))
        );
    }

    #[test]
    fn every_truncation_of_a_real_record_fails_cleanly() {
        let raw = REAL_HEVC[0].record;
        for cut in 0..raw.len() {
            assert!(
                HevcDecoderConfig::parse(&raw[..cut]).is_err(),
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn irap_access_unit_gets_aud_and_parameter_sets() {
        let config = HevcDecoderConfig::parse(REAL_HEVC[0].record).unwrap();
        // An IDR_W_RADL slice (type 19) in a 4-byte length-prefixed sample.
        let sample = Bytes::from_static(&[0, 0, 0, 3, 0x26, 0x01, 0xaf]);
        let mut out = BytesMut::new();
        let info = access_unit_to_annex_b(&sample, &config, &mut out).unwrap();
        assert_eq!(
            info,
            AccessUnitInfo {
                irap: true,
                inserted_parameter_sets: true,
                nal_count: 5
            }
        );
        let units: Vec<Option<u8>> = crate::nal::annex_b_units(&out.freeze())
            .map(|n| nal_type(&n))
            .collect();
        assert_eq!(
            units,
            vec![Some(35), Some(32), Some(33), Some(34), Some(19)]
        );
        let inter = Bytes::from_static(&[0, 0, 0, 3, 0x02, 0x01, 0xd0]);
        let mut out = BytesMut::new();
        let info = access_unit_to_annex_b(&inter, &config, &mut out).unwrap();
        assert!(!info.irap && !info.inserted_parameter_sets);
        assert_eq!(
            &out[..],
            &[0, 0, 0, 1, 0x46, 0x01, 0x50, 0, 0, 0, 1, 0x02, 0x01, 0xd0]
        );
    }

    #[test]
    fn truncated_config_reports_field() {
        let err = HevcDecoderConfig::parse(&[1; 10]).unwrap_err();
        assert!(matches!(
            err,
            HevcError::ConfigTruncated {
                offset: 0,
                field: "fixed header",
                ..
            }
        ));
        let mut rec = vec![0u8; 22];
        rec.extend_from_slice(&[1, 0xa0, 0, 1, 0, 9]);
        let err = HevcDecoderConfig::parse(&rec).unwrap_err();
        assert_eq!(
            err,
            HevcError::ConfigTruncated {
                offset: 28,
                field: "nalUnit",
                need: 9,
                have: 0
            }
        );
    }

    #[test]
    fn window_table() {
        // (full size, chroma type, window, result)
        let cases = [
            ((1920, 1088), 1, [0, 0, 0, 4], Ok((1920, 1080))),
            ((640, 368), 1, [0, 0, 0, 4], Ok((640, 360))),
            ((640, 368), 3, [0, 0, 0, 8], Ok((640, 360))),
            ((640, 368), 2, [1, 1, 0, 8], Ok((636, 360))),
            ((16, 16), 1, [4, 4, 0, 0], Err(())),
        ];
        for ((w, h), ct, win, want) in cases {
            let got = apply_window(w, h, ct, win).map_err(|_| ());
            assert_eq!(got, want, "{w}x{h} chroma {ct} window {win:?}");
        }
    }
}

//! Sans-IO parsers for the codec configuration records and frame headers that a live
//! media gateway has to understand to remux between FLV, MPEG-TS, RTP and ASF.
//!
//! # What this crate is
//!
//! - Parsers for decoder configuration records (`avcC`, `hvcC`, AudioSpecificConfig) as
//!   carried in FLV sequence headers, returning parameter sets as zero-copy [`bytes::Bytes`].
//! - Just enough of the H.264 and H.265 sequence parameter sets to report picture size,
//!   profile, level, bit depth and VUI frame rate, for SDP, HLS `CODECS`/`RESOLUTION` and stats.
//! - NAL unit framing: iterating length-prefixed samples, converting to and from Annex B,
//!   and inserting AUD and parameter sets before key frames for MPEG-TS.
//! - ADTS header construction for AAC in MPEG-TS, and MPEG audio frame header parsing.
//!
//! # What this crate is not
//!
//! It is not a decoder: it never looks inside slices or audio frames. It does no I/O,
//! reads no clock and keeps no state between calls. It knows nothing of FLV, RTMP or the
//! media bus; the `flv` crate says where a configuration record starts.
//!
//! Every function is total on untrusted input: lengths are checked before slicing and
//! allocation, and failures are typed errors that say which field broke.
//!
//! # Specifications implemented
//!
//! | module | specification | sections |
//! |---|---|---|
//! | [`avc`] | ISO/IEC 14496-15 (AVC file format) | 5.3.3.1 AVCDecoderConfigurationRecord (5.2.4.1 in the 2004 edition) |
//! | [`avc`] | ITU-T H.264 | 7.3.1 NAL unit header, 7.3.2.1.1 SPS (incl. scaling lists), E.1.1 VUI timing, 7.4.2.1.1 cropping, Annex B byte stream |
//! | [`hevc`] | ISO/IEC 14496-15 | 8.3.3.1 HEVCDecoderConfigurationRecord, Annex E codec string |
//! | [`hevc`] | ITU-T H.265 | 7.3.1.2 NAL unit header, 7.3.2.2.1 SPS (size, conformance window, bit depths; walked to VUI timing through 7.3.4 scaling_list_data and 7.3.7 st_ref_pic_set), 7.3.3 profile_tier_level, E.2.1 VUI timing |
//! | [`aac`] | ISO/IEC 14496-3 | 1.6.2.1 AudioSpecificConfig (escape object type, explicit rate, explicit and backward-compatible SBR/PS signalling, 1.6.5.2), 4.4.1 GASpecificConfig head, 1.A.2.2 ADTS |
//! | [`aac`] | ISO/IEC 13818-7 | 6.2 ADTS fixed and variable header |
//! | [`mp3`] | ISO/IEC 11172-3, 13818-3 | 2.4.1.3 frame header, bitrate and sampling tables; MPEG 2.5 (de facto) |
//! | [`nal`] | ISO/IEC 14496-15, ITU-T H.264 Annex B | length-prefixed samples, start codes |
//! | RFC 6381 | codec strings | `avc1.PPCCLL`, `hvc1.…`, `mp4a.40.N` |

//! # Example
//!
//! ```
//! use bytes::{Bytes, BytesMut};
//! use codecs::{avc, AudioSpecificConfig, AvcDecoderConfig};
//!
//! // An FLV AVC sequence header's payload (after the 5-byte tag header): libx264 High 3.0.
//! let avcc = Bytes::from_static(&[
//!     0x01, 0x64, 0x00, 0x1e, 0xff, 0xe1, 0x00, 0x1a, 0x67, 0x64, 0x00, 0x1e, 0xac, 0xd9,
//!     0x40, 0xa0, 0x2f, 0xf9, 0x70, 0x11, 0x00, 0x00, 0x03, 0x00, 0x01, 0x00, 0x00, 0x03,
//!     0x00, 0x32, 0x0f, 0x16, 0x2d, 0x96, 0x01, 0x00, 0x06, 0x68, 0xeb, 0xe3, 0xcb, 0x22,
//!     0xc0, 0xfd, 0xf8, 0xf8, 0x00,
//! ]);
//! let config = AvcDecoderConfig::parse_bytes(&avcc)?;
//! let sps = config.sps_info()?;
//! assert_eq!((sps.width, sps.height, sps.frame_rate), (640, 360, Some(25.0)));
//! assert_eq!(config.codec_string(), "avc1.64001e");
//!
//! // A key frame's payload (after the tag header) becomes an Annex B access unit for TS.
//! let sample = Bytes::from_static(&[0, 0, 0, 2, 0x65, 0x88]);
//! let mut es = BytesMut::new();
//! let info = avc::access_unit_to_annex_b(&sample, &config, &mut es)?;
//! assert!(info.idr && info.inserted_parameter_sets); // AUD, SPS, PPS, IDR
//!
//! // AAC: the AudioSpecificConfig gives each raw frame its ADTS header.
//! let asc = AudioSpecificConfig::parse(&[0x12, 0x10])?;
//! assert_eq!(asc.adts_header(100)?, [0xff, 0xf1, 0x50, 0x80, 0x0d, 0x7f, 0xfc]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod aac;
pub mod avc;
pub mod bits;
pub mod hevc;
pub mod mp3;
pub mod nal;

pub use aac::{adts_header, AacError, AudioSpecificConfig};
pub use avc::{AvcDecoderConfig, AvcError, SpsInfo};
pub use bits::BitError;
pub use hevc::{HevcDecoderConfig, HevcError, HevcSpsInfo};
pub use mp3::{Mp3Error, Mp3FrameHeader};
pub use nal::{nal_units, NalError, NalUnits};

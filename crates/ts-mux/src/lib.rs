//! A sans-IO MPEG-TS muxer for HLS segments.
//!
//! It takes FLV-style elementary frames (length-prefixed H.264/H.265 access units plus their
//! decoder configuration records, raw AAC frames plus the AudioSpecificConfig, MPEG audio
//! frames) and writes 188-byte transport stream packets into a caller-owned `BytesMut`. The
//! media packets (TS, adaptation field and PES headers) are written here directly, so the
//! elementary stream (the Annex B access unit, the audio batch) is copied once, into the output;
//! the tables (PAT, PMT) are the
//! `mpeg2ts` crate's, which the unit tests also use as the oracle for the media packets. Codec
//! parsing (avcC, hvcC, AudioSpecificConfig, ADTS, MPEG audio headers, NAL framing) is the
//! `codecs` crate; this crate decides what goes into each packet.
//!
//! What it is not: it does no I/O, reads no clock, does not decide where segments start (the
//! `hls` crate does, calling [`TsMuxer::write_tables`] at every segment start), and it does not
//! parse FLV tag headers.
//!
//! | spec | what is implemented |
//! |---|---|
//! | ISO/IEC 13818-1 2.4.3 (TS packets), 2.4.4 (PAT, PMT) | one program, PMT on PID 0x1000, continuity counters kept across segments |
//! | ISO/IEC 13818-1 2.4.3.5 (adaptation field) | PCR on the video PID (audio PID for audio-only), random_access_indicator on keyframes |
//! | ISO/IEC 13818-1 2.4.3.7 (PES) | PTS/DTS at 90 kHz from millisecond timestamps plus composition time |
//! | ITU-T H.264 Annex B, 7.3.2.4 | AVCC to Annex B, access unit delimiter, SPS/PPS before every IDR |
//! | ITU-T H.265 Annex B, 7.3.2.5 | HVCC to Annex B (stream type 0x24), AUD, VPS/SPS/PPS before every IRAP |
//! | ISO/IEC 14496-15 5.3.3, 8.3.3 | avcC / hvcC decoder configuration records |
//! | ISO/IEC 13818-7 6.2, ISO/IEC 14496-3 1.6.2.1 | ADTS headers from the AudioSpecificConfig; several frames may share a PES |
//! | ISO/IEC 11172-3 / 13818-3 | MP3 as stream type 0x03, or 0x04 for the MPEG-2 low sampling rates |

mod codec;
mod muxer;

pub use codec::{
    mpeg_audio_stream_type, parse_audio_specific_config, parse_avcc, parse_hvcc, ParamSets,
};
pub use muxer::{
    AudioCodec, AudioFrame, Tracks, TsMuxer, VideoCodec, VideoFrame, AUDIO_PID, PMT_PID,
    PROGRAM_NUMBER, TS_OFFSET_90K, VIDEO_PID,
};

/// Why a frame or a decoder configuration could not be muxed. The muxer state is unchanged by
/// a failed call, so the caller can count the error and go on with the next frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MuxError {
    /// A decoder configuration record is malformed or uses a feature TS cannot carry.
    #[error("bad {codec} decoder configuration: {reason}")]
    BadConfig {
        /// The codec whose configuration was rejected ("avc", "hevc", "aac").
        codec: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// A coded frame is malformed.
    #[error("bad frame: {0}")]
    BadFrame(&'static str),
    /// A frame arrived before the decoder configuration of its track.
    #[error("no {0} decoder configuration yet")]
    MissingConfig(&'static str),
    /// A frame arrived for a track the program map does not announce.
    #[error("no {0} track in the program map")]
    NoSuchTrack(&'static str),
}

#[cfg(test)]
mod tests;

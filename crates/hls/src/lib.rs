//! A sans-IO HLS segmenter and live playlist writer.
//!
//! [`Segmenter`] takes FLV-style tags (the fields of the bus `Tag`, as [`InputTag`]), muxes
//! them into MPEG-TS with `ts-mux`, cuts segments on keyframes at a target duration (audio-only
//! streams on time), and keeps a sliding window of finished segments and the playlist as
//! shared `Bytes`. Memory is bounded by the window: segments that leave it (plus a short grace
//! period) are dropped.
//!
//! What it is not: no HTTP, no clock reads (wall-clock time for EXT-X-PROGRAM-DATE-TIME comes
//! in as `now_ms`), no randomness (the AES key secret is given at construction), no bus.
//!
//! | spec | what is implemented |
//! |---|---|
//! | RFC 8216 4.3.3 (media playlist tags) | EXT-X-VERSION:3, EXT-X-TARGETDURATION (ceiling of the longest segment, never decreasing), EXT-X-MEDIA-SEQUENCE, EXT-X-DISCONTINUITY-SEQUENCE |
//! | RFC 8216 4.3.2 (media segment tags) | EXTINF (milliseconds), EXT-X-DISCONTINUITY, EXT-X-PROGRAM-DATE-TIME, EXT-X-KEY |
//! | RFC 8216 5.2, 4.3.2.4 | AES-128-CBC with PKCS7 over whole segments; IV = media sequence number; key rotation |
//! | RFC 8216 6.2.1, 6.2.2 | segments start on keyframes; removed segments stay available for a grace period |
//! | FLV 10.1 E.4.2/E.4.3, Enhanced RTMP (via the `flv` crate) | audio/video tag bodies: AVC, HEVC (legacy id 12 or `hvc1`), AAC, MP3 |

mod crypto;
mod flv_body;
pub mod playlist;
mod segmenter;

pub use playlist::SegmentEntry;
pub use segmenter::{
    Encryption, InputTag, Segment, Segmenter, SegmenterOptions, SegmenterStats, TagKind,
    BACKWARD_JUMP_MS, PROBE_MAX_TAGS, PROBE_MS,
};

/// Why a tag was skipped. None of these is fatal: the segmenter counts the tag and goes on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HlsError {
    /// The FLV audio/video tag header did not parse when the tag was classified (it is
    /// truncated or malformed).
    #[error("bad FLV tag header: truncated or malformed")]
    TagHeader,
    /// The tag cannot be muxed as it is.
    #[error("bad FLV tag: {0}")]
    BadTag(&'static str),
    /// The muxer rejected the frame or configuration.
    #[error(transparent)]
    Mux(#[from] ts_mux::MuxError),
}

#[cfg(test)]
mod tests;

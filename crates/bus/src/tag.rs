//! The unit that travels on the bus: one FLV-style tag.

use bytes::Bytes;

/// What a tag carries, as FLV tag types 8, 9 and 18 say.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TagKind {
    Audio,
    Video,
    /// Script data (AMF0), such as `onMetaData`.
    Script,
}

impl TagKind {
    /// The FLV tag type (and RTMP message type) for this kind.
    pub fn flv_type(self) -> u8 {
        match self {
            TagKind::Audio => 8,
            TagKind::Video => 9,
            TagKind::Script => 18,
        }
    }
}

/// One FLV-style tag. Cloning is cheap: the payload is a shared [`Bytes`].
///
/// The FLV tag header is parsed once, when ingest builds the tag with [`Tag::classify`]: the flags,
/// the composition time and [`Tag::media`] (codec, packet kind, where the payload starts) come from
/// that one parse, and every egress reads them instead of parsing the header again. No codec
/// payload is ever parsed by the bus.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tag {
    pub kind: TagKind,
    /// Decode timestamp in milliseconds.
    ///
    /// On the way into [`crate::Publisher::push`] only the low 32 bits are read: they are the
    /// publisher's RTMP timestamp. On the way out it is the stream's continuous timeline: wrap-free,
    /// with jumps corrected and continuing across a publisher's reconnect.
    pub timestamp: u64,
    /// Video composition time offset in milliseconds: PTS = `timestamp + composition_time`.
    pub composition_time: i32,
    /// A video keyframe (random access point).
    pub keyframe: bool,
    /// A decoder configuration: AVC/HEVC configuration record or AAC AudioSpecificConfig.
    pub sequence_header: bool,
    /// The whole FLV tag body (the RTMP message payload), codec header bytes included.
    pub data: Bytes,
    /// What the body's audio/video header says, parsed once at ingest ([`Tag::classify`]); it
    /// describes `data`, so code that replaces `data` classifies the tag again.
    /// [`flv::Media::Opaque`] for script data, for a header that does not parse, and for tags made
    /// with [`Tag::new`].
    pub media: flv::Media,
}

impl Tag {
    /// A tag with no flags set and [`flv::Media::Opaque`] media: egress sees no codec in it. For
    /// tests of the bus itself; ingest uses [`Tag::classify`].
    pub fn new(kind: TagKind, timestamp: u64, data: Bytes) -> Tag {
        Tag {
            kind,
            timestamp,
            composition_time: 0,
            keyframe: false,
            sequence_header: false,
            data,
            media: flv::Media::Opaque,
        }
    }

    /// A tag as ingest builds it: the body's header is parsed once ([`flv::Media::of`]) and the
    /// keyframe and sequence-header flags, the composition time and [`Tag::media`] are set from
    /// it. A header that does not parse gives a tag with no flags and opaque media, forwarded
    /// unchanged.
    pub fn classify(kind: TagKind, timestamp: u64, data: Bytes) -> Tag {
        let media = flv::Media::of(kind.flv_type(), &data);
        let flags = media.flags();
        Tag {
            kind,
            timestamp,
            composition_time: media.composition_time(),
            keyframe: flags.keyframe,
            sequence_header: flags.sequence_header,
            data,
            media,
        }
    }

    /// The codec payload (configuration record, NAL units, audio frame) as a zero-copy slice of
    /// [`Tag::data`]: the bytes after the header that [`Tag::media`] describes; the whole body for
    /// opaque media.
    pub fn payload(&self) -> Bytes {
        let start = self.media.header_len().min(self.data.len());
        self.data.slice(start..)
    }

    /// True for a video keyframe that is not a sequence header: a point where a decoder can start.
    pub fn is_video_keyframe(&self) -> bool {
        self.kind == TagKind::Video && self.keyframe && !self.sequence_header
    }

    /// The presentation timestamp in milliseconds (never below zero).
    pub fn pts(&self) -> u64 {
        self.timestamp
            .saturating_add_signed(i64::from(self.composition_time))
    }
}

/// Which egress (or ingest) protocol a subscriber or publisher speaks; used for statistics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    Rtmp,
    HttpFlv,
    Hls,
    Rtsp,
    Mms,
    /// A per-stream remuxer inside the gateway (HLS muxer, RTP packetizer); not a viewer.
    Internal,
}

impl Protocol {
    /// Every protocol, in the order the statistics report them.
    pub const ALL: [Protocol; 6] = [
        Protocol::Rtmp,
        Protocol::HttpFlv,
        Protocol::Hls,
        Protocol::Rtsp,
        Protocol::Mms,
        Protocol::Internal,
    ];

    /// A short lowercase name, as used in logs and the stats API.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Rtmp => "rtmp",
            Protocol::HttpFlv => "http-flv",
            Protocol::Hls => "hls",
            Protocol::Rtsp => "rtsp",
            Protocol::Mms => "mms",
            Protocol::Internal => "internal",
        }
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

/// What ingest learned about the stream's codecs from its sequence headers, for the stats API and
/// for egress that must describe the stream before media flows (SDP, ASF headers).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MediaInfo {
    /// For example "h264", "h265", "av1", "vp9".
    pub video_codec: Option<String>,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub frame_rate: Option<f64>,
    /// For example "aac", "mp3".
    pub audio_codec: Option<String>,
    pub sample_rate: Option<u32>,
    pub channels: Option<u8>,
}

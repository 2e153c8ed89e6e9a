//! Sans-IO FLV: the tag headers that RTMP and HTTP-FLV carry, and FLV file framing.
//!
//! # What this crate is
//!
//! - Audio and video tag header parsers ([`AudioTagHeader`], [`VideoTagHeader`]) that
//!   understand legacy FLV codecs, the codec id 12 HEVC convention, and Enhanced RTMP
//!   (E-RTMP v1 extended video header with FourCC, v2 audio header, ModEx blocks). Each
//!   reports `header_len`, the offset where the codec payload begins.
//! - [`classify`], which ingest calls once per tag to set the bus's key frame and
//!   sequence header flags.
//! - Writer helpers for HTTP-FLV ([`file_header`], [`tag_header`], [`previous_tag_size`])
//!   that return small arrays, so a tag body `Bytes` is shared, never copied.
//! - A sans-IO reader ([`FlvReader`], [`parse_file`]) where "need more bytes" is a state.
//! - `onMetaData` parsing and building ([`metadata`]), using the `amf` crate.
//!
//! # What this crate is not
//!
//! It does no I/O, reads no clock and knows nothing of RTMP chunking or the bus. It does
//! not parse codec payloads: [`codecs`](../codecs/index.html) parses the `avcC`/`hvcC`/ASC
//! records found at `header_len`. Timestamps are passed through as written; fixing wraps
//! and jumps is the bus's job.
//!
//! # Specifications implemented
//!
//! | area | specification | sections |
//! |---|---|---|
//! | file header, body, tags | Adobe FLV and F4V File Format Specification 10.1 | E.2 header, E.3 body (PreviousTagSize), E.4.1 FLVTAG (TimestampExtended, Filter bit) |
//! | audio tag header | FLV 10.1 | E.4.2.1 AUDIODATA (SoundFormat, AACPacketType) |
//! | video tag header | FLV 10.1 | E.4.3.1 VIDEODATA, E.4.3.2 AVCVIDEOPACKET (SI24 CompositionTime) |
//! | script data | FLV 10.1 | E.4.4 SCRIPTDATA, E.5 onMetaData |
//! | enhanced video | Enhanced RTMP v1 (veovera) | ExVideoTagHeader: IsExHeader, VideoPacketType 0-5, FourCC `hvc1`/`av01`/`vp09`, CompositionTime only for CodedFrames |
//! | enhanced audio, ModEx, `avc1` | Enhanced RTMP v2 | ExAudioTagHeader (SoundFormat 9, FourCC `mp4a`/`Opus`/`fLaC`/`ac-3`/`ec-3`/`.mp3`), ModEx skipping |
//! | HEVC codec id 12 | de facto (SRS, nginx-rtmp forks, Chinese CDNs) | same layout as AVC |
//!
//! Not implemented: E-RTMP multitrack packets (reported as `Other`), unpacking of
//! encrypted (`Filter`) bodies, AMF3 script tags.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod audio;
pub mod metadata;
pub mod reader;
pub mod tag;
pub mod video;
pub mod writer;

pub use audio::{AudioCodec, AudioPacketKind, AudioTagHeader, SoundFormat};
pub use metadata::{strip_set_data_frame, Metadata, MetadataError};
pub use reader::{parse_file, FlvFile, FlvHeader, FlvReader, FlvTag, ReadError};
pub use tag::{
    classify, TagFlags, TagHeaderError, TagType, TAG_TYPE_AUDIO, TAG_TYPE_SCRIPT, TAG_TYPE_VIDEO,
};
pub use video::{FourCc, FrameType, VideoCodec, VideoPacketKind, VideoTagHeader};
pub use writer::{
    encode_tag, file_header, previous_tag_size, tag_header, write_tag, FILE_HEADER_LEN,
    MAX_TAG_DATA_SIZE, TAG_HEADER_LEN,
};

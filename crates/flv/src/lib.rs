//! Sans-IO FLV: the tag headers that RTMP and HTTP-FLV carry, and FLV file framing.
//!
//! # What this crate is
//!
//! - Audio and video tag header parsers ([`AudioTagHeader`], [`VideoTagHeader`]) that
//!   understand legacy FLV codecs, the codec id 12 HEVC convention, and Enhanced RTMP
//!   (E-RTMP v1 extended video header with FourCC, v2 audio header, ModEx blocks). Each
//!   reports `header_len`, the offset where the codec payload begins.
//! - [`Media::of`], which ingest calls once per tag: the codec, packet kind, composition
//!   time and payload offset travel with the bus tag, so no egress parses a header again.
//!   [`classify`] derives the bus's key frame and sequence header flags from it.
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

//! # Example
//!
//! ```
//! use bytes::{Bytes, BytesMut};
//!
//! // Ingest: parse each tag's header once and find where its codec payload starts.
//! let body = Bytes::from_static(&[0x17, 0x01, 0x00, 0x00, 0x50, 0, 0, 0, 1, 0x65]);
//! let media = flv::Media::of(flv::TAG_TYPE_VIDEO, &body);
//! let flags = media.flags();
//! assert!(flags.keyframe && !flags.sequence_header);
//! let flv::Media::Video(v) = media else { panic!("a video header") };
//! assert_eq!((v.codec, v.composition_time), (flv::VideoCodec::Avc, 80));
//! assert_eq!(media.payload(&body), &[0, 0, 0, 1, 0x65]);
//!
//! // HTTP-FLV: the file header once, then header, shared body and trailer per tag.
//! let size = body.len() as u32;
//! let mut out = BytesMut::new();
//! out.extend_from_slice(&flv::file_header(true, true));
//! out.extend_from_slice(&flv::tag_header(flv::TAG_TYPE_VIDEO, size, 40));
//! out.extend_from_slice(&body);
//! out.extend_from_slice(&flv::previous_tag_size(flv::writer::tag_size(size)));
//!
//! // Reading it back, whole or incrementally.
//! let file = flv::parse_file(&out.clone().freeze())?;
//! assert_eq!((file.tags[0].timestamp, &file.tags[0].body), (40, &body));
//! let mut reader = flv::FlvReader::new();
//! reader.push(&out[..20]);
//! assert_eq!(reader.next_tag()?, None); // need more bytes
//! reader.push(&out[20..]);
//! assert_eq!(reader.next_tag()?.map(|t| t.body), Some(body));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod audio;
pub mod body;
pub mod metadata;
pub mod reader;
pub mod tag;
pub mod video;
pub mod writer;

pub use audio::{AudioCodec, AudioPacketKind, AudioTagHeader, SoundFormat};
pub use body::{AudioMedia, Media, VideoMedia};
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

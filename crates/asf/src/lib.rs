//! A sans-IO live ASF muxer for the MMS egress (MMSH and MMST).
//!
//! It turns the FLV-style tags of one live stream into an ASF header and a series of fixed-size
//! data packets, built once per stream and shared by every viewer. It does no networking, reads
//! no clock and knows nothing of the bus: the caller feeds tags and drains [`MuxEvent`]s.
//!
//! What it is not: an ASF file writer (there is no index, no file size and no duration; the
//! broadcast flag is set), nor a demuxer.
//!
//! | specification | what is implemented |
//! |---|---|
//! | ASF specification 1.20.03, 3.1–3.4 | Header, File Properties, Stream Properties, Header Extension objects |
//! | ASF specification 1.20.03, 5.1–5.2 | Data Object header; data packets with error correction data, payload parsing information, multiple payloads, replicated data (object size, presentation time), keyframe bit, padding |
//! | ASF specification 1.20.03, 9.1–9.2 | WAVEFORMATEX (AAC, tag 0x00FF; MP3, tag 0x0055 with MPEGLAYER3WAVEFORMAT), BITMAPINFOHEADER (`H264`, Annex B SPS/PPS) |
//! | ASF specification 1.20.03, 4.1 | Extended Stream Properties, with the DVR-MS timing payload extension for streams with B-frames |
//! | FLV 10.1 annex E.4.2–E.4.3, Enhanced RTMP | the audio and video tag headers, as crate `flv` parsed them at ingest ([`flv::Media`]): AVC (legacy and `avc1`), AAC (legacy and `mp4a`), MP3; others reported unsupported |
//!
//! Codecs carried: H.264 video, AAC and MP3 audio. Anything else is reported as
//! [`MuxEvent::Unsupported`] once and skipped, so an HEVC + AAC stream still plays its audio.

pub mod from_flv;
pub mod guid;
pub mod header;
pub mod packet;

pub use from_flv::{FlvAsfMuxer, MuxEvent, MuxerOptions, TagKind, TagRef, Track};
pub use header::{build_header, HeaderParams, StreamDesc, StreamFormat, DATA_OBJECT_HEADER_LEN};
pub use packet::{DataPacket, MediaObject, Packetizer, MAX_PACKET_SIZE, MIN_PACKET_SIZE};

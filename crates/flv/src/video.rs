//! Video tag headers: legacy FLV (FLV 10.1 E.4.3.1, with the AVC packet header of
//! E.4.3.2), the codec id 12 HEVC convention, and the Enhanced RTMP extended header.
//!
//! Enhanced RTMP (veovera "enhanced-rtmp", v1 "Defining Additional Video Codecs" and v2
//! "Enhanced Video") replaces the first byte's layout when its top bit is set:
//!
//! ```text
//! bit 7     IsExHeader = 1
//! bits 4-6  VideoFrameType (1 key, 2 inter, 3 disposable, 4 generated, 5 command)
//! bits 0-3  VideoPacketType (0 SequenceStart, 1 CodedFrames, 2 SequenceEnd,
//!           3 CodedFramesX, 4 Metadata, 5 MPEG2TSSequenceStart, 6 Multitrack, 7 ModEx)
//! then      [ModEx blocks while the packet type is 7]
//! then      VideoFourCc UI32 ("hvc1", "av01", "vp09", "avc1")
//! then      CompositionTime SI24, only for CodedFrames of hvc1/avc1
//! then      the codec payload (configuration record or length-prefixed NAL units / OBUs)
//! ```

use crate::tag::{need, TagHeaderError};

/// Legacy `CodecID` of AVC (FLV 10.1 E.4.3.1).
pub const CODEC_ID_AVC: u8 = 7;
/// Legacy `CodecID` that Chinese CDNs and encoders (e.g. the "flv_h265" convention used
/// by SRS, nginx-rtmp forks and many IP cameras) use for HEVC, with the AVC layout.
pub const CODEC_ID_HEVC: u8 = 12;

/// Four bytes that name a codec in Enhanced RTMP.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct FourCc(pub [u8; 4]);

impl std::fmt::Debug for FourCc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "FourCc({:?})", String::from_utf8_lossy(&self.0))
    }
}

/// `VideoFrameType` (FLV 10.1 E.4.3.1; same values in Enhanced RTMP).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FrameType {
    /// 1: key frame (for AVC/HEVC a seekable frame).
    Key,
    /// 2: inter frame.
    Inter,
    /// 3: disposable inter frame (H.263 only).
    DisposableInter,
    /// 4: generated key frame (server use only).
    GeneratedKey,
    /// 5: video info / command frame; carries no picture.
    Command,
    /// 0, 6 or 7: reserved.
    Reserved(u8),
}

impl FrameType {
    fn from_bits(v: u8) -> Self {
        match v {
            1 => FrameType::Key,
            2 => FrameType::Inter,
            3 => FrameType::DisposableInter,
            4 => FrameType::GeneratedKey,
            5 => FrameType::Command,
            other => FrameType::Reserved(other),
        }
    }
}

/// The video codec, unified over legacy codec ids and Enhanced RTMP FourCCs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VideoCodec {
    /// H.264 (legacy id 7, or E-RTMP `avc1`).
    Avc,
    /// H.265 (legacy id 12, or E-RTMP `hvc1`).
    Hevc,
    /// AV1 (E-RTMP `av01`).
    Av1,
    /// VP9 (E-RTMP `vp09`).
    Vp9,
    /// Another legacy codec id (2 Sorenson H.263, 3 screen video, 4 VP6, ...).
    OtherId(u8),
    /// Another E-RTMP FourCC.
    OtherFourCc(FourCc),
}

/// What a video tag carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VideoPacketKind {
    /// Decoder configuration (avcC, hvcC, av1C, vpcC): AVC packet type 0 or E-RTMP
    /// SequenceStart.
    SequenceHeader,
    /// Coded pictures: AVC packet type 1, E-RTMP CodedFrames or CodedFramesX, or any tag
    /// of a legacy codec without a packet type.
    Frame,
    /// End of sequence: AVC packet type 2 or E-RTMP SequenceEnd.
    EndOfSequence,
    /// Anything else (E-RTMP Metadata, MPEG2TSSequenceStart, Multitrack, command frames),
    /// by its raw packet type.
    Other(u8),
}

/// E-RTMP video packet types.
mod ex_video {
    pub const SEQUENCE_START: u8 = 0;
    pub const CODED_FRAMES: u8 = 1;
    pub const SEQUENCE_END: u8 = 2;
    pub const CODED_FRAMES_X: u8 = 3;
    pub const METADATA: u8 = 4;
    pub const MULTITRACK: u8 = 6;
    pub const MOD_EX: u8 = 7;
}

/// A parsed video tag header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VideoTagHeader {
    /// The frame type.
    pub frame_type: FrameType,
    /// The codec.
    pub codec: VideoCodec,
    /// What the tag carries.
    pub packet: VideoPacketKind,
    /// The raw packet type: `AVCPacketType` (legacy AVC/HEVC) or `VideoPacketType` (E-RTMP).
    pub raw_packet_type: Option<u8>,
    /// Composition time offset in milliseconds (PTS = DTS + this); 0 when absent.
    pub composition_time: i32,
    /// Offset in the tag body where the codec payload (the configuration record or the
    /// length-prefixed NAL units) begins.
    pub header_len: usize,
    /// The tag uses the Enhanced RTMP extended header.
    pub enhanced: bool,
}

impl VideoTagHeader {
    /// Parses the header at the start of a video tag body.
    pub fn parse(body: &[u8]) -> Result<Self, TagHeaderError> {
        need(body, 1, "video tag header")?;
        if body[0] & 0x80 != 0 {
            parse_enhanced(body)
        } else {
            parse_legacy(body)
        }
    }

    /// Returns whether this is a key frame carrying pictures (not a sequence header).
    pub fn is_keyframe(&self) -> bool {
        self.frame_type == FrameType::Key && self.packet == VideoPacketKind::Frame
    }
}

fn parse_legacy(body: &[u8]) -> Result<VideoTagHeader, TagHeaderError> {
    let frame_type = FrameType::from_bits(body[0] >> 4);
    let codec_id = body[0] & 0x0f;
    let codec = match codec_id {
        CODEC_ID_AVC => VideoCodec::Avc,
        CODEC_ID_HEVC => VideoCodec::Hevc,
        other => VideoCodec::OtherId(other),
    };
    let mut h = VideoTagHeader {
        frame_type,
        codec,
        packet: VideoPacketKind::Frame,
        raw_packet_type: None,
        composition_time: 0,
        header_len: 1,
        enhanced: false,
    };
    if frame_type == FrameType::Command {
        // A video info/command frame holds one command byte and no picture (E.4.3.1).
        h.packet = VideoPacketKind::Other(body.get(1).copied().unwrap_or(0));
        return Ok(h);
    }
    if matches!(codec, VideoCodec::Avc | VideoCodec::Hevc) {
        need(body, 5, "AVC packet header")?;
        h.raw_packet_type = Some(body[1]);
        h.packet = match body[1] {
            0 => VideoPacketKind::SequenceHeader,
            1 => VideoPacketKind::Frame,
            2 => VideoPacketKind::EndOfSequence,
            other => VideoPacketKind::Other(other),
        };
        h.composition_time = si24(&body[2..5]);
        h.header_len = 5;
    }
    Ok(h)
}

/// Reads a big-endian signed 24-bit integer.
fn si24(b: &[u8]) -> i32 {
    // Placing the three bytes high in an i32 and shifting back sign-extends them.
    i32::from_be_bytes([b[0], b[1], b[2], 0]) >> 8
}

fn parse_enhanced(body: &[u8]) -> Result<VideoTagHeader, TagHeaderError> {
    let frame_type = FrameType::from_bits((body[0] >> 4) & 0x07);
    let mut packet_type = body[0] & 0x0f;
    let mut pos = 1;
    while packet_type == ex_video::MOD_EX {
        (packet_type, pos) = skip_mod_ex(body, pos)?;
    }
    let mut h = VideoTagHeader {
        frame_type,
        codec: VideoCodec::OtherId(0),
        packet: VideoPacketKind::Other(packet_type),
        raw_packet_type: Some(packet_type),
        composition_time: 0,
        header_len: pos,
        enhanced: true,
    };
    let is_command = frame_type == FrameType::Command && packet_type != ex_video::METADATA;
    if is_command || packet_type == ex_video::MULTITRACK {
        // A command frame carries a VideoCommand byte and no FourCC; multitrack packets
        // carry per-track FourCCs, which this gateway does not unpack.
        return Ok(h);
    }
    need(body, pos + 4, "E-RTMP video FourCC")?;
    let fourcc = FourCc([body[pos], body[pos + 1], body[pos + 2], body[pos + 3]]);
    h.codec = fourcc_video_codec(fourcc);
    h.header_len = pos + 4;
    h.packet = match packet_type {
        ex_video::SEQUENCE_START => VideoPacketKind::SequenceHeader,
        ex_video::CODED_FRAMES | ex_video::CODED_FRAMES_X => VideoPacketKind::Frame,
        ex_video::SEQUENCE_END => VideoPacketKind::EndOfSequence,
        other => VideoPacketKind::Other(other),
    };
    // Only AVC and HEVC CodedFrames carry SI24 CompositionTime; CodedFramesX implies 0.
    let has_cts = packet_type == ex_video::CODED_FRAMES
        && matches!(h.codec, VideoCodec::Avc | VideoCodec::Hevc);
    if has_cts {
        need(body, pos + 7, "E-RTMP CompositionTime")?;
        h.composition_time = si24(&body[pos + 4..pos + 7]);
        h.header_len = pos + 7;
    }
    Ok(h)
}

fn fourcc_video_codec(f: FourCc) -> VideoCodec {
    match &f.0 {
        b"avc1" => VideoCodec::Avc,
        b"hvc1" => VideoCodec::Hevc,
        b"av01" => VideoCodec::Av1,
        b"vp09" => VideoCodec::Vp9,
        _ => VideoCodec::OtherFourCc(f),
    }
}

/// Skips one E-RTMP v2 ModEx block starting at `pos` (after the first header byte or the
/// previous block) and returns the next packet type and position. Layout: `UI8 size - 1`
/// (or `0xff` then `UI16 size - 1`), the data, then one byte of `ModExType << 4 |
/// PacketType`.
pub(crate) fn skip_mod_ex(body: &[u8], pos: usize) -> Result<(u8, usize), TagHeaderError> {
    need(body, pos + 1, "E-RTMP ModEx size")?;
    let mut size = usize::from(body[pos]) + 1;
    let mut data = pos + 1;
    if size == 256 {
        need(body, pos + 3, "E-RTMP ModEx size")?;
        size = usize::from(u16::from_be_bytes([body[pos + 1], body[pos + 2]])) + 1;
        data = pos + 3;
    }
    need(body, data + size + 1, "E-RTMP ModEx data")?;
    Ok((body[data + size] & 0x0f, data + size + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Expected fields: (frame type, codec, packet, composition time, header_len, enhanced).
    type Want = (FrameType, VideoCodec, VideoPacketKind, i32, usize, bool);

    fn check(body: &[u8], want: Want) {
        let h = VideoTagHeader::parse(body).unwrap_or_else(|e| panic!("{body:02x?}: {e}"));
        let got = (
            h.frame_type,
            h.codec,
            h.packet,
            h.composition_time,
            h.header_len,
            h.enhanced,
        );
        assert_eq!(got, want, "{body:02x?}");
    }

    #[test]
    fn legacy_table() {
        use FrameType::*;
        use VideoCodec::*;
        use VideoPacketKind::*;
        // 17 00 000000: AVC key frame, sequence header (ffmpeg's first video tag).
        check(
            &[0x17, 0, 0, 0, 0, 1, 0x64],
            (Key, Avc, SequenceHeader, 0, 5, false),
        );
        // 17 01 000050: AVC key frame, CTS 80 ms (two B-frames at 25 fps).
        check(
            &[0x17, 1, 0, 0, 0x50, 0, 0, 0, 2],
            (Key, Avc, Frame, 80, 5, false),
        );
        // 27 01 ffffd8: inter frame with CTS -40 (negative SI24).
        check(
            &[0x27, 1, 0xff, 0xff, 0xd8],
            (Inter, Avc, Frame, -40, 5, false),
        );
        check(&[0x17, 2, 0, 0, 0], (Key, Avc, EndOfSequence, 0, 5, false));
        // Codec id 12: HEVC with the AVC layout.
        check(
            &[0x1c, 0, 0, 0, 0, 1],
            (Key, Hevc, SequenceHeader, 0, 5, false),
        );
        check(&[0x2c, 1, 0, 0, 0x28], (Inter, Hevc, Frame, 40, 5, false));
        // Sorenson H.263 and VP6 have no packet header.
        check(&[0x22, 0, 0], (Inter, OtherId(2), Frame, 0, 1, false));
        check(&[0x14, 0], (Key, OtherId(4), Frame, 0, 1, false));
        // Video info/command frame: one command byte.
        check(&[0x57, 0x01], (Command, Avc, Other(1), 0, 1, false));
    }

    #[test]
    fn enhanced_table() {
        use FrameType::*;
        use VideoCodec::*;
        use VideoPacketKind::*;
        // Byte 0 = 0x80 | FrameType << 4 | PacketType (E-RTMP v1 "ExVideoTagHeader").
        check(b"\x90hvc1\x01\x01", (Key, Hevc, SequenceHeader, 0, 5, true));
        // CodedFrames for hvc1 carries SI24 CompositionTime: 0x000050 = 80.
        check(
            b"\x91hvc1\x00\x00\x50\x00\x00\x00\x01\x26",
            (Key, Hevc, Frame, 80, 8, true),
        );
        check(b"\xa1hvc1\xff\xff\xd8", (Inter, Hevc, Frame, -40, 8, true));
        // CodedFramesX: composition time is implicitly zero and absent.
        check(
            b"\x93hvc1\x00\x00\x00\x01\x26",
            (Key, Hevc, Frame, 0, 5, true),
        );
        check(b"\xa3hvc1", (Inter, Hevc, Frame, 0, 5, true));
        check(b"\x92hvc1", (Key, Hevc, EndOfSequence, 0, 5, true));
        // AV1 and VP9 CodedFrames have no composition time.
        check(b"\x90av01\x81\x00", (Key, Av1, SequenceHeader, 0, 5, true));
        check(b"\x91av01\x12\x00", (Key, Av1, Frame, 0, 5, true));
        check(b"\xa1vp09\x00", (Inter, Vp9, Frame, 0, 5, true));
        // E-RTMP v2 avc1 CodedFrames carries composition time like hvc1.
        check(b"\x91avc1\x00\x00\x28", (Key, Avc, Frame, 40, 8, true));
        // Metadata (4) and MPEG2TSSequenceStart (5) are reported as Other.
        check(b"\x94hvc1\x02", (Key, Hevc, Other(4), 0, 5, true));
        check(b"\x95av01", (Key, Av1, Other(5), 0, 5, true));
        // Unknown FourCC.
        check(
            b"\x91vvc1",
            (Key, OtherFourCc(FourCc(*b"vvc1")), Frame, 0, 5, true),
        );
        // ModEx block: size-1 = 0, one data byte, then 0x03 = CodedFramesX.
        check(b"\x97\x00\x07\x03hvc1", (Key, Hevc, Frame, 0, 8, true));
        // Command frame (FrameType 5) without Metadata: a VideoCommand byte, no FourCC.
        check(b"\xd1\x00", (Command, OtherId(0), Other(1), 0, 1, true));
    }

    #[test]
    fn truncation_table() {
        let cases: &[&[u8]] = &[
            b"",
            &[0x17],
            &[0x17, 1, 0, 0],
            b"\x91hvc",
            b"\x91hvc1\x00\x00",
            b"\x97",
            b"\x97\x05\x00",
            b"\x97\xff\x00",
        ];
        for body in cases {
            assert!(VideoTagHeader::parse(body).is_err(), "{body:02x?}");
        }
    }
}

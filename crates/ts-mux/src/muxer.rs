//! The muxer: one program, up to one video and one audio elementary stream.

use bytes::{BufMut, Bytes, BytesMut};
use mpeg2ts::es::StreamType;
use mpeg2ts::ts::payload::{Pat, Pmt};
use mpeg2ts::ts::{
    AdaptationField, ContinuityCounter, EsInfo, Pid, ProgramAssociation,
    TransportScramblingControl, TsHeader, TsPacket, TsPacketWriter, TsPayload, VersionNumber,
    WriteTsPacket,
};

use codecs::AudioSpecificConfig;

use crate::codec::{self, ParamSets, START_CODE};
use crate::MuxError;

/// The PID carrying the program map table.
pub const PMT_PID: u16 = 0x1000;
/// The PID of the video elementary stream.
pub const VIDEO_PID: u16 = 0x100;
/// The PID of the audio elementary stream.
pub const AUDIO_PID: u16 = 0x101;
/// The one program number this muxer writes.
pub const PROGRAM_NUMBER: u16 = 1;
/// How far PTS/DTS lead the PCR, in 90 kHz ticks (0.7 s). A decoder needs the PCR to be at or
/// before the DTS of what it is decoding (ISO/IEC 13818-1 2.4.2); the lead also keeps PTS
/// positive for frames with a negative composition offset.
pub const TS_OFFSET_90K: u64 = 63_000;
/// PTS, DTS and the PCR base are 33-bit counters.
const TIMESTAMP_MASK: u64 = (1 << 33) - 1;
/// The largest audio PES this muxer builds before flushing a batch (it must fit the 16-bit
/// PES_packet_length field, ISO/IEC 13818-1 2.4.3.7).
const MAX_AUDIO_BATCH_BYTES: usize = 60_000;
/// PES stream_id of the video stream (the first of 0xE0-0xEF, ISO/IEC 13818-1 Table 2-22).
pub(crate) const STREAM_ID_VIDEO: u8 = 0xE0;
/// PES stream_id of the audio stream (the first of 0xC0-0xDF).
pub(crate) const STREAM_ID_AUDIO: u8 = 0xC0;
/// Bytes of TS payload in one packet.
const TS_PAYLOAD: usize = TsPacket::SIZE - 4;

/// The video codecs the muxer can carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VideoCodec {
    /// H.264/AVC, stream type 0x1B.
    H264,
    /// H.265/HEVC, stream type 0x24.
    H265,
}

/// The audio codecs the muxer can carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AudioCodec {
    /// AAC in ADTS, stream type 0x0F.
    Aac,
    /// MPEG-1 audio (Layer III at 32/44.1/48 kHz), stream type 0x03.
    Mp3,
    /// MPEG-2 low-sampling-rate audio (and MPEG-2.5), stream type 0x04.
    Mp3Lsf,
}

impl AudioCodec {
    /// Picks `Mp3` or `Mp3Lsf` from the header of an MPEG audio frame.
    pub fn from_mpeg_audio_frame(frame: &[u8]) -> Option<AudioCodec> {
        match codec::mpeg_audio_stream_type(frame)? {
            0x03 => Some(AudioCodec::Mp3),
            _ => Some(AudioCodec::Mp3Lsf),
        }
    }
}

/// Which elementary streams the program map announces.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tracks {
    /// The video stream, if any.
    pub video: Option<VideoCodec>,
    /// The audio stream, if any.
    pub audio: Option<AudioCodec>,
}

/// One video access unit as carried in FLV: length-prefixed NAL units.
#[derive(Debug, Clone)]
pub struct VideoFrame {
    /// Decode time in milliseconds.
    pub dts_ms: u64,
    /// Composition offset in milliseconds (PTS = DTS + this).
    pub cts_ms: i32,
    /// Whether the publisher marked this frame as a keyframe (random access point).
    pub keyframe: bool,
    /// The NAL units, each prefixed by its length as the decoder configuration says.
    pub data: Bytes,
}

/// One audio frame: a raw AAC access unit or a whole MPEG audio frame.
#[derive(Debug, Clone, Copy)]
pub struct AudioFrame<'a> {
    /// Presentation time in milliseconds.
    pub pts_ms: u64,
    /// The frame bytes.
    pub data: &'a [u8],
}

/// Audio frames waiting to be written as one PES packet.
#[derive(Debug, Default)]
struct AudioBatch {
    buf: Vec<u8>,
    first_ms: Option<u64>,
}

/// A sans-IO MPEG-TS muxer. It writes 188-byte packets into a caller-owned `BytesMut`; the
/// continuity counters live in the muxer, so consecutive segments written by one muxer are
/// continuous.
#[derive(Debug)]
pub struct TsMuxer {
    tracks: Tracks,
    pmt_version: VersionNumber,
    counters: [ContinuityCounter; 4],
    video_params: Option<ParamSets>,
    aac: Option<AudioSpecificConfig>,
    audio: AudioBatch,
    audio_batch_ms: u64,
}

impl TsMuxer {
    /// Creates a muxer announcing `tracks`. Audio frames are batched into one PES until they
    /// span `audio_batch_ms` (0 writes every frame on its own).
    pub fn new(tracks: Tracks, audio_batch_ms: u64) -> TsMuxer {
        TsMuxer {
            tracks,
            pmt_version: VersionNumber::new(),
            counters: Default::default(),
            video_params: None,
            aac: None,
            audio: AudioBatch::default(),
            audio_batch_ms,
        }
    }

    /// The tracks in the program map.
    pub fn tracks(&self) -> Tracks {
        self.tracks
    }

    /// Changes the announced tracks; the next tables carry a new PMT version.
    pub fn set_tracks(&mut self, tracks: Tracks) {
        if tracks != self.tracks {
            self.tracks = tracks;
            self.pmt_version.increment();
        }
    }

    /// Takes the decoder configuration record of the video track (avcC or hvcC).
    pub fn set_video_config(&mut self, record: &[u8]) -> Result<(), MuxError> {
        let params = match self.tracks.video {
            Some(VideoCodec::H264) => codec::parse_avcc(record)?,
            Some(VideoCodec::H265) => codec::parse_hvcc(record)?,
            None => return Err(MuxError::NoSuchTrack("video")),
        };
        self.video_params = Some(params);
        Ok(())
    }

    /// Takes the AudioSpecificConfig of the AAC track.
    pub fn set_aac_config(&mut self, asc: &[u8]) -> Result<(), MuxError> {
        self.aac = Some(codec::parse_audio_specific_config(asc)?);
        Ok(())
    }

    /// Writes a PAT and a PMT (the start of every segment).
    pub fn write_tables(&mut self, out: &mut BytesMut) {
        let pat = Pat {
            transport_stream_id: 1,
            version_number: VersionNumber::new(),
            table: vec![ProgramAssociation {
                program_num: PROGRAM_NUMBER,
                program_map_pid: pid(PMT_PID),
            }],
        };
        self.write_packet(out, 0, None, TsPayload::Pat(pat));
        let pmt = self.pmt();
        self.write_packet(out, 1, None, TsPayload::Pmt(pmt));
    }

    fn pmt(&self) -> Pmt {
        let mut es_info = Vec::new();
        if let Some(v) = self.tracks.video {
            let stream_type = match v {
                VideoCodec::H264 => StreamType::H264,
                VideoCodec::H265 => StreamType::H265,
            };
            es_info.push(EsInfo {
                stream_type,
                elementary_pid: pid(VIDEO_PID),
                descriptors: vec![],
            });
        }
        if let Some(a) = self.tracks.audio {
            let stream_type = match a {
                AudioCodec::Aac => StreamType::AdtsAac,
                AudioCodec::Mp3 => StreamType::Mpeg1Audio,
                AudioCodec::Mp3Lsf => StreamType::Mpeg2HalvedSampleRateAudio,
            };
            es_info.push(EsInfo {
                stream_type,
                elementary_pid: pid(AUDIO_PID),
                descriptors: vec![],
            });
        }
        Pmt {
            program_num: PROGRAM_NUMBER,
            pcr_pid: Some(pid(self.pcr_pid())),
            version_number: self.pmt_version,
            program_info: vec![],
            es_info,
        }
    }

    fn pcr_pid(&self) -> u16 {
        if self.tracks.video.is_some() {
            VIDEO_PID
        } else {
            AUDIO_PID
        }
    }

    /// Writes one video access unit as a PES: an access unit delimiter first, and the parameter
    /// sets before every random access point that does not carry its own.
    pub fn write_video(&mut self, frame: &VideoFrame, out: &mut BytesMut) -> Result<(), MuxError> {
        let codec = self.tracks.video.ok_or(MuxError::NoSuchTrack("video"))?;
        let params = self
            .video_params
            .as_ref()
            .ok_or(MuxError::MissingConfig("video"))?;
        let es = annex_b(codec, params, frame)?;
        let dts = to_90k(frame.dts_ms as i64);
        let pts = to_90k(frame.dts_ms as i64 + i64::from(frame.cts_ms));
        let pes = PesSpec {
            pid: VIDEO_PID,
            stream_id: STREAM_ID_VIDEO,
            pts,
            dts: (dts != pts).then_some(dts),
            pcr: (self.pcr_pid() == VIDEO_PID).then(|| pcr_from_ms(frame.dts_ms)),
            random_access: frame.keyframe,
        };
        self.write_pes(out, &pes, &es);
        Ok(())
    }

    /// Adds one audio frame to the current batch, writing the batch first if the new frame
    /// would make it span more than the batch duration.
    pub fn push_audio(
        &mut self,
        frame: &AudioFrame<'_>,
        out: &mut BytesMut,
    ) -> Result<(), MuxError> {
        let codec = self.tracks.audio.ok_or(MuxError::NoSuchTrack("audio"))?;
        let adts = match codec {
            AudioCodec::Aac => {
                let cfg = self.aac.as_ref().ok_or(MuxError::MissingConfig("audio"))?;
                let header = cfg.adts_header(frame.data.len());
                Some(header.map_err(|_| {
                    MuxError::BadFrame("AAC frame longer than an ADTS frame can be")
                })?)
            }
            AudioCodec::Mp3 | AudioCodec::Mp3Lsf => None,
        };
        let added = frame.data.len() + adts.map_or(0, |h| h.len());
        if let Some(first) = self.audio.first_ms {
            let full = self.audio.buf.len() + added > MAX_AUDIO_BATCH_BYTES;
            if full || frame.pts_ms.saturating_sub(first) >= self.audio_batch_ms {
                self.flush_audio(out);
            }
        }
        self.audio.first_ms.get_or_insert(frame.pts_ms);
        if let Some(h) = adts {
            self.audio.buf.extend_from_slice(&h);
        }
        self.audio.buf.extend_from_slice(frame.data);
        Ok(())
    }

    /// Writes any batched audio frames as one PES.
    pub fn flush_audio(&mut self, out: &mut BytesMut) {
        let Some(first) = self.audio.first_ms.take() else {
            return;
        };
        let buf = std::mem::take(&mut self.audio.buf);
        let pes = PesSpec {
            pid: AUDIO_PID,
            stream_id: STREAM_ID_AUDIO,
            pts: to_90k(first as i64),
            dts: None,
            pcr: (self.pcr_pid() == AUDIO_PID).then(|| pcr_from_ms(first)),
            random_access: self.tracks.video.is_none(),
        };
        self.write_pes(out, &pes, &buf);
        // Reuse the allocation for the next batch.
        self.audio.buf = buf;
        self.audio.buf.clear();
    }

    /// Whether audio frames are waiting in the batch.
    pub fn has_pending_audio(&self) -> bool {
        self.audio.first_ms.is_some()
    }

    /// Writes one PES packet carrying `es`, cut into TS packets. The TS, adaptation field and
    /// PES headers are written here byte by byte, and each slice of `es` is copied once, into
    /// `out`. PAT and PMT, written once per segment, go through `mpeg2ts` ([`Self::write_tables`]).
    pub(crate) fn write_pes(&mut self, out: &mut BytesMut, spec: &PesSpec, es: &[u8]) {
        let mut pes_header = [0u8; 19];
        let header_len = write_pes_header(&mut pes_header, spec, es.len());
        let pes_header = &pes_header[..header_len];
        let first_af = AfSpec {
            random_access: spec.random_access,
            pcr: spec.pcr,
        };
        let index = counter_index(spec.pid);
        let room = TS_PAYLOAD - first_af.min_len() - header_len;
        let (first, mut rest) = es.split_at(es.len().min(room));
        self.write_media_packet(out, index, true, &first_af, &[pes_header, first]);
        while !rest.is_empty() {
            let (chunk, tail) = rest.split_at(rest.len().min(TS_PAYLOAD));
            self.write_media_packet(out, index, false, &AfSpec::NONE, &[chunk]);
            rest = tail;
        }
    }

    /// One 188-byte packet of an elementary stream: the TS header, an adaptation field when
    /// `af` asks for one or the payload is short (stuffing bytes fill the packet, ISO/IEC
    /// 13818-1 2.4.3.5), then `parts` (at most 184 bytes together, less the adaptation field).
    fn write_media_packet(
        &mut self,
        out: &mut BytesMut,
        index: usize,
        unit_start: bool,
        af: &AfSpec,
        parts: &[&[u8]],
    ) {
        let payload_len: usize = parts.iter().map(|p| p.len()).sum();
        debug_assert!(payload_len + af.min_len() <= TS_PAYLOAD);
        let counter = &mut self.counters[index];
        let cc = counter.as_u8();
        counter.increment();
        let pid = COUNTER_PIDS[index];
        let has_af = af.min_len() > 0 || payload_len < TS_PAYLOAD;
        out.reserve(TsPacket::SIZE);
        out.put_u8(0x47);
        out.put_u8(u8::from(unit_start) << 6 | (pid >> 8) as u8 & 0x1F);
        out.put_u8(pid as u8);
        // adaptation_field_control: 01 payload only, 11 adaptation field then payload.
        out.put_u8(if has_af { 0x30 } else { 0x10 } | cc);
        if has_af {
            // adaptation_field_length counts the bytes after itself.
            let af_len = TS_PAYLOAD - 1 - payload_len;
            out.put_u8(af_len as u8);
            if af_len > 0 {
                let flags = if af.random_access { 0x40 } else { 0 }
                    | if af.pcr.is_some() { 0x10 } else { 0 };
                out.put_u8(flags);
                let mut written = 1;
                if let Some(pcr) = af.pcr {
                    out.put_slice(&pcr_bytes(pcr));
                    written += 6;
                }
                out.put_bytes(0xFF, af_len - written);
            }
        }
        for part in parts {
            out.put_slice(part);
        }
    }

    fn write_packet(
        &mut self,
        out: &mut BytesMut,
        index: usize,
        af: Option<AdaptationField>,
        payload: TsPayload,
    ) {
        let counter = &mut self.counters[index];
        let packet = TsPacket {
            header: TsHeader {
                transport_error_indicator: false,
                transport_priority: false,
                pid: pid(COUNTER_PIDS[index]),
                transport_scrambling_control: TransportScramblingControl::NotScrambled,
                continuity_counter: *counter,
            },
            adaptation_field: af,
            payload: Some(payload),
        };
        counter.increment();
        out.reserve(TsPacket::SIZE);
        TsPacketWriter::new(out.writer())
            .write_ts_packet(&packet)
            .expect("a packet built by the muxer fits in 188 bytes and BytesMut writes never fail");
    }
}

/// What the adaptation field of a media packet must carry (stuffing aside).
struct AfSpec {
    random_access: bool,
    pcr: Option<u64>,
}

impl AfSpec {
    const NONE: AfSpec = AfSpec {
        random_access: false,
        pcr: None,
    };

    /// Bytes the adaptation field takes at least: none, or its length and flags bytes and a
    /// 6-byte PCR.
    fn min_len(&self) -> usize {
        match (self.random_access, self.pcr) {
            (false, None) => 0,
            (_, None) => 2,
            (_, Some(_)) => 8,
        }
    }
}

/// Writes the PES header of a packet carrying `es_len` bytes (ISO/IEC 13818-1 2.4.3.6, Table
/// 2-21) into `buf`; returns its length (14 with a PTS, 19 with a PTS and a DTS).
fn write_pes_header(buf: &mut [u8; 19], spec: &PesSpec, es_len: usize) -> usize {
    let header_len = 9 + 5 + spec.dts.map_or(0, |_| 5);
    // PES_packet_length counts the bytes after the field; 0 means unbounded, which is only
    // allowed for video (ISO/IEC 13818-1 2.4.3.7).
    let pes_packet_len = u16::try_from(header_len - 6 + es_len).unwrap_or(0);
    buf[..4].copy_from_slice(&[0, 0, 1, spec.stream_id]);
    buf[4..6].copy_from_slice(&pes_packet_len.to_be_bytes());
    // '10', not scrambled, no priority, data_alignment_indicator, not copyrighted, a copy.
    buf[6] = 0x84;
    let (flags, prefix) = match spec.dts {
        Some(_) => (0xC0, 0b0011),
        None => (0x80, 0b0010),
    };
    buf[7] = flags;
    buf[8] = (header_len - 9) as u8;
    buf[9..14].copy_from_slice(&timestamp_bytes(prefix, spec.pts));
    if let Some(dts) = spec.dts {
        buf[14..19].copy_from_slice(&timestamp_bytes(0b0001, dts));
    }
    header_len
}

/// A 33-bit PTS or DTS in its 5-byte form with marker bits, after a 4-bit prefix.
fn timestamp_bytes(prefix: u8, ticks: u64) -> [u8; 5] {
    let t = ticks & TIMESTAMP_MASK;
    [
        prefix << 4 | ((t >> 29) as u8 & 0x0E) | 1,
        (t >> 22) as u8,
        ((t >> 14) as u8 & 0xFE) | 1,
        (t >> 7) as u8,
        ((t << 1) as u8 & 0xFE) | 1,
    ]
}

/// A PCR in 27 MHz ticks as its 6 bytes: a 33-bit base (90 kHz), 6 reserved bits, a 9-bit
/// extension (2.4.3.5).
fn pcr_bytes(pcr: u64) -> [u8; 6] {
    let base = (pcr / 300) & TIMESTAMP_MASK;
    let ext = (pcr % 300) as u16;
    [
        (base >> 25) as u8,
        (base >> 17) as u8,
        (base >> 9) as u8,
        (base >> 1) as u8,
        ((base & 1) as u8) << 7 | 0x7E | (ext >> 8) as u8,
        ext as u8,
    ]
}

/// The PIDs whose continuity counters the muxer keeps, by counter index.
const COUNTER_PIDS: [u16; 4] = [0, PMT_PID, VIDEO_PID, AUDIO_PID];

fn counter_index(pid: u16) -> usize {
    COUNTER_PIDS
        .iter()
        .position(|p| *p == pid)
        .expect("the muxer only writes its own PIDs")
}

/// One PES packet to write: where, with which timestamps and flags.
pub(crate) struct PesSpec {
    pub pid: u16,
    pub stream_id: u8,
    /// PTS in 90 kHz ticks.
    pub pts: u64,
    pub dts: Option<u64>,
    /// The PCR in 27 MHz ticks.
    pub pcr: Option<u64>,
    pub random_access: bool,
}

fn pid(n: u16) -> Pid {
    Pid::new(n).expect("muxer PIDs are 13-bit constants")
}

/// Converts milliseconds to a 90 kHz PTS/DTS, shifted by [`TS_OFFSET_90K`] and wrapped to 33 bits.
fn to_90k(ms: i64) -> u64 {
    let ticks = ms.saturating_mul(90).saturating_add(TS_OFFSET_90K as i64);
    (ticks.max(0) as u64) & TIMESTAMP_MASK
}

/// The PCR (27 MHz ticks) of a time in milliseconds, its base wrapped to 33 bits.
fn pcr_from_ms(ms: u64) -> u64 {
    let base = ms.saturating_mul(90) & TIMESTAMP_MASK;
    base * 300
}

/// NAL unit type rules of one codec (H.264 7.4.1.2.3 Table 7-1, H.265 7.4.2.2 Table 7-1).
struct NalRules {
    aud: &'static [u8],
    aud_type: u8,
    nal_type: fn(&[u8]) -> u8,
    is_param: fn(u8) -> bool,
    is_rap: fn(u8) -> bool,
}

const H264_RULES: NalRules = NalRules {
    aud: &codec::H264_AUD,
    aud_type: 9,
    nal_type: |n| n.first().map_or(0, |b| b & 0x1F),
    is_param: |t| t == 7 || t == 8,
    is_rap: |t| t == 5,
};

const H265_RULES: NalRules = NalRules {
    aud: &codec::H265_AUD,
    aud_type: 35,
    nal_type: |n| n.first().map_or(0, |b| (b >> 1) & 0x3F),
    is_param: |t| (32..=34).contains(&t),
    is_rap: |t| (16..=23).contains(&t),
};

/// Converts a length-prefixed access unit to Annex B with an access unit delimiter, inserting
/// the parameter sets before a random access point that lacks them.
fn annex_b(
    codec: VideoCodec,
    params: &ParamSets,
    frame: &VideoFrame,
) -> Result<BytesMut, MuxError> {
    let rules = match codec {
        VideoCodec::H264 => &H264_RULES,
        VideoCodec::H265 => &H265_RULES,
    };
    let mut has_params = false;
    let mut has_rap = false;
    for nal in codecs::nal_units(&frame.data, params.nal_length_size) {
        let nal =
            nal.map_err(|_| MuxError::BadFrame("NAL length prefixes do not match the frame"))?;
        let t = (rules.nal_type)(&nal);
        has_params |= (rules.is_param)(t);
        has_rap |= (rules.is_rap)(t);
    }
    let mut out = BytesMut::with_capacity(frame.data.len() + 64);
    out.extend_from_slice(&START_CODE);
    out.extend_from_slice(rules.aud);
    if (has_rap || frame.keyframe) && !has_params {
        for nal in &params.nals {
            out.extend_from_slice(&START_CODE);
            out.extend_from_slice(nal);
        }
    }
    // Input AUDs are dropped: the one written above must be the only one (H.264 7.4.1.2.3).
    for nal in codecs::nal_units(&frame.data, params.nal_length_size).flatten() {
        if (rules.nal_type)(&nal) != rules.aud_type {
            out.extend_from_slice(&START_CODE);
            out.extend_from_slice(&nal);
        }
    }
    Ok(out)
}

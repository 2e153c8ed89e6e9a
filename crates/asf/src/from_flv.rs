//! The live muxer driven by FLV-style tags, as they travel on the media bus.
//!
//! FLV tag headers are not parsed here: each tag comes with the [`flv::Media`] that ingest found
//! when it built the tag (legacy and Enhanced RTMP headers alike), and the muxer maps it to what
//! ASF carries; `codecs` parses the decoder configuration records.
//!
//! The muxer collects the decoder configurations first; the ASF header is built when the first
//! media frame arrives (the bus always delivers sequence headers before frames), or, while the
//! audio has not described itself yet (MP3 does so only with its first frame), up to
//! [`AUDIO_WAIT_MS`] later, holding the frames meanwhile. Tracks whose
//! codec ASF clients cannot take (HEVC, AV1, VP9, Speex, Nellymoser, ...) are reported once as
//! [`MuxEvent::Unsupported`] and skipped; the other track still plays.

use std::collections::VecDeque;

use bytes::{Bytes, BytesMut};
use codecs::aac::AudioSpecificConfig;
use codecs::avc::{access_unit_to_annex_b, AvcDecoderConfig};
use codecs::mp3::{Layer, Mp3FrameHeader};
use codecs::nal::write_annex_b;
use flv::{AudioCodec, AudioPacketKind, FrameType, Media, VideoCodec, VideoPacketKind};

use crate::header::{build_header, HeaderParams, StreamDesc, StreamFormat};
use crate::packet::{DataPacket, MediaObject, Packetizer};

/// ASF stream number of the video track.
pub const VIDEO_STREAM: u8 = 1;
/// ASF stream number of the audio track.
pub const AUDIO_STREAM: u8 = 2;

/// Muxer settings.
#[derive(Debug, Clone)]
pub struct MuxerOptions {
    /// Fixed data packet size in bytes.
    pub packet_size: usize,
    /// Preroll written in the header and added to presentation times, in milliseconds.
    pub preroll_ms: u32,
    /// An open packet is closed (padded) once media this much newer than its first payload
    /// arrives, so a low-bitrate stream is not held back waiting to fill a packet.
    pub max_packet_delay_ms: u32,
    /// File id written into the header; pass something random per stream.
    pub file_id: [u8; 16],
}

impl Default for MuxerOptions {
    fn default() -> Self {
        MuxerOptions {
            packet_size: 4096,
            preroll_ms: 0,
            max_packet_delay_ms: 250,
            file_id: [0; 16],
        }
    }
}

/// Which kind of tag is fed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TagKind {
    Audio,
    Video,
    Script,
}

/// One FLV-style tag: the fields of `bus::Tag` that the muxer reads.
#[derive(Debug, Clone, Copy)]
pub struct TagRef<'a> {
    pub kind: TagKind,
    /// Decode time in milliseconds.
    pub timestamp_ms: u64,
    /// The whole FLV tag body.
    pub data: &'a Bytes,
    /// What the body's header says, parsed once when the tag was built (the bus `Tag`'s
    /// `media`); the muxer never parses a tag header itself.
    pub media: Media,
}

impl<'a> TagRef<'a> {
    /// A tag from an FLV body, its header parsed once ([`flv::Media::of`]): for tags read from
    /// FLV files rather than taken from the bus.
    pub fn classify(kind: TagKind, timestamp_ms: u64, data: &'a Bytes) -> TagRef<'a> {
        let tag_type = match kind {
            TagKind::Audio => flv::TAG_TYPE_AUDIO,
            TagKind::Video => flv::TAG_TYPE_VIDEO,
            TagKind::Script => flv::TAG_TYPE_SCRIPT,
        };
        TagRef {
            kind,
            timestamp_ms,
            data,
            media: Media::of(tag_type, data),
        }
    }
}

/// Which track an event is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Track {
    Video,
    Audio,
}

impl Track {
    /// `video` or `audio`, as logs and counters name it.
    pub fn as_str(self) -> &'static str {
        match self {
            Track::Video => "video",
            Track::Audio => "audio",
        }
    }
}

/// What the muxer produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MuxEvent {
    /// A new ASF header (Header Object plus Data Object header). A second one means the codec
    /// configuration changed: viewers must be restarted with it.
    Header(Bytes),
    /// A finished data packet.
    Packet(DataPacket),
    /// A track's codec cannot be carried to ASF clients; its tags are skipped.
    Unsupported { track: Track, codec: String },
    /// A tag could not be parsed and was skipped.
    Malformed { track: Track, reason: String },
}

#[derive(Debug, Default)]
struct VideoTrack {
    config: Option<AvcDecoderConfig>,
    raw_config: Option<Bytes>,
    unsupported: bool,
}

#[derive(Debug, Default)]
struct AudioTrack {
    config: Option<AudioSpecificConfig>,
    raw_config: Option<Bytes>,
    /// MP3 has no sequence header: what the first frame header said.
    mp3: Option<Mp3Info>,
    unsupported: bool,
}

impl AudioTrack {
    fn known(&self) -> bool {
        self.config.is_some() || self.mp3.is_some()
    }
}

/// The stream parameters of an MP3 track, from its first frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Mp3Info {
    sample_rate: u32,
    channels: u8,
    bitrate_kbps: u32,
}

/// How long (in media time) the header waits for an audio track that has not described itself
/// yet. AAC describes itself before any frame; MP3 only with its first frame, which may follow
/// the first video frames.
pub const AUDIO_WAIT_MS: u64 = 1000;
/// Tags held back while waiting; beyond this the oldest are dropped.
const MAX_HELD_TAGS: usize = 512;

/// A tag held back until the header can be built.
#[derive(Debug)]
struct Held {
    kind: TagKind,
    timestamp_ms: u64,
    data: Bytes,
    media: Media,
}

/// FLV tags in, ASF header and packets out.
#[derive(Debug)]
pub struct FlvAsfMuxer {
    opts: MuxerOptions,
    video: VideoTrack,
    audio: AudioTrack,
    /// Set once the header is built; holds which tracks it declares.
    muxing: Option<(bool, bool)>,
    /// Media frames that arrived before the header could be built, and the first one's time.
    held: VecDeque<Held>,
    first_frame_ms: Option<u64>,
    packetizer: Packetizer,
    out: VecDeque<MuxEvent>,
}

impl FlvAsfMuxer {
    pub fn new(opts: MuxerOptions) -> FlvAsfMuxer {
        let packetizer = Packetizer::new(opts.packet_size);
        FlvAsfMuxer {
            opts,
            video: VideoTrack::default(),
            audio: AudioTrack::default(),
            muxing: None,
            held: VecDeque::new(),
            first_frame_ms: None,
            packetizer,
            out: VecDeque::new(),
        }
    }

    /// Feeds one tag.
    pub fn push_tag(&mut self, tag: TagRef<'_>) {
        match tag.kind {
            TagKind::Video => self.push_video(tag),
            TagKind::Audio => self.push_audio(tag),
            TagKind::Script => {}
        }
    }

    /// Closes the open packet, e.g. when the publisher left.
    pub fn flush(&mut self) {
        self.packetizer.finish();
        self.drain_packets();
    }

    /// The next output event.
    pub fn poll_event(&mut self) -> Option<MuxEvent> {
        self.out.pop_front()
    }

    fn push_video(&mut self, tag: TagRef<'_>) {
        match video_tag(tag.media, tag.data) {
            Err(reason) => self.malformed(Track::Video, reason),
            Ok(VideoTag::Unsupported(codec)) => self.unsupported_video(codec),
            Ok(VideoTag::Config(body)) => self.video_config(body),
            Ok(VideoTag::Ignored) => {}
            Ok(VideoTag::Frame {
                keyframe,
                cts,
                body,
            }) => {
                if self.ready_for(tag) {
                    self.video_frame(tag.timestamp_ms, keyframe, cts, &body);
                }
            }
        }
    }

    fn push_audio(&mut self, tag: TagRef<'_>) {
        match audio_tag(tag.media, tag.data) {
            Err(reason) => self.malformed(Track::Audio, reason),
            Ok(AudioTag::Unsupported(codec)) => self.unsupported_audio(codec),
            Ok(AudioTag::Ignored) => {}
            Ok(AudioTag::Config(body)) => self.audio_config(body),
            Ok(AudioTag::Frame(body)) => {
                if self.ready_for(tag) {
                    self.audio_frame(tag.timestamp_ms, body);
                }
            }
            Ok(AudioTag::Mp3(body)) => {
                self.learn_mp3(&body);
                if self.ready_for(tag) {
                    self.audio_frame(tag.timestamp_ms, body);
                }
            }
        }
    }

    fn video_config(&mut self, body: Bytes) {
        if self.video.raw_config.as_ref() == Some(&body) {
            return;
        }
        match AvcDecoderConfig::parse_bytes(&body) {
            Ok(cfg) if cfg.sps_info().is_ok() => {
                self.video.config = Some(cfg);
                self.video.raw_config = Some(body);
                self.restart_if_muxing();
            }
            Ok(_) => self.malformed(
                Track::Video,
                "the AVC configuration has no usable SPS".into(),
            ),
            Err(e) => self.malformed(Track::Video, format!("AVC configuration: {e}")),
        }
    }

    fn audio_config(&mut self, body: Bytes) {
        if self.audio.raw_config.as_ref() == Some(&body) {
            return;
        }
        match AudioSpecificConfig::parse(&body) {
            Ok(cfg) => {
                self.audio.config = Some(cfg);
                self.audio.raw_config = Some(body);
                self.restart_if_muxing();
            }
            Err(e) => self.malformed(Track::Audio, format!("AudioSpecificConfig: {e}")),
        }
    }

    /// True if the header exists (building it now if it can be), so the frame in `tag` can be
    /// muxed; otherwise the tag is held until it can.
    ///
    /// The header is built at the first media frame if every track has described itself, or
    /// [`AUDIO_WAIT_MS`] after it if the audio has not (MP3 describes itself only with its first
    /// frame; a stream without audio never does). Held frames are then muxed in order.
    fn ready_for(&mut self, tag: TagRef<'_>) -> bool {
        if self.muxing.is_some() {
            return true;
        }
        let first = *self.first_frame_ms.get_or_insert(tag.timestamp_ms);
        let waited = tag.timestamp_ms.saturating_sub(first) >= AUDIO_WAIT_MS;
        if !(self.audio.known() || self.audio.unsupported || waited) {
            self.hold(tag);
            return false;
        }
        self.start_if_ready();
        self.replay_held();
        self.muxing.is_some()
    }

    fn hold(&mut self, tag: TagRef<'_>) {
        if self.held.len() == MAX_HELD_TAGS {
            self.held.pop_front();
        }
        self.held.push_back(Held {
            kind: tag.kind,
            timestamp_ms: tag.timestamp_ms,
            data: tag.data.clone(),
            media: tag.media,
        });
    }

    fn replay_held(&mut self) {
        let held = std::mem::take(&mut self.held);
        if self.muxing.is_none() {
            return; // nothing can be muxed: drop what was held
        }
        for h in held {
            self.push_tag(TagRef {
                kind: h.kind,
                timestamp_ms: h.timestamp_ms,
                data: &h.data,
                media: h.media,
            });
        }
    }

    /// Reads the MP3 parameters from a frame header; a change after the header restarts it.
    fn learn_mp3(&mut self, body: &Bytes) {
        let info = match Mp3FrameHeader::parse(body) {
            Ok(h) if h.layer == Layer::Layer3 => Mp3Info {
                sample_rate: h.sample_rate,
                channels: h.channels,
                bitrate_kbps: h.bitrate_kbps.unwrap_or(0),
            },
            Ok(h) => return self.unsupported_audio(format!("MPEG audio {:?}", h.layer)),
            Err(e) => return self.malformed(Track::Audio, format!("MP3 frame header: {e}")),
        };
        let known = self.audio.mp3;
        // The bitrate may change every frame (VBR); only the sampling parameters matter.
        if known.is_none_or(|k| (k.sample_rate, k.channels) != (info.sample_rate, info.channels)) {
            self.audio.mp3 = Some(info);
            if known.is_some() {
                self.restart_if_muxing();
            }
        }
    }

    /// A configuration changed after the header was sent: a new header is needed.
    fn restart_if_muxing(&mut self) {
        if self.muxing.is_some() {
            self.flush();
            self.muxing = None;
            self.start_if_ready();
        }
    }

    fn start_if_ready(&mut self) {
        if self.muxing.is_some() {
            return;
        }
        let streams = self.stream_descs();
        if streams.is_empty() {
            return;
        }
        let has = (self.video.config.is_some(), self.audio.known());
        let header = build_header(&HeaderParams {
            packet_size: self.packetizer.packet_size() as u32,
            preroll_ms: self.opts.preroll_ms,
            max_bitrate: 0,
            file_id: self.opts.file_id,
            streams,
        });
        self.muxing = Some(has);
        self.out.push_back(MuxEvent::Header(header));
    }

    fn stream_descs(&self) -> Vec<StreamDesc> {
        let mut streams = Vec::new();
        if let Some(cfg) = &self.video.config {
            if let Ok(sps) = cfg.sps_info() {
                let mut private = BytesMut::new();
                for ps in cfg.sps.iter().chain(&cfg.pps) {
                    write_annex_b(&mut private, ps);
                }
                let avg_time_per_frame = sps
                    .frame_rate
                    .filter(|f| *f > 0.5 && *f < 1000.0)
                    .map_or(0, |f| (10_000_000.0 / f) as u64);
                streams.push(StreamDesc {
                    number: VIDEO_STREAM,
                    format: StreamFormat::H264 {
                        width: sps.width,
                        height: sps.height,
                        codec_private: private.freeze(),
                    },
                    avg_time_per_frame,
                    // Only streams that may reorder frames need explicit presentation times for
                    // ffmpeg; Baseline (profile 66) has no B-frames (H.264 A.2.1).
                    timing_extension: cfg.profile_indication != 66,
                });
            }
        }
        if let Some(mp3) = self.audio.mp3 {
            streams.push(StreamDesc {
                number: AUDIO_STREAM,
                format: StreamFormat::Mp3 {
                    sample_rate: mp3.sample_rate,
                    channels: u16::from(mp3.channels),
                    bitrate: mp3.bitrate_kbps * 1000,
                },
                avg_time_per_frame: 0,
                timing_extension: false,
            });
        } else if let (Some(cfg), Some(raw)) = (&self.audio.config, &self.audio.raw_config) {
            streams.push(StreamDesc {
                number: AUDIO_STREAM,
                format: StreamFormat::Aac {
                    sample_rate: cfg.sampling_frequency,
                    channels: u16::from(cfg.channel_count().unwrap_or(2)),
                    audio_specific_config: raw.clone(),
                    bitrate: 0,
                },
                avg_time_per_frame: 0,
                timing_extension: false,
            });
        }
        streams
    }

    fn video_frame(&mut self, dts: u64, keyframe: bool, cts: i32, body: &Bytes) {
        let (Some((true, _)), Some(cfg)) = (self.muxing, &self.video.config) else {
            return;
        };
        let mut annexb = BytesMut::with_capacity(body.len() + 64);
        if let Err(e) = access_unit_to_annex_b(body, cfg, &mut annexb) {
            self.malformed(Track::Video, format!("AVC access unit: {e}"));
            return;
        }
        let pts = dts.saturating_add_signed(i64::from(cts));
        self.push_object(VIDEO_STREAM, keyframe, dts, pts, annexb.freeze(), keyframe);
    }

    /// The video track's profile may use B-frames, so its header declares the timing extension.
    fn video_reorders(&self) -> bool {
        self.video
            .config
            .as_ref()
            .is_some_and(|c| c.profile_indication != 66)
    }

    fn audio_frame(&mut self, ts: u64, body: Bytes) {
        let Some((has_video, true)) = self.muxing else {
            return;
        };
        // Without video every audio frame is a place to join.
        self.push_object(AUDIO_STREAM, true, ts, ts, body, !has_video);
    }

    fn push_object(&mut self, stream: u8, key: bool, dts: u64, pts: u64, data: Bytes, ra: bool) {
        if let Some(open) = self.packetizer.open_since_ms() {
            // Signed: interleaving may put an audio frame slightly before the open packet.
            let age = (dts as u32).wrapping_sub(open) as i32;
            if age > self.opts.max_packet_delay_ms as i32 && !ra {
                self.packetizer.finish();
            }
        }
        let obj = MediaObject {
            stream,
            keyframe: key,
            send_time_ms: dts as u32,
            presentation_time_ms: (pts as u32).wrapping_add(self.opts.preroll_ms),
            timing_extension_dts_ms: (stream == VIDEO_STREAM && self.video_reorders())
                .then(|| (dts as u32).wrapping_add(self.opts.preroll_ms)),
            data,
        };
        self.packetizer.push(&obj, ra);
        self.drain_packets();
    }

    fn drain_packets(&mut self) {
        while let Some(p) = self.packetizer.poll_packet() {
            self.out.push_back(MuxEvent::Packet(p));
        }
    }

    fn unsupported_video(&mut self, codec: String) {
        if !self.video.unsupported {
            self.video.unsupported = true;
            self.out.push_back(MuxEvent::Unsupported {
                track: Track::Video,
                codec,
            });
        }
    }

    fn unsupported_audio(&mut self, codec: String) {
        if !self.audio.unsupported {
            self.audio.unsupported = true;
            self.out.push_back(MuxEvent::Unsupported {
                track: Track::Audio,
                codec,
            });
        }
    }

    fn malformed(&mut self, track: Track, reason: String) {
        self.out.push_back(MuxEvent::Malformed { track, reason });
    }
}

/// What an FLV video tag carries, as the muxer sees it.
#[derive(Debug, PartialEq, Eq)]
enum VideoTag {
    Config(Bytes),
    Frame {
        keyframe: bool,
        cts: i32,
        body: Bytes,
    },
    /// End of sequence or a command frame: nothing to mux.
    Ignored,
    Unsupported(String),
}

/// What an FLV audio tag carries, as the muxer sees it.
#[derive(Debug, PartialEq, Eq)]
enum AudioTag {
    Config(Bytes),
    Frame(Bytes),
    /// MP3 frames (FLV sound formats 2 and 14, E-RTMP `.mp3`), which carry their own parameters.
    Mp3(Bytes),
    /// End of sequence: nothing to mux.
    Ignored,
    Unsupported(String),
}

/// The codec payload of `data` after the header `media` describes, as a zero-copy slice.
fn payload(media: Media, data: &Bytes) -> Bytes {
    data.slice(media.header_len().min(data.len())..)
}

/// Maps a video tag's media (FLV 10.1 E.4.3.1, codec id 12 HEVC and Enhanced RTMP, as crate
/// `flv` parsed it at ingest) to what ASF carries: H.264 only.
fn video_tag(media: Media, data: &Bytes) -> Result<VideoTag, String> {
    let Media::Video(v) = media else {
        return Err("truncated or malformed video tag header".into());
    };
    if v.frame_type == FrameType::Command {
        return Ok(VideoTag::Ignored);
    }
    if v.codec != VideoCodec::Avc {
        return Ok(VideoTag::Unsupported(video_codec_name(v.codec)));
    }
    let body = payload(media, data);
    Ok(match v.packet {
        VideoPacketKind::SequenceHeader => VideoTag::Config(body),
        VideoPacketKind::Frame => VideoTag::Frame {
            keyframe: v.frame_type == FrameType::Key,
            cts: v.composition_time,
            body,
        },
        VideoPacketKind::EndOfSequence => VideoTag::Ignored,
        VideoPacketKind::Other(other) => return Err(format!("unknown AVC packet type {other}")),
    })
}

fn video_codec_name(codec: VideoCodec) -> String {
    match codec {
        VideoCodec::Avc => "H.264".into(),
        VideoCodec::Hevc => "HEVC".into(),
        VideoCodec::Av1 => "AV1".into(),
        VideoCodec::Vp9 => "VP9".into(),
        VideoCodec::OtherId(2) => "Sorenson H.263".into(),
        VideoCodec::OtherId(3) => "Screen video".into(),
        VideoCodec::OtherId(4) => "VP6".into(),
        VideoCodec::OtherId(5) => "VP6 with alpha".into(),
        VideoCodec::OtherId(6) => "Screen video 2".into(),
        VideoCodec::OtherId(id) => format!("FLV video codec id {id}"),
        VideoCodec::OtherFourCc(f) => String::from_utf8_lossy(&f.0).into_owned(),
    }
}

/// Maps an audio tag's media (FLV 10.1 E.4.2.1 and Enhanced RTMP v2) to what ASF carries: AAC
/// and MP3.
fn audio_tag(media: Media, data: &Bytes) -> Result<AudioTag, String> {
    let Media::Audio(a) = media else {
        return Err("truncated or malformed audio tag header".into());
    };
    let body = payload(media, data);
    match (a.codec, a.packet) {
        (AudioCodec::Mp3, AudioPacketKind::Frame) if body.is_empty() => {
            Err("empty MP3 frame".into())
        }
        (AudioCodec::Mp3, AudioPacketKind::Frame) => Ok(AudioTag::Mp3(body)),
        (AudioCodec::Aac, AudioPacketKind::SequenceHeader) => Ok(AudioTag::Config(body)),
        (AudioCodec::Aac, AudioPacketKind::Frame) if body.is_empty() => {
            Err("empty AAC frame".into())
        }
        (AudioCodec::Aac, AudioPacketKind::Frame) => Ok(AudioTag::Frame(body)),
        (AudioCodec::Aac | AudioCodec::Mp3, AudioPacketKind::EndOfSequence) => {
            Ok(AudioTag::Ignored)
        }
        (AudioCodec::Aac | AudioCodec::Mp3, packet) => {
            Err(format!("unexpected audio packet {packet:?}"))
        }
        (codec, _) => Ok(AudioTag::Unsupported(audio_codec_name(codec))),
    }
}

fn audio_codec_name(codec: AudioCodec) -> String {
    use flv::SoundFormat::*;
    match codec {
        AudioCodec::Aac => "AAC".into(),
        AudioCodec::Mp3 => "MP3".into(),
        AudioCodec::Opus => "Opus".into(),
        AudioCodec::Flac => "FLAC".into(),
        AudioCodec::Ac3 => "AC-3".into(),
        AudioCodec::Eac3 => "E-AC-3".into(),
        AudioCodec::G711ALaw => "G.711 A-law".into(),
        AudioCodec::G711MuLaw => "G.711 mu-law".into(),
        AudioCodec::OtherFormat(LinearPcmPlatformEndian | LinearPcmLittleEndian) => {
            "linear PCM".into()
        }
        AudioCodec::OtherFormat(Adpcm) => "ADPCM".into(),
        AudioCodec::OtherFormat(Nellymoser16kMono | Nellymoser8kMono | Nellymoser) => {
            "Nellymoser".into()
        }
        AudioCodec::OtherFormat(ExHeader) => "enhanced audio (FourCC)".into(),
        AudioCodec::OtherFormat(Speex) => "Speex".into(),
        AudioCodec::OtherFormat(other) => format!("FLV sound format {}", other.id()),
        AudioCodec::OtherFourCc(f) => String::from_utf8_lossy(&f.0).into_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A real AVC configuration record (x264, Constrained Baseline, 320x240).
    const AVCC: &[u8] = &[
        0x01, 0x42, 0xc0, 0x0d, 0xff, 0xe1, 0x00, 0x19, 0x67, 0x42, 0xc0, 0x0d, 0xd9, 0x01, 0x41,
        0xfb, 0x01, 0x10, 0x00, 0x00, 0x03, 0x00, 0x10, 0x00, 0x00, 0x03, 0x03, 0x20, 0xf1, 0x42,
        0xa4, 0x80, 0x01, 0x00, 0x04, 0x68, 0xcb, 0x83, 0xcb, 0x20,
    ];

    fn video(bytes: &[u8]) -> Result<VideoTag, String> {
        video_tag(Media::of(9, bytes), &Bytes::copy_from_slice(bytes))
    }

    #[test]
    fn video_tag_mapping() {
        let cases: &[(&[u8], Result<VideoTag, String>)] = &[
            (
                &[0x17, 0, 0, 0, 0, 1],
                Ok(VideoTag::Config(Bytes::from_static(&[1]))),
            ),
            (
                &[0x27, 1, 0xff, 0xff, 0xd8, 9],
                Ok(VideoTag::Frame {
                    keyframe: false,
                    cts: -40,
                    body: Bytes::from_static(&[9]),
                }),
            ),
            (&[0x17, 2, 0, 0, 0], Ok(VideoTag::Ignored)),
            (&[0x17, 3, 0, 0, 0], Err("unknown AVC packet type 3".into())),
            // Enhanced RTMP avc1 is H.264 too: SequenceStart, CodedFrames (with CTS), CodedFramesX.
            (
                b"\x90avc1\x01",
                Ok(VideoTag::Config(Bytes::from_static(&[1]))),
            ),
            (
                b"\x91avc1\x00\x00\x28\x09",
                Ok(VideoTag::Frame {
                    keyframe: true,
                    cts: 40,
                    body: Bytes::from_static(&[9]),
                }),
            ),
            (
                b"\xa3avc1\x09",
                Ok(VideoTag::Frame {
                    keyframe: false,
                    cts: 0,
                    body: Bytes::from_static(&[9]),
                }),
            ),
            // HEVC, legacy (codec id 12) or enhanced, AV1 and VP9 have no ASF mapping.
            (
                &[0x1c, 0, 0, 0, 0],
                Ok(VideoTag::Unsupported("HEVC".into())),
            ),
            (
                &[0x90, b'h', b'v', b'c', b'1'],
                Ok(VideoTag::Unsupported("HEVC".into())),
            ),
            (b"\x90av01", Ok(VideoTag::Unsupported("AV1".into()))),
            (b"\x91vp09", Ok(VideoTag::Unsupported("VP9".into()))),
            (
                &[0x22, 0],
                Ok(VideoTag::Unsupported("Sorenson H.263".into())),
            ),
            // A command frame carries no picture.
            (&[0x57, 0], Ok(VideoTag::Ignored)),
            (
                &[0x17, 1, 0],
                Err("truncated or malformed video tag header".into()),
            ),
            (&[], Err("truncated or malformed video tag header".into())),
        ];
        for (bytes, expect) in cases {
            assert_eq!(&video(bytes), expect, "{bytes:02x?}");
        }
    }

    #[test]
    fn audio_tag_mapping() {
        let cases: &[(&[u8], Result<AudioTag, String>)] = &[
            (
                &[0xaf, 0, 0x12, 0x10],
                Ok(AudioTag::Config(Bytes::from_static(&[0x12, 0x10]))),
            ),
            (
                &[0xaf, 1, 0x21],
                Ok(AudioTag::Frame(Bytes::from_static(&[0x21]))),
            ),
            (&[0xaf, 1], Err("empty AAC frame".into())),
            (
                &[0x2f, 0xff],
                Ok(AudioTag::Mp3(Bytes::from_static(&[0xff]))),
            ),
            (&[0x2f], Err("empty MP3 frame".into())),
            // Enhanced RTMP v2 mp4a is AAC.
            (
                b"\x90mp4a\x12\x10",
                Ok(AudioTag::Config(Bytes::from_static(&[0x12, 0x10]))),
            ),
            (b"\x92mp4a", Ok(AudioTag::Ignored)),
            (&[0x6f, 0], Ok(AudioTag::Unsupported("Nellymoser".into()))),
            (b"\x91Opus\x00", Ok(AudioTag::Unsupported("Opus".into()))),
            (
                &[0xaf],
                Err("truncated or malformed audio tag header".into()),
            ),
        ];
        for (bytes, expect) in cases {
            let data = Bytes::copy_from_slice(bytes);
            assert_eq!(
                &audio_tag(Media::of(8, bytes), &data),
                expect,
                "{bytes:02x?}"
            );
        }
    }

    fn tag(kind: TagKind, ts: u64, data: &Bytes) -> TagRef<'_> {
        TagRef::classify(kind, ts, data)
    }

    fn events(m: &mut FlvAsfMuxer) -> Vec<MuxEvent> {
        std::iter::from_fn(|| m.poll_event()).collect()
    }

    #[test]
    fn header_waits_for_the_first_frame_and_declares_both_tracks() {
        let mut m = FlvAsfMuxer::new(MuxerOptions::default());
        let mut cfg = vec![0x17, 0, 0, 0, 0];
        cfg.extend_from_slice(AVCC);
        m.push_tag(tag(TagKind::Video, 0, &Bytes::from(cfg)));
        m.push_tag(tag(
            TagKind::Audio,
            0,
            &Bytes::from_static(&[0xaf, 0, 0x12, 0x10]),
        ));
        assert!(events(&mut m).is_empty(), "no header before media");
        let idr = Bytes::from_static(&[0x17, 1, 0, 0, 0, 0, 0, 0, 2, 0x65, 0x88]);
        m.push_tag(tag(TagKind::Video, 0, &idr));
        m.flush();
        let ev = events(&mut m);
        let MuxEvent::Header(h) = &ev[0] else {
            panic!("header first: {ev:?}")
        };
        assert_eq!(h[24], 4, "file properties, two streams, header extension");
        let MuxEvent::Packet(p) = &ev[1] else {
            panic!("then a packet: {ev:?}")
        };
        assert!(p.random_access);
        assert_eq!(p.data.len(), 4096);
        assert_eq!(
            p.data[14 + 6],
            8,
            "Baseline: no timing extension in the replicated data"
        );
    }

    #[test]
    fn unsupported_tracks_are_reported_once_and_the_other_plays() {
        let mut m = FlvAsfMuxer::new(MuxerOptions::default());
        let hevc = Bytes::from_static(&[0x9c, b'h', b'v', b'c', b'1', 0]);
        m.push_tag(tag(TagKind::Video, 0, &hevc));
        m.push_tag(tag(TagKind::Video, 0, &hevc));
        m.push_tag(tag(
            TagKind::Audio,
            0,
            &Bytes::from_static(&[0xaf, 0, 0x12, 0x10]),
        ));
        m.push_tag(tag(
            TagKind::Audio,
            0,
            &Bytes::from_static(&[0xaf, 1, 0x21, 0x22]),
        ));
        m.flush();
        let ev = events(&mut m);
        assert_eq!(
            ev[0],
            MuxEvent::Unsupported {
                track: Track::Video,
                codec: "HEVC".into()
            }
        );
        assert!(matches!(ev[1], MuxEvent::Header(ref h) if h[24] == 3));
        assert!(matches!(ev[2], MuxEvent::Packet(ref p) if p.random_access));
        assert_eq!(ev.len(), 3);
    }

    fn avc_config_tag() -> Bytes {
        let mut cfg = vec![0x17, 0, 0, 0, 0];
        cfg.extend_from_slice(AVCC);
        Bytes::from(cfg)
    }

    const IDR: &[u8] = &[0x17, 1, 0, 0, 0, 0, 0, 0, 2, 0x65, 0x88];
    const P_FRAME: &[u8] = &[0x27, 1, 0, 0, 0, 0, 0, 0, 2, 0x41, 0x9a];

    #[test]
    fn mp3_audio_is_described_by_its_first_frame() {
        let mut m = FlvAsfMuxer::new(MuxerOptions::default());
        m.push_tag(tag(TagKind::Video, 0, &avc_config_tag()));
        m.push_tag(tag(TagKind::Video, 0, &Bytes::from_static(IDR)));
        assert!(
            events(&mut m).is_empty(),
            "the first frame waits for the audio to describe itself"
        );
        // MPEG-1 Layer III, 128 kbit/s, 44.1 kHz, joint stereo.
        let mp3 = Bytes::from_static(&[0x2f, 0xff, 0xfb, 0x90, 0x64, 0, 0, 0, 0]);
        m.push_tag(tag(TagKind::Audio, 10, &mp3));
        m.flush();
        let ev = events(&mut m);
        let MuxEvent::Header(h) = &ev[0] else {
            panic!("header first: {ev:?}")
        };
        assert_eq!(h[24], 4, "file properties, two streams, header extension");
        let wfx = [
            0x55, 0x00, 0x02, 0x00, 0x44, 0xAC, 0x00, 0x00, 0x80, 0x3E, 0x00, 0x00,
        ];
        assert!(
            h.windows(wfx.len()).any(|w| w == wfx),
            "MP3 WAVEFORMATEX: tag, 2 ch, 44100 Hz, 16000 B/s"
        );
        let MuxEvent::Packet(p) = &ev[1] else {
            panic!("then a packet: {ev:?}")
        };
        assert!(p.random_access, "the held keyframe comes first");
        assert_eq!(p.data[14] & 0x7F, VIDEO_STREAM, "video payload first");
    }

    #[test]
    fn video_only_streams_wait_at_most_audio_wait_ms() {
        let mut m = FlvAsfMuxer::new(MuxerOptions::default());
        m.push_tag(tag(TagKind::Video, 0, &avc_config_tag()));
        m.push_tag(tag(TagKind::Video, 0, &Bytes::from_static(IDR)));
        for t in (40..AUDIO_WAIT_MS).step_by(40) {
            m.push_tag(tag(TagKind::Video, t, &Bytes::from_static(P_FRAME)));
        }
        assert!(events(&mut m).is_empty(), "still waiting for audio");
        m.push_tag(tag(
            TagKind::Video,
            AUDIO_WAIT_MS,
            &Bytes::from_static(P_FRAME),
        ));
        m.flush();
        let ev = events(&mut m);
        assert!(
            matches!(ev[0], MuxEvent::Header(ref h) if h[24] == 3),
            "video-only header"
        );
        let MuxEvent::Packet(p) = &ev[1] else {
            panic!("then packets: {ev:?}")
        };
        assert!(p.random_access, "starting with the held keyframe");
        let objects: usize = ev[1..]
            .iter()
            .map(|e| match e {
                MuxEvent::Packet(p) => usize::from(p.data[13] & 0x3F),
                _ => 0,
            })
            .sum();
        assert_eq!(
            objects, 26,
            "every held frame was muxed, in one payload each"
        );
    }
}

//! One recording file's muxer, whatever its format: fragmented MP4 ([`crate::fmp4`]), FLV
//! (the `flv` crate's framing around the tags as they are) or MPEG-TS (`ts-mux`). No I/O: each
//! call appends the bytes to write to `out`.
//!
//! Every file's time starts at 0 at its first keyframe (`origin_ms`, a stream timestamp).

use bus::{Tag, TagKind};
use bytes::{Bytes, BytesMut};
use flv::{AudioCodec, AudioPacketKind, VideoCodec as FlvVideo, VideoPacketKind};

use crate::fmp4::{AudioTrack, Fmp4Writer, VideoCodec, VideoTrack};
use crate::Format;

/// What the file needs before its first frame: the stream's latest decoder configurations and
/// metadata, as bus tags.
#[derive(Debug, Clone, Default)]
pub(crate) struct Headers {
    pub metadata: Option<Tag>,
    pub video: Option<Tag>,
    pub audio: Option<Tag>,
}

impl Headers {
    /// Keeps `tag` if it is a configuration or metadata; true if it was one.
    pub fn record(&mut self, tag: &Tag) -> bool {
        let slot = match tag.kind {
            TagKind::Script => &mut self.metadata,
            TagKind::Video if tag.sequence_header => &mut self.video,
            TagKind::Audio if tag.sequence_header => &mut self.audio,
            _ => return false,
        };
        *slot = Some(tag.clone());
        true
    }
}

/// Why a file could not be started.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MuxError {
    #[error("{0} cannot be recorded as {1}")]
    Unsupported(&'static str, &'static str),
    #[error("bad {0} configuration")]
    BadConfig(&'static str),
}

pub(crate) enum FileMuxer {
    Mp4(Box<Fmp4Writer>),
    Flv { origin_ms: u64 },
    Ts(Box<TsFile>),
}

pub(crate) struct TsFile {
    muxer: ts_mux::TsMuxer,
    origin_ms: u64,
}

impl FileMuxer {
    /// Starts a file with `headers`; appends its file header.
    pub fn open(
        format: Format,
        headers: &Headers,
        origin_ms: u64,
        out: &mut Vec<Bytes>,
    ) -> Result<FileMuxer, MuxError> {
        match format {
            Format::Mp4 => {
                let video = headers.video.as_ref().map(video_track).transpose()?;
                let audio = headers.audio.as_ref().map(audio_track).transpose()?;
                if video.is_none() && audio.is_none() {
                    return Err(MuxError::Unsupported(
                        "a stream without H.264, H.265 or AAC",
                        "MP4",
                    ));
                }
                let mut w = Fmp4Writer::new(video, audio, origin_ms);
                out.push(w.init_segment());
                Ok(FileMuxer::Mp4(Box::new(w)))
            }
            Format::Flv => {
                let header = flv::file_header(headers.audio.is_some(), headers.video.is_some());
                out.push(Bytes::copy_from_slice(&header));
                for tag in [&headers.metadata, &headers.video, &headers.audio]
                    .into_iter()
                    .flatten()
                {
                    out.push(flv_tag(tag, 0));
                }
                Ok(FileMuxer::Flv { origin_ms })
            }
            Format::Ts => open_ts(headers, origin_ms, out).map(|t| FileMuxer::Ts(Box::new(t))),
        }
    }

    /// Adds one tag (a frame, or a configuration that did not change the tracks).
    pub fn push(&mut self, tag: &Tag, out: &mut Vec<Bytes>) {
        match self {
            FileMuxer::Mp4(w) => push_mp4(w, tag, out),
            FileMuxer::Flv { origin_ms } => {
                let ts = tag.timestamp.saturating_sub(*origin_ms);
                out.push(flv_tag(tag, ts));
            }
            FileMuxer::Ts(t) => t.push(tag, out),
        }
    }

    /// Appends what is still held; afterwards, for MP4, where to patch the duration.
    pub fn finish(&mut self, out: &mut Vec<Bytes>) -> Option<(u64, [u8; 8])> {
        match self {
            FileMuxer::Mp4(w) => {
                out.extend(w.finish());
                Some(w.duration_patch())
            }
            FileMuxer::Flv { .. } => None,
            FileMuxer::Ts(t) => {
                let mut buf = BytesMut::new();
                t.muxer.flush_audio(&mut buf);
                if !buf.is_empty() {
                    out.push(buf.freeze());
                }
                None
            }
        }
    }
}

/// A whole FLV tag (header, body, PreviousTagSize) at `timestamp_ms` (the low 32 bits).
fn flv_tag(tag: &Tag, timestamp_ms: u64) -> Bytes {
    flv::encode_tag(tag.kind.flv_type(), timestamp_ms as u32, &tag.data)
}

fn video_track(tag: &Tag) -> Result<VideoTrack, MuxError> {
    let flv::Media::Video(v) = tag.media else {
        return Err(MuxError::BadConfig("video"));
    };
    let record = tag.payload();
    let (codec, width, height) = match v.codec {
        FlvVideo::Avc => {
            let sps = codecs::avc::AvcDecoderConfig::parse(&record)
                .and_then(|c| c.sps_info())
                .map_err(|_| MuxError::BadConfig("H.264"))?;
            (VideoCodec::H264, sps.width, sps.height)
        }
        FlvVideo::Hevc => {
            let sps = codecs::hevc::HevcDecoderConfig::parse(&record)
                .and_then(|c| c.sps_info())
                .map_err(|_| MuxError::BadConfig("H.265"))?;
            (VideoCodec::H265, sps.width, sps.height)
        }
        _ => return Err(MuxError::Unsupported("this video codec", "MP4")),
    };
    let size = |n: u32| u16::try_from(n).unwrap_or(u16::MAX);
    Ok(VideoTrack {
        codec,
        record,
        width: size(width),
        height: size(height),
    })
}

fn audio_track(tag: &Tag) -> Result<AudioTrack, MuxError> {
    match tag.media {
        flv::Media::Audio(a) if a.codec == AudioCodec::Aac => {}
        _ => return Err(MuxError::Unsupported("this audio codec", "MP4")),
    }
    let asc = tag.payload();
    let parsed =
        codecs::aac::AudioSpecificConfig::parse(&asc).map_err(|_| MuxError::BadConfig("AAC"))?;
    let rate = parsed
        .extension_sampling_frequency
        .unwrap_or(parsed.sampling_frequency);
    Ok(AudioTrack {
        asc,
        sample_rate: rate.max(1),
        channels: u16::from(parsed.channel_count().unwrap_or(2)),
    })
}

fn push_mp4(w: &mut Fmp4Writer, tag: &Tag, out: &mut Vec<Bytes>) {
    let fragment = match tag.media {
        flv::Media::Video(v) if v.packet == VideoPacketKind::Frame => w.push_video(
            tag.timestamp,
            tag.composition_time,
            tag.keyframe,
            tag.payload(),
        ),
        flv::Media::Audio(a)
            if a.codec == AudioCodec::Aac && a.packet == AudioPacketKind::Frame =>
        {
            w.push_audio(tag.timestamp, tag.payload())
        }
        _ => None,
    };
    out.extend(fragment);
}

fn open_ts(headers: &Headers, origin_ms: u64, out: &mut Vec<Bytes>) -> Result<TsFile, MuxError> {
    let video = match headers.video.as_ref().map(|t| t.media) {
        Some(flv::Media::Video(v)) if v.codec == FlvVideo::Avc => Some(ts_mux::VideoCodec::H264),
        Some(flv::Media::Video(v)) if v.codec == FlvVideo::Hevc => Some(ts_mux::VideoCodec::H265),
        _ => None,
    };
    let audio = headers.audio.as_ref().and_then(|t| match t.media {
        flv::Media::Audio(a) if a.codec == AudioCodec::Aac => Some(ts_mux::AudioCodec::Aac),
        _ => None,
    });
    if video.is_none() && audio.is_none() {
        return Err(MuxError::Unsupported(
            "a stream without H.264, H.265 or AAC",
            "MPEG-TS",
        ));
    }
    let mut muxer = ts_mux::TsMuxer::new(ts_mux::Tracks { video, audio }, 100);
    if let (Some(_), Some(tag)) = (video, &headers.video) {
        muxer
            .set_video_config(&tag.payload())
            .map_err(|_| MuxError::BadConfig("video"))?;
    }
    if let (Some(_), Some(tag)) = (audio, &headers.audio) {
        muxer
            .set_aac_config(&tag.payload())
            .map_err(|_| MuxError::BadConfig("AAC"))?;
    }
    let mut buf = BytesMut::new();
    muxer.write_tables(&mut buf);
    out.push(buf.freeze());
    Ok(TsFile { muxer, origin_ms })
}

impl TsFile {
    fn push(&mut self, tag: &Tag, out: &mut Vec<Bytes>) {
        let dts_ms = tag.timestamp.saturating_sub(self.origin_ms);
        let mut buf = BytesMut::new();
        // A frame the tracks do not carry is left out; the muxer says so and nothing is written.
        let _ = match tag.media {
            flv::Media::Video(v) if v.packet == VideoPacketKind::Frame => {
                let frame = ts_mux::VideoFrame {
                    dts_ms,
                    cts_ms: tag.composition_time,
                    keyframe: tag.keyframe,
                    data: tag.payload(),
                };
                self.muxer.write_video(&frame, &mut buf)
            }
            flv::Media::Audio(a)
                if a.codec == AudioCodec::Aac && a.packet == AudioPacketKind::Frame =>
            {
                let payload = tag.payload();
                let frame = ts_mux::AudioFrame {
                    pts_ms: dts_ms,
                    data: &payload,
                };
                self.muxer.push_audio(&frame, &mut buf)
            }
            _ => Ok(()),
        };
        if !buf.is_empty() {
            out.push(buf.freeze());
        }
    }
}

//! A publishing connection's side of the bus: RTMP messages become bus tags
//! with their keyframe / sequence-header flags set once, here, and the
//! sequence headers fill the stream's media info.

use bus::{MediaInfo, Publisher, Tag, TagKind};
use bytes::Bytes;
use flv::{AudioCodec, AudioTagHeader, VideoCodec, VideoTagHeader};

/// Pushes one publisher's messages to the bus.
#[derive(Debug)]
pub struct Ingest {
    publisher: Publisher,
    info: MediaInfo,
    tags: u64,
}

impl Ingest {
    /// Wraps a bus publisher.
    pub fn new(publisher: Publisher) -> Self {
        Ingest {
            publisher,
            info: MediaInfo::default(),
            tags: 0,
        }
    }

    /// Tags pushed so far.
    pub fn tags(&self) -> u64 {
        self.tags
    }

    /// Pushes `onMetaData` script data.
    pub fn metadata(&mut self, timestamp: u32, data: Bytes) {
        self.push(Tag::new(TagKind::Script, u64::from(timestamp), data));
    }

    /// Pushes an audio message.
    pub fn audio(&mut self, timestamp: u32, data: Bytes) {
        let flags = flv::classify(flv::TAG_TYPE_AUDIO, &data);
        if flags.sequence_header || self.info.audio_codec.is_none() {
            self.learn_audio(&data);
        }
        let mut tag = Tag::new(TagKind::Audio, u64::from(timestamp), data);
        tag.sequence_header = flags.sequence_header;
        self.push(tag);
    }

    /// Pushes a video message.
    pub fn video(&mut self, timestamp: u32, data: Bytes) {
        let flags = flv::classify(flv::TAG_TYPE_VIDEO, &data);
        let header = VideoTagHeader::parse(&data).ok();
        if flags.sequence_header {
            if let Some(h) = &header {
                self.learn_video(h, &data);
            }
        }
        let mut tag = Tag::new(TagKind::Video, u64::from(timestamp), data);
        tag.keyframe = flags.keyframe;
        tag.sequence_header = flags.sequence_header;
        tag.composition_time = header.map_or(0, |h| h.composition_time);
        self.push(tag);
    }

    fn push(&mut self, tag: Tag) {
        self.tags += 1;
        self.publisher.push(tag);
    }

    /// Fills video codec, size and rate from a sequence header. A header we
    /// cannot parse is passed through untouched; only the info stays empty.
    fn learn_video(&mut self, h: &VideoTagHeader, data: &[u8]) {
        let config = data.get(h.header_len..).unwrap_or_default();
        let (name, dims) = match h.codec {
            VideoCodec::Avc => {
                let sps = codecs::AvcDecoderConfig::parse(config)
                    .ok()
                    .and_then(|c| c.sps_info().ok());
                ("h264", sps.map(|s| (s.width, s.height, s.frame_rate)))
            }
            VideoCodec::Hevc => {
                let sps = codecs::HevcDecoderConfig::parse(config)
                    .ok()
                    .and_then(|c| c.sps_info().ok());
                ("h265", sps.map(|s| (s.width, s.height, None)))
            }
            VideoCodec::Av1 => ("av1", None),
            VideoCodec::Vp9 => ("vp9", None),
            VideoCodec::OtherId(_) | VideoCodec::OtherFourCc(_) => ("other", None),
        };
        self.info.video_codec = Some(name.to_owned());
        if let Some((w, ht, fps)) = dims {
            self.info.width = Some(w);
            self.info.height = Some(ht);
            self.info.frame_rate = fps.or(self.info.frame_rate);
        }
        self.publisher.set_media_info(self.info.clone());
    }

    fn learn_audio(&mut self, data: &[u8]) {
        let Ok(h) = AudioTagHeader::parse(data) else {
            return;
        };
        let before = self.info.clone();
        match h.codec {
            AudioCodec::Aac => {
                self.info.audio_codec = Some("aac".into());
                let config = data.get(h.header_len..).unwrap_or_default();
                if let Ok(asc) = codecs::AudioSpecificConfig::parse(config) {
                    self.info.sample_rate = Some(asc.sampling_frequency);
                    self.info.channels = Some(asc.channel_configuration);
                }
            }
            AudioCodec::Mp3 => {
                self.info.audio_codec = Some("mp3".into());
                let frame = data.get(h.header_len..).unwrap_or_default();
                if let Ok(mp3) = codecs::Mp3FrameHeader::parse(frame) {
                    self.info.sample_rate = Some(mp3.sample_rate);
                    self.info.channels = Some(mp3.channels);
                }
            }
            other => self.info.audio_codec = Some(format!("{other:?}").to_lowercase()),
        }
        if self.info != before {
            self.publisher.set_media_info(self.info.clone());
        }
    }
}

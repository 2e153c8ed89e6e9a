//! A publishing connection's side of the bus: RTMP messages become bus tags
//! with their keyframe / sequence-header flags set once, here, and the
//! sequence headers fill the stream's media info.

use bus::{MediaInfo, Publisher, Tag, TagKind};
use bytes::Bytes;
use flv::{AudioCodec, Media, VideoCodec};

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
        let tag = Tag::classify(TagKind::Audio, u64::from(timestamp), data);
        if tag.sequence_header || self.info.audio_codec.is_none() {
            self.learn_audio(&tag);
        }
        self.push(tag);
    }

    /// Pushes a video message.
    pub fn video(&mut self, timestamp: u32, data: Bytes) {
        let tag = Tag::classify(TagKind::Video, u64::from(timestamp), data);
        if tag.sequence_header {
            self.learn_video(&tag);
        }
        self.push(tag);
    }

    fn push(&mut self, tag: Tag) {
        self.tags += 1;
        self.publisher.push(tag);
    }

    /// Fills video codec, size and rate from a sequence header. A header we
    /// cannot parse is passed through untouched; only the info stays empty.
    fn learn_video(&mut self, tag: &Tag) {
        let Media::Video(v) = tag.media else {
            return;
        };
        let config = tag.media.payload(&tag.data);
        let (name, dims) = match v.codec {
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

    fn learn_audio(&mut self, tag: &Tag) {
        let Media::Audio(a) = tag.media else {
            return;
        };
        let payload = tag.media.payload(&tag.data);
        let before = self.info.clone();
        match a.codec {
            AudioCodec::Aac => {
                self.info.audio_codec = Some("aac".into());
                if let Ok(asc) = codecs::AudioSpecificConfig::parse(payload) {
                    self.info.sample_rate = Some(asc.sampling_frequency);
                    self.info.channels = Some(asc.channel_configuration);
                }
            }
            AudioCodec::Mp3 => {
                self.info.audio_codec = Some("mp3".into());
                if let Ok(mp3) = codecs::Mp3FrameHeader::parse(payload) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use bus::{Bus, Protocol, PublisherInfo};

    fn ingest(bus: &Bus, key: &str) -> Ingest {
        let info = PublisherInfo {
            protocol: Protocol::Rtmp,
            peer: None,
            query: None,
        };
        Ingest::new(bus.publish(key, info).expect("key is free"))
    }

    /// (tag body, codec name, keyframe, sequence header) for the video
    /// header forms publishers send.
    #[test]
    fn video_flags_and_codec_for_each_header_form() {
        let cases: &[(&str, &[u8], &str, bool, bool)] = &[
            (
                "AVC sequence header",
                &[0x17, 0, 0, 0, 0, 1, 0x4d, 0, 0x1e],
                "h264",
                false,
                true,
            ),
            (
                "AVC keyframe",
                &[0x17, 1, 0, 0, 0x28, 0, 0, 0, 1, 0x65],
                "",
                true,
                false,
            ),
            (
                "AVC inter frame",
                &[0x27, 1, 0, 0, 0x28, 0, 0, 0, 1, 0x41],
                "",
                false,
                false,
            ),
            (
                "legacy HEVC id 12 sequence header",
                &[0x1c, 0, 0, 0, 0, 1],
                "h265",
                false,
                true,
            ),
            (
                "legacy HEVC id 12 keyframe",
                &[0x1c, 1, 0, 0, 0, 0, 0, 0, 1, 0x26],
                "",
                true,
                false,
            ),
            (
                "enhanced hvc1 sequence start",
                &[0x90, b'h', b'v', b'c', b'1', 1],
                "h265",
                false,
                true,
            ),
            (
                "enhanced hvc1 coded frames",
                &[0x91, b'h', b'v', b'c', b'1', 0, 0, 0, 0, 0, 0, 1],
                "",
                true,
                false,
            ),
            (
                "enhanced av01 sequence start",
                &[0x90, b'a', b'v', b'0', b'1', 0x81],
                "av1",
                false,
                true,
            ),
            (
                "enhanced vp09 coded frames X",
                &[0xa3, b'v', b'p', b'0', b'9', 0x82],
                "",
                false,
                false,
            ),
        ];
        for (i, (name, body, codec, key, seq)) in cases.iter().enumerate() {
            let bus = Bus::default();
            let key_name = format!("live/{i}");
            let mut ing = ingest(&bus, &key_name);
            let mut sub = bus.subscribe(&key_name, Protocol::Internal).expect("live");
            ing.video(40, Bytes::copy_from_slice(body));
            let Some(bus::Event::Tag(tag)) = sub.try_recv() else {
                panic!("{name}: no tag")
            };
            assert_eq!((tag.keyframe, tag.sequence_header), (*key, *seq), "{name}");
            assert_eq!(&tag.data[..], *body, "{name}: payload untouched");
            assert_eq!(tag.media, flv::Media::of(9, body), "{name}: media kept");
            let info = bus.stream(&key_name).expect("stream").media_info();
            if !codec.is_empty() {
                assert_eq!(info.video_codec.as_deref(), Some(*codec), "{name}");
            }
        }
    }

    #[test]
    fn aac_and_mp3_fill_audio_info() {
        let bus = Bus::default();
        let mut ing = ingest(&bus, "live/a");
        // AAC LC, 44.1 kHz (index 4), stereo.
        ing.audio(0, Bytes::from_static(&[0xaf, 0, 0x12, 0x10]));
        let info = bus.stream("live/a").expect("stream").media_info();
        assert_eq!(
            (info.audio_codec.as_deref(), info.sample_rate, info.channels),
            (Some("aac"), Some(44100), Some(2))
        );
        let mut ing = ingest(&bus, "live/m");
        // MPEG-1 Layer III, 128 kbit/s, 44.1 kHz, joint stereo.
        ing.audio(
            0,
            Bytes::from_static(&[0x2f, 0xff, 0xfb, 0x90, 0x64, 0, 0, 0]),
        );
        let info = bus.stream("live/m").expect("stream").media_info();
        assert_eq!(
            (info.audio_codec.as_deref(), info.sample_rate),
            (Some("mp3"), Some(44100))
        );
    }
}

//! What a new viewer needs to start at once: metadata, sequence headers and the current GOP.

use std::collections::VecDeque;

use crate::ring::{Replay, Role, Unit};
use crate::{Event, Tag, TagKind};

/// Limits on the start-up cache, from [`crate::BusOptions`].
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct CacheLimits {
    pub gop_max_tags: usize,
    pub gop_max_bytes: usize,
    pub audio_only_ms: u64,
}

/// The cached start-up state of one stream.
///
/// For a stream with video the GOP holds every tag since the last keyframe; when it outgrows its
/// limits it is dropped whole (a partial GOP is useless to a decoder) and new viewers wait for the
/// next keyframe. For an audio-only stream it is a sliding window of the last `audio_only_ms`.
#[derive(Debug, Default)]
pub(crate) struct StartupCache {
    limits: CacheLimits,
    pub metadata: Option<Tag>,
    pub video_header: Option<Tag>,
    pub audio_header: Option<Tag>,
    gop: VecDeque<Tag>,
    gop_bytes: usize,
    /// The GOP starts on a keyframe and is within limits.
    gop_valid: bool,
    has_video: bool,
    /// The current publisher has sent an audio or video frame (not only headers).
    has_frames: bool,
}

impl StartupCache {
    /// Forgets everything: a new publisher brings its own headers.
    pub(crate) fn clear(&mut self) {
        *self = StartupCache::new(self.limits);
    }

    /// An empty cache within `limits`.
    pub(crate) fn new(limits: CacheLimits) -> Self {
        StartupCache {
            limits,
            ..StartupCache::default()
        }
    }

    pub(crate) fn has_video(&self) -> bool {
        self.has_video
    }

    pub(crate) fn has_frames(&self) -> bool {
        self.has_frames
    }

    /// Records one tag that is about to be sent to subscribers.
    pub(crate) fn record(&mut self, tag: &Tag) {
        let limits = self.limits;
        match tag.kind {
            TagKind::Script => self.metadata = Some(tag.clone()),
            TagKind::Video if tag.sequence_header => {
                self.saw_video();
                self.video_header = Some(tag.clone());
            }
            TagKind::Audio if tag.sequence_header => self.audio_header = Some(tag.clone()),
            TagKind::Video => self.record_video(tag, limits),
            TagKind::Audio => self.record_audio(tag, limits),
        }
    }

    fn record_video(&mut self, tag: &Tag, limits: CacheLimits) {
        self.has_frames = true;
        self.saw_video();
        if tag.keyframe {
            self.reset_gop(true);
        }
        self.push(tag, limits);
    }

    /// The first video tag (or header) turns the audio-only window into a GOP cache.
    fn saw_video(&mut self) {
        if !self.has_video {
            self.has_video = true;
            self.reset_gop(false);
        }
    }

    fn record_audio(&mut self, tag: &Tag, limits: CacheLimits) {
        self.has_frames = true;
        if self.has_video {
            self.push(tag, limits);
            return;
        }
        self.gop_valid = true;
        self.gop.push_back(tag.clone());
        self.gop_bytes += tag.data.len();
        while let Some(front) = self.gop.front() {
            let span = tag.timestamp.saturating_sub(front.timestamp);
            let over = span > limits.audio_only_ms
                || self.gop.len() > limits.gop_max_tags
                || self.gop_bytes > limits.gop_max_bytes;
            if !over {
                break;
            }
            self.gop_bytes -= front.data.len();
            self.gop.pop_front();
        }
    }

    fn push(&mut self, tag: &Tag, limits: CacheLimits) {
        if !self.gop_valid {
            return;
        }
        self.gop.push_back(tag.clone());
        self.gop_bytes += tag.data.len();
        if self.gop.len() > limits.gop_max_tags || self.gop_bytes > limits.gop_max_bytes {
            self.reset_gop(false);
        }
    }

    fn reset_gop(&mut self, valid: bool) {
        self.gop.clear();
        self.gop_bytes = 0;
        self.gop_valid = valid;
    }

    /// The tags a new viewer receives before live ones, in order.
    pub(crate) fn snapshot(&self) -> impl Iterator<Item = &Tag> {
        let gop = if self.gop_valid {
            Some(self.gop.iter())
        } else {
            None
        };
        self.headers().chain(gop.into_iter().flatten())
    }

    /// Metadata and sequence headers, in that order.
    pub(crate) fn headers(&self) -> impl Iterator<Item = &Tag> {
        self.metadata
            .iter()
            .chain(self.video_header.iter())
            .chain(self.audio_header.iter())
    }

    /// The cached GOP alone (from its keyframe, or the audio-only window); empty if none is valid.
    pub(crate) fn gop(&self) -> impl Iterator<Item = &Tag> {
        self.gop
            .iter()
            .take(if self.gop_valid { usize::MAX } else { 0 })
    }

    /// Bytes held by the GOP cache, for statistics.
    pub(crate) fn gop_bytes(&self) -> usize {
        self.gop_bytes
    }
}

/// The bus's ring replays this cache: configuration tags are slots 0 (metadata), 1 (video
/// header) and 2 (audio header); audio frames are places to start in an audio-only stream.
impl Replay<Event> for StartupCache {
    fn record(&mut self, unit: &Event) {
        if let Event::Tag(tag) = unit {
            StartupCache::record(self, tag);
        }
    }

    fn snapshot(&self, out: &mut Vec<Event>) {
        out.extend(StartupCache::snapshot(self).cloned().map(Event::Tag));
    }

    fn config(&self, out: &mut Vec<Event>) {
        out.extend(self.headers().cloned().map(Event::Tag));
    }

    fn audio_restarts(&self) -> bool {
        !self.has_video
    }
}

impl Unit for Event {
    fn role(&self) -> Role {
        let tag = match self {
            Event::Tag(tag) => tag,
            Event::PublisherLeft | Event::PublisherJoined => return Role::Control,
            Event::Closed => return Role::End,
        };
        match tag.kind {
            TagKind::Script => Role::Config(0),
            TagKind::Video if tag.sequence_header => Role::Config(1),
            TagKind::Audio if tag.sequence_header => Role::Config(2),
            TagKind::Video if tag.keyframe => Role::Sync,
            TagKind::Audio => Role::Audio,
            TagKind::Video => Role::Media,
        }
    }

    fn same_config(&self, other: &Self) -> bool {
        match (self, other) {
            (Event::Tag(a), Event::Tag(b)) => a.data == b.data,
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    const LIMITS: CacheLimits = CacheLimits {
        gop_max_tags: 5,
        gop_max_bytes: 1000,
        audio_only_ms: 100,
    };

    /// Shorthand tag: `V`/`v` video key/inter, `A` audio, `H`/`h` video/audio header, `S` script.
    fn tag(code: char, ts: u64) -> Tag {
        let (kind, keyframe, header) = match code {
            'V' => (TagKind::Video, true, false),
            'v' => (TagKind::Video, false, false),
            'A' => (TagKind::Audio, false, false),
            'H' => (TagKind::Video, true, true),
            'h' => (TagKind::Audio, false, true),
            _ => (TagKind::Script, false, false),
        };
        Tag {
            keyframe,
            sequence_header: header,
            ..Tag::new(kind, ts, Bytes::from(vec![code as u8; 10]))
        }
    }

    /// Records `input` (one char per tag, timestamps 0, 20, 40...) and compares the snapshot codes.
    fn check(input: &str, want: &str) {
        let mut cache = StartupCache::new(LIMITS);
        for (i, c) in input.chars().enumerate() {
            cache.record(&tag(c, i as u64 * 20));
        }
        let got: String = cache.snapshot().map(|t| t.data[0] as char).collect();
        assert_eq!(got, want, "input {input}");
    }

    #[test]
    fn frames_are_noted_even_when_the_gop_is_dropped() {
        let mut cache = StartupCache::new(LIMITS);
        for (i, c) in "ShH".chars().enumerate() {
            cache.record(&tag(c, i as u64 * 20));
        }
        assert!(!cache.has_frames(), "headers only");
        // A GOP that outgrows its limits is dropped, but the stream has frames all the same.
        for (i, c) in "Vvvvvv".chars().enumerate() {
            cache.record(&tag(c, 60 + i as u64 * 20));
        }
        assert_eq!(cache.gop_bytes(), 0);
        assert!(cache.has_frames());
        cache.clear();
        assert!(!cache.has_frames(), "a new publisher starts over");
    }

    #[test]
    fn starts_on_the_last_keyframe() {
        check("ShhHVvAvVvA", "SHhVvA");
    }

    #[test]
    fn waits_for_a_keyframe() {
        check("HhvAv", "Hh");
    }

    #[test]
    fn drops_a_gop_that_outgrows_its_limit() {
        check("HVvvvvv", "H");
    }

    #[test]
    fn audio_only_keeps_a_sliding_window() {
        // 100 ms at 20 ms spacing keeps six tags (0..=100 ms span), then the tag count limit of 5 trims.
        check("hAAAAAAAA", "hAAAAA");
    }

    #[test]
    fn audio_before_the_first_video_is_not_kept() {
        check("hAAHvV", "HhV");
    }
}

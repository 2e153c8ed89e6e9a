//! The segmenter: FLV-style tags in, MPEG-TS segments and a live playlist out.

use std::collections::VecDeque;

use bytes::{Bytes, BytesMut};
use ts_mux::{AudioCodec, AudioFrame, Tracks, TsMuxer, VideoCodec, VideoFrame};

use crate::crypto::{self, KeyDeriver};
use crate::flv_body::{self, Media};
use crate::playlist::{self, PlaylistHeader, SegmentEntry};
use crate::HlsError;

/// How long (in stream time) the segmenter waits for both tracks to show up before it fixes
/// the program map with what it has seen.
pub const PROBE_MS: u64 = 1000;
/// The most tags held while probing, whatever their timestamps say.
pub const PROBE_MAX_TAGS: usize = 512;
/// A timestamp this far behind the newest one is a jump back, not audio/video interleaving.
pub const BACKWARD_JUMP_MS: u64 = 1000;

/// The kind of an input tag, as in FLV.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TagKind {
    /// An audio tag.
    Audio,
    /// A video tag.
    Video,
    /// A script data tag (metadata); the segmenter ignores it.
    Script,
}

/// One FLV-style tag: the fields of the bus `Tag`, without depending on the bus.
#[derive(Debug, Clone)]
pub struct InputTag {
    /// Audio, video or script.
    pub kind: TagKind,
    /// DTS in milliseconds on a continuous timeline.
    pub timestamp: u64,
    /// Video composition offset in milliseconds (PTS = timestamp + this).
    pub composition_time: i32,
    /// Whether this video tag is a keyframe.
    pub keyframe: bool,
    /// The whole FLV tag body, tag header byte(s) included.
    pub data: Bytes,
    /// What the body's header says, parsed once when the tag was built (the bus `Tag`'s
    /// `media`); the segmenter never parses a tag header itself.
    pub media: flv::Media,
}

impl InputTag {
    /// A tag from an FLV body, its header parsed once ([`flv::Media::of`]) for the keyframe
    /// flag, the composition time and the media: for tags read from FLV files.
    pub fn classify(kind: TagKind, timestamp: u64, data: Bytes) -> InputTag {
        let tag_type = match kind {
            TagKind::Audio => flv::TAG_TYPE_AUDIO,
            TagKind::Video => flv::TAG_TYPE_VIDEO,
            TagKind::Script => flv::TAG_TYPE_SCRIPT,
        };
        let media = flv::Media::of(tag_type, &data);
        InputTag {
            kind,
            timestamp,
            composition_time: media.composition_time(),
            keyframe: media.flags().keyframe,
            data,
            media,
        }
    }
}

/// AES-128 settings.
#[derive(Clone)]
pub struct Encryption {
    /// Secret from which content keys are derived; draw it from the OS RNG.
    pub secret: [u8; 16],
    /// A new key every this many segments (at least 1).
    pub key_rotation: u64,
}

impl std::fmt::Debug for Encryption {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Encryption")
            .field("key_rotation", &self.key_rotation)
            .finish_non_exhaustive()
    }
}

/// Segmenter settings.
#[derive(Debug, Clone)]
pub struct SegmenterOptions {
    /// Segments are cut at the first keyframe at least this long after the segment start
    /// (audio-only streams are cut on time).
    pub target_duration_ms: u64,
    /// Segments listed in the playlist.
    pub window: usize,
    /// Segments kept available after they leave the playlist, for players that loaded an older
    /// playlist (RFC 8216 6.2.2 asks for a segment duration plus a playlist duration).
    pub retain_after_window: usize,
    /// Audio frames spanning up to this long share one PES packet.
    pub audio_batch_ms: u64,
    /// A segment is cut without a keyframe once it is this long (no keyframe for that long
    /// means a broken publisher; the cut bounds memory).
    pub max_segment_ms: u64,
    /// A segment is cut without a keyframe once it is this large.
    pub max_segment_bytes: usize,
    /// A forward timestamp jump larger than this starts a discontinuity.
    pub jump_threshold_ms: u64,
    /// AES-128 encryption, if enabled.
    pub encryption: Option<Encryption>,
    /// Prefix of segment and key URIs, relative to the playlist; a per-session token keeps
    /// names unique across muxer restarts, so caches never serve a stale segment.
    pub uri_prefix: String,
}

impl Default for SegmenterOptions {
    fn default() -> Self {
        SegmenterOptions {
            target_duration_ms: 2000,
            window: 6,
            retain_after_window: 3,
            audio_batch_ms: 100,
            max_segment_ms: 30_000,
            max_segment_bytes: 32 << 20,
            jump_threshold_ms: 10_000,
            encryption: None,
            uri_prefix: String::new(),
        }
    }
}

/// One finished segment.
#[derive(Debug, Clone)]
pub struct Segment {
    /// What the playlist says about it.
    pub entry: SegmentEntry,
    /// The TS bytes (encrypted when encryption is on).
    pub data: Bytes,
}

/// Counters for logs and stats.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SegmenterStats {
    /// Segments finished.
    pub segments: u64,
    /// Tags that could not be muxed (malformed, or for an unsupported codec).
    pub skipped_tags: u64,
    /// Discontinuities started (publisher restarts and timestamp jumps).
    pub discontinuities: u64,
}

#[derive(Debug)]
struct OpenSegment {
    sequence: u64,
    start_dts: u64,
    /// The newest DTS of the clock track (video if any, else audio) and its last step, to
    /// estimate the duration of a segment closed without a following keyframe.
    clock_dts: u64,
    clock_step: u64,
    program_date_time_ms: u64,
    discontinuity: bool,
    buf: BytesMut,
}

/// Cuts FLV-style tags into MPEG-TS segments and keeps a live sliding window of them.
///
/// Sans-IO: wall-clock time comes in with every call that may start a segment; the caller
/// serves [`Segmenter::playlist`], [`Segmenter::segment`] and [`Segmenter::key`].
#[derive(Debug)]
pub struct Segmenter {
    opts: SegmenterOptions,
    muxer: Option<TsMuxer>,
    probing: bool,
    probe: Vec<InputTag>,
    video_config: Option<(VideoCodec, Bytes)>,
    aac_config: Option<Bytes>,
    mp3: Option<AudioCodec>,
    open: Option<OpenSegment>,
    segments: VecDeque<Segment>,
    next_sequence: u64,
    discontinuity_sequence: u64,
    pending_discontinuity: bool,
    clock_anchor_ms: Option<i64>,
    last_dts: Option<u64>,
    target_duration_secs: u64,
    playlist: Bytes,
    keys: Option<KeyDeriver>,
    stats: SegmenterStats,
}

impl Segmenter {
    /// Creates a segmenter; the window and the key rotation are at least 1.
    pub fn new(mut opts: SegmenterOptions) -> Segmenter {
        opts.window = opts.window.max(1);
        opts.target_duration_ms = opts.target_duration_ms.max(1);
        if let Some(e) = opts.encryption.as_mut() {
            e.key_rotation = e.key_rotation.max(1);
        }
        let keys = opts.encryption.as_ref().map(|e| KeyDeriver::new(e.secret));
        let mut s = Segmenter {
            target_duration_secs: opts.target_duration_ms.div_ceil(1000),
            opts,
            muxer: None,
            probing: true,
            probe: Vec::new(),
            video_config: None,
            aac_config: None,
            mp3: None,
            open: None,
            segments: VecDeque::new(),
            next_sequence: 0,
            discontinuity_sequence: 0,
            pending_discontinuity: false,
            clock_anchor_ms: None,
            last_dts: None,
            playlist: Bytes::new(),
            keys,
            stats: SegmenterStats::default(),
        };
        s.rebuild_playlist();
        s
    }

    /// Feeds one tag. Returns the sequence number of a segment this tag completed, if any.
    ///
    /// An error means the tag was skipped (and counted); the segmenter stays usable.
    pub fn push(&mut self, tag: InputTag, now_ms: u64) -> Result<Option<u64>, HlsError> {
        let result = self.push_inner(tag, now_ms);
        if result.is_err() {
            self.stats.skipped_tags += 1;
        }
        result
    }

    fn push_inner(&mut self, tag: InputTag, now_ms: u64) -> Result<Option<u64>, HlsError> {
        if tag.kind == TagKind::Script {
            return Ok(None);
        }
        match flv_body::media(tag.media, &tag.data)? {
            Media::VideoConfig(codec, record) => {
                self.on_video_config(codec, tag.data.slice_ref(record))
            }
            Media::AacConfig(asc) => self.on_aac_config(tag.data.slice_ref(asc)),
            Media::Ignored => Ok(None),
            media @ (Media::VideoFrame(..) | Media::AacFrame(_) | Media::Mp3Frame(_)) => {
                if let Media::Mp3Frame(f) = media {
                    self.mp3 = self.mp3.or(AudioCodec::from_mpeg_audio_frame(f));
                }
                self.on_frame(tag, now_ms)
            }
        }
    }

    fn on_video_config(
        &mut self,
        codec: VideoCodec,
        record: Bytes,
    ) -> Result<Option<u64>, HlsError> {
        // Validate before keeping it, so a bad record never replaces a good one.
        match codec {
            VideoCodec::H264 => ts_mux::parse_avcc(&record)?,
            VideoCodec::H265 => ts_mux::parse_hvcc(&record)?,
        };
        let mut closed = None;
        let tracks = self.muxer.as_ref().map(TsMuxer::tracks);
        if !self.probing && tracks.is_some_and(|t| t.video.is_some_and(|v| v != codec)) {
            // The codec changed mid-stream: a new program map, announced by a discontinuity.
            closed = self.discontinuity();
            self.probing = true;
        } else if !self.probing
            && self
                .video_config
                .as_ref()
                .is_some_and(|(c, r)| *c == codec && *r != record)
        {
            // Same codec, new parameter sets (another picture size or profile): the next segment
            // starts with them in-band before its keyframe, and a discontinuity tells players to
            // reset their decoder (RFC 8216 4.3.2.3: "encoding parameters" changed).
            closed = self.discontinuity();
        }
        self.video_config = Some((codec, record.clone()));
        if let (false, Some(m)) = (self.probing, self.muxer.as_mut()) {
            if m.tracks().video.is_none() {
                self.add_track_mid_stream();
            }
            if let Some(m) = self.muxer.as_mut() {
                m.set_video_config(&record)?;
            }
        }
        Ok(closed)
    }

    fn on_aac_config(&mut self, asc: Bytes) -> Result<Option<u64>, HlsError> {
        ts_mux::parse_audio_specific_config(&asc)?;
        let mut closed = None;
        if !self.probing && self.aac_config.as_ref().is_some_and(|old| *old != asc) {
            // A new AAC configuration (sample rate, channels) is a new encoding too.
            closed = self.discontinuity();
        }
        self.aac_config = Some(asc.clone());
        if let (false, Some(m)) = (self.probing, self.muxer.as_mut()) {
            m.set_aac_config(&asc)?;
            if m.tracks().audio.is_none() {
                self.add_track_mid_stream();
            }
        }
        Ok(closed)
    }

    fn on_frame(&mut self, tag: InputTag, now_ms: u64) -> Result<Option<u64>, HlsError> {
        let closed = self.check_timestamp_jump(tag.timestamp);
        if !self.probing {
            return Ok(self.mux(&tag, now_ms)?.or(closed));
        }
        if self.probe.len() >= PROBE_MAX_TAGS {
            self.probe.remove(0);
        }
        self.probe.push(tag);
        if !self.probe_done() {
            return Ok(closed);
        }
        Ok(self.finish_probe(now_ms).or(closed))
    }

    fn probe_done(&self) -> bool {
        let have_audio = self.aac_config.is_some() || self.mp3.is_some();
        let span = match (self.probe.first(), self.probe.last()) {
            (Some(a), Some(b)) => b.timestamp.saturating_sub(a.timestamp),
            _ => 0,
        };
        (self.video_config.is_some() && have_audio)
            || span >= PROBE_MS
            || self.probe.len() >= PROBE_MAX_TAGS
    }

    fn current_tracks(&self) -> Tracks {
        let audio = if self.aac_config.is_some() {
            Some(AudioCodec::Aac)
        } else {
            self.mp3
        };
        Tracks {
            video: self.video_config.as_ref().map(|(c, _)| *c),
            audio,
        }
    }

    /// Fixes the program map from what the probe saw, then muxes the held tags.
    fn finish_probe(&mut self, now_ms: u64) -> Option<u64> {
        let tracks = self.current_tracks();
        let batch = self.opts.audio_batch_ms;
        let muxer = self
            .muxer
            .get_or_insert_with(|| TsMuxer::new(tracks, batch));
        muxer.set_tracks(tracks);
        self.probing = false;
        let configured = self.configure_muxer();
        let mut closed = None;
        for tag in std::mem::take(&mut self.probe) {
            match self.mux(&tag, now_ms) {
                Ok(c) => closed = closed.or(c),
                Err(_) => self.stats.skipped_tags += 1,
            }
        }
        if configured.is_err() {
            self.stats.skipped_tags += 1;
        }
        closed
    }

    fn configure_muxer(&mut self) -> Result<(), HlsError> {
        let Some(m) = self.muxer.as_mut() else {
            return Ok(());
        };
        if let Some((_, record)) = &self.video_config {
            if m.tracks().video.is_some() {
                m.set_video_config(record)?;
            }
        }
        if let Some(asc) = &self.aac_config {
            m.set_aac_config(asc)?;
        }
        Ok(())
    }

    /// A track showed up after the probe: announce it with a new PMT version right away (a PMT
    /// mid-segment is legal, ISO/IEC 13818-1 2.4.4.9) and in every following segment.
    fn add_track_mid_stream(&mut self) {
        let tracks = self.current_tracks();
        let Some(m) = self.muxer.as_mut() else { return };
        m.set_tracks(tracks);
        if let Some(open) = self.open.as_mut() {
            m.write_tables(&mut open.buf);
        }
    }

    fn check_timestamp_jump(&mut self, dts: u64) -> Option<u64> {
        let Some(last) = self.last_dts else {
            self.last_dts = Some(dts);
            return None;
        };
        if dts + BACKWARD_JUMP_MS < last || dts > last.saturating_add(self.opts.jump_threshold_ms) {
            let closed = self.discontinuity();
            self.last_dts = Some(dts);
            return closed;
        }
        self.last_dts = Some(last.max(dts));
        None
    }

    fn mux(&mut self, tag: &InputTag, now_ms: u64) -> Result<Option<u64>, HlsError> {
        let media = flv_body::media(tag.media, &tag.data)?;
        let tracks = self.muxer.as_ref().map(TsMuxer::tracks).unwrap_or_default();
        if matches!(media, Media::Mp3Frame(_)) && tracks.audio.is_none() {
            self.add_track_mid_stream();
        }
        let is_video = matches!(media, Media::VideoFrame(..));
        let clock = if tracks.video.is_some() {
            is_video
        } else {
            !is_video
        };
        let random_access = if tracks.video.is_some() {
            is_video && tag.keyframe
        } else {
            clock
        };
        let closed = self.maybe_cut(tag.timestamp, random_access, now_ms);
        let Some(open) = self.open.as_mut() else {
            return Ok(closed); // Waiting for the first keyframe.
        };
        if clock {
            open.clock_step = tag.timestamp.saturating_sub(open.clock_dts);
            open.clock_dts = open.clock_dts.max(tag.timestamp);
        }
        let muxer = self
            .muxer
            .as_mut()
            .expect("a segment is only open once the muxer exists");
        match media {
            Media::VideoFrame(codec, data) if Some(codec) == tracks.video => {
                let frame = VideoFrame {
                    dts_ms: tag.timestamp,
                    cts_ms: tag.composition_time,
                    keyframe: tag.keyframe,
                    data: tag.data.slice_ref(data),
                };
                muxer.write_video(&frame, &mut open.buf)?;
            }
            Media::AacFrame(data) | Media::Mp3Frame(data) => {
                muxer.push_audio(
                    &AudioFrame {
                        pts_ms: tag.timestamp,
                        data,
                    },
                    &mut open.buf,
                )?;
            }
            _ => {
                return Err(HlsError::BadTag(
                    "frame for a codec the program map does not carry",
                ))
            }
        }
        Ok(closed)
    }

    /// Closes the open segment if this frame should start a new one, and opens one if none is
    /// open and this frame can start a segment.
    fn maybe_cut(&mut self, dts: u64, random_access: bool, now_ms: u64) -> Option<u64> {
        let mut closed = None;
        if let Some(open) = &self.open {
            let age = dts.saturating_sub(open.start_dts);
            let due = random_access && age >= self.opts.target_duration_ms;
            let forced =
                age >= self.opts.max_segment_ms || open.buf.len() >= self.opts.max_segment_bytes;
            if due || forced {
                closed = self.close_segment(Some(dts));
            }
        }
        if self.open.is_none() && random_access {
            self.open_segment(dts, now_ms);
        }
        closed
    }

    fn open_segment(&mut self, dts: u64, now_ms: u64) {
        // The newest timestamp seen is the one that arrived `now`; older held tags (the probe,
        // the bus's cached GOP) are placed before it on the wall clock.
        let newest = self.last_dts.unwrap_or(dts).max(dts);
        let anchor = *self
            .clock_anchor_ms
            .get_or_insert(now_ms as i64 - newest as i64);
        let muxer = self
            .muxer
            .as_mut()
            .expect("segments open only after the probe made a muxer");
        let capacity = self
            .segments
            .back()
            .map_or(256 << 10, |s| s.data.len() + (64 << 10));
        let mut buf = BytesMut::with_capacity(capacity.min(self.opts.max_segment_bytes));
        muxer.write_tables(&mut buf);
        self.open = Some(OpenSegment {
            sequence: self.next_sequence,
            start_dts: dts,
            clock_dts: dts,
            clock_step: 0,
            program_date_time_ms: (anchor + dts as i64).max(0) as u64,
            discontinuity: std::mem::take(&mut self.pending_discontinuity),
            buf,
        });
        self.next_sequence += 1;
    }

    /// Closes the open segment. `end_dts` is the start of the next one; without it the end is
    /// estimated from the last frame step of the clock track.
    fn close_segment(&mut self, end_dts: Option<u64>) -> Option<u64> {
        let mut open = self.open.take()?;
        if let Some(m) = self.muxer.as_mut() {
            m.flush_audio(&mut open.buf);
        }
        let end = end_dts.unwrap_or(open.clock_dts + open.clock_step);
        let duration_ms = end.saturating_sub(open.start_dts).max(1);
        let key_id = self
            .opts
            .encryption
            .as_ref()
            .map(|e| open.sequence / e.key_rotation);
        let data = match (&self.keys, key_id) {
            (Some(k), Some(id)) => Bytes::from(crypto::encrypt_segment(
                &k.key(id),
                open.sequence,
                &open.buf,
            )),
            _ => open.buf.freeze(),
        };
        let entry = SegmentEntry {
            sequence: open.sequence,
            duration_ms,
            discontinuity: open.discontinuity,
            program_date_time_ms: open.program_date_time_ms,
            key_id,
        };
        self.target_duration_secs = self.target_duration_secs.max(duration_ms.div_ceil(1000));
        self.segments.push_back(Segment { entry, data });
        self.slide_window();
        self.stats.segments += 1;
        self.rebuild_playlist();
        Some(open.sequence)
    }

    fn slide_window(&mut self) {
        let len = self.segments.len();
        if len > self.opts.window {
            // The segment just before the listed window has left the playlist; its
            // discontinuity tag left with it (RFC 8216 4.3.3.3).
            if self
                .segments
                .get(len - self.opts.window - 1)
                .is_some_and(|s| s.entry.discontinuity)
            {
                self.discontinuity_sequence += 1;
            }
        }
        while self.segments.len() > self.opts.window + self.opts.retain_after_window {
            self.segments.pop_front();
        }
    }

    fn rebuild_playlist(&mut self) {
        let header = PlaylistHeader {
            target_duration_secs: self.target_duration_secs,
            discontinuity_sequence: self.discontinuity_sequence,
            uri_prefix: &self.opts.uri_prefix,
        };
        let entries: Vec<SegmentEntry> = self.listed().map(|s| s.entry.clone()).collect();
        self.playlist = Bytes::from(playlist::write(&header, &entries));
    }

    fn listed(&self) -> impl Iterator<Item = &Segment> {
        self.segments
            .iter()
            .skip(self.segments.len().saturating_sub(self.opts.window))
    }

    /// Closes the open segment and marks the next one as discontinuous (timestamps jumped or
    /// the caller knows the timeline broke). Returns the closed segment, if any.
    pub fn discontinuity(&mut self) -> Option<u64> {
        let closed = self.close_segment(None);
        if self.next_sequence > 0 {
            self.pending_discontinuity = true;
            self.stats.discontinuities += 1;
        }
        self.clock_anchor_ms = None;
        self.last_dts = None;
        closed
    }

    /// The publisher went away and (maybe) came back: close the open segment, start a
    /// discontinuity, and learn the codecs again from the new session's tags.
    pub fn publisher_restarted(&mut self) -> Option<u64> {
        let closed = self.discontinuity();
        self.video_config = None;
        self.aac_config = None;
        self.mp3 = None;
        self.probing = true;
        self.probe.clear();
        closed
    }

    /// Closes the open segment so the last seconds of a stream that ended are playable.
    pub fn flush(&mut self) -> Option<u64> {
        self.close_segment(None)
    }

    /// The current live playlist.
    pub fn playlist(&self) -> Bytes {
        self.playlist.clone()
    }

    /// Whether the playlist lists at least one segment.
    pub fn has_segments(&self) -> bool {
        !self.segments.is_empty()
    }

    /// A segment still held (listed or recently listed), by media sequence number.
    pub fn segment(&self, sequence: u64) -> Option<Bytes> {
        self.segments
            .iter()
            .find(|s| s.entry.sequence == sequence)
            .map(|s| s.data.clone())
    }

    /// All held segments, oldest first.
    pub fn segments(&self) -> impl Iterator<Item = &Segment> {
        self.segments.iter()
    }

    /// The AES-128 key with this id, while a held segment uses it.
    pub fn key(&self, key_id: u64) -> Option<[u8; 16]> {
        let keys = self.keys.as_ref()?;
        self.segments
            .iter()
            .any(|s| s.entry.key_id == Some(key_id))
            .then(|| keys.key(key_id))
    }

    /// EXT-X-TARGETDURATION in seconds (never decreases).
    pub fn target_duration_secs(&self) -> u64 {
        self.target_duration_secs
    }

    /// Counters.
    pub fn stats(&self) -> SegmenterStats {
        self.stats
    }

    /// The options in effect.
    pub fn options(&self) -> &SegmenterOptions {
        &self.opts
    }
}

//! Cuts one stream's tags into files: sans-IO (no files, no clock). The caller feeds bus
//! events and carries out the [`Action`]s in order.
//!
//! A file opens on a video keyframe (any audio frame in a stream without video), with the
//! stream's latest metadata and decoder configurations; it is closed and the next one opened
//! at the first keyframe once it is `segment_ms` long or `segment_bytes` large, when a
//! configuration changes (an MP4 or TS file describes its tracks once), and when the feed
//! breaks (the publisher left or came back, or the reader skipped tags).

use bus::{Tag, TagKind};
use bytes::Bytes;

use crate::mux::{FileMuxer, Headers};
use crate::Format;

/// What the caller does next.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Action {
    /// Create a file whose first media is at stream time `start_ms`.
    Open { start_ms: u64 },
    /// Append to the open file.
    Write(Bytes),
    /// Finish the open file: write `patch` (offset, bytes) if any, then close it. `duration_ms`
    /// is its media duration.
    Close {
        duration_ms: u64,
        patch: Option<(u64, [u8; 8])>,
    },
    /// The stream's media cannot go into this format; nothing is written until it changes.
    Refused(String),
}

struct Open {
    muxer: FileMuxer,
    start_ms: u64,
    last_ms: u64,
    bytes: u64,
}

/// One stream's cutter.
pub(crate) struct Segmenter {
    format: Format,
    segment_ms: u64,
    segment_bytes: u64,
    headers: Headers,
    open: Option<Open>,
    /// The configuration changed since the open file started (a cut is due at the next keyframe).
    reconfigured: bool,
    refused: bool,
}

impl Segmenter {
    /// `segment_bytes` 0: no size limit.
    pub fn new(format: Format, segment_ms: u64, segment_bytes: u64) -> Segmenter {
        Segmenter {
            format,
            segment_ms: segment_ms.max(1),
            segment_bytes,
            headers: Headers::default(),
            open: None,
            reconfigured: false,
            refused: false,
        }
    }

    /// Feeds one tag.
    pub fn push(&mut self, tag: &Tag, out: &mut Vec<Action>) {
        if self.headers.record(tag) {
            self.on_header(tag, out);
            return;
        }
        let has_video = self.headers.video.is_some();
        let start = match tag.kind {
            TagKind::Video => tag.is_video_keyframe(),
            TagKind::Audio => !has_video && !tag.sequence_header,
            TagKind::Script => false,
        };
        if start && self.cut_due(tag.timestamp) {
            self.close(out);
        }
        if self.open.is_none() {
            if !start || self.refused {
                return;
            }
            self.open_file(tag.timestamp, out);
        }
        self.write(tag, out);
    }

    /// The feed broke (publisher left or returned, tags skipped): the open file is closed and
    /// the next starts at a keyframe. After a publisher change, its configurations follow.
    pub fn feed_broke(&mut self, new_publisher: bool, out: &mut Vec<Action>) {
        self.close(out);
        if new_publisher {
            self.headers = Headers::default();
            self.refused = false;
        }
    }

    /// Closes the open file, if any.
    pub fn close(&mut self, out: &mut Vec<Action>) {
        let Some(mut open) = self.open.take() else {
            return;
        };
        let mut bytes = Vec::new();
        let patch = open.muxer.finish(&mut bytes);
        out.extend(bytes.into_iter().map(Action::Write));
        out.push(Action::Close {
            duration_ms: open.last_ms.saturating_sub(open.start_ms),
            patch,
        });
        self.reconfigured = false;
    }

    fn cut_due(&self, now_ms: u64) -> bool {
        let Some(open) = &self.open else {
            return false;
        };
        let long = now_ms.saturating_sub(open.start_ms) >= self.segment_ms;
        let large = self.segment_bytes > 0 && open.bytes >= self.segment_bytes;
        long || large || self.reconfigured
    }

    fn on_header(&mut self, tag: &Tag, out: &mut Vec<Action>) {
        self.refused = false;
        let Some(open) = self.open.as_mut() else {
            return;
        };
        match (self.format, tag.kind) {
            // FLV carries a new configuration in-band, like any tag.
            (Format::Flv, _) | (_, TagKind::Script) => self.write(tag, out),
            _ => {
                // The file described the old tracks: the next keyframe starts a new one.
                let _ = open;
                self.reconfigured = true;
            }
        }
    }

    fn open_file(&mut self, start_ms: u64, out: &mut Vec<Action>) {
        let mut bytes = Vec::new();
        match FileMuxer::open(self.format, &self.headers, start_ms, &mut bytes) {
            Ok(muxer) => {
                out.push(Action::Open { start_ms });
                let size = bytes.iter().map(|b| b.len() as u64).sum();
                out.extend(bytes.into_iter().map(Action::Write));
                self.open = Some(Open {
                    muxer,
                    start_ms,
                    last_ms: start_ms,
                    bytes: size,
                });
            }
            Err(e) => {
                self.refused = true;
                out.push(Action::Refused(e.to_string()));
            }
        }
    }

    fn write(&mut self, tag: &Tag, out: &mut Vec<Action>) {
        let Some(open) = self.open.as_mut() else {
            return;
        };
        let mut bytes = Vec::new();
        open.muxer.push(tag, &mut bytes);
        if tag.kind != TagKind::Script {
            open.last_ms = open.last_ms.max(tag.timestamp);
        }
        for b in bytes {
            open.bytes += b.len() as u64;
            out.push(Action::Write(b));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A real AVC configuration record (x264, Constrained Baseline, 320x240) as a sequence
    /// header tag.
    fn avc_header() -> Tag {
        const AVCC: &[u8] = &[
            0x01, 0x42, 0xc0, 0x0d, 0xff, 0xe1, 0x00, 0x19, 0x67, 0x42, 0xc0, 0x0d, 0xd9, 0x01,
            0x41, 0xfb, 0x01, 0x10, 0x00, 0x00, 0x03, 0x00, 0x10, 0x00, 0x00, 0x03, 0x03, 0x20,
            0xf1, 0x42, 0xa4, 0x80, 0x01, 0x00, 0x04, 0x68, 0xcb, 0x83, 0xcb, 0x20,
        ];
        let mut body = vec![0x17, 0, 0, 0, 0];
        body.extend_from_slice(AVCC);
        Tag::classify(TagKind::Video, 0, Bytes::from(body))
    }

    fn aac_header() -> Tag {
        Tag::classify(
            TagKind::Audio,
            0,
            Bytes::from_static(&[0xaf, 0, 0x12, 0x10]),
        )
    }

    fn frame(ts: u64, key: bool) -> Tag {
        let first = if key { 0x17 } else { 0x27 };
        Tag::classify(
            TagKind::Video,
            ts,
            Bytes::from(vec![first, 1, 0, 0, 0, 0, 0, 0, 2, 0x65, 0x88]),
        )
    }

    fn audio(ts: u64) -> Tag {
        Tag::classify(
            TagKind::Audio,
            ts,
            Bytes::from_static(&[0xaf, 1, 0x21, 0x10]),
        )
    }

    fn opens(actions: &[Action]) -> Vec<u64> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Open { start_ms } => Some(*start_ms),
                _ => None,
            })
            .collect()
    }

    fn closes(actions: &[Action]) -> Vec<u64> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Close { duration_ms, .. } => Some(*duration_ms),
                _ => None,
            })
            .collect()
    }

    /// Feeds 10 s of 25 fps video with a keyframe every second, and audio, in every format.
    fn run(format: Format, segment_ms: u64) -> Vec<Action> {
        let mut s = Segmenter::new(format, segment_ms, 0);
        let mut out = Vec::new();
        s.push(&avc_header(), &mut out);
        s.push(&aac_header(), &mut out);
        for i in 0..250 {
            s.push(&frame(i * 40, i % 25 == 0), &mut out);
            s.push(&audio(i * 40 + 3), &mut out);
        }
        s.close(&mut out);
        out
    }

    #[test]
    fn files_open_on_keyframes_and_rotate_by_duration() {
        for format in [Format::Mp4, Format::Flv, Format::Ts] {
            let out = run(format, 3000);
            assert!(
                !out.iter().any(|a| matches!(a, Action::Refused(_))),
                "{format:?}: {out:?}"
            );
            assert_eq!(opens(&out), [0, 3000, 6000, 9000], "{format:?}");
            // Up to the last audio frame, 3 ms after the last video frame.
            assert_eq!(closes(&out), [2963, 2963, 2963, 963], "{format:?}");
        }
    }

    #[test]
    fn rotation_by_size_waits_for_a_keyframe() {
        let mut s = Segmenter::new(Format::Flv, 3_600_000, 1);
        let mut out = Vec::new();
        s.push(&avc_header(), &mut out);
        for i in 0..100 {
            s.push(&frame(i * 40, i % 25 == 0), &mut out);
        }
        assert_eq!(opens(&out), [0, 1000, 2000, 3000]);
    }

    #[test]
    fn nothing_is_written_before_the_first_keyframe_and_a_broken_feed_cuts() {
        let mut s = Segmenter::new(Format::Mp4, 60_000, 0);
        let mut out = Vec::new();
        s.push(&avc_header(), &mut out);
        s.push(&frame(0, false), &mut out);
        s.push(&audio(10), &mut out);
        assert!(out.is_empty(), "{out:?}");
        s.push(&frame(40, true), &mut out);
        s.feed_broke(false, &mut out);
        s.push(&frame(80, false), &mut out);
        s.push(&frame(120, true), &mut out);
        assert_eq!(opens(&out), [40, 120]);
        assert_eq!(closes(&out).len(), 1);
    }

    #[test]
    fn a_new_configuration_starts_a_new_mp4_file_but_not_a_new_flv_file() {
        for (format, files) in [(Format::Mp4, 2), (Format::Flv, 1)] {
            let mut s = Segmenter::new(format, 60_000, 0);
            let mut out = Vec::new();
            s.push(&avc_header(), &mut out);
            s.push(&frame(0, true), &mut out);
            s.push(&avc_header(), &mut out);
            s.push(&frame(40, false), &mut out);
            s.push(&frame(80, true), &mut out);
            assert_eq!(opens(&out).len(), files, "{format:?}");
        }
    }

    #[test]
    fn an_unsupported_codec_is_refused_once() {
        let mut s = Segmenter::new(Format::Mp4, 60_000, 0);
        let mut out = Vec::new();
        // MP3 audio only.
        let mp3 = Tag::classify(
            TagKind::Audio,
            0,
            Bytes::from_static(&[0x2f, 0xff, 0xfb, 0x90, 0]),
        );
        s.push(&mp3, &mut out);
        s.push(&mp3, &mut out);
        assert_eq!(out.len(), 1, "{out:?}");
        assert!(matches!(out[0], Action::Refused(_)));
    }
}

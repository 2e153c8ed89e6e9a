//! What a client actually decoded, and the assertions every interop cell makes on it: the codecs
//! and picture size a user would see, and at least N seconds of frames decoded without errors.

use serde_json::Value;

/// Video or audio.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Video,
    Audio,
}

/// One decoded elementary stream.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamReport {
    pub kind: Kind,
    /// The codec name as ffprobe or GStreamer reports it, normalised: `h264`, `hevc`, `aac`, `mp3`.
    pub codec: String,
    pub width: u32,
    pub height: u32,
    /// Frames decoded in the longest run of continuous presentation times.
    pub frames: usize,
    /// Frames decoded outside that run (a timestamp jump; see [`MAX_PTS_GAP_SECS`]).
    pub outliers: usize,
    /// Keyframes among them (video only).
    pub keyframes: usize,
    /// Presentation time of the first and last decoded frame, in seconds.
    pub first_pts: f64,
    pub last_pts: f64,
}

/// Two frames of one stream whose presentation times are further apart than this are on either
/// side of a timestamp discontinuity (frames are 23 to 40 ms apart in every fixture).
pub const MAX_PTS_GAP_SECS: f64 = 1.0;

impl StreamReport {
    /// Builds a report from the presentation times of every decoded frame: `frames`, `first_pts`
    /// and `last_pts` describe the longest continuous run, and the rest are `outliers`.
    pub fn from_times(
        kind: Kind,
        codec: String,
        size: (u32, u32),
        mut pts: Vec<f64>,
    ) -> StreamReport {
        pts.retain(|t| t.is_finite());
        pts.sort_by(f64::total_cmp);
        let (start, len) = longest_run(&pts);
        let run = &pts[start..start + len];
        StreamReport {
            kind,
            codec,
            width: size.0,
            height: size.1,
            frames: len,
            outliers: pts.len() - len,
            keyframes: 0,
            first_pts: run.first().copied().unwrap_or(f64::INFINITY),
            last_pts: run.last().copied().unwrap_or(f64::NEG_INFINITY),
        }
    }

    /// Seconds of media decoded: first to last presentation time.
    pub fn span(&self) -> f64 {
        self.last_pts - self.first_pts
    }
}

/// Everything one client decoded, plus its error output.
#[derive(Debug, Clone, Default)]
pub struct MediaReport {
    pub streams: Vec<StreamReport>,
    /// Error lines the client printed while decoding (empty when all went well).
    pub errors: Vec<String>,
}

impl MediaReport {
    /// The first stream of `kind`, if any.
    pub fn stream(&self, kind: Kind) -> Option<&StreamReport> {
        self.streams.iter().find(|s| s.kind == kind)
    }

    /// Builds a report from `ffprobe -show_streams -show_frames -of json` output (see
    /// [`crate::FRAME_ENTRIES`]) and ffprobe's stderr at `-v error`.
    pub fn from_ffprobe(json: &Value, stderr: &str) -> MediaReport {
        let empty = Vec::new();
        let streams = json["streams"].as_array().unwrap_or(&empty);
        let frames = json["frames"].as_array().unwrap_or(&empty);
        let streams = streams
            .iter()
            .filter_map(|s| stream_from_ffprobe(s, frames))
            .collect();
        MediaReport {
            streams,
            errors: error_lines(stderr),
        }
    }
}

fn stream_from_ffprobe(s: &Value, frames: &[Value]) -> Option<StreamReport> {
    let kind = match s["codec_type"].as_str()? {
        "video" => Kind::Video,
        "audio" => Kind::Audio,
        _ => return None,
    };
    let index = s["index"].as_u64()?;
    let mine: Vec<&Value> = frames
        .iter()
        .filter(|f| f["stream_index"].as_u64() == Some(index))
        .collect();
    let pts: Vec<f64> = mine.iter().filter_map(|f| frame_time(f)).collect();
    let dim = |k: &str| {
        s[k].as_u64()
            .and_then(|v| u32::try_from(v).ok())
            .unwrap_or(0)
    };
    let codec = s["codec_name"].as_str().unwrap_or("").to_owned();
    let mut report = StreamReport::from_times(kind, codec, (dim("width"), dim("height")), pts);
    report.keyframes = mine
        .iter()
        .filter(|f| f["key_frame"].as_u64() == Some(1))
        .count();
    Some(report)
}

/// The start and length of the longest run in sorted `pts` without a gap over
/// [`MAX_PTS_GAP_SECS`].
fn longest_run(pts: &[f64]) -> (usize, usize) {
    let (mut best, mut start) = ((0, 0), 0);
    for i in 0..pts.len() {
        if i > 0 && pts[i] - pts[i - 1] > MAX_PTS_GAP_SECS {
            start = i;
        }
        if i + 1 - start > best.1 {
            best = (start, i + 1 - start);
        }
    }
    best
}

/// A frame's presentation time: `pts_time`, or ffprobe's best-effort guess when pts is unset.
fn frame_time(f: &Value) -> Option<f64> {
    ["pts_time", "best_effort_timestamp_time"]
        .iter()
        .find_map(|k| f[*k].as_str().and_then(|t| t.parse().ok()))
}

/// The lines of a client's stderr that report real problems.
fn error_lines(stderr: &str) -> Vec<String> {
    stderr
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

/// What a cell expects a client to decode.
#[derive(Debug, Clone, Copy)]
pub struct Expect {
    /// Video codec, width, height, frame rate; `None` means "no video stream at all".
    pub video: Option<(&'static str, u32, u32, f64)>,
    /// Audio codec and frames per second (AAC at 44.1 kHz: 44100/1024); `None` means no audio.
    pub audio: Option<(&'static str, f64)>,
    /// Seconds of media that must decode.
    pub min_secs: f64,
    /// Frames per stream allowed outside the continuous run (0 unless a client is known to
    /// mistime a few frames; each use cites the client).
    pub max_outliers: usize,
}

/// AAC-LC at 44.1 kHz: 1024 samples per frame.
pub const AAC_44K_FPS: f64 = 44100.0 / 1024.0;
/// MP3 (MPEG-1 Layer III) at 44.1 kHz: 1152 samples per frame.
pub const MP3_44K_FPS: f64 = 44100.0 / 1152.0;

impl Expect {
    /// `av.flv`: H.264 640x360 at 25 fps plus AAC, for at least `secs` seconds.
    pub fn av(secs: f64) -> Expect {
        Expect {
            video: Some(("h264", 640, 360, 25.0)),
            audio: Some(("aac", AAC_44K_FPS)),
            min_secs: secs,
            max_outliers: 0,
        }
    }

    /// `video-only.flv`.
    pub fn video_only(secs: f64) -> Expect {
        Expect {
            audio: None,
            ..Expect::av(secs)
        }
    }

    /// `audio-only.flv`.
    pub fn audio_only(secs: f64) -> Expect {
        Expect {
            video: None,
            ..Expect::av(secs)
        }
    }

    /// `mp3.flv`: H.264 plus MP3.
    pub fn mp3(secs: f64) -> Expect {
        Expect {
            audio: Some(("mp3", MP3_44K_FPS)),
            ..Expect::av(secs)
        }
    }

    /// The expectations for one of the committed fixtures, by file name.
    pub fn for_fixture(name: &str, secs: f64) -> Expect {
        match name {
            "video-only.flv" => Expect::video_only(secs),
            "audio-only.flv" => Expect::audio_only(secs),
            "mp3.flv" => Expect::mp3(secs),
            _ => Expect::av(secs),
        }
    }
}

/// Frames may be missing at the very edges of a live capture (the client starts and stops
/// mid-stream), so a cell asks for this share of the nominal frame count, and a span this much
/// shorter than the nominal duration.
const FRAME_SHARE: f64 = 0.95;
const SPAN_SLACK_SECS: f64 = 0.25;

/// Checks `report` against `expect`; returns every mismatch, worded for a failure message.
pub fn check_media(report: &MediaReport, expect: &Expect) -> Vec<String> {
    let mut problems = Vec::new();
    if !report.errors.is_empty() {
        problems.push(format!("decoder errors: {:?}", report.errors));
    }
    match (expect.video, report.stream(Kind::Video)) {
        (None, Some(v)) => problems.push(format!("unexpected video stream {v:?}")),
        (Some(_), None) => problems.push("no video stream".to_owned()),
        (Some((codec, w, h, fps)), Some(v)) => {
            if v.codec != codec || v.width != w || v.height != h {
                problems.push(format!(
                    "video is {} {}x{}, expected {codec} {w}x{h}",
                    v.codec, v.width, v.height
                ));
            }
            check_amount(&mut problems, v, fps, expect);
        }
        (None, None) => {}
    }
    match (expect.audio, report.stream(Kind::Audio)) {
        (None, Some(a)) => problems.push(format!("unexpected audio stream {a:?}")),
        (Some(_), None) => problems.push("no audio stream".to_owned()),
        (Some((codec, fps)), Some(a)) => {
            if a.codec != codec {
                problems.push(format!("audio is {}, expected {codec}", a.codec));
            }
            check_amount(&mut problems, a, fps, expect);
        }
        (None, None) => {}
    }
    problems
}

fn check_amount(problems: &mut Vec<String>, s: &StreamReport, fps: f64, expect: &Expect) {
    let secs = expect.min_secs;
    if s.outliers > expect.max_outliers {
        problems.push(format!(
            "{:?}: {} frames outside the continuous run (timestamp jump over {MAX_PTS_GAP_SECS} s)",
            s.kind, s.outliers
        ));
    }
    let want_frames = (fps * secs * FRAME_SHARE).floor() as usize;
    if s.frames < want_frames {
        problems.push(format!(
            "{:?}: decoded {} frames, expected at least {want_frames} ({secs} s at {fps:.2}/s)",
            s.kind, s.frames
        ));
    }
    // No frames gives an infinite negative span, which fails this check as it should.
    if s.span().is_nan() || s.span() < secs - SPAN_SLACK_SECS {
        problems.push(format!(
            "{:?}: decoded {:.2} s of media (pts {:.3}..{:.3}), expected at least {secs} s",
            s.kind,
            s.span(),
            s.first_pts,
            s.last_pts
        ));
    }
}

/// Panics with every mismatch and the whole report if `report` does not meet `expect`.
pub fn assert_media(what: &str, report: &MediaReport, expect: &Expect) {
    let problems = check_media(report, expect);
    assert!(
        problems.is_empty(),
        "{what}: {}\nreport: {report:#?}",
        problems.join("; ")
    );
    println!("{what}: ok {:?}", summary(report));
}

fn summary(report: &MediaReport) -> Vec<String> {
    report
        .streams
        .iter()
        .map(|s| {
            format!(
                "{} {}x{} {} frames {:.2} s",
                s.codec,
                s.width,
                s.height,
                s.frames,
                s.span()
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn stream(kind: Kind, codec: &str, frames: usize, span: f64) -> StreamReport {
        let (width, height) = if kind == Kind::Video {
            (640, 360)
        } else {
            (0, 0)
        };
        StreamReport {
            kind,
            codec: codec.into(),
            width,
            height,
            frames,
            outliers: 0,
            keyframes: 0,
            first_pts: 1.0,
            last_pts: 1.0 + span,
        }
    }

    fn report(streams: Vec<StreamReport>, errors: &[&str]) -> MediaReport {
        MediaReport {
            streams,
            errors: errors.iter().map(|e| e.to_string()).collect(),
        }
    }

    fn check(r: &MediaReport, e: Expect, want_problem: Option<&str>) {
        let problems = check_media(r, &e);
        match want_problem {
            None => assert!(problems.is_empty(), "{problems:?}"),
            Some(p) => assert!(
                problems.iter().any(|x| x.contains(p)),
                "expected a problem containing {p:?}, got {problems:?}"
            ),
        }
    }

    #[test]
    fn expectations_table() {
        let v = || stream(Kind::Video, "h264", 250, 9.96);
        let a = || stream(Kind::Audio, "aac", 431, 9.98);
        let cases: Vec<(MediaReport, Expect, Option<&str>)> = vec![
            (report(vec![v(), a()], &[]), Expect::av(10.0), None),
            (report(vec![v()], &[]), Expect::video_only(10.0), None),
            (report(vec![a()], &[]), Expect::audio_only(10.0), None),
            (
                report(vec![v()], &[]),
                Expect::av(10.0),
                Some("no audio stream"),
            ),
            (
                report(vec![v(), a()], &[]),
                Expect::video_only(10.0),
                Some("unexpected audio"),
            ),
            (
                report(vec![a()], &[]),
                Expect::av(10.0),
                Some("no video stream"),
            ),
            (
                report(vec![v(), a()], &["[h264] error"]),
                Expect::av(10.0),
                Some("decoder errors"),
            ),
            (
                report(vec![stream(Kind::Video, "h264", 100, 3.96), a()], &[]),
                Expect::av(10.0),
                Some("decoded 100 frames"),
            ),
            (
                report(vec![stream(Kind::Video, "h264", 250, 2.0), a()], &[]),
                Expect::av(10.0),
                Some("2.00 s"),
            ),
            (
                report(vec![stream(Kind::Video, "hevc", 250, 9.96), a()], &[]),
                Expect::av(10.0),
                Some("expected h264 640x360"),
            ),
            (
                report(vec![v(), stream(Kind::Audio, "aac", 384, 9.98)], &[]),
                Expect::mp3(10.0),
                Some("audio is aac, expected mp3"),
            ),
            (
                report(vec![v(), stream(Kind::Audio, "mp3", 384, 9.98)], &[]),
                Expect::mp3(10.0),
                None,
            ),
        ];
        for (r, e, want) in cases {
            check(&r, e, want);
        }
    }

    #[test]
    fn a_timestamp_jump_leaves_outliers() {
        let mut pts: Vec<f64> = (0..250).map(|i| 2000.0 + i as f64 * 0.04).collect();
        pts.extend([0.0, 0.08]);
        let s = StreamReport::from_times(Kind::Video, "h264".into(), (640, 360), pts);
        assert_eq!((s.frames, s.outliers), (250, 2));
        assert!((s.span() - 9.96).abs() < 1e-9);
        let r = report(vec![s], &[]);
        check(&r, Expect::video_only(9.9), Some("2 frames outside"));
        check(
            &r,
            Expect {
                max_outliers: 2,
                ..Expect::video_only(9.9)
            },
            None,
        );
        let empty = StreamReport::from_times(Kind::Audio, "aac".into(), (0, 0), vec![]);
        assert_eq!((empty.frames, empty.outliers), (0, 0));
        check(
            &report(vec![empty], &[]),
            Expect::audio_only(1.0),
            Some("decoded 0 frames"),
        );
    }

    #[test]
    fn ffprobe_json_is_read_per_stream() {
        let j = json!({
            "streams": [
                {"index": 0, "codec_type": "video", "codec_name": "h264", "width": 640, "height": 360},
                {"index": 1, "codec_type": "audio", "codec_name": "aac"},
                {"index": 2, "codec_type": "data", "codec_name": "timed_id3"}
            ],
            "frames": [
                {"stream_index": 0, "key_frame": 1, "pts_time": "0.080000"},
                {"stream_index": 1, "key_frame": 1, "pts_time": "0.000000"},
                {"stream_index": 0, "key_frame": 0, "best_effort_timestamp_time": "0.120000"},
                {"stream_index": 1, "key_frame": 1, "pts_time": "0.023000"}
            ]
        });
        let r = MediaReport::from_ffprobe(&j, "\n");
        assert!(r.errors.is_empty());
        assert_eq!(r.streams.len(), 2);
        let v = r.stream(Kind::Video).unwrap();
        assert_eq!(
            (v.codec.as_str(), v.width, v.height, v.frames, v.keyframes),
            ("h264", 640, 360, 2, 1)
        );
        assert!((v.span() - 0.04).abs() < 1e-9);
        assert_eq!(r.stream(Kind::Audio).unwrap().frames, 2);
    }
}

//! GStreamer pipelines through `gst-launch-1.0`: publishers (rtmp2sink, rtmpsink) and players
//! that decode inside GStreamer and report every decoded buffer through a named `fakesink`.

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::process::{Child, ChildStderr, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use crate::media::{Expect, Kind, MediaReport, StreamReport};
use crate::process::{drain, signal_group, stop, ChildGuard, TempDir};

/// Names of the sinks and parsers in [`Gst::decode_pipeline`] that [`parse_decode_log`] reads.
const VIDEO_SINK: &str = "vsink";
const AUDIO_SINK: &str = "asink";
const VIDEO_PARSE: &str = "vparse";
const AUDIO_PARSE: &str = "aparse";

/// A running `gst-launch-1.0` pipeline, stopped by PID on drop.
pub struct Gst {
    guard: ChildGuard,
    _dir: TempDir,
}

impl Gst {
    /// Starts `gst-launch-1.0 -e <pipeline>`.
    pub fn spawn(pipeline: &str) -> Gst {
        let dir = TempDir::new("gst");
        let mut cmd = Command::new("gst-launch-1.0");
        cmd.arg("-e").args(words(pipeline));
        let guard = ChildGuard::spawn("gst-launch-1.0", cmd, dir.join("gst.log"));
        Gst { guard, _dir: dir }
    }

    /// A live H.264 (x264enc, Main, GOP 50) + AAC (avenc_aac) test signal muxed to FLV and sent to
    /// `sink` (for example `rtmp2sink location=...`). `video`/`audio` select the tracks.
    pub fn encoder_to(sink: &str, video: bool, audio: bool) -> String {
        let mut p = String::from("flvmux name=m streamable=true ! ");
        p.push_str(sink);
        if video {
            p.push_str(
                " videotestsrc is-live=true pattern=ball ! video/x-raw,width=640,height=360,framerate=25/1 \
                 ! x264enc tune=zerolatency speed-preset=veryfast bitrate=400 key-int-max=50 \
                 ! video/x-h264,profile=main ! h264parse ! queue ! m.",
            );
        }
        if audio {
            p.push_str(
                " audiotestsrc is-live=true wave=sine freq=440 ! audio/x-raw,rate=44100,channels=2 \
                 ! audioconvert ! avenc_aac ! aacparse ! queue ! m.",
            );
        }
        p
    }

    /// A player pipeline: `source` is followed by `demux` (for example `flvdemux`, or
    /// `hlsdemux ! tsdemux`), and every expected track is parsed, decoded and rendered into a
    /// named `fakesink`. Tracks are linked by caps (`d. ! h264parse`), so the demuxer's pad names
    /// do not matter.
    pub fn decode_pipeline(source: &str, demux: &str, expect: &Expect) -> String {
        Gst::branches(&format!("{source} ! {demux} name=d"), "", "", expect)
    }

    /// A player pipeline for RTSP: `rtspsrc` is its own demuxer, and its RTP pads are matched
    /// by depayloader caps (H.264 per RFC 6184, AAC as mpeg4-generic per RFC 3640).
    ///
    /// For an `rtsps://` URL the certificate is not validated (`tls-validation-flags=0`): the TLS
    /// tests' CA exists only for the run, and rtspsrc can be given another CA only as a
    /// `GTlsDatabase` object, which gst-launch cannot build.
    pub fn rtsp_pipeline(url: &str, protocols: &str, expect: &Expect) -> String {
        let tls = match url.starts_with("rtsps://") {
            true => " tls-validation-flags=0",
            false => "",
        };
        let head = format!("rtspsrc location={url} protocols={protocols} latency=500{tls} name=d");
        Gst::branches(&head, "rtph264depay ! ", "rtpmp4gdepay ! ", expect)
    }

    /// `head` ends with an element named `d`; each expected track is `d. ! <pre><parse> ! queue !
    /// <decoder> ! convert ! fakesink`.
    fn branches(head: &str, video_pre: &str, audio_pre: &str, expect: &Expect) -> String {
        let mut p = head.to_owned();
        if let Some((codec, _, _, _)) = expect.video {
            let (parse, dec) = match codec {
                "hevc" => ("h265parse", "avdec_h265"),
                _ => ("h264parse", "avdec_h264"),
            };
            p.push_str(&format!(
                " d. ! {video_pre}{parse} name={VIDEO_PARSE} ! queue ! {dec} ! videoconvert \
                 ! fakesink name={VIDEO_SINK} sync=false"
            ));
        }
        if let Some((codec, _)) = expect.audio {
            let (parse, dec) = match codec {
                "mp3" => ("mpegaudioparse", "avdec_mp3"),
                _ => ("aacparse", "avdec_aac"),
            };
            p.push_str(&format!(
                " d. ! {audio_pre}{parse} name={AUDIO_PARSE} ! queue ! {dec} ! audioconvert \
                 ! fakesink name={AUDIO_SINK} sync=false"
            ));
        }
        p
    }

    /// Runs a pipeline from [`Gst::decode_pipeline`] until every sink has rendered enough buffers
    /// for `expect` (then stops it with SIGINT, on which `gst-launch-1.0 -e` sends EOS and exits
    /// cleanly), or until `timeout`, and reports what was decoded.
    ///
    /// The pipeline is stopped from outside rather than by `identity eos-after` in each branch:
    /// an EOS returned upstream by one branch makes some demuxers (hlsdemux with tsdemux) stop
    /// feeding the other branches.
    pub fn decode(pipeline: &str, expect: &Expect, timeout: Duration) -> MediaReport {
        let quotas = quotas(expect);
        // `stdbuf -oL`: gst-launch's `-v` caps lines go to a pipe, block-buffered; if it has to be
        // killed after the interrupt grace (some demuxers never finish EOS), unflushed caps
        // lines would be lost and the decoded size would read 0x0.
        let mut cmd = Command::new("stdbuf");
        cmd.args(["-oL", "gst-launch-1.0"]);
        // Buffers are counted from basesink's DEBUG log, which is written synchronously, one line
        // per buffer; fakesink's `last-message` notifications printed by `-v` are coalesced
        // under load and undercount. `-v` is still used for the negotiated caps.
        cmd.env("GST_DEBUG", "basesink:5")
            .env("GST_DEBUG_NO_COLOR", "1")
            .args(["-e", "-v"])
            .args(words(pipeline))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start gst-launch-1.0: {e}"));
        let stdout = drain(child.stdout.take());
        let (done_tx, done_rx) = mpsc::channel();
        let stderr = watch_quotas(child.stderr.take(), quotas, expect.min_secs, done_tx);
        let outcome = wait_for_quotas(&mut child, &done_rx, timeout);
        let stdout = String::from_utf8_lossy(&stdout.join().unwrap_or_default()).into_owned();
        let stderr = stderr.join().unwrap_or_default();
        let mut report = parse_decode_log(&stdout, &stderr);
        // Under load gst-launch has been seen to stop without printing a parser's caps line (the
        // `-v` caps come from asynchronous notifications). A branch whose sink rendered buffers
        // decoded them through the parser and decoder built for the expected codec, which only
        // link to that codec's caps: that codec then stands in for the missing line.
        for s in report
            .streams
            .iter_mut()
            .filter(|s| s.codec.is_empty() && s.frames > 0)
        {
            let built = match s.kind {
                Kind::Video => expect.video.map(|(codec, ..)| codec),
                Kind::Audio => expect.audio.map(|(codec, _)| codec),
            };
            if let Some(codec) = built {
                s.codec = codec.to_owned();
            }
        }
        match outcome {
            Outcome::Done => {}
            Outcome::Exited(status) => report.errors.push(format!(
                "gst-launch-1.0 ended ({status}) before decoding enough"
            )),
            Outcome::TimedOut => report
                .errors
                .push(format!("not enough decoded within {timeout:?}")),
        }
        report.errors.extend(
            stdout
                .lines()
                .chain(stderr.lines())
                .filter(|l| l.starts_with("ERROR") || l.contains("CRITICAL"))
                .map(str::to_owned),
        );
        if !report.errors.is_empty() {
            report.errors.push(format!(
                "pipeline: {pipeline}\noutput tail:\n{}\nstderr tail:\n{}",
                tail(&stdout, |_| true),
                tail(&stderr, |l| !l.contains(" basesink "))
            ));
        }
        report
    }

    /// Panics with gst-launch's output if the pipeline has exited.
    pub fn assert_running(&mut self) {
        self.guard.assert_running();
    }

    pub fn log(&self) -> String {
        self.guard.log()
    }
}

/// True if GStreamer has the parsers and decoders a [`Gst::decode_pipeline`] for `expect` uses,
/// plus `extra` elements (the source and demuxer); otherwise the skip rule.
pub fn require_gst_player(expect: &Expect, extra: &[&str]) -> bool {
    let mut elements = vec![
        "videoconvert",
        "audioconvert",
        "identity",
        "fakesink",
        "queue",
    ];
    elements.extend_from_slice(extra);
    if expect.video.is_some() {
        elements.extend(["h264parse", "avdec_h264"]);
    }
    match expect.audio {
        Some(("mp3", _)) => elements.extend(["mpegaudioparse", "avdec_mp3"]),
        Some(_) => elements.extend(["aacparse", "avdec_aac"]),
        None => {}
    }
    elements.iter().all(|e| crate::require_gst_element(e))
}

/// True if GStreamer has what [`Gst::encoder_to`] uses plus `sink`; otherwise the skip rule.
pub fn require_gst_encoder(sink: &str) -> bool {
    [
        "videotestsrc",
        "x264enc",
        "audiotestsrc",
        "avenc_aac",
        "flvmux",
        sink,
    ]
    .iter()
    .all(|e| crate::require_gst_element(e))
}

/// How long a GStreamer player gets to reach EOS after [`crate::CELL_SECS`] of decoded media.
pub fn gst_timeout() -> Duration {
    Duration::from_secs_f64(crate::CELL_SECS * 2.0 + 30.0)
}

/// Splits a pipeline description into gst-launch arguments. gst-launch quotes every argument that
/// contains a space (gst_parse_launchv), so a whole pipeline passed as one argument is a syntax
/// error; property values in our pipelines never contain spaces.
fn words(pipeline: &str) -> Vec<&str> {
    pipeline.split_whitespace().collect()
}

/// How a [`Gst::decode`] run ended.
enum Outcome {
    /// Every sink reached its quota and the pipeline was stopped.
    Done,
    /// gst-launch exited by itself first.
    Exited(ExitStatus),
    TimedOut,
}

/// How long gst-launch gets to finish after SIGINT before it is killed.
const INTERRUPT_GRACE: Duration = Duration::from_secs(10);

/// The `(sink name, buffers)` each sink must render for `expect`.
fn quotas(expect: &Expect) -> Vec<(&'static str, usize)> {
    let n = |fps: f64| (fps * expect.min_secs).ceil() as usize + 1;
    let mut q = Vec::new();
    if let Some((_, _, _, fps)) = expect.video {
        q.push((VIDEO_SINK, n(fps)));
    }
    if let Some((_, fps)) = expect.audio {
        q.push((AUDIO_SINK, n(fps)));
    }
    q
}

/// Reads gst-launch's stderr to the end, counting rendered buffers and tracking the PTS span per
/// sink, and signals `done` once every sink has its quota of buffers and `min_secs` of span.
/// Both are needed: a jitterbuffer that timestamps by arrival (rtspsrc) compresses the initial
/// GOP burst, so a frame count alone can be reached before the span is. Returns the whole text.
fn watch_quotas(
    pipe: Option<ChildStderr>,
    quotas: Vec<(&'static str, usize)>,
    min_secs: f64,
    done: mpsc::Sender<()>,
) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut text = String::new();
        let Some(pipe) = pipe else { return text };
        let markers: Vec<String> = quotas
            .iter()
            .map(|(sink, _)| format!("chain_unlocked:<{sink}> got times start: "))
            .collect();
        let mut seen: Vec<Seen> = vec![Seen::default(); quotas.len()];
        let mut signalled = false;
        for line in BufReader::new(pipe).lines().map_while(Result::ok) {
            for (i, marker) in markers.iter().enumerate() {
                if let Some(pts) = clock_after(&line, marker) {
                    seen[i].add(pts);
                }
            }
            let met = seen
                .iter()
                .zip(&quotas)
                .all(|(s, (_, q))| s.count >= *q && s.span() >= min_secs);
            if !signalled && met {
                signalled = true;
                let _ = done.send(());
            }
            text.push_str(&line);
            text.push('\n');
        }
        text
    })
}

/// Buffers one sink has rendered so far.
#[derive(Clone, Copy)]
struct Seen {
    count: usize,
    first: f64,
    last: f64,
}

impl Default for Seen {
    fn default() -> Self {
        Seen {
            count: 0,
            first: f64::INFINITY,
            last: f64::NEG_INFINITY,
        }
    }
}

impl Seen {
    fn add(&mut self, pts: f64) {
        self.count += 1;
        self.first = self.first.min(pts);
        self.last = self.last.max(pts);
    }

    fn span(&self) -> f64 {
        self.last - self.first
    }
}

/// Waits until the quotas are met (then interrupts gst-launch), it exits, or `timeout` passes.
fn wait_for_quotas(child: &mut Child, done: &mpsc::Receiver<()>, timeout: Duration) -> Outcome {
    let deadline = Instant::now() + timeout;
    loop {
        if done.recv_timeout(Duration::from_millis(50)).is_ok() {
            signal_group(child, libc::SIGINT);
            let grace = Instant::now() + INTERRUPT_GRACE;
            while Instant::now() < grace {
                if let Ok(Some(_)) = child.try_wait() {
                    return Outcome::Done;
                }
                thread::sleep(Duration::from_millis(50));
            }
            stop(child);
            return Outcome::Done;
        }
        if let Ok(Some(status)) = child.try_wait() {
            // The quota may have been met by the last lines before exit.
            return match done.recv_timeout(Duration::from_secs(2)) {
                Ok(()) => Outcome::Done,
                Err(_) => Outcome::Exited(status),
            };
        }
        if Instant::now() >= deadline {
            stop(child);
            return Outcome::TimedOut;
        }
    }
}

/// The last 15 lines of `text` that pass `keep`, for failure messages.
fn tail(text: &str, keep: impl Fn(&str) -> bool) -> String {
    let lines: Vec<&str> = text.lines().filter(|l| keep(l)).collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}

/// Builds a report from a [`Gst::decode_pipeline`] run: `caps_log` is gst-launch's `-v` output
/// (codec from the parser's caps, decoded size from the sink's caps) and `debug_log` its stderr
/// with `GST_DEBUG=basesink:5` (one `got times start:` line per buffer rendered by each sink).
pub fn parse_decode_log(caps_log: &str, debug_log: &str) -> MediaReport {
    let log = caps_log;
    let mut streams = Vec::new();
    for (kind, sink, parse) in [
        (Kind::Video, VIDEO_SINK, VIDEO_PARSE),
        (Kind::Audio, AUDIO_SINK, AUDIO_PARSE),
    ] {
        let chain = format!("chain_unlocked:<{sink}> got times start: ");
        let pts: Vec<f64> = debug_log
            .lines()
            .filter_map(|l| clock_after(l, &chain))
            .collect();
        let sink_caps = caps_of(log, &format!(":{sink}.GstPad:sink: caps = "));
        let parse_caps = caps_of(log, &format!(":{parse}.GstPad:src: caps = "));
        if pts.is_empty() && parse_caps.is_none() {
            continue;
        }
        // The decoded size comes from the sink's caps. Under load gst-launch has been seen to
        // exit without that line in its `-v` output; the parser's caps carry the same size
        // (from the SPS), so they stand in rather than reporting 0x0.
        let sink_caps = sink_caps.or(parse_caps).unwrap_or_default();
        let codec = codec_from_caps(parse_caps.unwrap_or_default());
        let size = (caps_int(sink_caps, "width"), caps_int(sink_caps, "height"));
        streams.push(StreamReport::from_times(kind, codec, size, pts));
    }
    MediaReport {
        streams,
        errors: Vec::new(),
    }
}

/// The last caps printed for a pad (`-v` prints them again on renegotiation). Lines that are not
/// a negotiated format (teardown resets caps, which can be printed as `NULL`) are skipped: for a
/// raw video sink only caps that carry a width count.
fn caps_of<'a>(log: &'a str, marker: &str) -> Option<&'a str> {
    let raw_video = marker.contains(VIDEO_SINK);
    log.lines()
        .rev()
        .filter_map(|l| l.split_once(marker).map(|(_, caps)| caps.trim()))
        .find(|caps| *caps != "NULL" && (!raw_video || caps.contains("width=(int)")))
}

fn caps_int(caps: &str, field: &str) -> u32 {
    let key = format!("{field}=(int)");
    caps.split_once(&key)
        .and_then(|(_, rest)| {
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            digits.parse().ok()
        })
        .unwrap_or(0)
}

/// Maps parser output caps to ffprobe's codec names.
fn codec_from_caps(caps: &str) -> String {
    let media = caps.split(',').next().unwrap_or("").trim();
    let name = match media {
        "video/x-h264" => "h264",
        "video/x-h265" => "hevc",
        "audio/mpeg" if caps.contains("mpegversion=(int)1") => "mp3",
        "audio/mpeg" => "aac",
        other => other,
    };
    name.to_owned()
}

/// Parses a GStreamer clock time `H:MM:SS.nnnnnnnnn` following `key` in `line`, in seconds.
fn clock_after(line: &str, key: &str) -> Option<f64> {
    let (_, rest) = line.split_once(key)?;
    let t = rest.split([',', ' ']).next()?;
    let mut parts = t.split(':');
    let h: f64 = parts.next()?.parse().ok()?;
    let m: f64 = parts.next()?.parse().ok()?;
    let s: f64 = parts.next()?.parse().ok()?;
    Some(h * 3600.0 + m * 60.0 + s)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &str = "\
/GstPipeline:pipeline0/GstH264Parse:vparse.GstPad:src: caps = video/x-h264, stream-format=(string)avc, width=(int)640, height=(int)360
/GstPipeline:pipeline0/GstFakeSink:vsink.GstPad:sink: caps = video/x-raw, format=(string)I420, width=(int)640, height=(int)360, framerate=(fraction)0/1
/GstPipeline:pipeline0/GstAacParse:aparse.GstPad:src: caps = audio/mpeg, framed=(boolean)true, mpegversion=(int)4, rate=(int)44100
Got EOS from element \"pipeline0\".
";

    const DEBUG: &str = "\
0:00:00.211640936 30560 0x5652fe51e180 DEBUG basesink gstbasesink.c:3826:gst_base_sink_chain_unlocked:<vsink> got times start: 0:00:00.080000000, end: 0:00:00.120000000
0:00:00.211646955 30560 0x5652fe51e180 DEBUG basesink gstbasesink.c:2166:gst_base_sink_get_sync_times:<vsink> got times start: 0:00:00.080000000, stop: 0:00:00.120000000, do_sync 1
0:00:00.211953631 30560 0x5652fe51e180 DEBUG basesink gstbasesink.c:3944:gst_base_sink_chain_unlocked:<vsink> rendering object 0x7f5a6c003000
0:00:00.213081090 30560 0x5652fe51e180 DEBUG basesink gstbasesink.c:3826:gst_base_sink_chain_unlocked:<vsink> got times start: 0:00:00.120000000, end: 0:00:00.160000000
0:00:00.213081090 30560 0x5652fe51e180 DEBUG basesink gstbasesink.c:3826:gst_base_sink_chain_unlocked:<asink> got times start: 0:00:01.500000000, end: 0:00:01.523000000
";

    #[test]
    fn decode_log_is_read_per_sink() {
        let r = parse_decode_log(LOG, DEBUG);
        let v = r.stream(Kind::Video).unwrap();
        assert_eq!(
            (v.codec.as_str(), v.width, v.height, v.frames),
            ("h264", 640, 360, 2)
        );
        assert!((v.span() - 0.04).abs() < 1e-9, "{}", v.span());
        let a = r.stream(Kind::Audio).unwrap();
        assert_eq!((a.codec.as_str(), a.frames), ("aac", 1));
        assert_eq!(a.first_pts, 1.5);
    }

    #[test]
    fn codecs_from_caps() {
        for (caps, want) in [
            ("video/x-h264, stream-format=(string)avc", "h264"),
            ("video/x-h265, stream-format=(string)hvc1", "hevc"),
            ("audio/mpeg, mpegversion=(int)4, rate=(int)44100", "aac"),
            ("audio/mpeg, mpegversion=(int)1, layer=(int)3", "mp3"),
            ("", ""),
        ] {
            assert_eq!(codec_from_caps(caps), want, "{caps}");
        }
    }

    #[test]
    fn clock_times_parse() {
        assert_eq!(
            clock_after("pts: 1:02:03.500000000, x", "pts: "),
            Some(3723.5)
        );
        assert_eq!(clock_after("pts: none, x", "pts: "), None);
        assert_eq!(clock_after("no key", "pts: "), None);
    }
}

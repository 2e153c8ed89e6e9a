//! Publisher faults as viewers see them: a publisher that dies and comes back within the bus's
//! grace period, and a publisher that comes back with another picture size. ffmpeg viewers on
//! every egress decode throughout; the gateway must keep each one playing (no end of stream) on
//! one continuous timeline, and follow the new picture size.
//!
//! A viewer here is `ffmpeg -i URL -t SECS -vf showinfo -af ashowinfo -f null -`: it decodes
//! what it receives and prints one line per decoded frame with its presentation time and size.

use std::process::Command;
use std::thread::JoinHandle;
use std::time::Duration;

use gateway_tests::{fixture, require_tool, run_with_timeout, wait_until, Ffmpeg, TestGateway};

const KEY: &str = "live/test";
/// How long each viewer decodes, in media seconds.
const WATCH_SECS: f64 = 16.0;
/// How long the first publisher runs with the viewers attached before it is killed.
const BEFORE_FAULT: Duration = Duration::from_secs(5);
/// Presentation times of one track may step forwards by at most this much: the bus keeps one
/// timeline across a reconnect, and RTSP (timed by Sender Reports) shows at most the real gap.
const MAX_STEP_SECS: f64 = 4.0;

/// One decoded frame.
#[derive(Debug, Clone, Copy)]
struct Frame {
    video: bool,
    pts: f64,
    size: Option<(u32, u32)>,
}

/// A viewer decoding one egress on its own thread.
struct Viewer {
    name: &'static str,
    handle: JoinHandle<(bool, String)>,
}

impl Viewer {
    fn start(name: &'static str, input_args: &[&str], url: String) -> Viewer {
        let mut cmd = Command::new("ffmpeg");
        cmd.args(["-hide_banner", "-nostdin", "-loglevel", "info"]);
        if !url.starts_with("rtsp:") {
            // A stalled server fails the viewer instead of hanging it (the RTSP demuxer has no
            // such option; the run's own timeout bounds it).
            cmd.args(["-rw_timeout", "15000000"]);
        }
        cmd.args(input_args)
            .arg("-i")
            .arg(&url)
            .args(["-t", &WATCH_SECS.to_string()])
            .args(["-vf", "showinfo", "-af", "ashowinfo", "-f", "null", "-"]);
        let handle = std::thread::spawn(move || {
            let out = run_with_timeout(cmd, Duration::from_secs(90));
            (
                out.status.success(),
                String::from_utf8_lossy(&out.stderr).into_owned(),
            )
        });
        Viewer { name, handle }
    }

    /// Waits for the viewer to finish and returns what it decoded, panicking if ffmpeg failed.
    fn finish(self) -> Watched {
        let (ok, log) = self.handle.join().expect("viewer thread");
        assert!(ok, "{} viewer failed; its log:\n{}", self.name, tail(&log));
        Watched {
            name: self.name,
            frames: log.lines().filter_map(parse_frame).collect(),
            log,
        }
    }
}

/// What one viewer decoded.
struct Watched {
    name: &'static str,
    frames: Vec<Frame>,
    log: String,
}

impl Watched {
    fn pts(&self, video: bool) -> Vec<f64> {
        self.frames
            .iter()
            .filter(|f| f.video == video)
            .map(|f| f.pts)
            .collect()
    }

    /// The viewer decoded (nearly) its whole watch on one timeline: it did not end at the fault,
    /// and neither track went backwards or jumped.
    fn assert_continuous(&self) {
        for video in [true, false] {
            let pts = self.pts(video);
            let track = if video { "video" } else { "audio" };
            let (Some(first), Some(last)) = (pts.first(), pts.last()) else {
                panic!(
                    "{}: no {track} decoded; log:\n{}",
                    self.name,
                    tail(&self.log)
                );
            };
            assert!(
                last - first >= WATCH_SECS - 3.0,
                "{}: {track} spans only {first:.2}..{last:.2} s of {WATCH_SECS} s: it ended at \
                 the publisher fault; log:\n{}",
                self.name,
                tail(&self.log)
            );
            for w in pts.windows(2) {
                let step = w[1] - w[0];
                assert!(
                    (-0.001..=MAX_STEP_SECS).contains(&step),
                    "{}: {track} presentation time steps {:.3} -> {:.3}; log:\n{}",
                    self.name,
                    w[0],
                    w[1],
                    tail(&self.log)
                );
            }
        }
    }

    /// Picture sizes in the order they were decoded, consecutive repeats merged.
    fn sizes(&self) -> Vec<(u32, u32)> {
        let mut sizes: Vec<(u32, u32)> = Vec::new();
        for s in self.frames.iter().filter_map(|f| f.size) {
            if sizes.last() != Some(&s) {
                sizes.push(s);
            }
        }
        sizes
    }
}

/// Parses one `showinfo` / `ashowinfo` line.
fn parse_frame(line: &str) -> Option<Frame> {
    let video = if line.contains("Parsed_showinfo") {
        true
    } else if line.contains("Parsed_ashowinfo") {
        false
    } else {
        return None;
    };
    let field = |name: &str| {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(name))
            .map(str::to_owned)
    };
    let pts: f64 = field("pts_time:")?.parse().ok()?;
    let size = field("s:").and_then(|s| {
        let (w, h) = s.split_once('x')?;
        Some((w.parse().ok()?, h.parse().ok()?))
    });
    Some(Frame { video, pts, size })
}

fn tail(log: &str) -> String {
    let lines: Vec<&str> = log.lines().filter(|l| !l.contains("showinfo")).collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

/// Kills a publisher the way a crash or a pulled cable ends it: SIGKILL to its own PID, so it
/// never says goodbye (no deleteStream, no FCUnpublish).
fn kill_publisher(p: &Ffmpeg) {
    let pid = libc::pid_t::try_from(p.pid()).expect("a pid fits pid_t");
    // SAFETY: kill(2) has no memory-safety preconditions; the pid is our own child's.
    unsafe {
        libc::kill(pid, libc::SIGKILL);
    }
}

/// The gateway, a first publisher of `av.flv` (640x360) and one viewer per egress.
struct Scene {
    gateway: TestGateway,
    viewers: Vec<Viewer>,
}

impl Scene {
    /// `mms`: whether to watch over MMSH too.
    fn start(first: &Ffmpeg, gateway: TestGateway, mms: bool) -> Scene {
        assert!(
            gateway.wait_live(KEY, Duration::from_secs(30)),
            "{KEY} did not go live; publisher log:\n{}",
            first.log()
        );
        let http = gateway.http_addr();
        let rtsp = gateway.rtsp_addr().expect("RTSP is enabled by default");
        // The HLS muxer starts on the first request and needs a whole GOP for its first segment.
        let playlist = format!("http://{http}/{KEY}/index.m3u8");
        let listed = wait_until(Duration::from_secs(20), || {
            gateway_tests::http_get(&playlist, Duration::from_secs(5))
                .is_ok_and(|r| r.status == 200 && r.text().contains("#EXTINF"))
        });
        assert!(listed, "{playlist} listed no segment");
        let mut viewers = vec![
            Viewer::start("RTMP", &[], gateway.rtmp_url(KEY)),
            Viewer::start("HTTP-FLV", &[], format!("http://{http}/{KEY}.flv")),
            Viewer::start("HLS", &[], playlist),
            Viewer::start(
                "RTSP/TCP",
                &["-rtsp_transport", "tcp"],
                format!("rtsp://{rtsp}/{KEY}"),
            ),
        ];
        if mms {
            viewers.push(Viewer::start("MMSH", &[], format!("mmsh://{http}/{KEY}")));
        }
        Scene { gateway, viewers }
    }

    /// Kills `first`, waits until the bus has seen it go, and starts the second publisher.
    fn replace_publisher(&self, first: &Ffmpeg, second: impl FnOnce(&str) -> Ffmpeg) -> Ffmpeg {
        std::thread::sleep(BEFORE_FAULT);
        kill_publisher(first);
        let gone = wait_until(Duration::from_secs(5), || {
            !self.gateway.bus().stream(KEY).is_some_and(|s| s.is_live())
        });
        assert!(gone, "the bus still has the killed publisher");
        let second = second(&self.gateway.rtmp_url(KEY));
        assert!(
            self.gateway.wait_live(KEY, Duration::from_secs(10)),
            "the second publisher did not go live; its log:\n{}",
            second.log()
        );
        second
    }

    fn finish(self) -> Vec<Watched> {
        self.viewers.into_iter().map(Viewer::finish).collect()
    }
}

fn tools() -> bool {
    require_tool("ffmpeg") && require_tool("ffprobe")
}

#[test]
fn a_publisher_killed_and_back_within_the_grace_keeps_every_viewer_on_one_timeline() {
    if !tools() {
        return;
    }
    let gateway = TestGateway::start();
    let url = gateway.rtmp_url(KEY);
    let first = Ffmpeg::publish(&fixture("av.flv"), &url);
    let scene = Scene::start(&first, gateway, true);
    let mut second =
        scene.replace_publisher(&first, |url| Ffmpeg::publish(&fixture("av.flv"), url));
    let watched = scene.finish();
    second.assert_running();
    for w in &watched {
        w.assert_continuous();
    }
}

#[test]
fn a_publisher_back_with_another_picture_size_is_followed_by_every_egress() {
    if !tools() {
        return;
    }
    let gateway = TestGateway::start();
    let url = gateway.rtmp_url(KEY);
    let first = Ffmpeg::publish(&fixture("av.flv"), &url);
    // MMS is left out: an ASF stream cannot change its stream properties mid-stream, so the
    // gateway ends MMS viewers at a new video configuration (ARCHITECTURE.md, "Publisher faults").
    let scene = Scene::start(&first, gateway, false);
    let mut second = scene.replace_publisher(&first, |url| {
        // A live encoder at 1280x720: new SPS/PPS, new AAC configuration.
        Ffmpeg::spawn(&[
            "-re",
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=1280x720:rate=25",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:sample_rate=44100",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-g",
            "25",
            "-b:v",
            "600k",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
            "-ac",
            "2",
            "-f",
            "flv",
            url,
        ])
    });
    // The HLS playlist marks the segment where the new encoding starts.
    let playlist = scene.gateway.http_url(&format!("/{KEY}/index.m3u8"));
    let marked = wait_until(Duration::from_secs(15), || {
        gateway_tests::http_get(&playlist, Duration::from_secs(5))
            .is_ok_and(|r| r.text().contains("#EXT-X-DISCONTINUITY\n"))
    });
    assert!(
        marked,
        "{playlist} has no #EXT-X-DISCONTINUITY after the new publisher"
    );
    let watched = scene.finish();
    second.assert_running();
    for w in &watched {
        w.assert_continuous();
        assert_eq!(
            w.sizes(),
            [(640, 360), (1280, 720)],
            "{}: picture sizes decoded, in order",
            w.name
        );
    }
}

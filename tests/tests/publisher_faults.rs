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

use gateway_tests::{
    fixture, require_tool, run_with_timeout, wait_until, Ffmpeg, RtmpPublisher, TempDir,
    TestGateway,
};

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
    secs: f64,
}

impl Viewer {
    fn start_for(name: &'static str, input_args: &[&str], url: String, secs: f64) -> Viewer {
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
            .args(["-t", &secs.to_string()])
            .args(["-vf", "showinfo", "-af", "ashowinfo", "-f", "null", "-"]);
        let handle = std::thread::spawn(move || {
            let out = run_with_timeout(cmd, Duration::from_secs(90));
            (
                out.status.success(),
                String::from_utf8_lossy(&out.stderr).into_owned(),
            )
        });
        Viewer { name, handle, secs }
    }

    /// Waits for the viewer to finish and returns what it decoded, panicking if ffmpeg failed.
    fn finish(self) -> Watched {
        let (ok, log) = self.handle.join().expect("viewer thread");
        assert!(ok, "{} viewer failed; its log:\n{}", self.name, tail(&log));
        Watched {
            name: self.name,
            frames: log.lines().filter_map(parse_frame).collect(),
            log,
            secs: self.secs,
        }
    }
}

/// What one viewer decoded.
struct Watched {
    name: &'static str,
    frames: Vec<Frame>,
    log: String,
    /// How long it was asked to watch.
    secs: f64,
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
                last - first >= self.secs - 3.0,
                "{}: {track} spans only {first:.2}..{last:.2} s of {} s: it ended at the \
                 publisher fault; log:\n{}",
                self.name,
                self.secs,
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
    /// `mms`: whether to watch over MMSH too; `log` tells what the publisher said.
    fn start(gateway: TestGateway, mms: bool, secs: f64, log: impl Fn() -> String) -> Scene {
        assert!(
            gateway.wait_live(KEY, Duration::from_secs(30)),
            "{KEY} did not go live; publisher log:\n{}",
            log()
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
            Viewer::start_for("RTMP", &[], gateway.rtmp_url(KEY), secs),
            Viewer::start_for("HTTP-FLV", &[], format!("http://{http}/{KEY}.flv"), secs),
            Viewer::start_for("HLS", &[], playlist, secs),
            Viewer::start_for(
                "RTSP/TCP",
                &["-rtsp_transport", "tcp"],
                format!("rtsp://{rtsp}/{KEY}"),
                secs,
            ),
        ];
        if mms {
            let url = format!("mmsh://{http}/{KEY}");
            viewers.push(Viewer::start_for("MMSH", &[], url, secs));
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
    let scene = Scene::start(gateway, true, WATCH_SECS, || first.log());
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
    let scene = Scene::start(gateway, false, WATCH_SECS, || first.log());
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
    scene.assert_followed_to_720p();
    second.assert_running();
}

impl Scene {
    /// The HLS playlist marks the segment where the new encoding starts, and every viewer
    /// decoded 640x360 and then 1280x720 on one timeline.
    fn assert_followed_to_720p(self) {
        let playlist = self.gateway.http_url(&format!("/{KEY}/index.m3u8"));
        let marked = wait_until(Duration::from_secs(15), || {
            gateway_tests::http_get(&playlist, Duration::from_secs(5))
                .is_ok_and(|r| r.text().contains("#EXT-X-DISCONTINUITY\n"))
        });
        assert!(
            marked,
            "{playlist} has no #EXT-X-DISCONTINUITY after the new encoding"
        );
        for w in &self.finish() {
            w.assert_continuous();
            assert_eq!(
                w.sizes(),
                [(640, 360), (1280, 720)],
                "{}: picture sizes decoded, in order",
                w.name
            );
        }
    }
}

/// Every tag of an FLV file.
fn read_flv(path: &std::path::Path) -> Vec<flv::FlvTag> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut reader = flv::FlvReader::new();
    reader.push(&bytes);
    std::iter::from_fn(|| reader.next_tag().expect("valid FLV")).collect()
}

#[test]
fn a_new_sequence_header_mid_stream_is_followed_by_every_egress() {
    if !tools() {
        return;
    }
    // One publisher connection: the 640x360 fixture, then 1280x720 with its own AVC and AAC
    // sequence headers, on one continuous publisher timeline.
    let dir = TempDir::new("two-sizes");
    let big = dir.join("720p.flv");
    let mut encode = Command::new("ffmpeg");
    encode
        .args(["-hide_banner", "-nostdin", "-loglevel", "error", "-y"])
        .args(["-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=25"])
        .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100"])
        .args(["-c:v", "libx264", "-preset", "ultrafast", "-g", "25"])
        .args(["-pix_fmt", "yuv420p", "-c:a", "aac", "-ac", "2", "-t", "12"])
        .args(["-f", "flv"])
        .arg(&big);
    let out = run_with_timeout(encode, Duration::from_secs(120));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut tags = read_flv(&fixture("av.flv"));
    let offset = tags.iter().map(|t| t.timestamp).max().unwrap_or(0) + 40;
    tags.extend(
        read_flv(&big)
            .into_iter()
            .filter(|t| t.tag_type != 18)
            .map(|mut t| {
                t.timestamp += offset;
                t
            }),
    );
    let gateway = TestGateway::start();
    // The plan is played once within the watch (a second round would repeat the 640x360 frames
    // without their header).
    let publisher = RtmpPublisher::publish(&tags, &gateway.rtmp_url(KEY));
    let scene = Scene::start(gateway, false, 10.0, || {
        publisher.ended().unwrap_or_default()
    });
    scene.assert_followed_to_720p();
}

/// A live encoder at 320x180, so that viewers can tell the backup's pictures from the primary's
/// (real main and backup encoders send the same; the size is only this test's marker).
fn backup_encoder(url: &str) -> Ffmpeg {
    Ffmpeg::spawn(&[
        "-re",
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=320x180:rate=25",
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=660:sample_rate=44100",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-g",
        "25",
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
}

fn signal(p: &Ffmpeg, sig: libc::c_int) {
    let pid = libc::pid_t::try_from(p.pid()).expect("a pid fits pid_t");
    // SAFETY: kill(2) has no memory-safety preconditions; the pid is our own child's.
    unsafe {
        libc::kill(pid, sig);
    }
}

/// Polls the stream's stats until `(failovers, takebacks)` reach `want`; returns how long that
/// took, or panics after `limit`.
fn wait_switches(gateway: &TestGateway, want: (u64, u64), limit: Duration) -> Duration {
    let start = std::time::Instant::now();
    let reached = wait_until(limit, || {
        gateway
            .bus()
            .stream(KEY)
            .map(|s| s.stats())
            .is_some_and(|st| (st.failovers, st.takebacks) == want)
    });
    let stats = gateway.bus().stream(KEY).map(|s| s.stats());
    assert!(
        reached,
        "(failovers, takebacks) did not reach {want:?} within {limit:?}: {stats:?}"
    );
    start.elapsed()
}

#[test]
fn a_backup_publisher_takes_over_a_stalled_or_killed_primary_and_hands_back() {
    if !tools() {
        return;
    }
    const SECS: f64 = 22.0;
    let gateway = TestGateway::start_with(|c| {
        c.bus.backup_suffix = "_backup".into();
        c.bus.failover_ms = 500;
    });
    let primary_url = gateway.rtmp_url(KEY);
    let first = Ffmpeg::publish(&fixture("av.flv"), &primary_url);
    let _backup = backup_encoder(&gateway.rtmp_url(&format!("{KEY}_backup")));
    let backup_live = wait_until(Duration::from_secs(30), || {
        gateway
            .bus()
            .stream(&format!("{KEY}_backup"))
            .is_some_and(|s| s.has_frames())
    });
    assert!(backup_live, "the backup encoder did not go live");
    let http = gateway.http_addr();
    let playlist = format!("http://{http}/{KEY}/index.m3u8");
    assert!(gateway.wait_live(KEY, Duration::from_secs(30)));
    let listed = wait_until(Duration::from_secs(20), || {
        gateway_tests::http_get(&playlist, Duration::from_secs(5))
            .is_ok_and(|r| r.status == 200 && r.text().contains("#EXTINF"))
    });
    assert!(listed, "{playlist} listed no segment");
    let rtsp = gateway.rtsp_addr().expect("RTSP on");
    let viewers = [
        Viewer::start_for("RTMP", &[], gateway.rtmp_url(KEY), SECS),
        Viewer::start_for("HTTP-FLV", &[], format!("http://{http}/{KEY}.flv"), SECS),
        Viewer::start_for("HLS", &[], playlist, SECS),
        Viewer::start_for(
            "RTSP/TCP",
            &["-rtsp_transport", "tcp"],
            format!("rtsp://{rtsp}/{KEY}"),
            SECS,
        ),
    ];
    std::thread::sleep(Duration::from_secs(3));
    // The primary stalls (its connection stays open, nothing arrives): the backup takes over.
    signal(&first, libc::SIGSTOP);
    let stalled = wait_switches(&gateway, (1, 0), Duration::from_secs(5));
    println!("failover after a stall: {stalled:?} (failover_ms 500)");
    std::thread::sleep(Duration::from_secs(2));
    // It resumes: it takes the stream back at its next keyframe.
    signal(&first, libc::SIGCONT);
    let resumed = wait_switches(&gateway, (1, 1), Duration::from_secs(10));
    println!("takeback after the primary resumed: {resumed:?}");
    std::thread::sleep(Duration::from_secs(2));
    // It dies: the backup takes over at once.
    kill_publisher(&first);
    let killed = wait_switches(&gateway, (2, 1), Duration::from_secs(5));
    println!("failover after the primary was killed: {killed:?}");
    assert!(
        killed < Duration::from_secs(1),
        "a disconnected primary is replaced within 1 s, took {killed:?}"
    );
    std::thread::sleep(Duration::from_secs(2));
    // A new primary encoder comes up and takes the stream back.
    let mut second = Ffmpeg::publish(&fixture("av.flv"), &primary_url);
    let back = wait_switches(&gateway, (2, 2), Duration::from_secs(15));
    println!("takeback by the restarted primary: {back:?}");
    let api = gateway_tests::http_get(
        &format!("http://{http}/api/streams/{KEY}"),
        Duration::from_secs(5),
    )
    .expect("stream API");
    let api: serde_json::Value = serde_json::from_str(&api.text()).expect("JSON");
    assert_eq!(
        (&api["feed"], &api["failovers"], &api["takebacks"]),
        (&"primary".into(), &2.into(), &2.into()),
        "{api}"
    );
    let watched: Vec<Watched> = viewers.into_iter().map(Viewer::finish).collect();
    second.assert_running();
    let (main, spare) = ((640, 360), (320, 180));
    for w in &watched {
        w.assert_continuous();
        let sizes = w.sizes();
        assert!(
            sizes.starts_with(&[main, spare, main]),
            "{}: decoded sizes {sizes:?}: the primary, the backup after the stall, the primary again",
            w.name
        );
    }
}

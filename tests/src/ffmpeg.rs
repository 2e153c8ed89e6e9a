//! ffmpeg and ffprobe: the reference publisher, recorder and decoder.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::media::MediaReport;
use crate::process::{run_with_timeout, timed_out, ChildGuard, TempDir};

/// The default bound on one ffprobe run.
pub const FFPROBE_TIMEOUT: Duration = Duration::from_secs(60);

/// Network I/O timeout handed to ffmpeg/ffprobe (`-rw_timeout`, microseconds), so a stalled
/// server fails the client quickly instead of hanging until the test's own deadline.
const RW_TIMEOUT_US: &str = "15000000";

/// The ffprobe entries a decode report needs (per-frame lines stay short).
pub const FRAME_ENTRIES: &str = "stream=index,codec_type,codec_name,profile,width,height,\
     sample_rate,channels:frame=stream_index,key_frame,pts_time,best_effort_timestamp_time";

/// An ffmpeg process publishing a fixture in a loop at its native rate; killed by PID on drop.
pub struct Ffmpeg {
    guard: ChildGuard,
    _dir: TempDir,
}

impl Ffmpeg {
    /// Runs `ffmpeg -re -stream_loop -1 -i <fixture> -c copy -f flv <url>`.
    pub fn publish(fixture: &Path, url: &str) -> Ffmpeg {
        let input = fixture.to_string_lossy();
        Ffmpeg::spawn(&[
            "-re",
            "-stream_loop",
            "-1",
            "-i",
            &input,
            "-c",
            "copy",
            "-f",
            "flv",
            url,
        ])
    }

    /// Runs ffmpeg with `-hide_banner -nostdin -loglevel warning` and then `args`.
    pub fn spawn(args: &[&str]) -> Ffmpeg {
        let dir = TempDir::new("ffmpeg");
        let mut cmd = Command::new("ffmpeg");
        cmd.args(["-hide_banner", "-nostdin", "-loglevel", "warning"])
            .args(args);
        let guard = ChildGuard::spawn("ffmpeg publisher", cmd, dir.join("ffmpeg.log"));
        Ffmpeg { guard, _dir: dir }
    }

    /// Panics with ffmpeg's output if it has exited (it should publish until dropped).
    pub fn assert_running(&mut self) {
        self.guard.assert_running();
    }

    pub fn is_running(&mut self) -> bool {
        self.guard.is_running()
    }

    /// ffmpeg's output so far.
    pub fn log(&self) -> String {
        self.guard.log()
    }

    pub fn pid(&self) -> u32 {
        self.guard.pid()
    }
}

/// Runs `ffprobe -v error -of json <extra_args> <url>` within [`FFPROBE_TIMEOUT`] and returns the
/// parsed JSON. Panics with ffprobe's stderr if it fails, times out, or prints no JSON.
pub fn ffprobe_json(url: &str, extra_args: &[&str]) -> Value {
    ffprobe_json_within(url, extra_args, FFPROBE_TIMEOUT).0
}

/// As [`ffprobe_json`] with an explicit timeout; also returns ffprobe's stderr.
pub fn ffprobe_json_within(url: &str, extra_args: &[&str], timeout: Duration) -> (Value, String) {
    let mut cmd = Command::new("ffprobe");
    cmd.args(["-hide_banner", "-v", "error", "-of", "json"]);
    if url.contains("://") {
        cmd.args(["-rw_timeout", RW_TIMEOUT_US]);
    }
    cmd.args(extra_args).arg(url);
    let out = run_with_timeout(cmd, timeout);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !timed_out(&out),
        "ffprobe {url} timed out after {timeout:?}; stderr:\n{stderr}"
    );
    assert!(
        out.status.success(),
        "ffprobe {url} failed ({}); stderr:\n{stderr}",
        out.status
    );
    let json = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("ffprobe {url} printed no JSON ({e}); stderr:\n{stderr}"));
    (json, stderr)
}

/// Decodes the first `secs` seconds of a live URL or a file with ffprobe and reports what it saw:
/// codecs, sizes, frames per stream and presentation-time span, and any decoder errors.
///
/// `secs = f64::INFINITY` decodes a whole file. Recordings should be a little longer than `secs`: a recorder stopped by a deadline may leave a
/// truncated last frame, which is the recorder's artefact, not the gateway's.
pub fn ffprobe_decode(url_or_file: &str, secs: f64) -> MediaReport {
    ffprobe_decode_with(url_or_file, secs, &[])
}

/// As [`ffprobe_decode`], with input options such as `["-rtsp_transport", "udp"]`.
pub fn ffprobe_decode_with(url_or_file: &str, secs: f64, input_args: &[&str]) -> MediaReport {
    let interval = format!("%+{secs}");
    let mut args = input_args.to_vec();
    args.extend(["-show_entries", FRAME_ENTRIES]);
    if secs.is_finite() {
        args.extend(["-read_intervals", &interval]);
    }
    let timeout = Duration::from_secs_f64(secs.min(60.0) * 2.0 + 30.0);
    let (json, stderr) = ffprobe_json_within(url_or_file, &args, timeout);
    MediaReport::from_ffprobe(&json, &stderr)
}

/// Records `secs` seconds of `url` with ffmpeg (`-c copy` into Matroska at `out`) and returns
/// ffmpeg's stderr at `-v error`, which is empty when the client saw no problem.
pub fn ffmpeg_record(url: &str, secs: f64, out: &Path) -> String {
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-hide_banner", "-nostdin", "-v", "error", "-y"])
        .args(["-rw_timeout", RW_TIMEOUT_US, "-i", url])
        .args([
            "-t",
            &secs.to_string(),
            "-map",
            "0",
            "-c",
            "copy",
            "-f",
            "matroska",
        ])
        .arg(out);
    let timeout = Duration::from_secs_f64(secs * 2.0 + 30.0);
    let output = run_with_timeout(cmd, timeout);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(
        output.status.success(),
        "ffmpeg recording {url} failed ({}); stderr:\n{stderr}",
        output.status
    );
    stderr
}

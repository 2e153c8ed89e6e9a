//! Recording players other than ffmpeg: rtmpdump (librtmp) and VLC. Each writes what it received
//! to a file, which ffprobe then decodes, so the cell asserts on what the client really got.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::process::run_with_timeout;

/// Extra wall-clock time a recorder gets on top of the media duration (connect, buffering).
const RECORD_SLACK: Duration = Duration::from_secs(4);

/// Records a live RTMP stream with rtmpdump for `secs` seconds of wall-clock time into `out`
/// (FLV). rtmpdump ignores `--stop` on live streams, so it is stopped with SIGTERM, on which it
/// finishes the file cleanly. Returns rtmpdump's stderr.
pub fn rtmpdump_record(url: &str, secs: f64, out: &Path) -> String {
    let mut cmd = Command::new("rtmpdump");
    cmd.args(["-q", "--live", "-r", url, "-o"]).arg(out);
    let output = run_with_timeout(cmd, Duration::from_secs_f64(secs) + RECORD_SLACK);
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Records `url` with VLC (`cvlc`, stream output to MPEG-TS at `out`) for `secs` seconds of input
/// time. VLC refuses to run as root, so as root it is run as `nobody` through `setpriv`, with
/// HOME in `out`'s directory (which must be writable by `nobody`, as [`crate::TempDir`] is).
pub fn vlc_record(url: &str, secs: f64, out: &Path) -> std::process::Output {
    vlc_record_with(url, secs, out, &[])
}

/// As [`vlc_record`], with extra VLC options such as `--rtsp-tcp`.
pub fn vlc_record_with(url: &str, secs: f64, out: &Path, options: &[&str]) -> std::process::Output {
    let dir = out.parent().expect("the recording path has a directory");
    let run_time = format!("--run-time={}", secs.ceil());
    let sout = format!("#std{{access=file,mux=mkv,dst={}}}", out.display());
    let mut cmd = if is_root() {
        let mut c = Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups", "cvlc"]);
        c
    } else {
        Command::new("cvlc")
    };
    cmd.env("HOME", dir)
        .args(["-q", "--no-interact", &run_time])
        .args(options)
        .args([url, "--sout", &sout, "vlc://quit"]);
    run_with_timeout(cmd, Duration::from_secs_f64(secs * 2.0) + RECORD_SLACK * 5)
}

/// True if this process runs as root.
pub fn is_root() -> bool {
    // SAFETY: geteuid(2) has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

//! An honest viewer that keeps watching while a test does something else: an ffmpeg process
//! copying the stream into `framecrc` on a pipe, each packet line stamped with its arrival time.
//!
//! From the arrivals a test learns whether the viewer saw a gap, in media time (a jump in a
//! stream's decode timestamps) or in wall-clock time (no packet for a while), over any window.

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::process::{stop, TempDir};

/// One packet the viewer received.
#[derive(Debug, Clone, Copy)]
pub struct Arrival {
    pub at: Instant,
    pub stream: usize,
    /// Decode timestamp in seconds, in the stream's own time base.
    pub dts: f64,
}

/// A running ffmpeg viewer; stopped by its process-group id on drop.
pub struct Watcher {
    pub name: String,
    child: Child,
    arrivals: Arc<Mutex<Vec<Arrival>>>,
    reader: Option<JoinHandle<()>>,
    dir: TempDir,
}

/// What a viewer saw in a window.
#[derive(Debug, Clone)]
pub struct WatchReport {
    pub packets: usize,
    /// The longest time without any packet, in the window.
    pub max_wall_gap: Duration,
    /// Per stream index: the largest jump between consecutive decode timestamps, in seconds.
    pub max_media_gap: Vec<(usize, f64)>,
    /// Per stream index: seconds of media received (last minus first decode timestamp).
    pub media_secs: Vec<(usize, f64)>,
}

impl Watcher {
    /// Starts `ffmpeg <input_args> -i <url> -map 0 -c copy -f framecrc pipe:1`.
    pub fn ffmpeg(name: &str, input_args: &[&str], url: &str) -> Watcher {
        let dir = TempDir::new("watch");
        let log = dir.join("ffmpeg.log");
        let file = std::fs::File::create(&log)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", log.display()));
        // A stalled server fails the viewer in 15 s; the RTSP demuxer names the option `timeout`.
        let timeout = match url.starts_with("rtsp:") || url.starts_with("rtsps:") {
            true => "-timeout",
            false => "-rw_timeout",
        };
        let mut cmd = Command::new("ffmpeg");
        cmd.args(["-hide_banner", "-nostdin", "-loglevel", "error"])
            .args([timeout, "15000000"])
            .args(input_args)
            .args(["-i", url, "-map", "0", "-c", "copy", "-flush_packets", "1"])
            .args(["-f", "framecrc", "pipe:1"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(file)
            .process_group(0);
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start the {name} viewer ({cmd:?}): {e}"));
        let arrivals = Arc::new(Mutex::new(Vec::new()));
        let stdout = child.stdout.take().expect("stdout was piped");
        let sink = Arc::clone(&arrivals);
        let reader = std::thread::spawn(move || read_framecrc(stdout, &sink));
        Watcher {
            name: name.to_owned(),
            child,
            arrivals,
            reader: Some(reader),
            dir,
        }
    }

    /// Packets received so far.
    pub fn packets(&self) -> usize {
        self.arrivals.lock().expect("arrivals lock").len()
    }

    /// True while ffmpeg has not exited.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// ffmpeg's error output so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("ffmpeg.log")).unwrap_or_default()
    }

    /// Waits until at least `more` packets beyond `from` have arrived; false on timeout.
    pub fn wait_packets(&self, from: usize, more: usize, timeout: Duration) -> bool {
        crate::wait_until(timeout, || self.packets() >= from + more)
    }

    /// What arrived between `from` and `to`.
    pub fn report(&self, from: Instant, to: Instant) -> WatchReport {
        let all = self.arrivals.lock().expect("arrivals lock");
        let window: Vec<Arrival> = all
            .iter()
            .filter(|a| a.at >= from && a.at <= to)
            .copied()
            .collect();
        let mut max_wall_gap = Duration::ZERO;
        let mut last = from;
        for a in &window {
            max_wall_gap = max_wall_gap.max(a.at.duration_since(last));
            last = a.at;
        }
        max_wall_gap = max_wall_gap.max(to.saturating_duration_since(last));
        let mut streams: Vec<usize> = window.iter().map(|a| a.stream).collect();
        streams.sort_unstable();
        streams.dedup();
        let mut max_media_gap = Vec::new();
        let mut media_secs = Vec::new();
        for s in streams {
            let mut dts: Vec<f64> = window
                .iter()
                .filter(|a| a.stream == s)
                .map(|a| a.dts)
                .collect();
            dts.sort_by(f64::total_cmp);
            let gap = dts.windows(2).map(|w| w[1] - w[0]).fold(0.0, f64::max);
            max_media_gap.push((s, gap));
            media_secs.push((s, dts.last().unwrap_or(&0.0) - dts.first().unwrap_or(&0.0)));
        }
        WatchReport {
            packets: window.len(),
            max_wall_gap,
            max_media_gap,
            media_secs,
        }
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        if self.is_running() {
            stop(&mut self.child);
        }
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
    }
}

/// Reads `framecrc` lines (`#tb <stream>: <num>/<den>` headers, then
/// `<stream>, <dts>, <pts>, <duration>, <size>, <crc>` per packet) until the pipe closes.
fn read_framecrc(out: impl std::io::Read, sink: &Mutex<Vec<Arrival>>) {
    let mut time_base: Vec<(usize, f64)> = Vec::new();
    for line in BufReader::new(out).lines() {
        let Ok(line) = line else { return };
        let at = Instant::now();
        if let Some(tb) = line.strip_prefix("#tb ") {
            if let Some(parsed) = parse_time_base(tb) {
                time_base.push(parsed);
            }
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        let mut fields = line.split(',').map(str::trim);
        let (Some(Ok(stream)), Some(Ok(dts))) = (
            fields.next().map(str::parse::<usize>),
            fields.next().map(str::parse::<i64>),
        ) else {
            continue;
        };
        let tb = time_base
            .iter()
            .find(|(s, _)| *s == stream)
            .map_or(0.001, |(_, tb)| *tb);
        sink.lock().expect("arrivals lock").push(Arrival {
            at,
            stream,
            dts: dts as f64 * tb,
        });
    }
}

/// `0: 1/1000` into (0, 0.001).
fn parse_time_base(s: &str) -> Option<(usize, f64)> {
    let (stream, ratio) = s.split_once(':')?;
    let (num, den) = ratio.trim().split_once('/')?;
    let (num, den): (f64, f64) = (num.parse().ok()?, den.parse().ok()?);
    if den <= 0.0 {
        return None;
    }
    Some((stream.trim().parse().ok()?, num / den))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn framecrc_lines_become_arrivals() {
        let text = "#tb 0: 1/1000\n#tb 1: 1/44100\n#media_type 0: video\n\
                    0,          0,          0,       40,    23330, 0x3f6e9b4d\n\
                    1,       1024,       1024,     1024,      300, 0x00000001, S=1, 4\n\
                    garbage\n";
        let sink = Mutex::new(Vec::new());
        read_framecrc(text.as_bytes(), &sink);
        let got = sink.into_inner().unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!((got[0].stream, got[0].dts), (0, 0.0));
        assert_eq!(got[1].stream, 1);
        assert!((got[1].dts - 1024.0 / 44100.0).abs() < 1e-9);
        assert_eq!(parse_time_base("2: 1/90000"), Some((2, 1.0 / 90000.0)));
        assert_eq!(parse_time_base("x: 1/0"), None);
    }
}

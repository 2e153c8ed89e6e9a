//! What every viewer shares: its counters, the run-wide sample sinks, and the latency probe.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::net::ReadMode;

/// How many error messages are kept for the report (the rest are only counted).
pub const KEPT_ERRORS: usize = 5;

/// Latency samples per viewer are taken at most this often, to keep the scan cheap.
pub const SAMPLE_INTERVAL: Duration = Duration::from_secs(1);

/// How long a paced viewer waits between draining reads. A viewer woken for every RTMP
/// message costs a syscall and a task wake per message (some 70 a second at 500 kbit/s); one
/// that reads ten times a second costs a fraction of that, receives the same bytes, and adds at
/// most this much delay, which is why paced viewers take no latency samples.
pub const READ_PACE: Duration = Duration::from_millis(100);

/// Every this many viewers, one (index 0, N, 2N, ...) is a latency probe: it reads as soon as
/// data arrives and takes the latency samples; the others read as `--reader` says.
pub const PROBE_EVERY: usize = 10;

/// The read pacing of viewer `index`: [`ReadMode::Eager`] for latency probes, `others` for
/// the rest.
pub fn mode_for(index: usize, others: ReadMode) -> ReadMode {
    if index.is_multiple_of(PROBE_EVERY) {
        ReadMode::Eager
    } else {
        others
    }
}

/// One viewer's counters, read by the reporter while the viewer runs.
#[derive(Debug, Default)]
pub struct ViewerStats {
    /// Media bytes received (see the crate docs for what counts per protocol).
    pub bytes: AtomicU64,
    /// Video frames received.
    pub frames: AtomicU64,
    /// Microseconds from connect start to the first video frame; 0 until then.
    pub ttff_us: AtomicU64,
    /// Set once the viewer has received its first video frame.
    pub playing: AtomicBool,
    /// Set when the viewer failed to connect or was disconnected before the end.
    pub failed: AtomicBool,
    /// Set when the viewer stopped reading (`--stall-after`).
    pub stalled: AtomicBool,
}

impl ViewerStats {
    /// Counts `n` media bytes.
    pub fn add_bytes(&self, n: usize) {
        self.bytes.fetch_add(n as u64, Ordering::Relaxed);
    }

    /// Counts one video frame; the first one sets the time to first frame.
    pub fn add_frame(&self, started: Instant) {
        if self.frames.fetch_add(1, Ordering::Relaxed) == 0 {
            let us = started.elapsed().as_micros().max(1);
            self.ttff_us
                .store(u64::try_from(us).unwrap_or(u64::MAX), Ordering::Relaxed);
            self.playing.store(true, Ordering::Relaxed);
        }
    }
}

/// Run-wide sinks shared by all viewers.
#[derive(Debug, Default)]
pub struct Shared {
    /// True inside the measured window (after warm-up); samples outside it are dropped.
    pub measuring: AtomicBool,
    latencies_us: Mutex<Vec<u64>>,
    errors: Mutex<Vec<String>>,
    error_count: AtomicU64,
}

impl Shared {
    /// Records one end-to-end latency sample if inside the measured window.
    pub fn latency(&self, sent_micros: u64) {
        if !self.measuring.load(Ordering::Relaxed) {
            return;
        }
        let now = now_micros();
        if let Some(d) = now.checked_sub(sent_micros) {
            lock(&self.latencies_us).push(d);
        }
    }

    /// Counts a viewer failure and keeps its message if it is among the first few.
    pub fn error(&self, msg: String) {
        let n = self.error_count.fetch_add(1, Ordering::Relaxed);
        if (n as usize) < KEPT_ERRORS {
            eprintln!("gwload: viewer failed: {msg}");
            lock(&self.errors).push(msg);
        }
    }

    /// The latency samples so far, in microseconds.
    pub fn latencies(&self) -> Vec<u64> {
        lock(&self.latencies_us).clone()
    }

    /// The first few error messages.
    pub fn errors(&self) -> Vec<String> {
        lock(&self.errors).clone()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Microseconds since the UNIX epoch (the stamp's clock; publisher and viewers share a host).
pub fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

/// Decides when a viewer should look for a stamp: at most once per [`SAMPLE_INTERVAL`].
#[derive(Debug)]
pub struct Probe {
    next: Instant,
}

impl Default for Probe {
    fn default() -> Self {
        Probe {
            next: Instant::now(),
        }
    }
}

impl Probe {
    /// True when a sample is wanted now.
    pub fn due(&self) -> bool {
        Instant::now() >= self.next
    }

    /// Records `sent` (if any) and schedules the next sample.
    pub fn record(&mut self, shared: &Shared, sent: Option<u64>) {
        if let Some(sent) = sent {
            shared.latency(sent);
            self.next = Instant::now() + SAMPLE_INTERVAL;
        }
    }
}

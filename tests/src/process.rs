//! Child processes with deadlines: every external client a test starts is bounded in time and is
//! stopped by its own process-group id, never by name, so parallel tests cannot hit each other.

use std::io::Read;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// How long a child gets to exit after SIGTERM before it is sent SIGKILL.
const TERM_GRACE: Duration = Duration::from_secs(5);

/// How often deadlines and conditions are polled.
const POLL: Duration = Duration::from_millis(50);

/// Runs `cmd` to completion or until `timeout`, whichever comes first, and returns its output.
///
/// On timeout the child's process group gets SIGTERM (so recorders such as rtmpdump, ffmpeg and
/// gst-launch flush their files), then SIGKILL after a grace period. A timed-out run is visible
/// through [`timed_out`]. Stdin is closed: CI has none and no client may wait for a key press.
pub fn run_with_timeout(mut cmd: Command, timeout: Duration) -> Output {
    let program = format!("{cmd:?}");
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {program}: {e}"));
    let stdout = drain(child.stdout.take());
    let stderr = drain(child.stderr.take());
    let status = wait_or_stop(&mut child, timeout);
    Output {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    }
}

/// True if the run ended because [`run_with_timeout`] stopped it.
pub fn timed_out(output: &Output) -> bool {
    matches!(
        output.status.signal(),
        Some(libc::SIGTERM) | Some(libc::SIGKILL)
    )
}

/// Polls `cond` until it returns true or `timeout` passes; returns the last result.
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(POLL);
    }
}

/// Reads a child's pipe to the end on its own thread, so a chatty child never blocks on a full pipe.
pub(crate) fn drain(pipe: Option<impl Read + Send + 'static>) -> thread::JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(mut p) = pipe {
            let _ = p.read_to_end(&mut buf);
        }
        buf
    })
}

/// Waits for `child` until `timeout`, then stops its process group (TERM, grace, KILL).
fn wait_or_stop(child: &mut Child, timeout: Duration) -> ExitStatus {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return status;
        }
        thread::sleep(POLL);
    }
    stop(child)
}

/// Sends SIGTERM to the child's process group, then SIGKILL if it has not exited in time.
pub(crate) fn stop(child: &mut Child) -> ExitStatus {
    signal_group(child, libc::SIGTERM);
    let deadline = Instant::now() + TERM_GRACE;
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return status;
        }
        thread::sleep(POLL);
    }
    signal_group(child, libc::SIGKILL);
    child
        .wait()
        .unwrap_or_else(|_| ExitStatus::from_raw(libc::SIGKILL))
}

pub(crate) fn signal_group(child: &Child, signal: libc::c_int) {
    // The child was spawned with `process_group(0)`, so its pid is also its process-group id, and
    // the negative pid addresses exactly the processes it started (Chromium's helpers, for example).
    if let Ok(pid) = libc::pid_t::try_from(child.id()) {
        // SAFETY: kill(2) has no memory-safety preconditions; a stale group id only yields ESRCH.
        unsafe {
            libc::kill(-pid, signal);
        }
    }
}

/// A long-running child (a publisher, a browser) that is stopped when the guard is dropped.
///
/// Output goes to files in the guard's directory so that it can be shown when a test fails,
/// without a pipe that could fill up and stall the child.
pub struct ChildGuard {
    child: Child,
    name: String,
    log: std::path::PathBuf,
}

impl ChildGuard {
    /// Starts `cmd` in its own process group, with stdin closed and stdout+stderr in `log`.
    pub fn spawn(name: &str, mut cmd: Command, log: std::path::PathBuf) -> ChildGuard {
        let file = std::fs::File::create(&log)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", log.display()));
        let file2 = file.try_clone().expect("a fresh file handle can be cloned");
        cmd.stdin(Stdio::null())
            .stdout(file)
            .stderr(file2)
            .process_group(0);
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name} ({cmd:?}): {e}"));
        ChildGuard {
            child,
            name: name.to_owned(),
            log,
        }
    }

    /// The child's process id (also its process-group id).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// True while the child has not exited.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Everything the child has written so far, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Panics with the child's log if it has already exited: a dead publisher makes every later
    /// assertion meaningless, so say so first.
    pub fn assert_running(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!(
                "{} exited early ({status}); its output:\n{}",
                self.name,
                self.log()
            );
        }
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if self.is_running() {
            stop(&mut self.child);
        }
    }
}

/// A fresh directory under the system temp dir, removed on drop.
pub struct TempDir {
    path: std::path::PathBuf,
}

impl TempDir {
    /// Creates `<tmp>/gateway-tests-<pid>-<n>-<label>`, world-writable so that a client run as an
    /// unprivileged user (VLC refuses to run as root) can write into it.
    pub fn new(label: &str) -> TempDir {
        use std::os::unix::fs::PermissionsExt;
        use std::sync::atomic::{AtomicUsize, Ordering};
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let name = format!("gateway-tests-{}-{n}-{label}", std::process::id());
        let path = std::env::temp_dir().join(name);
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", path.display()));
        let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o777));
        TempDir { path }
    }

    pub fn path(&self) -> &std::path::Path {
        &self.path
    }

    pub fn join(&self, name: &str) -> std::path::PathBuf {
        self.path.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::env::var_os("KEEP_TEST_DIRS").is_none() {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_finished_command_returns_its_output() {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "echo out; echo err >&2; exit 3"]);
        let out = run_with_timeout(cmd, Duration::from_secs(10));
        assert_eq!(out.status.code(), Some(3));
        assert_eq!(out.stdout, b"out\n");
        assert_eq!(out.stderr, b"err\n");
        assert!(!timed_out(&out));
    }

    #[test]
    fn a_hanging_command_is_stopped_and_keeps_what_it_printed() {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "echo started; exec sleep 60"]);
        let started = Instant::now();
        let out = run_with_timeout(cmd, Duration::from_millis(300));
        assert!(timed_out(&out), "{:?}", out.status);
        assert!(started.elapsed() < Duration::from_secs(5));
        assert_eq!(out.stdout, b"started\n");
    }

    #[test]
    fn a_child_that_ignores_term_is_killed() {
        let mut cmd = Command::new("sh");
        cmd.args([
            "-c",
            "trap '' TERM; echo ready; while :; do sleep 0.1; done",
        ]);
        let out = run_with_timeout(cmd, Duration::from_millis(200));
        assert_eq!(out.status.signal(), Some(libc::SIGKILL));
    }

    #[test]
    fn wait_until_reports_success_and_timeout() {
        let mut n = 0;
        assert!(wait_until(Duration::from_secs(5), || {
            n += 1;
            n == 3
        }));
        assert!(!wait_until(Duration::from_millis(100), || false));
    }

    #[test]
    fn dropping_a_guard_stops_the_child() {
        let dir = TempDir::new("guard");
        let mut cmd = Command::new("sleep");
        cmd.arg("60");
        let mut guard = ChildGuard::spawn("sleep", cmd, dir.join("log"));
        assert!(guard.is_running());
        let pid = guard.pid() as libc::pid_t;
        drop(guard);
        // SAFETY: signal 0 only checks for existence.
        let alive = unsafe { libc::kill(pid, 0) } == 0;
        assert!(!alive, "child {pid} still exists after drop");
    }
}

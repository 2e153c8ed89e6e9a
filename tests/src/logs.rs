//! The in-process gateway's `tracing` output, captured so that a test can check what an operator
//! would read: that a fault is logged, and that the line names the peer that caused it.

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

/// The captured lines of every gateway in this test binary (the subscriber is process-global).
static BUFFER: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();

/// A handle on the captured log. Positions ([`Logs::mark`]) let a test look only at what was
/// logged after a given moment.
#[derive(Clone)]
pub struct Logs {
    buf: Arc<Mutex<Vec<u8>>>,
}

/// Installs (once per process) a global `tracing` subscriber at `info` that writes plain text
/// lines into a shared buffer, and returns a handle on it. `RUST_LOG` overrides the level.
///
/// Only one test binary's tests share the buffer, and a test that needs exact lines should
/// search for its own peer addresses, which no other connection has.
pub fn capture() -> Logs {
    let buf = BUFFER.get_or_init(|| {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let writer = SharedWriter(Arc::clone(&buf));
        let filter = tracing_subscriber::EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
        let installed = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_ansi(false)
            .with_target(true)
            .with_writer(move || writer.clone())
            .try_init();
        assert!(
            installed.is_ok(),
            "another tracing subscriber was installed first; logs cannot be captured"
        );
        buf
    });
    Logs {
        buf: Arc::clone(buf),
    }
}

impl Logs {
    /// The current end of the log, to pass to [`Logs::since`] and [`Logs::wait_for`].
    pub fn mark(&self) -> usize {
        self.buf.lock().expect("log buffer lock").len()
    }

    /// Everything logged after `mark`.
    pub fn since(&self, mark: usize) -> String {
        let buf = self.buf.lock().expect("log buffer lock");
        String::from_utf8_lossy(buf.get(mark..).unwrap_or_default()).into_owned()
    }

    /// The lines logged after `mark` that contain every one of `needles`.
    pub fn lines_with(&self, mark: usize, needles: &[&str]) -> Vec<String> {
        self.since(mark)
            .lines()
            .filter(|l| needles.iter().all(|n| l.contains(n)))
            .map(str::to_owned)
            .collect()
    }

    /// Polls until a line logged after `mark` contains every one of `needles`; returns the first
    /// such line, or `None` after `timeout`.
    pub fn wait_for(&self, mark: usize, needles: &[&str], timeout: Duration) -> Option<String> {
        let mut found = None;
        crate::wait_until(timeout, || {
            found = self.lines_with(mark, needles).into_iter().next();
            found.is_some()
        });
        found
    }

    /// The last `n` lines logged after `mark`, for failure messages.
    pub fn tail(&self, mark: usize, n: usize) -> String {
        let text = self.since(mark);
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }
}

#[derive(Clone)]
struct SharedWriter(Arc<Mutex<Vec<u8>>>);

impl Write for SharedWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .map_err(|_| std::io::Error::other("log buffer lock poisoned"))?
            .extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

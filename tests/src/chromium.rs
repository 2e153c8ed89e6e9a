//! Headless Chromium for browser playback tests (hls.js, flv.js), and a tiny HTTP "beacon" server
//! to which a test page reports what it played.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::Command;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::process::{ChildGuard, TempDir};

/// The largest report body the beacon accepts.
const MAX_BEACON_BODY: usize = 1 << 20;

/// The Chromium binary names tried, in order (Debian: `chromium`).
pub const CHROMIUM_BINARIES: &[&str] = &["chromium", "chromium-browser", "google-chrome"];

/// A headless Chromium showing one URL, with a fresh profile; stopped (with its helper processes,
/// which share its process group) on drop.
pub struct Chromium {
    guard: ChildGuard,
    _profile: TempDir,
}

impl Chromium {
    /// The installed binary name, if any.
    pub fn binary() -> Option<&'static str> {
        CHROMIUM_BINARIES
            .iter()
            .copied()
            .find(|b| crate::find_on_path(b).is_some())
    }

    /// The command-line flags used for every launch. `--no-sandbox` is needed as root (CI);
    /// the others keep a headless run from reaching the network or doing background work.
    pub fn flags(profile: &std::path::Path) -> Vec<String> {
        let mut flags: Vec<String> = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--mute-audio",
            "--autoplay-policy=no-user-gesture-required",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        flags.push(format!("--user-data-dir={}", profile.display()));
        flags
    }

    /// Launches Chromium on `url`. Call [`crate::require_tool`]-style checks first
    /// (see [`require_chromium`]).
    pub fn launch(url: &str) -> Chromium {
        let binary = Chromium::binary().expect("require_chromium() was checked first");
        let profile = TempDir::new("chromium");
        let mut cmd = Command::new(binary);
        cmd.args(Chromium::flags(profile.path())).arg(url);
        let log = profile.join("chromium-output.log");
        let guard = ChildGuard::spawn("chromium", cmd, log);
        Chromium {
            guard,
            _profile: profile,
        }
    }

    /// Chromium's console output so far.
    pub fn log(&self) -> String {
        self.guard.log()
    }
}

/// True if a Chromium binary is installed; otherwise the skip rule of [`crate::require_tool`].
pub fn require_chromium() -> bool {
    Chromium::binary().is_some() || crate::skip("needs chromium (not on PATH)")
}

/// One request received by the [`Beacon`].
#[derive(Debug, Clone)]
pub struct BeaconHit {
    pub method: String,
    pub path: String,
    pub body: String,
}

/// A loopback HTTP server that records every request (a test page POSTs its results here with
/// `fetch(url, {method: 'POST', mode: 'no-cors', body})`) and answers 204 with permissive CORS.
pub struct Beacon {
    addr: SocketAddr,
    hits: mpsc::Receiver<BeaconHit>,
}

impl Beacon {
    /// Binds 127.0.0.1:0 and serves on a background thread for the life of the process.
    pub fn start() -> Beacon {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let addr = listener
            .local_addr()
            .expect("a bound listener has an address");
        let (tx, hits) = mpsc::channel();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                if let Some(hit) = serve_one(stream) {
                    if tx.send(hit).is_err() {
                        return;
                    }
                }
            }
        });
        Beacon { addr, hits }
    }

    /// The base URL, e.g. `http://127.0.0.1:40123`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Waits up to `timeout` for a request for which `pred` holds; earlier ones are discarded.
    pub fn wait_for(
        &self,
        timeout: Duration,
        mut pred: impl FnMut(&BeaconHit) -> bool,
    ) -> Option<BeaconHit> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.checked_duration_since(Instant::now())?;
            match self.hits.recv_timeout(left) {
                Ok(hit) if pred(&hit) => return Some(hit),
                Ok(_) => continue,
                Err(_) => return None,
            }
        }
    }
}

/// Reads one HTTP/1.1 request, answers it, and returns it (None if it was malformed).
fn serve_one(mut stream: TcpStream) -> Option<BeaconHit> {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_owned();
    let path = parts.next()?.to_owned();
    let mut length = 0usize;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).ok()? == 0 || header.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = header.split_once(':') {
            if k.trim().eq_ignore_ascii_case("content-length") {
                length = v.trim().parse().ok()?;
            }
        }
    }
    if length > MAX_BEACON_BODY {
        return None;
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    let reply = "HTTP/1.1 204 No Content\r\nAccess-Control-Allow-Origin: *\r\n\
                 Access-Control-Allow-Methods: GET, POST, OPTIONS\r\n\
                 Access-Control-Allow-Headers: *\r\nConnection: close\r\n\r\n";
    let _ = stream.write_all(reply.as_bytes());
    Some(BeaconHit {
        method,
        path,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

/// True if the web page's browser check can run: node, Chromium and `web/node_modules` with
/// playwright-core (installed by `npm ci --prefix web`); otherwise the skip rule.
pub fn require_browser_check() -> bool {
    if !crate::require_tool("node") || !require_chromium() {
        return false;
    }
    let web = crate::workspace_root().join("web");
    web.join("node_modules/playwright-core").is_dir()
        || crate::skip("needs web/node_modules (run `npm ci --prefix web`)")
}

/// Plays `key` in the gateway's own player page (`/player.html`) in headless Chromium through
/// `web/tests/browser.mjs` (playwright-core), with `tech` = `hls`, `flv` or `ws`, until the video
/// has played `seconds`. Returns the script's JSON report; panics if it failed or the page
/// logged errors.
pub fn browser_play(base: &str, key: &str, tech: &str, seconds: u32) -> serde_json::Value {
    browser_play_with(base, key, tech, seconds, "")
}

/// As [`browser_play`], with `query` appended to both pages' URLs (`token=<API token>`,
/// `play_token=<play token>`; see `web/player.js`).
pub fn browser_play_with(
    base: &str,
    key: &str,
    tech: &str,
    seconds: u32,
    query: &str,
) -> serde_json::Value {
    let binary = Chromium::binary().expect("require_browser_check() was checked first");
    let chromium = crate::find_on_path(binary).expect("found on PATH a moment ago");
    let timeout = seconds + 40;
    let mut cmd = Command::new("node");
    cmd.current_dir(crate::workspace_root().join("web"))
        .args([
            "tests/browser.mjs",
            "--base",
            base,
            "--stream",
            key,
            "--tech",
            tech,
        ])
        .args([
            "--seconds",
            &seconds.to_string(),
            "--timeout",
            &timeout.to_string(),
        ])
        .arg("--chromium")
        .arg(chromium);
    if !query.is_empty() {
        cmd.args(["--query", query]);
    }
    let out = crate::run_with_timeout(cmd, Duration::from_secs(u64::from(timeout) + 30));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let report: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!("the browser check printed no report ({e}); stdout:\n{stdout}\nstderr:\n{stderr}")
    });
    assert!(
        out.status.success(),
        "browser playback over {tech} failed: {report}\nstderr:\n{stderr}"
    );
    assert_eq!(
        report["consoleErrors"],
        serde_json::json!([]),
        "the page logged errors: {report}"
    );
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn beacon_records_a_post() {
        let beacon = Beacon::start();
        let mut s = TcpStream::connect(beacon.addr).unwrap();
        s.write_all(b"POST /result HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\n{\"ok\":true}")
            .unwrap();
        let mut reply = String::new();
        s.read_to_string(&mut reply).unwrap();
        assert!(reply.starts_with("HTTP/1.1 204"), "{reply}");
        let hit = beacon
            .wait_for(Duration::from_secs(5), |h| h.path == "/result")
            .unwrap();
        assert_eq!(
            (hit.method.as_str(), hit.body.as_str()),
            ("POST", "{\"ok\":true}")
        );
    }

    #[test]
    fn flags_include_the_root_and_isolation_flags() {
        let f = Chromium::flags(std::path::Path::new("/tmp/p"));
        for want in [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--user-data-dir=/tmp/p",
        ] {
            assert!(f.iter().any(|x| x == want), "{want}");
        }
    }
}

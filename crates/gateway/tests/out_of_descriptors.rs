//! The gateway binary under a tiny descriptor limit: when accept fails with EMFILE the accept
//! loop backs off and logs about once a second (with a count of the errors it kept quiet),
//! instead of a line every few milliseconds, and serves again once descriptors are free.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The descriptor limit the gateway runs under (soft and hard, so it cannot raise it).
const FD_LIMIT: u32 = 64;
/// Connections opened against it: well past the limit.
const FLOOD: usize = 120;
/// How long the accept loop is watched while it fails.
const WATCH: Duration = Duration::from_secs(4);

/// Kills the gateway this test started (by its own handle) when dropped.
struct Gateway {
    child: Child,
    lines: Arc<Mutex<Vec<(Instant, String)>>>,
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Gateway {
    fn start(dir: &std::path::Path) -> Gateway {
        let config = dir.join("gateway.toml");
        let text = "[rtmp]\nlisten = \"127.0.0.1:0\"\nhandshake_timeout_secs = 60\n\
                    [http]\nlisten = \"127.0.0.1:0\"\n\
                    [rtsp]\nlisten = \"127.0.0.1:0\"\n[mms]\nlisten = \"127.0.0.1:0\"\n";
        std::fs::write(&config, text).expect("write the config");
        let script = format!("ulimit -n {FD_LIMIT} && exec \"$0\" --config \"$1\"");
        let mut child = Command::new("sh")
            .args(["-c", &script, env!("CARGO_BIN_EXE_gateway")])
            .arg(&config)
            .env("NO_COLOR", "1")
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the gateway binary");
        let out = child.stdout.take().expect("piped");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&lines);
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                sink.lock().unwrap().push((Instant::now(), line));
            }
        });
        Gateway { child, lines }
    }

    /// The address of `what` ("rtmp", "http") from the start-up log line.
    fn addr(&self, what: &str) -> SocketAddr {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            // The gateway's start-up line: `listening listeners=rtmp=ADDR http=ADDR ...`.
            let found = self.lines.lock().unwrap().iter().find_map(|(_, l)| {
                let list = l.split(" listening listeners=").nth(1)?;
                list.split_whitespace()
                    .find_map(|pair| pair.strip_prefix(&format!("{what}=")))?
                    .parse()
                    .ok()
            });
            if let Some(addr) = found {
                return addr;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "no `{what}=` address in the log: {:?}",
            self.lines.lock().unwrap()
        );
    }

    fn accept_errors_since(&self, start: Instant) -> Vec<String> {
        let lines = self.lines.lock().unwrap();
        lines
            .iter()
            .filter(|(t, l)| *t >= start && l.contains("accept failed"))
            .map(|(_, l)| l.clone())
            .collect()
    }
}

#[test]
fn running_out_of_descriptors_backs_off_and_logs_once_a_second() {
    let dir = std::env::temp_dir().join(format!("gw-fd-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temp dir");
    let gw = Gateway::start(&dir);
    let rtmp = gw.addr("rtmp");
    let http = gw.addr("http");

    // Each connection holds a descriptor in the gateway until the (long) handshake timeout.
    let flood: Vec<TcpStream> = (0..FLOOD)
        .filter_map(|_| TcpStream::connect_timeout(&rtmp, Duration::from_secs(2)).ok())
        .collect();
    let start = Instant::now();
    std::thread::sleep(WATCH);
    let errors = gw.accept_errors_since(start);
    assert!(
        !errors.is_empty(),
        "{} connections under `ulimit -n {FD_LIMIT}` caused no accept error",
        flood.len()
    );
    // About one line a second; a loop without backoff logs dozens.
    let most = WATCH.as_secs() as usize + 2;
    assert!(
        errors.len() <= most,
        "{} accept-error lines in {WATCH:?} (at most {most} expected): {errors:#?}",
        errors.len()
    );
    assert!(
        errors.iter().any(|l| l.contains("suppressed=")),
        "{errors:#?}"
    );

    // Descriptors come back: the gateway serves again.
    drop(flood);
    let served = (0..40).any(|_| {
        std::thread::sleep(Duration::from_millis(250));
        get_status(http).is_some_and(|s| s.starts_with("HTTP/1.1 "))
    });
    assert!(
        served,
        "the gateway did not serve HTTP again after the flood left"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

fn get_status(addr: SocketAddr) -> Option<String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    s.write_all(b"GET /api/streams HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .ok()?;
    let mut buf = [0u8; 64];
    let n = s.read(&mut buf).ok()?;
    Some(String::from_utf8_lossy(&buf[..n]).into_owned())
}

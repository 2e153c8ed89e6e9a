//! The gateway as a separate process, for what only a process shows: its log output and its
//! command line. The binary is `gateway-under-test`, this package's build of the `gateway`
//! binary's code (`tests/src/bin/gateway-under-test.rs`); cargo tells only integration tests
//! where it is, so they pass it in ([`gateway_bin!`]).

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::{wait_until, workspace_root, ChildGuard, TempDir};

/// The binary's path, to be expanded in an integration test:
/// `GatewayProcess::start_json(Path::new(gateway_bin!()), config)`.
#[macro_export]
macro_rules! gateway_bin {
    () => {
        env!("CARGO_BIN_EXE_gateway-under-test")
    };
}

/// A gateway process logging JSON lines to a file; stopped (SIGTERM, then SIGKILL) on drop.
pub struct GatewayProcess {
    guard: ChildGuard,
    /// Every bound listener by name, from its "listening" line.
    pub listeners: Vec<(String, SocketAddr)>,
    dir: TempDir,
}

/// How long the process gets to start and log its listeners.
const START_TIMEOUT: Duration = Duration::from_secs(20);

impl GatewayProcess {
    /// Writes `config` (TOML; it must set `log.format = "json"` and its listeners, typically on
    /// `127.0.0.1:0`) to a file, runs the gateway on it from the workspace root (so the default
    /// `http.web_root = "web"` is found) and waits for its "listening" line.
    pub fn start_json(binary: &Path, config: &str) -> GatewayProcess {
        let dir = TempDir::new("gateway-process");
        let path = dir.join("gateway.toml");
        std::fs::write(&path, config).expect("the config file can be written");
        let mut cmd = Command::new(binary);
        cmd.arg("--config").arg(&path).current_dir(workspace_root());
        // The configured level decides, not the test runner's environment.
        cmd.env_remove("RUST_LOG");
        let mut guard = ChildGuard::spawn("gateway", cmd, dir.join("gateway.log"));
        let mut listeners = None;
        let started = wait_until(START_TIMEOUT, || {
            listeners = listening_line(&guard.log());
            listeners.is_some()
        });
        if !started {
            guard.assert_running();
            panic!("the gateway logged no listening line:\n{}", guard.log());
        }
        GatewayProcess {
            guard,
            listeners: listeners.unwrap_or_default(),
            dir,
        }
    }

    /// The bound address of listener `name` ("rtmp", "http", "rtsp", "mms", ...).
    pub fn addr(&self, name: &str) -> SocketAddr {
        self.listeners
            .iter()
            .find_map(|(n, a)| (n == name).then_some(*a))
            .unwrap_or_else(|| panic!("no {name} listener in {:?}", self.listeners))
    }

    /// Everything the process wrote so far (standard output and error).
    pub fn log(&self) -> String {
        self.guard.log()
    }

    /// The process's id.
    pub fn pid(&self) -> u32 {
        self.guard.pid()
    }

    /// Panics with the log if the process has exited.
    pub fn assert_running(&mut self) {
        self.guard.assert_running();
    }

    /// The temporary directory holding the config and the log.
    pub fn dir(&self) -> &TempDir {
        &self.dir
    }
}

/// The listeners of the first JSON "listening" line in `log`, whose `listeners` field reads
/// `rtmp=127.0.0.1:40000 http=127.0.0.1:40001 ...`.
fn listening_line(log: &str) -> Option<Vec<(String, SocketAddr)>> {
    log.lines().find_map(|line| {
        let v: Value = serde_json::from_str(line).ok()?;
        if v["fields"]["message"] != "listening" {
            return None;
        }
        let listeners = v["fields"]["listeners"].as_str()?;
        listeners
            .split_whitespace()
            .map(|pair| {
                let (name, addr) = pair.split_once('=')?;
                Some((name.to_owned(), addr.parse().ok()?))
            })
            .collect()
    })
}

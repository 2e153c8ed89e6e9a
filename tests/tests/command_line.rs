//! The `gateway` binary's command line and what it writes at start, as an operator meets them
//! in the first hour: `--version`, and a log that names its build and reads as plain text when
//! it goes to a file.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use gateway_tests::{
    gateway_bin, run_with_timeout, wait_until, workspace_root, ChildGuard, GatewayProcess, TempDir,
};
use serde_json::Value;

const TIMEOUT: Duration = Duration::from_secs(20);

/// `media-gateway X.Y.Z`, from the gateway crate's manifest (not from the code under test).
fn expected_version() -> String {
    let manifest = std::fs::read_to_string(workspace_root().join("crates/gateway/Cargo.toml"))
        .expect("the gateway crate's manifest");
    let version = manifest
        .lines()
        .find_map(|l| l.strip_prefix("version = \""))
        .and_then(|v| v.strip_suffix('"'))
        .expect("the gateway crate's manifest states its version");
    format!("media-gateway {version}")
}

/// A gateway on kernel-chosen loopback ports (RTP on ports of this process's own), logging in
/// `format`.
fn config(format: &str) -> String {
    let base = 20_000 + (std::process::id() % 150) as u16 * 200 + 50;
    format!(
        "[log]\nlevel = \"info\"\nformat = \"{format}\"\n\
         [rtmp]\nlisten = \"127.0.0.1:0\"\n\
         [http]\nlisten = \"127.0.0.1:0\"\nweb_root = \"{}\"\n\
         [rtsp]\nlisten = \"127.0.0.1:0\"\nrtp_port_min = {base}\nrtp_port_max = {}\n\
         [mms]\nlisten = \"127.0.0.1:0\"\n",
        workspace_root().join("web").display(),
        base + 49,
    )
}

#[test]
fn version_prints_the_package_and_its_version_and_exits_0() {
    for flag in ["--version", "-V"] {
        let mut cmd = Command::new(gateway_bin!());
        cmd.arg(flag);
        let out = run_with_timeout(cmd, TIMEOUT);
        assert_eq!(out.status.code(), Some(0), "{flag}: {out:?}");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            format!("{}\n", expected_version()),
            "{flag}"
        );
        assert!(out.stderr.is_empty(), "{flag}: {out:?}");
    }
}

#[test]
fn a_text_log_written_to_a_file_is_plain_and_starts_with_the_version() {
    let dir = TempDir::new("command-line");
    let path = dir.join("gateway.toml");
    std::fs::write(&path, config("text")).expect("the config file can be written");
    let mut cmd = Command::new(gateway_bin!());
    cmd.arg("--config").arg(&path).current_dir(workspace_root());
    cmd.env_remove("RUST_LOG").env_remove("NO_COLOR");
    let mut gateway = ChildGuard::spawn("gateway", cmd, dir.join("gateway.log"));
    let every_shell = [
        "gateway running",
        "RTMP listening",
        "RTSP listening",
        "MMST listening",
    ];
    let started = wait_until(TIMEOUT, || {
        let log = gateway.log();
        every_shell.iter().all(|line| log.contains(line))
    });
    gateway.assert_running();
    let log = gateway.log();
    assert!(started, "not every shell said it listens:\n{log}");

    assert!(
        !log.contains('\x1b'),
        "colour codes in a log file:\n{log:?}"
    );
    let first = log.lines().next().unwrap_or_default();
    let starting = format!("{} starting", expected_version());
    assert!(first.contains(&starting), "first line: {first}\n{log}");
    // Addresses read as addresses, not as Rust's `Some(127.0.0.1:1935)` or `None`.
    assert!(!log.contains("Some(") && !log.contains("None"), "{log}");
}

#[test]
fn the_first_json_line_names_the_version() {
    let gateway = GatewayProcess::start_json(Path::new(gateway_bin!()), &config("json"));
    let log = gateway.log();
    let first: Value = serde_json::from_str(log.lines().next().unwrap_or_default())
        .unwrap_or_else(|e| panic!("the first line is not JSON ({e}):\n{log}"));
    assert_eq!(
        first["fields"]["message"],
        format!("{} starting", expected_version()),
        "{log}"
    );
}

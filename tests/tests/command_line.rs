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

/// A gateway on kernel-chosen loopback ports, RTSP and MMS off, logging in `format`.
fn config(format: &str) -> String {
    format!(
        "[log]\nlevel = \"info\"\nformat = \"{format}\"\n\
         [rtmp]\nlisten = \"127.0.0.1:0\"\n\
         [http]\nlisten = \"127.0.0.1:0\"\nweb_root = \"{}\"\n\
         [rtsp]\nenabled = false\n\
         [mms]\nenabled = false\n",
        workspace_root().join("web").display(),
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
    let started = wait_until(TIMEOUT, || gateway.log().contains("gateway running"));
    gateway.assert_running();
    let log = gateway.log();
    assert!(started, "the gateway did not say it runs:\n{log}");

    assert!(
        !log.contains('\x1b'),
        "colour codes in a log file:\n{log:?}"
    );
    let first = log.lines().next().unwrap_or_default();
    let starting = format!("{} starting", expected_version());
    assert!(first.contains(&starting), "first line: {first}\n{log}");
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

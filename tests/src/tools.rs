//! Finding fixtures and external tools, and the skip rule: a missing tool fails the test under CI
//! (where `.ci/run` installs every tool) and skips it loudly anywhere else.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// The repository root (the parent of this crate's directory).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the test crate lives one level below the workspace root")
        .to_path_buf()
}

/// The path of a committed fixture in `tests/fixtures/`; panics if it does not exist.
pub fn fixture(name: &str) -> PathBuf {
    let path = workspace_root().join("tests/fixtures").join(name);
    assert!(
        path.is_file(),
        "fixture {} is missing (see tests/fixtures/PROVENANCE.md and scripts/make-fixtures)",
        path.display()
    );
    path
}

/// The name of the running test, taken from the test thread's name.
///
/// libtest names each test's thread after the test; when tests run on the main thread
/// (`--test-threads=1`, or nextest) the name is only "main", so the binary name is added.
pub fn test_name() -> String {
    let thread = std::thread::current();
    match thread.name() {
        Some("main") | None => {
            let exe = std::env::args().next().unwrap_or_default();
            format!("a test in {exe}")
        }
        Some(name) => name.to_owned(),
    }
}

/// True if CI is set: then every tool must be present and nothing may be skipped.
pub fn in_ci() -> bool {
    std::env::var_os("CI").is_some_and(|v| !v.is_empty() && v != "0" && v != "false")
}

/// Skips the current test with `reason`, or panics under CI. Returns false so that a test can
/// write `if !skip_unless(cond, why) { return; }`.
pub fn skip(reason: &str) -> bool {
    let line = format!("SKIPPED: {} {reason}", test_name());
    assert!(!in_ci(), "{line} (CI is set, so this is a failure)");
    println!("{line}");
    eprintln!("{line}");
    false
}

/// Skips the current test because the platform cannot run it even with every package installed
/// (for example a client module the distribution does not ship). Unlike [`skip`] this does not
/// fail under CI, since CI could not fix it by installing anything; it always prints the reason.
pub fn skip_unsupported(reason: &str) -> bool {
    let line = format!(
        "SKIPPED: {} {reason} (not available on this platform)",
        test_name()
    );
    println!("{line}");
    eprintln!("{line}");
    false
}

/// True if VLC has the plugin `name` (for example `live555` for RTSP), found as
/// `lib<name>_plugin.so` in VLC's plugin directories.
pub fn vlc_has_plugin(name: &str) -> bool {
    let file = format!("lib{name}_plugin.so");
    let mut roots = vec![PathBuf::from("/usr/lib/vlc/plugins")];
    if let Ok(entries) = std::fs::read_dir("/usr/lib") {
        roots.extend(entries.flatten().map(|e| e.path().join("vlc/plugins")));
    }
    roots.iter().filter(|r| r.is_dir()).any(|root| {
        std::fs::read_dir(root)
            .into_iter()
            .flatten()
            .flatten()
            .any(|category| category.path().join(&file).is_file())
    })
}

/// True if `tool` is an executable on PATH. If it is not: panics under CI, otherwise prints
/// `SKIPPED: <test> needs <tool>` and returns false.
pub fn require_tool(tool: &str) -> bool {
    if find_on_path(tool).is_some() {
        return true;
    }
    skip(&format!("needs {tool} (not on PATH)"))
}

/// True if GStreamer has `element` (checked with `gst-inspect-1.0`); skip rule as
/// [`require_tool`].
pub fn require_gst_element(element: &str) -> bool {
    if !require_tool("gst-launch-1.0") || !require_tool("gst-inspect-1.0") {
        return false;
    }
    let mut cmd = Command::new("gst-inspect-1.0");
    cmd.arg("--exists").arg(element);
    let out = crate::run_with_timeout(cmd, Duration::from_secs(30));
    if out.status.success() {
        return true;
    }
    skip(&format!("needs the GStreamer element {element}"))
}

/// The full path of `tool` if an executable file of that name is on PATH.
pub fn find_on_path(tool: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(tool))
        .find(|p| {
            p.metadata()
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixtures_are_found_in_the_repository() {
        for name in [
            "av.flv",
            "video-only.flv",
            "audio-only.flv",
            "mp3.flv",
            "hevc.mp4",
        ] {
            assert!(fixture(name).is_file(), "{name}");
        }
    }

    #[test]
    #[should_panic(expected = "is missing")]
    fn a_missing_fixture_is_a_clear_panic() {
        fixture("no-such-file.flv");
    }

    #[test]
    fn sh_is_on_path_and_nonsense_is_not() {
        assert!(find_on_path("sh").is_some());
        assert!(find_on_path("no-such-tool-xyz").is_none());
    }

    #[test]
    fn vlc_plugins_are_found_by_file_name() {
        assert!(!vlc_has_plugin("no-such-plugin"));
        if find_on_path("cvlc").is_some() {
            // The Debian vlc-plugin-base package ships the FLV demuxer's sibling, the ES demuxer.
            assert!(
                vlc_has_plugin("es"),
                "VLC is installed but its plugins were not found"
            );
        }
    }

    #[test]
    fn test_name_is_the_test_thread_name() {
        // libtest runs each test on a thread named after it unless tests run single-threaded.
        let name = test_name();
        assert!(
            name.ends_with("test_name_is_the_test_thread_name") || name.starts_with("a test in"),
            "{name}"
        );
    }
}

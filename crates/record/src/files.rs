//! The recordings directory: file names from the path template, the sidecar that describes each
//! file, the listing, retention, and the one check that turns a requested path into a file.

use std::collections::HashSet;
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::Format;

/// How deep the listing and retention walk below the directory (a template has a few levels).
const MAX_DEPTH: usize = 16;
/// At most this many files are listed or considered for retention in one walk.
const MAX_FILES: usize = 100_000;

/// One recorded file, as `GET /api/recordings` lists it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Recording {
    /// Relative to the recordings directory, with `/` separators; the download URL's tail.
    pub path: String,
    /// `None` for a file without its description (left by a crash before it was written).
    pub app: Option<String>,
    pub stream: Option<String>,
    /// `mp4`, `flv` or `ts`.
    pub format: &'static str,
    pub size: u64,
    /// When its first media arrived, RFC 3339 UTC; `None` if unknown.
    pub start_time: Option<String>,
    /// Media duration in seconds; `None` while it is being written or when unknown.
    pub duration_secs: Option<f64>,
    /// Being written now.
    pub open: bool,
}

/// What the recorder writes beside each file (`{file}.json`): what the file name does not say.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct Sidecar {
    pub app: String,
    pub stream: String,
    pub start_unix_ms: u64,
    /// `None` while the file is open.
    pub duration_ms: Option<u64>,
}

pub(crate) fn sidecar_path(file: &Path) -> PathBuf {
    let mut name = file.as_os_str().to_owned();
    name.push(".json");
    PathBuf::from(name)
}

pub(crate) fn write_sidecar(file: &Path, sidecar: &Sidecar) -> std::io::Result<()> {
    let text = serde_json::to_vec(sidecar).map_err(std::io::Error::other)?;
    std::fs::write(sidecar_path(file), text)
}

fn read_sidecar(file: &Path) -> Option<Sidecar> {
    let text = std::fs::read(sidecar_path(file)).ok()?;
    serde_json::from_slice(&text).ok()
}

/// An app or stream name as one safe path component: letters, digits, `-`, `_` and `.` are kept,
/// anything else (a `/` in a stream name too) becomes `_`, and a leading `.` is escaped.
fn component(name: &str) -> String {
    let mut out: String = name
        .chars()
        .map(|c| match c {
            'a'..='z' | 'A'..='Z' | '0'..='9' | '-' | '_' | '.' => c,
            _ => '_',
        })
        .collect();
    if out.is_empty() || out.starts_with('.') {
        out.insert(0, '_');
    }
    out
}

/// The file for a segment: the template with `{app}`, `{stream}`, `{time}` (UTC,
/// `20261207-181530`), `{unix}` and `{unix_ms}` filled in, below `dir`, with the format's
/// extension. The template was checked by the configuration (relative, no `..`).
pub(crate) fn segment_path(
    dir: &Path,
    template: &str,
    app: &str,
    stream: &str,
    format: Format,
    now: SystemTime,
) -> PathBuf {
    let ms = unix_ms(now);
    let rel = template
        .replace("{app}", &component(app))
        .replace("{stream}", &component(stream))
        .replace("{time}", &compact_time(ms / 1000))
        .replace("{unix_ms}", &ms.to_string())
        .replace("{unix}", &(ms / 1000).to_string());
    let mut path = dir.to_path_buf();
    for part in rel
        .split('/')
        .filter(|p| !p.is_empty() && *p != "." && *p != "..")
    {
        path.push(part);
    }
    let base = path.clone();
    let mut n = 0;
    loop {
        let mut name = base.as_os_str().to_owned();
        if n > 0 {
            name.push(format!("-{n}"));
        }
        name.push(".");
        name.push(format.extension());
        path = PathBuf::from(name);
        if !path.exists() || n >= 1000 {
            return path;
        }
        n += 1;
    }
}

pub(crate) fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// `20261207-181530`: sorts by time, and needs no character a file system refuses. The
/// digits of [`rfc3339`].
fn compact_time(secs: u64) -> String {
    let t = rfc3339(secs.saturating_mul(1000));
    let digits = |r: std::ops::Range<usize>| t.get(r).unwrap_or("00").to_owned();
    format!(
        "{}{}{}-{}{}{}",
        digits(0..4),
        digits(5..7),
        digits(8..10),
        digits(11..13),
        digits(14..16),
        digits(17..19)
    )
}

/// RFC 3339 in UTC with milliseconds: `2026-12-07T18:15:30.250Z` (the HLS crate's
/// `PROGRAM-DATE-TIME` formatting, the one calendar conversion in the workspace).
pub fn rfc3339(unix_ms: u64) -> String {
    hls::playlist::iso8601(unix_ms)
}

/// One media file found in the directory.
struct Found {
    path: PathBuf,
    format: Format,
    size: u64,
    modified: SystemTime,
}

/// Every media file below `dir` (not the sidecars), at most [`MAX_FILES`].
fn walk(dir: &Path) -> Vec<Found> {
    let mut out = Vec::new();
    let mut pending = vec![(dir.to_path_buf(), 0)];
    while let Some((d, depth)) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let Ok(meta) = entry.metadata() else { continue };
            let path = entry.path();
            if meta.is_dir() && depth < MAX_DEPTH {
                pending.push((path, depth + 1));
            } else if let Some(format) = meta.is_file().then(|| Format::of_path(&path)).flatten() {
                out.push(Found {
                    path,
                    format,
                    size: meta.len(),
                    modified: meta.modified().unwrap_or(UNIX_EPOCH),
                });
                if out.len() >= MAX_FILES {
                    return out;
                }
            }
        }
    }
    out
}

/// The files below `dir`, oldest first; `open` are being written.
pub(crate) fn list(dir: &Path, open: &HashSet<PathBuf>) -> Vec<Recording> {
    let mut found = walk(dir);
    found.sort_by_key(|f| f.modified);
    found
        .into_iter()
        .map(|f| {
            let sidecar = read_sidecar(&f.path);
            let rel = f.path.strip_prefix(dir).unwrap_or(&f.path);
            let rel: Vec<_> = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy())
                .collect();
            let is_open = open.contains(&f.path);
            Recording {
                path: rel.join("/"),
                app: sidecar.as_ref().map(|s| s.app.clone()),
                stream: sidecar.as_ref().map(|s| s.stream.clone()),
                format: f.format.name(),
                size: f.size,
                start_time: sidecar.as_ref().map(|s| rfc3339(s.start_unix_ms)),
                duration_secs: sidecar
                    .and_then(|s| s.duration_ms)
                    .filter(|_| !is_open)
                    .map(|ms| ms as f64 / 1000.0),
                open: is_open,
            }
        })
        .collect()
}

/// Deletes finished files (and their sidecars) older than `max_age`, then the oldest until
/// the rest fit in `max_total_bytes`; files being written (`open`) are never deleted, though
/// they count towards the total. Returns how many files were deleted.
pub(crate) fn enforce_retention(
    dir: &Path,
    max_age: Option<Duration>,
    max_total_bytes: Option<u64>,
    open: &HashSet<PathBuf>,
    now: SystemTime,
) -> u64 {
    let mut found = walk(dir);
    found.sort_by_key(|f| f.modified);
    let mut total: u64 = found.iter().map(|f| f.size).sum();
    let mut deleted = 0;
    for f in found.iter().filter(|f| !open.contains(&f.path)) {
        let age = now.duration_since(f.modified).unwrap_or_default();
        let too_old = max_age.is_some_and(|max| age > max);
        let too_much = max_total_bytes.is_some_and(|max| total > max);
        if !too_old && !too_much {
            continue;
        }
        match std::fs::remove_file(&f.path) {
            Ok(()) => {
                let _ = std::fs::remove_file(sidecar_path(&f.path));
                total = total.saturating_sub(f.size);
                deleted += 1;
                let why = if too_old {
                    "older than record.max_age_secs"
                } else {
                    "over record.max_total_bytes"
                };
                tracing::info!(file = %f.path.display(), size = f.size, reason = why, "recording deleted");
            }
            Err(e) => {
                tracing::warn!(file = %f.path.display(), error = %e, "recording could not be deleted")
            }
        }
    }
    deleted
}

/// The file a download asks for, if `rel` names a recording below `dir`: relative, `/`
/// separated, no `.`, `..`, empty or backslashed part, a media extension, and (symbolic links
/// resolved) still inside `dir`.
pub(crate) fn resolve(dir: &Path, rel: &str) -> Option<PathBuf> {
    let bad_part =
        |p: &str| p.is_empty() || p == "." || p == ".." || p.contains('\\') || p.contains('\0');
    if rel.split('/').any(bad_part) {
        return None;
    }
    let path = dir.join(rel);
    if !path
        .components()
        .skip(dir.components().count())
        .all(|c| matches!(c, Component::Normal(_)))
    {
        return None;
    }
    Format::of_path(&path)?;
    let real = path.canonicalize().ok()?;
    let root = dir.canonicalize().ok()?;
    (real.starts_with(&root) && real.is_file()).then_some(real)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_utc_calendar_dates() {
        let table = [
            (0, "1970-01-01T00:00:00.000Z", "19700101-000000"),
            (
                951_782_400_500,
                "2000-02-29T00:00:00.500Z",
                "20000229-000000",
            ),
            (
                1_796_667_330_000,
                "2026-12-07T18:15:30.000Z",
                "20261207-181530",
            ),
        ];
        for (ms, rfc, compact) in table {
            assert_eq!(rfc3339(ms), rfc);
            assert_eq!(compact_time(ms / 1000), compact);
        }
    }

    #[test]
    fn names_become_safe_components() {
        let table = [
            ("live", "live"),
            ("a/b", "a_b"),
            ("..", "_.."),
            ("", "_"),
            ("cam 1é", "cam_1_"),
        ];
        for (name, want) in table {
            assert_eq!(component(name), want, "{name:?}");
        }
    }

    #[test]
    fn the_template_is_filled_in_and_files_never_collide() {
        let dir = std::env::temp_dir().join(format!("record-names-{}", std::process::id()));
        let now = UNIX_EPOCH + Duration::from_millis(1_796_667_330_250);
        let p = segment_path(
            &dir,
            "{app}/{stream}/{time}-{unix_ms}",
            "live",
            "../x",
            Format::Mp4,
            now,
        );
        assert_eq!(p, dir.join("live/_.._x/20261207-181530-1796667330250.mp4"));
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, b"x").unwrap();
        let q = segment_path(
            &dir,
            "{app}/{stream}/{time}-{unix_ms}",
            "live",
            "../x",
            Format::Mp4,
            now,
        );
        assert_eq!(
            q,
            dir.join("live/_.._x/20261207-181530-1796667330250-1.mp4")
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn downloads_stay_inside_the_directory() {
        let dir = std::env::temp_dir().join(format!("record-resolve-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("live")).unwrap();
        std::fs::write(dir.join("live/a.mp4"), b"x").unwrap();
        std::fs::write(dir.join("live/a.mp4.json"), b"{}").unwrap();
        assert!(resolve(&dir, "live/a.mp4").is_some());
        for bad in [
            "../live/a.mp4",
            "live/../live/a.mp4",
            "/etc/passwd",
            "live//a.mp4",
            "live/a.mp4.json",
            "live\\a.mp4",
            "live/./a.mp4",
            "",
        ] {
            assert_eq!(resolve(&dir, bad), None, "{bad:?}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn retention_deletes_the_oldest_finished_files_first() {
        let dir = std::env::temp_dir().join(format!("record-retention-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut paths = Vec::new();
        for i in 0..4 {
            let p = dir.join(format!("{i}.flv"));
            std::fs::write(&p, vec![0; 100]).unwrap();
            let t = UNIX_EPOCH + Duration::from_secs(1_000_000 + i * 10);
            std::fs::File::options()
                .write(true)
                .open(&p)
                .unwrap()
                .set_modified(t)
                .unwrap();
            paths.push(p);
        }
        let open: HashSet<_> = [paths[0].clone()].into();
        let now = UNIX_EPOCH + Duration::from_secs(1_000_100);
        // 400 bytes, at most 250: the oldest finished ones go (the open one stays).
        assert_eq!(enforce_retention(&dir, None, Some(250), &open, now), 2);
        let left: Vec<_> = paths.iter().map(|p| p.exists()).collect();
        assert_eq!(left, [true, false, false, true]);
        // Older than 75 s: the last finished one (written at +30 s, 70 s ago) stays.
        assert_eq!(
            enforce_retention(&dir, Some(Duration::from_secs(75)), None, &open, now),
            0
        );
        assert_eq!(
            enforce_retention(
                &dir,
                Some(Duration::from_secs(60)),
                None,
                &HashSet::new(),
                now
            ),
            2
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

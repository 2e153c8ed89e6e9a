//! Recording published streams to disk: the recorder shell.
//!
//! For every stream that starts publishing ([`bus::Bus::publishes`]) and matches a [`Rule`],
//! the recorder is one more bus reader ([`bus::Subscriber`], [`bus::Protocol::Internal`]),
//! like an egress. It hands the tags over a small bounded queue to a writer thread of the
//! stream, which cuts them into files ([`segment`], sans-IO) in fragmented MP4 ([`fmp4`], by
//! hand), FLV (the `flv` crate's framing) or MPEG-TS (`ts-mux`), and writes them.
//!
//! What it is not: no fan-out and no lag policy of its own. When the disk is slower than the
//! stream, the queue fills, the reader stops taking tags, and the bus's one lag policy skips it
//! to the next keyframe and counts the drop; the recorder closes the file there and starts the
//! next at that keyframe ([`RecordStats::dropped_tags`]). The publisher never waits.
//!
//! Each finished file gets a description beside it (`{file}.json`: app, stream, start,
//! duration), is announced to the rule's `on_record` hook ([`access::Access::post_event`]),
//! and then retention runs (age and total size over the whole directory). [`Recorder::list`]
//! and [`Recorder::resolve`] are what `GET /api/recordings` and its downloads use.
//!
//! A crash leaves at most the open file short: MP4 files are written a fragment (a GOP, at
//! most about a second) at a time, so even the open one reads up to its last fragment; FLV and
//! MPEG-TS are streamable, so they read up to the last whole tag or packet.

mod files;
pub mod fmp4;
mod from_bus;
mod mux;
mod segment;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

pub use files::{rfc3339, Recording};
pub use mux::MuxError;

/// A file format the recorder writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// Fragmented MP4 (`.mp4`): H.264, H.265, AAC.
    Mp4,
    /// FLV (`.flv`): every tag as published.
    Flv,
    /// MPEG-TS (`.ts`): H.264, H.265, AAC.
    Ts,
}

impl Format {
    /// The name in the configuration and the API, which is also the extension.
    pub fn name(self) -> &'static str {
        match self {
            Format::Mp4 => "mp4",
            Format::Flv => "flv",
            Format::Ts => "ts",
        }
    }

    fn extension(self) -> &'static str {
        self.name()
    }

    /// The format a file name's extension says, for files the recorder writes.
    pub fn of_path(path: &Path) -> Option<Format> {
        match path.extension()?.to_str()? {
            "mp4" => Some(Format::Mp4),
            "flv" => Some(Format::Flv),
            "ts" => Some(Format::Ts),
            _ => None,
        }
    }
}

/// Which streams are recorded, and how.
#[derive(Debug, Clone)]
pub struct Rule {
    /// App and stream patterns, as in `[[auth.rule]]` (`*`, `?`).
    pub app: String,
    pub stream: String,
    pub format: Format,
    /// A file is closed at the first keyframe once it is this long ...
    pub segment: Duration,
    /// ... or this large (0: no size limit).
    pub segment_bytes: u64,
    /// Below the directory, without extension: `{app}`, `{stream}`, `{time}`, `{unix}`,
    /// `{unix_ms}`.
    pub path: String,
    /// POSTed to with each finished file.
    pub on_record: Option<String>,
}

/// The recorder's settings.
#[derive(Debug, Clone)]
pub struct Options {
    pub dir: PathBuf,
    /// The first rule that matches a stream decides; none: the stream is not recorded.
    pub rules: Vec<Rule>,
    /// Finished files older than this are deleted.
    pub max_age: Option<Duration>,
    /// The oldest finished files are deleted while the directory holds more than this.
    pub max_total_bytes: Option<u64>,
    /// Tags queued between a stream's bus reader and its writer.
    pub queue_tags: usize,
    /// For the `on_record` hook.
    pub access: Arc<access::Access>,
}

impl Options {
    /// The rule for `app`/`stream`, if any.
    pub fn rule_for(&self, app: &str, stream: &str) -> Option<&Rule> {
        self.rules.iter().find(|r| {
            access::pattern_matches(&r.app, app) && access::pattern_matches(&r.stream, stream)
        })
    }
}

/// The recorder's counters since start, for `/metrics`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RecordStats {
    /// Streams being recorded now.
    pub recording_streams: u64,
    /// Bytes written to recordings.
    pub bytes: u64,
    /// Files finished.
    pub segments: u64,
    /// Tags the bus skipped because a recording's writer fell behind.
    pub dropped_tags: u64,
    /// Writes (or file creations) that failed; the file is abandoned, the next one tried.
    pub write_errors: u64,
    /// Files deleted by retention.
    pub deleted: u64,
}

#[derive(Debug, Default)]
struct Counters {
    bytes: AtomicU64,
    segments: AtomicU64,
    dropped_tags: AtomicU64,
    write_errors: AtomicU64,
    deleted: AtomicU64,
}

/// The recorder: cheap to clone; every clone is the same recorder.
#[derive(Clone)]
pub struct Recorder {
    inner: Arc<Inner>,
}

struct Inner {
    opts: Options,
    counters: Counters,
    /// The files being written now, with their stream.
    open: Mutex<HashMap<PathBuf, String>>,
    /// The streams being recorded, by key: a stream is recorded by one reader at a time.
    active: Mutex<HashMap<Arc<str>, Weak<bus::Stream>>>,
    /// Retention runs one at a time.
    retention: Mutex<()>,
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder")
            .field("dir", &self.inner.opts.dir)
            .field("rules", &self.inner.opts.rules.len())
            .finish_non_exhaustive()
    }
}

impl Recorder {
    pub fn new(opts: Options) -> Recorder {
        Recorder {
            inner: Arc::new(Inner {
                opts,
                counters: Counters::default(),
                open: Mutex::new(HashMap::new()),
                active: Mutex::new(HashMap::new()),
                retention: Mutex::new(()),
            }),
        }
    }

    /// Whether any rule is configured (otherwise [`Recorder::run`] records nothing).
    pub fn enabled(&self) -> bool {
        !self.inner.opts.rules.is_empty()
    }

    /// The recordings directory.
    pub fn dir(&self) -> &Path {
        &self.inner.opts.dir
    }

    /// Records every matching stream that publishes until `shutdown`; then each recording
    /// finishes its open file.
    pub async fn run(self, bus: bus::Bus, shutdown: tokio_util::sync::CancellationToken) {
        if !self.enabled() {
            return;
        }
        from_bus::run(self, bus, shutdown).await;
    }

    /// Every recording in the directory, oldest first (blocking file system reads).
    pub fn list(&self) -> Vec<Recording> {
        files::list(&self.inner.opts.dir, &self.open_files())
    }

    /// The file a download of `rel` (a [`Recording::path`]) reads, if it names a recording
    /// inside the directory; `None` for anything else, `..` and links out of it included.
    pub fn resolve(&self, rel: &str) -> Option<PathBuf> {
        files::resolve(&self.inner.opts.dir, rel)
    }

    pub fn stats(&self) -> RecordStats {
        let c = &self.inner.counters;
        let active = self.inner.active.lock().expect("active streams lock");
        RecordStats {
            recording_streams: active.len() as u64,
            bytes: c.bytes.load(Ordering::Relaxed),
            segments: c.segments.load(Ordering::Relaxed),
            dropped_tags: c.dropped_tags.load(Ordering::Relaxed),
            write_errors: c.write_errors.load(Ordering::Relaxed),
            deleted: c.deleted.load(Ordering::Relaxed),
        }
    }

    fn open_files(&self) -> HashSet<PathBuf> {
        let open = self.inner.open.lock().expect("open files lock");
        open.keys().cloned().collect()
    }

    /// Runs retention now (blocking), if any limit is set.
    fn enforce_retention(&self) {
        let o = &self.inner.opts;
        if o.max_age.is_none() && o.max_total_bytes.is_none() {
            return;
        }
        let _one = self.inner.retention.lock().expect("retention lock");
        let open = self.open_files();
        let deleted = files::enforce_retention(
            &o.dir,
            o.max_age,
            o.max_total_bytes,
            &open,
            std::time::SystemTime::now(),
        );
        self.inner
            .counters
            .deleted
            .fetch_add(deleted, Ordering::Relaxed);
    }
}

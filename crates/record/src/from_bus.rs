//! The recorder's bus side: which streams to record, a bus reader per recorded stream, and the
//! writer thread behind its queue that carries out the segmenter's actions on the files.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bus::{Bus, Event, Protocol, Subscriber, Tag};
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::files::{self, Sidecar};
use crate::segment::{Action, Segmenter};
use crate::{Format, Recorder, Rule};

/// How often retention runs besides after every finished file.
const RETENTION_EVERY: Duration = Duration::from_secs(60);
/// A writer's buffer for FLV and MPEG-TS (MP4 writes each fragment whole).
const WRITE_BUFFER: usize = 64 * 1024;

/// What a stream's reader hands its writer.
enum Item {
    Tag(Tag),
    /// The feed broke: tags were skipped, or the publisher left (`false`) or a new one joined
    /// (`true`).
    Broke {
        new_publisher: bool,
    },
}

pub(crate) async fn run(rec: Recorder, bus: Bus, shutdown: CancellationToken) {
    let mut publishes = bus.publishes();
    tracing::info!(dir = %rec.dir().display(), rules = rec.inner.opts.rules.len(), "recording published streams");
    consider_live(&rec, &bus, &shutdown);
    let mut retention = tokio::time::interval(RETENTION_EVERY);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            msg = publishes.recv() => match msg {
                Ok(key) => consider(&rec, &bus, &key, &shutdown),
                Err(RecvError::Lagged(missed)) => {
                    tracing::warn!(missed, "recorder fell behind the publish announcements; looking at every stream");
                    consider_live(&rec, &bus, &shutdown);
                }
                Err(RecvError::Closed) => break,
            },
            _ = retention.tick() => {
                let rec = rec.clone();
                let _ = tokio::task::spawn_blocking(move || rec.enforce_retention()).await;
            }
        }
    }
}

fn consider_live(rec: &Recorder, bus: &Bus, shutdown: &CancellationToken) {
    for stream in bus.streams().iter().filter(|s| s.is_live()) {
        consider(rec, bus, stream.key(), shutdown);
    }
}

/// Starts recording `key` if a rule matches it and it is not being recorded already (a
/// publisher that returns within the grace period is followed by the reader it had).
fn consider(rec: &Recorder, bus: &Bus, key: &str, shutdown: &CancellationToken) {
    let Some((app, name)) = key.split_once('/') else {
        return;
    };
    let Some(rule) = rec.inner.opts.rule_for(app, name).cloned() else {
        return;
    };
    let Some(sub) = bus.subscribe(key, Protocol::Internal) else {
        return;
    };
    {
        let mut active = rec.inner.active.lock().expect("active streams lock");
        let same = active
            .get(key)
            .and_then(|w| w.upgrade())
            .is_some_and(|s| Arc::ptr_eq(&s, sub.stream()));
        if same {
            return;
        }
        active.insert(Arc::from(key), Arc::downgrade(sub.stream()));
    }
    let stream = Stream {
        rec: rec.clone(),
        rule,
        app: app.to_owned(),
        name: name.to_owned(),
    };
    tokio::spawn(read(stream, sub, shutdown.clone()));
}

/// One recorded stream.
#[derive(Clone)]
struct Stream {
    rec: Recorder,
    rule: Rule,
    app: String,
    name: String,
}

/// The stream's bus reader: its tags into the writer's bounded queue. When the queue is full
/// this waits, and the bus skips it to the next keyframe if it falls a ring behind.
async fn read(stream: Stream, mut sub: Subscriber, shutdown: CancellationToken) {
    let key = sub.stream().key().to_owned();
    let (tx, rx) = mpsc::channel(stream.rec.inner.opts.queue_tags.max(1));
    let writer_stream = stream.clone();
    let handle = tokio::runtime::Handle::current();
    let writer = std::thread::Builder::new()
        .name("record-writer".into())
        .spawn(move || write(writer_stream, rx, handle));
    if let Err(e) = writer {
        tracing::error!(stream = %key, error = %e, "recording not started: no writer thread");
        forget(&stream.rec, &sub);
        return;
    }
    tracing::info!(stream = %key, format = stream.rule.format.name(), "recording");
    let mut dropped = sub.dropped();
    let mut warned: Option<Instant> = None;
    loop {
        let event = tokio::select! {
            _ = shutdown.cancelled() => break,
            event = sub.recv() => event,
        };
        let Some(event) = event else { break };
        let now_dropped = sub.dropped();
        let mut items = Vec::with_capacity(2);
        if now_dropped > dropped {
            let n = now_dropped - dropped;
            dropped = now_dropped;
            stream
                .rec
                .inner
                .counters
                .dropped_tags
                .fetch_add(n, Ordering::Relaxed);
            if warned.is_none_or(|t| t.elapsed() >= Duration::from_secs(1)) {
                warned = Some(Instant::now());
                tracing::warn!(stream = %key, skipped = n, "recording fell behind (slow disk?): tags skipped to the next keyframe; a new file starts there");
            }
            items.push(Item::Broke {
                new_publisher: false,
            });
        }
        match event {
            Event::Tag(tag) => items.push(Item::Tag(tag)),
            Event::PublisherLeft => items.push(Item::Broke {
                new_publisher: false,
            }),
            Event::PublisherJoined => items.push(Item::Broke {
                new_publisher: true,
            }),
            _ => {}
        }
        for item in items {
            let sent = tokio::select! {
                _ = shutdown.cancelled() => false,
                sent = tx.send(item) => sent.is_ok(),
            };
            if !sent {
                drop(tx);
                forget(&stream.rec, &sub);
                return;
            }
        }
    }
    // Dropping the sender lets the writer finish its open file.
    drop(tx);
    forget(&stream.rec, &sub);
    tracing::info!(stream = %key, "recording stopped");
}

/// The stream is no longer recorded by this reader (a newer one may have taken the key).
fn forget(rec: &Recorder, sub: &Subscriber) {
    let mut active = rec.inner.active.lock().expect("active streams lock");
    let ours = active
        .get(sub.stream().key())
        .and_then(|w| w.upgrade())
        .is_none_or(|s| Arc::ptr_eq(&s, sub.stream()));
    if ours {
        active.remove(sub.stream().key());
    }
}

/// The writer thread: the queue's tags through the segmenter, its actions onto the files.
fn write(stream: Stream, mut rx: mpsc::Receiver<Item>, handle: tokio::runtime::Handle) {
    let rule = &stream.rule;
    let segment_ms = u64::try_from(rule.segment.as_millis()).unwrap_or(u64::MAX);
    let mut segmenter = Segmenter::new(rule.format, segment_ms, rule.segment_bytes);
    let mut sink = Sink {
        stream: stream.clone(),
        handle,
        file: None,
    };
    let mut actions = Vec::new();
    while let Some(item) = rx.blocking_recv() {
        match item {
            Item::Tag(tag) => segmenter.push(&tag, &mut actions),
            Item::Broke { new_publisher } => segmenter.feed_broke(new_publisher, &mut actions),
        }
        for action in actions.drain(..) {
            sink.apply(action);
        }
    }
    segmenter.close(&mut actions);
    for action in actions.drain(..) {
        sink.apply(action);
    }
}

struct OpenFile {
    path: PathBuf,
    out: BufWriter<File>,
    start_unix_ms: u64,
    size: u64,
    /// A write failed: the rest of this file is dropped.
    failed: bool,
}

/// Carries out a segmenter's actions on the file system.
struct Sink {
    stream: Stream,
    handle: tokio::runtime::Handle,
    file: Option<OpenFile>,
}

impl Sink {
    fn apply(&mut self, action: Action) {
        match action {
            Action::Open { .. } => self.open(),
            Action::Write(bytes) => self.write(&bytes),
            Action::Close { duration_ms, patch } => self.close(duration_ms, patch),
            Action::Refused(why) => tracing::warn!(
                stream = %format!("{}/{}", self.stream.app, self.stream.name),
                format = self.stream.rule.format.name(),
                reason = %why,
                "stream not recorded"
            ),
        }
    }

    fn key(&self) -> String {
        format!("{}/{}", self.stream.app, self.stream.name)
    }

    fn open(&mut self) {
        let s = &self.stream;
        let now = SystemTime::now();
        let path = files::segment_path(
            s.rec.dir(),
            &s.rule.path,
            &s.app,
            &s.name,
            s.rule.format,
            now,
        );
        let created = path
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| File::create(&path));
        let start_unix_ms = files::unix_ms(now);
        let file = match created {
            Ok(f) => f,
            Err(e) => {
                s.rec
                    .inner
                    .counters
                    .write_errors
                    .fetch_add(1, Ordering::Relaxed);
                tracing::error!(stream = %self.key(), file = %path.display(), error = %e, "recording file could not be created");
                return;
            }
        };
        let sidecar = Sidecar {
            app: s.app.clone(),
            stream: s.name.clone(),
            start_unix_ms,
            duration_ms: None,
        };
        if let Err(e) = files::write_sidecar(&path, &sidecar) {
            tracing::warn!(file = %path.display(), error = %e, "recording description not written");
        }
        s.rec
            .inner
            .open
            .lock()
            .expect("open files lock")
            .insert(path.clone(), self.key());
        tracing::debug!(stream = %self.key(), file = %path.display(), "recording file opened");
        self.file = Some(OpenFile {
            path,
            out: BufWriter::with_capacity(WRITE_BUFFER, file),
            start_unix_ms,
            size: 0,
            failed: false,
        });
    }

    fn write(&mut self, bytes: &[u8]) {
        let key = self.key();
        let counters = &self.stream.rec.inner.counters;
        let mp4 = self.stream.rule.format == Format::Mp4;
        let Some(f) = self.file.as_mut().filter(|f| !f.failed) else {
            return;
        };
        // An MP4 fragment reaches the file whole, so a crash leaves the file readable up to it.
        let written = f.out.write_all(bytes).and_then(|()| match mp4 {
            true => f.out.flush(),
            false => Ok(()),
        });
        match written {
            Ok(()) => {
                f.size += bytes.len() as u64;
                counters
                    .bytes
                    .fetch_add(bytes.len() as u64, Ordering::Relaxed);
            }
            Err(e) => {
                f.failed = true;
                counters.write_errors.fetch_add(1, Ordering::Relaxed);
                tracing::error!(stream = %key, file = %f.path.display(), error = %e, "recording write failed; the rest of this file is lost");
            }
        }
    }

    fn close(&mut self, duration_ms: u64, patch: Option<(u64, [u8; 8])>) {
        let Some(mut f) = self.file.take() else {
            return;
        };
        let rec = self.stream.rec.clone();
        // Synced before the hook names it: a finished file survives a power cut too. This
        // thread is the writer's, off the media path.
        let finished = f
            .out
            .flush()
            .and_then(|()| match patch {
                Some((at, bytes)) => f.out.get_ref().write_all_at(&bytes, at),
                None => Ok(()),
            })
            .and_then(|()| f.out.get_ref().sync_data());
        if let Err(e) = finished {
            rec.inner
                .counters
                .write_errors
                .fetch_add(1, Ordering::Relaxed);
            tracing::error!(stream = %self.key(), file = %f.path.display(), error = %e, "recording could not be finished");
        }
        drop(f.out);
        let sidecar = Sidecar {
            app: self.stream.app.clone(),
            stream: self.stream.name.clone(),
            start_unix_ms: f.start_unix_ms,
            duration_ms: Some(duration_ms),
        };
        if let Err(e) = files::write_sidecar(&f.path, &sidecar) {
            tracing::warn!(file = %f.path.display(), error = %e, "recording description not written");
        }
        rec.inner
            .open
            .lock()
            .expect("open files lock")
            .remove(&f.path);
        rec.inner.counters.segments.fetch_add(1, Ordering::Relaxed);
        let rel = f.path.strip_prefix(rec.dir()).unwrap_or(&f.path);
        let rel = rel.to_string_lossy().replace('\\', "/");
        tracing::info!(stream = %self.key(), file = %f.path.display(), size = f.size, duration = %format!("{:.1} s", duration_ms as f64 / 1000.0), "recording finished");
        if let Some(url) = &self.stream.rule.on_record {
            let body = serde_json::json!({
                "action": "on_record",
                "app": self.stream.app,
                "stream": self.stream.name,
                "path": rel,
                "file": std::path::absolute(&f.path).unwrap_or_else(|_| f.path.clone()).display().to_string(),
                "format": self.stream.rule.format.name(),
                "size": f.size,
                "start_time": files::rfc3339(f.start_unix_ms),
                "duration_secs": duration_ms as f64 / 1000.0,
            });
            let _runtime = self.handle.enter();
            rec.inner.opts.access.post_event(url, &body);
        }
        rec.enforce_retention();
    }
}

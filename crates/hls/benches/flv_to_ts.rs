//! FLV to TS segments: the per-stream HLS remux.
//!
//! `cargo bench -p hls --bench flv_to_ts`. Every tag of a committed fixture
//! (`tests/fixtures/av.flv`: 10 s of 640x360 H.264 Main at 400 kbit/s with
//! B-frames, AAC 64 kbit/s) goes through a fresh [`Segmenter`], as the HLS
//! egress feeds it from the bus, and the last segment is flushed. One iteration
//! is the whole file: probing, PAT/PMT, PES and PCR writing, keyframe cuts
//! every 2 s and playlist rebuilds. If `scripts/make-load-fixture` has made
//! `target/fixtures/av-2500k.flv` (720p, 2.5 Mbit/s), it is measured too.
//!
//! Two groups measure the same work: `flv_to_ts_bytes` reports FLV tag body
//! bytes per second, `flv_to_ts_tags` tags per second.

use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use hls::{InputTag, Segmenter, SegmenterOptions, TagKind};

/// Reads an FLV file and classifies its tags the way RTMP ingest does for the bus.
fn load(path: &Path) -> Vec<InputTag> {
    let data = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let file = flv::parse_file(&Bytes::from(data)).expect("fixture is a valid FLV file");
    file.tags
        .into_iter()
        .filter_map(|t| {
            let kind = match t.kind()? {
                flv::TagType::Audio => TagKind::Audio,
                flv::TagType::Video => TagKind::Video,
                flv::TagType::Script => TagKind::Script,
            };
            // The header is parsed once per tag, outside the measured remux, as at ingest.
            Some(InputTag::classify(kind, u64::from(t.timestamp), t.body))
        })
        .collect()
}

/// Feeds every tag through a new segmenter and flushes it; returns it for inspection.
fn remux(tags: Vec<InputTag>) -> Segmenter {
    const WALL_CLOCK_MS: u64 = 1_764_633_600_000;
    let mut seg = Segmenter::new(SegmenterOptions::default());
    for tag in tags {
        let now_ms = WALL_CLOCK_MS + tag.timestamp;
        // A skipped tag is counted in the stats; the check below fails on any.
        let _ = seg.push(tag, now_ms);
    }
    seg.flush();
    seg
}

fn fixtures() -> Vec<(&'static str, PathBuf)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut out = vec![("av_400k_10s", root.join("tests/fixtures/av.flv"))];
    let load = root.join("target/fixtures/av-2500k.flv");
    if load.is_file() {
        out.push(("av_2500k_10s", load));
    }
    out
}

fn flv_to_ts(c: &mut Criterion) {
    for (name, path) in fixtures() {
        let tags = load(&path);
        let body_bytes: usize = tags.iter().map(|t| t.data.len()).sum();
        // The bench must measure a remux that works: every tag muxed, segments cut on time.
        let seg = remux(tags.clone());
        let stats = seg.stats();
        assert_eq!(stats.skipped_tags, 0, "{name}: tags skipped");
        assert!(stats.segments >= 4, "{name}: {} segments", stats.segments);
        let ts_bytes: usize = seg.segments().map(|s| s.data.len()).sum();
        assert!(ts_bytes > body_bytes / 2, "{name}: {ts_bytes} TS bytes");
        eprintln!(
            "{name}: {} tags, {body_bytes} FLV body bytes -> {} segments, {ts_bytes} TS bytes in the window",
            tags.len(),
            stats.segments
        );

        for (group, throughput) in [
            ("flv_to_ts_bytes", Throughput::Bytes(body_bytes as u64)),
            ("flv_to_ts_tags", Throughput::Elements(tags.len() as u64)),
        ] {
            let mut g = c.benchmark_group(group);
            g.measurement_time(Duration::from_secs(3))
                .warm_up_time(Duration::from_secs(1))
                .sample_size(20)
                .throughput(throughput);
            g.bench_function(name, |b| {
                b.iter_batched(|| tags.clone(), remux, BatchSize::SmallInput)
            });
            g.finish();
        }
    }
}

criterion_group!(benches, flv_to_ts);
criterion_main!(benches);

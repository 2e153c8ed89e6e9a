//! Shared set-up: a bus fed in real time from an FLV file, the MMST listener and the MMSH router.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use bus::{Bus, BusOptions, Protocol, PublisherInfo, Tag, TagKind};
use bytes::Bytes;
use mms_server::{Options, PublishingPoint};
use tokio::net::TcpListener;
use tokio::process::Command;
use tokio_util::sync::CancellationToken;

/// The published stream: what clients must report.
pub const WIDTH: u32 = 320;
pub const HEIGHT: u32 = 240;
pub const FPS: u32 = 25;
pub const SAMPLE_RATE: u32 = 44_100;
pub const KEY: &str = "live/test";

/// True if `tool` runs; otherwise panics under CI and returns false after printing SKIPPED.
pub async fn have_tool(tool: &str) -> bool {
    let ok = Command::new(tool)
        .arg("-version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .await
        .is_ok();
    if !ok {
        if std::env::var_os("CI").is_some() {
            panic!("{tool} is required in CI");
        }
        println!("SKIPPED: {tool} not installed");
    }
    ok
}

/// The published stream: `tests/fixtures/mms/av-3s.flv` (H.264 Main with B-frames, so
/// presentation and decode times differ; AAC LC stereo; one keyframe a second), looped.
pub fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/mms/av-3s.flv")
}

/// A running gateway slice: bus, publisher task, MMST and MMSH listeners.
pub struct Harness {
    pub bus: Bus,
    pub mmst: SocketAddr,
    pub http: SocketAddr,
    pub shutdown: CancellationToken,
    /// Cancelling it makes the publisher leave (the servers keep running).
    pub publisher: CancellationToken,
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

pub fn options() -> Options {
    Options {
        publishing_points: vec![PublishingPoint {
            name: "LiveEvents".into(),
            stream: KEY.into(),
        }],
        ..Options::default()
    }
}

pub async fn start() -> Harness {
    start_with(fixture(), KEY).await
}

/// Like [`start`], publishing `fixture` at `key`.
pub async fn start_with(fixture: PathBuf, key: &'static str) -> Harness {
    start_swappable(fixture, key, Arc::new(ArcSwap::from_pointee(options()))).await
}

/// Like [`start_with`], the MMST listener and the MMSH router sharing `opts`, which the test
/// may replace while they run.
pub async fn start_swappable(
    fixture: PathBuf,
    key: &'static str,
    opts: Arc<ArcSwap<Options>>,
) -> Harness {
    let bus = Bus::new(BusOptions {
        unpublish_grace: Duration::from_secs(1),
        ..BusOptions::default()
    });
    let shutdown = CancellationToken::new();
    let publisher = shutdown.child_token();
    tokio::spawn(publish_loop(bus.clone(), fixture, key, publisher.clone()));
    let mmst_listener = TcpListener::bind("127.0.0.1:0").await.expect("bind mmst");
    let mmst = mmst_listener.local_addr().expect("addr");
    let (mmst_listener, _) = netutil::Listener::new("MMST", mmst_listener);
    tokio::spawn(mms_server::serve(
        mmst_listener,
        bus.clone(),
        Arc::clone(&opts),
        shutdown.clone(),
    ));
    let http_listener = TcpListener::bind("127.0.0.1:0").await.expect("bind http");
    let http = http_listener.local_addr().expect("addr");
    let app = mms_server::mmsh_layer_or_router(axum::Router::new(), bus.clone(), opts);
    let token = shutdown.clone();
    tokio::spawn(async move {
        let svc = app.into_make_service_with_connect_info::<SocketAddr>();
        let _ = axum::serve(http_listener, svc)
            .with_graceful_shutdown(token.cancelled_owned())
            .await;
    });
    // Let the publisher deliver the first GOP.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    Harness {
        bus,
        mmst,
        http,
        shutdown,
        publisher,
    }
}

/// Publishes the fixture in a loop, paced to its timestamps, until shutdown.
pub async fn publish_loop(bus: Bus, fixture: PathBuf, key: &str, shutdown: CancellationToken) {
    let data = Bytes::from(tokio::fs::read(&fixture).await.expect("fixture"));
    let file = flv::parse_file(&data).expect("fixture parses");
    let info = PublisherInfo {
        protocol: Protocol::Internal,
        peer: None,
        query: None,
    };
    let mut publisher = bus.publish(key, info).expect("publish");
    let start = tokio::time::Instant::now();
    // Each loop is exactly as long as its video, so frames stay on the 1/FPS grid across loops.
    let frames = file
        .tags
        .iter()
        .filter(|t| t.tag_type == 9 && !t.flags().sequence_header)
        .count() as u64;
    let loop_ms = frames * 1000 / u64::from(FPS);
    let mut offset = 0u64;
    loop {
        for t in &file.tags {
            let Some(tag) = to_bus_tag(t, offset) else {
                continue;
            };
            if tag.sequence_header && offset > 0 {
                continue;
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep_until(start + Duration::from_millis(tag.timestamp)) => {}
            }
            publisher.push(tag);
        }
        offset += loop_ms;
    }
}

fn to_bus_tag(t: &flv::FlvTag, offset: u64) -> Option<Tag> {
    let kind = match t.tag_type {
        8 => TagKind::Audio,
        9 => TagKind::Video,
        18 => TagKind::Script,
        _ => return None,
    };
    // As ingest does: the header parsed once, flags and media set from it.
    Some(Tag::classify(
        kind,
        u64::from(t.timestamp) + offset,
        t.body.clone(),
    ))
}

/// Runs a tool with a deadline; returns (success, stdout, stderr).
pub async fn run_tool(tool: &str, args: &[&str], deadline: Duration) -> (bool, String, String) {
    let child = Command::new(tool)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("tool spawns");
    let out = tokio::time::timeout(deadline, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("{tool} {args:?} did not finish within {deadline:?}"))
        .expect("tool output");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

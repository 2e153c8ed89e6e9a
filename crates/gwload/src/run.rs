//! One load run: optional publisher, ramped viewers, the measured window, and the report.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use rustls::ClientConfig;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::cli::{Options, Protocol};
use crate::net::Reader;
use crate::publish::Plan;
use crate::report::{percentile, Report};
use crate::rtmp_view::RtmpUrl;
use crate::viewer::{mode_for, Shared, ViewerStats};
use crate::{procstat, RunError, ViewError};

/// How often a progress line is printed.
const PROGRESS_EVERY: Duration = Duration::from_secs(5);
/// How long the publisher may take to be accepted.
const PUBLISH_TIMEOUT: Duration = Duration::from_secs(15);
/// Pause between the publisher's first keyframe and the first viewer.
const READY_GRACE: Duration = Duration::from_millis(300);
/// A viewer keeps up when it receives at least this share of the stream rate.
pub const KEEPING_UP: f64 = 0.9;

/// Runs a load test as `opts` says and returns its report (also printed and written as JSON
/// when asked). Must be called inside a multi-thread tokio runtime.
pub async fn run(opts: &Options) -> Result<Report, RunError> {
    procstat::raise_nofile();
    let shared = Arc::new(Shared::default());
    let tls = tls_config(opts)?;
    let publisher = start_publisher(opts, tls.clone()).await?;
    let expected_kbps = publisher.as_ref().map(|(plan, _)| plan.kbps);
    let server_rss_before = opts.server_pid.and_then(|p| procstat::rss_kb(Some(p)));

    let stats: Arc<Vec<Arc<ViewerStats>>> =
        Arc::new((0..opts.viewers).map(|_| Arc::default()).collect());
    let t0 = Instant::now();
    let ramp_time = Duration::from_secs_f64(opts.viewers as f64 / f64::from(opts.ramp));
    let end = t0 + ramp_time + opts.duration;
    let window_start = t0 + ramp_time + opts.warmup;
    let spawner = tokio::spawn(spawn_viewers(
        opts.clone(),
        tls,
        Arc::clone(&stats),
        Arc::clone(&shared),
        t0,
        end,
    ));

    let mut last_bytes = 0u64;
    let mut next_progress = t0 + PROGRESS_EVERY;
    while next_progress < window_start {
        tokio::time::sleep_until(next_progress).await;
        last_bytes = progress(&stats, &shared, t0, last_bytes);
        next_progress += PROGRESS_EVERY;
    }
    tokio::time::sleep_until(window_start).await;
    let bytes_start: Vec<u64> = stats
        .iter()
        .map(|s| s.bytes.load(Ordering::Relaxed))
        .collect();
    let server_cpu_start = opts.server_pid.and_then(|p| procstat::cpu_seconds(Some(p)));
    let self_cpu_start = procstat::cpu_seconds(None);
    let measured_from = Instant::now();
    shared.measuring.store(true, Ordering::Relaxed);
    while next_progress < end {
        tokio::time::sleep_until(next_progress).await;
        last_bytes = progress(&stats, &shared, t0, last_bytes);
        next_progress += PROGRESS_EVERY;
    }
    tokio::time::sleep_until(end).await;
    shared.measuring.store(false, Ordering::Relaxed);
    let window = measured_from.elapsed().as_secs_f64();
    let rates: Vec<f64> = stats
        .iter()
        .zip(&bytes_start)
        .map(|(s, b0)| (s.bytes.load(Ordering::Relaxed) - b0) as f64 * 8.0 / 1000.0 / window)
        .collect();
    let cpu = |pid: Option<u32>, start: Option<f64>| {
        Some((procstat::cpu_seconds(pid)? - start?) / window * 100.0)
    };
    let server_cpu = opts.server_pid.and_then(|p| cpu(Some(p), server_cpu_start));
    let self_cpu = cpu(None, self_cpu_start);
    let server_rss = opts.server_pid.and_then(|p| procstat::rss_kb(Some(p)));

    let handles = spawner.await.unwrap_or_default();
    for h in handles {
        let _ = h.await;
    }
    if let Some((_, task)) = publisher {
        task.abort();
    }

    let report = Report::build(
        opts,
        &stats,
        &shared,
        &rates,
        expected_kbps,
        window,
        [server_cpu, self_cpu],
        [server_rss, server_rss_before],
    );
    Ok(report)
}

/// One TLS client configuration for every `rtmps://` connection of the run (viewers and
/// publisher), when any URL needs it.
fn tls_config(opts: &Options) -> Result<Option<Arc<ClientConfig>>, RunError> {
    let urls = [Some(&opts.url), opts.publish_url.as_ref()];
    if !urls.iter().flatten().any(|u| u.starts_with("rtmps://")) {
        return Ok(None);
    }
    crate::tls::client_config(opts.ca_file.as_deref(), opts.insecure)
        .map(Some)
        .map_err(RunError::Usage)
}

async fn start_publisher(
    opts: &Options,
    tls: Option<Arc<ClientConfig>>,
) -> Result<Option<(Plan, JoinHandle<()>)>, RunError> {
    let (Some(file), Some(url)) = (&opts.publish, &opts.publish_url) else {
        return Ok(None);
    };
    let plan = Plan::load(file).map_err(|e| RunError::Publish(e.to_string()))?;
    let url = RtmpUrl::parse(url).map_err(|e| RunError::Publish(e.to_string()))?;
    let (tx, rx) = tokio::sync::oneshot::channel();
    let task_plan = plan.clone();
    let task = tokio::spawn(async move {
        if let Err(e) = crate::publish::run(&task_plan, &url, tls.as_ref(), tx).await {
            eprintln!("gwload: publisher stopped: {e}");
        }
    });
    match tokio::time::timeout(PUBLISH_TIMEOUT, rx).await {
        Ok(Ok(())) => {
            // Let the server ingest the keyframe just written before the first viewer asks.
            tokio::time::sleep(READY_GRACE).await;
            Ok(Some((plan, task)))
        }
        _ => {
            task.abort();
            Err(RunError::Publish(format!(
                "not accepted within {PUBLISH_TIMEOUT:?}"
            )))
        }
    }
}

async fn spawn_viewers(
    opts: Options,
    tls: Option<Arc<ClientConfig>>,
    stats: Arc<Vec<Arc<ViewerStats>>>,
    shared: Arc<Shared>,
    t0: Instant,
    end: Instant,
) -> Vec<JoinHandle<()>> {
    let rtmp_url = RtmpUrl::parse(&opts.url).ok();
    let url: Arc<str> = Arc::from(opts.url.as_str());
    let mut handles = Vec::with_capacity(stats.len());
    for (i, s) in stats.iter().enumerate() {
        let at = t0 + Duration::from_secs_f64(i as f64 / f64::from(opts.ramp));
        tokio::time::sleep_until(at).await;
        let (s, shared, url, rtmp_url, tls) = (
            Arc::clone(s),
            Arc::clone(&shared),
            Arc::clone(&url),
            rtmp_url.clone(),
            tls.clone(),
        );
        let protocol = opts.protocol;
        let reader = Reader::new(mode_for(i, opts.reader), Arc::clone(&s));
        let stall_at = opts.stall_after.map(|d| at + d);
        handles.push(tokio::spawn(async move {
            let view = async {
                match protocol {
                    Protocol::Rtmp => match &rtmp_url {
                        Some(u) => {
                            crate::rtmp_view::view(
                                u,
                                tls.as_ref(),
                                i as u64,
                                reader,
                                Arc::clone(&s),
                                Arc::clone(&shared),
                            )
                            .await
                        }
                        None => Err(ViewError::Url(format!(
                            "{url}: not rtmp(s)://host/app/stream"
                        ))),
                    },
                    Protocol::HttpFlv => {
                        crate::rtmp_view::view_flv(
                            &url,
                            reader,
                            Arc::clone(&s),
                            Arc::clone(&shared),
                        )
                        .await
                    }
                    Protocol::WsFlv => {
                        crate::rtmp_view::view_ws_flv(
                            &url,
                            reader,
                            Arc::clone(&s),
                            Arc::clone(&shared),
                        )
                        .await
                    }
                    Protocol::Hls => {
                        crate::hls::view(&url, Arc::clone(&s), Arc::clone(&shared)).await
                    }
                    Protocol::RtspTcp | Protocol::RtspUdp => {
                        let tcp = protocol == Protocol::RtspTcp;
                        crate::rtsp::view(&url, tcp, reader, Arc::clone(&s), Arc::clone(&shared))
                            .await
                    }
                }
            };
            if let Ok(Err(e)) = tokio::time::timeout_at(end, stall(view, stall_at, &s)).await {
                s.failed.store(true, Ordering::Relaxed);
                shared.error(format!("viewer {i}: {e}"));
            }
        }));
    }
    handles
}

/// Runs `view` until it ends or until `stall_at`; from then on the viewer is no longer polled,
/// so it reads nothing more, but its socket stays open until the caller drops the future (at
/// the end of the run). Every protocol's viewer stalls the same way, with no code of its own.
async fn stall<F>(view: F, stall_at: Option<Instant>, stats: &ViewerStats) -> F::Output
where
    F: std::future::Future,
{
    let Some(at) = stall_at else {
        return view.await;
    };
    tokio::pin!(view);
    tokio::select! {
        out = &mut view => out,
        () = tokio::time::sleep_until(at) => {
            stats.stalled.store(true, Ordering::Relaxed);
            std::future::pending().await
        }
    }
}

/// Prints one progress line; returns the byte total for the next line's rate.
fn progress(stats: &[Arc<ViewerStats>], shared: &Shared, t0: Instant, last: u64) -> u64 {
    let bytes: u64 = stats.iter().map(|s| s.bytes.load(Ordering::Relaxed)).sum();
    let playing = stats
        .iter()
        .filter(|s| s.playing.load(Ordering::Relaxed))
        .count();
    let failed = stats
        .iter()
        .filter(|s| s.failed.load(Ordering::Relaxed))
        .count();
    let mut lat = shared.latencies();
    lat.sort_unstable();
    let p50 =
        percentile(&lat, 50.0).map_or("-".to_owned(), |us| format!("{:.0} ms", us as f64 / 1000.0));
    eprintln!(
        "gwload: t={:>4.0}s playing {playing}/{} failed {failed} rx {:.1} Mbit/s latency p50 {p50}",
        t0.elapsed().as_secs_f64(),
        stats.len(),
        (bytes - last) as f64 * 8.0 / 1e6 / PROGRESS_EVERY.as_secs_f64(),
    );
    bytes
}

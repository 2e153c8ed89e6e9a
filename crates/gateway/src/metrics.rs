//! `GET /metrics`: Prometheus's text format, written by `prometheus-client` from what the bus,
//! the listeners, the RTSP receiver reports, the HLS muxers and the process say at scrape time.
//!
//! Nothing is counted twice: the figures live where they are made (atomics on each bus stream,
//! each listener's `ConnLimits`, each RTSP session's receiver reports), and a scrape reads them.
//! Series of a stream exist while the stream is on the bus, so the label sets are bounded by
//! `bus.max_streams`; protocols, listeners, reasons and error kinds are fixed sets.

use std::fmt;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use bus::{Protocol, BATCH_BUCKETS};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::exemplar::Exemplar;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

use crate::api::Limits;
use crate::monitor::{self, Reason};

/// The label pairs of one sample. Counter names are given without `_total`: the encoder adds it.
type Labels = Vec<(&'static str, String)>;

/// One metric family as the scrape found it.
struct Family {
    name: &'static str,
    help: &'static str,
    kind: Kind,
    samples: Vec<(Labels, Value)>,
}

#[derive(Clone, Copy)]
enum Kind {
    Gauge,
    Counter,
    Histogram,
}

enum Value {
    Int(u64),
    Float(f64),
    /// Non-cumulative counts per bucket of [`BATCH_BUCKETS`] (then the unbounded one), and the sum.
    Histogram(Vec<(f64, u64)>, u64, u64),
}

impl Family {
    fn new(name: &'static str, help: &'static str, kind: Kind) -> Family {
        Family {
            name,
            help,
            kind,
            samples: Vec::new(),
        }
    }

    fn push(&mut self, labels: Labels, value: Value) {
        self.samples.push((labels, value));
    }
}

/// What a scrape reads.
#[derive(Clone)]
pub(crate) struct Sources {
    pub limits: Limits,
    pub acceptors: Vec<tls::Acceptor>,
    pub health: Arc<monitor::Counts>,
    pub recorder: record::Recorder,
}

impl fmt::Debug for Sources {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sources").finish_non_exhaustive()
    }
}

/// The `/metrics` route; behind the API token unless `metrics.public`.
pub(crate) fn routes(sources: Sources, public: bool, access: &Arc<access::Access>) -> Router {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(Scrape(sources)));
    let router = Router::new()
        .route("/metrics", get(serve))
        .with_state(Arc::new(registry));
    if public {
        return router;
    }
    router.layer(axum::middleware::from_fn_with_state(
        Arc::clone(access),
        http_server::require_api_token,
    ))
}

async fn serve(State(registry): State<Arc<Registry>>) -> Response {
    let mut body = String::new();
    if prometheus_client::encoding::prometheus_text::encode(&mut body, &registry).is_err() {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    (
        [
            (
                header::CONTENT_TYPE,
                prometheus_client::encoding::prometheus_text::CONTENT_TYPE,
            ),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response()
}

#[derive(Debug)]
struct Scrape(Sources);

impl Collector for Scrape {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), fmt::Error> {
        for family in gather(&self.0) {
            let kind = match family.kind {
                Kind::Gauge => MetricType::Gauge,
                Kind::Counter => MetricType::Counter,
                Kind::Histogram => MetricType::Histogram,
            };
            let mut metric = encoder.encode_descriptor(family.name, family.help, None, kind)?;
            for (labels, value) in &family.samples {
                let mut sample = metric.encode_family(labels)?;
                match (family.kind, value) {
                    (Kind::Counter, Value::Int(v)) => {
                        sample.encode_counter::<NoLabelSet, _, u64>(v, None)?
                    }
                    (Kind::Counter, Value::Float(v)) => {
                        sample.encode_counter::<NoLabelSet, _, f64>(v, None)?
                    }
                    (_, Value::Int(v)) => sample.encode_gauge(&(*v as i64))?,
                    (_, Value::Float(v)) => sample.encode_gauge(v)?,
                    (_, Value::Histogram(buckets, sum, count)) => sample
                        .encode_histogram::<NoLabelSet>(
                            *sum as f64,
                            *count,
                            buckets,
                            None::<&std::collections::HashMap<usize, Exemplar<NoLabelSet, f64>>>,
                        )?,
                }
            }
        }
        Ok(())
    }
}

fn stream_labels(key: &str) -> Labels {
    let (app, stream) = key.split_once('/').unwrap_or((key, ""));
    vec![("app", app.to_owned()), ("stream", stream.to_owned())]
}

fn with(mut labels: Labels, key: &'static str, value: impl Into<String>) -> Labels {
    labels.push((key, value.into()));
    labels
}

/// The egress protocols a viewer can use (the bus's internal remuxers are not viewers).
fn viewer_protocols() -> impl Iterator<Item = Protocol> {
    Protocol::ALL
        .into_iter()
        .filter(|p| *p != Protocol::Internal)
}

fn gather(src: &Sources) -> Vec<Family> {
    let mut out = Vec::new();
    streams(src, &mut out);
    listeners(src, &mut out);
    recording(src, &mut out);
    process(src, &mut out);
    out
}

fn streams(src: &Sources, out: &mut Vec<Family>) {
    use Kind::{Counter, Gauge, Histogram};
    let mut live = Family::new(
        "gateway_stream_live",
        "1 while a publisher (or its backup) feeds the stream.",
        Gauge,
    );
    let mut bytes_in = Family::new(
        "gateway_stream_ingest_bytes",
        "Payload bytes the publisher sent.",
        Counter,
    );
    let mut bitrate = Family::new(
        "gateway_stream_ingest_bitrate_bps",
        "Ingest payload bitrate over the last second, bits per second.",
        Gauge,
    );
    let mut bytes_out = Family::new(
        "gateway_stream_egress_bytes",
        "Bytes written to the stream's viewers, by protocol.",
        Counter,
    );
    let mut frames = Family::new(
        "gateway_stream_frames",
        "Audio and video frames received (sequence headers excluded).",
        Counter,
    );
    let mut keyframes = Family::new(
        "gateway_stream_keyframes",
        "Video keyframes received.",
        Counter,
    );
    let mut gop = Family::new(
        "gateway_stream_keyframe_interval_seconds",
        "Stream time between the last two video keyframes.",
        Gauge,
    );
    let mut corrections = Family::new(
        "gateway_stream_timestamp_corrections",
        "Timestamp jumps the bus corrected.",
        Counter,
    );
    let mut viewers = Family::new("gateway_stream_viewers", "Viewers now, by protocol.", Gauge);
    let mut dropped = Family::new(
        "gateway_stream_dropped_tags",
        "Tags skipped by viewers and remuxers that fell a ring behind.",
        Counter,
    );
    let mut stalled = Family::new(
        "gateway_stream_stalled_viewers",
        "Viewers dropped because their socket accepted nothing for the send timeout, by protocol.",
        Counter,
    );
    let mut idle = Family::new(
        "gateway_stream_publisher_idle_seconds",
        "Time since the stream last received a tag.",
        Gauge,
    );
    let mut healthy = Family::new(
        "gateway_stream_healthy",
        "1 when the last health check found nothing wrong with the stream ([health]).",
        Gauge,
    );
    let mut unhealthy = Family::new(
        "gateway_stream_unhealthy",
        "Times the stream became unhealthy, by reason.",
        Counter,
    );
    let mut batches = Family::new(
        "gateway_write_batch_units",
        "Tags or RTP access units per write to a viewer, by protocol.",
        Histogram,
    );
    let mut rr_lost = Family::new(
        "gateway_rtsp_receiver_fraction_lost",
        "Highest fraction lost in the RTSP viewers' latest receiver reports (0 to 1), by track.",
        Gauge,
    );
    let mut rr_cumulative = Family::new(
        "gateway_rtsp_receiver_cumulative_lost",
        "Packets lost, summed over the RTSP viewers' latest receiver reports, by track.",
        Gauge,
    );
    let mut rr_jitter = Family::new("gateway_rtsp_receiver_jitter", "Highest interarrival jitter in the RTSP viewers' latest receiver reports, in RTP timestamp units, by track.", Gauge);
    let mut rtsp_sessions = Family::new(
        "gateway_rtsp_sessions",
        "RTSP sessions set up on the stream.",
        Gauge,
    );
    let mut hls_segments = Family::new(
        "gateway_hls_segments",
        "HLS segments the stream's muxer finished since it started.",
        Counter,
    );
    let mut hls_duration = Family::new(
        "gateway_hls_segment_duration_seconds",
        "Duration of the newest finished HLS segment.",
        Gauge,
    );
    let unhealthy_counts = src.health.snapshot();
    let all = src.limits.bus.streams();
    for stream in &all {
        let s = stream.stats();
        let l = stream_labels(stream.key());
        live.push(l.clone(), Value::Int(u64::from(s.live)));
        bytes_in.push(l.clone(), Value::Int(s.bytes_in));
        bitrate.push(l.clone(), Value::Int(s.bitrate_bps));
        for p in viewer_protocols() {
            let pl = with(l.clone(), "protocol", p.as_str());
            bytes_out.push(pl.clone(), Value::Int(s.bytes_out_of(p)));
            viewers.push(pl.clone(), Value::Int(s.viewers_of(p)));
            stalled.push(pl.clone(), Value::Int(s.stalled_viewers_of(p)));
            let b = s.batches_of(p);
            if b.count() > 0 {
                let mut buckets: Vec<(f64, u64)> = Vec::new();
                let mut previous = 0;
                for (i, le) in BATCH_BUCKETS.iter().enumerate() {
                    buckets.push((*le as f64, b.cumulative[i] - previous));
                    previous = b.cumulative[i];
                }
                buckets.push((f64::INFINITY, b.count() - previous));
                batches.push(pl, Value::Histogram(buckets, b.sum, b.count()));
            }
        }
        frames.push(with(l.clone(), "kind", "video"), Value::Int(s.video_frames));
        frames.push(with(l.clone(), "kind", "audio"), Value::Int(s.audio_frames));
        keyframes.push(l.clone(), Value::Int(s.keyframes));
        if let Some(i) = s.keyframe_interval {
            gop.push(l.clone(), Value::Float(i.as_secs_f64()));
        }
        corrections.push(l.clone(), Value::Int(s.timestamp_corrections));
        dropped.push(l.clone(), Value::Int(s.dropped_tags));
        if let Some(d) = s.since_last_tag {
            idle.push(l.clone(), Value::Float(d.as_secs_f64()));
        }
        healthy.push(l.clone(), Value::Int(u64::from(stream.health().is_empty())));
        let counted = unhealthy_counts
            .get(stream.key())
            .copied()
            .unwrap_or([0; Reason::ALL.len()]);
        for (r, n) in Reason::ALL.iter().zip(counted) {
            unhealthy.push(with(l.clone(), "reason", r.as_str()), Value::Int(n));
        }
        let sessions = rtsp_server::sessions(stream);
        if !sessions.is_empty() {
            rtsp_sessions.push(l.clone(), Value::Int(sessions.len() as u64));
        }
        let mut tracks: Vec<usize> = sessions
            .iter()
            .flat_map(|s| s.tracks.iter().map(|t| t.track))
            .collect();
        tracks.sort_unstable();
        tracks.dedup();
        for track in tracks {
            let reports = sessions
                .iter()
                .flat_map(|s| s.tracks.iter())
                .filter(|t| t.track == track);
            let (mut lost, mut cumulative, mut jitter) = (0.0f64, 0i64, 0u32);
            for t in reports {
                lost = lost.max(t.fraction_lost);
                cumulative += i64::from(t.cumulative_lost.max(0));
                jitter = jitter.max(t.jitter);
            }
            let tl = with(l.clone(), "track", track.to_string());
            rr_lost.push(tl.clone(), Value::Float(lost));
            rr_cumulative.push(tl.clone(), Value::Int(cumulative as u64));
            rr_jitter.push(tl, Value::Int(u64::from(jitter)));
        }
        if let Some(h) = hls_server::stats(stream) {
            hls_segments.push(l.clone(), Value::Int(h.segments));
            if let Some(d) = h.last_segment {
                hls_duration.push(l, Value::Float(d.as_secs_f64()));
            }
        }
    }
    let mut count = Family::new(
        "gateway_streams",
        "Streams on the bus (live, in their grace period, or awaited by players).",
        Gauge,
    );
    count.push(Vec::new(), Value::Int(all.len() as u64));
    out.extend([
        count,
        live,
        bytes_in,
        bitrate,
        bytes_out,
        frames,
        keyframes,
        gop,
        corrections,
        viewers,
        dropped,
        stalled,
        idle,
        healthy,
        unhealthy,
        batches,
        rr_lost,
        rr_cumulative,
        rr_jitter,
        rtsp_sessions,
        hls_segments,
        hls_duration,
    ]);
}

/// The recorder's counters (`[record]`): zero while no rule records anything.
fn recording(src: &Sources, out: &mut Vec<Family>) {
    use Kind::{Counter, Gauge};
    let s = src.recorder.stats();
    for (name, help, kind, v) in [
        (
            "gateway_recording_streams",
            "Streams being recorded now.",
            Gauge,
            s.recording_streams,
        ),
        (
            "gateway_recording_bytes",
            "Bytes written to recordings.",
            Counter,
            s.bytes,
        ),
        (
            "gateway_recording_segments",
            "Recording files finished.",
            Counter,
            s.segments,
        ),
        (
            "gateway_recording_dropped_tags",
            "Tags skipped because a recording's writer fell behind (the disk was slow).",
            Counter,
            s.dropped_tags,
        ),
        (
            "gateway_recording_write_errors",
            "Recording writes or file creations that failed.",
            Counter,
            s.write_errors,
        ),
        (
            "gateway_recording_deleted",
            "Recording files deleted by retention.",
            Counter,
            s.deleted,
        ),
    ] {
        let mut f = Family::new(name, help, kind);
        f.push(Vec::new(), Value::Int(v));
        out.push(f);
    }
}

fn listeners(src: &Sources, out: &mut Vec<Family>) {
    use Kind::{Counter, Gauge};
    let mut open = Family::new(
        "gateway_listener_connections_open",
        "Connections open now.",
        Gauge,
    );
    let mut accepted = Family::new(
        "gateway_listener_connections_accepted",
        "Connections admitted.",
        Counter,
    );
    let mut refused = Family::new(
        "gateway_listener_connections_refused",
        "Connections refused by a limit, by reason.",
        Counter,
    );
    let mut timeouts = Family::new(
        "gateway_listener_timeouts",
        "Connections closed by a timer, by kind.",
        Counter,
    );
    let mut oversized = Family::new(
        "gateway_listener_oversized_requests",
        "Connections closed for a request over the size limit.",
        Counter,
    );
    let mut handshakes = Family::new(
        "gateway_listener_handshake_failures",
        "Handshakes (RTMP, or TLS on the TLS listeners) that failed or timed out.",
        Counter,
    );
    let mut errors = Family::new(
        "gateway_listener_protocol_errors",
        "Connections ended because the peer broke the protocol, by kind.",
        Counter,
    );
    for limits in &src.limits.listeners {
        let s = limits.stats();
        let l: Labels = vec![("listener", limits.listener().to_ascii_lowercase())];
        open.push(l.clone(), Value::Int(s.open as u64));
        accepted.push(l.clone(), Value::Int(s.accepted));
        for (reason, n) in [
            ("max_connections", s.refused_max_connections),
            ("max_connections_per_ip", s.refused_max_connections_per_ip),
            ("connection_rate_per_ip", s.refused_connection_rate),
        ] {
            refused.push(with(l.clone(), "reason", reason), Value::Int(n));
        }
        timeouts.push(
            with(l.clone(), "kind", "request"),
            Value::Int(s.request_timeouts),
        );
        timeouts.push(with(l.clone(), "kind", "idle"), Value::Int(s.idle_timeouts));
        oversized.push(l.clone(), Value::Int(s.oversized_requests));
        handshakes.push(l.clone(), Value::Int(s.handshake_failures));
        for (kind, n) in limits.protocol_errors() {
            errors.push(with(l.clone(), "kind", kind), Value::Int(n));
        }
    }
    for a in &src.acceptors {
        let l: Labels = vec![("listener", a.listener().to_ascii_lowercase())];
        handshakes.push(l, Value::Int(a.failed_handshakes()));
    }
    let mut setups = Family::new(
        "gateway_rtsp_setups_refused",
        "RTSP SETUPs refused by a limit, by reason.",
        Counter,
    );
    if let Some(rtsp) = &src.limits.rtsp {
        let refusals = &rtsp.load().setup_refusals;
        let r = refusals.stats();
        for (reason, n) in [
            ("sessions_per_ip", r.sessions_per_ip),
            ("sessions_per_connection", r.sessions_per_connection),
            ("destination", r.destination),
            ("client_port", r.client_port),
            ("no_free_ports", r.no_free_ports),
        ] {
            setups.push(vec![("reason", reason.to_owned())], Value::Int(n));
        }
    }
    out.extend([
        open, accepted, refused, timeouts, oversized, handshakes, errors, setups,
    ]);
}

fn process(_src: &Sources, out: &mut Vec<Family>) {
    use Kind::Gauge;
    let mut rss = Family::new(
        "gateway_process_resident_memory_bytes",
        "Resident memory of the gateway process.",
        Gauge,
    );
    if let Some(bytes) = resident_bytes() {
        rss.push(Vec::new(), Value::Int(bytes));
    }
    let mut fds = Family::new(
        "gateway_process_open_fds",
        "File descriptors the gateway process holds.",
        Gauge,
    );
    if let Ok(dir) = std::fs::read_dir("/proc/self/fd") {
        fds.push(Vec::new(), Value::Int(dir.count() as u64));
    }
    let mut tasks = Family::new(
        "gateway_tokio_alive_tasks",
        "Tokio tasks alive in the gateway's runtime.",
        Gauge,
    );
    let mut workers = Family::new(
        "gateway_tokio_workers",
        "Worker threads of the gateway's runtime.",
        Gauge,
    );
    if let Ok(handle) = tokio::runtime::Handle::try_current() {
        let m = handle.metrics();
        tasks.push(Vec::new(), Value::Int(m.num_alive_tasks() as u64));
        workers.push(Vec::new(), Value::Int(m.num_workers() as u64));
    }
    out.extend([rss, fds, tasks, workers]);
}

/// Resident set size from `/proc/self/statm` (pages × page size).
fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    // SAFETY: sysconf has no preconditions; it only reads a system constant.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    Some(pages * u64::try_from(page).ok()?)
}

//! Stream health: once a second every live stream is judged against the `[health]` limits from
//! what the bus and the RTSP receiver reports say; the reasons are kept on the stream (for
//! `/api/streams`), transitions are logged, counted (for `/metrics`) and posted to
//! `health.on_stream_unhealthy`.
//!
//! [`assess`] is the judgement, a pure function of the stream's figures; the task around it only
//! reads the clock, the bus and the receiver reports.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use bus::{Bus, StreamStats};
use serde_json::json;
use tokio_util::sync::CancellationToken;

/// How often streams are judged.
const INTERVAL: Duration = Duration::from_secs(1);

/// Why a stream is unhealthy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    /// Its publisher has sent nothing for `health.publisher_silent_secs`.
    PublisherSilent,
    /// Its keyframes are further apart than `health.max_keyframe_interval_secs`.
    KeyframeInterval,
    /// An RTSP viewer reports more loss than `health.max_viewer_loss_percent`.
    ViewerLoss,
}

impl Reason {
    /// Every reason, in the order they are reported.
    pub const ALL: [Reason; 3] = [
        Reason::PublisherSilent,
        Reason::KeyframeInterval,
        Reason::ViewerLoss,
    ];

    /// The name used in the API, the metrics and the hook.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::PublisherSilent => "publisher_silent",
            Reason::KeyframeInterval => "keyframe_interval",
            Reason::ViewerLoss => "viewer_loss",
        }
    }
}

/// The `[health]` limits; `None` turns a check off.
#[derive(Debug, Clone)]
pub struct Limits {
    pub publisher_silent: Option<Duration>,
    pub max_keyframe_interval: Option<Duration>,
    /// As a fraction (0.05 for 5 %).
    pub max_viewer_loss: Option<f64>,
    pub on_stream_unhealthy: Option<String>,
}

impl Limits {
    pub fn from_config(h: &gateway_config::HealthSection) -> Limits {
        let secs = |s: u64| (s > 0).then(|| Duration::from_secs(s));
        Limits {
            publisher_silent: secs(h.publisher_silent_secs),
            max_keyframe_interval: secs(h.max_keyframe_interval_secs),
            max_viewer_loss: (h.max_viewer_loss_percent > 0)
                .then(|| f64::from(h.max_viewer_loss_percent) / 100.0),
            on_stream_unhealthy: Some(h.on_stream_unhealthy.clone()).filter(|u| !u.is_empty()),
        }
    }
}

/// Judges one stream: `worst_loss` is the highest fraction lost any of its RTSP viewers reported
/// in its latest receiver report. A stream that is not live is never unhealthy (it has no
/// publisher to blame; its viewers already know it ended).
pub fn assess(stats: &StreamStats, worst_loss: Option<f64>, limits: &Limits) -> Vec<Reason> {
    let mut reasons = Vec::new();
    if !stats.live {
        return reasons;
    }
    let silent = match (limits.publisher_silent, stats.since_last_tag, stats.uptime) {
        (Some(limit), Some(since), _) => since > limit,
        // Live but not one tag yet: silent once it has been live that long.
        (Some(limit), None, Some(up)) => up > limit,
        _ => false,
    };
    if silent {
        reasons.push(Reason::PublisherSilent);
    }
    if let (Some(limit), Some(interval)) = (limits.max_keyframe_interval, stats.keyframe_interval) {
        if interval > limit {
            reasons.push(Reason::KeyframeInterval);
        }
    }
    if let (Some(limit), Some(loss)) = (limits.max_viewer_loss, worst_loss) {
        if loss > limit {
            reasons.push(Reason::ViewerLoss);
        }
    }
    reasons
}

/// Times each stream became unhealthy for each reason, for `/metrics`. Entries of streams that
/// left the bus are dropped, so it holds at most `bus.max_streams` of them.
#[derive(Debug, Default)]
pub struct Counts {
    by_stream: Mutex<HashMap<String, [u64; Reason::ALL.len()]>>,
}

impl Counts {
    /// Per stream key, the count of each reason (indexed like [`Reason::ALL`]).
    pub fn snapshot(&self) -> HashMap<String, [u64; Reason::ALL.len()]> {
        self.by_stream
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

/// The highest fraction lost in any RTSP viewer's latest receiver report for `stream`.
fn worst_loss(stream: &bus::Stream) -> Option<f64> {
    rtsp_server::sessions(stream)
        .iter()
        .flat_map(|s| s.tracks.iter().map(|t| t.fraction_lost))
        .fold(None, |worst: Option<f64>, f| {
            Some(worst.map_or(f, |w| w.max(f)))
        })
}

/// Judges every stream once a second until `shutdown`, by the limits in `limits` at that
/// moment (a configuration reload replaces them).
pub async fn run(
    bus: Bus,
    limits: Arc<RwLock<Limits>>,
    access: Arc<access::Access>,
    counts: Arc<Counts>,
    shutdown: CancellationToken,
) {
    let mut tick = tokio::time::interval(INTERVAL);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.cancelled() => return,
        }
        let limits = limits.read().unwrap_or_else(|p| p.into_inner()).clone();
        let streams = bus.streams();
        let mut by_stream = counts.by_stream.lock().unwrap_or_else(|p| p.into_inner());
        let keys: HashSet<&str> = streams.iter().map(|s| s.key()).collect();
        by_stream.retain(|key, _| keys.contains(key.as_str()));
        for stream in &streams {
            let reasons = assess(&stream.stats(), worst_loss(stream), &limits);
            let names: Vec<&'static str> = reasons.iter().map(|r| r.as_str()).collect();
            let before = stream.health();
            if names == before {
                continue;
            }
            let counted = by_stream.entry(stream.key().to_owned()).or_default();
            for (i, r) in Reason::ALL.iter().enumerate() {
                if names.contains(&r.as_str()) && !before.contains(&r.as_str()) {
                    counted[i] += 1;
                }
            }
            let (app, name) = stream.key().split_once('/').unwrap_or((stream.key(), ""));
            let action = if names.is_empty() {
                tracing::info!(stream = %stream.key(), "stream healthy again");
                "healthy"
            } else {
                tracing::warn!(stream = %stream.key(), reasons = %names.join(","), "stream unhealthy");
                "unhealthy"
            };
            if let Some(url) = &limits.on_stream_unhealthy {
                let body =
                    json!({ "action": action, "app": app, "stream": name, "reasons": names });
                access.post_event(url, &body);
            }
            stream.set_health(names);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits {
            publisher_silent: Some(Duration::from_secs(5)),
            max_keyframe_interval: Some(Duration::from_secs(10)),
            max_viewer_loss: Some(0.05),
            on_stream_unhealthy: None,
        }
    }

    fn live() -> StreamStats {
        let bus = Bus::default();
        let info = bus::PublisherInfo {
            protocol: bus::Protocol::Rtmp,
            peer: None,
            query: None,
        };
        let _publisher = bus.publish("live/h", info).expect("publish");
        let mut stats = bus.stream("live/h").expect("stream").stats();
        stats.since_last_tag = Some(Duration::from_millis(40));
        stats.keyframe_interval = Some(Duration::from_secs(2));
        stats
    }

    #[test]
    fn a_steady_stream_is_healthy() {
        assert!(assess(&live(), Some(0.01), &limits()).is_empty());
    }

    #[test]
    fn each_limit_gives_its_reason() {
        let mut s = live();
        s.since_last_tag = Some(Duration::from_secs(6));
        assert_eq!(assess(&s, None, &limits()), [Reason::PublisherSilent]);
        let mut s = live();
        s.keyframe_interval = Some(Duration::from_secs(12));
        assert_eq!(assess(&s, None, &limits()), [Reason::KeyframeInterval]);
        assert_eq!(assess(&live(), Some(0.08), &limits()), [Reason::ViewerLoss]);
    }

    #[test]
    fn a_stream_live_without_a_tag_turns_silent_after_the_limit() {
        let mut s = live();
        s.since_last_tag = None;
        s.uptime = Some(Duration::from_secs(1));
        assert!(assess(&s, None, &limits()).is_empty());
        s.uptime = Some(Duration::from_secs(6));
        assert_eq!(assess(&s, None, &limits()), [Reason::PublisherSilent]);
    }

    #[test]
    fn checks_that_are_off_and_streams_that_are_not_live_never_flag() {
        let mut s = live();
        s.since_last_tag = Some(Duration::from_secs(60));
        s.keyframe_interval = Some(Duration::from_secs(60));
        let off = Limits {
            publisher_silent: None,
            max_keyframe_interval: None,
            max_viewer_loss: None,
            on_stream_unhealthy: None,
        };
        assert!(assess(&s, Some(1.0), &off).is_empty());
        s.live = false;
        assert!(assess(&s, Some(1.0), &limits()).is_empty());
    }

    #[tokio::test]
    async fn new_limits_apply_from_the_next_pass() {
        let bus = Bus::default();
        let info = bus::PublisherInfo {
            protocol: bus::Protocol::Rtmp,
            peer: None,
            query: None,
        };
        let _publisher = bus.publish("live/h", info).expect("publish");
        let off = Limits {
            publisher_silent: None,
            max_keyframe_interval: None,
            max_viewer_loss: None,
            on_stream_unhealthy: None,
        };
        let shared = Arc::new(RwLock::new(off));
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(run(
            bus.clone(),
            Arc::clone(&shared),
            access::Access::open(),
            Arc::default(),
            shutdown.clone(),
        ));
        let stream = bus.stream("live/h").expect("stream");
        tokio::time::sleep(Duration::from_millis(1200)).await;
        assert!(stream.health().is_empty(), "no check is on");
        shared.write().expect("not poisoned").publisher_silent = Some(Duration::ZERO);
        tokio::time::sleep(Duration::from_millis(1200)).await;
        assert_eq!(stream.health(), ["publisher_silent"]);
        shutdown.cancel();
        task.await.expect("the monitor stops");
    }
}

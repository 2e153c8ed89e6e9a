//! The end-of-run report: a table for people and a JSON object for scripts.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use serde_json::{json, Value};

use crate::cli::Options;
use crate::run::KEEPING_UP;
use crate::viewer::{Shared, ViewerStats};

/// The `p`th percentile (nearest rank) of sorted `v`.
pub fn percentile(v: &[u64], p: f64) -> Option<u64> {
    if v.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * v.len() as f64).ceil() as usize;
    v.get(rank.clamp(1, v.len()) - 1).copied()
}

fn percentile_f(v: &[f64], p: f64) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * v.len() as f64).ceil() as usize;
    v.get(rank.clamp(1, v.len()) - 1).copied()
}

/// The table's row order: the CLI contract's keys first, then the extras.
const TABLE_ORDER: &[&str] = &[
    "protocol",
    "url",
    "viewers_requested",
    "viewers_connected",
    "viewers_keeping_up",
    "viewers_failed",
    "viewers_stalled",
    "duration_s",
    "measured_s",
    "stream_kbps_expected",
    "kbps_per_viewer_p50",
    "kbps_per_viewer_min",
    "latency_ms_p50",
    "latency_ms_p99",
    "latency_samples",
    "ttff_ms_p50",
    "ttff_ms_p99",
    "server_cpu_percent",
    "server_rss_kb",
    "server_rss_kb_before",
    "loadtool_cpu_percent",
];

/// What a run measured.
#[derive(Debug, Clone)]
pub struct Report {
    /// The JSON object (the keys of the CLI contract plus a few more).
    pub json: Value,
    /// The first few viewer error messages.
    pub errors: Vec<String>,
}

impl Report {
    /// Builds the report; `rates` are per-viewer kbit/s over the measured window.
    #[allow(clippy::too_many_arguments)]
    pub fn build(
        opts: &Options,
        stats: &[Arc<ViewerStats>],
        shared: &Shared,
        rates: &[f64],
        expected_kbps: Option<f64>,
        window_s: f64,
        [server_cpu, self_cpu]: [Option<f64>; 2],
        [server_rss, server_rss_before]: [Option<u64>; 2],
    ) -> Report {
        let connected: Vec<usize> = (0..stats.len())
            .filter(|&i| stats[i].playing.load(Ordering::Relaxed))
            .collect();
        // A viewer still waiting for its first frame at the end failed to connect, too.
        let failed = stats
            .iter()
            .filter(|s| s.failed.load(Ordering::Relaxed) || !s.playing.load(Ordering::Relaxed))
            .count();
        let mut connected_rates: Vec<f64> = connected.iter().map(|&i| rates[i]).collect();
        connected_rates.sort_by(f64::total_cmp);
        let expected = expected_kbps.or_else(|| percentile_f(&connected_rates, 50.0));
        let keeping_up = expected.map_or(0, |e| {
            rates.iter().filter(|r| **r >= KEEPING_UP * e).count()
        });
        let mut ttff: Vec<u64> = stats
            .iter()
            .map(|s| s.ttff_us.load(Ordering::Relaxed))
            .filter(|t| *t > 0)
            .collect();
        ttff.sort_unstable();
        let mut lat = shared.latencies();
        lat.sort_unstable();
        let publishing = opts.publish.is_some();
        let ms = |v: Option<u64>| v.map(|us| (us as f64 / 1000.0 * 10.0).round() / 10.0);
        let lat_ms = |p| {
            if publishing {
                ms(percentile(&lat, p))
            } else {
                None
            }
        };
        let round1 = |v: Option<f64>| v.map(|x| (x * 10.0).round() / 10.0);
        let json = json!({
            "protocol": opts.protocol.name(),
            "url": opts.url,
            "viewers_requested": opts.viewers,
            "viewers_connected": connected.len(),
            "viewers_keeping_up": keeping_up,
            "viewers_failed": failed,
            "viewers_stalled": stats.iter().filter(|s| s.stalled.load(Ordering::Relaxed)).count(),
            "stall_after_s": opts.stall_after.map(|d| d.as_secs_f64()),
            "duration_s": opts.duration.as_secs_f64(),
            "measured_s": (window_s * 10.0).round() / 10.0,
            "stream_kbps_expected": round1(expected),
            "kbps_per_viewer_p50": round1(percentile_f(&connected_rates, 50.0)),
            "kbps_per_viewer_min": round1(connected_rates.first().copied()),
            "latency_ms_p50": lat_ms(50.0),
            "latency_ms_p99": lat_ms(99.0),
            "latency_samples": lat.len(),
            "ttff_ms_p50": ms(percentile(&ttff, 50.0)),
            "ttff_ms_p99": ms(percentile(&ttff, 99.0)),
            "server_cpu_percent": round1(server_cpu),
            "server_rss_kb": server_rss,
            "server_rss_kb_before": server_rss_before,
            "loadtool_cpu_percent": round1(self_cpu),
            "errors": shared.errors(),
        });
        Report {
            json,
            errors: shared.errors(),
        }
    }

    /// The report as an aligned two-column table.
    pub fn table(&self) -> String {
        let mut out = String::new();
        if let Value::Object(map) = &self.json {
            for k in TABLE_ORDER {
                let Some(v) = map.get(*k) else { continue };
                let v = match v {
                    Value::String(s) => s.clone(),
                    Value::Null => "-".to_owned(),
                    other => other.to_string(),
                };
                out.push_str(&format!("{k:<24} {v}\n"));
            }
        }
        for e in &self.errors {
            out.push_str(&format!("{:<24} {e}\n", "error"));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_table() {
        let v: Vec<u64> = (1..=100).collect();
        let cases = [
            (50.0, Some(50)),
            (99.0, Some(99)),
            (100.0, Some(100)),
            (0.0, Some(1)),
        ];
        for (p, want) in cases {
            assert_eq!(percentile(&v, p), want, "{p}");
        }
        assert_eq!(percentile(&[], 50.0), None);
        assert_eq!(percentile(&[7], 99.0), Some(7));
    }
}

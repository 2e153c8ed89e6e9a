//! The API routes that join several shells' data, which only the gateway may know together:
//!
//! - `GET /api/streams/{app}/{name}/rtsp`: the RTSP sessions of a stream with their
//!   receiver-report figures (the HTTP listener and the RTSP session table);
//! - `GET /api/limits`: every limit that keeps one client from taking more than its share, with
//!   how often each refused or cut a client since start, for every listener, the RTSP sessions
//!   and the bus. It names no client address.
//! - `POST /api/reload`: re-reads the configuration file ([`crate::reload`]); 200 with
//!   `{"applied": [...], "needs_restart": [...], "failed": [...]}`, 400 with the file/line/key
//!   error when the file is refused, 409 when the gateway was started without a file.
//!
//! The control routes (clients, kicks, the server's facts) are in [`crate::control`].
//!
//! Like every `/api/*` route they need the API token when one is set.

use std::sync::Arc;

use arc_swap::ArcSwap;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use bus::Bus;
use http_server::json_error;
use netutil::{ConnLimits, ListenerStats};
use rtsp_server::{SessionInfo, SetupRefusalStats};
use serde_json::{json, Value};

use crate::reload::{ReloadError, Reloader};

/// What `/api/limits` reads: the admission of every listener, the RTSP SETUP refusals and the
/// bus's stream caps.
#[derive(Clone)]
pub(crate) struct Limits {
    pub listeners: Vec<ConnLimits>,
    /// The RTSP shell's options in force (its SETUP refusals, `max_sessions_per_ip`), if RTSP
    /// is enabled.
    pub rtsp: Option<Arc<ArcSwap<rtsp_server::Options>>>,
    pub bus: Bus,
}

impl Limits {
    pub fn new(bus: Bus) -> Limits {
        Limits {
            listeners: Vec::new(),
            rtsp: None,
            bus,
        }
    }
}

pub(crate) fn routes(
    bus: Bus,
    rtsp: bool,
    limits: Limits,
    access: &Arc<access::Access>,
    reloader: &Arc<Reloader>,
) -> Router {
    let mut router = Router::new()
        .route("/api/limits", get(limits_json).with_state(Arc::new(limits)))
        .route("/api/reload", post(reload).with_state(Arc::clone(reloader)));
    if rtsp {
        router = router.route(
            "/api/streams/{app}/{name}/rtsp",
            get(rtsp_sessions).with_state(bus),
        );
    }
    router.layer(axum::middleware::from_fn_with_state(
        Arc::clone(access),
        http_server::require_api_token,
    ))
}

pub(crate) fn json_response(body: &Value) -> Response {
    (
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body.to_string(),
    )
        .into_response()
}

async fn reload(State(reloader): State<Arc<Reloader>>) -> Response {
    match reloader.reload_file() {
        Ok(r) => json_response(&json!({
            "applied": r.applied,
            "needs_restart": r.needs_restart,
            "failed": r.failed,
        })),
        Err(err @ ReloadError::NoFile) => json_error(StatusCode::CONFLICT, &err.to_string()),
        Err(err) => json_error(StatusCode::BAD_REQUEST, &err.to_string()),
    }
}

async fn limits_json(State(limits): State<Arc<Limits>>) -> Response {
    json_response(&limits_body(&limits))
}

pub(crate) fn limits_body(limits: &Limits) -> Value {
    let listeners: serde_json::Map<String, Value> = limits
        .listeners
        .iter()
        .map(|l| (l.listener().to_ascii_lowercase(), listener_json(&l.stats())))
        .collect();
    let mut body = json!({
        "listeners": listeners,
        "streams": streams_json(&limits.bus.limit_stats()),
    });
    if let Some(rtsp) = &limits.rtsp {
        let rtsp = rtsp.load();
        body["rtsp_sessions"] = rtsp_json(&rtsp.setup_refusals.stats(), rtsp.max_sessions_per_ip);
    }
    body
}

fn listener_json(s: &ListenerStats) -> Value {
    let a = &s.admission;
    json!({
        "limits": {
            "max_connections": a.max_connections,
            "max_connections_per_ip": a.max_connections_per_ip,
            "connection_rate_per_ip": a.connection_rate_per_ip,
            "connection_burst_per_ip": a.connection_burst_per_ip,
        },
        "open": s.open,
        "accepted": s.accepted,
        "refused": {
            "max_connections": s.refused_max_connections,
            "max_connections_per_ip": s.refused_max_connections_per_ip,
            "connection_rate_per_ip": s.refused_connection_rate,
        },
        "rate_untracked": s.rate_untracked,
        "timeouts": { "request": s.request_timeouts, "idle": s.idle_timeouts },
        "oversized_requests": s.oversized_requests,
    })
}

fn rtsp_json(s: &SetupRefusalStats, max_sessions_per_ip: usize) -> Value {
    json!({
        "limits": { "max_sessions_per_ip": max_sessions_per_ip, "max_sessions_per_connection": 1 },
        "setups_refused": {
            "max_sessions_per_ip": s.sessions_per_ip,
            "max_sessions_per_connection": s.sessions_per_connection,
            "destination": s.destination,
            "client_port": s.client_port,
            "no_free_ports": s.no_free_ports,
        },
    })
}

fn streams_json(s: &bus::StreamLimitStats) -> Value {
    json!({
        "limits": {
            "max_streams": s.max_streams,
            "max_streams_per_app": s.max_streams_per_app,
        },
        "streams": s.streams,
        "refused": {
            "max_streams": s.refused_max_streams,
            "max_streams_per_app": s.refused_max_streams_per_app,
        },
    })
}

async fn rtsp_sessions(
    State(bus): State<Bus>,
    Path((app, name)): Path<(String, String)>,
) -> Response {
    let key = format!("{app}/{name}");
    let Some(stream) = bus.stream(&key) else {
        // The key is not repeated: error bodies never echo what the client sent.
        return json_error(StatusCode::NOT_FOUND, "stream not found");
    };
    let sessions: Vec<Value> = rtsp_server::sessions(&stream)
        .iter()
        .map(session_json)
        .collect();
    json_response(&json!({ "stream": key, "sessions": sessions }))
}

fn session_json(s: &SessionInfo) -> Value {
    let tracks: Vec<Value> = s
        .tracks
        .iter()
        .map(|t| {
            json!({
                "track": t.track,
                "receiver_reports": t.receiver_reports,
                "fraction_lost": t.fraction_lost,
                "cumulative_lost": t.cumulative_lost,
                "jitter": t.jitter,
            })
        })
        .collect();
    json!({
        "peer": s.peer.to_string(),
        "transport": s.transport,
        "duration_secs": s.duration.as_secs_f64(),
        "dropped_units": s.dropped_units,
        "tracks": tracks,
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use rtsp_server::{SetupRefusals, TrackReport};

    use super::*;

    #[test]
    fn a_session_as_json() {
        let s = SessionInfo {
            peer: "127.0.0.1:5000".parse().expect("an address"),
            transport: "udp",
            duration: Duration::from_millis(2500),
            dropped_units: 3,
            tracks: vec![TrackReport {
                track: 0,
                receiver_reports: 4,
                fraction_lost: 0.25,
                cumulative_lost: 7,
                jitter: 90,
            }],
        };
        let want = json!({
            "peer": "127.0.0.1:5000", "transport": "udp", "duration_secs": 2.5, "dropped_units": 3,
            "tracks": [{"track": 0, "receiver_reports": 4, "fraction_lost": 0.25,
                        "cumulative_lost": 7, "jitter": 90}],
        });
        assert_eq!(session_json(&s), want);
    }

    #[test]
    fn limits_as_json() {
        let http = ConnLimits::new("HTTP", netutil::Admission::default());
        let permit = http.try_acquire("10.0.0.1".parse().expect("an address"));
        drop(permit);
        http.timed_out(netutil::Timeout::Request);
        let refusals = Arc::new(SetupRefusals::default());
        refusals.count(rtsp_server::SetupRefusal::Destination);
        let limits = Limits {
            listeners: vec![http],
            rtsp: Some(Arc::new(ArcSwap::from_pointee(rtsp_server::Options {
                setup_refusals: refusals,
                max_sessions_per_ip: 32,
                ..rtsp_server::Options::default()
            }))),
            bus: Bus::default(),
        };
        let want = json!({
            "listeners": {"http": {
                "limits": {"max_connections": 10000, "max_connections_per_ip": 1000,
                           "connection_rate_per_ip": 500, "connection_burst_per_ip": 1000},
                "open": 0, "accepted": 1,
                "refused": {"max_connections": 0, "max_connections_per_ip": 0,
                            "connection_rate_per_ip": 0},
                "rate_untracked": 0,
                "timeouts": {"request": 1, "idle": 0},
                "oversized_requests": 0,
            }},
            "rtsp_sessions": {
                "limits": {"max_sessions_per_ip": 32, "max_sessions_per_connection": 1},
                "setups_refused": {"max_sessions_per_ip": 0, "max_sessions_per_connection": 0,
                                   "destination": 1, "client_port": 0, "no_free_ports": 0},
            },
            "streams": {
                "limits": {"max_streams": 10000, "max_streams_per_app": 1000},
                "streams": 0,
                "refused": {"max_streams": 0, "max_streams_per_app": 0},
            },
        });
        assert_eq!(limits_body(&limits), want);
    }
}

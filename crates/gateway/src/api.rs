//! `GET /api/streams/{app}/{name}/rtsp`: the RTSP sessions of a stream with their receiver-report
//! figures. It lives here because it joins two shells' data (the HTTP listener and the RTSP
//! session table), and only the gateway may know both. Like every `/api/*` route it needs the
//! API token when one is set.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use bus::Bus;
use rtsp_server::SessionInfo;
use serde_json::{json, Value};

pub(crate) fn routes(bus: Bus, access: &Arc<access::Access>) -> Router {
    Router::new()
        .route("/api/streams/{app}/{name}/rtsp", get(rtsp_sessions))
        .with_state(bus)
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(access),
            http_server::require_api_token,
        ))
}

async fn rtsp_sessions(
    State(bus): State<Bus>,
    Path((app, name)): Path<(String, String)>,
) -> Response {
    let key = format!("{app}/{name}");
    let Some(stream) = bus.stream(&key) else {
        // The key is not repeated: error bodies never echo what the client sent.
        let plain = [(header::CONTENT_TYPE, "text/plain; charset=utf-8")];
        return (StatusCode::NOT_FOUND, plain, "stream not found\n").into_response();
    };
    let sessions: Vec<Value> = rtsp_server::sessions(&stream)
        .iter()
        .map(session_json)
        .collect();
    let body = json!({ "stream": key, "sessions": sessions });
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

    use rtsp_server::TrackReport;

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
}

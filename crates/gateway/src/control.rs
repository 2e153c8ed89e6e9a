//! The control API: who is connected, ending a client, and what this server is.
//!
//! - `GET /api/clients` lists every publisher and viewer connection (`?stream={app}/{name}`
//!   keeps one stream's) from `bus::clients`, where every shell registers them under their
//!   connection id, the `id` of their log lines. HLS viewers hold no connection and are not
//!   listed.
//! - `DELETE /api/clients/{id}` ends that connection (204; 404 if there is no such client).
//! - `DELETE /api/streams/{app}/{name}` ends the stream's publisher (204; 404 if it has none).
//!   Its viewers then see an unpublish, with the bus's grace for a publisher's return.
//! - `GET /api/server`: version, uptime, the listeners' addresses in force and the limits.
//!
//! Like every `/api/*` route they need the API token when one is set.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use axum::Router;
use bus::clients::ClientSnapshot;
use bus::Bus;
use netutil::ConnId;
use serde::Deserialize;
use serde_json::{json, Value};

use http_server::json_error;

use crate::api::{json_response, limits_body, Limits};
use crate::reload::Reloader;

#[derive(Clone)]
struct Control {
    bus: Bus,
    limits: Arc<Limits>,
    reloader: Arc<Reloader>,
    started: Instant,
}

pub(crate) fn routes(
    bus: Bus,
    limits: Limits,
    access: &Arc<access::Access>,
    reloader: &Arc<Reloader>,
) -> Router {
    let state = Control {
        bus,
        limits: Arc::new(limits),
        reloader: Arc::clone(reloader),
        started: Instant::now(),
    };
    Router::new()
        .route("/api/clients", get(list))
        .route("/api/clients/{id}", delete(kick))
        .route("/api/streams/{app}/{name}", delete(kick_publisher))
        .route("/api/server", get(server))
        .with_state(state)
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(access),
            http_server::require_api_token,
        ))
}

#[derive(Deserialize)]
struct ListQuery {
    stream: Option<String>,
}

async fn list(State(c): State<Control>, Query(q): Query<ListQuery>) -> Response {
    let clients = c.bus.clients();
    let listed = match &q.stream {
        Some(key) => clients.of_stream(key),
        None => clients.list(),
    };
    let body: Vec<Value> = listed.iter().map(client_json).collect();
    json_response(&json!({ "clients": body }))
}

fn client_json(c: &ClientSnapshot) -> Value {
    json!({
        "id": c.id.to_string(),
        "role": c.role.as_str(),
        "protocol": c.protocol,
        "stream": c.stream,
        "peer": c.peer.map(|p| p.to_string()),
        "duration_secs": (c.duration.as_secs_f64() * 10.0).round() / 10.0,
        "bytes_sent": c.bytes_sent,
        "bytes_received": c.bytes_received,
        "dropped": c.dropped,
    })
}

async fn kick(State(c): State<Control>, Path(id): Path<String>) -> Response {
    match ConnId::parse(&id) {
        Some(id) if c.bus.clients().kick(id) => StatusCode::NO_CONTENT.into_response(),
        _ => json_error(StatusCode::NOT_FOUND, "client not found"),
    }
}

async fn kick_publisher(
    State(c): State<Control>,
    Path((app, name)): Path<(String, String)>,
) -> Response {
    if c.bus.clients().kick_publisher(&format!("{app}/{name}")) {
        StatusCode::NO_CONTENT.into_response()
    } else {
        json_error(StatusCode::NOT_FOUND, "stream has no publisher")
    }
}

async fn server(State(c): State<Control>) -> Response {
    let listeners: serde_json::Map<String, Value> = c
        .reloader
        .bound()
        .into_iter()
        .map(|(name, addr)| (name.to_owned(), Value::String(addr.to_string())))
        .collect();
    json_response(&json!({
        "version": env!("CARGO_PKG_VERSION"),
        "uptime_secs": c.started.elapsed().as_secs(),
        "listeners": listeners,
        "streams": c.bus.streams().len(),
        "clients": c.bus.clients().len(),
        "limits": limits_body(&c.limits),
    }))
}

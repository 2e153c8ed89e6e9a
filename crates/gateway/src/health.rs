//! `GET /healthz` and `GET /readyz`, the probes orchestrators send (Kubernetes liveness and
//! readiness, the container's `HEALTHCHECK`).
//!
//! - `/healthz`: the process is up and its HTTP listener answers: always 200 `ok`.
//! - `/readyz`: every listener the configuration turns on (`rtmp`, `rtmps`, `http`, `https`,
//!   `rtsp`, `rtsps`, `mms`) is bound and its shell is accepting. 200 with
//!   `{"ready":true,"not_ready":[]}`, else 503 with the names of the listeners that are not,
//!   such as `{"ready":false,"not_ready":["rtsp"]}`. A listener becomes ready when its shell
//!   is spawned on the bound socket, and stops being ready when its shell stops (its listener
//!   broke) or the gateway shuts down.
//!
//! Neither needs the API token, and neither reads anything but a few atomics: probes come every
//! few seconds, from addresses that hold no token.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

/// Which of the configured listeners are serving.
#[derive(Debug)]
pub struct Readiness {
    /// Every listener the configuration turns on, by name, and whether it serves.
    listeners: Vec<(&'static str, AtomicBool)>,
}

impl Readiness {
    /// Expects `names` (the configured listeners); none is ready yet.
    pub fn new(names: impl IntoIterator<Item = &'static str>) -> Readiness {
        Readiness {
            listeners: names
                .into_iter()
                .map(|n| (n, AtomicBool::new(false)))
                .collect(),
        }
    }

    /// Marks listener `name` serving (`up`) or not. A name that was not configured is ignored.
    pub fn set(&self, name: &str, up: bool) {
        for (n, flag) in &self.listeners {
            if *n == name {
                flag.store(up, Ordering::Release);
            }
        }
    }

    /// Marks every listener not serving (the gateway is shutting down).
    pub fn set_all_down(&self) {
        for (_, flag) in &self.listeners {
            flag.store(false, Ordering::Release);
        }
    }

    /// The configured listeners that are not serving, in configuration order.
    pub fn not_ready(&self) -> Vec<&'static str> {
        self.listeners
            .iter()
            .filter(|(_, flag)| !flag.load(Ordering::Acquire))
            .map(|(n, _)| *n)
            .collect()
    }

    /// Whether every configured listener serves.
    pub fn is_ready(&self) -> bool {
        self.listeners
            .iter()
            .all(|(_, flag)| flag.load(Ordering::Acquire))
    }
}

/// The probe routes; the gateway merges them outside the API token's layer.
pub(crate) fn routes(readiness: Arc<Readiness>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz).with_state(readiness))
}

const NO_CACHE: (header::HeaderName, &str) = (header::CACHE_CONTROL, "no-cache");

async fn healthz() -> Response {
    let plain = (header::CONTENT_TYPE, "text/plain; charset=utf-8");
    ([plain, NO_CACHE], "ok\n").into_response()
}

pub(crate) async fn readyz(State(readiness): State<Arc<Readiness>>) -> Response {
    let not_ready = readiness.not_ready();
    let status = match not_ready.is_empty() {
        true => StatusCode::OK,
        false => StatusCode::SERVICE_UNAVAILABLE,
    };
    let body = serde_json::json!({ "ready": not_ready.is_empty(), "not_ready": not_ready });
    let json = (header::CONTENT_TYPE, "application/json");
    (status, [json, NO_CACHE], body.to_string()).into_response()
}

#[cfg(test)]
mod tests {
    use axum::body::to_bytes;

    use super::*;

    #[test]
    fn ready_only_once_every_configured_listener_serves() {
        let r = Readiness::new(["rtmp", "http", "rtsp"]);
        assert!(!r.is_ready());
        assert_eq!(r.not_ready(), ["rtmp", "http", "rtsp"]);
        r.set("http", true);
        r.set("rtmp", true);
        assert_eq!(r.not_ready(), ["rtsp"]);
        // A listener that is off in the configuration is not waited for.
        r.set("mms", true);
        assert_eq!(r.not_ready(), ["rtsp"]);
        r.set("rtsp", true);
        assert!(r.is_ready());
        assert!(r.not_ready().is_empty());
        // A shell that stops takes its listener out again; so does shutdown.
        r.set("rtmp", false);
        assert_eq!(r.not_ready(), ["rtmp"]);
        r.set("rtmp", true);
        r.set_all_down();
        assert_eq!(r.not_ready(), ["rtmp", "http", "rtsp"]);
    }

    #[test]
    fn nothing_configured_is_ready() {
        assert!(Readiness::new([]).is_ready());
    }

    async fn body_of(res: Response) -> (StatusCode, serde_json::Value) {
        let status = res.status();
        let bytes = to_bytes(res.into_body(), 1024).await.expect("a small body");
        let json = serde_json::from_slice(&bytes).expect("a JSON body");
        (status, json)
    }

    #[tokio::test]
    async fn readyz_answers_503_naming_what_is_not_ready_then_200() {
        let r = Arc::new(Readiness::new(["rtmp", "http"]));
        r.set("http", true);
        let (status, body) = body_of(readyz(State(Arc::clone(&r))).await).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            body,
            serde_json::json!({"ready": false, "not_ready": ["rtmp"]})
        );
        r.set("rtmp", true);
        let (status, body) = body_of(readyz(State(r)).await).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body, serde_json::json!({"ready": true, "not_ready": []}));
    }

    #[tokio::test]
    async fn healthz_says_ok() {
        let res = healthz().await;
        assert_eq!(res.status(), StatusCode::OK);
        let bytes = to_bytes(res.into_body(), 64).await.expect("a small body");
        assert_eq!(&bytes[..], b"ok\n");
    }
}

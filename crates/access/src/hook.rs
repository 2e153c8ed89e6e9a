//! HTTP callbacks: decision hooks (`on_publish`, `on_play`) that a request waits for, and
//! notifications (`on_unpublish`, `on_stop`) sent in the background.
//!
//! Each is a POST of a JSON object:
//!
//! ```json
//! {"action":"publish","protocol":"rtmp","tls":false,"app":"live","stream":"cam",
//!  "client_ip":"203.0.113.7","client_port":50312,"query":"token=abc"}
//! ```
//!
//! Notifications use the actions `unpublish` and `stop` and add `bytes` (when known) and
//! `duration_ms`. A decision hook allows with any 2xx; another status, a connection error or no
//! answer within the timeout refuses.

use std::sync::Arc;

use serde::Serialize;
use tokio::sync::Semaphore;

use crate::{Action, Denial, DenialCause, DenialKind, Hooks, Notice, Request};

/// Notifications in flight at once; past it a notification is dropped and counted.
pub const MAX_NOTIFICATIONS_IN_FLIGHT: usize = 64;

/// Longest query string sent to a hook.
const MAX_HOOK_QUERY: usize = 2048;

#[derive(Serialize)]
struct Body<'a> {
    action: &'a str,
    protocol: &'a str,
    tls: bool,
    app: &'a str,
    stream: &'a str,
    client_ip: String,
    client_port: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    query: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    duration_ms: Option<u64>,
}

pub(crate) struct HookClient {
    client: reqwest::Client,
    on_publish: Option<String>,
    on_play: Option<String>,
    in_flight: Arc<Semaphore>,
}

impl HookClient {
    pub(crate) fn new(hooks: &Hooks) -> HookClient {
        let client = reqwest::Client::builder()
            .timeout(hooks.timeout)
            .connect_timeout(hooks.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("a reqwest client with rustls builds");
        HookClient {
            client,
            on_publish: hooks.on_publish.clone(),
            on_play: hooks.on_play.clone(),
            in_flight: Arc::new(Semaphore::new(MAX_NOTIFICATIONS_IN_FLIGHT)),
        }
    }

    /// Asks the decision hook of `req.action`, if one is configured.
    pub(crate) async fn decide(&self, req: &Request<'_>) -> Result<(), Denial> {
        let url = match req.action {
            Action::Publish => self.on_publish.as_deref(),
            Action::Play => self.on_play.as_deref(),
        };
        let Some(url) = url else { return Ok(()) };
        let body = Body {
            action: req.action.as_str(),
            protocol: req.protocol.as_str(),
            tls: req.tls,
            app: req.app,
            stream: req.stream,
            client_ip: req.peer.ip().to_string(),
            client_port: req.peer.port(),
            query: req.query.map(|q| cut(q, MAX_HOOK_QUERY)),
            bytes: None,
            duration_ms: None,
        };
        match self.client.post(url).json(&body).send().await {
            Ok(resp) if resp.status().is_success() => Ok(()),
            Ok(resp) => Err(Denial::new(
                DenialKind::Forbidden,
                DenialCause::HookDenied,
                format!(
                    "refused by the {} hook (HTTP {})",
                    hook_name(req.action),
                    resp.status().as_u16()
                ),
            )),
            Err(e) => {
                let what = if e.is_timeout() {
                    "did not answer in time"
                } else {
                    "could not be reached"
                };
                tracing::warn!(hook = %url, error = %e, "access hook {what}");
                Err(Denial::new(
                    DenialKind::Forbidden,
                    DenialCause::HookFailed,
                    format!("the {} hook {what}", hook_name(req.action)),
                ))
            }
        }
    }

    /// Sends a notification in the background; `false` when too many are in flight (dropped).
    pub(crate) fn notify(&self, url: &str, notice: &Notice) -> bool {
        let body = serde_json::to_vec(&Body {
            action: match notice.action {
                Action::Publish => "unpublish",
                Action::Play => "stop",
            },
            protocol: notice.protocol.as_str(),
            tls: false,
            app: &notice.app,
            stream: &notice.stream,
            client_ip: notice.peer.ip().to_string(),
            client_port: notice.peer.port(),
            query: None,
            bytes: notice.bytes,
            duration_ms: Some(u64::try_from(notice.duration.as_millis()).unwrap_or(u64::MAX)),
        })
        .expect("the hook body serializes");
        self.post_in_background(url, body)
    }

    /// Posts `body` as JSON to `url` in the background, within the same in-flight limit as the
    /// notifications; `false` when too many are in flight (dropped).
    pub(crate) fn post(&self, url: &str, body: &serde_json::Value) -> bool {
        self.post_in_background(url, body.to_string().into_bytes())
    }

    /// The one way a notification or event leaves: a POST in a task of its own, holding one of
    /// the in-flight permits; the answer is only logged.
    fn post_in_background(&self, url: &str, body: Vec<u8>) -> bool {
        let Ok(permit) = self.in_flight.clone().try_acquire_owned() else {
            return false;
        };
        let request = self
            .client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body);
        let url = url.to_owned();
        tokio::spawn(async move {
            let _permit = permit;
            match request.send().await {
                Ok(resp) if resp.status().is_success() => {}
                Ok(resp) => tracing::debug!(
                    hook = %url,
                    status = resp.status().as_u16(),
                    "notification hook answered"
                ),
                Err(e) => tracing::info!(hook = %url, error = %e, "notification hook failed"),
            }
        });
        true
    }
}

fn hook_name(action: Action) -> &'static str {
    match action {
        Action::Publish => "on_publish",
        Action::Play => "on_play",
    }
}

fn cut(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

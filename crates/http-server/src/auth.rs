//! The HTTP shell's access decisions: the play check of HTTP-FLV and WebSocket-FLV, and the API
//! token of `/api/*` and the web page. Nothing is decided here: [`access::Access`] decides, this
//! module turns its answer into HTTP.

use std::net::SocketAddr;
use std::sync::Arc;

use access::{Access, Action, Denial, DenialKind, Grant, Protocol};
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// The address a request is checked from when the listener did not say (a router served without
/// `ConnectInfo`): unspecified, which no `allow_ips` list contains, so IP rules fail closed.
fn peer_or_unspecified(peer: Option<SocketAddr>) -> SocketAddr {
    peer.unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)))
}

/// Asks whether `peer` may play `key` (`app/stream`) over `protocol` with the URL's `query`;
/// a refusal comes back as the response to send.
pub(crate) async fn check_play(
    access: &Access,
    protocol: Protocol,
    key: &str,
    peer: Option<SocketAddr>,
    query: Option<&str>,
    tls: bool,
) -> Result<Grant, Response> {
    let (app, stream) = key.split_once('/').unwrap_or((key, ""));
    let req = access::Request {
        action: Action::Play,
        protocol,
        tls,
        app,
        stream,
        peer: peer_or_unspecified(peer),
        query,
        authorization: None,
    };
    access
        .check(&req)
        .await
        .map_err(|d| denial_response(access, &d))
}

/// 401 (with a `Bearer` challenge: the credential is a token or a signed link in the URL) or
/// 403, and the denial's reason as plain text. The reason never repeats the credential.
pub fn denial_response(access: &Access, denial: &Denial) -> Response {
    let status = match denial.kind {
        DenialKind::Unauthorized => StatusCode::UNAUTHORIZED,
        DenialKind::Forbidden => StatusCode::FORBIDDEN,
    };
    refusal(access, status, format!("{}\n", denial.reason))
}

fn refusal(access: &Access, status: StatusCode, body: String) -> Response {
    let mut resp = (
        status,
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response();
    if status == StatusCode::UNAUTHORIZED {
        challenge(access, &mut resp);
    }
    resp
}

/// `WWW-Authenticate: Bearer realm="..."` on a 401.
fn challenge(access: &Access, resp: &mut Response) {
    let realm = &access.options().realm;
    if let Ok(v) = HeaderValue::from_str(&format!("Bearer realm=\"{realm}\"")) {
        resp.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
}

/// The refusal of an API or page request without the API token, if it has none: JSON for the
/// API (`{"error": ...}`), a text line for a page.
fn api_refusal(access: &Access, req: &Request, json: bool) -> Option<Response> {
    // A CORS preflight never carries credentials; the request it announces does.
    if req.method() == Method::OPTIONS {
        return None;
    }
    let authorization = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if access.api_allowed(authorization, req.uri().query()) {
        return None;
    }
    let reason = "this needs the API token: Authorization: Bearer <token>, or ?token=<token>";
    if !json {
        return Some(refusal(
            access,
            StatusCode::UNAUTHORIZED,
            format!("{reason}\n"),
        ));
    }
    let mut resp = crate::json_error(StatusCode::UNAUTHORIZED, reason);
    challenge(access, &mut resp);
    Some(resp)
}

/// Middleware for the API routes (`/api/*`, here and in the gateway, and `/metrics`): 401
/// with a JSON error unless
/// [`Access::api_allowed`] (an `Authorization: Bearer` header or a `token=` query parameter
/// carrying `auth.api_token`; always when none is set).
pub async fn require_api_token(
    State(access): State<Arc<Access>>,
    req: Request,
    next: Next,
) -> Response {
    match api_refusal(&access, &req, true) {
        Some(refusal) => refusal,
        None => next.run(req).await,
    }
}

/// Middleware for the web page: its HTML documents (`/`, `*.html`) need the API token as the
/// API does (the page then reads `token` from its own URL for its API calls). Scripts, styles,
/// icons and player libraries stay public: they are the same for every gateway and say nothing
/// about its streams.
pub(crate) async fn require_api_token_for_pages(
    State(access): State<Arc<Access>>,
    req: Request,
    next: Next,
) -> Response {
    let path = req.uri().path();
    let document = path == "/" || path.ends_with(".html");
    match document
        .then(|| api_refusal(&access, &req, false))
        .flatten()
    {
        Some(refusal) => refusal,
        None => next.run(req).await,
    }
}

//! Error answers of the API: a JSON object `{"error": "..."}` whose text is short, written for
//! people, and never repeats what the client sent.
//!
//! Handlers answer their own errors with [`json_error`]. [`json_errors`], a layer over the whole
//! HTTP router, turns every other error answer to an `/api/*` request into the same shape: the
//! router's own 404 and 405, and axum's extractor rejections (a path or query that does not
//! parse). Those bodies may quote the request, so the layer replaces them with the status's
//! reason ("not found", "bad request") rather than passing them on.

use axum::extract::Request;
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// `status` with `{"error": message}`, not cached, readable from any origin.
pub fn json_error(status: StatusCode, message: &str) -> Response {
    let body = serde_json::json!({ "error": message }).to_string();
    (
        status,
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "no-store"),
            (header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"),
        ],
        body,
    )
        .into_response()
}

/// Middleware: an error answer (4xx, 5xx) to an `/api/*` request that is not JSON becomes
/// [`json_error`] with the status's reason, keeping its other headers (`Allow`,
/// `WWW-Authenticate`). Other paths and JSON answers pass untouched.
pub async fn json_errors(req: Request, next: Next) -> Response {
    let api = req.uri().path().starts_with("/api/");
    let res = next.run(req).await;
    let status = res.status();
    if !api || !(status.is_client_error() || status.is_server_error()) || is_json(&res) {
        return res;
    }
    let reason = status
        .canonical_reason()
        .unwrap_or("error")
        .to_ascii_lowercase();
    let (mut parts, _body) = res.into_parts();
    let mut out = json_error(status, &reason);
    parts.headers.remove(header::CONTENT_LENGTH);
    for (name, value) in out.headers() {
        parts.headers.insert(name.clone(), value.clone());
    }
    *out.headers_mut() = parts.headers;
    out
}

fn is_json(res: &Response) -> bool {
    res.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"))
}

#[cfg(test)]
mod tests {
    use axum::body::to_bytes;
    use axum::http::HeaderValue;
    use axum::routing::get;
    use axum::Router;
    use tower::ServiceExt;

    use super::*;

    const JSON: HeaderValue = HeaderValue::from_static("application/json");

    // Not literals after `.route(`: tests/tests/api_doc.rs reads those as the API's routes.
    const MINE: &str = "/api/mine";
    const PLAIN: &str = "/api/plain";
    const OK: &str = "/api/ok";

    fn app() -> Router {
        Router::new()
            .route(
                MINE,
                get(|| async { json_error(StatusCode::NOT_FOUND, "stream not found") }),
            )
            .route(
                PLAIN,
                get(|| async { (StatusCode::BAD_REQUEST, "Invalid URL: `abc` quoted") }),
            )
            .route(OK, get(|| async { "fine" }))
            .route(
                "/page",
                get(|| async { (StatusCode::NOT_FOUND, "page text") }),
            )
            .layer(axum::middleware::from_fn(json_errors))
    }

    async fn call(method: &str, path: &str) -> (StatusCode, Option<HeaderValue>, String, Response) {
        let req = Request::builder()
            .method(method)
            .uri(path)
            .body(axum::body::Body::empty())
            .expect("a request");
        let res = app().oneshot(req).await.expect("infallible");
        let status = res.status();
        let ctype = res.headers().get(header::CONTENT_TYPE).cloned();
        let (parts, body) = res.into_parts();
        let body = to_bytes(body, 1 << 16).await.expect("a body");
        let text = String::from_utf8(body.to_vec()).expect("UTF-8");
        (
            status,
            ctype,
            text,
            Response::from_parts(parts, axum::body::Body::empty()),
        )
    }

    #[tokio::test]
    async fn api_errors_are_json_and_quote_nothing() {
        let (s, ct, body, _) = call("GET", "/api/mine").await;
        assert_eq!(
            (s, ct, body.as_str()),
            (
                StatusCode::NOT_FOUND,
                Some(JSON),
                r#"{"error":"stream not found"}"#
            )
        );

        let (s, ct, body, _) = call("GET", "/api/plain").await;
        assert_eq!(
            (s, ct, body.as_str()),
            (
                StatusCode::BAD_REQUEST,
                Some(JSON),
                r#"{"error":"bad request"}"#
            )
        );

        let (s, ct, body, _) = call("GET", "/api/none").await;
        assert_eq!(
            (s, ct, body.as_str()),
            (
                StatusCode::NOT_FOUND,
                Some(JSON),
                r#"{"error":"not found"}"#
            )
        );

        let (s, ct, body, res) = call("DELETE", "/api/ok").await;
        assert_eq!(
            (s, ct, body.as_str()),
            (
                StatusCode::METHOD_NOT_ALLOWED,
                Some(JSON),
                r#"{"error":"method not allowed"}"#
            )
        );
        assert!(res.headers().get(header::ALLOW).is_some(), "Allow is kept");
    }

    #[tokio::test]
    async fn other_answers_pass_untouched() {
        let (s, _, body, _) = call("GET", "/api/ok").await;
        assert_eq!((s, body.as_str()), (StatusCode::OK, "fine"));
        let (s, _, body, _) = call("GET", "/page").await;
        assert_eq!((s, body.as_str()), (StatusCode::NOT_FOUND, "page text"));
    }
}

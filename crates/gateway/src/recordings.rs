//! `GET /api/recordings` (the files in `record.dir`, as JSON) and `GET /api/recordings/{path}`
//! (one of them, with range requests, through tower-http's `ServeFile`). A path is served only
//! if `record::Recorder::resolve` finds it names a recording inside the directory, so no
//! request reaches another file. Like every `/api/*` route they need the API token when one is
//! set; they answer with recording off too (an empty list).

use std::sync::Arc;

use axum::extract::{Path, Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use record::Recorder;
use tower::ServiceExt;

pub(crate) fn routes(recorder: Recorder, access: &Arc<access::Access>) -> Router {
    Router::new()
        .route("/api/recordings", get(list))
        .route("/api/recordings/{*path}", get(download))
        .with_state(recorder)
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(access),
            http_server::require_api_token,
        ))
}

async fn list(State(recorder): State<Recorder>) -> Response {
    let listed = tokio::task::spawn_blocking(move || recorder.list()).await;
    let Ok(recordings) = listed else {
        return http_server::json_error(StatusCode::INTERNAL_SERVER_ERROR, "listing failed");
    };
    let body = serde_json::json!({ "recordings": recordings });
    (
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body.to_string(),
    )
        .into_response()
}

async fn download(
    State(recorder): State<Recorder>,
    Path(path): Path<String>,
    req: Request,
) -> Response {
    let found = tokio::task::spawn_blocking(move || recorder.resolve(&path)).await;
    let Ok(Some(file)) = found else {
        return http_server::json_error(StatusCode::NOT_FOUND, "recording not found");
    };
    match tower_http::services::ServeFile::new(file)
        .oneshot(req)
        .await
    {
        Ok(res) => res.into_response(),
        Err(never) => match never {},
    }
}

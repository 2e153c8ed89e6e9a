//! The web page: static files from [`crate::Options::web_root`] and the player libraries that npm
//! installed under its `node_modules`.

use std::path::{Path as FsPath, PathBuf};

use axum::extract::{Path, Request};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tower_http::services::{ServeDir, ServeFile};

/// The files served under `/vendor/`: public name and path below `node_modules`. Only these are
/// exposed, never the rest of `node_modules`.
const VENDOR_FILES: &[(&str, &str)] = &[
    ("hls.min.js", "hls.js/dist/hls.min.js"),
    ("hls.min.js.map", "hls.js/dist/hls.min.js.map"),
    ("mpegts.js", "mpegts.js/dist/mpegts.js"),
    ("mpegts.js.map", "mpegts.js/dist/mpegts.js.map"),
];

/// `/` and `/{file}` from the web root, `/vendor/{file}` from its `node_modules`.
///
/// The page keeps its files in one flat directory so that each route has a fixed depth: a
/// catch-all (or a router fallback) here would shadow the HLS shell's routes once the gateway
/// merges them.
pub(crate) fn routes(web_root: &FsPath) -> Router {
    let dir = ServeDir::new(web_root);
    let modules = web_root.join("node_modules");
    Router::new()
        .route_service("/", dir.clone())
        .route_service("/{file}", dir)
        .route(
            "/vendor/{file}",
            get(move |path, req| vendor(modules.clone(), path, req)),
        )
}

async fn vendor(modules: PathBuf, Path(file): Path<String>, req: Request) -> Response {
    let Some((_, relative)) = VENDOR_FILES.iter().find(|(name, _)| *name == file) else {
        return (StatusCode::NOT_FOUND, "no such player library\n").into_response();
    };
    match ServeFile::new(modules.join(relative)).try_call(req).await {
        Ok(res) if res.status() == StatusCode::NOT_FOUND => {
            tracing::warn!(file = %relative, "player library missing; run `npm ci` in the web root");
            res.into_response()
        }
        Ok(res) => res.into_response(),
        Err(err) => {
            tracing::warn!(file = %relative, %err, "cannot read player library");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

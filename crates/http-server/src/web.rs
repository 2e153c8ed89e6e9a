//! The web page: static files from [`crate::Options::web_root`] and the player libraries that npm
//! installed under its `node_modules`.

use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;

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

/// Extensions of the page's own files; anything else in the web root (`package.json`, the
/// README) is not served.
const PAGE_EXTENSIONS: &[&str] = &["html", "css", "js", "svg", "png", "ico", "webmanifest"];

/// `/` and `/{file}` from the web root, `/vendor/{file}` from its `node_modules`; the HTML
/// documents need the API token when one is set.
///
/// The page keeps its files in one flat directory so that each route has a fixed depth: a
/// catch-all (or a router fallback) here would shadow the HLS shell's routes once the gateway
/// merges them.
pub(crate) fn routes(web_root: &FsPath, access: Arc<access::Access>) -> Router {
    let dir = ServeDir::new(web_root);
    let modules = web_root.join("node_modules");
    Router::new()
        .route_service("/", dir.clone())
        .route(
            "/{file}",
            get(move |path, req| page_file(dir.clone(), path, req)),
        )
        .route(
            "/vendor/{file}",
            get(move |path, req| vendor(modules.clone(), path, req)),
        )
        .layer(axum::middleware::from_fn_with_state(
            access,
            crate::auth::require_api_token_for_pages,
        ))
}

/// The longest page file name looked up (a common file system limit): longer names are
/// answered 404 without asking the file system.
const MAX_FILE_NAME: usize = 255;

/// Whether `file` (one decoded path segment) may name one of the page's files: a page
/// extension, no hidden file, and nothing that could leave the web root or confuse the file
/// system (separators, NUL, over-long names).
fn is_page_file(file: &str) -> bool {
    let allowed = FsPath::new(file)
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| PAGE_EXTENSIONS.contains(&e));
    allowed
        && file.len() <= MAX_FILE_NAME
        && !file.starts_with('.')
        && !file.contains(['/', '\\', '\0'])
}

/// One of the page's files. `ServeDir` resolves the request path itself and refuses `..`;
/// [`is_page_file`] keeps non-page files private and odd names away from the file system.
async fn page_file(mut dir: ServeDir, Path(file): Path<String>, req: Request) -> Response {
    if !is_page_file(&file) {
        return (StatusCode::NOT_FOUND, "not found\n").into_response();
    }
    match dir.try_call(req).await {
        Ok(res) => res.into_response(),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            (StatusCode::NOT_FOUND, "not found\n").into_response()
        }
        Err(err) => {
            tracing::warn!(%file, %err, "cannot read a web page file");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

async fn vendor(modules: PathBuf, Path(file): Path<String>, req: Request) -> Response {
    let Some((_, relative)) = VENDOR_FILES.iter().find(|(name, _)| *name == file) else {
        return (StatusCode::NOT_FOUND, "no such player library\n").into_response();
    };
    match ServeFile::new(modules.join(relative)).try_call(req).await {
        Ok(res) => res.into_response(),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            tracing::warn!(file = %relative, "player library missing; run `npm ci` in the web root");
            (StatusCode::NOT_FOUND, "player library not installed\n").into_response()
        }
        Err(err) => {
            tracing::warn!(file = %relative, %err, "cannot read player library");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_file_names() {
        let long = format!("{}.html", "a".repeat(MAX_FILE_NAME));
        let table = [
            ("index.html", true),
            ("player.js", true),
            ("package.json", false),
            ("README", false),
            (".hidden.html", false),
            ("../index.html", false),
            ("a/../../b.html", false),
            ("a\\..\\b.html", false),
            ("index.html\0.png", false),
            (long.as_str(), false),
        ];
        for (file, want) in table {
            assert_eq!(is_page_file(file), want, "{file:?}");
        }
    }
}

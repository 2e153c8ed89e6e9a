//! HTTP handlers: playlist, segments, keys; CORS and caching headers.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use axum::body::Body;
use axum::extract::{ConnectInfo, Path, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use bus::{Bus, Protocol};
use bytes::Bytes;

use crate::from_bus::{self, Client, StreamHls};
use crate::gate::Gate;
use crate::Options;

/// The playlist file name inside a stream's directory.
pub const PLAYLIST_NAME: &str = "index.m3u8";
/// How often the always-on watcher looks for newly published streams.
const ALWAYS_ON_POLL: Duration = Duration::from_secs(1);

#[derive(Clone)]
struct AppState {
    bus: Bus,
    /// Replaced by a configuration reload: a request reads the options in force when it
    /// arrives, a muxer the ones in force when it starts (see [`router_live`]).
    live: Arc<ArcSwap<Options>>,
    gate: Arc<Gate>,
}

/// The HLS routes with their state applied, ready to merge onto the gateway's HTTP router.
///
/// The second path segment is named `{file}` so that this router merges with routes shaped
/// `/{app}/{file}` (HTTP-FLV): the router requires one parameter name per position.
pub fn router(bus: Bus, opts: Options) -> Router {
    router_live(bus, Arc::new(ArcSwap::from_pointee(opts)))
}

/// [`router`] with options a configuration reload replaces. A running muxer keeps the segment
/// options it started with (a playlist's target duration must not change while players read
/// it, RFC 8216 section 6.2.1), so the new ones apply to the streams muxed next; `idle_timeout`,
/// `always_on`, `playlist_wait` and the CORS origin apply from the next request or tick. A
/// replacement keeps the same `access` handle.
pub fn router_live(bus: Bus, live: Arc<ArcSwap<Options>>) -> Router {
    let state = AppState {
        bus,
        live,
        gate: Arc::new(Gate::default()),
    };
    spawn_always_on(state.clone());
    Router::new()
        .route("/{app}/{file}/{name}", get(serve).options(preflight))
        .with_state(state)
}

/// Starts a muxer for every live stream as it appears, so playlists are full from the first
/// request.
fn spawn_always_on(state: AppState) {
    let Ok(handle) = tokio::runtime::Handle::try_current() else {
        if !state.live.load().always_on {
            return;
        }
        tracing::warn!(
            "HLS: always_on needs a tokio runtime when the router is built; muxing on demand"
        );
        return;
    };
    handle.spawn(async move {
        loop {
            let on = state.live.load().always_on;
            for stream in state.bus.streams().into_iter().filter(|_| on) {
                if stream.is_live() && stream.running_remuxer::<StreamHls>().is_none() {
                    let app = stream
                        .key()
                        .split('/')
                        .next()
                        .unwrap_or_default()
                        .to_owned();
                    get_or_start(&state, stream.key(), &app);
                }
            }
            tokio::time::sleep(ALWAYS_ON_POLL).await;
        }
    });
}

/// The muxer of `key` (the stream's [`bus::Remuxer`] of this type), started if the stream is live
/// and has none yet.
fn get_or_start(state: &AppState, key: &str, app: &str) -> Option<Arc<StreamHls>> {
    let stream = state.bus.stream(key)?;
    let start = || {
        let sub = state.bus.subscribe(key, Protocol::Internal)?;
        Some(from_bus::start(sub, &state.live, app))
    };
    stream.join_remuxer(start, Arc::clone)
}

/// What a file name under `/{app}/{stream}/` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum File {
    /// The playlist, `index.m3u8`.
    Playlist,
    /// The segment with this media sequence number.
    Segment(u64),
    /// The AES-128 key with this id.
    Key(u64),
}

/// Parses `index.m3u8`, `{prefix}{seq}.ts` and `{prefix}{id}.key`.
pub fn classify(name: &str, prefix: &str) -> Option<File> {
    if name == PLAYLIST_NAME {
        return Some(File::Playlist);
    }
    let rest = name.strip_prefix(prefix)?;
    if let Some(seq) = rest.strip_suffix(".ts") {
        return seq.parse().ok().map(File::Segment);
    }
    rest.strip_suffix(".key")?.parse().ok().map(File::Key)
}

async fn serve(
    State(state): State<AppState>,
    Path((app, stream, name)): Path<(String, String, String)>,
    req: Request,
) -> Response {
    // Access is decided first: a refused client starts no muxer and learns nothing about the
    // stream.
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    let opts = state.live.load_full();
    let access = &opts.access;
    let query = req.uri().query();
    let tls = req.extensions().get::<access::OverTls>().is_some();
    let grant = match state
        .gate
        .check(access, (&app, &stream), peer, query, tls)
        .await
    {
        Ok(grant) => grant,
        Err(denial) => return refusal(&opts, &denial),
    };
    let key = format!("{app}/{stream}");
    let Some(hls) = get_or_start(&state, &key, &app) else {
        return text(&opts, StatusCode::NOT_FOUND, "stream not live\n");
    };
    hls.touch(&client(&req));
    match classify(&name, &hls.prefix) {
        Some(File::Playlist) => playlist(&opts, &hls, grant.carry.as_deref()).await,
        Some(File::Segment(seq)) => segment(&opts, &hls, seq),
        Some(File::Key(id)) => key_file(&opts, &hls, id),
        None => text(&opts, StatusCode::NOT_FOUND, "no such segment\n"),
    }
}

/// Serves the playlist, waiting up to `playlist_wait` for the first segment of a stream that
/// has just started; with `carry` (the viewer's credential) in every segment and key URI.
async fn playlist(opts: &Options, hls: &StreamHls, carry: Option<&str>) -> Response {
    let mut rx = hls.snapshot.clone();
    let _waiting = hls.waiting();
    let ready = tokio::time::timeout(opts.playlist_wait, rx.wait_for(|s| s.has_segments)).await;
    match ready {
        Ok(Ok(snapshot)) => {
            let body = snapshot.playlist.clone();
            drop(snapshot);
            let body = match (carry, std::str::from_utf8(&body)) {
                (Some(q), Ok(text)) => Bytes::from(hls::playlist::with_query(text, q)),
                _ => body,
            };
            bytes(opts, "application/vnd.apple.mpegurl", "no-cache", body)
        }
        Ok(Err(_)) => text(opts, StatusCode::NOT_FOUND, "stream ended\n"),
        Err(_) => {
            let mut resp = text(
                opts,
                StatusCode::SERVICE_UNAVAILABLE,
                "no segment yet, retry\n",
            );
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            resp
        }
    }
}

fn segment(opts: &Options, hls: &StreamHls, seq: u64) -> Response {
    let data = hls
        .snapshot
        .borrow()
        .segments
        .iter()
        .find(|(s, _)| *s == seq)
        .map(|(_, d)| d.clone());
    match data {
        Some(d) => {
            let cache = format!(
                "public, max-age={}, immutable",
                opts.segment_max_age.as_secs()
            );
            hls.count_sent(d.len());
            bytes(opts, "video/mp2t", &cache, d)
        }
        None => text(opts, StatusCode::NOT_FOUND, "no such segment\n"),
    }
}

fn key_file(opts: &Options, hls: &StreamHls, id: u64) -> Response {
    let key = hls
        .snapshot
        .borrow()
        .keys
        .iter()
        .find(|(k, _)| *k == id)
        .map(|(_, k)| *k);
    match key {
        // A content key must not sit in shared caches.
        Some(k) => bytes(
            opts,
            "application/octet-stream",
            "private, no-store",
            Bytes::copy_from_slice(&k),
        ),
        None => text(opts, StatusCode::NOT_FOUND, "no such key\n"),
    }
}

async fn preflight(State(state): State<AppState>) -> Response {
    let mut resp = Response::new(Body::empty());
    *resp.status_mut() = StatusCode::NO_CONTENT;
    add_cors(&state.live.load(), &mut resp);
    resp.headers_mut().insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static("86400"),
    );
    resp
}

fn bytes(opts: &Options, content_type: &'static str, cache: &str, body: Bytes) -> Response {
    let mut resp = Response::new(Body::from(body));
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(v) = HeaderValue::from_str(cache) {
        h.insert(header::CACHE_CONTROL, v);
    }
    add_cors(opts, &mut resp);
    resp
}

fn text(opts: &Options, status: StatusCode, body: &'static str) -> Response {
    let mut resp = bytes(
        opts,
        "text/plain; charset=utf-8",
        "no-cache",
        Bytes::from_static(body.as_bytes()),
    );
    *resp.status_mut() = status;
    resp
}

/// 401 (with a `Bearer` challenge: the credential is a token or a signed link in the URL) or
/// 403, with the denial's reason (which never repeats the credential), readable by players on
/// other origins.
fn refusal(opts: &Options, denial: &access::Denial) -> Response {
    let body = Bytes::from(format!("{}\n", denial.reason));
    let mut resp = bytes(opts, "text/plain; charset=utf-8", "no-store", body);
    *resp.status_mut() =
        StatusCode::from_u16(denial.http_status()).unwrap_or(StatusCode::FORBIDDEN);
    if denial.kind == access::DenialKind::Unauthorized {
        let realm = &opts.access.options().realm;
        if let Ok(v) = HeaderValue::from_str(&format!("Bearer realm=\"{realm}\"")) {
            resp.headers_mut().insert(header::WWW_AUTHENTICATE, v);
        }
    }
    resp
}

fn add_cors(opts: &Options, resp: &mut Response) {
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&opts.cors_origin) {
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, v);
    }
    h.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("GET, HEAD, OPTIONS"),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("Range, Origin, Accept"),
    );
    h.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static("Content-Length"),
    );
}

/// Identifies a viewer for the HLS viewer count: peer address (or the first X-Forwarded-For hop
/// behind a proxy) plus User-Agent.
fn client(req: &Request) -> Client {
    let headers = req.headers();
    let peer = match headers.get("x-forwarded-for").and_then(|v| v.to_str().ok()) {
        Some(xff) => xff.split(',').next().unwrap_or_default().trim().to_owned(),
        None => req
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map_or_else(|| "unknown".to_owned(), |c| c.0.ip().to_string()),
    };
    let mut h = DefaultHasher::new();
    peer.hash(&mut h);
    headers
        .get(header::USER_AGENT)
        .map(|v| v.as_bytes())
        .hash(&mut h);
    Client {
        id: h.finish(),
        peer,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The HLS routes (three path segments) merge with HTTP-FLV's `/{app}/{file}` without a
    /// conflict, and each request reaches its own handler.
    #[tokio::test]
    async fn merges_with_http_flv_shaped_routes() {
        use tower::ServiceExt;
        let bus = Bus::new(bus::BusOptions::default());
        let flv: Router = Router::new().route("/{app}/{file}", get(|| async { "flv" }));
        let merged = flv.merge(router(bus, Options::default()));
        let answer = |uri: &'static str| {
            let merged = merged.clone();
            async move {
                let req = axum::http::Request::builder()
                    .uri(uri)
                    .body(Body::empty())
                    .expect("a request");
                let resp = merged.oneshot(req).await.expect("the router answers");
                let status = resp.status();
                let body = axum::body::to_bytes(resp.into_body(), 1024)
                    .await
                    .expect("a short body");
                (status, String::from_utf8_lossy(&body).into_owned())
            }
        };
        assert_eq!(
            answer("/live/test.flv").await,
            (StatusCode::OK, "flv".to_owned())
        );
        // The HLS handler's own answer for a stream that is not live, not the router's 404.
        assert_eq!(
            answer("/live/test/index.m3u8").await,
            (StatusCode::NOT_FOUND, "stream not live\n".to_owned())
        );
    }

    #[test]
    fn file_names() {
        let p = "0badf00d-";
        let table = [
            ("index.m3u8", Some("p")),
            ("0badf00d-12.ts", Some("s12")),
            ("0badf00d-3.key", Some("k3")),
            ("deadbeef-12.ts", None),
            ("0badf00d-x.ts", None),
            ("0badf00d-12.mp4", None),
            ("", None),
        ];
        for (name, want) in table {
            let got = classify(name, p).map(|f| match f {
                File::Playlist => "p".to_owned(),
                File::Segment(s) => format!("s{s}"),
                File::Key(k) => format!("k{k}"),
            });
            assert_eq!(got.as_deref(), want, "{name}");
        }
    }
}

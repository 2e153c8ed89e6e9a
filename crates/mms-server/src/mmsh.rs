//! MMSH on the gateway's HTTP listener: an axum middleware that takes the requests of Windows
//! Media clients (and `.asx` playlist requests) before the other routes see them.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Instant;

use arc_swap::ArcSwap;
use axum::body::Body;
use axum::extract::connect_info::ConnectInfo;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use bus::{Bus, Protocol, SendWatch};
use bytes::Bytes;
use mms::mmsh::{self, RequestKind};

use crate::auth::{self, Asked};
use crate::from_bus::{self, FeedItem, Viewer};
use crate::{asx, mapping, Options};

/// The state of the MMSH middleware: the bus and the MMS options, which a reload may replace
/// (each request reads those in force when it arrives).
#[derive(Clone)]
pub struct MmshState {
    bus: Bus,
    opts: Arc<ArcSwap<Options>>,
    client_ids: Arc<AtomicU32>,
}

impl MmshState {
    pub fn new(bus: Bus, opts: Arc<ArcSwap<Options>>) -> MmshState {
        MmshState {
            bus,
            opts,
            client_ids: Arc::new(AtomicU32::new(1)),
        }
    }
}

/// The axum middleware: serves `.asx` playlists of resolvable names and every request from a
/// Windows Media client; passes anything else to `next`.
///
/// Use with `axum::middleware::from_fn_with_state(MmshState::new(bus, opts), mmsh_middleware)`.
/// The request reads the options in force when it arrives, and a playing viewer keeps them.
pub async fn mmsh_middleware(State(state): State<MmshState>, req: Request, next: Next) -> Response {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return next.run(req).await;
    }
    let opts = state.opts.load_full();
    let path = req.uri().path();
    if let Some(stem) = strip_asx(path) {
        if let Some(target) = mapping::resolve(&opts, stem) {
            return asx_response(&opts, req.headers(), &target.name);
        }
        return next.run(req).await;
    }
    let pragmas = pragma_values(req.headers());
    let ua = req
        .headers()
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok());
    if !mmsh::is_windows_media_client(ua, pragmas.iter().map(String::as_str)) {
        return next.run(req).await;
    }
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    // Present when the HTTP listener has a send timeout: it then counts this viewer on its
    // stream if the viewer stops reading.
    let watch = req.extensions().get::<Arc<SendWatch>>().cloned();
    let target = req
        .uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    let credentials = Credentials {
        target: &target,
        query: req.uri().query(),
        authorization: req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok()),
        method: req.method().as_str(),
        tls: req.extensions().get::<access::OverTls>().is_some(),
    };
    serve_mmsh(&state, &opts, path, &credentials, &pragmas, peer, watch).await
}

/// What an MMSH request carries for the access check.
struct Credentials<'a> {
    /// The request's path and query (a digest response must name it).
    target: &'a str,
    query: Option<&'a str>,
    authorization: Option<&'a str>,
    method: &'a str,
    /// The request came in on the HTTPS listener.
    tls: bool,
}

/// The path without a case-insensitive `.asx` suffix, if it has one.
pub fn strip_asx(path: &str) -> Option<&str> {
    let n = path.len().checked_sub(4)?;
    path.get(n..)
        .filter(|ext| ext.eq_ignore_ascii_case(".asx"))
        .and_then(|_| path.get(..n))
}

fn pragma_values(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(header::PRAGMA)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .take(32)
        .map(str::to_owned)
        .collect()
}

fn asx_response(opts: &Options, headers: &HeaderMap, name: &str) -> Response {
    let host_header = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("localhost");
    let (host, port) = asx::split_host(host_header, 80);
    let host = opts.public_host.clone().unwrap_or(host);
    let body = asx::playlist(name, &host, port, opts.mmst_port);
    ([(header::CONTENT_TYPE, "video/x-ms-asf")], body).into_response()
}

/// Serves an MMSH request with the options `opts` in force when it arrived.
async fn serve_mmsh(
    state: &MmshState,
    opts: &Arc<Options>,
    path: &str,
    credentials: &Credentials<'_>,
    pragmas: &[String],
    peer: Option<SocketAddr>,
    watch: Option<Arc<SendWatch>>,
) -> Response {
    let request = mmsh::parse_request(pragmas.iter().map(String::as_str));
    let target = mapping::resolve(opts, path);
    if let Some(t) = &target {
        if let Err(refusal) = authorize(&opts.access, &t.key, credentials, peer).await {
            return refusal;
        }
    }
    let stream = target
        .as_ref()
        .and_then(|t| state.bus.stream(&t.key))
        .filter(|s| s.is_live());
    let (Some(target), Some(stream)) = (target, stream) else {
        tracing::info!(peer = peer.map(tracing::field::display), %path, "MMSH: unknown publishing point");
        return (
            StatusCode::NOT_FOUND,
            // The path is not repeated: error bodies never echo what the client sent.
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            "No publishing point or live stream at this address\n",
        )
            .into_response();
    };
    let mut viewer = from_bus::join(&state.bus, &stream, opts);
    let Some(header) = viewer.header(opts.header_timeout).await else {
        tracing::warn!(peer = peer.map(tracing::field::display), stream = %target.key, "MMSH: no ASF header in time (no H.264/AAC track?)");
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "The stream has no track Windows Media clients can play yet\n",
        )
            .into_response();
    };
    let header_chunk = match mmsh::header_chunk(&header) {
        Ok(c) => c,
        Err(e) => return (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")).into_response(),
    };
    let client_id = state.client_ids.fetch_add(1, Ordering::Relaxed);
    let mut headers = HeaderMap::new();
    for (name, value) in mmsh::response_headers(request.kind, client_id) {
        if let Ok(v) = HeaderValue::from_str(&value) {
            headers.append(name, v);
        }
    }
    match request.kind {
        RequestKind::Describe => {
            tracing::debug!(peer = peer.map(tracing::field::display), stream = %target.key, "MMSH: describe");
            (headers, header_chunk).into_response()
        }
        RequestKind::Play => {
            tracing::info!(peer = peer.map(tracing::field::display), stream = %target.key, "MMSH: play");
            let mut client = None;
            if let Some(w) = &watch {
                w.attach(&stream, "mmsh", Protocol::Mms);
                viewer.on_drops(w.drop_counter());
                client = w.client(state.bus.clients(), "mmsh", &target.key);
            }
            let session = Session {
                _client: client,
                watch,
                viewer,
                peer,
                access: Arc::clone(&opts.access),
                started: Instant::now(),
                bytes_sent: 0,
                key: target.key,
                location_id: 0,
                sent_header: false,
                ended: false,
                queued: None,
            };
            let body = futures_util::stream::unfold((session, header_chunk), next_chunk);
            (headers, Body::from_stream(body)).into_response()
        }
    }
}

/// Asks the access policy about a viewer of `key`; a refusal is the response to send: 401 with
/// the basic and digest challenges (RFC 7235 §3.1), or 403, with the reason as plain text.
async fn authorize(
    access: &access::Access,
    key: &str,
    credentials: &Credentials<'_>,
    peer: Option<SocketAddr>,
) -> Result<(), Response> {
    if !access.restricts(access::Action::Play) {
        return Ok(());
    }
    let asked = Asked {
        protocol: access::Protocol::Mmsh,
        tls: credentials.tls,
        // Without the listener's ConnectInfo (a bare router in a test) the peer is unknown:
        // 0.0.0.0 is in no allow list, so an IP-restricted stream stays closed.
        peer: peer.unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0))),
        key,
        query: credentials.query,
        authorization: credentials
            .authorization
            .map(|header| access::Authorization {
                header,
                method: credentials.method,
                uri: credentials.target,
            }),
    };
    let Err(denial) = auth::check(access, &asked).await else {
        return Ok(());
    };
    let status = StatusCode::from_u16(denial.http_status()).unwrap_or(StatusCode::FORBIDDEN);
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    if status == StatusCode::UNAUTHORIZED {
        for c in access.challenges_for(&denial) {
            if let Ok(v) = HeaderValue::from_str(&c) {
                headers.append(header::WWW_AUTHENTICATE, v);
            }
        }
    }
    Err((status, headers, format!("{}\n", denial.reason)).into_response())
}

/// One playing MMSH viewer; dropping it (the client went away) logs the teardown and tells the
/// `on_stop` hook.
struct Session {
    /// Keeps the viewer listed in the bus's clients (a kick closes the HTTP connection).
    _client: Option<bus::clients::ClientGuard>,
    watch: Option<Arc<SendWatch>>,
    viewer: Viewer,
    peer: Option<SocketAddr>,
    access: Arc<access::Access>,
    started: Instant,
    /// Body bytes produced so far (what the client was sent, give or take hyper's buffers).
    bytes_sent: u64,
    key: String,
    location_id: u32,
    sent_header: bool,
    ended: bool,
    queued: Option<Bytes>,
}

impl Drop for Session {
    fn drop(&mut self) {
        let stalled = self.watch.as_ref().is_some_and(|w| w.is_stalled());
        if let Some(w) = &self.watch {
            w.detach();
        }
        tracing::info!(peer = self.peer.map(tracing::field::display), stream = %self.key, dropped = self.viewer.dropped(), stalled, "MMSH: viewer left");
        if let Some(peer) = self.peer {
            let duration = self.started.elapsed();
            auth::stopped(
                &self.access,
                access::Protocol::Mmsh,
                &self.key,
                peer,
                self.bytes_sent,
                duration,
            );
        }
    }
}

type ChunkState = (Session, Bytes);

/// Produces the body: `$H`, then each packet as a `$D` prefix and the shared packet bytes,
/// then `$E` when the broadcast ends.
async fn next_chunk(state: ChunkState) -> Option<(Result<Bytes, Infallible>, ChunkState)> {
    let (chunk, (mut s, header)) = produce_chunk(state).await?;
    if let Ok(b) = &chunk {
        s.bytes_sent += b.len() as u64;
    }
    Some((chunk, (s, header)))
}

async fn produce_chunk(
    (mut s, header): ChunkState,
) -> Option<(Result<Bytes, Infallible>, ChunkState)> {
    if s.ended {
        return None;
    }
    if let Some(packet) = s.queued.take() {
        return Some((Ok(packet), (s, header)));
    }
    if !s.sent_header {
        s.sent_header = true;
        return Some((Ok(header.clone()), (s, header)));
    }
    match s.viewer.next().await {
        Some(FeedItem::Packet(p)) => {
            let Ok(prefix) = mmsh::data_chunk_prefix(s.location_id, p.data.len()) else {
                return None;
            };
            s.location_id = s.location_id.wrapping_add(1);
            // The packet follows as its own body frame: shared, never copied per viewer.
            s.queued = Some(p.data);
            Some((Ok(Bytes::copy_from_slice(&prefix)), (s, header)))
        }
        // A changed header (new codecs) or the publisher leaving ends this response; clients
        // reconnect and get the new header.
        Some(FeedItem::Header(_)) | Some(FeedItem::End) | None => {
            s.ended = true;
            Some((Ok(Bytes::copy_from_slice(&mmsh::end_chunk(0))), (s, header)))
        }
    }
}

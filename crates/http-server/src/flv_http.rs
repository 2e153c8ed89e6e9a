//! `/{app}/{stream}.flv` over HTTP (one chunked body) and over WebSocket (binary messages).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::connect_info::ConnectInfo;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{FromRequestParts, Path, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};
use bus::{Protocol, SendWatch, Stream, Subscriber};
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use tracing::Instrument;

use crate::auth::check_play;
use crate::from_bus::flv_frames;
use crate::AppState;
use crate::OverTls;

/// At most this many ready frames (about 20 tags) go into one WebSocket message ...
const WS_BATCH_FRAMES: usize = 64;
/// ... and no more frames once it holds this many bytes. A message is copied twice (here and into
/// tungstenite's write buffer, which keeps its largest size), so this bounds what a viewer holds.
const WS_BATCH_BYTES: usize = 64 * 1024;
/// WebSocket close code for a normal end (RFC 6455 section 7.4.1).
const WS_CLOSE_NORMAL: u16 = 1000;
/// Read buffer of a WebSocket-FLV connection. A viewer only ever sends control frames (close,
/// ping); tungstenite's default of 128 KiB per connection would be most of a viewer's memory.
const WS_READ_BUFFER: usize = 4096;
/// The largest message (and frame) a WebSocket-FLV viewer may send. A viewer sends nothing but
/// pings and a close; without a bound the WebSocket layer buffers up to 64 MiB per viewer.
const WS_MAX_CLIENT_MESSAGE: usize = 64 * 1024;

/// How long a request for a stream that just went live waits for its first frame.
const START_WAIT: Duration = Duration::from_secs(3);

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/{app}/{file}", get(play).head(head).options(preflight))
        .layer(axum::middleware::map_response(crate::api::cors))
}

/// The bus key for `/{app}/{file}`, if `file` names an FLV stream.
pub fn stream_key(app: &str, file: &str) -> Option<String> {
    let name = file.strip_suffix(".flv")?;
    if app.is_empty() || name.is_empty() {
        return None;
    }
    Some(format!("{app}/{name}"))
}

fn peer_of(conn: Option<Extension<ConnectInfo<SocketAddr>>>) -> Option<SocketAddr> {
    conn.map(|Extension(ConnectInfo(addr))| addr)
}

/// The answer for a stream that is not live. It never repeats the requested key: an error page
/// that echoes its URL is a reflected-content hole, and the client knows what it asked for.
pub(crate) fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        "stream not found\n",
    )
        .into_response()
}

/// Headers of every successful FLV answer, GET or HEAD.
fn flv_headers() -> [(header::HeaderName, HeaderValue); 2] {
    [
        (
            header::CONTENT_TYPE,
            HeaderValue::from_static("video/x-flv"),
        ),
        (
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-cache, no-store"),
        ),
    ]
}

fn is_websocket(headers: &HeaderMap) -> bool {
    headers
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

async fn play(
    State(state): State<AppState>,
    Path((app, file)): Path<(String, String)>,
    conn: Option<Extension<ConnectInfo<SocketAddr>>>,
    req: Request,
) -> Response {
    let Some(key) = stream_key(&app, &file) else {
        return not_found();
    };
    let peer = peer_of(conn);
    let websocket = is_websocket(req.headers());
    let protocol = match websocket {
        true => access::Protocol::WsFlv,
        false => access::Protocol::HttpFlv,
    };
    // Access is decided before anything about the stream is looked up, so a refused client
    // learns nothing about which streams exist.
    let opts = state.opts();
    let access = &opts.access;
    let tls = req.extensions().get::<OverTls>().is_some();
    if let Err(refusal) = check_play(access, protocol, &key, peer, req.uri().query(), tls).await {
        return refusal;
    }
    // The FLV header announces the tracks from the stream's headers: a request that arrives in
    // the first milliseconds of a publish waits for them (a player told "no video" never shows
    // the video that follows).
    if let Some(stream) = state.bus.stream(&key) {
        stream.wait_for_frames(START_WAIT).await;
    }
    let Some(mut sub) = state.bus.subscribe(&key, Protocol::HttpFlv) else {
        return not_found();
    };
    // Present when the listener wraps its sockets in [`crate::SendTimeoutIo`]: the connection's send timeout then
    // counts this viewer on its stream if it stops reading, and the viewer is listed in the
    // bus's clients under the connection's id (a kick closes the connection).
    let watch = req.extensions().get::<Arc<SendWatch>>().cloned();
    if let Some(w) = &watch {
        sub.on_drops(w.drop_counter());
    }
    let client = watch
        .as_ref()
        .and_then(|w| w.client(state.bus.clients(), protocol.as_str(), &key));
    let stream = Arc::clone(sub.stream());
    if websocket {
        let (mut parts, _) = req.into_parts();
        return match WebSocketUpgrade::from_request_parts(&mut parts, &state).await {
            Ok(ws) => {
                let ws = ws.read_buffer_size(WS_READ_BUFFER);
                let mut log = ViewerLog::new(protocol, &stream, peer, watch.clone(), access);
                log.client = client;
                {
                    let delay = opts.flv_write_delay;
                    let span = tracing::Span::current();
                    ws.max_message_size(WS_MAX_CLIENT_MESSAGE)
                        .max_frame_size(WS_MAX_CLIENT_MESSAGE)
                        // axum runs the upgraded socket in a task of its own: keep it in the
                        // connection's span.
                        .on_upgrade(move |socket| {
                            ws_session(socket, sub, log, delay, watch).instrument(span)
                        })
                }
            }
            Err(rejection) => rejection.into_response(),
        };
    }
    let mut log = ViewerLog::new(protocol, &stream, peer, watch.clone(), access);
    log.client = client;
    let frames = flv_frames(sub, opts.flv_write_delay, watch).map(move |frame| {
        // The log line for the teardown is written when the body (and with it `log`) is dropped.
        let _ = &log;
        Ok::<Bytes, Infallible>(frame)
    });
    (flv_headers(), Body::from_stream(frames)).into_response()
}

/// HEAD answers like GET without subscribing, so probing a stream does not count as a viewer.
/// It is checked as a play: whether a stream is live is not for everyone to learn.
async fn head(
    State(state): State<AppState>,
    Path((app, file)): Path<(String, String)>,
    conn: Option<Extension<ConnectInfo<SocketAddr>>>,
    req: Request,
) -> Response {
    let Some(key) = stream_key(&app, &file) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let opts = state.opts();
    let access = &opts.access;
    let query = req.uri().query();
    let protocol = access::Protocol::HttpFlv;
    let tls = req.extensions().get::<OverTls>().is_some();
    if let Err(refusal) = check_play(access, protocol, &key, peer_of(conn), query, tls).await {
        return refusal;
    }
    let live = state.bus.stream(&key).is_some_and(|s| s.is_live());
    if !live {
        return StatusCode::NOT_FOUND.into_response();
    }
    flv_headers().into_response()
}

/// The CORS preflight of a player on another origin (and a plain OPTIONS).
pub(crate) async fn preflight(headers: HeaderMap) -> Response {
    let requested = headers
        .get(header::ACCESS_CONTROL_REQUEST_HEADERS)
        .cloned()
        .unwrap_or_else(|| HeaderValue::from_static("*"));
    let methods = HeaderValue::from_static("GET, HEAD, OPTIONS");
    let headers = [
        (header::ALLOW, methods.clone()),
        (header::ACCESS_CONTROL_ALLOW_METHODS, methods),
        (header::ACCESS_CONTROL_ALLOW_HEADERS, requested),
        (
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static("86400"),
        ),
    ];
    (StatusCode::NO_CONTENT, headers).into_response()
}

/// Sends the FLV byte stream as binary messages until the stream ends or the viewer leaves.
///
/// Frames that are ready together go out as one message. This copies them once into the
/// message; tungstenite copies every message into its write buffer anyway, so sharing the
/// payloads would save nothing here, unlike the HTTP body.
async fn ws_session(
    mut socket: WebSocket,
    sub: Subscriber,
    log: ViewerLog,
    delay: Duration,
    watch: Option<Arc<SendWatch>>,
) {
    // The upgraded socket is no longer the HTTP connection's: a kick is honoured here.
    let kicked = watch.as_ref().map(|w| w.kicked().clone());
    // Fused: `ready_batch` may see the end first, and the loop then asks once more.
    let mut frames = Box::pin(flv_frames(sub, delay, watch).fuse());
    loop {
        tokio::select! {
            _ = async { match &kicked { Some(k) => k.cancelled().await, None => std::future::pending().await } } => break,
            incoming = socket.recv() => match incoming {
                // Pings are answered by the WebSocket layer; other client messages mean nothing.
                Some(Ok(Message::Close(_))) | None => break,
                Some(Err(e)) => {
                    tracing::info!(stream = %log.key, peer = log.peer.map(tracing::field::display), error = %e, "WS-FLV: bad client message; closing");
                    break;
                }
                Some(Ok(_)) => continue,
            },
            first = frames.next() => {
                let Some(first) = first else {
                    let close = CloseFrame { code: WS_CLOSE_NORMAL, reason: "stream ended".into() };
                    let _ = socket.send(Message::Close(Some(close))).await;
                    break;
                };
                let batch = ready_batch(first, &mut frames);
                if socket.send(Message::Binary(concat(&batch))).await.is_err() {
                    break;
                }
            }
        }
    }
    drop(log);
}

/// `first` and the frames ready right after it, up to [`WS_BATCH_FRAMES`] and [`WS_BATCH_BYTES`].
fn ready_batch<S>(first: Bytes, frames: &mut S) -> Vec<Bytes>
where
    S: futures_util::Stream<Item = Bytes> + Unpin,
{
    use futures_util::FutureExt;
    let mut bytes = first.len();
    let mut batch = vec![first];
    while batch.len() < WS_BATCH_FRAMES && bytes < WS_BATCH_BYTES {
        match frames.next().now_or_never() {
            Some(Some(f)) => {
                bytes += f.len();
                batch.push(f);
            }
            _ => break,
        }
    }
    batch
}

fn concat(frames: &[Bytes]) -> Bytes {
    let mut buf = BytesMut::with_capacity(frames.iter().map(Bytes::len).sum());
    for f in frames {
        buf.extend_from_slice(f);
    }
    buf.freeze()
}

/// Logs a viewer's start when created and its teardown when dropped (and tells the on_stop
/// hook), and attaches the viewer to its connection's [`SendWatch`] meanwhile.
struct ViewerLog {
    protocol: &'static str,
    access_protocol: access::Protocol,
    key: String,
    peer: Option<SocketAddr>,
    started: Instant,
    watch: Option<Arc<SendWatch>>,
    access: Arc<access::Access>,
    /// Keeps the viewer listed in the bus's clients.
    client: Option<bus::clients::ClientGuard>,
}

impl ViewerLog {
    fn new(
        access_protocol: access::Protocol,
        stream: &Arc<Stream>,
        peer: Option<SocketAddr>,
        watch: Option<Arc<SendWatch>>,
        access: &Arc<access::Access>,
    ) -> ViewerLog {
        let protocol = access_protocol.as_str();
        let key = stream.key().to_owned();
        tracing::info!(%protocol, stream = %key, peer = peer.map(tracing::field::display), "play");
        if let Some(w) = &watch {
            w.attach(stream, protocol, Protocol::HttpFlv);
        }
        ViewerLog {
            protocol,
            access_protocol,
            key,
            peer,
            started: Instant::now(),
            watch,
            access: Arc::clone(access),
            client: None,
        }
    }
}

impl Drop for ViewerLog {
    fn drop(&mut self) {
        let stalled = self.watch.as_ref().is_some_and(|w| w.is_stalled());
        if let Some(w) = &self.watch {
            w.detach();
        }
        tracing::info!(
            protocol = %self.protocol,
            stream = %self.key,
            peer = self.peer.map(tracing::field::display),
            secs = self.started.elapsed().as_secs(),
            bytes_sent = self.watch.as_ref().map(|w| w.bytes_sent()),
            stalled,
            "teardown"
        );
        if let (Some((app, stream)), Some(peer)) = (self.key.split_once('/'), self.peer) {
            self.access.notify(access::Notice {
                action: access::Action::Play,
                protocol: self.access_protocol,
                app: app.to_owned(),
                stream: stream.to_owned(),
                peer,
                bytes: self.watch.as_ref().map(|w| w.bytes_sent()),
                duration: self.started.elapsed(),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_keys() {
        let table = [
            ("live", "test.flv", Some("live/test")),
            ("live", "test.flv.flv", Some("live/test.flv")),
            ("live", ".flv", None),
            ("live", "test", None),
            ("live", "test.m3u8", None),
        ];
        for (app, file, want) in table {
            assert_eq!(stream_key(app, file).as_deref(), want, "/{app}/{file}");
        }
    }
}

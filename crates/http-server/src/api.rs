//! `GET /api/streams`: the live streams, their codecs, counters and playback URLs, as JSON;
//! `GET /api/access`: the access-control counters; `GET /api/sign/{app}/{name}`: signed links.
//! Every route needs the API token when one is set ([`crate::require_api_token`]).

use std::sync::Arc;

use access::{Access, Action};
use axum::extract::{Extension, Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use bus::{Protocol, Stream};
use serde::Serialize;

use crate::{AppState, Options, OverTls};

/// Host used in URLs when a request names none (HTTP/1.0 without `Host`).
const FALLBACK_HOST: &str = "localhost";

/// How long the signed play links in `/api/streams` stay valid.
const LISTED_LINK_SECS: u64 = 3600;
/// The longest validity `/api/sign` hands out (a year), and its default (an hour).
const MAX_SIGN_SECS: u64 = 365 * 86_400;
const DEFAULT_SIGN_SECS: u64 = 3600;

pub(crate) fn routes(access: &Arc<Access>) -> Router<AppState> {
    let preflight = crate::flv_http::preflight;
    Router::new()
        .route("/api/streams", get(list).options(preflight))
        .route("/api/streams/{app}/{name}", get(one).options(preflight))
        .route("/api/access", get(access_counts).options(preflight))
        .route("/api/sign/{app}/{name}", get(sign).options(preflight))
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(access),
            crate::auth::require_api_token,
        ))
        .layer(axum::middleware::map_response(cors))
}

/// Lets pages on any origin read the answers (the Fetch standard's CORS protocol). Nothing here
/// uses cookies, so the wildcard origin is enough.
pub(crate) async fn cors(mut res: Response) -> Response {
    let h = res.headers_mut();
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    h.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static("Content-Length, Content-Type, Cache-Control"),
    );
    res
}

#[derive(Debug, Serialize)]
struct StreamList {
    streams: Vec<StreamJson>,
}

/// One live stream as the API reports it. Unknown facts are `null`.
#[derive(Debug, Serialize)]
struct StreamJson {
    key: String,
    app: String,
    name: String,
    /// Codec names as ingest reports them, such as "h264" and "aac".
    video_codec: Option<String>,
    width: Option<u32>,
    height: Option<u32>,
    fps: Option<f64>,
    audio_codec: Option<String>,
    sample_rate: Option<u32>,
    channels: Option<u8>,
    /// Payload bitrate over the last second, in kbit/s.
    bitrate_kbps: u64,
    uptime_secs: u64,
    /// Publishing protocol, such as "rtmp".
    publisher: Option<&'static str>,
    /// Tags skipped by viewers that fell behind, over the stream's life.
    dropped_tags: u64,
    /// Who feeds the viewers: "primary" or "backup" (see `bus.backup_suffix`).
    feed: &'static str,
    /// Times a backup publisher took over, and times the primary took the stream back.
    failovers: u64,
    takebacks: u64,
    viewers: Viewers,
    /// Viewers disconnected because they stopped reading (their socket accepted nothing for the
    /// egress's send timeout), over the stream's life.
    stalled_viewers_dropped: Viewers,
    /// What the gateway's health check (`[health]`) last found.
    health: Health,
    urls: Urls,
}

#[derive(Debug, Serialize)]
struct Health {
    healthy: bool,
    /// Why not: "publisher_silent", "keyframe_interval", "viewer_loss".
    reasons: Vec<&'static str>,
}

#[derive(Debug, Serialize)]
struct Viewers {
    rtmp: u64,
    http_flv: u64,
    hls: u64,
    rtsp: u64,
    mms: u64,
}

impl Viewers {
    fn from_counts(count: impl Fn(Protocol) -> u64) -> Viewers {
        Viewers {
            rtmp: count(Protocol::Rtmp),
            http_flv: count(Protocol::HttpFlv),
            hls: count(Protocol::Hls),
            rtsp: count(Protocol::Rtsp),
            mms: count(Protocol::Mms),
        }
    }
}

/// Playback URLs per protocol; a protocol the gateway does not offer is left out.
#[derive(Debug, Serialize)]
struct Urls {
    #[serde(skip_serializing_if = "Option::is_none")]
    hls: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    http_flv: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ws_flv: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rtmp: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rtsp: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    mms: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rtmps: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rtsps: Option<String>,
}

async fn list(
    State(state): State<AppState>,
    headers: HeaderMap,
    tls: Option<Extension<OverTls>>,
) -> Response {
    let opts = state.opts();
    let base = UrlBase::new(&opts, &headers, tls.is_some());
    let streams = state
        .bus
        .streams()
        .iter()
        .filter(|s| s.is_live())
        .map(|s| describe(s, &base, &opts.access))
        .collect();
    json(StreamList { streams })
}

async fn one(
    State(state): State<AppState>,
    Path((app, name)): Path<(String, String)>,
    headers: HeaderMap,
    tls: Option<Extension<OverTls>>,
) -> Response {
    let key = format!("{app}/{name}");
    let opts = state.opts();
    let base = UrlBase::new(&opts, &headers, tls.is_some());
    match state.bus.stream(&key).filter(|s| s.is_live()) {
        Some(stream) => json(describe(&stream, &base, &opts.access)),
        None => crate::json_error(StatusCode::NOT_FOUND, "stream not found"),
    }
}

fn json<T: Serialize>(body: T) -> Response {
    ([(header::CACHE_CONTROL, "no-cache")], Json(body)).into_response()
}

/// `GET /api/access`: how many requests access control allowed and refused, and why.
async fn access_counts(State(state): State<AppState>) -> Response {
    let access = &state.opts().access;
    let opts = access.options();
    let hooks = &opts.hooks;
    json(serde_json::json!({
        "rules": opts.rules.len(),
        "signed_links": opts.sign_secret.is_some(),
        "hooks": {
            "on_publish": hooks.on_publish.is_some(),
            "on_play": hooks.on_play.is_some(),
            "on_unpublish": hooks.on_unpublish.is_some(),
            "on_stop": hooks.on_stop.is_some(),
        },
        "counts": access.stats().snapshot(),
    }))
}

#[derive(Debug, serde::Deserialize)]
struct SignParams {
    /// `play` (the default) or `publish`.
    action: Option<String>,
    /// Seconds from now; default an hour, at most a year.
    expires_in: Option<u64>,
}

/// `GET /api/sign/{app}/{name}?action=play&expires_in=3600`: a signed link's query and the
/// stream's URLs carrying it (every play URL, or the RTMP URL for `publish`).
async fn sign(
    State(state): State<AppState>,
    Path((app, name)): Path<(String, String)>,
    Query(params): Query<SignParams>,
    headers: HeaderMap,
    tls: Option<Extension<OverTls>>,
) -> Response {
    let action = match params.action.as_deref() {
        None | Some("play") => Action::Play,
        Some("publish") => Action::Publish,
        Some(_) => return crate::json_error(StatusCode::BAD_REQUEST, "action is play or publish"),
    };
    let secs = params.expires_in.unwrap_or(DEFAULT_SIGN_SECS);
    if secs == 0 || secs > MAX_SIGN_SECS {
        return crate::json_error(
            StatusCode::BAD_REQUEST,
            "expires_in is 1 to 31536000 seconds",
        );
    }
    let expires = access::unix_now() + secs;
    let Some(query) = state.opts().access.sign(action, &app, &name, expires) else {
        return crate::json_error(
            StatusCode::NOT_FOUND,
            "signed links are off (auth.sign_secret is empty)",
        );
    };
    let key = format!("{app}/{name}");
    let urls = UrlBase::new(&state.opts(), &headers, tls.is_some()).urls(&key);
    let urls = match action {
        Action::Play => urls.with_query(&query),
        Action::Publish => Urls {
            hls: None,
            http_flv: None,
            ws_flv: None,
            rtsp: None,
            mms: None,
            rtsps: None,
            ..urls
        }
        .with_query(&query),
    };
    json(serde_json::json!({
        "stream": key,
        "action": action.as_str(),
        "expires": expires,
        "query": query,
        "urls": urls,
    }))
}

fn describe(stream: &Arc<Stream>, base: &UrlBase, access: &Access) -> StreamJson {
    let key = stream.key();
    let (app, name) = key.split_once('/').unwrap_or(("", key));
    // A stream whose play rule asks for a signed link is listed with signed URLs, so the web
    // page (which holds the API token) can play it and hand the links out.
    let mut urls = base.urls(key);
    if access.rule_for(app, name).is_some_and(|r| r.play.signed) {
        let expires = access::unix_now() + LISTED_LINK_SECS;
        if let Some(q) = access.sign(Action::Play, app, name, expires) {
            urls = urls.with_query(&q);
        }
    }
    let info = stream.media_info();
    let stats = stream.stats();
    StreamJson {
        key: key.to_owned(),
        app: app.to_owned(),
        name: name.to_owned(),
        video_codec: info.video_codec,
        width: info.width,
        height: info.height,
        fps: info.frame_rate,
        audio_codec: info.audio_codec,
        sample_rate: info.sample_rate,
        channels: info.channels,
        bitrate_kbps: stats.bitrate_bps / 1000,
        uptime_secs: stats.uptime.map_or(0, |d| d.as_secs()),
        publisher: stats.publisher.as_ref().map(|p| p.protocol.as_str()),
        dropped_tags: stats.dropped_tags,
        feed: stats.feed.as_str(),
        failovers: stats.failovers,
        takebacks: stats.takebacks,
        viewers: Viewers::from_counts(|p| stats.viewers_of(p)),
        stalled_viewers_dropped: Viewers::from_counts(|p| stats.stalled_viewers_of(p)),
        health: {
            let reasons = stream.health();
            Health {
                healthy: reasons.is_empty(),
                reasons,
            }
        },
        urls,
    }
}

/// Where viewers reach the gateway, from the options or else from the request.
#[derive(Debug)]
struct UrlBase<'a> {
    /// `http(s)://authority`, no trailing slash.
    http: String,
    /// Host name (or bracketed IPv6 literal) for the non-HTTP protocols.
    host: String,
    opts: &'a Options,
}

impl<'a> UrlBase<'a> {
    /// `over_tls`: the request came in on the HTTPS listener.
    fn new(opts: &'a Options, headers: &HeaderMap, over_tls: bool) -> UrlBase<'a> {
        let authority = headers
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .filter(|h| !h.is_empty())
            .unwrap_or(FALLBACK_HOST);
        let http = match &opts.public_http_base {
            Some(base) => base.trim_end_matches('/').to_owned(),
            None if over_tls => format!("https://{authority}"),
            None => format!("http://{authority}"),
        };
        let host = opts
            .public_host
            .clone()
            .unwrap_or_else(|| host_part(authority).to_owned());
        UrlBase { http, host, opts }
    }

    fn urls(&self, key: &str) -> Urls {
        let other = |scheme: &str, port: Option<u16>| {
            port.map(|p| format!("{scheme}://{}:{p}/{key}", self.host))
        };
        Urls {
            hls: self
                .opts
                .hls
                .then(|| format!("{}/{key}/index.m3u8", self.http)),
            http_flv: Some(format!("{}/{key}.flv", self.http)),
            ws_flv: Some(format!("{}/{key}.flv", websocket_base(&self.http))),
            rtmp: other("rtmp", self.opts.rtmp_port),
            rtsp: other("rtsp", self.opts.rtsp_port),
            mms: other("mms", self.opts.mms_port),
            rtmps: other("rtmps", self.opts.rtmps_port),
            rtsps: other("rtsps", self.opts.rtsps_port),
        }
    }
}

impl Urls {
    /// Every URL with `query` appended (a signed link's `expires=...&sig=...`).
    fn with_query(self, query: &str) -> Urls {
        let add = |u: Option<String>| u.map(|u| format!("{u}?{query}"));
        Urls {
            hls: add(self.hls),
            http_flv: add(self.http_flv),
            ws_flv: add(self.ws_flv),
            rtmp: add(self.rtmp),
            rtsp: add(self.rtsp),
            mms: add(self.mms),
            rtmps: add(self.rtmps),
            rtsps: add(self.rtsps),
        }
    }
}

/// `host` of `host:port`, keeping an IPv6 literal's brackets.
pub fn host_part(authority: &str) -> &str {
    if let Some(end) = authority.find(']') {
        return &authority[..=end];
    }
    authority
        .rsplit_once(':')
        .map_or(authority, |(host, _)| host)
}

/// The WebSocket URL base for an HTTP one: `ws://` for `http://`, `wss://` for `https://`.
fn websocket_base(http: &str) -> String {
    if let Some(rest) = http.strip_prefix("https://") {
        format!("wss://{rest}")
    } else if let Some(rest) = http.strip_prefix("http://") {
        format!("ws://{rest}")
    } else {
        http.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_parts() {
        let table = [
            ("example.com", "example.com"),
            ("example.com:8080", "example.com"),
            ("127.0.0.1:80", "127.0.0.1"),
            ("[::1]:8080", "[::1]"),
            ("[::1]", "[::1]"),
        ];
        for (authority, want) in table {
            assert_eq!(host_part(authority), want, "{authority}");
        }
    }

    /// Builds the URLs of `live/test` for a request with `host` and compares them as JSON.
    fn check(opts: Options, host: &str, over_tls: bool, want: serde_json::Value) {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::HOST,
            HeaderValue::from_str(host).expect("test host is valid"),
        );
        let urls = UrlBase::new(&opts, &headers, over_tls).urls("live/test");
        assert_eq!(
            serde_json::to_value(urls).expect("urls serialize"),
            want,
            "host {host}"
        );
    }

    #[test]
    fn urls_from_the_host_header() {
        check(
            Options::default(),
            "gw.example:8080",
            false,
            serde_json::json!({
                "hls": "http://gw.example:8080/live/test/index.m3u8",
                "http_flv": "http://gw.example:8080/live/test.flv",
                "ws_flv": "ws://gw.example:8080/live/test.flv",
                "rtmp": "rtmp://gw.example:1935/live/test",
                "rtsp": "rtsp://gw.example:554/live/test",
                "mms": "mms://gw.example:1755/live/test",
            }),
        );
    }

    #[test]
    fn urls_from_the_options() {
        let opts = Options {
            public_http_base: Some("https://live.example/".into()),
            public_host: Some("media.example".into()),
            rtmp_port: Some(1936),
            rtsp_port: None,
            mms_port: None,
            hls: false,
            ..Options::default()
        };
        check(
            opts,
            "10.0.0.1:8080",
            false,
            serde_json::json!({
                "http_flv": "https://live.example/live/test.flv",
                "ws_flv": "wss://live.example/live/test.flv",
                "rtmp": "rtmp://media.example:1936/live/test",
            }),
        );
    }

    #[test]
    fn urls_over_tls_and_the_tls_listeners() {
        let opts = Options {
            rtmp_port: None,
            rtmps_port: Some(1936),
            rtsps_port: Some(8322),
            mms_port: None,
            ..Options::default()
        };
        check(
            opts,
            "gw.example:8443",
            true,
            serde_json::json!({
                "hls": "https://gw.example:8443/live/test/index.m3u8",
                "http_flv": "https://gw.example:8443/live/test.flv",
                "ws_flv": "wss://gw.example:8443/live/test.flv",
                "rtsp": "rtsp://gw.example:554/live/test",
                "rtmps": "rtmps://gw.example:1936/live/test",
                "rtsps": "rtsps://gw.example:8322/live/test",
            }),
        );
    }
}

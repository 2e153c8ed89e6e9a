//! The server side of one RTSP connection: request validation, the session state machine
//! (RFC 2326 Appendix A.1) and the questions the caller must answer.
//!
//! One connection holds at most one RTSP session; every client we target (ffmpeg, GStreamer, VLC,
//! retina, live555-based NVRs) sets up all tracks of a presentation in one session, and opens
//! another connection for another presentation. A SETUP asking for a second session (another
//! stream, no Session header) is refused with [`ServerEvent::Refused`], so that one connection
//! can never take more than one session's UDP ports.

use bytes::Bytes;

use crate::message::{Method, Request, Response};
use crate::sdp::Presentation;
use crate::transport::{Lower, Transport, Unsupported};

/// The methods answered in `Public` (RFC 2326 §12.28).
const PUBLIC: &str =
    "OPTIONS, DESCRIBE, SETUP, PLAY, PAUSE, TEARDOWN, GET_PARAMETER, SET_PARAMETER";
/// The largest `trackID` accepted in a URL; anything larger is not one of our tracks.
pub const MAX_TRACK_ID: usize = 15;

/// A status code the caller answers with through [`ServerConnection::reject`].
pub type Status = u16;

/// What a PLAY response says about one track (RFC 2326 §12.33).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtpInfo {
    /// The track index (`trackID`).
    pub track: usize,
    /// The sequence number of the first packet the session will receive.
    pub sequence: u16,
    /// The RTP timestamp of that packet.
    pub rtp_timestamp: u32,
}

/// What the caller must do with a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerEvent {
    /// The request is answered; write the response.
    Respond(Response),
    /// Describe the stream: answer with [`ServerConnection::accept_describe`] or `reject(404, ..)`.
    Describe {
        /// The stream key (the URL path without slashes at either end).
        stream: String,
    },
    /// Set up a track: allocate ports or channels and answer with [`ServerConnection::accept_setup`].
    Setup {
        /// The stream key.
        stream: String,
        /// The track index, or `None` for the aggregate URL (valid only for one-track streams).
        track: Option<usize>,
        /// The client's transport, interleaved channels already chosen for TCP.
        transport: Transport,
    },
    /// Start or resume sending: answer with [`ServerConnection::accept_play`].
    Play {
        /// The stream key.
        stream: String,
        /// The tracks set up, in order.
        tracks: Vec<(usize, Transport)>,
    },
    /// The request was refused by one of the limits that keep a client from taking more than
    /// its share or from aiming media at another host: write the response and count `limit`.
    Refused {
        /// The error response.
        response: Response,
        /// Which limit refused it.
        limit: Limit,
    },
    /// Stop sending but keep the session; then write the response.
    Pause(Response),
    /// End the session (BYE, free ports); then write the response.
    Teardown(Response),
}

/// The limits [`ServerEvent::Refused`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// A SETUP that would open a second session on the connection, answered 455.
    SessionsPerConnection,
    /// A UDP `client_port` below [`crate::transport::MIN_CLIENT_PORT`] (a well-known service
    /// port, the target of reflection attacks), answered 461.
    PrivilegedClientPort,
}

#[derive(Debug, Clone)]
enum Pending {
    Describe {
        base: String,
    },
    Setup {
        stream: String,
        track: usize,
        base: String,
    },
    Play,
}

#[derive(Debug, Clone)]
struct SessionState {
    id: String,
    stream: String,
    base: String,
    tracks: Vec<(usize, Transport)>,
    playing: bool,
}

/// The sans-IO server state of one RTSP connection.
#[derive(Debug)]
pub struct ServerConnection {
    rng: u64,
    timeout_secs: u32,
    server: String,
    session: Option<SessionState>,
    pending: Option<(String, Pending)>,
}

impl ServerConnection {
    /// Creates the state for a new connection; `seed` must be random (it generates session ids).
    pub fn new(seed: u64, timeout_secs: u32, server: &str) -> Self {
        ServerConnection {
            rng: seed,
            timeout_secs,
            server: server.to_owned(),
            session: None,
            pending: None,
        }
    }

    /// Returns the session id, if a session exists.
    pub fn session_id(&self) -> Option<&str> {
        self.session.as_ref().map(|s| s.id.as_str())
    }

    /// Returns whether the session is playing.
    pub fn is_playing(&self) -> bool {
        self.session.as_ref().is_some_and(|s| s.playing)
    }

    /// Forgets the session after the caller closed it (timeout or stream end).
    pub fn close_session(&mut self) {
        self.session = None;
    }

    /// Handles one request. Requests must be handled one at a time: answer the event first.
    pub fn handle(&mut self, req: &Request) -> ServerEvent {
        let Some(cseq) = req.header("CSeq").map(str::to_owned) else {
            return ServerEvent::Respond(self.error(400, None, "missing CSeq header"));
        };
        if req.version != "RTSP/1.0" {
            return ServerEvent::Respond(self.error(
                505,
                Some(&cseq),
                "only RTSP/1.0 is supported",
            ));
        }
        if let Err(resp) = self.check_session_header(req, &cseq) {
            return ServerEvent::Respond(resp);
        }
        match &req.method {
            Method::Options => ServerEvent::Respond(self.ok(&cseq).with("Public", PUBLIC)),
            Method::Describe => self.describe(req, cseq),
            Method::Setup => self.setup(req, cseq),
            Method::Play => self.play(cseq),
            Method::Pause => self.pause(cseq),
            Method::Teardown => self.teardown(cseq),
            Method::GetParameter => ServerEvent::Respond(self.ok(&cseq)),
            // Parameters are not supported; an empty SET_PARAMETER is a keepalive (RFC 2326 §10.9).
            Method::SetParameter if req.body.is_empty() => ServerEvent::Respond(self.ok(&cseq)),
            Method::SetParameter => {
                ServerEvent::Respond(self.error(451, Some(&cseq), "no parameters can be set"))
            }
            Method::NotAllowed(m) => {
                let r = self.error(
                    405,
                    Some(&cseq),
                    &format!("{m} is not allowed: this server only plays"),
                );
                ServerEvent::Respond(r.with("Allow", PUBLIC))
            }
            Method::Other(m) => ServerEvent::Respond(self.error(
                501,
                Some(&cseq),
                &format!("method {m} not implemented"),
            )),
        }
    }

    /// Answers a pending DESCRIBE with the stream's SDP.
    pub fn accept_describe(&mut self, presentation: &Presentation) -> Response {
        let Some((cseq, Pending::Describe { base })) = self.pending.take() else {
            return self.error(500, None, "no DESCRIBE pending");
        };
        self.ok(&cseq)
            .with("Content-Base", base)
            .with_body("application/sdp", Bytes::from(presentation.to_sdp()))
    }

    /// Answers a pending SETUP; `transport` carries the server ports or channels and the SSRC.
    pub fn accept_setup(&mut self, transport: Transport) -> Response {
        let Some((
            cseq,
            Pending::Setup {
                stream,
                track,
                base,
            },
        )) = self.pending.take()
        else {
            return self.error(500, None, "no SETUP pending");
        };
        if self.session.is_none() {
            let id = self.next_session_id();
            self.session = Some(SessionState {
                id,
                stream,
                base,
                tracks: Vec::new(),
                playing: false,
            });
        }
        let session = self
            .session
            .as_mut()
            .expect("a session exists after SETUP is accepted");
        session.tracks.retain(|(t, _)| *t != track);
        session.tracks.push((track, transport));
        session.tracks.sort_by_key(|(t, _)| *t);
        self.ok(&cseq).with("Transport", transport.format())
    }

    /// Answers a pending PLAY with the first sequence number and timestamp of each track.
    pub fn accept_play(&mut self, rtp_info: &[RtpInfo]) -> Response {
        let Some((cseq, Pending::Play)) = self.pending.take() else {
            return self.error(500, None, "no PLAY pending");
        };
        let Some(session) = self.session.as_mut() else {
            return self.error(454, Some(&cseq), "session closed");
        };
        session.playing = true;
        let base = session.base.clone();
        let info: Vec<String> = rtp_info
            .iter()
            .map(|i| {
                format!(
                    "url={base}trackID={};seq={};rtptime={}",
                    i.track, i.sequence, i.rtp_timestamp
                )
            })
            .collect();
        let mut r = self.ok(&cseq).with("Range", "npt=now-");
        if !info.is_empty() {
            r = r.with("RTP-Info", info.join(","));
        }
        r
    }

    /// Answers the pending request with an error status and a one-line explanation in the body.
    pub fn reject(&mut self, status: Status, why: &str) -> Response {
        let cseq = self.pending.take().map(|(c, _)| c);
        self.error(status, cseq.as_deref(), why)
    }

    /// Refuses the pending request because the caller's access policy does: 401 Unauthorized
    /// with one `WWW-Authenticate` header per challenge (RFC 2326 §11.2.1 and §12.44, RFC 2617),
    /// or 403 Forbidden without. The session, if one exists, is kept and named in the response,
    /// so a client can retry with credentials on the same connection and session.
    pub fn reject_access(&mut self, status: Status, why: &str, challenges: &[String]) -> Response {
        let cseq = self.pending.take().map(|(c, _)| c);
        let mut r = self.error(status, cseq.as_deref(), why);
        if let Some(s) = &self.session {
            r = r.with("Session", format!("{};timeout={}", s.id, self.timeout_secs));
        }
        for c in challenges {
            r = r.with("WWW-Authenticate", c.as_str());
        }
        r
    }

    fn describe(&mut self, req: &Request, cseq: String) -> ServerEvent {
        let Some(url) = RtspUrl::parse(&req.uri) else {
            return ServerEvent::Respond(self.error(404, Some(&cseq), "no stream in the URL path"));
        };
        self.pending = Some((cseq, Pending::Describe { base: url.base }));
        ServerEvent::Describe { stream: url.stream }
    }

    fn setup(&mut self, req: &Request, cseq: String) -> ServerEvent {
        let Some(url) = RtspUrl::parse(&req.uri) else {
            return ServerEvent::Respond(self.error(404, Some(&cseq), "no stream in the URL path"));
        };
        if let Some(s) = &self.session {
            if s.playing {
                return ServerEvent::Respond(self.error(
                    455,
                    Some(&cseq),
                    "SETUP while playing is not supported",
                ));
            }
            if s.stream != url.stream && req.header("Session").is_none() {
                return ServerEvent::Refused {
                    response: self.error(
                        455,
                        Some(&cseq),
                        "this connection already has a session (one per connection); open another connection for another stream",
                    ),
                    limit: Limit::SessionsPerConnection,
                };
            }
            if s.stream != url.stream {
                return ServerEvent::Respond(self.error(
                    459,
                    Some(&cseq),
                    "a session covers tracks of one stream only",
                ));
            }
        }
        let header = req.header("Transport").unwrap_or_default();
        let mut transport = match Transport::parse_first_supported(header) {
            Ok(t) => t,
            Err(e) => {
                let response = self.error(461, Some(&cseq), &e.to_string());
                return match e {
                    Unsupported::PrivilegedPort { .. } => ServerEvent::Refused {
                        response,
                        limit: Limit::PrivilegedClientPort,
                    },
                    Unsupported::Kind => ServerEvent::Respond(response),
                };
            }
        };
        let track = url.track.unwrap_or(0);
        if let Lower::Tcp {
            interleaved: interleaved @ None,
        } = &mut transport.lower
        {
            // RFC 2326 §12.39: the server chooses channels when the client does not.
            *interleaved = Some(((track * 2) as u8, (track * 2 + 1) as u8));
        }
        self.pending = Some((
            cseq,
            Pending::Setup {
                stream: url.stream.clone(),
                track,
                base: url.base,
            },
        ));
        ServerEvent::Setup {
            stream: url.stream,
            track: url.track,
            transport,
        }
    }

    fn play(&mut self, cseq: String) -> ServerEvent {
        let Some(s) = &self.session else {
            return ServerEvent::Respond(self.error(455, Some(&cseq), "PLAY before SETUP"));
        };
        let event = ServerEvent::Play {
            stream: s.stream.clone(),
            tracks: s.tracks.clone(),
        };
        self.pending = Some((cseq, Pending::Play));
        event
    }

    fn pause(&mut self, cseq: String) -> ServerEvent {
        let Some(s) = self.session.as_mut() else {
            return ServerEvent::Respond(self.error(455, Some(&cseq), "PAUSE before SETUP"));
        };
        s.playing = false;
        ServerEvent::Pause(self.ok(&cseq))
    }

    fn teardown(&mut self, cseq: String) -> ServerEvent {
        let r = self.ok(&cseq);
        if self.session.take().is_none() {
            return ServerEvent::Respond(self.error(454, Some(&cseq), "no session to tear down"));
        }
        // The session is gone, so the response carries no Session header.
        ServerEvent::Teardown(r.without_session())
    }

    /// RFC 2326 §12.37: a Session header naming another session is answered 454.
    fn check_session_header(&self, req: &Request, cseq: &str) -> Result<(), Response> {
        let Some(value) = req.header("Session") else {
            return Ok(());
        };
        let id = value.split(';').next().unwrap_or_default().trim();
        match &self.session {
            Some(s) if s.id == id => Ok(()),
            _ => Err(self.error(454, Some(cseq), &format!("session {id:.32} not found"))),
        }
    }

    fn ok(&self, cseq: &str) -> Response {
        let mut r = Response::new(200, Some(cseq)).with("Server", self.server.as_str());
        if let Some(s) = &self.session {
            r = r.with("Session", format!("{};timeout={}", s.id, self.timeout_secs));
        }
        r
    }

    fn error(&self, status: Status, cseq: Option<&str>, why: &str) -> Response {
        Response::new(status, cseq)
            .with("Server", self.server.as_str())
            .with_body("text/plain", format!("{why}\r\n"))
    }

    /// Returns 16 hex digits (8 random bytes) from a SplitMix64 sequence seeded by the caller.
    fn next_session_id(&mut self) -> String {
        self.rng = self.rng.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        format!("{:016X}", z ^ (z >> 31))
    }
}

impl Response {
    fn without_session(mut self) -> Response {
        self.headers
            .retain(|h| !h.name.eq_ignore_ascii_case("Session"));
        self
    }
}

/// The parts of a request URL the server routes on.
#[derive(Debug, Clone, PartialEq, Eq)]
struct RtspUrl {
    /// The stream key: the path without slashes at either end and without a `trackID=` segment.
    stream: String,
    /// The track from a trailing `trackID=N` segment.
    track: Option<usize>,
    /// The aggregate URL with a trailing slash (Content-Base), without user information or query.
    base: String,
}

impl RtspUrl {
    fn parse(uri: &str) -> Option<RtspUrl> {
        let (scheme, rest) = uri.split_once("://").unwrap_or(("rtsp", uri));
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        // `user:password@` is never echoed into Content-Base or RTP-Info.
        let authority = authority
            .rsplit_once('@')
            .map_or(authority, |(_, host)| host);
        let target = Target::split(path);
        let path = target.path.trim_matches('/');
        let (stream, mut track) = match path.rsplit_once('/') {
            Some((s, last)) if last.starts_with("trackID=") => (s, Some(track_id(last)?)),
            _ if path.starts_with("trackID=") => return None,
            _ => (path, None),
        };
        if let Some(control) = target.control {
            track = Some(track_id(control)?);
        }
        if stream.is_empty() {
            return None;
        }
        Some(RtspUrl {
            stream: stream.to_owned(),
            track,
            base: format!("{scheme}://{authority}/{stream}/"),
        })
    }
}

/// A request URL's path and query, apart.
struct Target<'a> {
    path: &'a str,
    /// The query without its `?` and without a trailing control segment.
    query: Option<&'a str>,
    /// A `trackID=N` segment found after the query.
    control: Option<&'a str>,
}

impl Target<'_> {
    /// Splits `path?query#fragment`. A client that resolves a track's control attribute by
    /// appending it to the whole aggregate URL (`rtsp://h/live/cam?token=t/trackID=1`, what
    /// ffmpeg's `rtsp.c` and live555 do to a Content-Base or request URL with a query) puts the
    /// track's segment at the end of the query; it is taken back out here.
    fn split(path_and_query: &str) -> Target<'_> {
        let s = path_and_query.split('#').next().unwrap_or_default();
        let Some((path, query)) = s.split_once('?') else {
            return Target {
                path: s,
                query: None,
                control: None,
            };
        };
        let (query, control) = match query.rsplit_once('/') {
            Some((q, last)) if last.starts_with("trackID=") => (q, Some(last)),
            _ => (query, None),
        };
        Target {
            path,
            query: Some(query).filter(|q| !q.is_empty()),
            control,
        }
    }
}

/// The query of a request URI (without `?`, and without a `/trackID=N` a client appended after
/// it), where RTSP URLs carry `token=` or a signed link's `expires=` and `sig=`; `None` if empty.
pub fn uri_query(uri: &str) -> Option<&str> {
    let rest = uri.split_once("://").map_or(uri, |(_, r)| r);
    let path = rest.split_once('/').map_or("", |(_, p)| p);
    Target::split(path).query
}

fn track_id(segment: &str) -> Option<usize> {
    // An out-of-range id still parses here so the caller can answer "no such track" (404).
    segment
        .strip_prefix("trackID=")?
        .parse::<usize>()
        .ok()
        .map(|t| t.min(MAX_TRACK_ID + 1))
}

#[cfg(test)]
mod tests;

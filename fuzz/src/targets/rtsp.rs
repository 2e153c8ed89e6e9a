//! An RTSP client's byte stream: requests and interleaved `$` frames, parsed as they arrive and
//! handled by the connection state machine, whose policy questions are answered from the input.
//! Every parsed request re-serialises to bytes that parse to the same request, and every
//! response the server writes has a clean head: CRLF line ends only, no bare CR or LF that a
//! client could read as an extra header line.

use bytes::Bytes;
use rtsp::sdp::{Codec, Presentation, Track};
use rtsp::{Lower, Method, Parsed, Request, Response, RtpInfo, ServerConnection, ServerEvent};

pub fn run(data: &[u8]) {
    let Some((&policy, mut buf)) = data.split_first() else {
        return;
    };
    let mut conn = ServerConnection::new(u64::from(policy), 60, "fuzz");
    let mut n = 0u32;
    loop {
        let parsed = match rtsp::parse(buf) {
            Ok(p) => p,
            Err(e) => {
                let _ = e.status();
                return;
            }
        };
        match parsed {
            Parsed::Incomplete => return,
            Parsed::Interleaved {
                channel: _,
                consumed,
            } => {
                assert!(consumed >= 4 && consumed <= buf.len());
                buf = &buf[consumed..];
            }
            Parsed::Request { request, consumed } => {
                assert!(consumed > 0 && consumed <= buf.len());
                roundtrip(&request);
                check_query(&request.uri);
                handle(&mut conn, &request, policy.rotate_left(n % 8));
                buf = &buf[consumed..];
            }
        }
        n += 1;
    }
}

fn roundtrip(req: &Request) {
    let bytes = serialize(req);
    match rtsp::parse(&bytes) {
        Ok(Parsed::Request { request, consumed }) => {
            assert_eq!(&request, req, "parse(serialize(request)) == request");
            assert_eq!(consumed, bytes.len());
        }
        other => panic!("a serialised request does not parse back: {other:?}"),
    }
}

/// The query the access check reads is part of the URI, never empty, and without the
/// `/trackID=N` segment a client appended after it (a query that merely reads `trackID=...`, with
/// no `/` before it, is the client's own query and stays).
fn check_query(uri: &str) {
    if let Some(q) = rtsp::uri_query(uri) {
        assert!(!q.is_empty() && uri.contains(q), "query {q:?} of {uri:?}");
        let raw = q_after_path(uri);
        let expected = match raw.rsplit_once('/') {
            Some((head, last)) if last.starts_with("trackID=") => head,
            _ => raw,
        };
        assert_eq!(q, expected, "the query of {uri:?}");
    }
}

/// Everything between the path's first `?` and a `#`, as written.
fn q_after_path(uri: &str) -> &str {
    let rest = uri.split_once("://").map_or(uri, |(_, r)| r);
    let path = rest.split_once('/').map_or("", |(_, p)| p);
    let s = path.split('#').next().unwrap_or_default();
    s.split_once('?').map_or("", |(_, q)| q)
}

fn serialize(req: &Request) -> Vec<u8> {
    let method = match &req.method {
        Method::Options => "OPTIONS",
        Method::Describe => "DESCRIBE",
        Method::Setup => "SETUP",
        Method::Play => "PLAY",
        Method::Pause => "PAUSE",
        Method::Teardown => "TEARDOWN",
        Method::GetParameter => "GET_PARAMETER",
        Method::SetParameter => "SET_PARAMETER",
        Method::NotAllowed(m) | Method::Other(m) => m,
    };
    let mut out = format!("{method} {} {}\r\n", req.uri, req.version);
    for h in &req.headers {
        out.push_str(&format!("{}: {}\r\n", h.name, h.value));
    }
    out.push_str("\r\n");
    let mut out = out.into_bytes();
    out.extend_from_slice(&req.body);
    out
}

fn handle(conn: &mut ServerConnection, req: &Request, policy: u8) {
    let resp = match conn.handle(req) {
        ServerEvent::Respond(r)
        | ServerEvent::Pause(r)
        | ServerEvent::Teardown(r)
        | ServerEvent::Refused { response: r, .. } => r,
        ServerEvent::Describe { stream } if policy & 1 == 0 => {
            conn.accept_describe(&presentation(&stream))
        }
        ServerEvent::Setup { mut transport, .. } if policy & 2 == 0 => {
            if let Lower::Udp { server_port, .. } = &mut transport.lower {
                *server_port = Some((30000, 30001));
            }
            transport.ssrc = Some(0x1234);
            conn.accept_setup(transport)
        }
        ServerEvent::Play { tracks, .. } if policy & 4 == 0 => {
            let info: Vec<RtpInfo> = tracks
                .iter()
                .map(|(track, _)| RtpInfo {
                    track: *track,
                    sequence: 1,
                    rtp_timestamp: 2,
                })
                .collect();
            conn.accept_play(&info)
        }
        ServerEvent::Describe { .. } | ServerEvent::Setup { .. } | ServerEvent::Play { .. }
            if policy & 8 != 0 =>
        {
            // An access refusal keeps the session and adds challenge headers.
            let challenges = [
                "Digest realm=\"r\", nonce=\"n\"".to_owned(),
                "Basic realm=\"r\"".to_owned(),
            ];
            conn.reject_access(401, "no", &challenges)
        }
        _ => conn.reject(404, "no"),
    };
    check_response(&resp);
    let _ = conn.session_id();
    let _ = conn.is_playing();
}

fn presentation(stream: &str) -> Presentation {
    Presentation {
        name: stream.to_owned(),
        session_id: 1,
        version: 1,
        origin_address: "127.0.0.1".to_owned(),
        tracks: vec![Track {
            codec: Codec::Mpa,
            payload_type: 14,
            control: "trackID=0".to_owned(),
        }],
    }
}

/// The head of a response uses CRLF line ends only.
pub(crate) fn check_response(resp: &Response) {
    let bytes: Bytes = resp.to_bytes();
    let head_len = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a head end")
        + 4;
    check_crlf(&bytes[..head_len], "response head");
}

/// Every CR is followed by LF and every LF follows a CR.
pub(crate) fn check_crlf(text: &[u8], what: &str) {
    for (i, &b) in text.iter().enumerate() {
        if b == b'\r' {
            assert_eq!(
                text.get(i + 1),
                Some(&b'\n'),
                "bare CR in {what}: {:?}",
                String::from_utf8_lossy(text)
            );
        }
        if b == b'\n' {
            assert!(
                i > 0 && text[i - 1] == b'\r',
                "bare LF in {what}: {:?}",
                String::from_utf8_lossy(text)
            );
        }
    }
}

//! A scripted dialogue per behaviour: each step is a request, how the caller answers, and the exact
//! response text (golden RTSP responses).

use super::*;
use crate::message::{parse, Parsed};
use crate::sdp::{Codec, Track};

const SEED: u64 = 7;

/// How the test plays the caller for one request.
enum Answer {
    /// The machine answers by itself.
    Itself,
    /// Accept DESCRIBE with a one-track presentation.
    Describe,
    /// Accept SETUP with these server ports (UDP) and SSRC 0x1234.
    Setup(Option<(u16, u16)>),
    /// Accept PLAY with these RTP-Info entries.
    Play(Vec<RtpInfo>),
    /// Reject with a status.
    Reject(Status),
    /// Refuse access with a status and these challenges.
    Deny(Status, &'static [&'static str]),
}

fn request(text: &str) -> Request {
    match parse(text.as_bytes()) {
        Ok(Parsed::Request { request, .. }) => request,
        other => panic!("test request does not parse: {other:?}"),
    }
}

fn presentation() -> Presentation {
    let codec = Codec::Aac {
        sample_rate: 48_000,
        channels: 1,
        config: Bytes::from_static(&[0x11, 0x88]),
    };
    Presentation {
        name: "live/a".into(),
        session_id: 1,
        version: 1,
        origin_address: "127.0.0.1".into(),
        tracks: vec![Track {
            codec,
            payload_type: 97,
            control: "trackID=0".into(),
        }],
    }
}

fn step(conn: &mut ServerConnection, req: &str, answer: Answer) -> String {
    let event = conn.handle(&request(req));
    let resp = match (event, answer) {
        (
            ServerEvent::Respond(r)
            | ServerEvent::Pause(r)
            | ServerEvent::Teardown(r)
            | ServerEvent::Refused { response: r, .. },
            Answer::Itself,
        ) => r,
        (ServerEvent::Describe { stream }, Answer::Describe) => {
            assert_eq!(stream, "live/a");
            conn.accept_describe(&presentation())
        }
        (ServerEvent::Setup { mut transport, .. }, Answer::Setup(ports)) => {
            if let Lower::Udp { server_port, .. } = &mut transport.lower {
                *server_port = ports;
            }
            transport.ssrc = Some(0x1234);
            conn.accept_setup(transport)
        }
        (ServerEvent::Play { .. }, Answer::Play(info)) => conn.accept_play(&info),
        (
            ServerEvent::Describe { .. } | ServerEvent::Setup { .. } | ServerEvent::Play { .. },
            Answer::Reject(s),
        ) => conn.reject(s, "nope"),
        (
            ServerEvent::Describe { .. } | ServerEvent::Setup { .. } | ServerEvent::Play { .. },
            Answer::Deny(s, challenges),
        ) => {
            let challenges: Vec<String> = challenges.iter().map(|c| (*c).to_owned()).collect();
            conn.reject_access(s, "credentials required", &challenges)
        }
        (event, _) => panic!("{req}: unexpected event {event:?}"),
    };
    String::from_utf8(resp.to_bytes().to_vec()).expect("responses are UTF-8")
}

fn check(script: Vec<(&str, Answer, &str)>) {
    let mut conn = ServerConnection::new(SEED, 60, "gw");
    for (req, answer, want) in script {
        assert_eq!(step(&mut conn, req, answer), want, "request {req:?}");
    }
}

const SID: &str = "63CBE1E459320DD7";

#[test]
fn udp_dialogue_golden() {
    let sdp = presentation().to_sdp();
    let describe_ok = format!(
        "RTSP/1.0 200 OK\r\nCSeq: 2\r\nServer: gw\r\nContent-Base: rtsp://h:8554/live/a/\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
        sdp.len()
    );
    check(vec![
        (
            "OPTIONS rtsp://h:8554/live/a RTSP/1.0\r\nCSeq: 1\r\n\r\n",
            Answer::Itself,
            "RTSP/1.0 200 OK\r\nCSeq: 1\r\nServer: gw\r\nPublic: OPTIONS, DESCRIBE, SETUP, PLAY, PAUSE, TEARDOWN, GET_PARAMETER, SET_PARAMETER\r\n\r\n",
        ),
        ("DESCRIBE rtsp://h:8554/live/a?x=1 RTSP/1.0\r\nCSeq: 2\r\n\r\n", Answer::Describe, &describe_ok),
        (
            "SETUP rtsp://h:8554/live/a/trackID=0 RTSP/1.0\r\nCSeq: 3\r\nTransport: RTP/AVP;unicast;client_port=5000-5001\r\n\r\n",
            Answer::Setup(Some((30000, 30001))),
            &format!("RTSP/1.0 200 OK\r\nCSeq: 3\r\nServer: gw\r\nSession: {SID};timeout=60\r\nTransport: RTP/AVP;unicast;client_port=5000-5001;server_port=30000-30001;ssrc=00001234\r\n\r\n"),
        ),
        (
            &format!("PLAY rtsp://h:8554/live/a/ RTSP/1.0\r\nCSeq: 4\r\nSession: {SID}\r\n\r\n"),
            Answer::Play(vec![RtpInfo { track: 0, sequence: 5, rtp_timestamp: 6 }]),
            &format!("RTSP/1.0 200 OK\r\nCSeq: 4\r\nServer: gw\r\nSession: {SID};timeout=60\r\nRange: npt=now-\r\nRTP-Info: url=rtsp://h:8554/live/a/trackID=0;seq=5;rtptime=6\r\n\r\n"),
        ),
        (
            &format!("GET_PARAMETER rtsp://h:8554/live/a/ RTSP/1.0\r\nCSeq: 5\r\nSession: {SID}\r\n\r\n"),
            Answer::Itself,
            &format!("RTSP/1.0 200 OK\r\nCSeq: 5\r\nServer: gw\r\nSession: {SID};timeout=60\r\n\r\n"),
        ),
        (
            &format!("PAUSE rtsp://h:8554/live/a/ RTSP/1.0\r\nCSeq: 6\r\nSession: {SID}\r\n\r\n"),
            Answer::Itself,
            &format!("RTSP/1.0 200 OK\r\nCSeq: 6\r\nServer: gw\r\nSession: {SID};timeout=60\r\n\r\n"),
        ),
        (
            &format!("TEARDOWN rtsp://h:8554/live/a/ RTSP/1.0\r\nCSeq: 7\r\nSession: {SID}\r\n\r\n"),
            Answer::Itself,
            "RTSP/1.0 200 OK\r\nCSeq: 7\r\nServer: gw\r\n\r\n",
        ),
    ]);
}

#[test]
fn tcp_channels_chosen_by_server() {
    check(vec![(
        "SETUP rtsp://h/live/a/trackID=1 RTSP/1.0\r\nCSeq: 1\r\nTransport: RTP/AVP/TCP;unicast\r\n\r\n",
        Answer::Setup(None),
        &format!("RTSP/1.0 200 OK\r\nCSeq: 1\r\nServer: gw\r\nSession: {SID};timeout=60\r\nTransport: RTP/AVP/TCP;unicast;interleaved=2-3;ssrc=00001234\r\n\r\n"),
    )]);
}

/// Builds the golden text of an error response.
fn err(status: u16, reason: &str, cseq: &str, why: &str) -> String {
    let body = format!("{why}\r\n");
    format!("RTSP/1.0 {status} {reason}\r\n{cseq}Server: gw\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{body}", body.len())
}

/// One request, how the caller answers it, and the golden response.
type Step<'a> = (&'a str, Answer, String);

#[test]
fn error_table() {
    let setup = "SETUP rtsp://h/live/a/trackID=0 RTSP/1.0\r\nCSeq: 1\r\nTransport: RTP/AVP/TCP;interleaved=0-1\r\n\r\n";
    let setup_b_in_session = format!("SETUP rtsp://h/live/b/trackID=0 RTSP/1.0\r\nCSeq: 2\r\nSession: {SID}\r\nTransport: RTP/AVP/TCP;interleaved=2-3\r\n\r\n");
    let cases: Vec<(&str, Vec<Step<'_>>)> = vec![
        ("no CSeq", vec![("OPTIONS * RTSP/1.0\r\n\r\n", Answer::Itself, err(400, "Bad Request", "", "missing CSeq header"))]),
        (
            "RTSP 2.0",
            vec![("OPTIONS * RTSP/2.0\r\nCSeq: 1\r\n\r\n", Answer::Itself, err(505, "RTSP Version Not Supported", "CSeq: 1\r\n", "only RTSP/1.0 is supported"))],
        ),
        (
            "unknown session",
            vec![("PLAY rtsp://h/live/a RTSP/1.0\r\nCSeq: 1\r\nSession: 99\r\n\r\n", Answer::Itself, err(454, "Session Not Found", "CSeq: 1\r\n", "session 99 not found"))],
        ),
        (
            "PLAY before SETUP",
            vec![("PLAY rtsp://h/live/a RTSP/1.0\r\nCSeq: 1\r\n\r\n", Answer::Itself, err(455, "Method Not Valid in This State", "CSeq: 1\r\n", "PLAY before SETUP"))],
        ),
        (
            "multicast",
            vec![(
                "SETUP rtsp://h/live/a/trackID=0 RTSP/1.0\r\nCSeq: 1\r\nTransport: RTP/AVP;multicast\r\n\r\n",
                Answer::Itself,
                err(461, "Unsupported Transport", "CSeq: 1\r\n", "only unicast RTP/AVP over UDP (client_port) or RTP/AVP/TCP (interleaved) is supported"),
            )],
        ),
        (
            "privileged client port",
            vec![(
                "SETUP rtsp://h/live/a/trackID=0 RTSP/1.0\r\nCSeq: 1\r\nTransport: RTP/AVP;unicast;client_port=0-1\r\n\r\n",
                Answer::Itself,
                err(461, "Unsupported Transport", "CSeq: 1\r\n", "client_port 0-1 is not allowed: client ports must be 1024 or above"),
            )],
        ),
        ("missing track", vec![(setup, Answer::Reject(404), err(404, "Not Found", "CSeq: 1\r\n", "nope"))]),
        ("no stream", vec![("DESCRIBE rtsp://h/ RTSP/1.0\r\nCSeq: 1\r\n\r\n", Answer::Itself, err(404, "Not Found", "CSeq: 1\r\n", "no stream in the URL path"))]),
        (
            "other stream in session",
            vec![
                (setup, Answer::Setup(None), format!("RTSP/1.0 200 OK\r\nCSeq: 1\r\nServer: gw\r\nSession: {SID};timeout=60\r\nTransport: RTP/AVP/TCP;unicast;interleaved=0-1;ssrc=00001234\r\n\r\n")),
                (
                    &setup_b_in_session,
                    Answer::Itself,
                    err(459, "Aggregate Operation Not Allowed", "CSeq: 2\r\n", "a session covers tracks of one stream only"),
                ),
            ],
        ),
        (
            "a second session on one connection",
            vec![
                (setup, Answer::Setup(None), format!("RTSP/1.0 200 OK\r\nCSeq: 1\r\nServer: gw\r\nSession: {SID};timeout=60\r\nTransport: RTP/AVP/TCP;unicast;interleaved=0-1;ssrc=00001234\r\n\r\n")),
                (
                    "SETUP rtsp://h/live/b/trackID=0 RTSP/1.0\r\nCSeq: 2\r\nTransport: RTP/AVP/TCP;interleaved=2-3\r\n\r\n",
                    Answer::Itself,
                    err(455, "Method Not Valid in This State", "CSeq: 2\r\n", "this connection already has a session (one per connection); open another connection for another stream"),
                ),
            ],
        ),
        (
            "RECORD",
            vec![(
                "RECORD rtsp://h/live/a RTSP/1.0\r\nCSeq: 1\r\n\r\n",
                Answer::Itself,
                err(405, "Method Not Allowed", "CSeq: 1\r\n", "RECORD is not allowed: this server only plays"),
            )],
        ),
        ("FOO", vec![("FOO * RTSP/1.0\r\nCSeq: 1\r\n\r\n", Answer::Itself, err(501, "Not Implemented", "CSeq: 1\r\n", "method FOO not implemented"))]),
        ("TEARDOWN without session", vec![("TEARDOWN rtsp://h/live/a RTSP/1.0\r\nCSeq: 1\r\n\r\n", Answer::Itself, err(454, "Session Not Found", "CSeq: 1\r\n", "no session to tear down"))]),
    ];
    for (name, script) in cases {
        let mut conn = ServerConnection::new(SEED, 60, "gw");
        for (req, answer, want) in script {
            let got = step(&mut conn, req, answer);
            // The Allow header (RFC 2326 §12.4) is checked here so one golden builder serves every case.
            let got = if name == "RECORD" {
                got.replacen(&format!("Allow: {PUBLIC}\r\n"), "", 1)
            } else {
                got
            };
            assert_eq!(got, want, "{name}: {req:?}");
        }
    }
}

#[test]
fn refusals_name_their_limit() {
    let mut conn = ServerConnection::new(SEED, 60, "gw");
    let limit = |event: ServerEvent| match event {
        ServerEvent::Refused { limit, .. } => Some(limit),
        _ => None,
    };
    let privileged = "SETUP rtsp://h/live/a/trackID=0 RTSP/1.0\r\nCSeq: 1\r\nTransport: RTP/AVP;unicast;client_port=53-54\r\n\r\n";
    assert_eq!(
        limit(conn.handle(&request(privileged))),
        Some(Limit::PrivilegedClientPort)
    );
    let multicast = "SETUP rtsp://h/live/a/trackID=0 RTSP/1.0\r\nCSeq: 2\r\nTransport: RTP/AVP;multicast\r\n\r\n";
    assert_eq!(limit(conn.handle(&request(multicast))), None, "not a limit");
    let tcp = "SETUP rtsp://h/live/a/trackID=0 RTSP/1.0\r\nCSeq: 3\r\nTransport: RTP/AVP/TCP;interleaved=0-1\r\n\r\n";
    step(&mut conn, tcp, Answer::Setup(None));
    let other = "SETUP rtsp://h/live/b/trackID=0 RTSP/1.0\r\nCSeq: 4\r\nTransport: RTP/AVP/TCP;interleaved=2-3\r\n\r\n";
    assert_eq!(
        limit(conn.handle(&request(other))),
        Some(Limit::SessionsPerConnection)
    );
}

#[test]
fn url_table() {
    let cases = [
        (
            "rtsp://h:1/live/a",
            Some(("live/a", None, "rtsp://h:1/live/a/")),
        ),
        (
            "rtsp://h:1/live/a/",
            Some(("live/a", None, "rtsp://h:1/live/a/")),
        ),
        (
            "rtsp://h:1/live/a/trackID=1",
            Some(("live/a", Some(1), "rtsp://h:1/live/a/")),
        ),
        (
            "rtsp://h:1/live/a/trackID=999",
            Some(("live/a", Some(MAX_TRACK_ID + 1), "rtsp://h:1/live/a/")),
        ),
        (
            "rtsp://h:1/live/a?token=x",
            Some(("live/a", None, "rtsp://h:1/live/a/")),
        ),
        // ffmpeg and live555 append a relative control to the whole URL, query included.
        (
            "rtsp://h:1/live/a?token=x/trackID=1",
            Some(("live/a", Some(1), "rtsp://h:1/live/a/")),
        ),
        (
            "rtsp://h:1/live/a/?token=x/trackID=0",
            Some(("live/a", Some(0), "rtsp://h:1/live/a/")),
        ),
        (
            "rtsp://h:1/live/a/trackID=1?token=x",
            Some(("live/a", Some(1), "rtsp://h:1/live/a/")),
        ),
        (
            "rtsp://u:pw@h:1/live/a",
            Some(("live/a", None, "rtsp://h:1/live/a/")),
        ),
        ("rtsp://h:1/live/a?t=1/trackID=x", None),
        ("rtsp://h:1/", None),
        ("rtsp://h:1/trackID=0", None),
        ("rtsp://h:1/live/a/trackID=x", None),
    ];
    for (uri, want) in cases {
        let got = RtspUrl::parse(uri);
        let want = want.map(|(s, t, b)| RtspUrl {
            stream: s.into(),
            track: t,
            base: b.into(),
        });
        assert_eq!(got, want, "{uri}");
    }
}

#[test]
fn uri_query_table() {
    let cases = [
        ("rtsp://h:1/live/a", None),
        ("rtsp://h:1/live/a?", None),
        ("rtsp://h:1/live/a?token=x", Some("token=x")),
        ("rtsp://h:1/live/a?token=x/trackID=1", Some("token=x")),
        ("rtsp://h:1/live/a/trackID=1?token=x", Some("token=x")),
        (
            "rtsp://h:1/live/a?expires=9&sig=ab#frag",
            Some("expires=9&sig=ab"),
        ),
        ("rtsp://h:1/live/a?a=b/c", Some("a=b/c")),
        ("rtsp://h:1/live/a?/trackID=0", None),
        ("*", None),
    ];
    for (uri, want) in cases {
        assert_eq!(uri_query(uri), want, "{uri}");
    }
}

/// A refusal keeps the connection's session (named in the response, so the client retries in
/// it) and carries one WWW-Authenticate header per challenge; the session is still usable.
#[test]
fn access_refusals_golden() {
    let setup = "SETUP rtsp://h/live/a/trackID=0 RTSP/1.0\r\nCSeq: 1\r\nTransport: RTP/AVP/TCP;interleaved=0-1\r\n\r\n";
    let body = "credentials required\r\n";
    let len = body.len();
    check(vec![
        (
            "DESCRIBE rtsp://h/live/a RTSP/1.0\r\nCSeq: 1\r\n\r\n",
            Answer::Deny(401, &["Digest realm=\"r\", nonce=\"n\"", "Basic realm=\"r\""]),
            &format!("RTSP/1.0 401 Unauthorized\r\nCSeq: 1\r\nServer: gw\r\nContent-Type: text/plain\r\nWWW-Authenticate: Digest realm=\"r\", nonce=\"n\"\r\nWWW-Authenticate: Basic realm=\"r\"\r\nContent-Length: {len}\r\n\r\n{body}"),
        ),
        (
            setup,
            Answer::Setup(None),
            &format!("RTSP/1.0 200 OK\r\nCSeq: 1\r\nServer: gw\r\nSession: {SID};timeout=60\r\nTransport: RTP/AVP/TCP;unicast;interleaved=0-1;ssrc=00001234\r\n\r\n"),
        ),
        (
            &format!("PLAY rtsp://h/live/a/ RTSP/1.0\r\nCSeq: 2\r\nSession: {SID}\r\n\r\n"),
            Answer::Deny(403, &[]),
            &format!("RTSP/1.0 403 Forbidden\r\nCSeq: 2\r\nServer: gw\r\nContent-Type: text/plain\r\nSession: {SID};timeout=60\r\nContent-Length: {len}\r\n\r\n{body}"),
        ),
        (
            &format!("PLAY rtsp://h/live/a/ RTSP/1.0\r\nCSeq: 3\r\nSession: {SID}\r\n\r\n"),
            Answer::Play(vec![]),
            &format!("RTSP/1.0 200 OK\r\nCSeq: 3\r\nServer: gw\r\nSession: {SID};timeout=60\r\nRange: npt=now-\r\n\r\n"),
        ),
    ]);
}

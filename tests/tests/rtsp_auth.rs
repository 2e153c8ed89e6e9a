//! Access control on RTSP and MMS, as clients meet it: `[[auth.rule]]` policies with users
//! (RTSP basic/digest), tokens in the URL, signed expiring links, IP lists and hooks. Real
//! clients play when they hold the credential (ffmpeg/ffprobe over TCP and UDP, retina,
//! GStreamer's rtspsrc, ffprobe over MMSH and MMST) and are refused as a user would see it
//! (ffmpeg prints the 401 or 403; MMST answers E_ACCESSDENIED); raw requests check the exact
//! refusal (both `WWW-Authenticate` challenges, CSeq, the connection left open).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use gateway_config::{Config, PolicySection, RuleSection};
use gateway_tests::{
    assert_media, ffprobe_decode_with, gst_timeout, require_gst_player, require_tool,
    run_with_timeout, timed_out, Beacon, Expect, Gst, Live, TestGateway, CELL_SECS, PLAY_SECS,
};

const USER: &str = "viewer";
const PASSWORD: &str = "secret";
const TOKEN: &str = "t0ken-for-tests";
const SIGN_SECRET: &str = "sign-secret-for-tests";

/// One `[[auth.rule]]` for `live/test` whose play policy is `play`; publishing stays open.
fn protect(c: &mut Config, play: PolicySection) {
    c.auth.rule.push(RuleSection {
        app: "live".into(),
        stream: "test".into(),
        play,
        ..RuleSection::default()
    });
}

fn users(c: &mut Config) {
    protect(
        c,
        PolicySection {
            users: vec![format!("{USER}:{PASSWORD}")],
            ..PolicySection::default()
        },
    );
}

fn tokens(c: &mut Config) {
    protect(
        c,
        PolicySection {
            tokens: vec![TOKEN.into()],
            ..PolicySection::default()
        },
    );
}

fn signed(c: &mut Config) {
    c.auth.sign_secret = SIGN_SECRET.into();
    protect(
        c,
        PolicySection {
            signed: true,
            ..PolicySection::default()
        },
    );
}

fn rtsp_addr(g: &TestGateway) -> SocketAddr {
    g.rtsp_addr()
        .expect("RTSP is enabled in the default configuration")
}

/// `rtsp://{userinfo}127.0.0.1:PORT/live/test{query}`.
fn rtsp_url(g: &TestGateway, userinfo: &str, query: &str) -> String {
    format!("rtsp://{userinfo}{}/{}{query}", rtsp_addr(g), Live::KEY)
}

fn ffprobe_plays(live: &mut Live, url: &str, transport: &str) {
    let report = ffprobe_decode_with(url, PLAY_SECS, &["-rtsp_transport", transport]);
    live.assert_publishing();
    let what = format!("ffprobe rtsp/{transport} play of {url}");
    assert_media(&what, &report, &Expect::av(CELL_SECS));
}

/// Runs ffprobe on `url`, expects it to fail, and returns its stderr.
fn ffprobe_fails(url: &str, args: &[&str]) -> String {
    let mut cmd = Command::new("ffprobe");
    cmd.args(["-hide_banner", "-v", "error", "-rw_timeout", "15000000"])
        .args(args)
        .arg(url);
    let out = run_with_timeout(cmd, Duration::from_secs(60));
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !timed_out(&out),
        "ffprobe {url} timed out; stderr:\n{stderr}"
    );
    assert!(
        !out.status.success(),
        "ffprobe {url} should have been refused; stderr:\n{stderr}"
    );
    stderr
}

/// A response read by the raw clients below.
#[derive(Debug)]
struct Raw {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Raw {
    fn all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.all(name).first().copied()
    }
}

/// Reads one response head and its Content-Length body (none for a streaming answer).
fn read_raw(s: &mut TcpStream) -> Raw {
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("a read timeout can be set");
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = s.read(&mut chunk).expect("the server answers");
        assert!(
            n > 0,
            "closed before a response: {:?}",
            String::from_utf8_lossy(&buf)
        );
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {head:?}"));
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let len: usize = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("Content-Length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    while buf.len() < head_end + len {
        let n = s.read(&mut chunk).expect("the body arrives");
        assert!(n > 0, "closed inside the body");
        buf.extend_from_slice(&chunk[..n]);
    }
    let body = String::from_utf8_lossy(&buf[head_end..head_end + len]).into_owned();
    Raw {
        status,
        headers,
        body,
    }
}

/// A raw RTSP connection from `from` (127.0.0.1, or 127.0.0.2 to play another host).
fn rtsp_connect(g: &TestGateway, from: &str) -> TcpStream {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
        .expect("a TCP socket");
    let local: SocketAddr = format!("{from}:0").parse().expect("an address");
    socket.bind(&local.into()).expect("bind a loopback address");
    socket
        .connect(&rtsp_addr(g).into())
        .expect("connect to the RTSP listener");
    socket.into()
}

fn describe(s: &mut TcpStream, url: &str, cseq: u32, extra: &str) -> Raw {
    let req = format!(
        "DESCRIBE {url} RTSP/1.0\r\nCSeq: {cseq}\r\nAccept: application/sdp\r\n{extra}\r\n"
    );
    s.write_all(req.as_bytes()).expect("the request is sent");
    read_raw(s)
}

fn basic(user: &str, password: &str) -> String {
    // RFC 7617's base64 of "user:password", without a dependency for eight lines.
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let input = format!("{user}:{password}");
    let mut out = String::new();
    for chunk in input.as_bytes().chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    format!("Authorization: Basic {out}\r\n")
}

/// Without credentials DESCRIBE is answered 401 with the digest challenge, then the basic one,
/// and the connection stays open: a wrong password on it is 401 again, the right one passes
/// (to the 404 of a stream that is not live).
#[test]
fn describe_without_credentials_gets_401_with_both_challenges() {
    let g = TestGateway::start_with(users);
    let url = rtsp_url(&g, "", "");
    let mut s = rtsp_connect(&g, "127.0.0.1");
    let r = describe(&mut s, &url, 2, "");
    assert_eq!(r.status, 401, "{r:?}");
    assert_eq!(r.header("CSeq"), Some("2"), "{r:?}");
    let challenges = r.all("WWW-Authenticate");
    assert_eq!(challenges.len(), 2, "{r:?}");
    assert!(
        challenges[0].starts_with("Digest realm=\"gateway\", nonce=\""),
        "{challenges:?}"
    );
    assert_eq!(challenges[1], "Basic realm=\"gateway\"");
    assert!(r.body.contains("credentials required"), "{r:?}");
    let r = describe(&mut s, &url, 3, &basic(USER, "wrong"));
    assert_eq!((r.status, r.header("CSeq")), (401, Some("3")), "{r:?}");
    // The stream is not live: a client with access learns that, and only then.
    let r = describe(&mut s, &url, 4, &basic(USER, PASSWORD));
    assert_eq!((r.status, r.header("CSeq")), (404, Some("4")), "{r:?}");
    // Admitted once, the connection needs no credentials for the stream again (clients drop
    // a URL's token from SETUP and PLAY), but any it sends must still be right.
    let r = describe(&mut s, &url, 5, "");
    assert_eq!(r.status, 404, "{r:?}");
    let r = describe(&mut s, &url, 6, &basic(USER, "wrong"));
    assert_eq!(r.status, 401, "{r:?}");
    // Another connection starts from nothing.
    let r = describe(&mut rtsp_connect(&g, "127.0.0.1"), &url, 1, "");
    assert_eq!(r.status, 401, "{r:?}");
}

/// ffmpeg answers the digest challenge (it prefers digest to basic), then plays over TCP; a
/// wrong password makes it print the 401.
#[test]
fn ffmpeg_plays_with_digest_over_tcp_and_a_wrong_password_gets_401() {
    if !require_tool("ffmpeg") || !require_tool("ffprobe") {
        return;
    }
    let mut live = Live::ffmpeg_with("av.flv", users);
    let wrong = rtsp_url(&live.gateway, &format!("{USER}:nope@"), "");
    let err = ffprobe_fails(&wrong, &["-rtsp_transport", "tcp"]);
    assert!(err.contains("401 Unauthorized"), "ffprobe said:\n{err}");
    let none = ffprobe_fails(
        &rtsp_url(&live.gateway, "", ""),
        &["-rtsp_transport", "tcp"],
    );
    assert!(none.contains("401 Unauthorized"), "ffprobe said:\n{none}");

    // ffmpeg's trace log shows each request it sends, headers included.
    let url = rtsp_url(&live.gateway, &format!("{USER}:{PASSWORD}@"), "");
    let mut cmd = Command::new("ffmpeg");
    cmd.args([
        "-hide_banner",
        "-nostdin",
        "-v",
        "trace",
        "-rtsp_transport",
        "tcp",
    ])
    .args(["-i", &url, "-t", "2", "-f", "null", "-"]);
    let out = run_with_timeout(cmd, Duration::from_secs(60));
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "ffmpeg failed:\n{log}");
    let sent: Vec<&str> = log
        .split("Sending:")
        .skip(1)
        .map(|r| r.split("\n--").next().unwrap_or_default().trim())
        .collect();
    // The first DESCRIBE goes without credentials and gets the 401 with the challenges; every
    // request after it answers the digest challenge.
    let first_answer = sent
        .iter()
        .position(|r| r.contains("Authorization: Digest username=\"viewer\""))
        .unwrap_or_else(|| panic!("ffmpeg never answered the digest challenge:\n{log}"));
    for method in ["DESCRIBE", "SETUP", "PLAY"] {
        let answered: Vec<&&str> = sent[first_answer..]
            .iter()
            .filter(|r| r.starts_with(method))
            .collect();
        assert!(
            !answered.is_empty(),
            "ffmpeg sent no {method} after the 401:\n{log}"
        );
        for r in answered {
            assert!(
                r.contains("Authorization: Digest username=\"viewer\""),
                "ffmpeg's {method} has no digest answer:\n{r}"
            );
        }
    }
    assert!(
        !log.contains("Authorization: Basic"),
        "ffmpeg sent basic:\n{log}"
    );

    ffprobe_plays(&mut live, &url, "tcp");
}

#[test]
fn ffprobe_plays_with_digest_over_udp() {
    if !require_tool("ffmpeg") || !require_tool("ffprobe") {
        return;
    }
    let mut live = Live::ffmpeg_with("av.flv", users);
    let url = rtsp_url(&live.gateway, &format!("{USER}:{PASSWORD}@"), "");
    ffprobe_plays(&mut live, &url, "udp");
}

/// retina, given `Credentials`, answers the challenge and plays every track over TCP.
#[test]
fn retina_plays_with_credentials() {
    use futures_util::StreamExt;
    use retina::client::{Credentials, SessionOptions, Transport};
    use retina::codec::CodecItem;
    if !require_tool("ffmpeg") {
        return;
    }
    let mut live = Live::ffmpeg_with("av.flv", users);
    let url = url::Url::parse(&rtsp_url(&live.gateway, "", "")).expect("a valid URL");
    let (video, audio) = live.gateway.block_on(async move {
        let creds = Credentials {
            username: USER.into(),
            password: PASSWORD.into(),
        };
        let opts = SessionOptions::default().creds(Some(creds));
        let session = retina::client::Session::describe(url, opts)
            .await
            .expect("DESCRIBE with credentials succeeds");
        let tcp = Transport::Tcp(Default::default());
        let mut demuxed = gateway_tests::retina_play::setup_all_and_play(session, tcp).await;
        let (mut video, mut audio) = (0usize, 0usize);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while video < 50 {
            let Ok(item) = tokio::time::timeout_at(deadline, demuxed.next()).await else {
                break;
            };
            match item.expect("the session goes on").expect("no retina error") {
                CodecItem::VideoFrame(_) => video += 1,
                CodecItem::AudioFrame(_) => audio += 1,
                _ => {}
            }
        }
        (video, audio)
    });
    live.assert_publishing();
    assert!(
        video >= 50 && audio > 0,
        "retina got {video} video and {audio} audio frames"
    );
}

/// GStreamer's rtspsrc takes the user and password from the URL and plays over TCP.
#[test]
fn gstreamer_rtspsrc_plays_with_credentials() {
    let expect = Expect::av(CELL_SECS);
    let elements = ["rtspsrc", "rtph264depay", "rtpmp4gdepay"];
    if !require_tool("ffmpeg") || !require_gst_player(&expect, &elements) {
        return;
    }
    let mut live = Live::ffmpeg_with("av.flv", users);
    let url = rtsp_url(&live.gateway, &format!("{USER}:{PASSWORD}@"), "");
    let report = Gst::decode(
        &Gst::rtsp_pipeline(&url, "tcp", &expect),
        &expect,
        gst_timeout(),
    );
    live.assert_publishing();
    assert_media("gstreamer rtspsrc with credentials", &report, &expect);
}

/// A `token=` in the URL admits ffmpeg, whose SETUP and PLAY URLs (from the query-free
/// Content-Base) do not repeat it; a wrong token is 401.
#[test]
fn ffmpeg_plays_with_a_token_in_the_url() {
    if !require_tool("ffmpeg") || !require_tool("ffprobe") {
        return;
    }
    let mut live = Live::ffmpeg_with("av.flv", tokens);
    let wrong = rtsp_url(&live.gateway, "", "?token=nope");
    let err = ffprobe_fails(&wrong, &["-rtsp_transport", "tcp"]);
    assert!(err.contains("401 Unauthorized"), "ffprobe said:\n{err}");
    let url = rtsp_url(&live.gateway, "", &format!("?token={TOKEN}"));
    ffprobe_plays(&mut live, &url, "tcp");
}

/// `sig` as the documented openssl recipe makes it (crates/access/src/signed.rs).
fn openssl_signature(message: &str) -> String {
    let mut cmd = Command::new("sh");
    cmd.args([
        "-c",
        "printf '%s' \"$1\" | openssl dgst -sha256 -hmac \"$2\" -hex",
        "sh",
        message,
        SIGN_SECRET,
    ]);
    let out = run_with_timeout(cmd, Duration::from_secs(10));
    let text = String::from_utf8_lossy(&out.stdout);
    text.trim()
        .rsplit(' ')
        .next()
        .unwrap_or_default()
        .to_owned()
}

fn signed_query(expires: u64) -> String {
    let sig = openssl_signature(&format!("play:/{}:{expires}", Live::KEY));
    format!("?expires={expires}&sig={sig}")
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the clock is past 1970")
        .as_secs()
}

/// A signed link plays with ffmpeg; the same link past its expiry is 403.
#[test]
fn a_signed_link_plays_and_an_expired_one_gets_403() {
    if !require_tool("ffmpeg") || !require_tool("ffprobe") || !require_tool("openssl") {
        return;
    }
    let mut live = Live::ffmpeg_with("av.flv", signed);
    let expired = rtsp_url(&live.gateway, "", &signed_query(unix_now() - 60));
    let err = ffprobe_fails(&expired, &["-rtsp_transport", "tcp"]);
    assert!(err.contains("403 Forbidden"), "ffprobe said:\n{err}");
    let mut s = rtsp_connect(&live.gateway, "127.0.0.1");
    let r = describe(&mut s, &expired, 1, "");
    assert_eq!(r.status, 403, "{r:?}");
    assert!(r.all("WWW-Authenticate").is_empty(), "{r:?}");
    assert!(r.body.contains("expired"), "{r:?}");
    let url = rtsp_url(&live.gateway, "", &signed_query(unix_now() + 3600));
    ffprobe_plays(&mut live, &url, "tcp");
}

/// A raw MMSH request, as Windows Media Player makes it; returns the response head.
fn mmsh_request(g: &TestGateway, from: &str, path: &str) -> Raw {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
        .expect("a TCP socket");
    let local: SocketAddr = format!("{from}:0").parse().expect("an address");
    socket.bind(&local.into()).expect("bind a loopback address");
    socket
        .connect(&g.http_addr().into())
        .expect("connect to the HTTP listener");
    let mut s: TcpStream = socket.into();
    let req = format!(
        "GET {path} HTTP/1.0\r\nHost: {}\r\nUser-Agent: NSPlayer/7.10.0.3059\r\n\
         Pragma: xClientGUID={{3300AD50-2C39-46c0-AE0A-000000000000}}\r\n\
         Pragma: xPlayStrm=1\r\n\r\n",
        g.http_addr()
    );
    s.write_all(req.as_bytes()).expect("the request is sent");
    read_raw(&mut s)
}

/// An IP deny list refuses 127.0.0.1 on RTSP and MMSH alike (403, no challenge), while
/// 127.0.0.2 gets past it.
#[test]
fn an_ip_deny_list_refuses_the_address() {
    let g = TestGateway::start_with(|c| {
        protect(
            c,
            PolicySection {
                deny_ips: vec!["127.0.0.1".into()],
                ..PolicySection::default()
            },
        )
    });
    let url = rtsp_url(&g, "", "");
    let r = describe(&mut rtsp_connect(&g, "127.0.0.1"), &url, 1, "");
    assert_eq!(r.status, 403, "{r:?}");
    assert!(r.all("WWW-Authenticate").is_empty(), "{r:?}");
    // Past the list, the stream is simply not live.
    let r = describe(&mut rtsp_connect(&g, "127.0.0.2"), &url, 1, "");
    assert_eq!(r.status, 404, "{r:?}");
    let r = mmsh_request(&g, "127.0.0.1", "/live/test");
    assert_eq!(r.status, 403, "{r:?}");
    let r = mmsh_request(&g, "127.0.0.2", "/live/test");
    assert_eq!(r.status, 404, "{r:?}");
}

/// An on_play hook that cannot be reached refuses (fail-closed): RTSP and MMSH answer 403.
#[test]
fn an_unreachable_hook_refuses() {
    let g = TestGateway::start_with(|c| c.auth.hooks.on_play = "http://127.0.0.1:1/play".into());
    let r = describe(
        &mut rtsp_connect(&g, "127.0.0.1"),
        &rtsp_url(&g, "", ""),
        1,
        "",
    );
    assert_eq!(r.status, 403, "{r:?}");
    assert!(r.body.contains("on_play hook"), "{r:?}");
    let r = mmsh_request(&g, "127.0.0.1", "/live/test");
    assert_eq!(r.status, 403, "{r:?}");
}

fn ffmpeg_plays_briefly(url: &str, args: &[&str]) {
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-hide_banner", "-nostdin", "-v", "error"])
        .args(args)
        .args(["-i", url, "-t", "2", "-f", "null", "-"]);
    let out = run_with_timeout(cmd, Duration::from_secs(60));
    assert!(
        out.status.success(),
        "ffmpeg {url} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The on_play hook is asked once per RTSP client (not for each of DESCRIBE, SETUP and PLAY),
/// and on_stop is told when each RTSP, MMSH and MMST viewer leaves, with the bytes it was sent.
#[test]
fn hooks_are_asked_once_per_viewer_and_told_when_it_leaves() {
    if !require_tool("ffmpeg") {
        return;
    }
    let beacon = Beacon::start();
    let hooks = beacon.url();
    let live = Live::ffmpeg_with("av.flv", |c| {
        c.auth.hooks.on_play = format!("{hooks}/play");
        c.auth.hooks.on_stop = format!("{hooks}/stop");
    });
    let g = &live.gateway;
    let mmsh = format!("mmsh://{}/{}", g.http_addr(), Live::KEY);
    let mms_addr = g.mms_addr().expect("MMS is enabled by default");
    let mmst = format!("mmst://{mms_addr}/{}", Live::KEY);
    let cases = [
        (
            "rtsp",
            rtsp_url(g, "", ""),
            vec!["-rtsp_transport", "tcp"],
            1,
        ),
        (
            "rtsp",
            rtsp_url(g, "", ""),
            vec!["-rtsp_transport", "udp"],
            1,
        ),
        ("mmst", mmst, vec![], 1),
        // ffmpeg's MMSH client asks twice (a describe request, then the play request).
        ("mmsh", mmsh, vec![], 2),
    ];
    for (protocol, url, args, asked) in cases {
        ffmpeg_plays_briefly(&url, &args);
        let mut plays = 0;
        let stop = beacon
            .wait_for(Duration::from_secs(20), |hit| {
                plays += usize::from(hit.path == "/play");
                hit.path == "/stop"
            })
            .unwrap_or_else(|| panic!("no on_stop for {url}"));
        let body: serde_json::Value = serde_json::from_str(&stop.body).expect("JSON");
        assert_eq!(plays, asked, "on_play calls for {url}");
        assert_eq!(body["action"], "stop", "{body}");
        assert_eq!(body["protocol"], protocol, "{body}");
        assert_eq!(body["stream"], "test", "{body}");
        assert!(body["bytes"].as_u64() > Some(10_000), "{url}: {body}");
    }
}

fn mms_tokens(c: &mut Config) {
    tokens(c);
    c.mms
        .publishing_points
        .push(gateway_config::PublishingPoint {
            name: "LiveEvents".into(),
            stream: Live::KEY.into(),
        });
}

/// MMSH without the token (or with a wrong one) is 401 with both challenges; with it ffprobe plays. The
/// publishing point `LiveEvents` is governed by the rule of the stream it maps to.
#[test]
fn mmsh_needs_the_token() {
    if !require_tool("ffmpeg") || !require_tool("ffprobe") {
        return;
    }
    let mut live = Live::ffmpeg_with("av.flv", mms_tokens);
    for path in ["/live/test", "/LiveEvents", "/live/test?token=nope"] {
        let r = mmsh_request(&live.gateway, "127.0.0.1", path);
        assert_eq!(r.status, 401, "{path}: {r:?}");
        assert_eq!(r.all("WWW-Authenticate").len(), 2, "{path}: {r:?}");
    }
    let url = format!(
        "mmsh://{}/LiveEvents?token={TOKEN}",
        live.gateway.http_addr()
    );
    let report = ffprobe_decode_with(&url, PLAY_SECS, &[]);
    live.assert_publishing();
    assert_media(&format!("ffprobe {url}"), &report, &Expect::av(CELL_SECS));
}

/// MMST's OpenFile without the token is answered E_ACCESSDENIED (ffmpeg prints the code); with
/// the token in the path ffprobe plays.
#[test]
fn mmst_needs_the_token() {
    if !require_tool("ffmpeg") || !require_tool("ffprobe") {
        return;
    }
    let mut live = Live::ffmpeg_with("av.flv", mms_tokens);
    let addr = live.gateway.mms_addr().expect("MMS is enabled by default");
    let err = ffprobe_fails(&format!("mmst://{addr}/{}", Live::KEY), &[]);
    assert!(err.contains("0x80070005"), "ffprobe said:\n{err}");
    let url = format!("mmst://{addr}/{}?token={TOKEN}", Live::KEY);
    let report = ffprobe_decode_with(&url, PLAY_SECS, &[]);
    live.assert_publishing();
    assert_media(&format!("ffprobe {url}"), &report, &Expect::av(CELL_SECS));
}

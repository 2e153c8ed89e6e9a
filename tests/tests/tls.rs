//! TLS on every protocol: ffmpeg publishes over `rtmps://` (as OBS does), and real clients play
//! the stream back over RTMPS, HTTPS (HLS and HTTP-FLV), WSS and RTSPS. A CA and the server's
//! certificates are made at run time (rcgen) into a temporary directory.
//!
//! Also: a replaced certificate is presented to new handshakes while a viewer connected before
//! keeps playing; with the plain listeners off only the TLS ones listen, and a client speaking
//! plain RTMP to the RTMPS port is refused, counted and logged with its address; RTSPS refuses
//! UDP transport with 461.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gateway_config::Config;
use gateway_tests::gateway::LIVE_TIMEOUT;
use gateway_tests::{
    assert_media, browser_play, check_start, ffprobe_decode, ffprobe_decode_with, fixture,
    gst_timeout, http_get, require_browser_check, require_gst_player, require_tool, wait_until,
    with_tls, CertFiles, Expect, Ffmpeg, Gst, HookServer, StartTag, TestCa, TestGateway, Watcher,
    CELL_SECS, PLAY_SECS,
};
use rustls::pki_types::ServerName;

const KEY: &str = "live/test";

/// A gateway with every TLS listener on (the plain ones too unless `edit` turns them off) and
/// ffmpeg publishing `av.flv` over RTMPS.
struct TlsLive {
    gateway: TestGateway,
    publisher: Ffmpeg,
    ca: TestCa,
    files: CertFiles,
}

impl TlsLive {
    fn start() -> TlsLive {
        TlsLive::start_with(|_| {})
    }

    fn start_with(edit: impl FnOnce(&mut Config)) -> TlsLive {
        let ca = TestCa::new();
        let files = CertFiles::new(&ca.issue("gateway one", 1));
        let gateway = TestGateway::start_with(|c| {
            with_tls(c, &files.cert(), &files.key());
            edit(c);
        });
        let url = format!("rtmps://{}/{KEY}", rtmps(&gateway));
        let mut publisher = Ffmpeg::publish(&fixture("av.flv"), &url);
        if !gateway.wait_live(KEY, LIVE_TIMEOUT) {
            publisher.assert_running();
            panic!(
                "{url} did not become live; ffmpeg said:\n{}",
                publisher.log()
            );
        }
        TlsLive {
            gateway,
            publisher,
            ca,
            files,
        }
    }

    fn https_url(&self, path: &str) -> String {
        let addr = self.gateway.https_addr().expect("HTTPS is on");
        format!("https://{addr}{path}")
    }

    fn rtsps_url(&self) -> String {
        let addr = self.gateway.rtsps_addr().expect("RTSPS is on");
        format!("rtsps://{addr}/{KEY}")
    }

    fn rtmps_url(&self) -> String {
        format!("rtmps://{}/{KEY}", rtmps(&self.gateway))
    }
}

fn rtmps(gw: &TestGateway) -> SocketAddr {
    gw.rtmps_addr().expect("RTMPS is on")
}

fn need_ffmpeg() -> bool {
    require_tool("ffmpeg") && require_tool("ffprobe")
}

/// Connects to `addr` over TLS as `127.0.0.1`, trusting only `config`'s roots.
fn tls_connect(
    addr: SocketAddr,
    config: Arc<rustls::ClientConfig>,
) -> rustls::StreamOwned<rustls::ClientConnection, TcpStream> {
    let name = ServerName::from(addr.ip());
    let conn = rustls::ClientConnection::new(config, name).expect("a client connection");
    let tcp = TcpStream::connect(addr).expect("the TLS listener accepts");
    tcp.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("set a timeout");
    rustls::StreamOwned::new(conn, tcp)
}

/// The leaf certificate a new handshake on `addr` is given (the handshake verifies it against
/// the CA and for 127.0.0.1).
fn presented_certificate(addr: SocketAddr, ca: &TestCa) -> Result<Vec<u8>, String> {
    let mut s = tls_connect(addr, ca.client_config());
    while s.conn.is_handshaking() {
        s.conn
            .complete_io(&mut s.sock)
            .map_err(|e| format!("TLS handshake with {addr}: {e}"))?;
    }
    let leaf = s
        .conn
        .peer_certificates()
        .and_then(|c| c.first())
        .ok_or("no certificate presented")?;
    Ok(leaf.to_vec())
}

#[test]
fn ffmpeg_publishes_over_rtmps_and_ffprobe_plays_rtmps() {
    if !need_ffmpeg() {
        return;
    }
    let mut live = TlsLive::start();
    let report = ffprobe_decode(&live.rtmps_url(), PLAY_SECS);
    live.publisher.assert_running();
    assert_media("ffprobe rtmps play", &report, &Expect::av(CELL_SECS));
}

#[test]
fn ffprobe_plays_http_flv_over_https() {
    if !need_ffmpeg() {
        return;
    }
    let mut live = TlsLive::start();
    let report = ffprobe_decode(&live.https_url(&format!("/{KEY}.flv")), PLAY_SECS);
    live.publisher.assert_running();
    assert_media("ffprobe https flv play", &report, &Expect::av(CELL_SECS));
}

#[test]
fn ffprobe_plays_hls_over_https() {
    if !need_ffmpeg() {
        return;
    }
    let mut live = TlsLive::start();
    // The muxer starts on the first request and needs a whole GOP for its first segment; wait
    // for it on the plain listener so the TLS client's first request is served at once.
    let plain = live.gateway.http_url(&format!("/{KEY}/index.m3u8"));
    let ready = wait_until(Duration::from_secs(20), || {
        http_get(&plain, Duration::from_secs(5)).is_ok_and(|r| r.text().contains("#EXTINF"))
    });
    assert!(ready, "{plain} listed no segment");
    let url = live.https_url(&format!("/{KEY}/index.m3u8"));
    let report = ffprobe_decode(&url, PLAY_SECS);
    live.publisher.assert_running();
    assert_media("ffprobe https hls play", &report, &Expect::av(CELL_SECS));
}

#[test]
fn ffprobe_plays_rtsps_interleaved() {
    if !need_ffmpeg() {
        return;
    }
    let mut live = TlsLive::start();
    // Debian's ffmpeg (GnuTLS) does not verify certificates unless asked (`-tls_verify 1`), and
    // always uses TCP for rtsps://; the transport is named anyway.
    let args = ["-rtsp_transport", "tcp"];
    let report = ffprobe_decode_with(&live.rtsps_url(), PLAY_SECS, &args);
    live.publisher.assert_running();
    assert_media("ffprobe rtsps play", &report, &Expect::av(CELL_SECS));
}

#[test]
fn gstreamer_rtspsrc_plays_rtsps() {
    let expect = Expect::av(CELL_SECS);
    let elements = ["rtspsrc", "rtph264depay", "rtpmp4gdepay"];
    if !require_tool("ffmpeg") || !require_gst_player(&expect, &elements) {
        return;
    }
    let mut live = TlsLive::start();
    let pipeline = Gst::rtsp_pipeline(&live.rtsps_url(), "tcp", &expect);
    let report = Gst::decode(&pipeline, &expect, gst_timeout());
    live.publisher.assert_running();
    assert_media("gstreamer rtspsrc rtsps", &report, &expect);
}

/// A SETUP asking for UDP on RTSPS is refused: the media would leave the gateway unencrypted.
#[test]
fn rtsps_refuses_udp_transport_with_461() {
    if !require_tool("ffmpeg") {
        return;
    }
    let live = TlsLive::start();
    let addr = live.gateway.rtsps_addr().expect("RTSPS is on");
    let mut s = tls_connect(addr, live.ca.client_config());
    let url = live.rtsps_url();
    let request = |method: &str, uri: &str, cseq: u32, extra: &str| {
        format!("{method} {uri} RTSP/1.0\r\nCSeq: {cseq}\r\n{extra}\r\n")
    };
    let setup = |transport: &str, cseq| {
        request(
            "SETUP",
            &format!("{url}/trackID=0"),
            cseq,
            &format!("Transport: {transport}\r\n"),
        )
    };
    let describe = request("DESCRIBE", &url, 1, "Accept: application/sdp\r\n");
    s.write_all(describe.as_bytes()).expect("send DESCRIBE");
    let sdp = read_rtsp_response(&mut s);
    assert!(sdp.starts_with("RTSP/1.0 200"), "DESCRIBE: {sdp}");
    s.write_all(setup("RTP/AVP;unicast;client_port=40000-40001", 2).as_bytes())
        .expect("send SETUP");
    let udp = read_rtsp_response(&mut s);
    assert!(udp.starts_with("RTSP/1.0 461"), "SETUP over UDP: {udp}");
    s.write_all(setup("RTP/AVP/TCP;unicast;interleaved=0-1", 3).as_bytes())
        .expect("send SETUP");
    let tcp = read_rtsp_response(&mut s);
    assert!(tcp.starts_with("RTSP/1.0 200"), "SETUP interleaved: {tcp}");
}

/// Reads one RTSP response head (and its body, if any) from `s`.
fn read_rtsp_response(s: &mut impl Read) -> String {
    let mut got = Vec::new();
    let mut byte = [0u8; 1];
    while !got.ends_with(b"\r\n\r\n") && got.len() < 16 * 1024 {
        if s.read(&mut byte).expect("the response arrives") == 0 {
            break;
        }
        got.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&got).into_owned();
    let length = head
        .lines()
        .find_map(|l| l.strip_prefix("Content-Length:"))
        .and_then(|v| v.trim().parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; length.min(16 * 1024)];
    s.read_exact(&mut body).expect("the response body arrives");
    head + &String::from_utf8_lossy(&body)
}

/// WebSocket-FLV over `wss://`: a WebSocket client on a TLS connection that verifies the
/// certificate gets an FLV stream that starts the way a player needs.
#[test]
fn a_wss_client_gets_flv() {
    if !require_tool("ffmpeg") {
        return;
    }
    let live = TlsLive::start();
    let addr = live.gateway.https_addr().expect("HTTPS is on");
    let stream = tls_connect(addr, live.ca.client_config());
    let url = format!("wss://{addr}/{KEY}.flv");
    let (mut ws, response) = tungstenite::client::client(url.as_str(), stream)
        .unwrap_or_else(|e| panic!("WebSocket handshake on {url}: {e}"));
    assert_eq!(response.status(), 101);
    let started = Instant::now();
    let mut reader = flv::FlvReader::new();
    let mut tags: Vec<StartTag> = Vec::new();
    let mut video_ms = 0u32;
    while video_ms < 5000 {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "5 s of video did not arrive over {url} in 30 s ({} tags)",
            tags.len()
        );
        match ws.read().unwrap_or_else(|e| panic!("reading {url}: {e}")) {
            tungstenite::Message::Binary(data) => reader.push(&data),
            other => panic!("{url}: expected binary messages, got {other:?}"),
        }
        while let Some(tag) = reader.next_tag().expect("valid FLV") {
            if tag.tag_type == 9 {
                video_ms = tag.timestamp;
            }
            tags.push(StartTag {
                tag_type: tag.tag_type,
                timestamp: tag.timestamp,
                body: tag.body,
                arrived: started.elapsed(),
            });
        }
    }
    check_start(&tags, true, true).unwrap_or_else(|e| panic!("{url}: {e}"));
}

/// The gateway's own page, loaded over HTTPS in Chromium, plays with mpegts.js over `wss://`
/// and lists the RTMPS and RTSPS URLs.
#[test]
fn chromium_plays_the_page_over_https_and_wss() {
    if !require_tool("ffmpeg") || !require_browser_check() {
        return;
    }
    let mut live = TlsLive::start();
    let report = browser_play(&live.https_url(""), KEY, "ws", CELL_SECS as u32);
    live.publisher.assert_running();
    let labels = report["urls"].to_string();
    for want in ["RTMPS", "RTSPS", "WebSocket-FLV"] {
        assert!(labels.contains(want), "{want} not listed: {report}");
    }
}

/// Replacing the certificate files reaches new handshakes within the check interval (1 s here);
/// an RTMPS viewer connected before keeps playing through the reload.
#[test]
fn a_replaced_certificate_is_presented_to_new_handshakes_and_open_viewers_keep_playing() {
    if !need_ffmpeg() {
        return;
    }
    let mut live = TlsLive::start();
    let addr = rtmps(&live.gateway);
    let first = presented_certificate(addr, &live.ca).expect("the first certificate");
    let watcher = Watcher::ffmpeg("rtmps viewer", &[], &live.rtmps_url());
    assert!(
        watcher.wait_packets(0, 50, Duration::from_secs(20)),
        "the viewer received nothing: {}",
        watcher.log()
    );
    let second = live.ca.issue("gateway two", 2);
    assert_ne!(first, second.der);
    live.files.write(&second);
    let swapped_at = Instant::now();
    let mut seen = Vec::new();
    let swapped = wait_until(Duration::from_secs(10), || {
        seen = presented_certificate(addr, &live.ca).unwrap_or_default();
        seen == second.der
    });
    assert!(
        swapped,
        "new handshakes still get the old certificate 10 s after the files were replaced \
         (the same as before: {})",
        seen == first
    );
    // A new client completes a whole session with the new certificate.
    let report = ffprobe_decode(&live.rtmps_url(), 3.0);
    assert_media("ffprobe rtmps after the reload", &report, &Expect::av(2.0));
    // The viewer from before the reload saw no gap across it.
    let marked = watcher.packets();
    assert!(
        watcher.wait_packets(marked, 50, Duration::from_secs(10)),
        "the viewer connected before the reload stopped receiving: {}",
        watcher.log()
    );
    let seen = watcher.report(swapped_at, Instant::now());
    live.publisher.assert_running();
    assert!(
        seen.max_wall_gap < Duration::from_secs(2),
        "the viewer connected before the reload paused: {seen:?}"
    );
}

/// With `listen = ""` in `[rtmp]`, `[http]` and `[rtsp]`, only the TLS listeners (and MMST) are
/// bound; publishing and playing over TLS work, and a client speaking plain RTMP to the RTMPS
/// port is refused, counted and logged with its address.
#[test]
fn with_the_plain_listeners_off_only_tls_listens() {
    if !need_ffmpeg() {
        return;
    }
    let logs = gateway_tests::logs::capture();
    let mut live = TlsLive::start_with(|c| {
        c.rtmp.listen = String::new();
        c.http.listen = String::new();
        c.rtsp.listen = String::new();
    });
    let mut names: Vec<&str> = live.gateway.listeners().iter().map(|(n, _)| *n).collect();
    names.sort_unstable();
    assert_eq!(names, ["https", "mms", "rtmps", "rtsps"]);
    let report = ffprobe_decode(&live.https_url(&format!("/{KEY}.flv")), 3.0);
    assert_media("ffprobe https flv", &report, &Expect::av(2.0));

    let mark = logs.mark();
    let before = live.gateway.failed_tls_handshakes();
    let mut plain = TcpStream::connect(rtmps(&live.gateway)).expect("connect");
    let peer = plain.local_addr().expect("a local address").to_string();
    plain
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("set a timeout");
    // RTMP C0 and C1: version 3, then 1536 bytes of time, zero and filler.
    let mut c0c1 = vec![3u8];
    c0c1.extend(std::iter::repeat_n(0u8, 1536));
    plain.write_all(&c0c1).expect("send C0+C1");
    let mut answer = Vec::new();
    let _ = plain.read_to_end(&mut answer);
    assert!(
        answer.first() != Some(&3),
        "the RTMPS port answered plain RTMP"
    );
    let logged = logs.wait_for(
        mark,
        &["TLS handshake failed", &peer],
        Duration::from_secs(10),
    );
    assert!(
        logged.is_some(),
        "no log line names {peer}:\n{}",
        logs.since(mark)
    );
    assert!(live.gateway.failed_tls_handshakes() > before);
    live.publisher.assert_running();
}

/// The access hooks are told which requests came over TLS: RTMPS publish, HTTPS FLV and HLS,
/// RTSPS DESCRIBE say `"tls": true`; the same plays over the plain listeners say `false`.
#[test]
fn hooks_are_told_which_requests_came_over_tls() {
    if !need_ffmpeg() {
        return;
    }
    let hook = HookServer::start(|_| (200, Duration::ZERO));
    let (on_publish, on_play) = (hook.url("on_publish"), hook.url("on_play"));
    let live = TlsLive::start_with(|c| {
        c.auth.hooks.on_publish = on_publish;
        c.auth.hooks.on_play = on_play;
    });
    let wait = Duration::from_secs(10);
    let asked = |action: &str, protocol: &str, tls: bool| {
        hook.wait_for(wait, |b| {
            b["action"] == action && b["protocol"] == protocol && b["tls"] == tls
        })
        .is_some()
    };
    assert!(
        asked("publish", "rtmp", true),
        "the RTMPS publish was not asked with tls true: {:?}",
        hook.bodies()
    );

    // One request on each HTTPS route and on RTSPS, read far enough to know it was answered.
    let config = live.ca.client_config();
    let https = live.gateway.https_addr().expect("HTTPS is on");
    for path in [format!("/{KEY}.flv"), format!("/{KEY}/index.m3u8")] {
        let mut s = tls_connect(https, Arc::clone(&config));
        let head = format!("HEAD {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
        let head = match path.ends_with(".flv") {
            true => head,
            false => head.replacen("HEAD", "GET", 1),
        };
        s.write_all(head.as_bytes()).expect("send the request");
        let mut status = [0u8; 12];
        s.read_exact(&mut status).expect("a status line");
        assert_eq!(&status, b"HTTP/1.1 200", "{path} over HTTPS");
    }
    let rtsps = live.gateway.rtsps_addr().expect("RTSPS is on");
    let mut s = tls_connect(rtsps, Arc::clone(&config));
    let describe = format!(
        "DESCRIBE {} RTSP/1.0\r\nCSeq: 1\r\nAccept: application/sdp\r\n\r\n",
        live.rtsps_url()
    );
    s.write_all(describe.as_bytes()).expect("send DESCRIBE");
    let sdp = read_rtsp_response(&mut s);
    assert!(
        sdp.starts_with("RTSP/1.0 200"),
        "DESCRIBE over RTSPS: {sdp}"
    );
    for protocol in ["http-flv", "hls", "rtsp"] {
        assert!(
            asked("play", protocol, true),
            "a {protocol} play over TLS was not asked with tls true: {:?}",
            hook.bodies()
        );
    }

    // The plain listeners say false.
    let plain = live.gateway.http_url(&format!("/{KEY}/index.m3u8"));
    let r = http_get(&plain, Duration::from_secs(10)).expect("a plain playlist GET");
    assert_eq!(r.status, 200, "GET {plain}");
    assert!(
        asked("play", "hls", false),
        "the plain HLS play was not asked with tls false: {:?}",
        hook.bodies()
    );
}

/// OBS's way over RTMPS: the server field `rtmps://host:port/live?token=...` (connect's app
/// carries the token) and a stream key apart. With the token it publishes and plays back over
/// RTMPS; without it the publish is refused with the reason.
#[test]
fn an_obs_style_publish_over_rtmps_needs_the_token_in_the_server_url() {
    if !need_ffmpeg() {
        return;
    }
    const TOKEN: &str = "obs-secret-1";
    let live = TlsLive::start_with(|c| {
        c.auth.rule = vec![gateway_config::RuleSection {
            app: "live".into(),
            stream: "obs".into(),
            publish: gateway_config::PolicySection {
                tokens: vec![TOKEN.into()],
                ..Default::default()
            },
            play: Default::default(),
        }];
    });
    let base = format!("rtmps://{}/", rtmps(&live.gateway));
    let obs = |app: &str| {
        let input = fixture("av.flv");
        Ffmpeg::spawn(&[
            "-re",
            "-stream_loop",
            "-1",
            "-i",
            &input.to_string_lossy(),
            "-c",
            "copy",
            "-rtmp_app",
            app,
            "-rtmp_playpath",
            "obs",
            "-f",
            "flv",
            &base,
        ])
    };
    let mut refused = obs("live");
    let gave_up = wait_until(Duration::from_secs(20), || !refused.is_running());
    assert!(gave_up, "a publish without the token kept running");
    assert!(
        refused.log().contains("credentials required"),
        "ffmpeg was not told why: {}",
        refused.log()
    );

    let mut publisher = obs(&format!("live?token={TOKEN}"));
    if !live.gateway.wait_live("live/obs", LIVE_TIMEOUT) {
        publisher.assert_running();
        panic!("live/obs did not become live; ffmpeg:\n{}", publisher.log());
    }
    let url = format!("rtmps://{}/live/obs", rtmps(&live.gateway));
    let report = ffprobe_decode(&url, PLAY_SECS);
    publisher.assert_running();
    assert_media(
        "ffprobe rtmps play of live/obs",
        &report,
        &Expect::av(CELL_SECS),
    );
}

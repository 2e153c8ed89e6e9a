//! Access control as users meet it: ffmpeg publishing with and without a token, with signed
//! links (fresh and expired) and from a refused address; ffprobe and plain HTTP requests playing
//! RTMP and HTTP-FLV; an HTTP hook server that allows, refuses and times out, and hears when
//! publishers and viewers leave; hls.js in headless Chromium playing a token-protected HLS stream;
//! the API and the web page behind their token.

use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use gateway_config::{Config, PolicySection, RuleSection};
use gateway_tests::{
    assert_media, browser_play_with, ffprobe_decode, fixture, http_get, http_get_with,
    require_browser_check, require_tool, run_with_timeout, timed_out, wait_until, with_tls,
    CertFiles, Expect, Ffmpeg, GetOptions, HookServer, HttpResponse, Live, TestCa, TestGateway,
};
use serde_json::Value;

const PUBLISH_TOKEN: &str = "pub-secret-1";
const PLAY_TOKEN: &str = "view-secret-1";
const API_TOKEN: &str = "api-token-123";
const SIGN_SECRET: &str = "sign-secret-1";

/// Seconds of media a viewer must decode here (access is the point, not interop).
const VIEW_SECS: f64 = 3.0;
const LIVE_WAIT: Duration = Duration::from_secs(30);
const HOOK_WAIT: Duration = Duration::from_secs(10);
const HTTP_TIMEOUT: Duration = Duration::from_secs(10);

fn rule(stream: &str, publish: PolicySection, play: PolicySection) -> RuleSection {
    RuleSection {
        app: "live".into(),
        stream: stream.into(),
        publish,
        play,
    }
}

fn tokens(t: &str) -> PolicySection {
    PolicySection {
        tokens: vec![t.into()],
        ..PolicySection::default()
    }
}

fn allow_ips(ip: &str) -> PolicySection {
    PolicySection {
        allow_ips: vec![ip.into()],
        ..PolicySection::default()
    }
}

fn signed() -> PolicySection {
    PolicySection {
        signed: true,
        ..PolicySection::default()
    }
}

/// Publishes tokens-protected `live/*`, plays with another token.
fn token_rules(c: &mut Config) {
    c.auth.rule = vec![rule("*", tokens(PUBLISH_TOKEN), tokens(PLAY_TOKEN))];
}

fn tools(list: &[&str]) -> bool {
    list.iter().all(|t| require_tool(t))
}

/// Runs ffmpeg publishing five seconds of the fixture to `url` and returns its stderr, asserting
/// that it failed (a refused publish ends at once; an accepted one would exit 0 after 5 s).
fn publish_refused(args: &[&str], url: &str) -> String {
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-hide_banner", "-nostdin", "-loglevel", "warning", "-re"])
        .arg("-i")
        .arg(fixture("av.flv"))
        .args(["-t", "5", "-c", "copy"])
        .args(args)
        .args(["-f", "flv", url]);
    let out = run_with_timeout(cmd, Duration::from_secs(60));
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!timed_out(&out), "ffmpeg {url} hung; stderr:\n{stderr}");
    assert!(
        !out.status.success(),
        "ffmpeg published to {url} although it should have been refused; stderr:\n{stderr}"
    );
    stderr
}

/// ffprobe on `url`, which must fail; returns its stderr.
fn probe_refused(url: &str) -> String {
    let mut cmd = Command::new("ffprobe");
    cmd.args([
        "-hide_banner",
        "-v",
        "error",
        "-rw_timeout",
        "15000000",
        url,
    ]);
    let out = run_with_timeout(cmd, Duration::from_secs(60));
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!timed_out(&out), "ffprobe {url} hung; stderr:\n{stderr}");
    assert!(
        !out.status.success(),
        "ffprobe played {url} although it should have been refused"
    );
    stderr
}

fn assert_plays(url: &str) {
    let report = ffprobe_decode(url, VIEW_SECS + 0.5);
    assert_media(url, &report, &Expect::av(VIEW_SECS));
}

fn get(url: &str) -> HttpResponse {
    http_get(url, HTTP_TIMEOUT).unwrap_or_else(|e| panic!("GET {url}: {e}"))
}

fn get_with(url: &str, opts: &GetOptions<'_>) -> HttpResponse {
    http_get_with(url, HTTP_TIMEOUT, opts).unwrap_or_else(|e| panic!("GET {url}: {e}"))
}

/// A refusal as a user sees it: the status, a Bearer challenge on 401, the reason as text, and
/// never the credential that was sent.
fn assert_refused(r: &HttpResponse, status: u16, reason: &str, secret: Option<&str>) {
    assert_eq!(r.status, status, "{}", r.text());
    assert!(
        r.text().contains(reason),
        "reason {reason:?} in {:?}",
        r.text()
    );
    if status == 401 {
        let challenge = r.header("www-authenticate").unwrap_or_default();
        assert!(challenge.starts_with("Bearer realm="), "{challenge:?}");
    }
    if let Some(secret) = secret {
        assert!(
            !r.text().contains(secret),
            "the answer echoes the credential"
        );
    }
}

fn start_publisher(gw: &TestGateway, key: &str, url: &str) -> Ffmpeg {
    let mut ffmpeg = Ffmpeg::publish(&fixture("av.flv"), url);
    if !gw.wait_live(key, LIVE_WAIT) {
        ffmpeg.assert_running();
        panic!("{key} did not become live; ffmpeg:\n{}", ffmpeg.log());
    }
    ffmpeg
}

fn json(r: &HttpResponse) -> Value {
    assert_eq!(r.status, 200, "{}", r.text());
    serde_json::from_slice(&r.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", r.text()))
}

#[test]
fn a_token_admits_publishers_and_viewers_over_rtmp_and_http_flv() {
    if !tools(&["ffmpeg", "ffprobe"]) {
        return;
    }
    let gw = TestGateway::start_with(token_rules);
    let url = gw.rtmp_url(&format!("live/test?token={PUBLISH_TOKEN}"));
    let mut publisher = start_publisher(&gw, "live/test", &url);

    assert_plays(&gw.rtmp_url(&format!("live/test?token={PLAY_TOKEN}")));
    assert_plays(&gw.http_url(&format!("/live/test.flv?token={PLAY_TOKEN}")));
    let stderr = probe_refused(&gw.rtmp_url("live/test"));
    assert!(stderr.contains("credentials required"), "{stderr}");
    let stderr = probe_refused(&gw.http_url("/live/test.flv"));
    assert!(stderr.contains("401"), "{stderr}");

    let flv = |q: &str| get(&gw.http_url(&format!("/live/test.flv{q}")));
    assert_refused(&flv(""), 401, "credentials required", None);
    assert_refused(
        &flv("?token=wrong-1"),
        401,
        "invalid credentials",
        Some("wrong-1"),
    );
    // The publish token is not a play token.
    let r = flv(&format!("?token={PUBLISH_TOKEN}"));
    assert_refused(&r, 401, "invalid credentials", Some(PUBLISH_TOKEN));
    publisher.assert_running();

    // OBS puts the token in its server URL (`rtmp://host/live?token=...`): connect's app.
    let app = format!("live?token={PUBLISH_TOKEN}");
    let base = format!("rtmp://{}/", gw.rtmp_addr());
    let args = ["-rtmp_app", &app, "-rtmp_playpath", "obs"];
    let mut obs = Ffmpeg::spawn(
        &[
            &["-re", "-stream_loop", "-1", "-i"][..],
            &[&*fixture("av.flv").to_string_lossy(), "-c", "copy"],
            &args,
            &["-f", "flv", &base],
        ]
        .concat(),
    );
    if !gw.wait_live("live/obs", LIVE_WAIT) {
        obs.assert_running();
        panic!("live/obs did not become live; ffmpeg:\n{}", obs.log());
    }
}

#[test]
fn ffmpeg_without_a_valid_token_is_refused_with_the_reason() {
    if !tools(&["ffmpeg"]) {
        return;
    }
    let gw = TestGateway::start_with(token_rules);
    let stderr = publish_refused(&[], &gw.rtmp_url("live/test"));
    assert!(stderr.contains("credentials required"), "{stderr}");
    let stderr = publish_refused(&[], &gw.rtmp_url("live/test?token=wrong-2"));
    assert!(stderr.contains("invalid credentials"), "{stderr}");
    assert!(gw.bus().stream("live/test").is_none_or(|s| !s.is_live()));
    let counts = json(&get(&gw.http_url("/api/access")))["counts"].clone();
    assert_eq!(counts["denied_no_credentials"], 1, "{counts}");
    assert_eq!(counts["denied_bad_credentials"], 1, "{counts}");
}

/// The README's openssl recipe: `expires=...&sig=...` for `action` on `live/{stream}`.
fn openssl_signed_query(action: &str, stream: &str, expires: u64) -> String {
    let message = format!("{action}:/live/{stream}:{expires}");
    let mut cmd = Command::new("openssl");
    cmd.args(["dgst", "-sha256", "-hmac", SIGN_SECRET, "-hex"]);
    let out = pipe(cmd, message.as_bytes());
    let sig = out.split_whitespace().last().unwrap_or_default().to_owned();
    assert_eq!(sig.len(), 64, "openssl printed {out:?}");
    format!("expires={expires}&sig={sig}")
}

fn pipe(mut cmd: Command, input: &[u8]) -> String {
    use std::io::Write;
    use std::process::Stdio;
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("openssl runs");
    child
        .stdin
        .take()
        .expect("piped")
        .write_all(input)
        .expect("write to openssl");
    let out = child.wait_with_output().expect("openssl ends");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs()
}

#[test]
fn signed_links_admit_until_they_expire() {
    if !tools(&["ffmpeg", "ffprobe", "openssl"]) {
        return;
    }
    let gw = TestGateway::start_with(|c| {
        c.auth.sign_secret = SIGN_SECRET.into();
        c.auth.rule = vec![rule("*", signed(), signed())];
    });
    let expired = openssl_signed_query("publish", "test", unix_now() - 60);
    let stderr = publish_refused(&[], &gw.rtmp_url(&format!("live/test?{expired}")));
    assert!(stderr.contains("the signed link has expired"), "{stderr}");

    // The API hands out a publish link; ffmpeg publishes with it.
    let signed = json(&get(
        &gw.http_url("/api/sign/live/test?action=publish&expires_in=600")
    ));
    let rtmp = signed["urls"]["rtmp"]
        .as_str()
        .expect("an RTMP URL")
        .to_owned();
    assert!(rtmp.contains("&sig="), "{signed}");
    let _publisher = start_publisher(&gw, "live/test", &rtmp);

    // A play link made with openssl, as the README shows, plays over HTTP-FLV; a publish link
    // does not play.
    let play = openssl_signed_query("play", "test", unix_now() + 600);
    assert_plays(&gw.http_url(&format!("/live/test.flv?{play}")));
    let publish = openssl_signed_query("publish", "test", unix_now() + 600);
    let r = get(&gw.http_url(&format!("/live/test.flv?{publish}")));
    assert_refused(&r, 401, "invalid credentials", None);
    // The API lists the stream with signed play URLs, which play.
    let listed = json(&get(&gw.http_url("/api/streams/live/test")));
    let flv = listed["urls"]["http_flv"]
        .as_str()
        .expect("an HTTP-FLV URL");
    assert!(flv.contains("sig="), "{listed}");
    assert_eq!(get_with(flv, &first_bytes()).status, 200);

    // The web page plays with the signed URLs the API gives it (mpegts.js over HTTP-FLV).
    if !require_browser_check() {
        return;
    }
    let base = format!("http://{}", gw.http_addr());
    let report = browser_play_with(&base, "live/test", "flv", 4, "");
    assert_eq!(report["engine"], "mpegts.js", "{report}");
}

/// A GET that reads only the head and the FLV file header of a live body.
fn first_bytes() -> GetOptions<'static> {
    GetOptions {
        max_body: Some(13),
        ..GetOptions::default()
    }
}

#[test]
fn an_address_outside_allow_ips_is_refused() {
    if !tools(&["ffmpeg", "ffprobe"]) {
        return;
    }
    let gw = TestGateway::start_with(|c| {
        c.auth.rule = vec![
            rule("ipcam", allow_ips("127.0.0.2"), PolicySection::default()),
            rule("*", PolicySection::default(), allow_ips("127.0.0.2")),
        ];
    });
    // ffmpeg connects from 127.0.0.1.
    let stderr = publish_refused(&[], &gw.rtmp_url("live/ipcam"));
    assert!(
        stderr.contains("publish is not allowed from this address"),
        "{stderr}"
    );
    let _publisher = start_publisher(&gw, "live/test", &gw.rtmp_url("live/test"));
    let url = gw.http_url("/live/test.flv");
    let stderr = probe_refused(&url);
    assert!(stderr.contains("403"), "{stderr}");
    let r = get(&url);
    assert_refused(&r, 403, "play is not allowed from this address", None);
    let from_2 = GetOptions {
        from: Some("127.0.0.2".parse().expect("an address")),
        ..first_bytes()
    };
    let r = get_with(&url, &from_2);
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.body.starts_with(b"FLV"), "{:?}", r.body);
}

#[test]
fn hooks_allow_refuse_time_out_and_hear_when_clients_leave() {
    if !tools(&["ffmpeg", "ffprobe"]) {
        return;
    }
    let hook = HookServer::start(|body| match body["stream"].as_str() {
        Some("denied") => (403, Duration::ZERO),
        Some("slow") => (200, Duration::from_secs(3)),
        _ => (200, Duration::ZERO),
    });
    let gw = TestGateway::start_with(|c| {
        let h = &mut c.auth.hooks;
        h.on_publish = hook.url("on_publish");
        h.on_play = hook.url("on_play");
        h.on_unpublish = hook.url("on_unpublish");
        h.on_stop = hook.url("on_stop");
        h.timeout_ms = 1000;
    });
    let is = |body: &Value, action: &str, protocol: &str, stream: &str| {
        body["action"] == action && body["protocol"] == protocol && body["stream"] == stream
    };
    let publisher = start_publisher(&gw, "live/test", &gw.rtmp_url("live/test?token=t-1"));
    let asked = hook
        .wait_for(HOOK_WAIT, |b| is(b, "publish", "rtmp", "test"))
        .expect("on_publish was asked");
    assert_eq!(asked["app"], "live", "{asked}");
    assert_eq!(asked["client_ip"], "127.0.0.1", "{asked}");
    assert_eq!(asked["query"], "token=t-1", "{asked}");

    for (protocol, url) in [
        ("rtmp", gw.rtmp_url("live/test")),
        ("http-flv", gw.http_url("/live/test.flv")),
    ] {
        assert_plays(&url);
        assert!(hook
            .wait_for(HOOK_WAIT, |b| is(b, "play", protocol, "test"))
            .is_some());
        let stop = hook
            .wait_for(HOOK_WAIT, |b| is(b, "stop", protocol, "test"))
            .unwrap_or_else(|| panic!("no on_stop for {protocol}: {:?}", hook.bodies()));
        assert!(stop["bytes"].as_u64() > Some(10_000), "{stop}");
        assert!(stop["duration_ms"].as_u64() > Some(0), "{stop}");
        assert_eq!(stop["client_ip"], "127.0.0.1", "{stop}");
    }

    let stderr = publish_refused(&[], &gw.rtmp_url("live/denied"));
    assert!(
        stderr.contains("refused by the on_publish hook (HTTP 403)"),
        "{stderr}"
    );
    let stderr = publish_refused(&[], &gw.rtmp_url("live/slow"));
    assert!(
        stderr.contains("the on_publish hook did not answer in time"),
        "{stderr}"
    );
    assert!(gw.bus().stream("live/slow").is_none_or(|s| !s.is_live()));

    drop(publisher);
    let gone = hook
        .wait_for(HOOK_WAIT, |b| is(b, "unpublish", "rtmp", "test"))
        .unwrap_or_else(|| panic!("no on_unpublish: {:?}", hook.bodies()));
    assert!(gone["bytes"].as_u64() > Some(10_000), "{gone}");
    assert!(gone["duration_ms"].as_u64() > Some(1000), "{gone}");
}

/// The playlist of `live/test` with `query`, once it lists a segment.
fn wait_playlist(live: &Live, query: &str) -> String {
    let url = live.http_url(&format!("/live/test/index.m3u8?{query}"));
    let mut last = String::new();
    let ready = wait_until(Duration::from_secs(20), || {
        let r = get(&url);
        last = r.text();
        r.status == 200 && last.contains("#EXTINF")
    });
    assert!(ready, "no segment in {url}; last answer: {last}");
    last
}

#[test]
fn hls_js_plays_a_token_protected_stream_whose_segments_carry_the_token() {
    if !tools(&["ffmpeg"]) {
        return;
    }
    // The browser plays over HTTPS, as a page on the internet would; the checks by hand use the
    // plain listener, which the same rules govern.
    let ca = TestCa::new();
    let files = CertFiles::new(&ca.issue("gateway", 1));
    let mut live = Live::ffmpeg_with("av.flv", |c| {
        c.auth.rule = vec![rule("*", PolicySection::default(), tokens(PLAY_TOKEN))];
        c.auth.api_token = API_TOKEN.into();
        with_tls(c, &files.cert(), &files.key());
    });
    let r = get(&live.http_url("/live/test/index.m3u8"));
    assert_refused(&r, 401, "credentials required", None);

    let playlist = wait_playlist(&live, &format!("token={PLAY_TOKEN}"));
    let segments: Vec<&str> = playlist.lines().filter(|l| !l.starts_with('#')).collect();
    assert!(!segments.is_empty(), "{playlist}");
    let carried = format!("?token={PLAY_TOKEN}");
    for uri in &segments {
        assert!(uri.ends_with(&carried), "{uri} in\n{playlist}");
    }
    let segment = segments[0].trim_end_matches(&carried);
    let r = get(&live.http_url(&format!("/live/test/{segment}")));
    assert_refused(&r, 401, "credentials required", None);
    let r = get(&live.http_url(&format!("/live/test/{}", segments[0])));
    assert_eq!(
        (r.status, r.body.first()),
        (200, Some(&0x47)),
        "a TS segment"
    );
    live.assert_publishing();

    if !require_browser_check() {
        return;
    }
    let https = live.gateway.https_addr().expect("HTTPS is on");
    let base = format!("https://{https}");
    let query = format!("token={API_TOKEN}&play_token={PLAY_TOKEN}");
    let report = browser_play_with(&base, Live::KEY, "hls", 6, &query);
    live.assert_publishing();
    assert_eq!(report["engine"], "hls.js", "{report}");
    assert_eq!(report["videoWidth"], 640, "{report}");
    let requested: Vec<&str> = report["requested"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    assert!(
        requested.iter().any(|u| u.contains(".ts?token=")),
        "hls.js fetched no segment with the token: {requested:?}"
    );
    assert!(
        requested.iter().all(|u| u.starts_with("https://")),
        "hls.js fetched something without TLS: {requested:?}"
    );
}

#[test]
fn the_api_and_the_page_need_the_api_token() {
    let gw = TestGateway::start_with(|c| c.auth.api_token = API_TOKEN.into());
    let bearer = format!("Bearer {API_TOKEN}");
    let with_bearer = GetOptions {
        headers: &[("Authorization", &bearer)],
        ..GetOptions::default()
    };
    let wrong = GetOptions {
        headers: &[("Authorization", "Bearer wrong-token")],
        ..GetOptions::default()
    };
    for path in ["/api/streams", "/api/access", "/"] {
        let url = gw.http_url(path);
        assert_refused(&get(&url), 401, "API token", None);
        assert_refused(
            &get_with(&url, &wrong),
            401,
            "API token",
            Some("wrong-token"),
        );
        assert_eq!(get_with(&url, &with_bearer).status, 200, "{path}");
        let sep = if path.contains('?') { '&' } else { '?' };
        assert_eq!(
            get(&format!("{url}{sep}token={API_TOKEN}")).status,
            200,
            "{path}"
        );
    }
    let page = get(&gw.http_url(&format!("/player.html?stream=live/test&token={API_TOKEN}")));
    assert_eq!(page.status, 200);
    // The page's scripts are public code.
    assert_eq!(get(&gw.http_url("/common.js")).status, 200);
    let counts = json(&get_with(&gw.http_url("/api/access"), &with_bearer));
    assert!(
        counts["counts"]["api_denied"].as_u64() >= Some(6),
        "{counts}"
    );
    // Signing is off without a secret.
    let r = get_with(&gw.http_url("/api/sign/live/test"), &with_bearer);
    assert_eq!(r.status, 404, "{}", r.text());
}

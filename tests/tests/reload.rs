//! Reloading the configuration of a running gateway process (SIGHUP and `POST /api/reload`)
//! while ffmpeg publishes and ffmpeg viewers play on every egress: no viewer drops; the new log
//! level, access policy, listener limits, write batching, HLS and bus options and an added MMS
//! publishing point apply to what comes next; a moved RTMP listener answers on its new address
//! only while the viewers it had keep playing; a broken file is refused with its file:line:key
//! error and the old configuration keeps working; an address that cannot be bound is reported
//! as failed and the listener stays.

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use gateway_tests::{
    fixture, gateway_bin, http_get, require_tool, wait_until, workspace_root, Ffmpeg,
    GatewayProcess, TempDir,
};
use serde_json::Value;

const TIMEOUT: Duration = Duration::from_secs(30);

/// The config file: every plain listener on a kernel-chosen loopback port (the same text on
/// every rewrite, so no address changes), with `extra` appended to the `[log]`, `[http]` and
/// `[rtmp]` sections and the `[[auth.rule]]`s of `rules`.
fn config(level: &str, http_per_ip: usize, rtmp_max: usize, rules: &str) -> String {
    let base = 20_000 + (std::process::id() % 150) as u16 * 200 + 150;
    format!(
        "[log]\nlevel = \"{level}\"\nformat = \"json\"\n\
         [rtmp]\nlisten = \"127.0.0.1:0\"\nmax_connections = {rtmp_max}\n\
         [http]\nlisten = \"127.0.0.1:0\"\nweb_root = \"{}\"\nmax_connections_per_ip = {http_per_ip}\n\
         [rtsp]\nlisten = \"127.0.0.1:0\"\nrtp_port_min = {base}\nrtp_port_max = {}\n\
         [mms]\nlisten = \"127.0.0.1:0\"\n\
         {rules}",
        workspace_root().join("web").display(),
        base + 49,
    )
}

/// `text` with `lines` added at the top of its `[section]` (which `config` writes).
fn with_keys(text: &str, section: &str, lines: &str) -> String {
    let header = format!("[{section}]\n");
    assert!(text.contains(&header), "no [{section}] in {text}");
    text.replacen(&header, &format!("{header}{lines}"), 1)
}

/// A loopback port nothing listens on now.
fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// Whether `addr` accepts a TCP connection.
fn accepts(addr: SocketAddr) -> bool {
    TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_ok()
}

/// ffprobe's answer for `url`: the first stream's codec name, or why it failed.
fn probe(url: &str) -> Result<String, String> {
    let out = std::process::Command::new("ffprobe")
        .args(["-v", "error", "-rw_timeout", "10000000", "-show_entries"])
        .args(["stream=codec_name", "-of", "csv=p=0", url])
        .output()
        .map_err(|e| format!("ffprobe: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    match out.status.success() && !text.trim().is_empty() {
        true => Ok(text),
        false => Err(format!("{text}{}", String::from_utf8_lossy(&out.stderr))),
    }
}

/// A rule that asks viewers of `app` for `token`.
fn play_token(app: &str, token: &str) -> String {
    format!("[[auth.rule]]\napp = \"{app}\"\nstream = \"*\"\nplay.tokens = [\"{token}\"]\n")
}

fn config_path(gw: &GatewayProcess) -> PathBuf {
    gw.dir().join("gateway.toml")
}

/// `POST path` with HTTP/1.0; the status and the body.
fn post(addr: SocketAddr, path: &str) -> (u16, String) {
    gateway_tests::http_request(addr, "POST", path, &[], TIMEOUT)
}

fn sighup(gw: &GatewayProcess) {
    let pid = libc::pid_t::try_from(gw.pid()).expect("a pid");
    // SAFETY: kill(2) has no memory-safety preconditions; the pid is our own child's.
    let rc = unsafe { libc::kill(pid, libc::SIGHUP) };
    assert_eq!(rc, 0, "SIGHUP could not be sent");
}

/// The status of `GET path` on the HTTP listener, reading at most a little of the body.
fn get_status(gw: &GatewayProcess, path: &str) -> u16 {
    let url = format!("http://{}{path}", gw.addr("http"));
    let opts = gateway_tests::GetOptions {
        max_body: Some(1024),
        ..Default::default()
    };
    gateway_tests::http_get_with(&url, TIMEOUT, &opts)
        .unwrap_or_else(|e| panic!("GET {path}: {e}"))
        .status
}

fn api(gw: &GatewayProcess, path: &str) -> Value {
    let url = format!("http://{}{path}", gw.addr("http"));
    let r = http_get(&url, TIMEOUT).expect("the API answers");
    assert_eq!(r.status, 200, "{path}: {}", r.text());
    serde_json::from_slice(&r.body).expect("JSON")
}

/// An ffmpeg viewer writing a line per packet it receives from `url` (`-f framecrc`) into a
/// file whose growth shows it still receives.
struct Viewer {
    name: &'static str,
    ffmpeg: Ffmpeg,
    out: PathBuf,
}

impl Viewer {
    fn start(dir: &TempDir, name: &'static str, input_args: &[&str], url: &str) -> Viewer {
        let out = dir.join(&format!("{name}.crc"));
        let out_s = out.to_string_lossy().into_owned();
        let mut args: Vec<&str> = Vec::new();
        args.extend_from_slice(input_args);
        args.extend_from_slice(&[
            "-i",
            url,
            "-c",
            "copy",
            "-flush_packets",
            "1",
            "-f",
            "framecrc",
            "-y",
            &out_s,
        ]);
        Viewer {
            name,
            ffmpeg: Ffmpeg::spawn(&args),
            out,
        }
    }

    fn size(&self) -> u64 {
        std::fs::metadata(&self.out).map_or(0, |m| m.len())
    }

    /// Waits until the output grows past `than`; panics with ffmpeg's log if it does not.
    fn assert_growing(&mut self, than: u64) -> u64 {
        let grew = wait_until(TIMEOUT, || self.size() > than);
        self.ffmpeg.assert_running();
        assert!(
            grew,
            "the {} viewer stopped receiving at {than} bytes:\n{}",
            self.name,
            self.ffmpeg.log()
        );
        self.size()
    }
}

fn wait_log(gw: &GatewayProcess, from: usize, needle: &str) -> String {
    let mut found = String::new();
    let ok = wait_until(TIMEOUT, || {
        let log = gw.log();
        match log.get(from..).and_then(|l| l.find(needle).map(|i| (l, i))) {
            Some((l, i)) => {
                found = l[i..].lines().next().unwrap_or_default().to_owned();
                true
            }
            None => false,
        }
    });
    assert!(
        ok,
        "no {needle:?} in the log after the reload:\n{}",
        &gw.log()[from..]
    );
    found
}

#[test]
fn a_reload_under_load_drops_no_viewer_and_applies_the_new_policy() {
    if !require_tool("ffmpeg") {
        return;
    }
    let first = config("info", 1000, 10_000, &play_token("secure", "s3cret"));
    let mut gw = GatewayProcess::start_json(Path::new(gateway_bin!()), &first);
    let (rtmp, http, rtsp) = (gw.addr("rtmp"), gw.addr("http"), gw.addr("rtsp"));
    let mut publishers = [
        Ffmpeg::publish(&fixture("av.flv"), &format!("rtmp://{rtmp}/live/test")),
        Ffmpeg::publish(&fixture("av.flv"), &format!("rtmp://{rtmp}/secure/test")),
    ];
    let both_live = wait_until(TIMEOUT, || {
        let streams = api(&gw, "/api/streams").to_string();
        streams.contains("live/test") && streams.contains("secure/test")
    });
    assert!(both_live, "not published:\n{}", gw.log());
    assert_eq!(
        get_status(&gw, "/secure/test.flv"),
        401,
        "secure needs a token"
    );

    let dir = TempDir::new("reload-viewers");
    let mut viewers = [
        Viewer::start(&dir, "rtmp", &[], &format!("rtmp://{rtmp}/live/test")),
        Viewer::start(
            &dir,
            "http-flv",
            &[],
            &format!("http://{http}/live/test.flv"),
        ),
        Viewer::start(
            &dir,
            "rtsp-tcp",
            &["-rtsp_transport", "tcp"],
            &format!("rtsp://{rtsp}/live/test"),
        ),
        Viewer::start(
            &dir,
            "rtsp-udp",
            &["-rtsp_transport", "udp"],
            &format!("rtsp://{rtsp}/live/test"),
        ),
        Viewer::start(
            &dir,
            "hls",
            &[],
            &format!("http://{http}/live/test/index.m3u8"),
        ),
        Viewer::start(&dir, "mmsh", &[], &format!("mmsh://{http}/live/test")),
        // Admitted by the first file's token, which the second file no longer accepts.
        Viewer::start(
            &dir,
            "http-flv with the old token",
            &[],
            &format!("http://{http}/secure/test.flv?token=s3cret"),
        ),
        Viewer::start(
            &dir,
            "rtmp with the old token",
            &[],
            &format!("rtmp://{rtmp}/secure/test?token=s3cret"),
        ),
    ];
    let mut sizes: Vec<u64> = viewers.iter_mut().map(|v| v.assert_growing(0)).collect();

    // The new file: debug lines from the gateway, another token for `secure` (HLS viewers ask
    // on every request, so `live` stays open), tighter listener caps, other write batching,
    // HLS and bus options, a new MMS publishing point, and RTMP on another port.
    let moved = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let mut second = config(
        "info,gateway=debug",
        999,
        5000,
        &play_token("secure", "n3w"),
    );
    second = second.replacen(
        "[rtmp]\nlisten = \"127.0.0.1:0\"\n",
        &format!("[rtmp]\nlisten = \"{moved}\"\n"),
        1,
    );
    second = with_keys(
        &second,
        "rtmp",
        "write_delay_ms = 5\nsend_timeout_secs = 25\n",
    );
    second = with_keys(&second, "http", "flv_write_delay_ms = 5\n");
    second = with_keys(&second, "rtsp", "tcp_write_delay_ms = 5\nmtu = 1200\n");
    second = second.replacen(
        "[mms]\nlisten = \"127.0.0.1:0\"\n",
        "[mms]\nlisten = \"127.0.0.1:0\"\npacket_size = 4000\n\
         [[mms.publishing_point]]\nname = \"Events\"\nstream = \"live/test\"\n",
        1,
    );
    second = second.replacen(
        "[mms]\n",
        "[hls]\nwindow = 4\n[bus]\nmax_streams = 500\nmax_streams_per_app = 400\n[mms]\n",
        1,
    );
    std::fs::write(config_path(&gw), &second).expect("rewrite the config");
    let mark = gw.log().len();
    sighup(&gw);
    let line = wait_log(&gw, mark, "configuration reloaded");
    for key in [
        "log.level",
        "auth.rule",
        "http.max_connections_per_ip",
        "rtmp.max_connections",
        "rtmp.listen",
        "rtmp.write_delay_ms",
        "rtmp.send_timeout_secs",
        "http.flv_write_delay_ms",
        "rtsp.tcp_write_delay_ms",
        "rtsp.mtu",
        "mms.packet_size",
        "mms.publishing_point",
        "hls.window",
        "bus.max_streams",
    ] {
        // The JSON log line holds the list as one string: `a.b, c.d`.
        let applied = line
            .split_once(r#""applied":""#)
            .and_then(|(_, rest)| rest.split_once('"'))
            .map_or("", |(list, _)| list);
        assert!(
            applied.split(", ").any(|k| k == key),
            "{key} not applied: {line}"
        );
    }
    assert!(line.contains(r#""needs_restart":"none""#), "{line}");

    // The same file again through the API: nothing more changes.
    let (status, body) = post(http, "/api/reload");
    assert_eq!(status, 200, "{body}");
    let report: Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(
        report,
        serde_json::json!({"applied": [], "needs_restart": [], "failed": []})
    );

    let limits = api(&gw, "/api/limits");
    assert_eq!(
        limits["listeners"]["http"]["limits"]["max_connections_per_ip"],
        999
    );
    assert_eq!(
        limits["listeners"]["rtmp"]["limits"]["max_connections"],
        5000
    );
    assert_eq!(limits["streams"]["limits"]["max_streams"], 500);

    // RTMP answers on its new address only; the viewer it had still plays (checked below).
    assert!(!accepts(rtmp), "the old RTMP address still accepts");
    let played = probe(&format!("rtmp://{moved}/live/test"));
    assert!(
        played
            .as_deref()
            .is_ok_and(|codecs| codecs.contains("h264")),
        "a player on the new RTMP address: {played:?}"
    );
    // The new publishing point plays for a new MMSH client.
    let point = probe(&format!("mmsh://{http}/Events"));
    assert!(point.is_ok(), "mmsh://{http}/Events: {point:?}");
    let listed = api(&gw, "/api/streams").to_string();
    assert!(
        listed.contains(&format!(":{}/live/test", moved.port())),
        "the API shows the new RTMP port: {listed}"
    );

    // New clients meet the new policy; the viewers already playing keep playing, also those
    // admitted with the old token.
    let old = "/secure/test.flv?token=s3cret";
    assert_eq!(get_status(&gw, old), 401, "the old token is refused now");
    assert_eq!(get_status(&gw, "/secure/test.flv"), 401);
    assert_eq!(get_status(&gw, "/secure/test.flv?token=n3w"), 200);
    assert_eq!(get_status(&gw, "/live/test.flv"), 200, "live is still open");
    for (v, size) in viewers.iter_mut().zip(sizes.iter_mut()) {
        *size = v.assert_growing(*size);
    }
    std::thread::sleep(Duration::from_secs(2));
    for (v, size) in viewers.iter_mut().zip(sizes.iter_mut()) {
        *size = v.assert_growing(*size);
    }
    for p in &mut publishers {
        p.assert_running();
    }
    let streams = api(&gw, "/api/streams");
    assert!(
        streams.to_string().contains("live/test"),
        "the stream is still listed: {streams}"
    );
    // The new level: the HTTP listener's debug lines (connections closing) appear.
    wait_log(&gw, mark, "\"level\":\"DEBUG\"");
    gw.assert_running();
}

#[test]
fn a_broken_file_is_refused_by_both_triggers_and_the_old_config_stays() {
    let first = config("info", 1000, 10_000, &play_token("secure", "s3cret"));
    let mut gw = GatewayProcess::start_json(Path::new(gateway_bin!()), &first);
    let http = gw.addr("http");
    let typo = first.replace("max_connections_per_ip = 1000", "max_conections_per_ip = 7");
    std::fs::write(config_path(&gw), &typo).expect("rewrite the config");
    let mark = gw.log().len();
    sighup(&gw);
    let line = wait_log(&gw, mark, "configuration reload refused");
    let path = config_path(&gw).display().to_string();
    let want = format!("{path}:10:1: key `http.max_conections_per_ip`: unknown field");
    assert!(line.contains(&want), "want {want:?} in {line}");

    let (status, body) = post(http, "/api/reload");
    assert_eq!(status, 400, "{body}");
    let error: Value = serde_json::from_str(&body).expect("a JSON error");
    let error = error["error"].as_str().unwrap_or_default();
    assert!(error.starts_with(&want), "want {want:?} in {body}");

    // The old policy and limits are in force.
    assert_eq!(get_status(&gw, "/secure/test.flv"), 401);
    let limits = api(&gw, "/api/limits");
    assert_eq!(
        limits["listeners"]["http"]["limits"]["max_connections_per_ip"],
        1000
    );
    gw.assert_running();
}

#[test]
fn an_address_that_cannot_be_bound_fails_and_turning_a_shell_off_needs_a_restart() {
    let first = config("info", 1000, 10_000, "");
    let mut gw = GatewayProcess::start_json(Path::new(gateway_bin!()), &first);
    let (http, rtsp) = (gw.addr("http"), gw.addr("rtsp"));
    // Someone else holds the port asked for.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let taken_addr = taken.local_addr().expect("addr");
    let moved = first
        .replacen(
            "[rtsp]\nlisten = \"127.0.0.1:0\"",
            &format!("[rtsp]\nlisten = \"{taken_addr}\""),
            1,
        )
        .replacen("[mms]\n", "[mms]\nenabled = false\n", 1)
        + &play_token("live", "t");
    std::fs::write(config_path(&gw), &moved).expect("rewrite the config");
    let (status, body) = post(http, "/api/reload");
    assert_eq!(status, 200, "{body}");
    let report: Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(
        report["applied"],
        serde_json::json!(["auth.rule"]),
        "{body}"
    );
    assert_eq!(
        report["needs_restart"],
        serde_json::json!(["mms.enabled"]),
        "{body}"
    );
    let failed = report["failed"].as_array().expect("a list");
    assert_eq!(failed.len(), 1, "{body}");
    let why = failed[0].as_str().unwrap_or_default();
    assert!(
        why.starts_with(&format!("rtsp.listen: cannot listen on {taken_addr}: ")),
        "{why}"
    );
    // RTSP stays where it was; asked again, the same key fails the same way.
    assert!(accepts(rtsp), "RTSP left its address");
    let (_, body) = post(http, "/api/reload");
    let report: Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(report["applied"], serde_json::json!([]), "{body}");
    assert_eq!(report["failed"].as_array().map(Vec::len), Some(1), "{body}");
    assert_eq!(
        get_status(&gw, "/live/test.flv"),
        401,
        "the rule is in force"
    );
    drop(taken);
    gw.assert_running();
}

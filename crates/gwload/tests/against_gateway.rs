//! gwload against our gateway started in-process: for each protocol, publish the av.flv
//! fixture with latency stamps, open 5 viewers, and check that every viewer played, kept up,
//! and that stamps came through (so the SEI survives the gateway's remuxing).

use std::path::PathBuf;
use std::time::Duration;

use gateway::Gateway;
use gateway_config::Config;
use gwload::{Options, Protocol};

const VIEWERS: usize = 5;

fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn loopback_config() -> Config {
    let mut c = Config::default();
    let any = "127.0.0.1:0".to_owned();
    c.rtmp.listen = any.clone();
    c.http.listen = any.clone();
    c.rtsp.listen = any.clone();
    c.mms.listen = any;
    c.http.web_root = workspace_root().join("web").to_string_lossy().into_owned();
    c
}

fn check(protocol: Protocol, secs: u64) {
    check_with(protocol, secs, loopback_config(), |gw, opts| {
        let rtsp = gw.rtsp_addr().expect("RTSP is enabled by default");
        opts.url = match protocol {
            Protocol::Rtmp => format!("rtmp://{}/live/test", gw.rtmp_addr()),
            Protocol::HttpFlv => format!("http://{}/live/test.flv", gw.http_addr()),
            Protocol::WsFlv => format!("ws://{}/live/test.flv", gw.http_addr()),
            Protocol::Hls => format!("http://{}/live/test/index.m3u8", gw.http_addr()),
            Protocol::RtspTcp | Protocol::RtspUdp => format!("rtsp://{rtsp}/live/test"),
        };
        opts.publish_url = Some(format!("rtmp://{}/live/test", gw.rtmp_addr()));
    });
}

/// Runs 5 viewers of `protocol` for `secs` against a gateway on `config`; `urls` sets the
/// viewer and publisher URLs (and any other option) once the gateway listens.
fn check_with(
    protocol: Protocol,
    secs: u64,
    config: Config,
    urls: impl FnOnce(&Gateway, &mut Options),
) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime can be built");
    let gw = runtime
        .block_on(Gateway::start(&config))
        .unwrap_or_else(|e| panic!("the gateway did not start: {e}"));
    let mut opts = Options::new(protocol, "", VIEWERS);
    opts.duration = Duration::from_secs(secs);
    opts.warmup = Duration::from_secs(3);
    opts.ramp = 50;
    opts.publish = Some(workspace_root().join("tests/fixtures/av.flv"));
    urls(&gw, &mut opts);
    let result = runtime.block_on(gwload::run(&opts));
    runtime.block_on(gw.shutdown());
    let report = result.unwrap_or_else(|e| panic!("{}: the run failed: {e}", protocol.name()));
    let j = &report.json;
    let table = report.table();
    eprintln!("{}:\n{table}", protocol.name());
    for key in ["viewers_connected", "viewers_keeping_up"] {
        assert_eq!(j[key], VIEWERS, "{}: {key}\n{table}", protocol.name());
    }
    assert_eq!(j["viewers_failed"], 0, "{}\n{table}", protocol.name());
    assert!(
        j["latency_samples"].as_u64().is_some_and(|n| n > 0),
        "{}: no latency stamp arrived\n{table}",
        protocol.name()
    );
    assert!(
        j["latency_ms_p50"].is_number(),
        "{}\n{table}",
        protocol.name()
    );
    assert!(j["ttff_ms_p50"].is_number(), "{}\n{table}", protocol.name());
}

#[test]
fn rtmp_viewers_play_keep_up_and_see_stamps() {
    check(Protocol::Rtmp, 8);
}

/// RTMPS viewers and publisher (`--insecure`: the gateway's certificate is self-signed).
#[test]
fn rtmps_viewers_play_keep_up_and_see_stamps() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let made = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()])
        .expect("rcgen makes a certificate");
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert, made.cert.pem()).expect("write the certificate");
    std::fs::write(&key, made.key_pair.serialize_pem()).expect("write the key");
    let mut config = loopback_config();
    config.rtmp.tls_listen = "127.0.0.1:0".into();
    config.tls.cert_file = cert.to_string_lossy().into_owned();
    config.tls.key_file = key.to_string_lossy().into_owned();
    check_with(Protocol::Rtmp, 8, config, |gw, opts| {
        let addr = gw.rtmps_addr().expect("RTMPS is on");
        opts.url = format!("rtmps://{addr}/live/test");
        opts.publish_url = Some(opts.url.clone());
        opts.insecure = true;
    });
}

#[test]
fn http_flv_viewers_play_keep_up_and_see_stamps() {
    check(Protocol::HttpFlv, 8);
}

#[test]
fn ws_flv_viewers_play_keep_up_and_see_stamps() {
    check(Protocol::WsFlv, 8);
}

#[test]
fn rtsp_tcp_viewers_play_keep_up_and_see_stamps() {
    check(Protocol::RtspTcp, 8);
}

#[test]
fn rtsp_udp_viewers_play_keep_up_and_see_stamps() {
    check(Protocol::RtspUdp, 8);
}

#[test]
fn hls_viewers_play_keep_up_and_see_stamps() {
    // Segments are 2 s long: a longer window keeps the rate quantisation well under 10 %.
    check(Protocol::Hls, 14);
}

#[test]
fn stalled_viewers_stop_reading_but_stay_connected() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime can be built");
    let gw = runtime
        .block_on(Gateway::start(&loopback_config()))
        .unwrap_or_else(|e| panic!("the gateway did not start: {e}"));
    let url = format!("rtmp://{}/live/test", gw.rtmp_addr());
    let mut opts = Options::new(Protocol::Rtmp, &url, VIEWERS);
    // Viewers read for 2 s, so all of them play, then read nothing through the measured
    // window (3 s to 8 s), so none of them can keep up.
    opts.duration = Duration::from_secs(8);
    opts.warmup = Duration::from_secs(3);
    opts.ramp = 50;
    opts.stall_after = Some(Duration::from_secs(2));
    opts.publish = Some(workspace_root().join("tests/fixtures/av.flv"));
    opts.publish_url = Some(url);
    let result = runtime.block_on(gwload::run(&opts));
    runtime.block_on(gw.shutdown());
    let report = result.unwrap_or_else(|e| panic!("the run failed: {e}"));
    let (j, table) = (&report.json, report.table());
    for (key, want) in [
        ("viewers_connected", VIEWERS),
        ("viewers_stalled", VIEWERS),
        ("viewers_keeping_up", 0),
        ("viewers_failed", 0),
    ] {
        assert_eq!(j[key], want, "{key}\n{table}");
    }
    assert_eq!(j["kbps_per_viewer_p50"], 0.0, "{table}");
}

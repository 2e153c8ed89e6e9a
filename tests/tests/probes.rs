//! The orchestrator probes: `GET /healthz` and `GET /readyz` answer 200 on a running gateway,
//! without the API token that `/api/*` needs, on the plain and the HTTPS listener; `/readyz`
//! names every configured listener it waited for. (The 503 before a listener serves is the
//! readiness flags' unit test in `crates/gateway/src/health.rs`: on a gateway started here every
//! listener is bound before the HTTP listener answers.)
//!
//! Also `gateway healthcheck [URL]`, the container's `HEALTHCHECK` (the binary's code, built
//! here as `gateway-under-test`): exit 0 for a 200, 1 for anything else or no answer.

use std::process::Command;
use std::time::{Duration, Instant};

use gateway_tests::{
    http_get, http_get_with, with_tls, CertFiles, GetOptions, TestCa, TestGateway,
};

const TIMEOUT: Duration = Duration::from_secs(5);
const TOKEN: &str = "probe-test-api-token";

#[test]
fn healthz_and_readyz_answer_200_without_the_api_token() {
    let gateway = TestGateway::start_with(|c| c.auth.api_token = TOKEN.into());

    let health = http_get(&gateway.http_url("/healthz"), TIMEOUT).expect("GET /healthz");
    assert_eq!(health.status, 200, "{health:?}");
    assert_eq!(health.text(), "ok\n");
    assert_eq!(health.header("cache-control"), Some("no-cache"));

    let ready = http_get(&gateway.http_url("/readyz"), TIMEOUT).expect("GET /readyz");
    assert_eq!(ready.status, 200, "{}", ready.text());
    assert_eq!(ready.header("content-type"), Some("application/json"));
    let body: serde_json::Value = serde_json::from_slice(&ready.body).expect("JSON");
    assert_eq!(body, serde_json::json!({"ready": true, "not_ready": []}));
    assert!(gateway.readiness().is_ready());

    // The API beside them still wants the token.
    let api = http_get(&gateway.http_url("/api/streams"), TIMEOUT).expect("GET /api/streams");
    assert_eq!(api.status, 401, "{api:?}");
    let bearer = format!("Bearer {TOKEN}");
    let headers = [("Authorization", bearer.as_str())];
    let opts = GetOptions {
        headers: &headers,
        ..GetOptions::default()
    };
    let api = http_get_with(&gateway.http_url("/api/streams"), TIMEOUT, &opts).expect("GET");
    assert_eq!(api.status, 200, "{api:?}");
}

#[test]
fn readyz_waits_for_every_configured_listener_tls_ones_included() {
    let ca = TestCa::new();
    let files = CertFiles::new(&ca.issue("probe", 1));
    let gateway = TestGateway::start_with(|c| with_tls(c, &files.cert(), &files.key()));
    let mut names: Vec<&str> = gateway.listeners().iter().map(|(n, _)| *n).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        ["http", "https", "mms", "rtmp", "rtmps", "rtsp", "rtsps"]
    );
    let readiness = gateway.readiness();
    assert!(readiness.is_ready(), "{:?}", readiness.not_ready());
    let ready = http_get(&gateway.http_url("/readyz"), TIMEOUT).expect("GET /readyz");
    assert_eq!(ready.status, 200, "{}", ready.text());

    // Were a shell to stop, its listener would be named and the answer would be 503 (the
    // flag is what the RTMP shell's task clears when it ends).
    readiness.set("rtmps", false);
    let ready = http_get(&gateway.http_url("/readyz"), TIMEOUT).expect("GET /readyz");
    assert_eq!(ready.status, 503, "{}", ready.text());
    let body: serde_json::Value = serde_json::from_slice(&ready.body).expect("JSON");
    assert_eq!(
        body,
        serde_json::json!({"ready": false, "not_ready": ["rtmps"]})
    );
    readiness.set("rtmps", true);
}

#[test]
fn readyz_leaves_out_listeners_that_are_off() {
    let gateway = TestGateway::start_with(|c| {
        c.rtsp.enabled = false;
        c.mms.enabled = false;
    });
    let ready = http_get(&gateway.http_url("/readyz"), TIMEOUT).expect("GET /readyz");
    assert_eq!(ready.status, 200, "{}", ready.text());
    assert!(gateway.readiness().is_ready());
    // Marking an unconfigured listener changes nothing.
    gateway.readiness().set("rtsp", false);
    assert!(gateway.readiness().is_ready());
}

/// Runs `gateway healthcheck ARGS...` and returns its exit code and standard error.
fn healthcheck(args: &[&str]) -> (Option<i32>, String) {
    let out = gateway_tests::run_with_timeout(
        {
            let mut cmd = Command::new(gateway_tests::gateway_bin!());
            cmd.arg("healthcheck").args(args);
            cmd
        },
        Duration::from_secs(20),
    );
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_healthcheck_mode_exits_0_for_a_200_and_1_otherwise() {
    let gateway = TestGateway::start_with(|c| c.auth.api_token = TOKEN.into());
    let healthz = gateway.http_url("/healthz");
    assert_eq!(healthcheck(&[&healthz]), (Some(0), String::new()));
    let readyz = gateway.http_url("/readyz");
    assert_eq!(healthcheck(&[&readyz]).0, Some(0));

    gateway.readiness().set("mms", false);
    let (code, stderr) = healthcheck(&[&readyz]);
    gateway.readiness().set("mms", true);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("answered 503"), "{stderr}");

    // The API needs the token the probe does not send.
    let (code, stderr) = healthcheck(&[&gateway.http_url("/api/streams")]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("answered 401"), "{stderr}");

    let http = gateway.http_addr();
    drop(gateway);
    let started = Instant::now();
    let (code, stderr) = healthcheck(&[&format!("http://{http}/healthz")]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("cannot connect"), "{stderr}");
    assert!(started.elapsed() < Duration::from_secs(10));

    let (code, stderr) = healthcheck(&["https://127.0.0.1:1/healthz"]);
    assert_eq!(code, Some(1), "{stderr}");
    let (code, _) = healthcheck(&["http://127.0.0.1:1/healthz", "extra"]);
    assert_eq!(code, Some(2));
}

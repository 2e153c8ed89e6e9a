//! `docs/api.yaml` against the running server: a gateway with an API token, a signing secret,
//! ffmpeg publishing `live/test` and an ffmpeg RTSP viewer answers every documented GET with a
//! body the documented schema accepts (objects are closed, so an undocumented field fails), the
//! documented 401, 404 and 503 answers happen, OPTIONS is documented exactly where it is
//! answered, and every route the gateway's routers declare is in the file.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::Duration;

use gateway_tests::openapi::ApiDoc;
use gateway_tests::{
    http_get, http_get_with, require_tool, wait_until, workspace_root, Ffmpeg, GetOptions,
    HttpResponse, Live,
};
use serde_json::{json, Value};

const TIMEOUT: Duration = Duration::from_secs(10);
const TOKEN: &str = "api-doc-test-token";

fn doc() -> ApiDoc {
    let path = workspace_root().join("docs/api.yaml");
    let text = std::fs::read_to_string(&path).expect("docs/api.yaml is readable");
    ApiDoc::parse(&text).unwrap_or_else(|e| panic!("docs/api.yaml: {e}"))
}

/// `path` with its parameters filled in: the live stream, or `name` for `{name}`.
fn fill(path: &str, name: &str) -> String {
    path.replace("{app}", "live").replace("{name}", name)
}

fn get(live: &Live, path: &str, token: bool) -> HttpResponse {
    let bearer = format!("Bearer {TOKEN}");
    let headers = [("Authorization", bearer.as_str())];
    let opts = GetOptions {
        headers: if token { &headers } else { &[] },
        ..GetOptions::default()
    };
    http_get_with(&live.http_url(path), TIMEOUT, &opts)
        .unwrap_or_else(|e| panic!("GET {path}: {e}"))
}

/// The status of an OPTIONS request (a CORS preflight) for `path`.
fn options_status(addr: SocketAddr, path: &str) -> u16 {
    let mut s = TcpStream::connect_timeout(&addr, TIMEOUT).expect("connect");
    s.set_read_timeout(Some(TIMEOUT)).expect("timeout");
    let req = format!(
        "OPTIONS {path} HTTP/1.0\r\nHost: gw\r\nOrigin: http://page.example\r\n\
         Access-Control-Request-Method: GET\r\n\r\n"
    );
    s.write_all(req.as_bytes()).expect("send");
    let mut head = Vec::new();
    let _ = s.read_to_end(&mut head);
    let text = String::from_utf8_lossy(&head);
    text.split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status line for OPTIONS {path}: {text:?}"))
}

/// Checks `res` against the documented `status` response of `op`: its content type and, for
/// JSON, its body against the schema.
fn check_response(doc: &ApiDoc, op: &Value, what: &str, status: &str, res: &HttpResponse) {
    assert_eq!(res.status.to_string(), status, "{what}: {}", res.text());
    let responses = &op["responses"];
    let documented = doc
        .resolve(&responses[status])
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    let Some(content) = documented["content"].as_object() else {
        return;
    };
    let media = res.header("content-type").unwrap_or_default();
    let (kind, _) = content
        .iter()
        .find(|(k, _)| media.starts_with(k.as_str()))
        .unwrap_or_else(|| panic!("{what}: {status} came as {media:?}, documented {content:?}"));
    let schema = doc
        .response_schema(op, status, kind)
        .unwrap_or_else(|| panic!("{what}: no schema for {status} {kind}"));
    let value = match kind.as_str() {
        "application/json" => serde_json::from_slice(&res.body)
            .unwrap_or_else(|e| panic!("{what}: not JSON ({e}): {}", res.text())),
        _ => Value::String(res.text()),
    };
    let errors = doc.validate(schema, &value);
    assert!(
        errors.is_empty(),
        "{what}: the {status} body does not match docs/api.yaml:\n  {}\nbody: {value:#}",
        errors.join("\n  ")
    );
}

/// The routes the gateway's routers declare: the string after every `.route(` in the crates'
/// sources that is an API route (`/api/...`) or a probe.
fn declared_routes() -> BTreeSet<String> {
    let mut routes = BTreeSet::new();
    let mut files = Vec::new();
    collect_rs(&workspace_root().join("crates"), &mut files);
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        for (i, _) in text.match_indices(".route(") {
            let rest = text[i + ".route(".len()..].trim_start();
            let Some(lit) = rest.strip_prefix('"') else {
                continue;
            };
            let Some(end) = lit.find('"') else { continue };
            let route = &lit[..end];
            // A wildcard (`{*path}`) is documented as an ordinary parameter (`{path}`).
            let route = route.replace("{*", "{");
            let route = route.as_str();
            if route.starts_with("/api/") || ["/healthz", "/readyz", "/metrics"].contains(&route) {
                routes.insert(route.to_owned());
            }
        }
    }
    routes
}

fn collect_rs(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() && !p.ends_with("target") {
            collect_rs(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

#[test]
fn every_documented_get_answers_as_documented_on_a_live_gateway() {
    if !require_tool("ffmpeg") {
        return;
    }
    let doc = doc();
    assert!(doc.dangling_refs().is_empty(), "{:?}", doc.dangling_refs());

    let mut live = Live::ffmpeg_with("av.flv", |c| {
        c.auth.api_token = TOKEN.into();
        c.auth.sign_secret = "api-doc-test-secret".into();
    });
    // An RTSP viewer, so that the session list has an entry to check.
    let rtsp = live.gateway.rtsp_addr().expect("RTSP is on by default");
    let url = format!("rtsp://{rtsp}/live/test");
    let mut viewer = Ffmpeg::spawn(&["-rtsp_transport", "tcp", "-i", &url, "-f", "null", "-"]);
    let sessions = wait_until(Duration::from_secs(30), || {
        let res = get(&live, "/api/streams/live/test/rtsp", true);
        let v: Value = serde_json::from_slice(&res.body).unwrap_or_default();
        v["sessions"].as_array().is_some_and(|s| !s.is_empty())
    });
    viewer.assert_running();
    assert!(
        sessions,
        "the RTSP viewer never appeared:\n{}",
        viewer.log()
    );
    // Media facts come from the sequence headers; wait until they are all known.
    let described = wait_until(Duration::from_secs(30), || {
        let res = get(&live, "/api/streams/live/test", true);
        let v: Value = serde_json::from_slice(&res.body).unwrap_or_default();
        !v["width"].is_null() && !v["sample_rate"].is_null()
    });
    assert!(
        described,
        "{}",
        get(&live, "/api/streams/live/test", true).text()
    );

    let mut checked = Vec::new();
    for path in doc.paths() {
        let Some(op) = doc.operation(&path, "get") else {
            continue;
        };
        if path.contains("{path}") {
            // A recording download: tests/tests/record.rs fetches real files.
            continue;
        }
        let open = op["security"].as_array().is_some_and(|s| s.is_empty());
        let what = format!("GET {path}");
        let res = get(&live, &fill(&path, "test"), true);
        check_response(&doc, op, &what, "200", &res);
        checked.push(path.clone());

        let without = get(&live, &fill(&path, "test"), false);
        if open {
            // The probes answer without the token.
            check_response(
                &doc,
                op,
                &format!("{what} without a token"),
                "200",
                &without,
            );
        } else {
            assert!(
                op["responses"].get("401").is_some(),
                "{what}: 401 not documented"
            );
            check_response(
                &doc,
                op,
                &format!("{what} without a token"),
                "401",
                &without,
            );
            let challenge = without.header("www-authenticate").unwrap_or_default();
            assert_eq!(challenge, "Bearer realm=\"gateway\"", "{what}");
        }
        if path.contains("{name}") && op["responses"].get("404").is_some() {
            let gone = get(&live, &fill(&path, "no-such-stream"), true);
            let sign = path.starts_with("/api/sign/");
            // A signed link may be made for a stream not yet published.
            let status = if sign { "200" } else { "404" };
            check_response(
                &doc,
                op,
                &format!("{what} of a missing stream"),
                status,
                &gone,
            );
        }
    }
    println!("checked: {checked:?}");

    // The two documented answers a healthy gateway does not give by itself: /readyz's 503 (a
    // listener marked down, as when its shell stops) and /api/sign's 400.
    let readyz = doc.operation("/readyz", "get").expect("/readyz documented");
    live.gateway.readiness().set("rtsp", false);
    let res = get(&live, "/readyz", false);
    live.gateway.readiness().set("rtsp", true);
    check_response(&doc, readyz, "GET /readyz, RTSP down", "503", &res);
    let body: Value = serde_json::from_slice(&res.body).expect("JSON");
    assert_eq!(body, json!({"ready": false, "not_ready": ["rtsp"]}));
    let sign = doc
        .operation("/api/sign/{app}/{name}", "get")
        .expect("/api/sign documented");
    let res = get(
        &live,
        "/api/sign/live/test?action=publish&expires_in=60",
        true,
    );
    check_response(&doc, sign, "GET /api/sign publish", "200", &res);
    let res = get(&live, "/api/sign/live/test?action=delete", true);
    check_response(&doc, sign, "GET /api/sign action=delete", "400", &res);

    // OPTIONS (CORS preflight) is documented exactly where the server answers it.
    let http = live.gateway.http_addr();
    for path in doc.paths() {
        let status = options_status(http, &fill(&path, "test"));
        let documented = doc.operation(&path, "options").is_some();
        assert_eq!(
            documented,
            status == 204,
            "OPTIONS {path}: answered {status}, documented: {documented}"
        );
    }
    viewer.assert_running();
    live.assert_publishing();
}

#[test]
fn every_declared_route_is_documented_and_every_documented_one_declared() {
    let documented = doc().paths();
    let declared = declared_routes();
    assert!(
        declared.contains("/api/streams"),
        "the source scan found {declared:?}"
    );
    let undocumented: Vec<_> = declared.difference(&documented).collect();
    let missing: Vec<_> = documented.difference(&declared).collect();
    assert!(
        undocumented.is_empty(),
        "routes missing from docs/api.yaml: {undocumented:?}"
    );
    assert!(
        missing.is_empty(),
        "documented routes no router declares: {missing:?}"
    );
}

#[test]
fn documented_routes_exist_and_nearby_ones_do_not() {
    // Without ffmpeg: a gateway with no stream still routes every documented path (401 for the
    // API without a token, never the router's bare 404), and a path next to them is not routed.
    let gateway = gateway_tests::TestGateway::start_with(|c| c.auth.api_token = TOKEN.into());
    for path in doc().paths() {
        let res = http_get(&gateway.http_url(&fill(&path, "test")), TIMEOUT).expect("GET");
        assert!(
            res.status == 401 || res.status == 200,
            "GET {path}: {} {}",
            res.status,
            res.text()
        );
    }
    let res = http_get(&gateway.http_url("/api/nothing-here"), TIMEOUT).expect("GET");
    assert_eq!(res.status, 404, "{}", res.text());
}

/// The validator itself: what it must refuse, so that a pass above means something.
#[test]
fn the_validator_refuses_undocumented_missing_and_mistyped_fields() {
    let doc = doc();
    let schema = doc
        .resolve(&json!({"$ref": "#/components/schemas/PerProtocol"}))
        .expect("PerProtocol")
        .clone();
    let good = json!({"rtmp": 1, "http_flv": 0, "hls": 2, "rtsp": 0, "mms": 0});
    assert!(doc.validate(&schema, &good).is_empty());
    let mut extra = good.clone();
    extra["webrtc"] = json!(0);
    assert_eq!(
        doc.validate(&schema, &extra),
        ["$: property `webrtc` is not documented"]
    );
    let mut missing = good.clone();
    missing.as_object_mut().expect("object").remove("hls");
    assert_eq!(
        doc.validate(&schema, &missing),
        ["$: required property `hls` is missing"]
    );
    let mut mistyped = good.clone();
    mistyped["rtmp"] = json!("1");
    assert_eq!(
        doc.validate(&schema, &mistyped),
        ["$.rtmp: expected integer, got \"1\""]
    );
    let mut fractional = good;
    fractional["mms"] = json!(0.5);
    assert_eq!(
        doc.validate(&schema, &fractional),
        ["$.mms: expected integer, got 0.5"]
    );

    let stream = json!({"$ref": "#/components/schemas/Stream"});
    let errors = doc.validate(&stream, &json!({"key": null}));
    assert!(
        errors.contains(&"$.key: expected string, got null".to_owned()),
        "{errors:?}"
    );
    assert!(
        errors.iter().any(|e| e.contains("`viewers` is missing")),
        "{errors:?}"
    );
    let feed = doc.validate(
        &json!({"$ref": "#/components/schemas/Stream"}),
        &json!({"feed": "tertiary"}),
    );
    assert!(feed
        .iter()
        .any(|e| e.starts_with("$.feed: \"tertiary\" is not one of")));
    // A keyword the validator cannot check is an error, not a silent pass.
    let unknown = doc.validate(&json!({"type": "string", "pattern": "^a"}), &json!("b"));
    assert_eq!(
        unknown,
        ["$: the validator does not know keyword `pattern`"]
    );
    let nested = doc.validate(
        &json!({"type": "array", "items": {"type": "integer"}}),
        &json!([1, "two"]),
    );
    assert_eq!(nested, ["$[1]: expected integer, got \"two\""]);
}

//! The container files agree with each other and with the gateway, without a Docker engine:
//! `docker-compose.yml`'s `monitoring` profile (Prometheus scraping the gateway's `/metrics`,
//! Grafana with that Prometheus as its data source and `docs/grafana/` provisioned), the files
//! under `config/monitoring/` it mounts (Prometheus's own `promtool` checks its configuration),
//! and the Dockerfile's `HEALTHCHECK`, which must ask the port the default configuration's HTTP
//! listener binds. (`scripts/test` runs `docker-compose config -q` on both profiles, and
//! `scripts/check-image-build` the image's build command.) The Grafana dashboard
//! `docs/grafana/gateway.json` queries the provisioned data source, only metrics and labels the
//! gateway exports, filters per-stream metrics by its `app` and `stream` variables, and every
//! query parses as PromQL (`promtool check rules`).

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use gateway_tests::{require_tool, run_with_timeout, workspace_root, TempDir};
use serde_json::Value;

fn yaml(path: &str) -> Value {
    let file = workspace_root().join(path);
    let text = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_norway::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The port of the default configuration's HTTP listener.
fn default_http_port() -> String {
    let listen = gateway_config::Config::default().http.listen;
    listen.rsplit_once(':').expect("IP:port").1.to_owned()
}

/// The container-side paths a service mounts from the repository, by host path.
fn bind_mounts(service: &Value) -> Vec<(String, String)> {
    service["volumes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .filter(|v| v.starts_with("./"))
        .map(|v| {
            let mut parts = v.split(':');
            let host = parts.next().unwrap_or_default().to_owned();
            let target = parts.next().unwrap_or_default().to_owned();
            (host, target)
        })
        .collect()
}

#[test]
fn the_monitoring_profile_scrapes_the_gateway_and_provisions_grafana() {
    let compose = yaml("docker-compose.yml");
    let services = &compose["services"];
    assert!(
        services["gateway"]["profiles"].is_null(),
        "the gateway runs in every profile"
    );
    for name in ["prometheus", "grafana"] {
        assert_eq!(
            services[name]["profiles"],
            serde_json::json!(["monitoring"]),
            "{name} runs only with --profile monitoring"
        );
    }
    // Every file or directory a service mounts from the repository exists.
    for (name, service) in services.as_object().expect("services") {
        for (host, _) in bind_mounts(service) {
            assert!(
                workspace_root().join(&host).exists(),
                "{name} mounts {host}, which does not exist"
            );
        }
    }

    // Prometheus scrapes the gateway service's HTTP port at /metrics.
    let port = default_http_port();
    let published = |service: &str, port: &str| {
        services[service]["ports"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .any(|p| p.ends_with(&format!(":{port}")))
    };
    assert!(published("gateway", &port), "the gateway publishes {port}");
    let prometheus = yaml("config/monitoring/prometheus.yml");
    let jobs = prometheus["scrape_configs"]
        .as_array()
        .expect("scrape_configs");
    let gateway_job = jobs
        .iter()
        .find(|j| j["job_name"] == "gateway")
        .expect("a gateway job");
    assert_eq!(gateway_job["metrics_path"], "/metrics");
    assert_eq!(
        gateway_job["static_configs"][0]["targets"],
        serde_json::json!([format!("gateway:{port}")])
    );
    let prometheus_mounts = bind_mounts(&services["prometheus"]);
    assert!(prometheus_mounts.contains(&(
        "./config/monitoring/prometheus.yml".into(),
        "/etc/prometheus/prometheus.yml".into()
    )));

    // Grafana's data source is that Prometheus, and its dashboard provider reads the directory
    // docs/grafana/ is mounted at.
    assert!(published("prometheus", "9090"));
    let sources = yaml("config/monitoring/grafana/provisioning/datasources/prometheus.yml");
    let source = &sources["datasources"][0];
    assert_eq!(source["type"], "prometheus");
    assert_eq!(source["url"], "http://prometheus:9090");
    assert_eq!(source["uid"], "prometheus");
    let grafana_mounts = bind_mounts(&services["grafana"]);
    let provisioning = grafana_mounts
        .iter()
        .find(|(h, _)| h == "./config/monitoring/grafana/provisioning")
        .expect("provisioning mounted");
    assert_eq!(provisioning.1, "/etc/grafana/provisioning");
    let dashboards = grafana_mounts
        .iter()
        .find(|(h, _)| h == "./docs/grafana")
        .expect("docs/grafana mounted");
    let providers = yaml("config/monitoring/grafana/provisioning/dashboards/gateway.yml");
    assert_eq!(providers["providers"][0]["type"], "file");
    assert_eq!(
        providers["providers"][0]["options"]["path"],
        dashboards.1.as_str()
    );
}

#[test]
fn promtool_accepts_the_prometheus_configuration() {
    if !require_tool("promtool") {
        return;
    }
    let file = workspace_root().join("config/monitoring/prometheus.yml");
    let mut cmd = Command::new("promtool");
    cmd.args(["check", "config"]).arg(&file);
    let out = run_with_timeout(cmd, Duration::from_secs(30));
    assert!(
        out.status.success(),
        "promtool check config {}:\n{}{}",
        file.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_image_healthcheck_asks_the_default_http_port() {
    let dockerfile = std::fs::read_to_string(workspace_root().join("Dockerfile"))
        .expect("the Dockerfile is readable");
    let healthcheck = dockerfile
        .split("\nHEALTHCHECK ")
        .nth(1)
        .expect("a HEALTHCHECK instruction");
    let cmd = healthcheck
        .split("CMD ")
        .nth(1)
        .and_then(|c| c.lines().next())
        .expect("HEALTHCHECK ... CMD [...]");
    let argv: Vec<String> = serde_json::from_str(cmd).expect("the exec form, a JSON array");
    let url = format!("http://127.0.0.1:{}/healthz", default_http_port());
    assert_eq!(argv, ["gateway", "healthcheck", url.as_str()]);
    assert_eq!(url, gateway::cli::DEFAULT_HEALTH_URL);
    // The image runs as a user of its own and ships the files the default config names.
    assert!(dockerfile.contains("\nUSER gateway\n"));
    assert!(Path::new(&workspace_root().join("config/gateway.toml")).is_file());
}

/// Every metric the gateway exports, with its labels. This list must match
/// crates/gateway/src/metrics.rs (to be checked against a live `/metrics` as well).
const METRICS: &[(&str, &[&str])] = &[
    ("gateway_stream_live", &["app", "stream"]),
    ("gateway_stream_ingest_bytes_total", &["app", "stream"]),
    ("gateway_stream_ingest_bitrate_bps", &["app", "stream"]),
    (
        "gateway_stream_egress_bytes_total",
        &["app", "stream", "protocol"],
    ),
    ("gateway_stream_frames_total", &["app", "stream", "kind"]),
    ("gateway_stream_keyframes_total", &["app", "stream"]),
    (
        "gateway_stream_keyframe_interval_seconds",
        &["app", "stream"],
    ),
    (
        "gateway_stream_timestamp_corrections_total",
        &["app", "stream"],
    ),
    ("gateway_stream_viewers", &["app", "stream", "protocol"]),
    ("gateway_stream_dropped_tags_total", &["app", "stream"]),
    (
        "gateway_stream_stalled_viewers_total",
        &["app", "stream", "protocol"],
    ),
    ("gateway_stream_publisher_idle_seconds", &["app", "stream"]),
    ("gateway_stream_healthy", &["app", "stream"]),
    (
        "gateway_stream_unhealthy_total",
        &["app", "stream", "reason"],
    ),
    (
        "gateway_rtsp_receiver_fraction_lost",
        &["app", "stream", "track"],
    ),
    (
        "gateway_rtsp_receiver_cumulative_lost",
        &["app", "stream", "track"],
    ),
    ("gateway_rtsp_receiver_jitter", &["app", "stream", "track"]),
    ("gateway_rtsp_sessions", &["app", "stream", "track"]),
    ("gateway_hls_segments_total", &["app", "stream"]),
    ("gateway_hls_segment_duration_seconds", &["app", "stream"]),
    ("gateway_write_batch_units", &["protocol"]),
    ("gateway_listener_connections_open", &["listener"]),
    ("gateway_listener_connections_accepted_total", &["listener"]),
    (
        "gateway_listener_connections_refused_total",
        &["listener", "reason"],
    ),
    ("gateway_listener_timeouts_total", &["listener", "kind"]),
    ("gateway_listener_handshake_failures_total", &["listener"]),
    ("gateway_process_resident_memory_bytes", &[]),
    ("gateway_process_open_fds", &[]),
    ("gateway_tokio_alive_tasks", &[]),
    ("gateway_streams", &[]),
];

/// The histograms of [`METRICS`]: their series are `NAME_bucket` (with `le`), `NAME_sum` and
/// `NAME_count`, never `NAME` itself.
const HISTOGRAMS: &[&str] = &["gateway_write_batch_units"];

/// Labels Prometheus adds to every series it scrapes.
const TARGET_LABELS: &[&str] = &["job", "instance"];

/// What the dashboard must show (the panels asked for in issue 12).
const SHOWN: &[&str] = &[
    "gateway_stream_viewers",
    "gateway_stream_ingest_bitrate_bps",
    "gateway_stream_egress_bytes_total",
    "gateway_stream_dropped_tags_total",
    "gateway_rtsp_receiver_fraction_lost",
    "gateway_rtsp_receiver_jitter",
    "gateway_stream_keyframe_interval_seconds",
    "gateway_stream_healthy",
    "gateway_listener_connections_refused_total",
    "gateway_process_resident_memory_bytes",
    "gateway_process_open_fds",
    "gateway_tokio_alive_tasks",
];

/// The labels of a series name, `None` for a name the gateway does not export.
fn series_labels(name: &str) -> Option<BTreeSet<String>> {
    let labels = |base: &str| {
        METRICS
            .iter()
            .find(|(m, _)| *m == base)
            .map(|(_, l)| l.iter().map(|s| (*s).to_owned()).collect::<BTreeSet<_>>())
    };
    if HISTOGRAMS.contains(&name) {
        return None;
    }
    if let Some(l) = labels(name) {
        return Some(l);
    }
    for suffix in ["_bucket", "_sum", "_count"] {
        let Some(base) = name.strip_suffix(suffix) else {
            continue;
        };
        if HISTOGRAMS.contains(&base) {
            let mut l = labels(base)?;
            if suffix == "_bucket" {
                l.insert("le".to_owned());
            }
            return Some(l);
        }
    }
    None
}

/// A PromQL token, as far as the dashboard's queries need.
#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Str(String),
    /// A number or duration (`0.95`, `5m`).
    Num,
    /// A Grafana variable (`$app`, `$__rate_interval`, `${app}`).
    Var,
    Punct(char),
}

fn tokenize(expr: &str) -> Result<Vec<Tok>, String> {
    let chars: Vec<char> = expr.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let ident = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '"' || c == '\'' || c == '`' {
            let start = i + 1;
            i += 1;
            while i < chars.len() && chars[i] != c {
                i += if chars[i] == '\\' { 2 } else { 1 };
            }
            if i >= chars.len() {
                return Err(format!("an unterminated string in {expr}"));
            }
            out.push(Tok::Str(chars[start..i].iter().collect()));
            i += 1;
        } else if c == '$' {
            i += 1;
            if chars.get(i) == Some(&'{') {
                while i < chars.len() && chars[i] != '}' {
                    i += 1;
                }
                i += 1;
            } else {
                while i < chars.len() && ident(chars[i]) {
                    i += 1;
                }
            }
            out.push(Tok::Var);
        } else if c.is_ascii_digit() || c == '.' {
            while i < chars.len() && (ident(chars[i]) || chars[i] == '.') {
                i += 1;
            }
            out.push(Tok::Num);
        } else if ident(c) {
            let start = i;
            while i < chars.len() && ident(chars[i]) {
                i += 1;
            }
            out.push(Tok::Ident(chars[start..i].iter().collect()));
        } else {
            out.push(Tok::Punct(c));
            i += 1;
        }
    }
    Ok(out)
}

/// A series selector: the metric name and its label matchers `(label, operator, value)`.
#[derive(Debug)]
struct Selector {
    metric: String,
    matchers: Vec<(String, String, String)>,
}

/// The selectors and the `by (...)`/`without (...)` labels of a PromQL expression.
#[derive(Debug, Default)]
struct Query {
    selectors: Vec<Selector>,
    grouping: BTreeSet<String>,
}

fn parse_query(expr: &str) -> Result<Query, String> {
    const GROUPING: &[&str] = &[
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
    ];
    const KEYWORDS: &[&str] = &["and", "or", "unless", "bool", "offset"];
    let toks = tokenize(expr)?;
    let mut q = Query::default();
    let mut i = 0;
    while i < toks.len() {
        match &toks[i] {
            Tok::Ident(name) if toks.get(i + 1) == Some(&Tok::Punct('(')) => {
                i += 2;
                if GROUPING.contains(&name.as_str()) {
                    while i < toks.len() && toks[i] != Tok::Punct(')') {
                        if let Tok::Ident(l) = &toks[i] {
                            q.grouping.insert(l.clone());
                        }
                        i += 1;
                    }
                    i += 1;
                }
            }
            Tok::Ident(name) if KEYWORDS.contains(&name.as_str()) => i += 1,
            // An aggregation with its grouping first: `sum by (protocol) (...)`.
            Tok::Ident(_) if matches!(toks.get(i + 1), Some(Tok::Ident(k)) if k == "by" || k == "without") => {
                i += 1
            }
            Tok::Ident(name) => {
                let mut sel = Selector {
                    metric: name.clone(),
                    matchers: Vec::new(),
                };
                i += 1;
                if toks.get(i) == Some(&Tok::Punct('{')) {
                    i += 1;
                    loop {
                        match toks.get(i) {
                            Some(Tok::Punct('}')) => break,
                            Some(Tok::Punct(',')) => i += 1,
                            Some(Tok::Ident(label)) => {
                                let mut op = String::new();
                                i += 1;
                                while let Some(Tok::Punct(c @ ('=' | '!' | '~'))) = toks.get(i) {
                                    op.push(*c);
                                    i += 1;
                                }
                                let Some(Tok::Str(value)) = toks.get(i) else {
                                    return Err(format!("a matcher without a value in {expr}"));
                                };
                                sel.matchers.push((label.clone(), op, value.clone()));
                                i += 1;
                            }
                            other => return Err(format!("{other:?} in a selector of {expr}")),
                        }
                    }
                    i += 1;
                }
                q.selectors.push(sel);
            }
            Tok::Punct('{') => return Err(format!("a selector without a metric name in {expr}")),
            _ => i += 1,
        }
    }
    Ok(q)
}

/// Every panel, those inside rows included.
fn all_panels(panels: &Value) -> Vec<&Value> {
    let mut out = Vec::new();
    for p in panels.as_array().into_iter().flatten() {
        out.push(p);
        out.extend(all_panels(&p["panels"]));
    }
    out
}

/// Every `datasource` object anywhere in a JSON value.
fn datasources<'a>(v: &'a Value, out: &mut Vec<&'a Value>) {
    match v {
        Value::Object(map) => {
            for (k, v) in map {
                if k == "datasource" {
                    out.push(v);
                }
                datasources(v, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|v| datasources(v, out)),
        _ => {}
    }
}

fn dashboard() -> Value {
    let path = workspace_root().join("docs/grafana/gateway.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every `(panel title, expr, legendFormat)` of the dashboard's panels.
fn panel_queries(dash: &Value) -> Vec<(String, String, String)> {
    all_panels(&dash["panels"])
        .into_iter()
        .flat_map(|p| {
            let title = p["title"].as_str().unwrap_or_default().to_owned();
            p["targets"].as_array().into_iter().flatten().map(move |t| {
                let expr = t["expr"].as_str().unwrap_or_default().to_owned();
                let legend = t["legendFormat"].as_str().unwrap_or_default().to_owned();
                (title.clone(), expr, legend)
            })
        })
        .collect()
}

/// The `{{label}}` names of a legend format.
fn legend_labels(legend: &str) -> Vec<String> {
    legend
        .split("{{")
        .skip(1)
        .filter_map(|s| s.split_once("}}"))
        .map(|(l, _)| l.trim().to_owned())
        .collect()
}

#[test]
fn the_grafana_dashboard_queries_only_metrics_the_gateway_exports() {
    let dash = dashboard();
    assert!(
        dash["schemaVersion"].as_u64() >= Some(36),
        "schemaVersion {}",
        dash["schemaVersion"]
    );
    assert!(dash["uid"].as_str().is_some_and(|u| !u.is_empty()));
    // Every data source named anywhere is the provisioned Prometheus (by uid, as
    // config/monitoring/grafana/provisioning/datasources/prometheus.yml names it).
    let mut sources = Vec::new();
    datasources(&dash, &mut sources);
    assert!(!sources.is_empty());
    for s in sources {
        assert_eq!(
            s["uid"], "prometheus",
            "a data source other than Prometheus: {s}"
        );
        assert_eq!(s["type"], "prometheus", "{s}");
    }

    let mut errors = Vec::new();
    let mut used = BTreeSet::new();
    // The template variables: `app`, and `stream` of the chosen apps.
    let vars = dash["templating"]["list"]
        .as_array()
        .expect("templating.list");
    let names: Vec<&str> = vars.iter().filter_map(|v| v["name"].as_str()).collect();
    assert_eq!(names, ["app", "stream"], "the template variables");
    for v in vars {
        let q = v["query"]["query"]
            .as_str()
            .or(v["query"].as_str())
            .expect("a variable's query");
        assert_eq!(v["definition"].as_str(), Some(q), "{}", v["name"]);
        let inner = q
            .strip_prefix("label_values(")
            .and_then(|q| q.strip_suffix(')'))
            .unwrap_or_else(|| panic!("{}: not label_values(...): {q}", v["name"]));
        let (selector, label) = inner
            .rsplit_once(',')
            .expect("label_values(SELECTOR, LABEL)");
        let query = parse_query(selector).unwrap_or_else(|e| panic!("{e}"));
        for sel in &query.selectors {
            match series_labels(&sel.metric) {
                Some(l) if l.contains(label.trim()) => {
                    used.insert(sel.metric.clone());
                }
                _ => errors.push(format!("variable {}: {q}", v["name"])),
            }
        }
    }

    let mut ids = BTreeSet::new();
    for p in all_panels(&dash["panels"]) {
        let title = p["title"].as_str().unwrap_or_default();
        assert!(
            ids.insert(p["id"].as_u64().expect("a panel id")),
            "id of {title} repeated"
        );
        let g = &p["gridPos"];
        let (x, w) = (g["x"].as_u64().expect("x"), g["w"].as_u64().expect("w"));
        assert!(
            x + w <= 24 && g["h"].as_u64() > Some(0),
            "{title}: gridPos {g}"
        );
        if p["type"] != "row" {
            assert!(
                p["targets"].as_array().is_some_and(|t| !t.is_empty()),
                "{title}: no query"
            );
        }
    }
    for (title, expr, legend) in panel_queries(&dash) {
        let query = match parse_query(&expr) {
            Ok(q) => q,
            Err(e) => {
                errors.push(format!("{title}: {e}"));
                continue;
            }
        };
        if query.selectors.is_empty() {
            errors.push(format!("{title}: no metric in {expr}"));
        }
        let mut expr_labels: BTreeSet<String> =
            TARGET_LABELS.iter().map(|s| (*s).to_owned()).collect();
        for sel in &query.selectors {
            let Some(labels) = series_labels(&sel.metric) else {
                errors.push(format!(
                    "{title}: {} is not a metric the gateway exports",
                    sel.metric
                ));
                continue;
            };
            used.insert(sel.metric.clone());
            for (label, _, _) in &sel.matchers {
                if !labels.contains(label) && !TARGET_LABELS.contains(&label.as_str()) {
                    errors.push(format!("{title}: {} has no label {label}", sel.metric));
                }
            }
            // Per-stream metrics follow the dashboard's app and stream choice.
            for var in ["app", "stream"] {
                let wanted = (var.to_owned(), "=~".to_owned(), format!("${var}"));
                if labels.contains(var) && !sel.matchers.contains(&wanted) {
                    errors.push(format!(
                        "{title}: {} is not filtered by {var}=~\"${var}\"",
                        sel.metric
                    ));
                }
            }
            expr_labels.extend(labels);
        }
        for l in &query.grouping {
            if !expr_labels.contains(l) {
                errors.push(format!(
                    "{title}: groups by {l}, which {expr} does not have"
                ));
            }
        }
        let shown = if query.grouping.is_empty() {
            &expr_labels
        } else {
            &query.grouping
        };
        for l in legend_labels(&legend) {
            if !shown.contains(&l) {
                errors.push(format!(
                    "{title}: the legend names {l}, which {expr} does not keep"
                ));
            }
        }
    }
    assert!(
        errors.is_empty(),
        "docs/grafana/gateway.json:\n{}",
        errors.join("\n")
    );
    let base = |m: &String| {
        HISTOGRAMS
            .iter()
            .find(|h| m.starts_with(*h))
            .map_or(m.clone(), |h| (*h).to_owned())
    };
    let used: BTreeSet<String> = used.iter().map(base).collect();
    let missing: Vec<&&str> = SHOWN.iter().filter(|m| !used.contains(**m)).collect();
    assert!(missing.is_empty(), "no panel shows {missing:?}");
}

#[test]
fn the_dashboard_query_checker_catches_what_it_should() {
    let q = parse_query(
        r#"sum by (protocol, le) (rate(gateway_write_batch_units_bucket{job="gw"}[$__rate_interval])) or vector(0)"#,
    )
    .expect("parses");
    assert_eq!(q.selectors.len(), 1);
    assert_eq!(q.selectors[0].metric, "gateway_write_batch_units_bucket");
    assert_eq!(
        q.selectors[0].matchers,
        [("job".into(), "=".into(), "gw".into())]
    );
    assert_eq!(q.grouping, ["le".to_owned(), "protocol".to_owned()].into());
    assert!(series_labels("gateway_write_batch_units_bucket").is_some_and(|l| l.contains("le")));
    assert!(series_labels("gateway_write_batch_units").is_none());
    assert!(series_labels("gateway_write_batch_units_sum").is_some_and(|l| !l.contains("le")));
    assert!(series_labels("gateway_streams_total").is_none());
    let q = parse_query(r#"gateway_stream_viewerz{app=~"$app"} * 8"#).expect("parses");
    assert_eq!(q.selectors[0].metric, "gateway_stream_viewerz");
    assert!(parse_query(r#"{__name__="gateway_streams"}"#).is_err());
    assert_eq!(legend_labels("{{app}}/{{ stream }} x"), ["app", "stream"]);
}

#[test]
fn promtool_parses_every_dashboard_query() {
    if !require_tool("promtool") {
        return;
    }
    // Grafana's own variables become what Prometheus would be sent.
    let mut rules = String::from("groups:\n  - name: dashboard\n    rules:\n");
    let queries = panel_queries(&dashboard());
    for (i, (_, expr, _)) in queries.iter().enumerate() {
        let expr = expr
            .replace("$__rate_interval", "1m")
            .replace("$__interval", "15s")
            .replace("$__range", "1h");
        let quoted = serde_json::to_string(&expr).expect("a JSON string is a YAML string");
        rules.push_str(&format!(
            "      - record: dashboard:query_{i}\n        expr: {quoted}\n"
        ));
    }
    let dir = TempDir::new("grafana-rules");
    let file = dir.join("rules.yml");
    std::fs::write(&file, &rules).expect("the rules file is written");
    let mut cmd = Command::new("promtool");
    cmd.args(["check", "rules"]).arg(&file);
    let out = run_with_timeout(cmd, Duration::from_secs(30));
    assert!(
        out.status.success(),
        "promtool check rules on the dashboard's {} queries:\n{}{}\n{rules}",
        queries.len(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

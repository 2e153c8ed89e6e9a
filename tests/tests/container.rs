//! The container files agree with each other and with the gateway, without a Docker engine:
//! `docker-compose.yml`'s `monitoring` profile (Prometheus scraping the gateway's `/metrics`,
//! Grafana with that Prometheus as its data source and `docs/grafana/` provisioned), the files
//! under `config/monitoring/` it mounts (Prometheus's own `promtool` checks its configuration),
//! and the Dockerfile's `HEALTHCHECK`, which must ask the port the default configuration's HTTP
//! listener binds. (`scripts/test` runs `docker-compose config -q` on both profiles, and
//! `scripts/check-image-build` the image's build command.)

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use gateway_tests::{require_tool, run_with_timeout, workspace_root};
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

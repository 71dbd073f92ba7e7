//! Operations: Prometheus exposition checked by `promtool`, the admin
//! stream status, and deploy files that cannot drift from the code.

use loggate::config::{Config, ENV_NAMES, Secret};
use reqwest::StatusCode;
use serde_json::json;
use testkit::*;

/// The live `/metrics` of a gateway with traffic passes `promtool check
/// metrics` (Prometheus's own linter: names, units, _total, help).
/// Every known label combination is there, at zero, before anything
/// happens: `rate()` and alerts need the series to exist.
#[actix_web::test]
async fn labelled_series_exist_at_zero_from_the_start() {
    let app = in_process().await;
    let text = app.metrics().await;
    for series in [
        r#"loggate_events_published_total{service="etl",source="http"}"#,
        r#"loggate_events_published_total{service="analytics",source="otlp"}"#,
        r#"loggate_events_published_total{service="faas",source="loki"}"#,
        r#"loggate_events_published_total{service="etl",source="nats"}"#,
        r#"loggate_events_dropped_total{reason="slow_consumer",service="faas"}"#,
        r#"loggate_events_fanned_out_total{service="function"}"#,
        r#"loggate_events_delivered_total{transport="sse"}"#,
        r#"loggate_connections{transport="websocket"}"#,
        r#"loggate_publish_rejected_total{reason="invalid_token",source="http"}"#,
        r#"loggate_publish_rejected_total{reason="batch_exceeds_burst",source="loki"}"#,
        r#"loggate_publish_rejected_total{reason="invalid_body",source="otlp"}"#,
        r#"loggate_rate_limited_total{limit="connect"}"#,
        r#"loggate_connections_rejected_total{reason="connection_limit"}"#,
        r#"loggate_disconnects_total{reason="dead_peer"}"#,
        "loggate_log_lines_dropped_total",
    ] {
        assert_eq!(metric_value(&text, series), Some(0.0), "{series}");
    }
}

#[tokio::test]
async fn metrics_pass_promtool() {
    let gw = start();
    let mut sub = gw.subscribe("channels=logs:etl").await;
    gw.publish(&event("etl", Some("ws1"), None, "m")).await;
    sub.logs(1).await;
    gw.publish_raw("nope-nope-nope", "application/json", "{}")
        .await;
    let text = gw.metrics().await;
    for name in [
        "loggate_events_published_total",
        "loggate_events_delivered_total",
        "loggate_publish_rejected_total",
        "loggate_connections",
        "loggate_subscriptions",
        "loggate_delivery_latency_seconds_bucket",
        "loggate_history_events",
        "loggate_process_resident_memory_bytes",
    ] {
        assert!(text.contains(name), "{name} missing");
    }
    let mut child = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool is installed (scripts/test.sh installs it)");
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn stream_status_counts_connections_by_transport() {
    let (s, _) = start().get_json("/api/logs/stream/status").await;
    assert_eq!(s, StatusCode::FORBIDDEN, "no admin token configured");
    let gw = start_with(|c| c.auth.admin_token = Some(Secret::new("admin-token-for-tests")));
    let _a = gw.subscribe("channels=logs:etl:ws1").await;
    let _b = gw.subscribe("channels=logs:etl:ws1,logs:faas").await;
    let (s, _) = gw.get_json("/api/logs/stream/status").await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let res = gw
        .client
        .get(gw.url("/api/logs/stream/status"))
        .bearer_auth("admin-token-for-tests")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let v: serde_json::Value = res.json().await.unwrap();
    assert_eq!(v["status"], "active");
    assert_eq!(
        v["connections"]["global"],
        json!({"websocket": 0, "sse": 2})
    );
    assert_eq!(
        v["connections"]["channels"]["logs:etl:ws1"],
        json!({"websocket": 0, "sse": 2})
    );
    assert_eq!(
        v["connections"]["channels"]["logs:faas"],
        json!({"websocket": 0, "sse": 1})
    );
}

fn read(path: &str) -> String {
    std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(path)).unwrap()
}

/// fly.toml, render.yaml and the Dockerfile agree with the code on the
/// port, the health path and the environment names.
#[test]
fn deploy_files_match_the_configuration() {
    let port = Config::default().server.port;

    let fly: toml::Value = toml::from_str(&read("fly.toml")).unwrap();
    let http = &fly["http_service"];
    assert_eq!(http["internal_port"].as_integer(), Some(port as i64));
    let checks = http["checks"].as_array().unwrap();
    assert!(
        checks
            .iter()
            .any(|c| c["path"].as_str() == Some("/healthz"))
    );
    assert_eq!(http["concurrency"]["type"].as_str(), Some("connections"));
    let mut env: std::collections::HashMap<String, String> = std::collections::HashMap::new();
    for (name, value) in fly["env"].as_table().unwrap() {
        assert!(
            ENV_NAMES.contains(&name.as_str()),
            "fly.toml sets unknown {name}"
        );
        if name == "PORT" {
            assert_eq!(value.as_str(), Some(port.to_string().as_str()));
        }
        env.insert(name.clone(), value.as_str().unwrap().to_owned());
    }
    // With the secrets it names set, fly.toml's environment is a valid
    // production configuration.
    for (k, v) in [
        ("SERVICE_TOKENS", "etl=a-real-service-token"),
        ("JWT_SECRET", "0123456789abcdef0123456789abcdef"),
        ("ADMIN_TOKEN", "an-admin-token-of-length"),
        ("ALLOWED_ORIGINS", "https://app.example.com"),
    ] {
        env.insert(k.into(), v.into());
    }
    let loaded = Config::load(None, |k| env.get(k).cloned());
    assert!(loaded.is_ok(), "fly.toml: {:?}", loaded.err());
    assert_eq!(
        loaded.unwrap().server.trust_proxy,
        loggate::config::TrustProxy::Fly
    );

    let render = read("render.yaml");
    assert!(render.contains("healthCheckPath: /healthz"));
    let keys: Vec<&str> = render
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- key: "))
        .collect();
    assert!(keys.len() > 10, "{keys:?}");
    for key in &keys {
        assert!(ENV_NAMES.contains(key), "render.yaml sets unknown {key}");
    }
    for required in [
        "PORT",
        "SERVICE_TOKENS",
        "JWT_SECRET",
        "ADMIN_TOKEN",
        "LOGGATE_ENV",
    ] {
        assert!(keys.contains(&required), "render.yaml lacks {required}");
    }
    let port_line = render
        .lines()
        .skip_while(|l| !l.contains("key: PORT"))
        .nth(1)
        .unwrap();
    assert!(port_line.contains(&format!("\"{port}\"")), "{port_line}");

    let docker = read("Dockerfile");
    assert!(docker.contains(&format!("EXPOSE {port}")));
    assert!(docker.contains("HEALTHCHECK"));
    assert!(
        docker
            .lines()
            .any(|l| l.starts_with("USER ") && !l.contains("root"))
    );
}

/// `/metrics/ws` pushes a JSON snapshot every second to an admin.
#[tokio::test]
async fn metrics_websocket_pushes_snapshots() {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let gw = start_with(|c| c.auth.admin_token = Some(Secret::new("admin-token-for-tests")));
    let url = format!("ws://{}/metrics/ws", gw.running.addr);
    // Without the token: refused before the upgrade.
    assert_eq!(testkit::ws::refusal(url.as_str()).await, 401);
    let mut req = url.as_str().into_client_request().unwrap();
    req.headers_mut().insert(
        "authorization",
        "Bearer admin-token-for-tests".parse().unwrap(),
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    gw.publish(&event("etl", None, None, "counted")).await;
    let mut snapshots = Vec::new();
    while snapshots.len() < 2 {
        snapshots.push(testkit::ws::next_json(&mut ws).await);
    }
    assert!(snapshots.iter().all(|s| s["type"] == "metrics"));
    assert_eq!(snapshots[1]["events_published"], 1);
    assert_eq!(
        snapshots[1]["connections"]["websocket"], 1,
        "the dashboard counts as a connection"
    );
}

//! The gateway in this process ([`InProcessGateway`]): started on its own
//! thread on 127.0.0.1:0 from a default [`Config`] a test adjusts, talked to
//! over real sockets with reqwest. Not to be confused with
//! `loggate::Gateway` (the started registry and server it runs) or
//! `crate::node::GatewayProcess` (the real binary as a child process).

use std::time::Duration;

use loggate::Config;
use reqwest::StatusCode;
use serde_json::Value;

use crate::{ETL_TOKEN, SseClient, WAIT};

/// A gateway running in this process, on a thread of its own and an
/// ephemeral port; it stops when dropped.
pub struct InProcessGateway {
    pub running: loggate::GatewayThread,
    /// Keeps no idle connections, so a test's requests never hold a slot.
    pub client: reqwest::Client,
}

/// The defaults on 127.0.0.1:0 with two workers, then `adjust`.
pub fn config(adjust: impl FnOnce(&mut Config)) -> Config {
    let mut c = Config::default();
    c.server.host = "127.0.0.1".into();
    c.server.port = 0;
    c.server.workers = 2;
    c.server.shutdown_timeout_secs = 5;
    adjust(&mut c);
    c
}

pub fn start() -> InProcessGateway {
    start_with(|_| {})
}

pub fn start_with(adjust: impl FnOnce(&mut Config)) -> InProcessGateway {
    let running = loggate::spawn(config(adjust)).expect("gateway starts");
    InProcessGateway {
        running,
        client: reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .build()
            .expect("client"),
    }
}

impl InProcessGateway {
    pub fn url(&self, path: &str) -> String {
        self.running.url(path)
    }

    /// POSTs a JSON body with the etl token; returns status and JSON answer.
    pub async fn publish(&self, body: &Value) -> (StatusCode, Value) {
        self.publish_raw(ETL_TOKEN, "application/json", body.to_string().into_bytes())
            .await
    }

    /// POSTs any body with any service token (none if empty).
    pub async fn publish_raw(
        &self,
        token: &str,
        content_type: &str,
        body: impl Into<reqwest::Body>,
    ) -> (StatusCode, Value) {
        let base = self.url("");
        crate::http::publish(&self.client, &base, token, content_type, body, WAIT).await
    }

    /// Opens an SSE stream on `/api/logs/stream?{query}` and waits for its
    /// `ready` event.
    pub async fn subscribe(&self, query: &str) -> SseClient {
        let url = self.url(&format!("/api/logs/stream?{query}"));
        SseClient::open(crate::sse::stream_client().get(url), WAIT).await
    }

    /// POSTs `body` to `path` with `headers`; the response, answered in time.
    pub async fn post(
        &self,
        path: &str,
        headers: &[(&str, &str)],
        body: impl Into<reqwest::Body>,
    ) -> reqwest::Response {
        let mut req = self.client.post(self.url(path)).body(body);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        tokio::time::timeout(WAIT, req.send())
            .await
            .expect("answered in time")
            .expect("request")
    }

    /// GET that returns status and JSON (or the text as a JSON string).
    pub async fn get_json(&self, path: &str) -> (StatusCode, Value) {
        let res = tokio::time::timeout(WAIT, self.client.get(self.url(path)).send())
            .await
            .expect("answered in time")
            .expect("request");
        let status = res.status();
        let text = res.text().await.expect("body");
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// Polls `check` on the registry's stats until it holds.
    pub async fn wait_for_registry(
        &self,
        what: &str,
        check: impl Fn(&loggate::registry::RegistryStats) -> bool,
    ) -> loggate::registry::RegistryStats {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let stats = self.running.registry_stats().await.expect("stats");
            if check(&stats) {
                return stats;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting for {what}: {stats:?}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// The Prometheus text of `/metrics`.
    pub async fn metrics(&self) -> String {
        let (_, v) = self.get_json("/metrics").await;
        v.as_str().unwrap_or_default().to_owned()
    }

    /// The value of one series of `/metrics`, e.g.
    /// `loggate_events_published_total{service="etl",source="otlp"}`.
    pub async fn metric(&self, series: &str) -> Option<f64> {
        crate::metric_value(&self.metrics().await, series)
    }
}

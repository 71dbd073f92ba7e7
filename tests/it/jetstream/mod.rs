//! JetStream mode end to end (`NATS_JETSTREAM=true`): real `nats-server`
//! processes started with `-js` and a temporary store, and the real
//! `loggate` binary. The stream puts the cluster's events in order: every
//! node delivers the same events under the same ids, nothing is lost
//! across a NATS restart or a node restart, a retried publish is stored
//! once, a `Last-Event-ID` from one node resumes on another, and what the
//! stream let go before a node read it is told, not lost silently.
//!
//! By theme: [`delivery`], [`publish`], [`setup`], [`restarts`], [`hostile`];
//! the helpers they share are here.

use std::collections::HashSet;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;
use testkit::nats::NatsServer;
use testkit::node::{GatewayProcess, Reading, resuming_reader, warm_up};
use testkit::*;

mod delivery;
mod hostile;
mod publish;
mod restarts;
mod setup;

const BIN: &str = env!("CARGO_BIN_EXE_loggate");

/// Reconnecting after an outage may take a few backoff rounds.
const RECONNECT: Duration = Duration::from_secs(30);

fn js_node(name: &str, nats: &NatsServer) -> GatewayProcess {
    GatewayProcess::spawn(
        BIN,
        name,
        &[("NATS_URL", &nats.url()), ("NATS_JETSTREAM", "true")],
    )
}

/// A JetStream node with `toml` as its configuration file.
fn js_node_configured(name: &str, nats: &NatsServer, toml: &str) -> GatewayProcess {
    GatewayProcess::spawn_configured(
        BIN,
        name,
        &[("NATS_URL", &nats.url()), ("NATS_JETSTREAM", "true")],
        toml,
    )
}

/// Nodes A and B on `nats`, both ready.
async fn two_nodes(nats: &NatsServer) -> (GatewayProcess, GatewayProcess) {
    let (a, b) = (js_node("A", nats), js_node("B", nats));
    a.wait_ready(StatusCode::OK, DEADLINE).await;
    b.wait_ready(StatusCode::OK, DEADLINE).await;
    (a, b)
}

fn ev(ws: &str, message: &str) -> Value {
    event("etl", Some(ws), Some("r1"), message)
}

/// Publishes and answers the status and body, whatever they are.
async fn try_publish(node: &GatewayProcess, events: &[Value]) -> (StatusCode, Value) {
    testkit::http::publish(
        &node.client,
        &node.url(""),
        ETL_TOKEN,
        "application/json",
        Value::Array(events.to_vec()).to_string(),
        Duration::from_secs(30),
    )
    .await
}

/// Reads `n` log events, failing on any gap or lag notice.
async fn logs_without_gaps(sub: &mut SseClient, n: usize, who: &str) -> Vec<(String, String)> {
    let mut seen = Reading::default();
    let deadline = tokio::time::Instant::now() + RECONNECT;
    let done = |r: &Reading| r.logs.len() >= n || !r.notices.is_empty();
    let within = seen.read(sub, deadline, done).await;
    assert!(seen.notices.is_empty(), "{who}: {:?}", seen.notices);
    assert!(
        within,
        "{who}: {} of {n} events within {RECONNECT:?}",
        seen.logs.len()
    );
    seen.logs
}

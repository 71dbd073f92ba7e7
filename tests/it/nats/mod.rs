//! The NATS bridge, end to end: real `nats-server` processes and the real
//! `loggate` binary. Nodes of a cluster share what they accept (exactly
//! once, in order, with per-node ids and working resume); Fly.io's log
//! messages become events; NATS outages and wrong credentials degrade
//! `/ready` but never local traffic, and the gateway reconnects by itself.
//!
//! By theme: [`cluster`], [`hostile`], [`loss`], [`outages`], [`ingest`]; the
//! helpers they share are here.

use std::collections::HashSet;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;
use testkit::nats::NatsServer;
use testkit::node::{GatewayProcess, Reading, resuming_reader_until, warm_up};
use testkit::*;

mod cluster;
mod hostile;
mod ingest;
mod loss;
mod outages;

const BIN: &str = env!("CARGO_BIN_EXE_loggate");

/// Reconnecting after an outage may take a few backoff rounds.
const RECONNECT: Duration = Duration::from_secs(30);
const QUIET: Duration = Duration::from_millis(500);

fn cluster_node(name: &str, nats: &NatsServer) -> GatewayProcess {
    GatewayProcess::spawn(BIN, name, &[("NATS_URL", &nats.url())])
}

/// One etl event for `logs:etl:<ws>:r1`.
fn etl_event(ws: &str, message: &str) -> Value {
    event("etl", Some(ws), Some("r1"), message)
}

fn fly_gateway(nats: &NatsServer, token: &str) -> GatewayProcess {
    let url = nats.url();
    GatewayProcess::spawn(
        BIN,
        "fly",
        &[
            ("FLY_ORG", "myorg"),
            ("ACCESS_TOKEN", token),
            ("FLY_NATS_URL", &url),
            ("FLY_APP", "myapp"),
        ],
    )
}

/// A cluster message as a node with id `origin` would send it: event
/// `message` on `logs:etl:<ws>:r1`, number `seq` of its sequence.
fn cluster_message(
    origin: &str,
    seq: u64,
    ws: &str,
    message: &str,
) -> loggate::nats::wire::ClusterMessage {
    let body = etl_event(ws, message).to_string();
    let limits = loggate::ingest::Limits {
        max_event_bytes: 64 * 1024,
        max_batch_events: 1,
    };
    let received = loggate::ingest::Received::now();
    let new = loggate::ingest::parse_body(
        body.as_bytes(),
        loggate::ingest::BodyFormat::Json,
        "etl",
        &received,
        limits,
    )
    .expect("a valid event")
    .remove(0);
    let event = loggate::registry::outbound::ClusterEvent {
        channel: new.channel,
        level: new.level,
        times: new.times,
        body_tail: new.body_tail,
        seq,
    };
    loggate::nats::wire::encode("loggate", origin, &event)
}

/// Nodes A and B on `nats`, ready and warmed up; A's outbound queue holds
/// only 50 events, so an outage surely costs events (the NATS client's own
/// buffer would otherwise carry a short one).
async fn nodes_with_a_small_backlog(nats: &NatsServer) -> (GatewayProcess, GatewayProcess) {
    let a = GatewayProcess::spawn_configured(
        BIN,
        "A",
        &[("NATS_URL", &nats.url())],
        "[nats]\noutbound_backlog = 50\n",
    );
    let b = cluster_node("B", nats);
    a.wait_ready(StatusCode::OK, DEADLINE).await;
    b.wait_ready(StatusCode::OK, DEADLINE).await;
    warm_up(&a, &b, "probe").await;
    (a, b)
}

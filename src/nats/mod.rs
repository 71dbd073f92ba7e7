//! NATS: the bridge actor that joins loggate nodes into a cluster, and the
//! ingest of Fly.io's log bus.
//!
//! One [`NatsBridge`] actor per configured link ([`bridge`]) owns its
//! async-nats client (which reconnects by itself, with a capped backoff)
//! and the link's [`LinkStatus`] ([`link`]), read by `/ready` and `/health`.
//!
//! - **Cluster** (`NATS_URL`): the registry hands every event it accepted
//!   from a local publisher to its bounded cluster queue
//!   (`registry::outbound`), which [`bridge`] drains: when NATS is slow or
//!   down, the queue fills and further events are dropped and counted
//!   rather than held. The bridge publishes each on
//!   `<prefix>.<service>[.<workspace>[.<resource>]]` with the event's JSON
//!   (without its id) as payload and metadata in NATS headers (origin node,
//!   level, times); [`wire`] owns that format. Every node subscribes to
//!   `<prefix>.>`, drops its own echoes by the origin header, checks the
//!   rest with [`wire::decode_cluster`] and publishes what passes into
//!   its registry, which gives them local ids, fans them out and keeps them
//!   in history.
//! - **Fly.io** (`FLY_ORG` + `ACCESS_TOKEN`): see [`fly`]; **ingest rules**
//!   on the cluster connection: see [`rules`].
//!
//! Whoever can publish on these subjects can inject events, so no inbound
//! message is trusted: each gets the checks of an HTTP publish (size up to
//! `publish.max_event_bytes`, fields, level, timestamp, `meta`), is encoded
//! afresh rather than passed through, and a refusal is counted in
//! `loggate_nats_refused_total{link,reason}` (and as `direction="invalid"`).
//! A cluster message's origin and sequence number are believed only as far
//! as a real node could have gone ([`wire::OriginSequences`]); a number
//! past that is refused too, and never counted as loss.
//! Who may publish is NATS's to decide, through its credentials and
//! per-user subject permissions.
//!
//! Nothing here blocks the registry or an HTTP handler: the registry only
//! `try_send`s into the outbound queue, and inbound events reach the
//! registry through its bounded mailbox.
pub mod bridge;
pub mod wire;

/// [`wire`]'s former name, kept only so the integration tests written
/// against it still build; new code names [`wire`].
#[doc(hidden)]
pub mod cluster {
    pub use super::wire::*;
}
pub mod fly;
pub mod link;
pub mod rules;
pub mod stream;

pub use bridge::{NatsBridge, Role, Sharing};
pub use link::{Connection, LinkStatus};
pub use stream::{StreamPublisher, StreamSettings};

/// The queue group Fly's log bus is read through in JetStream mode when
/// `FLY_NATS_QUEUE` names none.
const FLY_QUEUE: &str = "loggate";

use std::sync::Arc;

use actix::{Actor, Addr};

use crate::config::Config;
use crate::ingest::PublishError;
use crate::metrics::{Metrics, label};
use crate::registry::Registry;

/// Starts the NATS links the configuration asks for: the cluster link (with
/// `sharing`, how this node shares what it accepts, and the ingest rules)
/// and Fly's log bus. Returns their status, for the probes.
pub fn start_links(
    config: &Config,
    node_id: &str,
    sharing: Option<Sharing>,
    registry: &Addr<Registry>,
    metrics: &Arc<Metrics>,
) -> Vec<Arc<dyn crate::state::Link>> {
    let stream = sharing.as_ref().and_then(Sharing::stream).cloned();
    let max_event_bytes = config.publish.max_event_bytes;
    let mut links: Vec<Arc<dyn crate::state::Link>> = Vec::new();
    let mut start = |connection: Connection, role: Role| {
        let bridge = NatsBridge::new(
            connection,
            role,
            registry.clone(),
            Arc::clone(metrics),
            max_event_bytes,
            stream.clone(),
        );
        links.push(bridge.status());
        bridge.start();
    };
    if let (Some(sharing), Some(url)) = (sharing, &config.nats.url) {
        let n = &config.nats;
        let connection = Connection {
            url: url.clone(),
            user: n.user.clone(),
            password: n.password.clone(),
            token: n.token.clone(),
            creds_file: n.creds_file.clone(),
        };
        let role = Role::Cluster {
            node_id: Arc::from(node_id),
            prefix: Arc::from(n.subject_prefix.as_str()),
            sharing,
            rules: n.ingest.clone(),
            max_node_rate: n.max_node_events_per_sec,
        };
        start(connection, role);
        metrics.create_nats_series(label::nats::CLUSTER, PublishError::EVENT_CODES);
        metrics.create_nats_series(label::nats::CLUSTER, &label::nats::SEQUENCE_REFUSALS);
        if !n.ingest.is_empty() {
            metrics.create_nats_series(label::nats::RULES, PublishError::EVENT_CODES);
        }
        tracing::info!(%url, node = %node_id, jetstream = n.jetstream, "cluster mode: sharing events over NATS");
    }
    if config.fly.enabled() {
        let f = &config.fly;
        let connection = Connection {
            url: f.nats_url.clone(),
            user: f.org.clone(),
            password: f.access_token.clone(),
            token: None,
            creds_file: None,
        };
        let ingest = fly::FlyIngest {
            org: f.org.clone().unwrap_or_default(),
            app: f.app.clone(),
            // JetStream mode: one node takes each line and the stream
            // shares it, so the gateways always read as one queue group.
            queue: f
                .queue
                .clone()
                .or_else(|| stream.is_some().then(|| FLY_QUEUE.to_owned())),
        };
        tracing::info!(url = %f.nats_url, subject = %ingest.subject(), "Fly.io log ingest");
        start(connection, Role::Fly(ingest));
        metrics.create_nats_series(label::nats::FLY, PublishError::EVENT_CODES);
    }
    links
}

/// Counts a NATS message refused by the checks an HTTP publish gets, on
/// `link` (`nats_messages_total{direction="invalid"}` and
/// `nats_refused_total{reason}`).
pub(crate) fn count_refused(metrics: &Metrics, link: &str, subject: &str, e: &PublishError) {
    metrics
        .nats_messages
        .with_label_values(&[link, label::nats::INVALID])
        .inc();
    metrics
        .nats_refused
        .with_label_values(&[link, e.code()])
        .inc();
    tracing::debug!(link, subject, reason = e.code(), error = %e, "NATS message refused");
}

/// Counts a cluster message refused for its sequence number rather than
/// its content (`reason` is one of [`label::nats::SEQUENCE_REFUSALS`]):
/// in `nats_refused_total`, and for an event (not a mark, which is no
/// event) as received and `direction="invalid"` too.
pub(crate) fn count_refused_number(
    metrics: &Metrics,
    reason: &str,
    event: bool,
    origin: &str,
    seq: u64,
) {
    let link = label::nats::CLUSTER;
    if event {
        for direction in [label::nats::IN, label::nats::INVALID] {
            metrics
                .nats_messages
                .with_label_values(&[link, direction])
                .inc();
        }
    }
    metrics
        .nats_refused
        .with_label_values(&[link, reason])
        .inc();
    tracing::debug!(
        link,
        origin,
        seq,
        reason,
        "NATS cluster message refused for its number"
    );
}

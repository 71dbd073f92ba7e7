//! NATS: the bridge actor that joins loggate nodes into a cluster, and the
//! ingest of Fly.io's log bus.
//!
//! One [`NatsBridge`] actor per configured link ([`bridge`]) owns its
//! async-nats client (which reconnects by itself, with a capped
//! [`backoff`]) and the link's [`LinkStatus`] ([`link`]), read by `/ready`
//! and `/health`. Every message a link reads goes through one handler,
//! [`inbound`], whichever mode and link read it.
//!
//! The cluster mode is chosen once, from the configuration, as one
//! [`Cluster`] value (off, core NATS or JetStream): the server asks it what
//! the registry shares ([`Cluster::sharing`]) and where publishes go
//! ([`Cluster::publisher`]), then hands it whole to [`start_links`], whose
//! cluster link runs the mode's work.
//!
//! - **Core NATS** (`NATS_URL`): the registry hands every event it accepted
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
//!   in history. [`core`] holds the publishing loop.
//! - **JetStream** (`nats.jetstream`): see [`jetstream`]; the stream, not
//!   the registry, orders and numbers the cluster's events.
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
//!
//! Errors are typed per boundary: [`link::LinkError`] (connecting,
//! subscribing), [`jetstream::JetStreamError`] (the stream and its
//! consumer), `state::JetStreamRefused` (a publish the stream did not take).
pub mod backoff;
pub mod bridge;
pub mod core;
pub mod fly;
pub mod inbound;
pub mod jetstream;
pub mod link;
pub mod rules;
pub mod wire;

pub use bridge::{Intake, NatsBridge, Role};
pub use jetstream::{JetStreamPublisher, JetStreamSettings};
pub use link::{Connection, LinkStatus};

/// The queue group Fly's log bus is read through in JetStream mode when
/// `FLY_NATS_QUEUE` names none.
const FLY_QUEUE: &str = "loggate";

use std::sync::Arc;

use actix::{Actor, Addr};

use crate::config::Config;
use crate::ingest::PublishError;
use crate::metrics::{Metrics, label};
use crate::registry::outbound::{ClusterOutbound, ClusterQueue};
use crate::registry::{Origin, Registry, Sharing};
use crate::state::{JetStreamPublish, Link};

/// How this node takes part in a cluster: chosen once, from the
/// configuration, and handed over whole (as centrifuge's node is given one
/// broker and never asks which).
pub enum Cluster {
    /// No `NATS_URL`: a node alone.
    Off,
    /// Core NATS: the registry numbers events itself and queues what it
    /// accepts locally; the cluster link publishes the queue.
    Core {
        /// The registry's end, given to it through [`Cluster::sharing`].
        queue: ClusterQueue,
        /// The cluster link's end.
        outbound: ClusterOutbound,
    },
    /// JetStream: publishes go to the stream, and every node reads it back
    /// with the stream's ids.
    JetStream {
        publisher: JetStreamPublisher,
        settings: JetStreamSettings,
    },
}

impl Cluster {
    /// The mode the configuration asks for: off without `NATS_URL`, else
    /// JetStream when `nats.jetstream`, else core NATS.
    pub fn from_config(config: &Config, node_id: &str, metrics: &Arc<Metrics>) -> Self {
        if config.nats.url.is_none() {
            return Cluster::Off;
        }
        if config.nats.jetstream {
            return Cluster::JetStream {
                publisher: JetStreamPublisher::new(config, node_id, metrics),
                settings: JetStreamSettings::from_config(config),
            };
        }
        let (queue, outbound) =
            ClusterQueue::new(config.nats.outbound_backlog, Arc::clone(metrics));
        Cluster::Core { queue, outbound }
    }

    /// What the registry shares, and whose ids it gives.
    pub fn sharing(&self) -> Sharing {
        match self {
            Cluster::Off => Sharing::Alone,
            Cluster::Core { queue, .. } => Sharing::Core(queue.clone()),
            // Publishes go to the stream and come back to every node, this
            // one included, so the registry shares nothing itself.
            Cluster::JetStream { .. } => Sharing::JetStream,
        }
    }

    /// JetStream mode: where publishes go instead of the registry.
    pub fn publisher(&self) -> Option<Arc<dyn JetStreamPublish>> {
        match self {
            Cluster::JetStream { publisher, .. } => Some(Arc::new(publisher.clone())),
            _ => None,
        }
    }

    fn jetstream(&self) -> Option<&JetStreamPublisher> {
        match self {
            Cluster::JetStream { publisher, .. } => Some(publisher),
            _ => None,
        }
    }
}

/// Starts the NATS links the configuration asks for: the cluster link
/// (with the `cluster` mode and the ingest rules) and Fly's log bus.
/// Returns their status, for the probes; in JetStream mode the stream is
/// one of them.
pub fn start_links(
    config: &Config,
    node_id: &str,
    cluster: Cluster,
    registry: &Addr<Registry>,
    metrics: &Arc<Metrics>,
) -> Vec<Arc<dyn Link>> {
    let jetstream = cluster.jetstream().cloned();
    let max_event_bytes = config.publish.max_event_bytes;
    let mut links: Vec<Arc<dyn Link>> = Vec::new();
    let mut start = |connection: Connection, role: Role, intake: Intake| {
        let bridge = NatsBridge::new(
            connection,
            role,
            intake,
            registry.clone(),
            Arc::clone(metrics),
            max_event_bytes,
        );
        links.push(bridge.status());
        bridge.start();
    };
    // In JetStream mode one node reads each message a link takes through
    // a queue group, and the stream shares it with every node.
    let shared = |origin: Origin| match &jetstream {
        Some(p) => Intake::JetStream(p.clone()),
        None => Intake::Registry(origin),
    };
    if let (false, Some(url)) = (matches!(cluster, Cluster::Off), &config.nats.url) {
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
            cluster,
            rules: n.ingest.clone(),
            max_node_rate: n.max_node_events_per_sec,
        };
        // Core mode: peers' events, and ingest rules every node reads.
        start(connection, role, shared(Origin::Cluster));
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
                .or_else(|| jetstream.is_some().then(|| FLY_QUEUE.to_owned())),
        };
        // Read through a queue group, a line reaches only this node, so
        // this node shares it with the cluster; without one every node
        // reads them all and none may share.
        let origin = match ingest.queue {
            Some(_) => Origin::Local,
            None => Origin::Cluster,
        };
        tracing::info!(url = %f.nats_url, subject = %ingest.subject(), "Fly.io log ingest");
        start(connection, Role::Fly(ingest), shared(origin));
        metrics.create_nats_series(label::nats::FLY, PublishError::EVENT_CODES);
    }
    if let Some(publisher) = jetstream {
        links.push(Arc::new(publisher));
    }
    links
}

//! Core NATS mode's way out: the loop that drains the registry's cluster
//! queue (`registry::outbound`) onto NATS, and sends this node's sequence
//! mark while it has nothing to send. What comes in goes through the
//! bridge's subscription and [`super::inbound`].

use std::sync::Arc;
use std::time::Duration;

use super::wire;
use crate::metrics::{Metrics, label};
use crate::registry::outbound::ClusterOutbound;

/// A node that has sent no event for this long sends its sequence mark,
/// and again each time as long as it stays quiet: a hole at the end of
/// what it sent is then seen within about this long, even if a mark is
/// itself lost in an outage. One small message a second per idle node.
const MARK_INTERVAL: Duration = Duration::from_secs(1);

/// Events taken from the queue and published together.
const OUTBOUND_BATCH: usize = 512;

/// Publishes what the registry queues for the cluster, as it comes, until
/// the registry stops. One message at a time, so a stalled connection
/// stalls this loop and fills the bounded queue instead of memory.
pub async fn publish_loop(
    client: async_nats::Client,
    mut outbound: ClusterOutbound,
    prefix: Arc<str>,
    node_id: Arc<str>,
    metrics: Arc<Metrics>,
) {
    let out = metrics
        .nats_messages
        .with_label_values(&[label::nats::CLUSTER, label::nats::OUT]);
    let mut batch = Vec::with_capacity(OUTBOUND_BATCH);
    loop {
        let next = outbound.recv_many(&mut batch, OUTBOUND_BATCH);
        let mark = match tokio::time::timeout(MARK_INTERVAL, next).await {
            Ok(0) => break, // the registry has stopped
            Ok(_) => None,
            Err(_) => Some(wire::encode_mark(
                &prefix,
                &node_id,
                outbound.last_offered(),
            )),
        };
        // Events count as sent messages; a mark does not.
        let events = batch
            .drain(..)
            .map(|event| (wire::encode(&prefix, &node_id, &event), true));
        for (m, counted) in events.chain(mark.map(|m| (m, false))) {
            match client
                .publish_with_headers(m.subject, m.headers, m.payload)
                .await
            {
                Ok(()) if counted => out.inc(),
                Ok(()) => {}
                Err(e) => tracing::warn!(error = %e, "NATS publish failed"),
            }
        }
    }
}

//! The one handler every inbound NATS message goes through, whichever
//! link read it (core cluster subscription, JetStream consumer, Fly's log
//! bus, an ingest rule), as vector's NATS source has one
//! `process_message` for core and JetStream: the message is counted as
//! received, decoded by its link's pure decoder, and a refusal is counted
//! (`nats_messages_total{direction="invalid"}`,
//! `nats_refused_total{reason}`). An event from outside the cluster is
//! counted as published here; a peer's was counted by the node that
//! accepted it.
//!
//! Also counts the cluster messages refused for their sequence number
//! rather than their content (`count_refused_number`).

use crate::event::NewEvent;
use crate::ingest::PublishError;
use crate::metrics::{Metrics, label};
use crate::nats::wire;

/// One message read on `link` (a `label::nats` value), decoded by
/// `decode`: the event, or `None` when refused (counted).
pub(crate) fn process_message(
    metrics: &Metrics,
    link: &'static str,
    subject: &str,
    decode: impl FnOnce() -> Result<NewEvent, PublishError>,
) -> Option<NewEvent> {
    metrics
        .nats_messages
        .with_label_values(&[link, label::nats::IN])
        .inc();
    let event = decode()
        .inspect_err(|e| count_refused(metrics, link, subject, e))
        .ok()?;
    if link != label::nats::CLUSTER {
        metrics.published(event.channel.service(), label::source::NATS, 1);
    }
    Some(event)
}

/// One cluster event message, in core or JetStream mode alike, through
/// [`process_message`] and the wire format's checks
/// ([`wire::decode_cluster`]).
pub(crate) fn cluster_message(
    metrics: &Metrics,
    prefix: &str,
    subject: &str,
    headers: Option<&async_nats::HeaderMap>,
    payload: &[u8],
    max_event_bytes: usize,
) -> Option<NewEvent> {
    process_message(metrics, label::nats::CLUSTER, subject, || {
        let headers = wire::ClusterHeaders::of(headers);
        wire::decode_cluster(prefix, subject, headers, payload, max_event_bytes)
    })
}

/// Counts a NATS message refused by the checks an HTTP publish gets, on
/// `link` (`nats_messages_total{direction="invalid"}` and
/// `nats_refused_total{reason}`).
fn count_refused(metrics: &Metrics, link: &str, subject: &str, e: &PublishError) {
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

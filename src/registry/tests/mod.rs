//! The registry driven through its mailbox, as its senders drive it:
//! [`core`] the path every mode shares (publish, subscribe, resume,
//! cluster loss, shutdown), [`jetstream`] what JetStream mode changes.

use crate::delivery::framing::Framing;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll, Waker};

use super::*;
use crate::delivery::filter::Filter;
use crate::delivery::outbox::{Drained, Item, QueueLimits};
use crate::registry::history::HistoryLimits;

mod core;
mod jetstream;

pub(super) fn registry_with(sharing: Sharing) -> Addr<Registry> {
    let limits = HistoryLimits {
        max_entries_per_channel: 1000,
        max_age_ms: 60_000,
        max_bytes: 1 << 20,
        max_channels: 100,
    };
    let metrics = Arc::new(Metrics::new(["etl"], &[]));
    Registry::new(
        super::Start {
            epoch: 7,
            ..Default::default()
        },
        SharedHistory::new(limits),
        metrics,
        Arc::new(RegistryGauges::default()),
        sharing,
    )
    .start()
}

pub(super) fn outbox() -> Arc<Outbox> {
    let limits = QueueLimits {
        max_events: 100,
        max_bytes: 1 << 20,
    };
    Arc::new(Outbox::new(limits, Filter::default(), Framing::WebSocket))
}

/// (ids of the queued events, how many control frames: gaps, notices).
pub(super) fn drain(outbox: &Outbox) -> (Vec<EventId>, usize) {
    let mut cx = TaskContext::from_waker(Waker::noop());
    let (mut ids, mut controls) = (Vec::new(), 0);
    while let Poll::Ready(Drained::Batch(b)) = outbox.poll_batch(&mut cx, usize::MAX) {
        for item in b.items {
            match item {
                Item::Event(e) => ids.push(e.id),
                Item::Control(_) => controls += 1,
            }
        }
    }
    (ids, controls)
}

pub(super) async fn subscribe(
    reg: &Addr<Registry>,
    id: u64,
    resume: Option<EventId>,
) -> Arc<Outbox> {
    let ob = outbox();
    reg.send(Subscribe {
        session: SessionId(id),
        outbox: Arc::clone(&ob),
        patterns: vec![ChannelPattern::parse("logs:etl").unwrap()],
        resume,
    })
    .await
    .unwrap()
    .unwrap();
    ob
}

pub(super) fn id(epoch: u64, seq: u64) -> EventId {
    EventId { epoch, seq }
}

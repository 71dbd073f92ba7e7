//! The registry's way out to the cluster: a bounded queue of the events it
//! accepted from local publishers, for the NATS bridge to send.
//!
//! The registry only `try_send`s: when NATS is slow or down the queue fills
//! and further events are dropped and counted
//! (`events_dropped_total{reason="nats_backlog"}`), never waited for. The
//! queue carries the event as the registry has it (channel, level, times,
//! JSON without its id); how it travels over NATS is the bridge's business.

use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::mpsc;

use crate::channel::ChannelName;
use crate::event::{EventTimes, Level, NewEvent};
use crate::metrics::{Metrics, label};

/// An accepted local event, on its way to the other nodes.
#[derive(Debug, Clone)]
pub struct ClusterEvent {
    pub channel: ChannelName,
    pub level: Level,
    pub times: EventTimes,
    /// The event's JSON without its opening brace and `id`
    /// (`NewEvent::body_tail`).
    pub body_tail: Bytes,
}

/// The bridge's end of the queue.
pub type ClusterOutbound = mpsc::Receiver<ClusterEvent>;

/// The registry's end of the queue.
#[derive(Clone)]
pub struct ClusterQueue {
    tx: mpsc::Sender<ClusterEvent>,
    metrics: Arc<Metrics>,
}

impl ClusterQueue {
    /// A queue holding at most `backlog` events.
    pub fn new(backlog: usize, metrics: Arc<Metrics>) -> (ClusterQueue, ClusterOutbound) {
        let (tx, rx) = mpsc::channel(backlog.max(1));
        (ClusterQueue { tx, metrics }, rx)
    }

    /// Queues an accepted local event without waiting; a full queue drops
    /// it and counts the drop.
    pub fn offer(&self, event: &NewEvent) {
        let queued = self.tx.try_send(ClusterEvent {
            channel: event.channel.clone(),
            level: event.level,
            times: event.times,
            body_tail: event.body_tail.clone(),
        });
        if queued.is_err() {
            self.metrics
                .dropped(label::dropped::NATS_BACKLOG, event.channel.service(), 1);
        }
    }
}

//! The registry's way out to the cluster: a bounded queue of the events it
//! accepted from local publishers, for the NATS bridge to send.
//!
//! The registry only `try_send`s: when NATS is slow or down the queue fills
//! and further events are dropped and counted
//! (`events_dropped_total{reason="nats_backlog"}`), never waited for. Every
//! offered event takes the next number of this node's cluster sequence,
//! queued or not, so a receiving node sees a dropped event as a hole and
//! can say so. The
//! queue carries the event as the registry has it (channel, level, times,
//! JSON without its id); how it travels over NATS is the bridge's business.
//!
//! [`Sharing`] is the registry's part of the cluster mode: alone, core
//! (with this queue) or JetStream.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use tokio::sync::mpsc;

use crate::channel::ChannelName;
use crate::event::{EventTimes, Level, NewEvent};
use crate::metrics::{Metrics, label};

/// How the registry takes part in a cluster; chosen once, with the rest of
/// the cluster mode (`nats::Cluster::sharing`).
#[derive(Clone)]
pub enum Sharing {
    /// A node alone: ids of its own run, nothing shared.
    Alone,
    /// Core NATS: ids of its own run; what local publishers send is
    /// offered to the cluster through this queue.
    Core(ClusterQueue),
    /// JetStream: ids are the stream's, and events come only as `Stored`
    /// (the epoch is 0 until the first one names it); nothing is shared
    /// from here, since the stream hands every node every event.
    JetStream,
}

/// An accepted local event, on its way to the other nodes.
#[derive(Debug, Clone)]
pub struct ClusterEvent {
    pub channel: ChannelName,
    pub level: Level,
    pub times: EventTimes,
    /// The event's JSON without its opening brace and `id`
    /// (`NewEvent::body_tail`).
    pub body_tail: Bytes,
    /// Its number in this node's cluster sequence, from 1.
    pub seq: u64,
}

impl ClusterEvent {
    /// `event` as number `seq` of this node's cluster sequence.
    pub fn from_new(event: &NewEvent, seq: u64) -> Self {
        ClusterEvent {
            channel: event.channel.clone(),
            level: event.level,
            times: event.times,
            body_tail: event.body_tail.clone(),
            seq,
        }
    }
}

/// The bridge's end of the queue.
pub struct ClusterOutbound {
    rx: mpsc::Receiver<ClusterEvent>,
    /// The queue's sequence counter, shared with its [`ClusterQueue`].
    seq: Arc<AtomicU64>,
}

impl ClusterOutbound {
    /// Waits for events and moves up to `limit` of them into `buffer`;
    /// 0 once the registry has dropped its end. Cancel-safe.
    pub async fn recv_many(&mut self, buffer: &mut Vec<ClusterEvent>, limit: usize) -> usize {
        self.rx.recv_many(buffer, limit).await
    }

    /// The last number of this node's cluster sequence given to an event,
    /// queued or dropped: what the other nodes should have heard of.
    pub fn last_offered(&self) -> u64 {
        self.seq.load(Ordering::Relaxed)
    }
}

/// The registry's end of the queue.
#[derive(Clone)]
pub struct ClusterQueue {
    tx: mpsc::Sender<ClusterEvent>,
    metrics: Arc<Metrics>,
    /// The last sequence number given.
    seq: Arc<AtomicU64>,
}

impl ClusterQueue {
    /// A queue holding at most `backlog` events.
    pub fn new(backlog: usize, metrics: Arc<Metrics>) -> (ClusterQueue, ClusterOutbound) {
        let (tx, rx) = mpsc::channel(backlog.max(1));
        let seq = Arc::new(AtomicU64::new(0));
        let outbound = ClusterOutbound {
            rx,
            seq: Arc::clone(&seq),
        };
        (ClusterQueue { tx, metrics, seq }, outbound)
    }

    /// Queues an accepted local event without waiting; a full queue drops
    /// it and counts the drop.
    pub fn offer(&self, event: &NewEvent) {
        let seq = self.seq.fetch_add(1, Ordering::Relaxed) + 1;
        let queued = self.tx.try_send(ClusterEvent::from_new(event, seq));
        if queued.is_err() {
            self.metrics
                .dropped(label::dropped::NATS_BACKLOG, event.channel.service(), 1);
        }
    }
}

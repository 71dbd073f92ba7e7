//! The registry's messages, and what it answers: the whole of its
//! interface, since it talks in nothing else. Sessions send [`Subscribe`]
//! and [`SessionClosed`]; ingestion (HTTP, OTLP, Loki, NATS) [`Publish`];
//! the JetStream consumer [`Stored`]; the NATS links [`ClusterLoss`];
//! operators and the server [`Shutdown`], [`ChannelCounts`] and
//! [`GetStats`].

use std::sync::Arc;

use actix::prelude::*;

use super::history::HistoryStats;
use crate::channel::ChannelPattern;
use crate::delivery::SessionId;
use crate::delivery::outbox::Outbox;
use crate::event::{EventId, NewEvent};

/// A session asks to receive `patterns` through `outbox`.
#[derive(Message)]
#[rtype(result = "Result<(), RegistryClosed>")]
pub struct Subscribe {
    pub session: SessionId,
    pub outbox: Arc<Outbox>,
    pub patterns: Vec<ChannelPattern>,
    /// Replay what history holds after this id before going live.
    pub resume: Option<EventId>,
}

/// A session has ended; forget it and its subscriptions.
#[derive(Message)]
#[rtype(result = "()")]
pub struct SessionClosed {
    pub session: SessionId,
}

/// Where a batch of events comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Accepted first by this node: shared with the cluster.
    Local,
    /// Received from another node (or a source every node reads): kept
    /// local, never sent back out.
    Cluster,
}

/// Accept, order and fan out a batch of validated events. The answer holds
/// their ids in the same order.
#[derive(Message)]
#[rtype(result = "Result<Vec<EventId>, RegistryClosed>")]
pub struct Publish {
    pub events: Vec<NewEvent>,
    pub origin: Origin,
    /// Told whether the events were stored: at once unless
    /// `HISTORY_FSYNC=always`, where they are delivered and this says
    /// `true` only once they are on disk (`false`: none was delivered).
    pub stored: Option<tokio::sync::oneshot::Sender<bool>>,
}

/// JetStream mode: events read from the cluster stream, each with its
/// stream sequence, which becomes its id (under the stream's `epoch`), so
/// every node gives an event the same id. A sequence at or before the last
/// one seen is a redelivery and is skipped.
#[derive(Message)]
#[rtype(result = "Result<(), RegistryClosed>")]
pub struct Stored {
    pub epoch: u64,
    pub events: Vec<(u64, NewEvent)>,
}

/// Events other nodes accepted that never arrived here: each is told to
/// every session (which of its channels they were on is unknown), as an
/// `event: gap` with reason `cluster_loss`, counted, and kept in history
/// so a subscriber away at the time is told when it resumes. The NATS bridge
/// sends at most a few origins at a time and coalesces the rest, so this
/// costs the registry one pass over the sessions per message.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct ClusterLoss {
    /// (origin node, events lost).
    pub losses: Vec<(String, u64)>,
}

/// Stop accepting; end every session with its transport's shutdown notice.
/// Answers how many sessions were told.
#[derive(Message)]
#[rtype(result = "usize")]
pub struct Shutdown;

/// Subscriber counts of the busiest subscribed channels (patterns), at most
/// `top` of them, busiest first.
#[derive(Message)]
#[rtype(result = "Vec<ChannelCount>")]
pub struct ChannelCounts {
    pub top: usize,
}

/// Subscribers of one channel (pattern), by transport.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ChannelCount {
    pub channel: String,
    pub sse: usize,
    pub websocket: usize,
}

impl ChannelCount {
    pub fn total(&self) -> usize {
        self.sse + self.websocket
    }
}

/// A snapshot of the registry's size.
#[derive(Message)]
#[rtype(result = "RegistryStats")]
pub struct GetStats;

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RegistryStats {
    pub sessions: usize,
    pub subscriptions: usize,
    pub index_nodes: usize,
    pub last_seq: u64,
    pub history: HistoryStats,
}

/// The registry no longer takes subscriptions or events (shutting down).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the gateway is shutting down")]
pub struct RegistryClosed;

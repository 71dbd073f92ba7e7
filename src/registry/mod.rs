//! The registry actor: the one place that orders events and routes them.
//!
//! Owns the subscription index (a segment trie, [`index::Index`]), the table
//! of live sessions and the event id sequence. It runs on an arbiter (thread)
//! of its own and talks only in messages:
//!
//! - [`Subscribe`] (with an optional resume point) / [`SessionClosed`] from
//!   session actors,
//! - [`Publish`] from ingestion (HTTP and NATS), answered with ids,
//! - [`Shutdown`] and [`GetStats`] from the server.
//!
//! It also keeps, in history's channel directory, how many sessions are
//! subscribed to each channel by name, so that the channel listing reads
//! them there under history's lock and never through this mailbox.
//!
//! Fan-out never waits on a client: for each matching session it offers the
//! shared, already-encoded event to the session's bounded [`Outbox`], which
//! drops that session's oldest events when full. It never uses
//! `Addr::do_send` towards sessions, whose mailboxes would grow without
//! bound behind a slow client. Because every publish and every subscription
//! passes through this one mailbox, id order is acceptance order, and a
//! resume is exact: the replay from [`history`] and the registration happen
//! in one handler, so no publish can fall between them (no gap, no
//! duplicate).

pub mod outbound;

/// [`outbound`]'s former name, kept only so the integration tests written
/// against it still build; new code names [`outbound`].
#[doc(hidden)]
pub mod cluster {
    pub use super::outbound::*;
}
pub mod history;
pub mod index;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use actix::prelude::*;
use bytes::Bytes;

use crate::channel::ChannelPattern;
use crate::delivery::filter::MessageText;
use crate::delivery::framing::Framing;
use crate::delivery::outbox::{Offer, Outbox, Push};
use crate::delivery::{SessionId, Transport};
use crate::event::{Event, EventId, Gap, GapReason, NewEvent};
use crate::metrics::{Metrics, label};
use history::{HistoryStats, SharedHistory};
use index::Index;
pub use outbound::Sharing;

/// How often history is swept for events past their age.
const HISTORY_SWEEP_INTERVAL: std::time::Duration = std::time::Duration::from_secs(5);

/// How many messages may wait in the registry's mailbox before senders
/// (`Addr::send`) wait: publishers feel back-pressure instead of memory
/// growing.
const MAILBOX_CAPACITY: usize = 4096;

/// Counts the registry keeps current for readers on other threads (health,
/// tests): written by the actor only, read with relaxed loads.
#[derive(Debug, Default)]
pub struct RegistryGauges {
    /// The epoch of the ids handed out: this run's, or in JetStream mode
    /// the stream's once known.
    pub epoch: AtomicU64,
    pub sessions: AtomicU64,
    pub subscriptions: AtomicU64,
    pub events_accepted: AtomicU64,
}

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

struct SessionEntry {
    outbox: Arc<Outbox>,
    patterns: Vec<ChannelPattern>,
    /// Sequence of the last event offered to this session: a session
    /// subscribed under two overlapping patterns must get an event once.
    last_seq: u64,
    /// A resumed session has had everything up to here: in JetStream mode a
    /// node still filling its history from the stream may read older
    /// events after the session resumed.
    floor: u64,
}

pub struct Registry {
    index: Index<SessionId>,
    sessions: HashMap<SessionId, SessionEntry>,
    /// Names this run of the gateway inside every id.
    epoch: u64,
    last_seq: u64,
    closed: bool,
    metrics: Arc<Metrics>,
    gauges: Arc<RegistryGauges>,
    /// Reused between publishes so matching allocates nothing.
    scratch: Vec<SessionId>,
    /// Written here only; the history endpoint reads it directly.
    history: SharedHistory,
    /// The registry's part of the cluster mode: whether local events are
    /// shared (core), or ids are the stream's and `epoch` is 0 until the
    /// first event from the stream names it (JetStream).
    sharing: Sharing,
}

impl Registry {
    pub fn new(
        epoch: u64,
        history: SharedHistory,
        metrics: Arc<Metrics>,
        gauges: Arc<RegistryGauges>,
        sharing: Sharing,
    ) -> Self {
        // JetStream mode: the stream's first event names the epoch.
        let epoch = match sharing {
            Sharing::JetStream => 0,
            _ => epoch,
        };
        gauges.epoch.store(epoch, Ordering::Relaxed);
        Registry {
            index: Index::new(),
            sessions: HashMap::new(),
            epoch,
            last_seq: 0,
            closed: false,
            metrics,
            gauges,
            scratch: Vec::new(),
            history,
            sharing,
        }
    }

    /// Whether `after` is an id of the sequence this registry hands out.
    /// Before a JetStream node has read its first event it cannot tell, and
    /// takes a stream id at its word.
    fn knows(&self, after: EventId) -> bool {
        after.epoch == self.epoch
            || (matches!(self.sharing, Sharing::JetStream)
                && self.epoch == 0
                && after.epoch & crate::event::STREAM_EPOCH_BIT != 0)
    }

    /// Queues what a resuming session missed, and the gap before it.
    fn replay_into(&self, outbox: &Outbox, patterns: &[ChannelPattern], after: EventId) {
        let limits = outbox.limits();
        // An id from another run of the gateway says nothing about this
        // run's history: replay what is held, after saying so.
        let (since, foreign) = if self.knows(after) {
            (after.seq, false)
        } else {
            (0, true)
        };
        let history = self.history.read();
        let mut replay = history.replay(patterns, since, limits.max_events, limits.max_bytes);
        let losses = if foreign {
            Vec::new()
        } else {
            history.losses_since(since)
        };
        drop(history);
        if foreign {
            replay.gap = Some(Gap {
                reason: GapReason::UnknownEpoch,
                lost: None,
                resumed_from: replay.events.first().map(|e| e.id),
                origin: None,
            });
        }
        if let Some(gap) = replay.gap {
            outbox.push_gap(&gap);
        }
        for gap in &losses {
            outbox.push_gap(gap);
        }
        outbox.offer_replay(&replay.events);
    }

    fn update_gauges(&self) {
        self.gauges
            .sessions
            .store(self.sessions.len() as u64, Ordering::Relaxed);
        self.gauges
            .subscriptions
            .store(self.index.len() as u64, Ordering::Relaxed);
        self.metrics.subscriptions.set(self.index.len() as i64);
    }

    fn remove_session(&mut self, id: SessionId) {
        if let Some(entry) = self.sessions.remove(&id) {
            for p in &entry.patterns {
                self.index.remove(p, id);
            }
            self.count_subscribers(&entry.patterns, false);
        }
    }

    /// Keeps the channel directory's subscriber counts (what the channel
    /// listing shows) current. Only a subscription to a channel by name
    /// counts, so most pattern subscriptions take no lock here.
    fn count_subscribers(&self, patterns: &[ChannelPattern], joined: bool) {
        if patterns.iter().any(ChannelPattern::is_literal) {
            self.history.write().subscribed(patterns, joined);
        }
    }

    /// Offers one encoded event to every matching session, once each.
    fn fan_out(&mut self, event: &Arc<Event>) {
        let mut targets = std::mem::take(&mut self.scratch);
        targets.clear();
        self.index
            .for_each_match(&event.channel, |id| targets.push(id));
        let seq = event.id.seq;
        let text = MessageText::new(event);
        let mut dropped = 0u64;
        let mut queued = 0u64;
        let mut dead = Vec::new();
        for id in &targets {
            let Some(entry) = self.sessions.get_mut(id) else {
                continue;
            };
            if entry.last_seq == seq || seq <= entry.floor {
                continue;
            }
            entry.last_seq = seq;
            match entry.outbox.offer(event, &text) {
                Offer::Queued => queued += 1,
                Offer::Filtered => {}
                Offer::QueuedDropping(n) => {
                    queued += 1;
                    dropped += n;
                }
                // Its transport has gone; the session's own `SessionClosed`
                // may still be in the mailbox. Forget it now.
                Offer::Closed => dead.push(*id),
            }
        }
        if dropped > 0 {
            self.metrics
                .dropped(label::dropped::SLOW_CONSUMER, event.service(), dropped);
        }
        if queued > 0 {
            self.metrics
                .events_fanned_out
                .with_label_values(&[self.metrics.service_label(event.service())])
                .inc_by(queued);
        }
        if !dead.is_empty() {
            for id in dead {
                self.remove_session(id);
            }
            self.update_gauges();
        }
        self.scratch = targets;
    }
}

impl Actor for Registry {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(MAILBOX_CAPACITY);
        ctx.run_interval(HISTORY_SWEEP_INTERVAL, |act, _| {
            act.history.write().expire(crate::event::now_ms());
        });
    }
}

impl Handler<Subscribe> for Registry {
    type Result = Result<(), RegistryClosed>;

    fn handle(&mut self, msg: Subscribe, _: &mut Self::Context) -> Self::Result {
        if self.closed {
            return Err(RegistryClosed);
        }
        // A re-subscribe replaces the session's set.
        self.remove_session(msg.session);
        if let Some(after) = msg.resume {
            self.replay_into(&msg.outbox, &msg.patterns, after);
        }
        for p in &msg.patterns {
            self.index.insert(p, msg.session);
        }
        self.count_subscribers(&msg.patterns, true);
        let floor = match msg.resume {
            Some(after) if self.knows(after) => after.seq,
            _ => 0,
        };
        self.sessions.insert(
            msg.session,
            SessionEntry {
                outbox: msg.outbox,
                patterns: msg.patterns,
                last_seq: 0,
                floor,
            },
        );
        self.update_gauges();
        Ok(())
    }
}

impl Handler<SessionClosed> for Registry {
    type Result = ();

    fn handle(&mut self, msg: SessionClosed, _: &mut Self::Context) {
        self.remove_session(msg.session);
        self.update_gauges();
    }
}

impl Handler<Publish> for Registry {
    type Result = Result<Vec<EventId>, RegistryClosed>;

    fn handle(&mut self, msg: Publish, _: &mut Self::Context) -> Self::Result {
        if self.closed {
            return Err(RegistryClosed);
        }
        let mut ids = Vec::with_capacity(msg.events.len());
        let share = match (&self.sharing, msg.origin) {
            (Sharing::Core(queue), Origin::Local) => Some(queue.clone()),
            _ => None,
        };
        let mut accepted = Vec::with_capacity(msg.events.len());
        for new in msg.events {
            if let Some(out) = &share {
                out.offer(&new);
            }
            self.last_seq += 1;
            let id = EventId {
                epoch: self.epoch,
                seq: self.last_seq,
            };
            let event = Event::encode(id, new);
            self.fan_out(&event);
            accepted.push(event);
            ids.push(id);
        }
        self.keep(&accepted, None);
        Ok(ids)
    }
}

impl Registry {
    /// Puts fanned-out events in history. `starts_after`: history begins
    /// after this sequence (a JetStream node that just started), so a
    /// resume from before it is told of the gap.
    fn keep(&mut self, accepted: &[Arc<Event>], starts_after: Option<u64>) {
        // One write lock per batch, taken after the fan-out so readers of
        // history wait for the pushes only.
        let mut history = self.history.write();
        if let Some(seq) = starts_after {
            history.forget_through(seq);
        }
        for event in accepted {
            history.push(event, event.times.received_ms);
        }
        let h = history.stats();
        drop(history);
        // After history: a reader that sees this sequence finds every
        // event up to it in history (the history endpoint's `last_id`).
        self.gauges
            .events_accepted
            .store(self.last_seq, Ordering::Release);
        self.metrics.history_events.set(h.events as i64);
        self.metrics.history_bytes.set(h.bytes as i64);
        self.metrics.history_channels.set(h.channels as i64);
    }
}

impl Handler<Stored> for Registry {
    type Result = Result<(), RegistryClosed>;

    fn handle(&mut self, msg: Stored, _: &mut Self::Context) -> Self::Result {
        if self.closed {
            return Err(RegistryClosed);
        }
        if msg.epoch != self.epoch {
            if self.epoch != 0 {
                // The stream was deleted and made again: its sequence
                // started over, and what history holds is of the old one.
                tracing::warn!("the cluster stream was made again; history starts over");
                self.history.write().start_over();
                for entry in self.sessions.values_mut() {
                    entry.last_seq = 0;
                    entry.floor = 0;
                }
            }
            self.epoch = msg.epoch;
            self.last_seq = 0;
            self.gauges.epoch.store(msg.epoch, Ordering::Release);
        }
        let mut starts_after = None;
        let mut accepted = Vec::with_capacity(msg.events.len());
        for (seq, new) in msg.events {
            if seq <= self.last_seq {
                continue; // read again after a reconnect: already here
            }
            if self.last_seq == 0 {
                starts_after = Some(seq.saturating_sub(1));
            }
            self.last_seq = seq;
            let event = Event::encode(
                EventId {
                    epoch: self.epoch,
                    seq,
                },
                new,
            );
            self.fan_out(&event);
            accepted.push(event);
        }
        self.keep(&accepted, starts_after);
        Ok(())
    }
}

impl Handler<ClusterLoss> for Registry {
    type Result = ();

    fn handle(&mut self, msg: ClusterLoss, _: &mut Self::Context) {
        let gaps: Vec<Gap> = msg
            .losses
            .into_iter()
            .map(|(origin, lost)| Gap {
                reason: GapReason::ClusterLoss,
                lost: Some(lost),
                resumed_from: None,
                origin: Some(origin),
            })
            .collect();
        // Worded once per transport, not once per session.
        let mut frames: Vec<(Framing, Vec<Bytes>)> = Vec::new();
        for entry in self.sessions.values() {
            let framing = entry.outbox.framing();
            let i = match frames.iter().position(|(f, _)| *f == framing) {
                Some(i) => i,
                None => {
                    frames.push((framing, gaps.iter().map(|g| framing.gap(g)).collect()));
                    frames.len() - 1
                }
            };
            for frame in &frames[i].1 {
                // A session that cannot take the notice (its reader has
                // stopped reading control frames) must not go on as if
                // nothing was lost: it ends with the notice as its last
                // frame, and on resume history tells it again.
                if entry.outbox.push_control(frame.clone()) == Push::Overflow {
                    entry.outbox.abort(frame.clone());
                    break;
                }
            }
        }
        let mut history = self.history.write();
        for gap in &gaps {
            let (origin, lost) = (
                gap.origin.as_deref().unwrap_or_default(),
                gap.lost.unwrap_or(0),
            );
            self.metrics.dropped(
                label::dropped::CLUSTER_LOSS,
                crate::metrics::OTHER_SERVICE,
                lost,
            );
            history.note_loss(self.last_seq, origin, lost, crate::event::now_ms());
        }
    }
}

impl Handler<Shutdown> for Registry {
    type Result = usize;

    fn handle(&mut self, _: Shutdown, _: &mut Self::Context) -> usize {
        self.closed = true;
        let told = self.sessions.len();
        for entry in self.sessions.values() {
            entry.outbox.shut_down();
        }
        told
    }
}

impl Handler<ChannelCounts> for Registry {
    type Result = MessageResult<ChannelCounts>;

    fn handle(&mut self, msg: ChannelCounts, _: &mut Self::Context) -> Self::Result {
        // A scan of the sessions: admin endpoints only, bounded by the
        // connection cap, and the answer is bounded by `top`.
        let mut counts: HashMap<&str, (usize, usize)> = HashMap::new();
        for entry in self.sessions.values() {
            for p in &entry.patterns {
                let c = counts.entry(p.as_str()).or_default();
                match entry.outbox.transport() {
                    Transport::Sse => c.0 += 1,
                    Transport::WebSocket => c.1 += 1,
                }
            }
        }
        let mut list: Vec<ChannelCount> = counts
            .into_iter()
            .map(|(p, (sse, websocket))| ChannelCount {
                channel: p.to_owned(),
                sse,
                websocket,
            })
            .collect();
        list.sort_unstable_by(|a, b| {
            b.total()
                .cmp(&a.total())
                .then_with(|| a.channel.cmp(&b.channel))
        });
        list.truncate(msg.top);
        MessageResult(list)
    }
}

impl Handler<GetStats> for Registry {
    type Result = MessageResult<GetStats>;

    fn handle(&mut self, _: GetStats, _: &mut Self::Context) -> Self::Result {
        MessageResult(RegistryStats {
            sessions: self.sessions.len(),
            subscriptions: self.index.len(),
            index_nodes: self.index.node_count(),
            last_seq: self.last_seq,
            history: self.history.read().stats(),
        })
    }
}

/// Starts the registry on an arbiter of its own, so routing never competes
/// with HTTP parsing on a worker thread.
pub fn start(registry: Registry) -> (Addr<Registry>, Arbiter) {
    let arbiter = Arbiter::new();
    let addr = Registry::start_in_arbiter(&arbiter.handle(), move |_| registry);
    (addr, arbiter)
}

#[cfg(test)]
mod tests;

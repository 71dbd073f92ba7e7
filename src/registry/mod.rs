//! The registry actor: the one place that orders events and routes them.
//!
//! Owns the subscription index (a segment trie, [`index::Index`]), the table
//! of live sessions and the event id sequence. It runs on an arbiter (thread)
//! of its own and talks only in messages ([`messages`], eight of them):
//!
//! - [`Subscribe`] (with an optional resume point) / [`SessionClosed`] from
//!   session actors,
//! - [`Publish`] from ingestion (HTTP, OTLP, Loki and NATS), answered with
//!   ids,
//! - [`Stored`] from the JetStream consumer: events with the stream's ids,
//! - [`ClusterLoss`] from the NATS links: events of other nodes that never
//!   arrived, told to every session as a gap,
//! - [`Shutdown`], [`ChannelCounts`] and [`GetStats`] from the server and
//!   operators (`admin.rs`).
//!
//! What it accepts it hands to the durable store's writer
//! ([`crate::store::Appender`]) after the fan-out, without waiting; with
//! `HISTORY_FSYNC=always` it holds each batch until the writer reports it
//! on disk and only then delivers it (`durable.rs`).
//!
//! Its part of the cluster mode is one value, [`Sharing`], given to
//! [`Registry::new`]: alone, core NATS (local events offered to the
//! [`outbound`] queue) or JetStream (the stream's ids).
//!
//! It also keeps, in history's channel directory, how many sessions are
//! subscribed to each channel by name, so that the channel listing reads
//! them there under history's lock and never through this mailbox.
//!
//! Fan-out never waits on a client: for each matching session it offers the
//! shared, already-encoded event to the session's bounded [`Outbox`], which
//! drops that session's oldest events when full. Matching allocates
//! nothing (the index walks on the stack, into a reused list of targets);
//! what a publish allocates is the encoded event and its batch's lists. It
//! never uses `Addr::do_send` towards sessions, whose mailboxes would grow
//! without bound behind a slow client. Because every publish and every
//! subscription passes through this one mailbox, id order is acceptance
//! order, and a resume is exact: the replay from [`history`] and the
//! registration happen in one handler, so no publish can fall between them
//! (no gap, no duplicate).

mod admin;
mod durable;
mod from_cluster;
pub mod history;
pub mod index;
pub mod messages;
pub mod outbound;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use actix::prelude::*;

use crate::channel::ChannelPattern;
use crate::delivery::SessionId;
use crate::delivery::filter::MessageText;
use crate::delivery::outbox::{Offer, Outbox};
use crate::event::{Event, EventId, Gap, GapReason};
use crate::metrics::{Metrics, label};
use crate::store::Appender;
use history::SharedHistory;
use index::Index;
pub use messages::{
    ChannelCount, ChannelCounts, ClusterLoss, GetStats, Origin, Publish, RegistryClosed,
    RegistryStats, SessionClosed, Shutdown, Stored, Subscribe,
};
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

/// Where the registry's id sequence starts, and where what it accepts is
/// stored: a new run, or the run the durable store recovered.
#[derive(Debug, Default)]
pub struct Start {
    pub epoch: u64,
    /// The last sequence already handed out; ids continue after it.
    pub last_seq: u64,
    /// Sequences after `lost_after` up to `last_seq` were handed out by a
    /// run that stopped before storing them: a resume from inside that
    /// range is told `restart_loss`.
    pub lost_after: Option<u64>,
    /// The durable store's queue (`None`: history in memory only).
    pub store: Option<Appender>,
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
    /// Every batch put in history goes here too, after the fan-out.
    store: Option<Appender>,
    /// See [`Start::lost_after`]: `(after, through)`.
    restart_loss: Option<(u64, u64)>,
    /// `HISTORY_FSYNC=always`: batches waiting for the disk.
    waiting: durable::Waiting,
}

impl Registry {
    pub fn new(
        start: Start,
        history: SharedHistory,
        metrics: Arc<Metrics>,
        gauges: Arc<RegistryGauges>,
        sharing: Sharing,
    ) -> Self {
        // JetStream mode: the stream's first event names the epoch.
        let epoch = match sharing {
            Sharing::JetStream => 0,
            _ => start.epoch,
        };
        gauges.epoch.store(epoch, Ordering::Relaxed);
        Registry {
            index: Index::new(),
            sessions: HashMap::new(),
            epoch,
            last_seq: start.last_seq,
            closed: false,
            metrics,
            gauges,
            scratch: Vec::new(),
            history,
            sharing,
            store: start.store,
            restart_loss: start.lost_after.map(|after| (after, start.last_seq)),
            waiting: durable::Waiting::default(),
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
        if let Some((lost_after, through)) = self.restart_loss
            && !foreign
            && after.seq > lost_after
            && after.seq <= through
        {
            // How many of the lost events were this subscriber's (after
            // what it saw, on its channels) cannot be known.
            outbox.push_gap(&Gap {
                reason: GapReason::RestartLoss,
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
        self.read_reports(ctx);
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
        let always = self.store.as_ref().is_some_and(|s| s.always());
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
            if !always {
                self.fan_out(&event);
            }
            accepted.push(event);
            ids.push(id);
        }
        if always {
            self.hold(accepted, msg.stored);
            return Ok(ids);
        }
        self.keep(&accepted, None);
        if let Some(store) = &self.store {
            store.append(accepted);
        }
        if let Some(stored) = msg.stored {
            let _ = stored.send(true);
        }
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

/// Starts the registry on an arbiter of its own, so routing never competes
/// with HTTP parsing on a worker thread.
pub fn start(registry: Registry) -> (Addr<Registry>, Arbiter) {
    let arbiter = Arbiter::new();
    let addr = Registry::start_in_arbiter(&arbiter.handle(), move |_| registry);
    (addr, arbiter)
}

#[cfg(test)]
mod tests;

//! [`JetStreamPublisher`]: where every event this node accepts goes in
//! JetStream mode, answered with its id once the stream has it.
//!
//! Shared by every handler (cheap to clone) and by the consumer loop,
//! which opens it once the stream is known to exist (`set_ready`) and
//! suspends it while the consumer is made again (`suspend`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use async_nats::jetstream;
use tokio::sync::Semaphore;
use tokio::time::{Instant, timeout_at};

use super::RETRY_DELAY;
use crate::event::{EventId, NewEvent};
use crate::metrics::{Metrics, label};
use crate::nats::wire::{self, ClusterMessage};
use crate::registry::outbound::ClusterEvent;
use crate::state::JetStreamRefused;

/// The stream once connected: where publishes go, and the epoch of ids.
struct Ready {
    js: jetstream::Context,
    /// Changes if the stream is deleted and made again; [`UNKNOWN_EPOCH`]
    /// while the consumer is being made again, since the stream may have
    /// been replaced and an id must never carry the old stream's epoch.
    epoch: AtomicU64,
}

/// No stream epoch has this value: every one has `STREAM_EPOCH_BIT` set.
const UNKNOWN_EPOCH: u64 = 0;

/// Publishes accepted events to the stream and waits for its ack; shared
/// by every handler (cheap to clone).
#[derive(Clone)]
pub struct JetStreamPublisher {
    inner: Arc<Inner>,
}

struct Inner {
    /// The stream's name, for `/health`.
    stream: String,
    /// Why the stream is not ready yet, for `/health`.
    problem: Mutex<Option<String>>,
    ready: OnceLock<Ready>,
    node_id: Arc<str>,
    /// `<node>-<secret>`: message ids start with it. Whoever may publish on
    /// the cluster subjects could otherwise send a node's next ids first,
    /// and the stream would take that node's events for duplicates.
    msg_id_prefix: String,
    prefix: String,
    timeout: Duration,
    /// The last number given to an event of this node: `Nats-Msg-Id`s.
    seq: AtomicU64,
    /// Events waiting for the stream at once, all publishers together
    /// (`nats.outbound_backlog`): a NATS outage holds requests, not memory
    /// without bound.
    waiting: Semaphore,
    /// The permits `waiting` holds.
    backlog: usize,
    /// `nats_messages_total{link="cluster",direction="out"}`.
    out: prometheus::IntCounter,
    /// `stream_publishes_resent_total`.
    resent: prometheus::IntCounter,
}

impl JetStreamPublisher {
    pub fn new(config: &crate::config::Config, node_id: &str, metrics: &Metrics) -> Self {
        let backlog = config.nats.outbound_backlog.min(Semaphore::MAX_PERMITS);
        JetStreamPublisher {
            inner: Arc::new(Inner {
                stream: config.nats.stream.clone(),
                problem: Mutex::new(None),
                ready: OnceLock::new(),
                node_id: Arc::from(node_id),
                msg_id_prefix: format!("{node_id}-{:016x}", unguessable()),
                prefix: config.nats.subject_prefix.clone(),
                timeout: Duration::from_secs(config.nats.publish_timeout_secs),
                seq: AtomicU64::new(0),
                waiting: Semaphore::new(backlog),
                backlog,
                resent: metrics.stream_resent.clone(),
                out: metrics
                    .nats_messages
                    .with_label_values(&[label::nats::CLUSTER, label::nats::OUT]),
            }),
        }
    }

    /// Called once the stream is known to exist.
    pub(super) fn set_ready(&self, js: jetstream::Context, epoch: u64) {
        let ready = self.inner.ready.get_or_init(|| Ready {
            js,
            epoch: AtomicU64::new(epoch),
        });
        ready.epoch.store(epoch, Ordering::Release);
        self.set_problem(None);
    }

    /// Called when the consumer failed: until the stream is checked again,
    /// publishes are refused rather than numbered under an epoch that may
    /// be gone (the stream deleted and made again by another node).
    pub(super) fn suspend(&self, why: &str) {
        if let Some(ready) = self.inner.ready.get() {
            ready.epoch.store(UNKNOWN_EPOCH, Ordering::Release);
        }
        self.set_problem(Some(why.to_owned()));
    }

    pub(super) fn is_ready(&self) -> bool {
        self.inner.ready.get().is_some()
    }

    pub(super) fn set_problem(&self, problem: Option<String>) {
        *self.inner.problem.lock().unwrap_or_else(|e| e.into_inner()) = problem;
    }

    /// For `/health`: `waiting`, `checking` or `ready`, the stream's name
    /// and why it is not ready.
    pub(super) fn health(&self) -> (&'static str, &str, Option<String>) {
        let state = match self.inner.ready.get() {
            Some(r) if r.epoch.load(Ordering::Acquire) == UNKNOWN_EPOCH => "checking",
            Some(_) => "ready",
            None => "waiting",
        };
        let problem = self
            .inner
            .problem
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        (state, &self.inner.stream, problem)
    }

    /// Publishes `events` to the stream, in order, and answers their ids
    /// (the stream's sequence numbers) once the stream has them all; or
    /// why not, as the `nats_unavailable` message.
    pub async fn publish(&self, events: &[NewEvent]) -> Result<Vec<EventId>, JetStreamRefused> {
        self.publish_as(events, None).await
    }

    /// [`publish`](Self::publish), the events' `Nats-Msg-Id`s being
    /// `<msg_ids>-<index>` when given (a publish with an
    /// `Idempotency-Key`): the same on every node, so a retry anywhere is
    /// stored once, and the ack of a duplicate carries the sequence of
    /// what was stored, so the retry answers the first's ids.
    pub async fn publish_as(
        &self,
        events: &[NewEvent],
        msg_ids: Option<&str>,
    ) -> Result<Vec<EventId>, JetStreamRefused> {
        let inner = &self.inner;
        let deadline = Instant::now() + inner.timeout;
        let ready = inner.ready.get().ok_or(JetStreamRefused::Connecting)?;
        let epoch = ready.epoch.load(Ordering::Acquire);
        if epoch == UNKNOWN_EPOCH {
            return Err(JetStreamRefused::Checking);
        }
        // A batch larger than the whole backlog waits for all of it.
        let n = u32::try_from(events.len().min(inner.backlog)).unwrap_or(u32::MAX);
        let _permits = match timeout_at(deadline, inner.waiting.acquire_many(n)).await {
            Ok(Ok(p)) => p,
            _ => return Err(JetStreamRefused::Backlog),
        };
        let messages = self.messages(events, msg_ids);
        let ids = self.send(ready, epoch, &messages, deadline).await?;
        inner.out.inc_by(ids.len() as u64);
        // The stream was replaced while these were sent: the acks may be
        // the new stream's, whose epoch is not known here.
        if ready.epoch.load(Ordering::Acquire) != epoch {
            return Err(JetStreamRefused::Replaced);
        }
        Ok(ids)
    }

    /// `events` as messages, each with the next number of this node and
    /// a `Nats-Msg-Id`: `<msg_ids>-<index>` when given, else this node's
    /// own `<node>-<secret>-<number>`.
    fn messages(&self, events: &[NewEvent], msg_ids: Option<&str>) -> Vec<ClusterMessage> {
        let inner = &self.inner;
        let first = inner.seq.fetch_add(events.len() as u64, Ordering::Relaxed) + 1;
        events
            .iter()
            .zip(first..)
            .enumerate()
            .map(|(index, (event, seq))| {
                let mut m = wire::encode(
                    &inner.prefix,
                    &inner.node_id,
                    &ClusterEvent::from_new(event, seq),
                );
                let id = match msg_ids {
                    Some(base) => format!("{base}-{index}"),
                    None => format!("{}-{seq}", inner.msg_id_prefix),
                };
                m.headers
                    .insert(async_nats::header::NATS_MESSAGE_ID, id.as_str());
                m
            })
            .collect()
    }

    /// Sends `messages` until the stream has confirmed every one, or
    /// `deadline`: sent in order, then their acks awaited in order; what
    /// was not confirmed is sent again from the first unconfirmed one.
    async fn send(
        &self,
        ready: &Ready,
        epoch: u64,
        messages: &[ClusterMessage],
        deadline: Instant,
    ) -> Result<Vec<EventId>, JetStreamRefused> {
        let mut ids: Vec<EventId> = Vec::with_capacity(messages.len());
        loop {
            let mut acks = Vec::with_capacity(messages.len() - ids.len());
            for m in &messages[ids.len()..] {
                let sent = ready.js.publish_with_headers(
                    m.subject.clone(),
                    m.headers.clone(),
                    m.payload.clone(),
                );
                match timeout_at(deadline, sent).await {
                    Ok(Ok(ack)) => acks.push(ack),
                    _ => break,
                }
            }
            for ack in acks {
                match timeout_at(deadline, ack.into_future()).await {
                    Ok(Ok(ack)) => ids.push(EventId {
                        epoch,
                        seq: ack.sequence,
                    }),
                    Ok(Err(e)) => {
                        tracing::debug!(error = %e, "JetStream publish unconfirmed; sending again");
                        break;
                    }
                    Err(_) => break,
                }
            }
            if ids.len() == messages.len() {
                return Ok(ids);
            }
            if Instant::now() + RETRY_DELAY >= deadline {
                tracing::warn!(
                    confirmed = ids.len(),
                    of = messages.len(),
                    "JetStream did not confirm a publish in time"
                );
                return Err(JetStreamRefused::Unconfirmed {
                    within_secs: self.inner.timeout.as_secs(),
                    confirmed: ids.len(),
                    of: messages.len(),
                });
            }
            tokio::time::sleep(RETRY_DELAY).await;
            self.inner
                .resent
                .inc_by((messages.len() - ids.len()) as u64);
        }
    }
}

impl crate::state::JetStreamPublish for JetStreamPublisher {
    fn publish<'a>(
        &'a self,
        events: &'a [NewEvent],
        msg_ids: Option<&'a str>,
    ) -> futures_util::future::BoxFuture<'a, Result<Vec<EventId>, JetStreamRefused>> {
        Box::pin(JetStreamPublisher::publish_as(self, events, msg_ids))
    }
}

/// 64 bits no one outside this process can predict: std's hasher keys are
/// drawn from the operating system's random source.
fn unguessable() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(crate::event::now_ms() as u64);
    h.finish()
}

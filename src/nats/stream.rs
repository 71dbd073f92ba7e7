//! JetStream mode (`nats.jetstream`): the cluster's events live in one
//! JetStream stream, and the stream, not any node, puts them in order.
//!
//! - **Publishing** ([`StreamPublisher`]): every event a node accepts (an
//!   HTTP, OTLP or Loki publish, Fly's log bus, an ingest rule) is
//!   published to the stream with a `Nats-Msg-Id` of `<node>-<secret>-<seq>`, and
//!   the publish is answered only once the stream has acknowledged it. A
//!   publish whose ack does not come (NATS restarting) is sent again, in
//!   order, with the same ids, so the stream stores it once; one that is
//!   still unconfirmed at `nats.publish_timeout_secs` is answered 503
//!   (what was sent may still be stored: a publisher that retries can
//!   cause a duplicate, never a loss). A batch's events are sent together
//!   and their acks awaited in order; if the connection dies with one of
//!   them on the wire while later ones wait in the client's buffer, those
//!   are stored first and the one sent again lands after them. The stream
//!   is still the one order every node delivers.
//! - **Reading** ([`run`]): every node reads the whole stream through a
//!   durable consumer of its own, the node that published an event
//!   included, and hands what it reads to the registry ([`Stored`]), which
//!   gives each event the stream's sequence as its id. So every node
//!   delivers the same events in the same order under the same ids, and a
//!   `Last-Event-ID` from one node resumes on any other. Messages are acked
//!   after the registry has them; the registry ignores a sequence it has
//!   already seen, so a redelivery is never delivered twice.
//! - **Loss past the stream's limits**: the stream's sequence has no holes
//!   of its own, so a hole in what a node reads means the stream let those
//!   events go (its age or byte limit, or a deletion) before this node read
//!   them, as when a node is cut off for longer than the stream keeps
//!   events. The registry is told ([`ClusterLoss`], origin
//!   `stream:<name>`) before the events after the hole.
//! - **Starting**: a node starts with empty history, so its consumer
//!   begins `history.max_age_minutes` back and fills history from the
//!   stream before it goes live; a resume from before a restart finds what
//!   it missed. If the consumer disappears (NATS lost it, or it was idle
//!   past its inactivity limit while this node was cut off), it is
//!   created again from the sequence after the last one read. If the
//!   stream itself went missing, it is made again; its ids then have a
//!   new epoch, and every node starts its history over.
//!
//! Talks to: the registry (its mailbox, [`Stored`]), async-nats' JetStream
//! API, and [`super::wire`] for the wire format, which is the same as in
//! core mode.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use actix::Addr;
use async_nats::jetstream::{self, consumer, stream};
use futures_util::StreamExt;
use tokio::sync::Semaphore;
use tokio::time::{Instant, timeout_at};

use super::wire;
use crate::event::{EventId, NewEvent, STREAM_EPOCH_BIT};
use crate::metrics::{Metrics, label};
use crate::registry::outbound::ClusterEvent;
use crate::registry::{ClusterLoss, Registry, Stored};

/// How long a JetStream API call or a publish ack is waited for before it
/// is tried again.
const ACK_TIMEOUT: Duration = Duration::from_secs(2);
/// Between two tries of an unconfirmed publish, or of creating the
/// consumer.
const RETRY_DELAY: Duration = Duration::from_millis(200);
/// How long a consumer nobody reads from survives on the server: a node
/// gone for longer leaves nothing behind, and one merely cut off creates
/// its consumer again from where it stopped.
const CONSUMER_INACTIVE: Duration = Duration::from_secs(300);
/// How long one pull request waits for messages, and how often the server
/// says it is still there while none come.
const PULL_EXPIRES: Duration = Duration::from_secs(10);
const PULL_HEARTBEAT: Duration = Duration::from_secs(2);
/// Messages read and handed to the registry together.
const READ_BATCH: usize = 512;
/// How long the stream recognises a repeated `Nats-Msg-Id`.
const DUPLICATE_WINDOW: Duration = Duration::from_secs(120);

/// What the stream is, from the configuration.
#[derive(Debug, Clone)]
pub struct StreamSettings {
    pub name: String,
    pub prefix: String,
    /// 0 = no age limit.
    pub max_age: Duration,
    /// As JetStream takes it.
    pub max_bytes: i64,
    pub publish_timeout: Duration,
    /// How far back a starting node reads, to fill its history.
    pub backfill: Duration,
    /// `publish.max_event_bytes`, for the checks of what is read.
    pub max_event_bytes: usize,
}

impl StreamSettings {
    pub fn from_config(config: &crate::config::Config) -> Self {
        let n = &config.nats;
        StreamSettings {
            name: n.stream.clone(),
            prefix: n.subject_prefix.clone(),
            max_age: Duration::from_secs(n.stream_max_age_minutes.saturating_mul(60)),
            max_bytes: i64::try_from(n.stream_max_bytes).unwrap_or(i64::MAX),
            publish_timeout: Duration::from_secs(n.publish_timeout_secs),
            backfill: Duration::from_secs(config.history.max_age_minutes.saturating_mul(60)),
            max_event_bytes: config.publish.max_event_bytes,
        }
    }

    fn subject(&self) -> String {
        format!("{}.>", self.prefix)
    }

    fn config(&self) -> stream::Config {
        stream::Config {
            name: self.name.clone(),
            subjects: vec![self.subject()],
            max_age: self.max_age,
            max_bytes: self.max_bytes,
            storage: stream::StorageType::File,
            retention: stream::RetentionPolicy::Limits,
            discard: stream::DiscardPolicy::Old,
            duplicate_window: DUPLICATE_WINDOW,
            ..Default::default()
        }
    }
}

/// The epoch of ids drawn from a stream: its creation time, so a stream
/// deleted and made again (whose sequence starts over) gives other ids.
pub fn stream_epoch(info: &stream::Info) -> u64 {
    let ms = info.created.unix_timestamp_nanos() / 1_000_000;
    (u64::try_from(ms).unwrap_or(0) & (STREAM_EPOCH_BIT - 1)) | STREAM_EPOCH_BIT
}

/// A JetStream context with our timeouts.
pub fn context(client: async_nats::Client) -> jetstream::Context {
    jetstream::ContextBuilder::new()
        .timeout(ACK_TIMEOUT)
        .build(client)
}

/// Creates the stream, or checks the one there: it must capture the
/// cluster subjects, and its age and byte limits are set to the
/// configured ones. Returns its epoch.
pub async fn ensure_stream(js: &jetstream::Context, s: &StreamSettings) -> Result<u64, String> {
    let info = match js.get_stream(&s.name).await {
        Ok(existing) => {
            let info = existing.cached_info().clone();
            let subject = s.subject();
            if !info.config.subjects.contains(&subject) {
                return Err(format!(
                    "stream {} exists but captures {:?}, not {subject}: use another nats.stream, or add the subject",
                    s.name, info.config.subjects
                ));
            }
            if info.config.max_age != s.max_age
                || info.config.max_bytes != s.max_bytes
                || info.config.duplicate_window < DUPLICATE_WINDOW
            {
                let mut config = info.config.clone();
                config.max_age = s.max_age;
                config.max_bytes = s.max_bytes;
                config.duplicate_window = config.duplicate_window.max(DUPLICATE_WINDOW);
                js.update_stream(config)
                    .await
                    .map_err(|e| format!("stream {}: cannot set its limits: {e}", s.name))?;
                tracing::info!(stream = %s.name, "JetStream stream limits updated");
            }
            info
        }
        Err(e)
            if matches!(
                e.kind(),
                jetstream::context::GetStreamErrorKind::JetStream(j)
                    if j.error_code() == jetstream::ErrorCode::STREAM_NOT_FOUND
            ) =>
        {
            match js.create_stream(s.config()).await {
                Ok(created) => {
                    tracing::info!(stream = %s.name, subject = %s.subject(), "JetStream stream created");
                    created.cached_info().clone()
                }
                // Every node makes a missing stream again at once; the
                // server refuses all but the first ("subjects overlap"),
                // and the others take the one it made.
                Err(create) => match js.get_stream(&s.name).await {
                    Ok(made) => made.cached_info().clone(),
                    Err(_) => return Err(format!("cannot create stream {}: {create}", s.name)),
                },
            }
        }
        Err(e) => return Err(format!("stream {}: {e}", s.name)),
    };
    Ok(stream_epoch(&info))
}

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
pub struct StreamPublisher {
    inner: Arc<Inner>,
}

struct Inner {
    /// The stream's name, for `/health`.
    stream: String,
    /// Why the stream is not ready yet, for `/health`.
    problem: std::sync::Mutex<Option<String>>,
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

impl StreamPublisher {
    pub fn new(config: &crate::config::Config, node_id: &str, metrics: &Metrics) -> Self {
        let backlog = config.nats.outbound_backlog.min(Semaphore::MAX_PERMITS);
        StreamPublisher {
            inner: Arc::new(Inner {
                stream: config.nats.stream.clone(),
                problem: std::sync::Mutex::new(None),
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
    fn suspend(&self, why: &str) {
        if let Some(ready) = self.inner.ready.get() {
            ready.epoch.store(UNKNOWN_EPOCH, Ordering::Release);
        }
        self.set_problem(Some(why.to_owned()));
    }

    fn is_ready(&self) -> bool {
        self.inner.ready.get().is_some()
    }

    fn set_problem(&self, problem: Option<String>) {
        *self.inner.problem.lock().unwrap_or_else(|e| e.into_inner()) = problem;
    }

    /// Publishes `events` to the stream, in order, and answers their ids
    /// (the stream's sequence numbers) once the stream has them all; or
    /// why not, as the `nats_unavailable` message.
    pub async fn publish(&self, events: &[NewEvent]) -> Result<Vec<EventId>, String> {
        let inner = &self.inner;
        let deadline = Instant::now() + inner.timeout;
        let unavailable =
            |why: &str| format!("the cluster stream {why}; nothing was published, retry");
        let ready = inner
            .ready
            .get()
            .ok_or_else(|| unavailable("is not reachable yet (NATS connecting)"))?;
        let epoch = ready.epoch.load(Ordering::Acquire);
        if epoch == UNKNOWN_EPOCH {
            return Err(unavailable("is being checked again after an error"));
        }
        // A batch larger than the whole backlog waits for all of it.
        let n = u32::try_from(events.len().min(inner.backlog)).unwrap_or(u32::MAX);
        let _permits = match timeout_at(deadline, inner.waiting.acquire_many(n)).await {
            Ok(Ok(p)) => p,
            _ => return Err(unavailable("has too many events waiting for it")),
        };
        let first = inner.seq.fetch_add(events.len() as u64, Ordering::Relaxed) + 1;
        let messages: Vec<wire::ClusterMessage> = events
            .iter()
            .zip(first..)
            .map(|(event, seq)| {
                let mut m = wire::encode(
                    &inner.prefix,
                    &inner.node_id,
                    &ClusterEvent::from_new(event, seq),
                );
                m.headers.insert(
                    async_nats::header::NATS_MESSAGE_ID,
                    format!("{}-{seq}", inner.msg_id_prefix).as_str(),
                );
                m
            })
            .collect();
        let mut ids: Vec<EventId> = Vec::with_capacity(messages.len());
        loop {
            // Sent in order, then their acks awaited in order; what was not
            // confirmed is sent again from the first unconfirmed one.
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
                inner.out.inc_by(ids.len() as u64);
                // The stream was replaced while these were sent: the acks
                // may be the new stream's, whose epoch is not known here.
                if ready.epoch.load(Ordering::Acquire) != epoch {
                    return Err("the cluster stream was made again while publishing; the events may be stored; retry".to_owned());
                }
                return Ok(ids);
            }
            if Instant::now() + RETRY_DELAY >= deadline {
                tracing::warn!(
                    confirmed = ids.len(),
                    of = messages.len(),
                    "JetStream did not confirm a publish in time"
                );
                return Err(format!(
                    "the cluster stream did not confirm the events within {}s ({} of {} confirmed; the others may yet be stored); retry",
                    inner.timeout.as_secs(),
                    ids.len(),
                    messages.len()
                ));
            }
            tokio::time::sleep(RETRY_DELAY).await;
            inner.resent.inc_by((messages.len() - ids.len()) as u64);
        }
    }
}

/// The cluster link's work in JetStream mode: makes sure of the stream
/// (trying again while NATS is unreachable), opens it to publishers, then
/// reads it into the registry for as long as the node runs.
pub async fn run(
    client: async_nats::Client,
    publisher: StreamPublisher,
    settings: StreamSettings,
    node_id: Arc<str>,
    registry: Addr<Registry>,
    metrics: Arc<Metrics>,
) {
    let js = context(client);
    // The node id changes with every start: each run reads through a
    // consumer of its own, and a dead run's is removed by the server.
    let name = format!("loggate-{node_id}");
    // (epoch, sequence) of the last event handed to the registry.
    let mut last: Option<(u64, u64)> = None;
    let mut attempt = 0u32;
    loop {
        match read(
            &js, &settings, &publisher, &name, &registry, &metrics, &mut last,
        )
        .await
        {
            Ok(()) => return, // the registry has stopped
            Err(e) => {
                if publisher.is_ready() {
                    publisher.suspend(&e);
                    tracing::warn!(stream = %settings.name, error = %e, "JetStream consumer; starting it again");
                } else {
                    publisher.set_problem(Some(e.clone()));
                    if attempt.is_multiple_of(10) {
                        tracing::warn!(stream = %settings.name, error = %e, "JetStream stream not ready; trying again");
                    }
                    attempt = attempt.saturating_add(1);
                }
                tokio::time::sleep(RETRY_DELAY * 5).await;
            }
        }
    }
}

impl crate::state::ClusterStream for StreamPublisher {
    fn publish<'a>(
        &'a self,
        events: &'a [NewEvent],
    ) -> futures_util::future::BoxFuture<'a, Result<Vec<EventId>, String>> {
        Box::pin(StreamPublisher::publish(self, events))
    }
}

/// The stream as a link of its own for the probes: `/ready` is 503 until
/// it is known to exist, since publishes cannot be taken before.
impl crate::state::Link for StreamPublisher {
    fn name(&self) -> &'static str {
        label::nats::JETSTREAM
    }

    fn is_connected(&self) -> bool {
        self.is_ready()
    }

    fn to_json(&self) -> serde_json::Value {
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
        serde_json::json!({"state": state, "stream": self.inner.stream, "last_error": problem})
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

/// One consumer's life: makes sure of the stream (made again if it went
/// missing), opens it to publishers, creates this node's consumer (from
/// `settings.backfill` ago at start, after the last sequence read when it
/// has to be made again, from the beginning if the stream is a new one)
/// and hands what it reads to the registry in batches, acking each batch
/// once the registry has it. `Ok` when the registry is gone, `Err` when
/// all this must be done again.
async fn read(
    js: &jetstream::Context,
    settings: &StreamSettings,
    publisher: &StreamPublisher,
    name: &str,
    registry: &Addr<Registry>,
    metrics: &Metrics,
    last: &mut Option<(u64, u64)>,
) -> Result<(), String> {
    let epoch = ensure_stream(js, settings).await?;
    if !publisher.is_ready() {
        tracing::info!(stream = %settings.name, epoch = format_args!("{epoch:x}"), "JetStream: cluster events are kept in the stream");
    }
    publisher.set_ready(js.clone(), epoch);
    let start = match *last {
        Some((e, seq)) if e == epoch => consumer::DeliverPolicy::ByStartSequence {
            start_sequence: seq + 1,
        },
        Some(_) => consumer::DeliverPolicy::All,
        None if settings.backfill.is_zero() => consumer::DeliverPolicy::New,
        None => consumer::DeliverPolicy::ByStartTime {
            start_time: time::OffsetDateTime::now_utc() - settings.backfill,
        },
    };
    let stream = js
        .get_stream(&settings.name)
        .await
        .map_err(|e| e.to_string())?;
    // Made afresh each time: what it has to deliver follows from `start`,
    // never from a consumer left behind.
    let _ = stream.delete_consumer(name).await;
    let consumer: consumer::PullConsumer = stream
        .create_consumer(consumer::pull::Config {
            durable_name: Some(name.to_owned()),
            deliver_policy: start,
            ack_policy: consumer::AckPolicy::All,
            inactive_threshold: CONSUMER_INACTIVE,
            ..Default::default()
        })
        .await
        .map_err(|e| e.to_string())?;
    let messages = consumer
        .stream()
        .max_messages_per_batch(READ_BATCH)
        // Heartbeats make a consumer that is gone (the stream deleted, the
        // server restarted without it) show as an error within seconds,
        // and it is then made again.
        .expires(PULL_EXPIRES)
        .heartbeat(PULL_HEARTBEAT)
        .messages()
        .await
        .map_err(|e| e.to_string())?;
    let mut batches = messages.ready_chunks(READ_BATCH);
    let inbound = metrics
        .nats_messages
        .with_label_values(&[label::nats::CLUSTER, label::nats::IN]);
    let origin = format!("stream:{}", settings.name);
    while let Some(batch) = batches.next().await {
        let mut events = Vec::with_capacity(batch.len());
        let mut newest = None;
        let mut failure = None;
        let mut holes = Holes::after(*last, epoch);
        for item in batch {
            let msg = match item {
                Ok(m) => m,
                Err(e) => {
                    failure = Some(e.to_string());
                    break;
                }
            };
            let Ok(info) = msg.info().map(|i| i.stream_sequence) else {
                continue;
            };
            inbound.inc();
            holes.saw(info);
            if let Some(event) = decode(&msg, settings, metrics) {
                events.push((info, event));
            }
            newest = Some((info, msg));
        }
        if holes.skipped > 0 {
            // One notice per batch, however many holes it has: it comes
            // before the batch's events, so within a batch of its place.
            tracing::warn!(stream = %settings.name, lost = holes.skipped, "the stream let events go before this node read them");
            let told = registry
                .send(ClusterLoss {
                    losses: vec![(origin.clone(), holes.skipped)],
                })
                .await;
            if told.is_err() {
                return Ok(());
            }
        }
        if let Some((seq, msg)) = newest {
            let stored = registry.send(Stored { epoch, events }).await;
            if !matches!(stored, Ok(Ok(()))) {
                return Ok(());
            }
            *last = Some((epoch, seq));
            // `AckPolicy::All`: this acks the whole batch.
            if let Err(e) = msg.ack().await {
                tracing::debug!(error = %e, "JetStream ack failed; the batch may come again");
            }
        }
        if let Some(e) = failure {
            return Err(e);
        }
    }
    Err("the consumer's message stream ended".into())
}

/// Stream sequences this node never read, in one batch.
#[derive(Debug, PartialEq)]
struct Holes {
    /// The sequence that should come next; `None` when any may (the first
    /// read of a run, or of a new stream).
    next: Option<u64>,
    skipped: u64,
}

impl Holes {
    /// After the last event read, if it was of this stream.
    fn after(last: Option<(u64, u64)>, epoch: u64) -> Holes {
        Holes {
            next: last
                .filter(|(e, _)| *e == epoch)
                .map(|(_, seq)| seq.saturating_add(1)),
            skipped: 0,
        }
    }

    /// `seq` was read. One below `next` is a redelivery, not a hole.
    fn saw(&mut self, seq: u64) {
        if let Some(next) = self.next {
            self.skipped = self.skipped.saturating_add(seq.saturating_sub(next));
        }
        let after = seq.saturating_add(1);
        self.next = Some(self.next.map_or(after, |n| n.max(after)));
    }
}

/// One stream message as an event, after the checks every cluster message
/// gets; `None` (counted) when refused.
fn decode(
    msg: &jetstream::Message,
    settings: &StreamSettings,
    metrics: &Metrics,
) -> Option<NewEvent> {
    let subject = msg.subject.as_str();
    wire::decode_cluster(
        &settings.prefix,
        subject,
        wire::ClusterHeaders::of(msg.headers.as_ref()),
        &msg.payload,
        settings.max_event_bytes,
    )
    .inspect_err(|e| super::count_refused(metrics, label::nats::CLUSTER, subject, e))
    .ok()
}

#[cfg(test)]
mod tests {
    use super::Holes;

    fn skipped(last: Option<(u64, u64)>, epoch: u64, seqs: &[u64]) -> u64 {
        let mut holes = Holes::after(last, epoch);
        for &seq in seqs {
            holes.saw(seq);
        }
        holes.skipped
    }

    #[test]
    fn holes_in_the_stream_sequence_are_counted() {
        // Nothing read yet, or a new stream: wherever reading starts is fine.
        assert_eq!(skipped(None, 1, &[500, 501]), 0);
        assert_eq!(skipped(Some((7, 10)), 1, &[1, 2]), 0);
        // In order, or read again after a reconnect: nothing skipped.
        assert_eq!(skipped(Some((1, 10)), 1, &[11, 12, 13]), 0);
        assert_eq!(skipped(Some((1, 10)), 1, &[9, 10, 11]), 0);
        // The stream let 11..=19 go before the node read them, then 21.
        assert_eq!(skipped(Some((1, 10)), 1, &[20, 22]), 10);
        // A redelivery after a hole does not count the hole again.
        assert_eq!(skipped(Some((1, 10)), 1, &[20, 15, 21]), 9);
        // Forged or extreme sequences saturate.
        assert_eq!(skipped(Some((1, u64::MAX)), 1, &[u64::MAX]), 0);
        assert_eq!(skipped(Some((1, 0)), 1, &[u64::MAX]), u64::MAX - 1);
    }
}

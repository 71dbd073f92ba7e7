//! The consumer loop: every node reads the whole stream through a durable
//! consumer of its own and hands what it reads to the registry
//! (`registry::Stored`), with a `registry::ClusterLoss` before a hole in
//! the stream's sequence. When reading fails, the stream is checked
//! again and the consumer made again, publishes suspended meanwhile.

use std::sync::Arc;
use std::time::Duration;

use actix::Addr;
use async_nats::jetstream::{self, consumer};
use futures_util::StreamExt;

use super::setup::{self, JetStreamSettings};
use super::{JetStreamError, JetStreamPublisher, RETRY_DELAY};
use crate::event::NewEvent;
use crate::metrics::Metrics;
use crate::nats::backoff::Backoff;
use crate::nats::inbound;
use crate::registry::{ClusterLoss, Registry, Stored};

/// Between two tries of making the consumer (and checking the stream)
/// after a failure.
const RESTART: Backoff = Backoff::new(RETRY_DELAY, Duration::from_secs(1));
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

/// (epoch, sequence) of the last event handed to the registry.
type Last = Option<(u64, u64)>;

/// What one consumer's life needs, for as long as the node runs.
struct Reader {
    js: jetstream::Context,
    settings: JetStreamSettings,
    publisher: JetStreamPublisher,
    /// The durable consumer's name.
    name: String,
    registry: Addr<Registry>,
    metrics: Arc<Metrics>,
}

/// The cluster link's work in JetStream mode: makes sure of the stream
/// (trying again while NATS is unreachable), opens it to publishers, then
/// reads it into the registry for as long as the node runs.
pub async fn run(
    client: async_nats::Client,
    publisher: JetStreamPublisher,
    settings: JetStreamSettings,
    node_id: Arc<str>,
    registry: Addr<Registry>,
    metrics: Arc<Metrics>,
) {
    let reader = Reader {
        js: setup::context(client),
        settings,
        publisher,
        // The node id changes with every start: each run reads through a
        // consumer of its own, and a dead run's is removed by the server.
        name: format!("loggate-{node_id}"),
        registry,
        metrics,
    };
    let mut last: Last = None;
    let mut failures = 0usize;
    loop {
        let before = last;
        let Err(e) = reader.read(&mut last).await else {
            return; // the registry has stopped
        };
        failures = if last == before { failures + 1 } else { 1 };
        let (publisher, stream) = (&reader.publisher, &reader.settings.name);
        let e = e.to_string();
        if publisher.is_ready() {
            publisher.suspend(&e);
            tracing::warn!(%stream, error = %e, "JetStream consumer; starting it again");
        } else {
            publisher.set_problem(Some(e.clone()));
            if failures % 10 == 1 {
                tracing::warn!(%stream, error = %e, "JetStream stream not ready; trying again");
            }
        }
        tokio::time::sleep(RESTART.delay(failures)).await;
    }
}

impl Reader {
    /// One consumer's life: makes sure of the stream (made again if it
    /// went missing), opens it to publishers, creates this node's consumer
    /// and hands what it reads to the registry in batches, acking each
    /// batch once the registry has it. `Ok` when the registry is gone,
    /// `Err` when all this must be done again.
    async fn read(&self, last: &mut Last) -> Result<(), JetStreamError> {
        let settings = &self.settings;
        let epoch = setup::ensure_stream(&self.js, settings).await?;
        if !self.publisher.is_ready() {
            tracing::info!(stream = %settings.name, epoch = format_args!("{epoch:x}"), "JetStream: cluster events are kept in the stream");
        }
        self.publisher.set_ready(self.js.clone(), epoch);
        let messages = self.open(start(*last, epoch, settings.backfill)).await?;
        let mut batches = messages.ready_chunks(READ_BATCH);
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
                        failure = Some(e);
                        break;
                    }
                };
                let Ok(seq) = msg.info().map(|i| i.stream_sequence) else {
                    continue;
                };
                holes.saw(seq);
                if let Some(event) = self.decode(&msg) {
                    events.push((seq, event));
                }
                newest = Some((seq, msg));
            }
            if holes.skipped > 0 && !self.tell_loss(&origin, holes.skipped).await {
                return Ok(());
            }
            if let Some((seq, msg)) = newest {
                let stored = self.registry.send(Stored { epoch, events }).await;
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
                return Err(e.into());
            }
        }
        Err(JetStreamError::Ended)
    }

    /// Makes this node's consumer afresh, delivering from `start`, and
    /// opens its messages.
    async fn open(
        &self,
        start: consumer::DeliverPolicy,
    ) -> Result<consumer::pull::Stream, JetStreamError> {
        let stream = self
            .js
            .get_stream(&self.settings.name)
            .await
            .map_err(JetStreamError::Open)?;
        // Made afresh each time: what it has to deliver follows from
        // `start`, never from a consumer left behind.
        let _ = stream.delete_consumer(&self.name).await;
        let consumer: consumer::PullConsumer = stream
            .create_consumer(consumer::pull::Config {
                durable_name: Some(self.name.clone()),
                deliver_policy: start,
                ack_policy: consumer::AckPolicy::All,
                inactive_threshold: CONSUMER_INACTIVE,
                ..Default::default()
            })
            .await?;
        Ok(consumer
            .stream()
            .max_messages_per_batch(READ_BATCH)
            // Heartbeats make a consumer that is gone (the stream deleted,
            // the server restarted without it) show as an error within
            // seconds, and it is then made again.
            .expires(PULL_EXPIRES)
            .heartbeat(PULL_HEARTBEAT)
            .messages()
            .await?)
    }

    /// Tells the registry the stream let `lost` events go: one notice per
    /// batch, however many holes it has, before the batch's events, so
    /// within a batch of its place. False when the registry is gone.
    async fn tell_loss(&self, origin: &str, lost: u64) -> bool {
        tracing::warn!(stream = %self.settings.name, lost, "the stream let events go before this node read them");
        let losses = vec![(origin.to_owned(), lost)];
        self.registry.send(ClusterLoss { losses }).await.is_ok()
    }

    /// One stream message as an event, through the handler every cluster
    /// message goes through; `None` (counted) when refused.
    fn decode(&self, msg: &jetstream::Message) -> Option<NewEvent> {
        let s = &self.settings;
        inbound::cluster_message(
            &self.metrics,
            &s.prefix,
            msg.subject.as_str(),
            msg.headers.as_ref(),
            &msg.payload,
            s.max_event_bytes,
        )
    }
}

/// Where a consumer starts: after the last sequence read when it has to
/// be made again, from the beginning if the stream is a new one, and
/// `backfill` ago at start.
fn start(last: Last, epoch: u64, backfill: Duration) -> consumer::DeliverPolicy {
    match last {
        Some((e, seq)) if e == epoch => consumer::DeliverPolicy::ByStartSequence {
            start_sequence: seq + 1,
        },
        Some(_) => consumer::DeliverPolicy::All,
        None if backfill.is_zero() => consumer::DeliverPolicy::New,
        None => consumer::DeliverPolicy::ByStartTime {
            start_time: time::OffsetDateTime::now_utc() - backfill,
        },
    }
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
    fn after(last: Last, epoch: u64) -> Holes {
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

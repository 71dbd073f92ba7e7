//! JetStream mode (`nats.jetstream`): the cluster's events live in one
//! JetStream stream, and the stream, not any node, puts them in order.
//! (Named for JetStream, not "stream": that word already means the SSE
//! endpoint and `futures::Stream`.)
//!
//! - **Setting up** ([`setup`]): the stream is created, or the one there
//!   checked and its limits set; its creation time is the epoch of the
//!   ids drawn from it.
//! - **Publishing** ([`JetStreamPublisher`], [`publisher`]): every event a
//!   node accepts (an HTTP, OTLP or Loki publish, Fly's log bus, an ingest
//!   rule) is published to the stream with a `Nats-Msg-Id` of
//!   `<node>-<secret>-<seq>`, and the publish is answered only once the
//!   stream has acknowledged it. A publish with an `Idempotency-Key` has
//!   ids of `key-<hash>-<index>` instead, from its service, key and
//!   request (`crate::idempotency::Claim::msg_id_base`), the same on every
//!   node. A publish whose ack does not come (NATS restarting) is sent
//!   again, in order, with the same ids, so the stream stores it once; one
//!   that is still unconfirmed at `nats.publish_timeout_secs` is answered
//!   503 (what was sent may still be stored: a publisher that retries
//!   without a key can cause a duplicate, never a loss; one that retries
//!   with its key, on any node within the stream's duplicate window, which
//!   [`setup`] keeps at least the idempotency window, is answered the ids
//!   of what was stored). A batch's events are sent together and their acks awaited in
//!   order; if the connection dies with one of them on the wire while
//!   later ones wait in the client's buffer, those are stored first and
//!   the one sent again lands after them. The stream is still the one
//!   order every node delivers.
//! - **Reading** ([`consumer::run`]): every node reads the whole stream
//!   through a durable consumer of its own, the node that published an
//!   event included, and hands what it reads to the registry
//!   (`registry::Stored`), which gives each event the stream's sequence as
//!   its id. So every node delivers the same events in the same order
//!   under the same ids, and a `Last-Event-ID` from one node resumes on
//!   any other. Messages are acked after the registry has them; the
//!   registry ignores a sequence it has already seen, so a redelivery is
//!   never delivered twice.
//! - **Loss past the stream's limits**: the stream's sequence has no holes
//!   of its own, so a hole in what a node reads means the stream let those
//!   events go (its age or byte limit, or a deletion) before this node read
//!   them, as when a node is cut off for longer than the stream keeps
//!   events. The registry is told (`registry::ClusterLoss`, origin
//!   `stream:<name>`) before the events after the hole.
//! - **Starting**: a node starts with empty history, so its consumer
//!   begins `history.max_age_minutes` back and fills history from the
//!   stream before it goes live; a resume from before a restart finds what
//!   it missed. If the consumer disappears (NATS lost it, or it was idle
//!   past its inactivity limit while this node was cut off), it is
//!   created again from the sequence after the last one read. If the
//!   stream itself went missing, it is made again (or the one another node
//!   made first is taken); its ids then have a new epoch, and every node
//!   starts its history over. While the consumer is made again, publishes
//!   are refused: the stream may have been replaced, and no id may carry
//!   a deleted stream's epoch.
//! - **Health** ([`health`]): the stream is a link of its own for
//!   `/ready` and `/health`.
//!
//! Talks to: the registry (its mailbox), async-nats' JetStream API, and
//! [`super::wire`] for the wire format, which is the same as in core mode.

pub mod consumer;
pub mod health;
pub mod publisher;
pub mod setup;

pub use publisher::JetStreamPublisher;
pub use setup::JetStreamSettings;

use std::time::Duration;

use async_nats::jetstream::{consumer as js_consumer, context, stream};

/// Between two tries of an unconfirmed publish; the consumer's retries
/// back off from here ([`super::backoff::Backoff`]).
const RETRY_DELAY: Duration = Duration::from_millis(200);

/// Why the stream could not be set up or read; the consumer loop starts
/// over after any of them, and `/health` shows the last one.
#[derive(Debug, thiserror::Error)]
pub enum JetStreamError {
    #[error(
        "stream {name} exists but captures {subjects:?}, not {subject}: use another nats.stream, or add the subject"
    )]
    CapturesOther {
        name: String,
        subjects: Vec<String>,
        subject: String,
    },
    #[error("stream {name}: cannot set its limits: {source}")]
    SetLimits {
        name: String,
        source: context::UpdateStreamError,
    },
    #[error("cannot create stream {name}: {source}")]
    Create {
        name: String,
        source: context::CreateStreamError,
    },
    #[error("stream {name}: {source}")]
    Check {
        name: String,
        source: context::GetStreamError,
    },
    #[error(transparent)]
    Open(context::GetStreamError),
    #[error(transparent)]
    Consumer(#[from] stream::ConsumerError),
    #[error(transparent)]
    Pull(#[from] js_consumer::StreamError),
    #[error(transparent)]
    Read(#[from] js_consumer::pull::MessagesError),
    #[error("the consumer's message stream ended")]
    Ended,
}

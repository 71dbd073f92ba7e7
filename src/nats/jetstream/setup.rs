//! The stream itself: what it is ([`JetStreamSettings`], from the
//! configuration), making sure of it ([`ensure_stream`]) and the epoch of
//! the ids drawn from it ([`stream_epoch`]).

use std::time::Duration;

use async_nats::jetstream::{self, stream};

use super::JetStreamError;
use crate::event::STREAM_EPOCH_BIT;

/// How long a JetStream API call or a publish ack is waited for before it
/// is tried again.
const ACK_TIMEOUT: Duration = Duration::from_secs(2);
/// The least time the stream recognises a repeated `Nats-Msg-Id` for: a
/// node's own resending of an unconfirmed publish is over well within it.
/// A publish with an `Idempotency-Key` must be recognised for the key's
/// whole window, so the stream's duplicate window is the longer of the two
/// ([`JetStreamSettings::duplicate_window`]).
const MIN_DUPLICATE_WINDOW: Duration = Duration::from_secs(120);

/// What the stream is, from the configuration.
#[derive(Debug, Clone)]
pub struct JetStreamSettings {
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
    /// How long the stream recognises a repeated `Nats-Msg-Id`: at least
    /// `publish.idempotency_window_secs`, so a keyed retry on any node
    /// within the window is stored once (the configuration keeps it within
    /// the stream's age limit, as JetStream requires).
    pub duplicate_window: Duration,
}

impl JetStreamSettings {
    pub fn from_config(config: &crate::config::Config) -> Self {
        let n = &config.nats;
        let max_age = Duration::from_secs(n.stream_max_age_minutes.saturating_mul(60));
        JetStreamSettings {
            name: n.stream.clone(),
            prefix: n.subject_prefix.clone(),
            max_age,
            max_bytes: i64::try_from(n.stream_max_bytes).unwrap_or(i64::MAX),
            publish_timeout: Duration::from_secs(n.publish_timeout_secs),
            backfill: Duration::from_secs(config.history.max_age_minutes().saturating_mul(60)),
            max_event_bytes: config.publish.max_event_bytes,
            duplicate_window: within_age(
                MIN_DUPLICATE_WINDOW
                    .max(Duration::from_secs(config.publish.idempotency_window_secs)),
                max_age,
            ),
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
            duplicate_window: self.duplicate_window,
            ..Default::default()
        }
    }
}

/// `window`, no longer than `max_age` (0: no age limit): JetStream
/// refuses a duplicate window longer than the stream keeps messages.
fn within_age(window: Duration, max_age: Duration) -> Duration {
    if max_age.is_zero() {
        window
    } else {
        window.min(max_age)
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
pub async fn ensure_stream(
    js: &jetstream::Context,
    s: &JetStreamSettings,
) -> Result<u64, JetStreamError> {
    let info = match js.get_stream(&s.name).await {
        Ok(existing) => {
            let info = existing.cached_info().clone();
            check_existing(js, s, info).await?
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
                    Err(_) => {
                        return Err(JetStreamError::Create {
                            name: s.name.clone(),
                            source: create,
                        });
                    }
                },
            }
        }
        Err(e) => {
            return Err(JetStreamError::Check {
                name: s.name.clone(),
                source: e,
            });
        }
    };
    Ok(stream_epoch(&info))
}

/// A stream that was there: it must capture the cluster subjects, and
/// gets the configured limits. Its duplicate window is only ever widened
/// (another node, or its operator, may want it longer).
async fn check_existing(
    js: &jetstream::Context,
    s: &JetStreamSettings,
    info: stream::Info,
) -> Result<stream::Info, JetStreamError> {
    let subject = s.subject();
    if !info.config.subjects.contains(&subject) {
        return Err(JetStreamError::CapturesOther {
            name: s.name.clone(),
            subjects: info.config.subjects.clone(),
            subject,
        });
    }
    if info.config.max_age != s.max_age
        || info.config.max_bytes != s.max_bytes
        || info.config.duplicate_window < s.duplicate_window
    {
        let mut config = info.config.clone();
        config.max_age = s.max_age;
        config.max_bytes = s.max_bytes;
        config.duplicate_window =
            within_age(config.duplicate_window.max(s.duplicate_window), s.max_age);
        js.update_stream(config)
            .await
            .map_err(|source| JetStreamError::SetLimits {
                name: s.name.clone(),
                source,
            })?;
        tracing::info!(stream = %s.name, "JetStream stream limits updated");
    }
    Ok(info)
}

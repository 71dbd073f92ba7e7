//! Idempotent publishing: the `Idempotency-Key` header and the [`Table`]
//! of keys already answered, which let a publisher retry without
//! publishing twice.
//!
//! Owns the header's rules ([`key_of`], in `key.rs`), the digest that tells
//! one request from another ([`digest`]: route, content type and body
//! bytes, never the body itself), the `Nats-Msg-Id`s a key gives its events in JetStream
//! mode ([`Claim::msg_id_base`]), and the table: per service and key, the
//! digest and the ids of the `202` it was answered. Only a `202` is
//! remembered: a request refused or failed for any reason leaves its key
//! free for the retry.
//!
//! `ingest::request::ingest` and `/test/logs` ask [`Table::begin`] once
//! the body is read. A request either claims its key (then publishes, and completes
//! the claim with its ids), or is answered from the table (the first
//! answer's ids, nothing published), or is refused: `422
//! idempotency_key_reused` for the same key with another digest, `409
//! idempotency_key_in_use` when a claim on the key by another request is
//! still held after the bounded wait. Two requests with one key never both
//! publish: the second waits for the first's outcome, and takes the claim
//! over if the first failed.
//!
//! Bounds: a key is forgotten once its window has passed (swept lazily,
//! oldest first, whenever a key is looked up or remembered); at most
//! `max_keys` keys and [`MAX_BYTES`] of them are remembered, the oldest
//! evicted first and counted in `loggate_idempotency_evicted_total`.
//! Claims in flight are not counted: there are no more of them than
//! requests being handled.
//!
//! Persistence is the store's: remembered keys are plain data ([`Entry`]);
//! with the disk store every answer is handed, as it is remembered, to the
//! sink given to [`Table::keep_with`] (the store's writer), and a start
//! gives back what was kept with [`Table::import`].
//!
//! A std `Mutex`, held for map operations only, never across an await; it
//! is reached from the HTTP workers through `AppState`, never from the
//! registry's thread. On the floor below `state.rs` (it imports only
//! `event` and `metrics`), so `AppState` can hold it: ingestion words its
//! refusals ([`InvalidKey`], [`Refused`]) as `PublishError`s.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use prometheus::{IntCounter, IntGauge};
use tokio::sync::watch;

use crate::event::{EventId, now_ms};
use crate::metrics::{Metrics, label};

mod claim;
mod key;
mod runs;

pub use claim::Claim;
use runs::{Run, from_runs, to_runs};

pub use key::{Digest, HEADER, InvalidKey, Key, MAX_KEY_LEN, digest, key_of};

/// What remembered answers may take, all keys together: a key's ids are
/// kept as runs of consecutive ids (one run for a batch one gateway
/// numbered alone), but a batch interleaved with others in a JetStream
/// stream can take a run per event.
pub const MAX_BYTES: usize = 64 << 20;
/// What a remembered key costs besides its name and runs: the map's and
/// the queue's slots, the digest, the times.
const ENTRY_OVERHEAD: usize = 128;
/// The `Retry-After` of `409 idempotency_key_in_use`.
const IN_USE_RETRY_SECS: u64 = 1;

/// Why a request with a key may not go on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// `422 idempotency_key_reused`: the key was answered, within its
    /// window, for a request with another digest.
    #[error(
        "this Idempotency-Key was already used by this service for a different request; use a new key for new events"
    )]
    Reused,
    /// `409 idempotency_key_in_use`: another request held the key for
    /// the whole wait.
    #[error(
        "a request with this Idempotency-Key is still being published; retry in {retry_after_secs}s for its answer"
    )]
    InUse { retry_after_secs: u64 },
}

/// A remembered key, as a store keeps it: [`Table::export`] gives them,
/// [`Table::import`] takes them back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub service: String,
    pub key: String,
    /// [`digest`] of the request that was answered.
    pub digest: Digest,
    /// The ids the `202` answered, in batch order.
    pub ids: Vec<EventId>,
    /// When it was answered, Unix milliseconds: the window runs from here.
    pub inserted_at_ms: i64,
}

/// What [`Table::begin`] decided for a request with a key.
pub enum Begin {
    /// The key is this request's: publish, then [`Claim::complete`].
    Claimed(Claim),
    /// Already answered: these ids, and publish nothing.
    Replay(Vec<EventId>),
}

/// A key's place in the table: `"{service} {key}"`. Unambiguous: a
/// service name (a channel segment) and a key hold no space.
type SlotName = Arc<str>;

enum Slot {
    /// A request holds the claim; `done` is dropped when it completes or
    /// gives up, which wakes every request waiting for it.
    InFlight {
        turn: u64,
        done: watch::Sender<()>,
    },
    Answered(Answered),
}

struct Answered {
    turn: u64,
    digest: Digest,
    ids: Box<[Run]>,
    at_ms: i64,
}

impl Answered {
    fn cost(&self, name: &str) -> usize {
        name.len() + std::mem::size_of_val(&*self.ids) + ENTRY_OVERHEAD
    }
}

/// One answered key in the order they were answered.
struct Order {
    name: SlotName,
    /// Which answer of that name: one forgotten early (looked up past its
    /// window) and answered again leaves its old place here behind.
    turn: u64,
    at_ms: i64,
}

#[derive(Default)]
struct Inner {
    slots: HashMap<SlotName, Slot>,
    order: VecDeque<Order>,
    /// `Slot::Answered` in `slots`, and their cost.
    answered: usize,
    bytes: usize,
    next_turn: u64,
}

impl Inner {
    fn turn(&mut self) -> u64 {
        self.next_turn += 1;
        self.next_turn
    }

    /// Removes `name` if it holds the answer `turn`; whether it did.
    fn forget(&mut self, name: &SlotName, turn: u64) -> bool {
        match self.slots.get(name) {
            Some(Slot::Answered(a)) if a.turn == turn => {
                let cost = a.cost(name);
                self.slots.remove(name);
                self.answered -= 1;
                self.bytes -= cost;
                true
            }
            _ => false,
        }
    }

    /// Forgets the oldest answer; whether one was still remembered.
    fn forget_oldest(&mut self) -> bool {
        match self.order.pop_front() {
            Some(o) => self.forget(&o.name, o.turn),
            None => false,
        }
    }

    fn remember(&mut self, name: SlotName, answered: Answered) {
        self.answered += 1;
        self.bytes += answered.cost(&name);
        self.order.push_back(Order {
            name: Arc::clone(&name),
            turn: answered.turn,
            at_ms: answered.at_ms,
        });
        // Replacing a claim drops its sender: its waiters wake.
        self.slots.insert(name, Slot::Answered(answered));
    }
}

/// The keys of one gateway; shared by every worker through `AppState`.
pub struct Table {
    inner: Mutex<Inner>,
    window_ms: i64,
    max_keys: usize,
    max_bytes: usize,
    /// How long a request waits for another holding its key.
    wait: Duration,
    keys: IntGauge,
    evicted_keys: IntCounter,
    evicted_bytes: IntCounter,
    replayed: IntCounter,
    /// Where each answer is kept as it is remembered (the durable store),
    /// so a restart, even a crash, keeps it.
    sink: std::sync::OnceLock<Box<dyn Fn(Entry) + Send + Sync>>,
}

/// What a look at the table decided, under its lock.
enum Look {
    Claimed(u64),
    Replay(Vec<EventId>),
    Reused,
    Wait(watch::Receiver<()>),
}

impl Table {
    /// Keys kept for `window`, at most `max_keys` of them; a request waits
    /// up to `wait` for another holding its key.
    pub fn new(window: Duration, max_keys: usize, wait: Duration, metrics: &Metrics) -> Arc<Table> {
        Arc::new(Table {
            inner: Mutex::new(Inner::default()),
            window_ms: i64::try_from(window.as_millis()).unwrap_or(i64::MAX),
            max_keys,
            max_bytes: MAX_BYTES,
            wait,
            keys: metrics.idempotency_keys.clone(),
            evicted_keys: metrics
                .idempotency_evicted
                .with_label_values(&[label::idempotency::MAX_KEYS]),
            evicted_bytes: metrics
                .idempotency_evicted
                .with_label_values(&[label::idempotency::MAX_BYTES]),
            replayed: metrics.idempotency_replayed.clone(),
            sink: std::sync::OnceLock::new(),
        })
    }

    /// Hands every answer, as it is remembered, to `sink` (set once, at
    /// start, before serving).
    pub fn keep_with(&self, sink: impl Fn(Entry) + Send + Sync + 'static) {
        let _ = self.sink.set(Box::new(sink));
    }

    /// `publish.idempotency_*`. The wait covers what the first request
    /// may still do once it holds the key: wait for a decode slot, then
    /// for the stream's confirmation in JetStream mode, and a margin.
    pub fn from_config(config: &crate::config::Config, metrics: &Metrics) -> Arc<Table> {
        let p = &config.publish;
        let wait = crate::limits::decode_slots::SLOT_WAIT
            + Duration::from_secs(config.nats.publish_timeout_secs)
            + Duration::from_secs(5);
        Table::new(
            Duration::from_secs(p.idempotency_window_secs),
            p.idempotency_max_keys,
            wait,
            metrics,
        )
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // The map stays consistent through a panic elsewhere: every
        // change is made whole under the lock.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn expired(&self, at_ms: i64, now_ms: i64) -> bool {
        now_ms.saturating_sub(at_ms) >= self.window_ms
    }

    /// Forgets answers whose window has passed, oldest first.
    fn sweep(&self, inner: &mut Inner, now_ms: i64) {
        while inner
            .order
            .front()
            .is_some_and(|o| self.expired(o.at_ms, now_ms))
        {
            inner.forget_oldest();
        }
    }

    /// Evicts the oldest answers, counted, until the table is within its
    /// bounds.
    fn bound(&self, inner: &mut Inner) {
        while inner.answered > self.max_keys && !inner.order.is_empty() {
            if inner.forget_oldest() {
                self.evicted_keys.inc();
            }
        }
        while inner.bytes > self.max_bytes && !inner.order.is_empty() {
            if inner.forget_oldest() {
                self.evicted_bytes.inc();
            }
        }
        self.keys
            .set(i64::try_from(inner.answered).unwrap_or(i64::MAX));
    }

    /// The request with `key` from `service` and this `digest`: claimed,
    /// answered from the table, or refused. Waits (bounded) while another
    /// request holds the key.
    pub async fn begin(
        self: &Arc<Self>,
        service: &str,
        key: &Key,
        digest: Digest,
    ) -> Result<Begin, Refused> {
        let name: SlotName = format!("{service} {}", key.as_str()).into();
        let deadline = tokio::time::Instant::now() + self.wait;
        loop {
            let mut waiting = match self.look(&name, digest, now_ms()) {
                Look::Claimed(turn) => {
                    return Ok(Begin::Claimed(Claim {
                        table: Arc::clone(self),
                        name,
                        turn,
                        digest,
                        completed: false,
                    }));
                }
                Look::Replay(ids) => {
                    self.replayed.inc();
                    return Ok(Begin::Replay(ids));
                }
                Look::Reused => return Err(Refused::Reused),
                Look::Wait(waiting) => waiting,
            };
            // Ends with an error when the holder's sender is dropped: it
            // completed or gave up, so look again.
            if tokio::time::timeout_at(deadline, waiting.changed())
                .await
                .is_err()
            {
                return Err(Refused::InUse {
                    retry_after_secs: IN_USE_RETRY_SECS,
                });
            }
        }
    }

    fn look(&self, name: &SlotName, digest: Digest, now_ms: i64) -> Look {
        let mut inner = self.lock();
        self.sweep(&mut inner, now_ms);
        let stale = match inner.slots.get(name) {
            None => None,
            Some(Slot::InFlight { done, .. }) => return Look::Wait(done.subscribe()),
            Some(Slot::Answered(a)) if self.expired(a.at_ms, now_ms) => Some(a.turn),
            Some(Slot::Answered(a)) if a.digest == digest => {
                return Look::Replay(from_runs(&a.ids));
            }
            Some(Slot::Answered(_)) => return Look::Reused,
        };
        // Past its window but not yet swept (the clock went back, or it
        // was imported behind newer keys).
        if let Some(turn) = stale {
            inner.forget(name, turn);
        }
        let turn = inner.turn();
        let (done, _) = watch::channel(());
        inner
            .slots
            .insert(Arc::clone(name), Slot::InFlight { turn, done });
        self.keys
            .set(i64::try_from(inner.answered).unwrap_or(i64::MAX));
        Look::Claimed(turn)
    }

    fn complete(&self, name: &SlotName, turn: u64, digest: Digest, ids: &[EventId], now_ms: i64) {
        let mut inner = self.lock();
        if !matches!(inner.slots.get(name), Some(Slot::InFlight { turn: t, .. }) if *t == turn) {
            return;
        }
        inner.remember(
            Arc::clone(name),
            Answered {
                turn,
                digest,
                ids: to_runs(ids),
                at_ms: now_ms,
            },
        );
        self.sweep(&mut inner, now_ms);
        self.bound(&mut inner);
        drop(inner);
        if let Some(sink) = self.sink.get()
            && let Some((service, key)) = name.split_once(' ')
        {
            sink(Entry {
                service: service.to_owned(),
                key: key.to_owned(),
                digest,
                ids: ids.to_vec(),
                inserted_at_ms: now_ms,
            });
        }
    }

    fn release(&self, name: &SlotName, turn: u64) {
        let mut inner = self.lock();
        if matches!(inner.slots.get(name), Some(Slot::InFlight { turn: t, .. }) if *t == turn) {
            // Dropping the claim's sender wakes its waiters.
            inner.slots.remove(name);
        }
    }

    /// Keys remembered now (claims in flight not counted).
    pub fn len(&self) -> usize {
        self.lock().answered
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every remembered key still within its window, oldest first: what a
    /// store saves.
    pub fn export(&self) -> Vec<Entry> {
        let now = now_ms();
        let inner = self.lock();
        inner
            .order
            .iter()
            .filter_map(|o| match inner.slots.get(&o.name) {
                Some(Slot::Answered(a)) if a.turn == o.turn && !self.expired(a.at_ms, now) => {
                    let (service, key) = o.name.split_once(' ')?;
                    Some(Entry {
                        service: service.to_owned(),
                        key: key.to_owned(),
                        digest: a.digest,
                        ids: from_runs(&a.ids),
                        inserted_at_ms: a.at_ms,
                    })
                }
                _ => None,
            })
            .collect()
    }

    /// Takes back what [`Table::export`] gave (at start, into an empty
    /// table): entries past their window, with a key that is not a
    /// [`Key`] or a service with a space, or for a key the table already
    /// holds, are skipped. The bounds hold as for any answer (the oldest
    /// evicted, counted). Answers how many were taken.
    pub fn import(&self, mut entries: Vec<Entry>) -> usize {
        self.import_at(&mut entries, now_ms())
    }

    fn import_at(&self, entries: &mut [Entry], now_ms: i64) -> usize {
        entries.sort_by_key(|e| e.inserted_at_ms);
        let mut inner = self.lock();
        let mut taken = 0;
        for e in entries.iter() {
            let valid = Key::parse(e.key.as_bytes()).is_ok()
                && !e.service.is_empty()
                && !e.service.contains(' ');
            if !valid || self.expired(e.inserted_at_ms, now_ms) {
                continue;
            }
            let name: SlotName = format!("{} {}", e.service, e.key).into();
            if inner.slots.contains_key(&name) {
                continue;
            }
            let turn = inner.turn();
            inner.remember(
                name,
                Answered {
                    turn,
                    digest: e.digest,
                    ids: to_runs(&e.ids),
                    at_ms: e.inserted_at_ms,
                },
            );
            taken += 1;
        }
        self.bound(&mut inner);
        taken
    }
}

#[cfg(test)]
mod tests;

//! The outbound queue a session owns: bounded, drop-oldest, never blocking.
//!
//! The registry offers events from its own thread; the transport (an SSE
//! body stream or a WebSocket writer) drains them from the session's worker
//! thread. The queue is bounded by event count and by bytes. When an offer
//! finds it full, the oldest undelivered events are dropped, the loss is
//! remembered and reported to the client as one `lag` notice ahead of the
//! next batch, and the offer tells the registry how many it dropped so the
//! loss is counted per service. The lock is held only to push or pop
//! pointers, so the registry never waits on a client's socket.
//!
//! Draining takes everything queued at once (up to a byte budget) so the
//! transport can hand it to the socket in one write: under load a session
//! writes many frames per syscall instead of one. The outbox knows its
//! session's [`Framing`], so notices (gap, shutdown, expiry) are worded as
//! they are queued, whoever queues them.
//!
//! Control frames (replies, notices) are never dropped, so they have a
//! bound of their own; a client over it is to be closed ([`Outbox::abort`]),
//! and a client that will not even take its close frame is dropped
//! ([`Outbox::kill`]).
//!
//! A queue that is full and never drained belongs to a client that is not
//! reading: [`Outbox::full_for`] says how long that has been so, for the
//! session to drop such a client.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::Transport;
use super::filter::{Filter, MessageText};
use super::framing::Framing;
use crate::event::{Event, Gap};

/// How much a session may hold for a client that is not reading.
#[derive(Debug, Clone, Copy)]
pub struct QueueLimits {
    pub max_events: usize,
    pub max_bytes: usize,
}

/// One thing queued for the client.
#[derive(Debug, Clone)]
pub enum Item {
    Event(Arc<Event>),
    /// A frame already worded for the transport (ready, gap, replies,
    /// keepalive, shutdown). Control frames are few and never dropped.
    Control(Bytes),
}

/// Result of offering an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offer {
    Queued,
    /// Queued, after dropping this many older events to make room.
    QueuedDropping(u64),
    /// The session's filter does not want it.
    Filtered,
    /// The session is closing; nothing was queued.
    Closed,
}

#[derive(Debug, Default)]
struct State {
    items: VecDeque<Item>,
    /// Events (not control frames) in `items`.
    events: usize,
    /// Bytes of the events in `items`.
    bytes: usize,
    /// Control frames in `items`, and their bytes: bounded separately
    /// (see [`MAX_CONTROL_FRAMES`]), because a client causes them.
    controls: usize,
    control_bytes: usize,
    /// The answer to the client's latest ping; written ahead of the next
    /// batch. One slot, not a queue: a newer ping replaces an older answer.
    pong: Option<Bytes>,
    /// Dropped since the client last read; reported as `lag`.
    lagged: u64,
    /// When an offer first found the queue full since the transport last
    /// took a batch: from then on the queue has stayed full, and nothing
    /// was written.
    full_since: Option<Instant>,
    closed: bool,
    /// Closed by [`Outbox::abort`]: once the last frame is out the stream
    /// waits for the client to hang up, or for [`Outbox::kill`].
    aborted: bool,
    /// The connection is to be dropped without further ado.
    killed: bool,
    /// Events up to this sequence were replayed from history on resume:
    /// old by nature, so they say nothing about delivery latency.
    replayed_through: u64,
    waker: Option<Waker>,
}

/// Wakes the transport after a push, outside the lock: the woken task may
/// run on another thread and want the lock at once.
fn wake(mut st: MutexGuard<'_, State>) {
    let waker = st.waker.take();
    drop(st);
    if let Some(w) = waker {
        w.wake();
    }
}

/// Most control frames (replies, notices) a session may hold for a client
/// that does not read. Control frames are never dropped, so a client that
/// keeps causing them (pings, bad messages) without reading would otherwise
/// grow memory without bound; past this the session is closed instead.
pub const MAX_CONTROL_FRAMES: usize = 64;
/// The same bound in bytes.
pub const MAX_CONTROL_BYTES: usize = 256 * 1024;

/// Result of queueing a control frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Push {
    Queued,
    /// The outbox is closed; nothing was queued.
    Closed,
    /// Over [`MAX_CONTROL_FRAMES`] or [`MAX_CONTROL_BYTES`]; nothing was
    /// queued. The session should [`Outbox::abort`].
    Overflow,
}

/// What the transport gets when it asks for more.
#[derive(Debug)]
pub enum Drained {
    Batch(Batch),
    /// Closed and empty: end the stream.
    End,
    /// Drop the connection now (see [`Outbox::kill`]).
    Killed,
}

/// A batch handed to the transport.
#[derive(Debug, Default)]
pub struct Batch {
    /// Events lost since the previous batch; the transport reports them first.
    pub lagged: u64,
    /// Events up to this sequence are resume replays, not live deliveries.
    pub replayed_through: u64,
    pub items: Vec<Item>,
}

#[derive(Debug)]
pub struct Outbox {
    state: Mutex<State>,
    limits: QueueLimits,
    filter: Filter,
    framing: Framing,
}

impl Outbox {
    pub fn new(limits: QueueLimits, filter: Filter, framing: Framing) -> Self {
        Outbox {
            state: Mutex::new(State::default()),
            limits,
            filter,
            framing,
        }
    }

    pub fn framing(&self) -> Framing {
        self.framing
    }

    pub fn transport(&self) -> Transport {
        self.framing.transport()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding this lock leaves only pointers half-moved;
        // the queue is still a valid queue, so keep serving.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Offers an event; never blocks beyond the queue's short lock.
    /// `text` is the event's message as every session's filter sees it,
    /// folded once per event by the caller.
    pub fn offer(&self, event: &Arc<Event>, text: &MessageText<'_>) -> Offer {
        if !self.filter.accepts(text) {
            return Offer::Filtered;
        }
        let mut st = self.lock();
        if st.closed {
            return Offer::Closed;
        }
        let size = event.size();
        let mut dropped = 0u64;
        while st.events > 0
            && (st.events + 1 > self.limits.max_events || st.bytes + size > self.limits.max_bytes)
        {
            // Oldest event first; control frames stay where they are.
            let Some(pos) = st.items.iter().position(|i| matches!(i, Item::Event(_))) else {
                break;
            };
            if let Some(Item::Event(old)) = st.items.remove(pos) {
                st.events -= 1;
                st.bytes -= old.size();
                dropped += 1;
            }
        }
        st.items.push_back(Item::Event(Arc::clone(event)));
        st.events += 1;
        st.bytes += size;
        st.lagged += dropped;
        if dropped > 0 && st.full_since.is_none() {
            st.full_since = Some(Instant::now());
        }
        wake(st);
        if dropped > 0 {
            Offer::QueuedDropping(dropped)
        } else {
            Offer::Queued
        }
    }

    /// Queues a control frame, within the control bound.
    pub fn push_control(&self, frame: Bytes) -> Push {
        let mut st = self.lock();
        if st.closed {
            return Push::Closed;
        }
        if st.controls + 1 > MAX_CONTROL_FRAMES
            || st.control_bytes + frame.len() > MAX_CONTROL_BYTES
        {
            return Push::Overflow;
        }
        st.controls += 1;
        st.control_bytes += frame.len();
        st.items.push_back(Item::Control(frame));
        wake(st);
        Push::Queued
    }

    /// Queues the transport's keepalive, only when nothing is waiting: a
    /// keepalive is pointless behind data, and must not pile up behind a
    /// stalled reader.
    pub fn push_keepalive(&self) -> bool {
        self.framing
            .keepalive()
            .is_some_and(|frame| self.push_control_if_idle(frame))
    }

    /// Queues a control frame only when nothing is waiting.
    pub fn push_control_if_idle(&self, frame: Bytes) -> bool {
        let mut st = self.lock();
        if st.closed || !st.items.is_empty() || st.pong.is_some() {
            return false;
        }
        st.controls += 1;
        st.control_bytes += frame.len();
        st.items.push_back(Item::Control(frame));
        wake(st);
        true
    }

    /// Sets the answer to the client's latest ping, replacing an answer not
    /// yet written: a ping flood costs one frame, not a queue.
    pub fn set_pong(&self, frame: Bytes) {
        let mut st = self.lock();
        if st.closed {
            return;
        }
        st.pong = Some(frame);
        wake(st);
    }

    /// Ends the session at once: drops everything queued, queues `last`
    /// (a close frame the client may still read), and refuses more. Unlike
    /// [`Outbox::close_with`] the stream does not end by itself after
    /// `last`: the client is expected to hang up, and [`Outbox::kill`]
    /// drops a connection that does not. Returns false if already closed
    /// this way.
    pub fn abort(&self, last: Bytes) -> bool {
        let mut st = self.lock();
        if st.aborted {
            return false;
        }
        st.items.clear();
        st.events = 0;
        st.bytes = 0;
        st.lagged = 0;
        st.full_since = None;
        st.pong = None;
        st.controls = 1;
        st.control_bytes = last.len();
        st.items.push_back(Item::Control(last));
        st.closed = true;
        st.aborted = true;
        wake(st);
        true
    }

    /// Tells the transport to drop the connection (after an [`abort`] whose
    /// close frame the client did not take in time).
    ///
    /// [`abort`]: Outbox::abort
    pub fn kill(&self) {
        let mut st = self.lock();
        st.killed = true;
        wake(st);
    }

    /// Queues a last frame and closes: the transport drains what is queued,
    /// then ends the stream. Later offers are refused.
    pub fn close_with(&self, last: Option<Bytes>) {
        let mut st = self.lock();
        if st.closed {
            return;
        }
        if let Some(frame) = last {
            st.controls += 1;
            st.control_bytes += frame.len();
            st.items.push_back(Item::Control(frame));
        }
        st.closed = true;
        wake(st);
    }

    /// Ends the stream with the transport's shutdown notice, after what is
    /// queued.
    pub fn shut_down(&self) {
        self.close_with(Some(self.framing.shutdown()));
    }

    /// Ends the stream with the transport's token-expired notice, after
    /// what is queued.
    pub fn expire(&self) {
        self.close_with(Some(self.framing.expired()));
    }

    pub fn limits(&self) -> QueueLimits {
        self.limits
    }

    /// Offers events replayed from history on resume, oldest first.
    pub fn offer_replay(&self, events: &[Arc<Event>]) -> u64 {
        let mut dropped = 0;
        for event in events {
            if let Offer::QueuedDropping(n) = self.offer(event, &MessageText::new(event)) {
                dropped += n;
            }
        }
        if let Some(last) = events.last() {
            let mut st = self.lock();
            st.replayed_through = st.replayed_through.max(last.id.seq);
        }
        dropped
    }

    /// Queues a gap notice (before a replay).
    pub fn push_gap(&self, gap: &Gap) -> Push {
        self.push_control(self.framing.gap(gap))
    }

    /// Events waiting to be written.
    pub fn queued_events(&self) -> usize {
        self.lock().events
    }

    /// How long the queue has been full with nothing taken from it (the
    /// client's socket accepted nothing more); `None` while it is not full
    /// or is being drained.
    pub fn full_for(&self) -> Option<Duration> {
        self.lock().full_since.map(|t| t.elapsed())
    }

    /// Takes what is queued, up to about `max_bytes` (at least one item).
    pub fn poll_batch(&self, cx: &mut Context<'_>, max_bytes: usize) -> Poll<Drained> {
        let mut st = self.lock();
        if st.killed {
            return Poll::Ready(Drained::Killed);
        }
        if st.items.is_empty() && st.pong.is_none() {
            if st.closed && !st.aborted {
                return Poll::Ready(Drained::End);
            }
            match &st.waker {
                Some(w) if w.will_wake(cx.waker()) => {}
                _ => st.waker = Some(cx.waker().clone()),
            }
            return Poll::Pending;
        }
        st.full_since = None;
        let mut batch = Batch {
            lagged: std::mem::take(&mut st.lagged),
            replayed_through: st.replayed_through,
            items: Vec::with_capacity(st.items.len().min(256) + 1),
        };
        let mut taken = 0usize;
        if let Some(pong) = st.pong.take() {
            taken += pong.len();
            batch.items.push(Item::Control(pong));
        }
        while let Some(item) = st.items.pop_front() {
            let size = match &item {
                Item::Event(e) => {
                    st.events -= 1;
                    st.bytes -= e.size();
                    e.size()
                }
                Item::Control(b) => {
                    st.controls -= 1;
                    st.control_bytes -= b.len();
                    b.len()
                }
            };
            taken += size;
            batch.items.push(item);
            if taken >= max_bytes {
                break;
            }
        }
        Poll::Ready(Drained::Batch(batch))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Level;
    use std::task::Waker;

    fn event(seq: u64, level: Level, message: &str) -> Arc<Event> {
        crate::event::testing::event(seq, "logs:etl:ws1", level, message, 0)
    }

    fn small_outbox() -> Outbox {
        let limits = QueueLimits {
            max_events: 10,
            max_bytes: 1 << 20,
        };
        Outbox::new(limits, Filter::default(), Framing::WebSocket)
    }

    fn offer(outbox: &Outbox, seq: u64, level: Level, message: &str) -> Offer {
        let e = event(seq, level, message);
        outbox.offer(&e, &MessageText::new(&e))
    }

    fn drain(outbox: &Outbox) -> Option<Batch> {
        let mut cx = Context::from_waker(Waker::noop());
        match outbox.poll_batch(&mut cx, usize::MAX) {
            Poll::Ready(Drained::Batch(b)) => Some(b),
            Poll::Ready(Drained::End) => None,
            Poll::Ready(Drained::Killed) => panic!("killed"),
            Poll::Pending => Some(Batch::default()),
        }
    }

    fn seqs(b: &Batch) -> Vec<u64> {
        b.items
            .iter()
            .filter_map(|i| match i {
                Item::Event(e) => Some(e.id.seq),
                Item::Control(_) => None,
            })
            .collect()
    }

    #[test]
    fn drops_oldest_when_full_and_reports_lag_once() {
        let limits = QueueLimits {
            max_events: 3,
            max_bytes: usize::MAX,
        };
        let ob = Outbox::new(limits, Filter::default(), Framing::WebSocket);
        assert_eq!(
            ob.push_control(Bytes::from_static(b": ready\n\n")),
            Push::Queued
        );
        for s in 1..=3 {
            assert_eq!(offer(&ob, s, Level::Info, "x"), Offer::Queued);
        }
        assert_eq!(offer(&ob, 4, Level::Info, "x"), Offer::QueuedDropping(1));
        assert_eq!(offer(&ob, 5, Level::Info, "x"), Offer::QueuedDropping(1));
        let b = drain(&ob).unwrap();
        assert_eq!(b.lagged, 2);
        assert_eq!(seqs(&b), vec![3, 4, 5]);
        assert!(matches!(b.items[0], Item::Control(_)), "control kept");
        assert_eq!(drain(&ob).unwrap().lagged, 0);
    }

    #[test]
    fn full_for_counts_from_the_first_drop_until_a_drain() {
        let limits = QueueLimits {
            max_events: 2,
            max_bytes: usize::MAX,
        };
        let ob = Outbox::new(limits, Filter::default(), Framing::WebSocket);
        offer(&ob, 1, Level::Info, "x");
        offer(&ob, 2, Level::Info, "x");
        assert_eq!(ob.full_for(), None, "full, but nothing refused yet");
        offer(&ob, 3, Level::Info, "x");
        let first = ob.full_for().expect("full since the drop");
        std::thread::sleep(Duration::from_millis(20));
        offer(&ob, 4, Level::Info, "x");
        assert!(
            ob.full_for().unwrap() >= first + Duration::from_millis(20),
            "kept from the first drop"
        );
        drain(&ob);
        assert_eq!(ob.full_for(), None, "a drain is progress");
    }

    #[test]
    fn byte_limit_holds() {
        let one = event(1, Level::Info, "x").size();
        let limits = QueueLimits {
            max_events: 1000,
            max_bytes: one * 2,
        };
        let ob = Outbox::new(limits, Filter::default(), Framing::WebSocket);
        for s in 1..=10 {
            offer(&ob, s, Level::Info, "x");
        }
        assert_eq!(ob.queued_events(), 2);
        assert_eq!(seqs(&drain(&ob).unwrap()), vec![9, 10]);
    }

    #[test]
    fn close_drains_then_ends() {
        let ob = small_outbox();
        offer(&ob, 1, Level::Info, "x");
        ob.close_with(Some(Bytes::from_static(b"event: shutdown\n\n")));
        assert_eq!(offer(&ob, 2, Level::Info, "x"), Offer::Closed);
        assert_eq!(
            ob.push_control(Bytes::from_static(b": late\n\n")),
            Push::Closed
        );
        let b = drain(&ob).unwrap();
        assert_eq!(b.items.len(), 2);
        assert!(drain(&ob).is_none());
    }

    #[test]
    fn keepalive_only_when_idle() {
        let ob = small_outbox();
        assert!(ob.push_control_if_idle(Bytes::from_static(b": k\n\n")));
        assert!(!ob.push_control_if_idle(Bytes::from_static(b": k\n\n")));
    }

    #[test]
    fn control_frames_are_bounded_and_pongs_coalesce() {
        let ob = small_outbox();
        for _ in 0..MAX_CONTROL_FRAMES {
            assert_eq!(ob.push_control(Bytes::from_static(b"x")), Push::Queued);
        }
        assert_eq!(ob.push_control(Bytes::from_static(b"x")), Push::Overflow);
        let big = Bytes::from(vec![0u8; MAX_CONTROL_BYTES]);
        // Draining frees the budget, by count and by bytes.
        assert_eq!(drain(&ob).unwrap().items.len(), MAX_CONTROL_FRAMES);
        assert_eq!(ob.push_control(big.clone()), Push::Queued);
        assert_eq!(ob.push_control(Bytes::from_static(b"x")), Push::Overflow);
        drain(&ob);
        // A thousand pings leave one answer, the latest.
        for i in 0..1000u32 {
            ob.set_pong(Bytes::from(i.to_string()));
        }
        let b = drain(&ob).unwrap();
        assert_eq!(b.items.len(), 1);
        assert!(matches!(&b.items[0], Item::Control(p) if &p[..] == b"999"));
    }

    #[test]
    fn abort_drops_the_queue_keeps_the_last_frame_and_waits_for_kill() {
        let ob = small_outbox();
        offer(&ob, 1, Level::Info, "x");
        ob.push_control(Bytes::from_static(b"reply"));
        assert!(ob.abort(Bytes::from_static(b"close")));
        assert!(!ob.abort(Bytes::from_static(b"again")));
        assert_eq!(offer(&ob, 2, Level::Info, "x"), Offer::Closed);
        let b = drain(&ob).unwrap();
        assert_eq!(b.items.len(), 1);
        assert!(matches!(&b.items[0], Item::Control(c) if &c[..] == b"close"));
        // Not the end of the stream: the client is to hang up first...
        let mut cx = Context::from_waker(Waker::noop());
        assert!(ob.poll_batch(&mut cx, usize::MAX).is_pending());
        // ...or be dropped.
        ob.kill();
        assert!(matches!(
            ob.poll_batch(&mut cx, usize::MAX),
            Poll::Ready(Drained::Killed)
        ));
    }
}

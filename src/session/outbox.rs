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
//! writes many frames per syscall instead of one.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use bytes::Bytes;

use crate::event::{Event, Gap, Level};

/// How much a session may hold for a client that is not reading.
#[derive(Debug, Clone, Copy)]
pub struct QueueLimits {
    pub max_events: usize,
    pub max_bytes: usize,
}

/// What a session wants to see of its channels' traffic. Applied when the
/// registry offers an event, so filtered events never occupy the queue.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Keep events at or above this level.
    pub min_level: Option<Level>,
    /// Keep events whose message contains this text, compared in lower case.
    pub query: Option<Box<str>>,
}

impl Filter {
    pub fn new(min_level: Option<Level>, query: Option<&str>) -> Self {
        Filter {
            min_level,
            query: query
                .filter(|q| !q.is_empty())
                .map(|q| q.to_lowercase().into_boxed_str()),
        }
    }

    pub fn accepts(&self, event: &Event) -> bool {
        if self.min_level.is_some_and(|min| event.level < min) {
            return false;
        }
        match &self.query {
            None => true,
            Some(q) if event.message.is_ascii() && q.is_ascii() => event
                .message
                .as_bytes()
                .windows(q.len())
                .any(|w| w.eq_ignore_ascii_case(q.as_bytes())),
            Some(q) => event.message.to_lowercase().contains(&**q),
        }
    }
}

/// One thing queued for the client.
#[derive(Debug, Clone)]
pub enum Item {
    Event(Arc<Event>),
    /// A transport-level frame already encoded by the session (ready,
    /// keepalive, shutdown). Control frames are few and never dropped.
    Control(Bytes),
    /// History could not cover a resume; the transport words the notice.
    Gap(Box<Gap>),
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
    /// Dropped since the client last read; reported as `lag`.
    lagged: u64,
    closed: bool,
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

/// A batch handed to the transport.
#[derive(Debug, Default)]
pub struct Batch {
    /// Events lost since the previous batch; the transport reports them first.
    pub lagged: u64,
    pub items: Vec<Item>,
}

#[derive(Debug)]
pub struct Outbox {
    state: Mutex<State>,
    limits: QueueLimits,
    filter: Filter,
}

impl Outbox {
    pub fn new(limits: QueueLimits, filter: Filter) -> Self {
        Outbox {
            state: Mutex::new(State::default()),
            limits,
            filter,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding this lock leaves only pointers half-moved;
        // the queue is still a valid queue, so keep serving.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Offers an event; never blocks beyond the queue's short lock.
    pub fn offer(&self, event: &Arc<Event>) -> Offer {
        if !self.filter.accepts(event) {
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
        wake(st);
        if dropped > 0 {
            Offer::QueuedDropping(dropped)
        } else {
            Offer::Queued
        }
    }

    /// Queues a control frame unless the outbox is closed.
    pub fn push_control(&self, frame: Bytes) -> bool {
        let mut st = self.lock();
        if st.closed {
            return false;
        }
        st.items.push_back(Item::Control(frame));
        wake(st);
        true
    }

    /// Queues a control frame only when nothing is waiting: a keepalive is
    /// pointless behind data, and must not pile up behind a stalled reader.
    pub fn push_control_if_idle(&self, frame: Bytes) -> bool {
        let mut st = self.lock();
        if st.closed || !st.items.is_empty() {
            return false;
        }
        st.items.push_back(Item::Control(frame));
        wake(st);
        true
    }

    /// Queues a last frame and closes: the transport drains what is queued,
    /// then ends the stream. Later offers are refused.
    pub fn close_with(&self, last: Option<Bytes>) {
        let mut st = self.lock();
        if st.closed {
            return;
        }
        if let Some(frame) = last {
            st.items.push_back(Item::Control(frame));
        }
        st.closed = true;
        wake(st);
    }

    pub fn limits(&self) -> QueueLimits {
        self.limits
    }

    /// Queues a gap notice (before a replay); never dropped.
    pub fn push_gap(&self, gap: Gap) -> bool {
        let mut st = self.lock();
        if st.closed {
            return false;
        }
        st.items.push_back(Item::Gap(Box::new(gap)));
        wake(st);
        true
    }

    pub fn is_closed(&self) -> bool {
        self.lock().closed
    }

    /// Events waiting to be written.
    pub fn queued_events(&self) -> usize {
        self.lock().events
    }

    /// Takes what is queued, up to about `max_bytes` (at least one item).
    /// `Ready(None)` once the outbox is closed and empty.
    pub fn poll_batch(&self, cx: &mut Context<'_>, max_bytes: usize) -> Poll<Option<Batch>> {
        let mut st = self.lock();
        if st.items.is_empty() {
            if st.closed {
                return Poll::Ready(None);
            }
            match &st.waker {
                Some(w) if w.will_wake(cx.waker()) => {}
                _ => st.waker = Some(cx.waker().clone()),
            }
            return Poll::Pending;
        }
        let mut batch = Batch {
            lagged: std::mem::take(&mut st.lagged),
            items: Vec::with_capacity(st.items.len().min(256)),
        };
        let mut taken = 0usize;
        while let Some(item) = st.items.pop_front() {
            let size = match &item {
                Item::Event(e) => {
                    st.events -= 1;
                    st.bytes -= e.size();
                    e.size()
                }
                Item::Control(b) => b.len(),
                Item::Gap(_) => 64,
            };
            taken += size;
            batch.items.push(item);
            if taken >= max_bytes {
                break;
            }
        }
        Poll::Ready(Some(batch))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channel::ChannelName;
    use crate::event::{EventBody, EventId, NewEvent};
    use std::task::Waker;

    fn event(seq: u64, level: Level, message: &str) -> Arc<Event> {
        let channel = ChannelName::parse("logs:etl:ws1").unwrap();
        let body = EventBody {
            channel: channel.as_str(),
            service: "etl",
            workspace_id: Some("ws1"),
            resource_id: None,
            level,
            message,
            timestamp: "2025-09-25T10:30:00Z",
            received_at: "2025-09-25T10:30:00Z",
            stream: None,
            source: None,
            meta: None,
        };
        Event::encode(
            EventId { epoch: 1, seq },
            NewEvent::new(channel.clone(), level, Default::default(), &body),
        )
    }

    fn drain(outbox: &Outbox) -> Option<Batch> {
        let mut cx = Context::from_waker(Waker::noop());
        match outbox.poll_batch(&mut cx, usize::MAX) {
            Poll::Ready(b) => b,
            Poll::Pending => Some(Batch::default()),
        }
    }

    fn seqs(b: &Batch) -> Vec<u64> {
        b.items
            .iter()
            .filter_map(|i| match i {
                Item::Event(e) => Some(e.id.seq),
                Item::Control(_) | Item::Gap(_) => None,
            })
            .collect()
    }

    #[test]
    fn drops_oldest_when_full_and_reports_lag_once() {
        let limits = QueueLimits {
            max_events: 3,
            max_bytes: usize::MAX,
        };
        let ob = Outbox::new(limits, Filter::default());
        assert!(ob.push_control(Bytes::from_static(b": ready\n\n")));
        for s in 1..=3 {
            assert_eq!(ob.offer(&event(s, Level::Info, "x")), Offer::Queued);
        }
        assert_eq!(
            ob.offer(&event(4, Level::Info, "x")),
            Offer::QueuedDropping(1)
        );
        assert_eq!(
            ob.offer(&event(5, Level::Info, "x")),
            Offer::QueuedDropping(1)
        );
        let b = drain(&ob).unwrap();
        assert_eq!(b.lagged, 2);
        assert_eq!(seqs(&b), vec![3, 4, 5]);
        assert!(matches!(b.items[0], Item::Control(_)), "control kept");
        assert_eq!(drain(&ob).unwrap().lagged, 0);
    }

    #[test]
    fn byte_limit_holds() {
        let one = event(1, Level::Info, "x").size();
        let limits = QueueLimits {
            max_events: 1000,
            max_bytes: one * 2,
        };
        let ob = Outbox::new(limits, Filter::default());
        for s in 1..=10 {
            ob.offer(&event(s, Level::Info, "x"));
        }
        assert_eq!(ob.queued_events(), 2);
        assert_eq!(seqs(&drain(&ob).unwrap()), vec![9, 10]);
    }

    #[test]
    fn filter_by_level_and_text() {
        let f = Filter::new(Some(Level::Warn), Some("DiSk"));
        assert!(f.accepts(&event(1, Level::Error, "disk full")));
        assert!(!f.accepts(&event(2, Level::Info, "disk full")));
        assert!(!f.accepts(&event(3, Level::Fatal, "cpu hot")));
        let f = Filter::new(None, Some("ÉTÉ"));
        assert!(f.accepts(&event(4, Level::Info, "l'été est là")));
        assert!(Filter::new(None, Some("")).accepts(&event(5, Level::Trace, "a")));
    }

    #[test]
    fn close_drains_then_ends() {
        let ob = Outbox::new(
            QueueLimits {
                max_events: 10,
                max_bytes: 1 << 20,
            },
            Filter::default(),
        );
        ob.offer(&event(1, Level::Info, "x"));
        ob.close_with(Some(Bytes::from_static(b"event: shutdown\n\n")));
        assert_eq!(ob.offer(&event(2, Level::Info, "x")), Offer::Closed);
        assert!(!ob.push_control(Bytes::from_static(b": late\n\n")));
        let b = drain(&ob).unwrap();
        assert_eq!(b.items.len(), 2);
        assert!(drain(&ob).is_none());
    }

    #[test]
    fn keepalive_only_when_idle() {
        let ob = Outbox::new(
            QueueLimits {
                max_events: 10,
                max_bytes: 1 << 20,
            },
            Filter::default(),
        );
        assert!(ob.push_control_if_idle(Bytes::from_static(b": k\n\n")));
        assert!(!ob.push_control_if_idle(Bytes::from_static(b": k\n\n")));
    }
}

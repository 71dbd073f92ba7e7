//! Reading history: the replay a resuming session gets, and the pages of
//! `GET /api/logs/history`.
//!
//! Both merge the id-ordered rings of the channels their patterns reach
//! (found through the channel tree), so their cost is the channels touched
//! plus the events returned, never the size of history: a replay walks
//! back from the newest events and stops at what the session's queue can
//! hold; a page walks forward from its cursor (or backward, for the newest
//! lines) and stops at its limit, or after [`SCAN_BUDGET`] events whatever
//! the filters rejected, handing back a cursor to continue from. That bound is what keeps a selective query
//! from holding the history lock (and so the registry) for long.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::Arc;

use super::{ChannelHistory, History};
use crate::channel::{ChannelName, ChannelPattern};
use crate::delivery::filter::{Filter, MessageText};
use crate::event::{Event, EventId, Gap, GapReason};

/// Most events one history page looks at. A page whose filters reject
/// more than this returns what it found so far (possibly nothing) with a
/// cursor after the last event looked at; the next page continues there.
pub const SCAN_BUDGET: usize = 20_000;

/// Events to replay on resume, oldest first, and the gap before them.
#[derive(Debug, Default)]
pub struct Replay {
    pub events: Vec<Arc<Event>>,
    pub gap: Option<Gap>,
}

/// A REST history query.
#[derive(Debug, Clone)]
pub struct HistoryQuery {
    pub patterns: Vec<ChannelPattern>,
    pub filter: Filter,
    /// Event `timestamp` bounds, Unix ms, inclusive.
    pub since_ms: Option<i64>,
    pub until_ms: Option<i64>,
    pub direction: Direction,
    pub limit: usize,
}

/// Which end of history a page starts from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// The oldest events after this sequence (0: from the start).
    After(u64),
    /// The newest events before this sequence (`None`: up to the newest).
    Before(Option<u64>),
}

impl HistoryQuery {
    fn accepts(&self, e: &Event) -> bool {
        self.since_ms.is_none_or(|s| e.times.timestamp_ms >= s)
            && self.until_ms.is_none_or(|u| e.times.timestamp_ms <= u)
            && self.filter.accepts(&MessageText::new(e))
    }
}

/// One page of history, oldest first.
#[derive(Debug, Default)]
pub struct HistoryPage {
    pub events: Vec<Arc<Event>>,
    /// Reading forward: set when history may hold more matching events
    /// after this page.
    pub next_cursor: Option<EventId>,
    /// Reading backward: set when history may hold more matching events
    /// before this page.
    pub prev_cursor: Option<EventId>,
}

/// A position in one touched channel's ring, ordered by the event's
/// sequence first.
type Cursor = (u64, usize, usize);

impl History {
    /// The channels `patterns` reach, each once.
    fn touched(&self, patterns: &[ChannelPattern]) -> Vec<&ChannelHistory> {
        let mut names: Vec<&ChannelName> = Vec::new();
        for p in patterns {
            self.tree.for_each_match(p, |c| names.push(c));
        }
        // Overlapping patterns reach some channels twice.
        names.sort_unstable();
        names.dedup();
        names
            .into_iter()
            .filter_map(|n| self.channels.get(n))
            .collect()
    }

    /// What a subscriber resuming after `after` (a sequence of this run) on
    /// `patterns` missed, oldest first, at most `max_events` and
    /// `max_bytes` of the newest; with the gap before them if history no
    /// longer reaches back to `after`.
    pub fn replay(
        &self,
        patterns: &[ChannelPattern],
        after: u64,
        max_events: usize,
        max_bytes: usize,
    ) -> Replay {
        let channels = self.touched(patterns);
        let mut trimmed = self.evicted_channels_through > after;
        let mut missed = 0usize;
        let mut starts = Vec::with_capacity(channels.len());
        // Newest first: a max-heap of each channel's newest unreplayed event.
        let mut heap: BinaryHeap<Cursor> = BinaryHeap::with_capacity(channels.len());
        for (i, ch) in channels.iter().enumerate() {
            trimmed |= ch.evicted_through > after;
            let start = ch.events.partition_point(|e| e.id.seq <= after);
            starts.push(start);
            missed += ch.events.len() - start;
            if let Some(last) = ch.events.back().filter(|_| start < ch.events.len()) {
                heap.push((last.id.seq, i, ch.events.len() - 1));
            }
        }
        let mut events = Vec::new();
        let mut bytes = 0usize;
        while let Some((_, i, pos)) = heap.pop() {
            let e = &channels[i].events[pos];
            if events.len() == max_events || bytes + e.size() > max_bytes {
                break;
            }
            bytes += e.size();
            events.push(Arc::clone(e));
            if pos > starts[i] {
                heap.push((channels[i].events[pos - 1].id.seq, i, pos - 1));
            }
        }
        events.reverse();
        let cut = missed - events.len();
        let gap = if cut > 0 {
            Some(Gap {
                reason: GapReason::ReplayTruncated,
                lost: (!trimmed).then_some(cut as u64),
                resumed_from: events.first().map(|e| e.id),
                origin: None,
            })
        } else if trimmed {
            Some(Gap {
                reason: GapReason::HistoryTrimmed,
                lost: None,
                resumed_from: events.first().map(|e| e.id),
                origin: None,
            })
        } else {
            None
        };
        Replay { events, gap }
    }

    /// One page of events matching `q`, oldest first: the first `limit`
    /// after a cursor, or the last `limit` before one.
    /// The event `seq`, if a channel `patterns` reach holds it, with up to
    /// `before` and `after` events of its channel around it, oldest first,
    /// and its index among them. A binary search per channel touched.
    pub fn around(
        &self,
        patterns: &[ChannelPattern],
        seq: u64,
        before: usize,
        after: usize,
    ) -> Option<(Vec<Arc<Event>>, usize)> {
        self.touched(patterns).into_iter().find_map(|ch| {
            let at = ch.events.binary_search_by_key(&seq, |e| e.id.seq).ok()?;
            let from = at.saturating_sub(before);
            let to = (at + after + 1).min(ch.events.len());
            Some((ch.events.range(from..to).cloned().collect(), at - from))
        })
    }

    pub fn query(&self, q: &HistoryQuery) -> HistoryPage {
        let channels = self.touched(&q.patterns);
        match q.direction {
            Direction::After(after) => forward(&channels, q, after),
            Direction::Before(before) => backward(&channels, q, before),
        }
    }
}

/// Oldest first from `after`: a min-heap of each channel's next event.
fn forward(channels: &[&ChannelHistory], q: &HistoryQuery, after: u64) -> HistoryPage {
    let mut heap: BinaryHeap<Reverse<Cursor>> = BinaryHeap::with_capacity(channels.len());
    for (i, ch) in channels.iter().enumerate() {
        let start = ch.events.partition_point(|e| e.id.seq <= after);
        if let Some(e) = ch.events.get(start) {
            heap.push(Reverse((e.id.seq, i, start)));
        }
    }
    let mut page = HistoryPage::default();
    let mut scan = Scan::default();
    while let Some(Reverse((_, i, pos))) = heap.pop() {
        let ring = &channels[i].events;
        if let Some(next) = ring.get(pos + 1) {
            heap.push(Reverse((next.id.seq, i, pos + 1)));
        }
        match scan.look(&ring[pos], q, &mut page.events) {
            Step::Go => {}
            Step::Full => {
                page.next_cursor = page.events.last().map(|e| e.id);
                break;
            }
            Step::OutOfBudget => {
                page.next_cursor = scan.last_examined;
                break;
            }
        }
    }
    page
}

/// Newest first from `before`, then reversed: a max-heap of each channel's
/// previous event.
fn backward(channels: &[&ChannelHistory], q: &HistoryQuery, before: Option<u64>) -> HistoryPage {
    let mut heap: BinaryHeap<Cursor> = BinaryHeap::with_capacity(channels.len());
    for (i, ch) in channels.iter().enumerate() {
        let end = before.map_or(ch.events.len(), |b| {
            ch.events.partition_point(|e| e.id.seq < b)
        });
        if let Some(pos) = end.checked_sub(1) {
            heap.push((ch.events[pos].id.seq, i, pos));
        }
    }
    let mut page = HistoryPage::default();
    let mut scan = Scan::default();
    while let Some((_, i, pos)) = heap.pop() {
        let ring = &channels[i].events;
        if let Some(prev) = pos.checked_sub(1) {
            heap.push((ring[prev].id.seq, i, prev));
        }
        match scan.look(&ring[pos], q, &mut page.events) {
            Step::Go => {}
            Step::Full => {
                page.prev_cursor = page.events.last().map(|e| e.id);
                break;
            }
            Step::OutOfBudget => {
                page.prev_cursor = scan.last_examined;
                break;
            }
        }
    }
    page.events.reverse();
    page
}

/// The work of one page: events looked at, against [`SCAN_BUDGET`].
#[derive(Default)]
struct Scan {
    examined: usize,
    last_examined: Option<EventId>,
}

enum Step {
    /// Keep going.
    Go,
    /// The page is full and a matching event follows it.
    Full,
    /// The budget is spent before this event; continue from the last one
    /// looked at.
    OutOfBudget,
}

impl Scan {
    /// Looks at `e`: takes it into `events` if `q` accepts it and there is
    /// room.
    fn look(&mut self, e: &Arc<Event>, q: &HistoryQuery, events: &mut Vec<Arc<Event>>) -> Step {
        if self.examined == SCAN_BUDGET {
            return Step::OutOfBudget;
        }
        self.examined += 1;
        if !q.accepts(e) {
            self.last_examined = Some(e.id);
            return Step::Go;
        }
        if events.len() == q.limit {
            return Step::Full;
        }
        events.push(Arc::clone(e));
        self.last_examined = Some(e.id);
        Step::Go
    }
}

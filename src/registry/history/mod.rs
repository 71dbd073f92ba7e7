//! History: the recent events of each channel, already encoded, for resume
//! (`Last-Event-ID`) and the REST history endpoint.
//!
//! The registry is its only writer; the history endpoint reads it directly
//! through [`SharedHistory`] (a read-write lock), so a history query never
//! waits in, or occupies, the registry's mailbox. Readers hold the lock
//! only for a bounded amount of work (see [`read`]), and the lock prefers
//! writers, so the registry waits at most that long.
//!
//! Memory stays bounded at any publish rate by four limits, all enforced on
//! every push: entries per channel (`LOG_BUFFER_MAX_ENTRIES`), age
//! (`LOG_BUFFER_MAX_AGE_MINUTES`, also swept periodically), a byte budget
//! for all channels, and a channel count. The last two evict whole
//! least-recently-published channels first, so busy channels keep their
//! history. Every eviction raises a watermark (per channel, or global for
//! whole channels) so that a resume from before it is told about the gap
//! instead of silently missing events. Each channel's events are in id
//! order, and a trie of channel names (`tree`) finds the channels a pattern
//! reaches, so reads merge the channels they touch instead of scanning and
//! sorting everything.
//!
//! The same trie is the channel directory that `GET /api/logs/channels`
//! pages through ([`list`]): it also holds the channels that have
//! subscribers but no history, with the number of sessions subscribed to
//! each by name, which the registry keeps current on every subscribe and
//! leave. Those entries are bounded by the sessions' own limits
//! (connections times channels per connection).

pub mod list;
pub mod read;
mod tree;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use crate::channel::ChannelName;
pub use crate::event::Gap;
use crate::event::{Event, GapReason};
pub use list::{ChannelInfo, ChannelPage, LIST_BUDGET};
pub use read::{Direction, HistoryPage, HistoryQuery, Replay};
use tree::ChannelTree;

/// How much history is kept.
#[derive(Debug, Clone, Copy)]
pub struct HistoryLimits {
    pub max_entries_per_channel: usize,
    pub max_age_ms: i64,
    pub max_bytes: usize,
    pub max_channels: usize,
}

impl From<&crate::config::HistoryConfig> for HistoryLimits {
    fn from(h: &crate::config::HistoryConfig) -> Self {
        HistoryLimits {
            max_entries_per_channel: h.max_entries,
            max_age_ms: (h.max_age_minutes() as i64).saturating_mul(60_000),
            max_bytes: h.max_bytes,
            max_channels: h.max_channels,
        }
    }
}

#[derive(Debug, Default)]
struct ChannelHistory {
    /// Oldest first, so in id order.
    events: VecDeque<Arc<Event>>,
    /// Highest sequence evicted from this channel (0: none).
    evicted_through: u64,
    last_seq: u64,
}

/// Sizes, for stats and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct HistoryStats {
    pub events: usize,
    pub bytes: usize,
    pub channels: usize,
}

#[derive(Debug)]
pub struct History {
    channels: HashMap<ChannelName, ChannelHistory>,
    /// The same channels, by segment, for pattern lookups.
    tree: ChannelTree,
    /// Channels by their last sequence, least recently published first.
    lru: BTreeMap<u64, ChannelName>,
    events: usize,
    bytes: usize,
    limits: HistoryLimits,
    /// Highest sequence of any channel evicted as a whole: a resume from
    /// before it may have lost events on a channel no longer tracked.
    evicted_channels_through: u64,
    /// Cluster losses told to live subscribers, oldest first, so that a
    /// subscriber who was away then is told on resume too.
    losses: VecDeque<LossMark>,
    /// The newest `after_seq` of a mark dropped to stay within
    /// [`MAX_LOSS_MARKS`] (0: none).
    losses_forgotten_through: u64,
}

/// Most cluster losses history remembers for resuming subscribers.
pub const MAX_LOSS_MARKS: usize = 1024;

/// A cluster loss noticed when this node's newest event was `after_seq`.
#[derive(Debug, Clone)]
struct LossMark {
    after_seq: u64,
    origin: Box<str>,
    lost: u64,
    at_ms: i64,
}

/// History shared between its writer (the registry) and its readers.
#[derive(Debug, Clone)]
pub struct SharedHistory(Arc<RwLock<History>>);

impl SharedHistory {
    pub fn new(limits: HistoryLimits) -> Self {
        SharedHistory(Arc::new(RwLock::new(History::new(limits))))
    }

    // A panic while holding the lock cannot leave the rings half-updated in
    // a way that breaks readers (counters at worst), so keep serving.
    pub fn read(&self) -> RwLockReadGuard<'_, History> {
        self.0.read().unwrap_or_else(|e| e.into_inner())
    }

    pub fn write(&self) -> RwLockWriteGuard<'_, History> {
        self.0.write().unwrap_or_else(|e| e.into_inner())
    }
}

impl History {
    pub fn new(limits: HistoryLimits) -> Self {
        History {
            channels: HashMap::new(),
            tree: ChannelTree::default(),
            lru: BTreeMap::new(),
            events: 0,
            bytes: 0,
            limits,
            evicted_channels_through: 0,
            losses: VecDeque::new(),
            losses_forgotten_through: 0,
        }
    }

    /// What this history was made with.
    pub fn limits(&self) -> HistoryLimits {
        self.limits
    }

    /// Forgets every event, loss and watermark (the cluster stream
    /// started over), keeping who is subscribed to which channel.
    pub fn start_over(&mut self) {
        let subscribed = self.tree.subscribed();
        *self = History::new(self.limits);
        for (name, sessions) in subscribed {
            self.tree.set_subscribers(&name, sessions);
        }
    }

    /// History does not reach back to `seq` or before (a node that began
    /// reading a stream part way): a resume from there is told so.
    pub fn forget_through(&mut self, seq: u64) {
        self.evicted_channels_through = self.evicted_channels_through.max(seq);
    }

    /// Remembers that `lost` events of `origin` never arrived, noticed when
    /// this node's newest event was `after_seq`.
    pub fn note_loss(&mut self, after_seq: u64, origin: &str, lost: u64, now_ms: i64) {
        if self.losses.len() == MAX_LOSS_MARKS
            && let Some(old) = self.losses.pop_front()
        {
            self.losses_forgotten_through = old.after_seq;
        }
        self.losses.push_back(LossMark {
            after_seq,
            origin: origin.into(),
            lost,
            at_ms: now_ms,
        });
    }

    /// The cluster losses a subscriber whose last event was `after` may
    /// not have been told of, one notice per origin (a subscriber that
    /// was still connected at the loss hears of it twice at worst, never
    /// not at all). A resume from before what was forgotten gets one
    /// notice without a count.
    pub fn losses_since(&self, after: u64) -> Vec<Gap> {
        let mut by_origin: Vec<(&str, u64)> = Vec::new();
        for mark in self.losses.iter().filter(|m| m.after_seq >= after) {
            match by_origin.iter_mut().find(|(o, _)| *o == &*mark.origin) {
                Some((_, n)) => *n += mark.lost,
                None => by_origin.push((&mark.origin, mark.lost)),
            }
        }
        let mut gaps: Vec<Gap> = by_origin
            .into_iter()
            .map(|(origin, lost)| Gap {
                reason: GapReason::ClusterLoss,
                lost: Some(lost),
                resumed_from: None,
                origin: Some(origin.to_owned()),
            })
            .collect();
        if self.losses_forgotten_through >= after && self.losses_forgotten_through > 0 {
            gaps.push(Gap {
                reason: GapReason::ClusterLoss,
                lost: None,
                resumed_from: None,
                origin: None,
            });
        }
        gaps
    }

    pub fn stats(&self) -> HistoryStats {
        HistoryStats {
            events: self.events,
            bytes: self.bytes,
            channels: self.channels.len(),
        }
    }

    /// Appends an accepted event and enforces every limit.
    pub fn push(&mut self, event: &Arc<Event>, now_ms: i64) {
        let seq = event.id.seq;
        let channel = &event.channel;
        let ch = match self.channels.get_mut(channel) {
            Some(ch) => ch,
            None => {
                self.tree.set_history(channel, true);
                self.channels.entry(channel.clone()).or_default()
            }
        };
        if ch.last_seq != 0 {
            self.lru.remove(&ch.last_seq);
        }
        ch.last_seq = seq;
        ch.events.push_back(Arc::clone(event));
        self.lru.insert(seq, channel.clone());
        self.events += 1;
        self.bytes += event.size();
        self.trim_channel(channel, now_ms);
        while self.bytes > self.limits.max_bytes || self.channels.len() > self.limits.max_channels {
            if !self.evict_least_recent() {
                break;
            }
        }
    }

    /// Drops events older than the age limit from every channel; the
    /// registry calls it periodically so quiet channels age out too.
    pub fn expire(&mut self, now_ms: i64) {
        let oldest_allowed = now_ms.saturating_sub(self.limits.max_age_ms);
        // A loss older than history's age limit concerns events a resume
        // could not have replayed anyway (the replay says so).
        while self
            .losses
            .front()
            .is_some_and(|m| m.at_ms < oldest_allowed)
        {
            self.losses.pop_front();
        }
        let names: Vec<ChannelName> = self
            .channels
            .iter()
            .filter(|(_, ch)| {
                ch.events
                    .front()
                    .is_some_and(|e| e.times.received_ms < oldest_allowed)
            })
            .map(|(name, _)| name.clone())
            .collect();
        for name in names {
            self.trim_channel(&name, now_ms);
        }
    }

    /// Enforces the per-channel entry and age limits on one channel.
    fn trim_channel(&mut self, name: &ChannelName, now_ms: i64) {
        let Some(ch) = self.channels.get_mut(name) else {
            return;
        };
        let oldest_allowed = now_ms.saturating_sub(self.limits.max_age_ms);
        while let Some(front) = ch.events.front() {
            let too_many = ch.events.len() > self.limits.max_entries_per_channel;
            if !too_many && front.times.received_ms >= oldest_allowed {
                break;
            }
            ch.evicted_through = front.id.seq;
            self.events -= 1;
            self.bytes -= front.size();
            ch.events.pop_front();
        }
        if ch.events.is_empty() {
            // Nothing left to replay: forget the channel, keeping its
            // eviction watermark in the global one.
            let last = ch.last_seq;
            self.evicted_channels_through = self.evicted_channels_through.max(ch.evicted_through);
            self.lru.remove(&last);
            self.channels.remove(name);
            self.tree.set_history(name, false);
        }
    }

    fn evict_least_recent(&mut self) -> bool {
        let Some((_, name)) = self.lru.pop_first() else {
            return false;
        };
        if let Some(ch) = self.channels.remove(&name) {
            self.tree.set_history(&name, false);
            self.events -= ch.events.len();
            self.bytes -= ch.events.iter().map(|e| e.size()).sum::<usize>();
            self.evicted_channels_through = self.evicted_channels_through.max(ch.last_seq);
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channel::ChannelPattern;
    use crate::delivery::filter::Filter;
    use crate::event::Level;

    fn event(seq: u64, channel: &str, received_ms: i64) -> Arc<Event> {
        crate::event::testing::event(seq, channel, Level::Info, "m", received_ms)
    }

    fn limits() -> HistoryLimits {
        HistoryLimits {
            max_entries_per_channel: 5,
            max_age_ms: 60_000,
            max_bytes: usize::MAX,
            max_channels: 100,
        }
    }

    fn pats(list: &[&str]) -> Vec<ChannelPattern> {
        list.iter()
            .map(|p| ChannelPattern::parse(p).unwrap())
            .collect()
    }

    fn seqs(events: &[Arc<Event>]) -> Vec<u64> {
        events.iter().map(|e| e.id.seq).collect()
    }

    #[test]
    fn replay_merges_channels_in_id_order() {
        let mut h = History::new(limits());
        for seq in 1..=6 {
            let ch = if seq % 2 == 0 {
                "logs:etl:a"
            } else {
                "logs:etl:b"
            };
            h.push(&event(seq, ch, 0), 0);
        }
        h.push(&event(7, "logs:faas:a", 0), 0);
        let r = h.replay(&pats(&["logs:etl"]), 2, 100, usize::MAX);
        assert_eq!(seqs(&r.events), vec![3, 4, 5, 6]);
        assert_eq!(r.gap, None);
        assert!(
            h.replay(&pats(&["logs:etl"]), 6, 100, usize::MAX)
                .events
                .is_empty()
        );
    }

    #[test]
    fn cluster_losses_are_told_to_whoever_resumes_from_before_them() {
        let mut h = History::new(limits());
        h.note_loss(3, "a", 2, 0);
        h.note_loss(5, "a", 1, 0);
        h.note_loss(5, "b", 4, 0);
        let told = |h: &History, after| {
            h.losses_since(after)
                .iter()
                .map(|g| (g.origin.clone().unwrap_or_default(), g.lost))
                .collect::<Vec<_>>()
        };
        let (a, b) = ("a".to_owned(), "b".to_owned());
        assert_eq!(told(&h, 2), [(a.clone(), Some(3)), (b.clone(), Some(4))]);
        assert_eq!(told(&h, 4), [(a, Some(1)), (b, Some(4))]);
        assert_eq!(told(&h, 6), []);
        h.expire(60_001);
        assert_eq!(told(&h, 0), [], "aged out with history");
    }

    #[test]
    fn forgotten_losses_are_still_told_without_a_count() {
        let mut h = History::new(limits());
        for i in 0..=MAX_LOSS_MARKS as u64 {
            h.note_loss(i + 1, "a", 1, 0);
        }
        let gaps = h.losses_since(1);
        assert_eq!(gaps.len(), 2);
        assert_eq!(gaps[0].lost, Some(MAX_LOSS_MARKS as u64));
        assert_eq!((gaps[1].lost, gaps[1].origin.as_deref()), (None, None));
        assert_eq!(h.losses_since(3).len(), 1);
    }

    #[test]
    fn trimmed_history_reports_a_gap() {
        let mut h = History::new(limits());
        for seq in 1..=8 {
            h.push(&event(seq, "logs:etl:a", 0), 0);
        }
        // 5 kept (4..=8): resuming after 1 lost 2 and 3.
        let r = h.replay(&pats(&["logs:etl:a"]), 1, 100, usize::MAX);
        assert_eq!(seqs(&r.events), vec![4, 5, 6, 7, 8]);
        assert_eq!(
            r.gap.as_ref().map(|g| g.reason.as_str()),
            Some("history_trimmed")
        );
        assert_eq!(r.gap.unwrap().resumed_from.map(|i| i.seq), Some(4));
        // Resuming after 3 lost nothing.
        assert_eq!(
            h.replay(&pats(&["logs:etl:a"]), 3, 100, usize::MAX).gap,
            None
        );
    }

    #[test]
    fn replay_is_capped_to_the_newest_with_a_counted_gap() {
        let mut h = History::new(limits());
        for seq in 1..=5 {
            h.push(&event(seq, "logs:etl:a", 0), 0);
        }
        let r = h.replay(&pats(&["logs:etl:a"]), 0, 2, usize::MAX);
        assert_eq!(seqs(&r.events), vec![4, 5]);
        let gap = r.gap.unwrap();
        assert_eq!(
            (gap.reason.as_str(), gap.lost),
            ("replay_truncated", Some(3))
        );
    }

    #[test]
    fn age_limit_and_sweep() {
        let mut h = History::new(limits());
        h.push(&event(1, "logs:etl:old", 0), 0);
        h.push(&event(2, "logs:etl:new", 50_000), 50_000);
        h.expire(70_000);
        assert_eq!(h.stats().events, 1);
        assert_eq!(h.stats().channels, 1, "an emptied channel is forgotten");
        let r = h.replay(&pats(&["logs:etl"]), 0, 100, usize::MAX);
        assert_eq!(seqs(&r.events), vec![2]);
        assert!(r.gap.is_some(), "the expired event is a gap");
    }

    #[test]
    fn byte_and_channel_budgets_evict_least_recent_channels() {
        let one = event(1, "logs:etl:c0", 0).size();
        let mut h = History::new(HistoryLimits {
            max_entries_per_channel: 1000,
            max_age_ms: i64::MAX,
            max_bytes: one * 10,
            max_channels: 3,
        });
        for seq in 1..=1000u64 {
            h.push(&event(seq, &format!("logs:etl:c{}", seq % 7), 0), 0);
            let s = h.stats();
            assert!(s.bytes <= one * 10 && s.channels <= 3, "{s:?}");
        }
        assert_eq!(h.lru.len(), h.channels.len());
        // The most recently published channel is kept, with no gap for a
        // resume that only missed its newest event...
        let r = h.replay(&pats(&["logs:etl:c6"]), 999, 100, usize::MAX);
        assert_eq!((seqs(&r.events), r.gap), (vec![1000], None));
        // ...while a resume from before evictions learns it lost events.
        let r = h.replay(&pats(&["logs:etl:c6"]), 990, 100, usize::MAX);
        assert_eq!(seqs(&r.events), vec![1000]);
        assert_eq!(r.gap.map(|g| g.reason.as_str()), Some("history_trimmed"));
    }

    #[test]
    fn query_pages_with_a_cursor_and_filters() {
        let mut h = History::new(limits());
        for seq in 1..=5 {
            h.push(
                &event(seq, "logs:etl:a", seq as i64 * 1000),
                seq as i64 * 1000,
            );
        }
        let mut q = HistoryQuery {
            patterns: pats(&["logs:*"]),
            filter: Filter::default(),
            since_ms: Some(2000),
            until_ms: Some(4000),
            direction: read::Direction::After(0),
            limit: 2,
        };
        let p1 = h.query(&q);
        assert_eq!(seqs(&p1.events), vec![2, 3]);
        q.direction = read::Direction::After(p1.next_cursor.unwrap().seq);
        let p2 = h.query(&q);
        assert_eq!(seqs(&p2.events), vec![4]);
        assert!(p2.next_cursor.is_none());
    }

    #[test]
    fn pages_merge_channels_in_id_order_and_stop_at_the_budget() {
        let mut h = History::new(HistoryLimits {
            max_entries_per_channel: 100_000,
            ..limits()
        });
        // Three channels interleaved; the third is all a filter wants.
        for seq in 1..=(3 * read::SCAN_BUDGET as u64) {
            let ch = ["logs:etl:a", "logs:etl:b", "logs:faas:c"][(seq % 3) as usize];
            h.push(&event(seq, ch, 0), 0);
        }
        let mut q = HistoryQuery {
            patterns: pats(&["logs:etl", "logs:*:a"]),
            filter: Filter::default(),
            since_ms: None,
            until_ms: None,
            direction: read::Direction::After(10),
            limit: 5,
        };
        let p = h.query(&q);
        assert_eq!(seqs(&p.events), vec![12, 13, 15, 16, 18]);
        assert_eq!(p.next_cursor.map(|c| c.seq), Some(18));
        // A filter that matches nothing stops after the budget with a
        // cursor to continue from, instead of scanning everything.
        q.filter = Filter::new(None, Some("no such text"));
        q.direction = read::Direction::After(0);
        let p = h.query(&q);
        assert!(p.events.is_empty());
        let cursor = p.next_cursor.expect("a cursor to continue from").seq;
        assert!(
            cursor > 0 && cursor < 3 * read::SCAN_BUDGET as u64,
            "{cursor}"
        );
        // The rest (another 20,000 of the 40,000 events looked at) fits in
        // one more page, which ends the walk.
        q.direction = read::Direction::After(cursor);
        let p = h.query(&q);
        assert!(p.events.is_empty());
        assert_eq!(p.next_cursor, None);
    }

    #[test]
    fn replay_takes_the_newest_across_channels() {
        let mut h = History::new(HistoryLimits {
            max_entries_per_channel: 1000,
            ..limits()
        });
        for seq in 1..=100 {
            h.push(&event(seq, &format!("logs:etl:c{}", seq % 7), 0), 0);
        }
        let r = h.replay(&pats(&["logs:etl"]), 50, 10, usize::MAX);
        assert_eq!(seqs(&r.events), (91..=100).collect::<Vec<_>>());
        let gap = r.gap.unwrap();
        assert_eq!(
            (gap.reason.as_str(), gap.lost),
            ("replay_truncated", Some(40))
        );
        let one = event(1, "logs:etl:c0", 0).size();
        let r = h.replay(&pats(&["logs:etl:c1", "logs:etl:c2"]), 0, 1000, one * 3);
        assert_eq!(seqs(&r.events), vec![93, 99, 100]);
    }

    #[test]
    fn backward_pages_give_the_newest_first_and_walk_back() {
        let mut h = History::new(limits());
        for seq in 1..=5 {
            h.push(&event(seq, "logs:etl:a", 0), 0);
            h.push(&event(seq + 100, "logs:etl:b", 0), 0);
        }
        let mut q = HistoryQuery {
            patterns: pats(&["logs:etl"]),
            filter: Filter::default(),
            since_ms: None,
            until_ms: None,
            direction: Direction::Before(None),
            limit: 3,
        };
        let p = h.query(&q);
        assert_eq!(
            seqs(&p.events),
            vec![103, 104, 105],
            "the newest, oldest first"
        );
        assert_eq!(p.next_cursor, None);
        let mut cursor = p.prev_cursor.expect("more before").seq;
        assert_eq!(cursor, 103);
        let mut all = seqs(&p.events);
        while let Some(c) = {
            q.direction = Direction::Before(Some(cursor));
            let p = h.query(&q);
            all.splice(0..0, seqs(&p.events));
            p.prev_cursor
        } {
            cursor = c.seq;
        }
        assert_eq!(all, vec![1, 2, 3, 4, 5, 101, 102, 103, 104, 105]);
    }
}

//! Listing channels: the pages of `GET /api/logs/channels`.
//!
//! A page walks the channel directory (`tree`) in its order (segment by
//! segment) from its cursor, only along the patterns it is given (the
//! caller's grants, or a pattern within them), so it never looks at what
//! lies elsewhere: another tenant's channels cost it nothing and cannot
//! show in its answer, its cursor or its time. (Only the level of a `*`
//! before a literal segment is shared: `logs:*:ws1` looks at every service
//! for a `ws1`, and a cursor cut by the budget there names a service.)
//! It stops at its limit, or after [`LIST_BUDGET`] nodes looked at, with a
//! cursor to continue from, so the history lock (and so the registry, its
//! writer) is held for a bounded time whatever the pattern and however many
//! channels there are.

use super::History;
use super::tree::{Take, Walk, Walked};
use crate::channel::{ChannelName, ChannelPattern};

/// Most nodes of the channel directory one page looks at: a full page of
/// 1,000 channels with their workspaces and services fits, with room to
/// spare.
pub const LIST_BUDGET: usize = 10_000;

/// One listed channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelInfo {
    pub channel: ChannelName,
    /// Events history holds of it.
    pub events: usize,
    /// When the gateway received its newest event held, in Unix ms; none
    /// when it holds no history.
    pub newest_ms: Option<i64>,
    /// Sessions subscribed to exactly this channel.
    pub subscribers: u32,
}

/// One page of channels, in the directory's order.
#[derive(Debug, Default)]
pub struct ChannelPage {
    pub channels: Vec<ChannelInfo>,
    /// Where the next page starts (a channel name); none after the last.
    pub next_cursor: Option<String>,
}

impl History {
    /// The channels after `after` that `within` reaches (`None`: every
    /// channel), at most `limit` of them, that hold history or have
    /// subscribers.
    pub fn list_channels(
        &self,
        within: Option<&[ChannelPattern]>,
        after: Option<&ChannelName>,
        limit: usize,
    ) -> ChannelPage {
        let limit = limit.max(1);
        let patterns: Vec<Vec<&str>> = match within {
            None => vec![Vec::new()],
            Some(ps) => ps.iter().map(|p| p.segments().collect()).collect(),
        };
        let after: Vec<&str> = after.map(|a| a.segments().collect()).unwrap_or_default();
        let mut channels = Vec::new();
        let walk = Walk {
            patterns: &patterns,
            after: &after,
            budget: LIST_BUDGET,
        };
        let walked = self.tree.walk(walk, |e| {
            if channels.len() == limit {
                return Take::Enough;
            }
            let held = self.channels.get(&e.name).filter(|_| e.history);
            channels.push(ChannelInfo {
                channel: e.name.clone(),
                events: held.map_or(0, |h| h.events.len()),
                newest_ms: held
                    .and_then(|h| h.events.back())
                    .map(|ev| ev.times.received_ms),
                subscribers: e.subscribers,
            });
            Take::More
        });
        let next_cursor = match walked {
            Walked::All => None,
            Walked::Enough => channels.last().map(|c| c.channel.as_str().to_owned()),
            Walked::Spent(at) => Some(at),
        };
        ChannelPage {
            channels,
            next_cursor,
        }
    }

    /// A session subscribed to `patterns` (`joined`), or no longer: each
    /// distinct pattern that names one channel (no `*`) counts for that
    /// channel. A pattern with `*` names no channel and counts for none.
    pub fn subscribed(&mut self, patterns: &[ChannelPattern], joined: bool) {
        let mut names: Vec<ChannelName> = patterns
            .iter()
            .filter(|p| p.is_literal())
            .filter_map(|p| ChannelName::parse(p.as_str()).ok())
            .collect();
        names.sort_unstable();
        names.dedup();
        for name in &names {
            self.tree.add_subscriber(name, joined);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Level;
    use crate::registry::history::HistoryLimits;

    fn pats(list: &[&str]) -> Vec<ChannelPattern> {
        list.iter()
            .map(|p| ChannelPattern::parse(p).unwrap())
            .collect()
    }

    fn listed(page: &ChannelPage) -> Vec<(&str, usize, Option<i64>, u32)> {
        page.channels
            .iter()
            .map(|c| (c.channel.as_str(), c.events, c.newest_ms, c.subscribers))
            .collect()
    }

    #[test]
    fn history_and_subscribers_are_listed_together_and_forgotten_together() {
        let mut h = History::new(HistoryLimits {
            max_entries_per_channel: 10,
            max_age_ms: 60_000,
            max_bytes: usize::MAX,
            max_channels: 100,
        });
        let push = |h: &mut History, seq: u64, ch: &str, at: i64| {
            h.push(
                &crate::event::testing::event(seq, ch, Level::Info, "m", at),
                at,
            );
        };
        push(&mut h, 1, "logs:etl:ws1", 1000);
        push(&mut h, 2, "logs:etl:ws1", 2000);
        push(&mut h, 3, "logs:etl:ws2", 3000);
        h.subscribed(&pats(&["logs:etl:ws1", "logs:etl:ws1", "logs:*:ws3"]), true);
        h.subscribed(&pats(&["logs:faas:ws1"]), true);
        let page = h.list_channels(None, None, 100);
        assert_eq!(
            listed(&page),
            [
                ("logs:etl:ws1", 2, Some(2000), 1),
                ("logs:etl:ws2", 1, Some(3000), 0),
                ("logs:faas:ws1", 0, None, 1),
            ]
        );
        assert_eq!(page.next_cursor, None);
        let ws1 = pats(&["logs:*:ws1"]);
        let page = h.list_channels(Some(&ws1), None, 1);
        assert_eq!(listed(&page), [("logs:etl:ws1", 2, Some(2000), 1)]);
        assert_eq!(page.next_cursor.as_deref(), Some("logs:etl:ws1"));
        let after = ChannelName::parse("logs:etl:ws1").unwrap();
        let page = h.list_channels(Some(&ws1), Some(&after), 1);
        assert_eq!(listed(&page), [("logs:faas:ws1", 0, None, 1)]);
        assert_eq!(page.next_cursor, None);

        // History ages out; the subscriber keeps its channel listed.
        h.expire(70_000);
        h.subscribed(&pats(&["logs:faas:ws1"]), false);
        assert_eq!(
            listed(&h.list_channels(None, None, 100)),
            [("logs:etl:ws1", 0, None, 1)]
        );
        // Starting over keeps who is subscribed.
        h.start_over();
        assert_eq!(
            listed(&h.list_channels(None, None, 100)),
            [("logs:etl:ws1", 0, None, 1)]
        );
        h.subscribed(&pats(&["logs:etl:ws1"]), false);
        assert!(h.list_channels(None, None, 100).channels.is_empty());
    }
}

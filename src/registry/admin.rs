//! The operators' messages: [`Shutdown`], [`ChannelCounts`] and
//! [`GetStats`], answered from the registry's own tables.

use std::collections::HashMap;

use actix::prelude::*;

use super::{ChannelCount, ChannelCounts, GetStats, Registry, RegistryStats, Shutdown};
use crate::delivery::Transport;

impl Handler<Shutdown> for Registry {
    type Result = usize;

    fn handle(&mut self, _: Shutdown, _: &mut Self::Context) -> usize {
        self.closed = true;
        let told = self.sessions.len();
        for entry in self.sessions.values() {
            entry.outbox.shut_down();
        }
        told
    }
}

impl Handler<ChannelCounts> for Registry {
    type Result = MessageResult<ChannelCounts>;

    fn handle(&mut self, msg: ChannelCounts, _: &mut Self::Context) -> Self::Result {
        // A scan of the sessions: admin endpoints only, bounded by the
        // connection cap, and the answer is bounded by `top`.
        let mut counts: HashMap<&str, (usize, usize)> = HashMap::new();
        for entry in self.sessions.values() {
            for p in &entry.patterns {
                let c = counts.entry(p.as_str()).or_default();
                match entry.outbox.transport() {
                    Transport::Sse => c.0 += 1,
                    Transport::WebSocket => c.1 += 1,
                }
            }
        }
        let mut list: Vec<ChannelCount> = counts
            .into_iter()
            .map(|(p, (sse, websocket))| ChannelCount {
                channel: p.to_owned(),
                sse,
                websocket,
            })
            .collect();
        list.sort_unstable_by(|a, b| {
            b.total()
                .cmp(&a.total())
                .then_with(|| a.channel.cmp(&b.channel))
        });
        list.truncate(msg.top);
        MessageResult(list)
    }
}

impl Handler<GetStats> for Registry {
    type Result = MessageResult<GetStats>;

    fn handle(&mut self, _: GetStats, _: &mut Self::Context) -> Self::Result {
        MessageResult(RegistryStats {
            sessions: self.sessions.len(),
            subscriptions: self.index.len(),
            index_nodes: self.index.node_count(),
            last_seq: self.last_seq,
            history: self.history.read().stats(),
        })
    }
}

//! The subscription index: a trie of channel segments, as NATS's sublist.
//!
//! Owned by the registry actor alone, so it takes no locks: every method
//! assumes the caller has exclusive access (`&mut self` says so). Each node is
//! one segment level; a subscription to `logs:etl:ws1` is stored at the node
//! reached by `etl` → `ws1`, and `*` segments go down a separate wildcard
//! edge. Matching a published channel walks at most `2^depth` paths (depth is
//! at most 3 below `logs`), collecting the keys stored at every node it
//! passes, because a subscription also receives everything below it. The cost
//! of a publish is therefore independent of how many subscriptions exist
//! elsewhere in the tree, and matching allocates nothing. Empty nodes are
//! pruned on removal, so churn does not grow the tree.

use std::collections::{HashMap, HashSet};
use std::hash::Hash;

use crate::channel::{ChannelName, ChannelPattern, MAX_SEGMENTS, WILDCARD};

#[derive(Debug)]
struct Node<K> {
    /// Subscribers whose pattern ends at this node.
    keys: HashSet<K>,
    literal: HashMap<Box<str>, Node<K>>,
    wildcard: Option<Box<Node<K>>>,
}

impl<K> Default for Node<K> {
    fn default() -> Self {
        Self {
            keys: HashSet::new(),
            literal: HashMap::new(),
            wildcard: None,
        }
    }
}

impl<K> Node<K> {
    fn is_empty(&self) -> bool {
        self.keys.is_empty() && self.literal.is_empty() && self.wildcard.is_none()
    }

    fn count_nodes(&self) -> usize {
        1 + self.literal.values().map(Node::count_nodes).sum::<usize>()
            + self.wildcard.as_ref().map_or(0, |w| w.count_nodes())
    }
}

/// Maps channel patterns to subscriber keys. A key may be stored under
/// several patterns; [`Index::for_each_match`] then reports it once per
/// matching pattern, and the caller deduplicates.
#[derive(Debug)]
pub struct Index<K> {
    root: Node<K>,
    /// Number of (pattern, key) pairs held.
    entries: usize,
}

impl<K> Default for Index<K> {
    fn default() -> Self {
        Self {
            root: Node::default(),
            entries: 0,
        }
    }
}

impl<K: Copy + Eq + Hash> Index<K> {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `key` under `pattern`; returns false if it was already there.
    pub fn insert(&mut self, pattern: &ChannelPattern, key: K) -> bool {
        let mut node = &mut self.root;
        for seg in pattern.segments() {
            node = if seg == WILDCARD {
                node.wildcard.get_or_insert_with(Box::default)
            } else {
                node.literal.entry(Box::from(seg)).or_default()
            };
        }
        let added = node.keys.insert(key);
        self.entries += usize::from(added);
        added
    }

    /// Removes `key` from `pattern` and prunes the nodes left empty; returns
    /// false if it was not there.
    pub fn remove(&mut self, pattern: &ChannelPattern, key: K) -> bool {
        let segs: Vec<&str> = pattern.segments().collect();
        let removed = Self::remove_at(&mut self.root, &segs, key);
        self.entries -= usize::from(removed);
        removed
    }

    fn remove_at(node: &mut Node<K>, segs: &[&str], key: K) -> bool {
        let Some((first, rest)) = segs.split_first() else {
            return node.keys.remove(&key);
        };
        if *first == WILDCARD {
            let Some(child) = node.wildcard.as_deref_mut() else {
                return false;
            };
            let removed = Self::remove_at(child, rest, key);
            if child.is_empty() {
                node.wildcard = None;
            }
            removed
        } else {
            let Some(child) = node.literal.get_mut(*first) else {
                return false;
            };
            let removed = Self::remove_at(child, rest, key);
            if child.is_empty() {
                node.literal.remove(*first);
            }
            removed
        }
    }

    /// Calls `f` with every key whose pattern matches `channel`: patterns at
    /// or above the channel, literal or wildcard at each level.
    /// Allocates nothing: a channel has at most [`MAX_SEGMENTS`] segments
    /// (`logs` among them), so its segments fit on the stack.
    pub fn for_each_match(&self, channel: &ChannelName, mut f: impl FnMut(K)) {
        let mut segs = [""; MAX_SEGMENTS];
        let mut depth = 0;
        for (slot, seg) in segs.iter_mut().zip(channel.segments()) {
            *slot = seg;
            depth += 1;
        }
        Self::visit(&self.root, &segs[..depth], &mut f);
    }

    fn visit(node: &Node<K>, segs: &[&str], f: &mut impl FnMut(K)) {
        node.keys.iter().copied().for_each(&mut *f);
        let Some((first, rest)) = segs.split_first() else {
            return;
        };
        if let Some(child) = node.literal.get(*first) {
            Self::visit(child, rest, f);
        }
        if let Some(child) = node.wildcard.as_deref() {
            Self::visit(child, rest, f);
        }
    }

    /// How many (pattern, key) pairs are stored.
    pub fn len(&self) -> usize {
        self.entries
    }

    pub fn is_empty(&self) -> bool {
        self.entries == 0
    }

    /// How many trie nodes exist, the root included; churn tests use it to
    /// check that removal prunes.
    pub fn node_count(&self) -> usize {
        self.root.count_nodes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    fn pat(s: &str) -> ChannelPattern {
        ChannelPattern::parse(s).unwrap()
    }
    fn chan(s: &str) -> ChannelName {
        ChannelName::parse(s).unwrap()
    }
    fn matches(idx: &Index<u32>, c: &str) -> BTreeSet<u32> {
        let mut out = BTreeSet::new();
        idx.for_each_match(&chan(c), |k| {
            out.insert(k);
        });
        out
    }

    #[test]
    fn table_of_matches() {
        let mut idx = Index::new();
        let subs = [
            (1, "logs:*"),
            (2, "logs:etl"),
            (3, "logs:etl:ws1"),
            (4, "logs:*:ws1"),
            (5, "logs:etl:ws1:job7"),
            (6, "logs:*:*:job7"),
            (7, "logs:faas"),
        ];
        for (k, p) in subs {
            assert!(idx.insert(&pat(p), k));
        }
        let cases: [(&str, &[u32]); 6] = [
            ("logs:etl:ws1:job7", &[1, 2, 3, 4, 5, 6]),
            ("logs:etl:ws1:job8", &[1, 2, 3, 4]),
            ("logs:etl:ws1", &[1, 2, 3, 4]),
            ("logs:etl", &[1, 2]),
            ("logs:faas:ws1:job7", &[1, 4, 6, 7]),
            ("logs:analytics:ws2", &[1]),
        ];
        for (c, want) in cases {
            assert_eq!(matches(&idx, c), want.iter().copied().collect(), "{c}");
        }
    }

    #[test]
    fn duplicate_insert_and_missing_remove() {
        let mut idx = Index::new();
        assert!(idx.insert(&pat("logs:etl"), 1u32));
        assert!(!idx.insert(&pat("logs:etl"), 1));
        assert_eq!(idx.len(), 1);
        assert!(!idx.remove(&pat("logs:etl"), 2));
        assert!(!idx.remove(&pat("logs:etl:ws1"), 1));
        assert!(!idx.remove(&pat("logs:*"), 1));
        assert!(idx.remove(&pat("logs:etl"), 1));
        assert!(idx.is_empty());
    }

    #[test]
    fn churn_prunes_the_tree() {
        let mut idx = Index::new();
        let patterns: Vec<ChannelPattern> = (0..500)
            .map(|i| pat(&format!("logs:s{}:*:r{i}", i % 7)))
            .chain((0..500).map(|i| pat(&format!("logs:*:w{}", i % 13))))
            .collect();
        for round in 0..3u32 {
            for (i, p) in patterns.iter().enumerate() {
                idx.insert(p, i as u32 + round);
            }
            assert!(idx.node_count() > 500);
            for (i, p) in patterns.iter().enumerate() {
                assert!(idx.remove(p, i as u32 + round));
            }
            assert_eq!(idx.len(), 0);
            assert_eq!(idx.node_count(), 1, "only the root survives");
        }
    }

    fn segment() -> impl Strategy<Value = String> {
        prop_oneof![Just("a"), Just("b"), Just("c")].prop_map(String::from)
    }

    fn channel_strategy() -> impl Strategy<Value = String> {
        prop::collection::vec(segment(), 1..=3).prop_map(|s| format!("logs:{}", s.join(":")))
    }

    fn pattern_strategy() -> impl Strategy<Value = String> {
        let seg = prop_oneof![3 => segment(), 1 => Just("*".to_string())];
        prop::collection::vec(seg, 1..=3).prop_map(|s| format!("logs:{}", s.join(":")))
    }

    proptest! {
        /// The trie agrees with the plain matcher on every channel, after
        /// inserts and after a random half of them is removed again.
        #[test]
        fn index_agrees_with_reference(
            subs in prop::collection::vec(pattern_strategy(), 0..40),
            removals in prop::collection::vec(any::<bool>(), 40),
            probes in prop::collection::vec(channel_strategy(), 1..20),
        ) {
            let mut idx = Index::new();
            let mut live: Vec<(u32, ChannelPattern)> = Vec::new();
            for (k, p) in subs.iter().enumerate() {
                let p = pat(p);
                idx.insert(&p, k as u32);
                live.push((k as u32, p));
            }
            let check = |idx: &Index<u32>, live: &[(u32, ChannelPattern)]| {
                for c in &probes {
                    let want: BTreeSet<u32> = live
                        .iter()
                        .filter(|(_, p)| p.matches(&chan(c)))
                        .map(|(k, _)| *k)
                        .collect();
                    prop_assert_eq!(matches(idx, c), want, "channel {}", c);
                }
                Ok(())
            };
            check(&idx, &live)?;
            let mut kept = Vec::new();
            for ((k, p), remove) in live.into_iter().zip(&removals) {
                if *remove {
                    prop_assert!(idx.remove(&p, k));
                } else {
                    kept.push((k, p));
                }
            }
            check(&idx, &kept)?;
            prop_assert_eq!(idx.len(), kept.len());
        }

        /// `covers` means containment: whenever `a` covers `b`, every channel
        /// `b` matches is matched by `a`.
        #[test]
        fn covers_implies_matches(a in pattern_strategy(), b in pattern_strategy(), c in channel_strategy()) {
            let (a, b, c) = (pat(&a), pat(&b), chan(&c));
            if a.covers(&b) && b.matches(&c) {
                prop_assert!(a.matches(&c));
            }
        }
    }
}

//! The channels that have history, as a trie of segments, so a query finds
//! the channels its patterns reach without looking at the others.
//!
//! The subscription index (`registry::index`) answers "which patterns
//! match this channel"; this answers the reverse, "which channels does this
//! pattern match": a literal segment follows one edge, `*` follows every
//! edge at its level, and the end of the pattern takes the whole subtree
//! (a pattern also matches everything below it). The cost is the number of
//! nodes visited, which is what the query touches. Empty nodes are pruned
//! on removal. Not synchronised: its owner's lock covers it.

use std::collections::HashMap;

use crate::channel::{ChannelName, ChannelPattern, WILDCARD};

#[derive(Debug, Default)]
struct Node {
    /// The channel ending at this node, if it has history.
    channel: Option<ChannelName>,
    children: HashMap<Box<str>, Node>,
}

impl Node {
    fn is_empty(&self) -> bool {
        self.channel.is_none() && self.children.is_empty()
    }

    fn visit_all<'a>(&'a self, f: &mut impl FnMut(&'a ChannelName)) {
        if let Some(c) = &self.channel {
            f(c);
        }
        for child in self.children.values() {
            child.visit_all(f);
        }
    }

    fn visit<'a>(&'a self, segs: &[&str], f: &mut impl FnMut(&'a ChannelName)) {
        match segs.split_first() {
            None => self.visit_all(f),
            Some((&seg, rest)) if seg == WILDCARD => {
                for child in self.children.values() {
                    child.visit(rest, f);
                }
            }
            Some((seg, rest)) => {
                if let Some(child) = self.children.get(*seg) {
                    child.visit(rest, f);
                }
            }
        }
    }

    fn remove(&mut self, segs: &[&str]) -> bool {
        let Some((first, rest)) = segs.split_first() else {
            return self.channel.take().is_some();
        };
        let Some(child) = self.children.get_mut(*first) else {
            return false;
        };
        let removed = child.remove(rest);
        if child.is_empty() {
            self.children.remove(*first);
        }
        removed
    }
}

#[derive(Debug, Default)]
pub struct ChannelTree {
    root: Node,
}

impl ChannelTree {
    pub fn insert(&mut self, channel: &ChannelName) {
        let mut node = &mut self.root;
        for seg in channel.segments() {
            node = node.children.entry(Box::from(seg)).or_default();
        }
        node.channel = Some(channel.clone());
    }

    pub fn remove(&mut self, channel: &ChannelName) -> bool {
        let segs: Vec<&str> = channel.segments().collect();
        self.root.remove(&segs)
    }

    /// Calls `f` with every channel `pattern` matches, once each.
    pub fn for_each_match<'a>(
        &'a self,
        pattern: &ChannelPattern,
        mut f: impl FnMut(&'a ChannelName),
    ) {
        let segs: Vec<&str> = pattern.segments().collect();
        self.root.visit(&segs, &mut f);
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.root.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn names(tree: &ChannelTree, pattern: &str) -> Vec<String> {
        let mut out = Vec::new();
        tree.for_each_match(&ChannelPattern::parse(pattern).unwrap(), |c| {
            out.push(c.as_str().to_owned())
        });
        out.sort();
        out
    }

    #[test]
    fn patterns_reach_their_channels_and_everything_below() {
        let mut t = ChannelTree::default();
        for c in [
            "logs:etl",
            "logs:etl:ws1",
            "logs:etl:ws1:job7",
            "logs:faas:ws1",
            "logs:faas:ws2:r",
        ] {
            t.insert(&ChannelName::parse(c).unwrap());
        }
        assert_eq!(
            names(&t, "logs:etl"),
            ["logs:etl", "logs:etl:ws1", "logs:etl:ws1:job7"]
        );
        assert_eq!(
            names(&t, "logs:*:ws1"),
            ["logs:etl:ws1", "logs:etl:ws1:job7", "logs:faas:ws1"]
        );
        assert_eq!(names(&t, "logs:*:*:r"), ["logs:faas:ws2:r"]);
        assert_eq!(names(&t, "logs:*").len(), 5);
        assert!(names(&t, "logs:nope").is_empty());
        // Removal prunes back to an empty root.
        for c in [
            "logs:etl:ws1:job7",
            "logs:etl",
            "logs:faas:ws1",
            "logs:etl:ws1",
            "logs:faas:ws2:r",
        ] {
            assert!(t.remove(&ChannelName::parse(c).unwrap()), "{c}");
        }
        assert!(t.is_empty());
        assert!(!t.remove(&ChannelName::parse("logs:etl").unwrap()));
    }

    fn channel() -> impl Strategy<Value = String> {
        let seg = prop_oneof![Just("a"), Just("b"), Just("c")].prop_map(String::from);
        prop::collection::vec(seg, 1..=3).prop_map(|s| format!("logs:{}", s.join(":")))
    }

    fn pattern() -> impl Strategy<Value = String> {
        let seg = prop_oneof![Just("a"), Just("b"), Just("*")].prop_map(String::from);
        prop::collection::vec(seg, 1..=3).prop_map(|s| format!("logs:{}", s.join(":")))
    }

    proptest! {
        /// The tree finds exactly what `ChannelPattern::matches` accepts.
        #[test]
        fn agrees_with_the_plain_matcher(
            channels in prop::collection::btree_set(channel(), 0..20),
            pattern in pattern(),
        ) {
            let mut t = ChannelTree::default();
            for c in &channels {
                t.insert(&ChannelName::parse(c).unwrap());
            }
            let p = ChannelPattern::parse(&pattern).unwrap();
            let want: Vec<String> = channels
                .iter()
                .filter(|c| p.matches(&ChannelName::parse(c).unwrap()))
                .cloned()
                .collect();
            prop_assert_eq!(names(&t, &pattern), want);
        }
    }
}

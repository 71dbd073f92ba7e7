//! The channel directory: the channels that hold history or have
//! subscribers, as a trie of segments in sorted order, so a query finds the
//! channels its patterns reach without looking at the others, and a listing
//! walks them in order from a cursor.
//!
//! The subscription index (`registry::index`) answers "which patterns
//! match this channel"; this answers the reverse, "which channels does this
//! pattern match": a literal segment follows one edge, `*` follows every
//! edge at its level, and the end of the pattern takes the whole subtree
//! (a pattern also matches everything below it). The cost is the number of
//! nodes visited, which is what the query touches. An entry with neither
//! history nor subscribers is forgotten and empty nodes are pruned, so
//! churn does not grow the tree. Not synchronised: its owner's lock covers
//! it.
//!
//! Children are kept sorted (a `BTreeMap`), so a walk visits channels in
//! the order of their segments: a channel, then the channels below it,
//! then its next sibling (`logs:a`, `logs:a:x`, `logs:a-b`). That order,
//! not the plain string order (where `logs:a-b` would come between
//! `logs:a` and `logs:a:x`), is the listing's, and its cursor is the last
//! name looked at.

use std::collections::BTreeMap;
use std::ops::Bound;

use crate::channel::{ChannelName, ChannelPattern, ROOT, WILDCARD};

/// What the directory knows of one channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub name: ChannelName,
    /// History holds events of it.
    pub history: bool,
    /// Sessions subscribed to exactly this name (not to a pattern or a
    /// channel above it).
    pub subscribers: u32,
}

impl Entry {
    fn is_empty(&self) -> bool {
        !self.history && self.subscribers == 0
    }
}

#[derive(Debug, Default)]
struct Node {
    entry: Option<Entry>,
    children: BTreeMap<Box<str>, Node>,
}

impl Node {
    fn is_empty(&self) -> bool {
        self.entry.is_none() && self.children.is_empty()
    }

    fn visit_all<'a>(&'a self, f: &mut impl FnMut(&'a Entry)) {
        if let Some(e) = &self.entry {
            f(e);
        }
        for child in self.children.values() {
            child.visit_all(f);
        }
    }

    fn visit<'a>(&'a self, segs: &[&str], f: &mut impl FnMut(&'a Entry)) {
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

    /// Applies `change` to the entry at `segs` below this node (made first
    /// when missing, if `create`), then forgets it if it is left empty and
    /// prunes the nodes that leaves empty.
    fn change(
        &mut self,
        segs: &[&str],
        name: &ChannelName,
        create: bool,
        change: impl FnOnce(&mut Entry),
    ) {
        let Some((first, rest)) = segs.split_first() else {
            if self.entry.is_none() && create {
                self.entry = Some(Entry {
                    name: name.clone(),
                    history: false,
                    subscribers: 0,
                });
            }
            if let Some(e) = &mut self.entry {
                change(e);
                if e.is_empty() {
                    self.entry = None;
                }
            }
            return;
        };
        let child = match self.children.get_mut(*first) {
            Some(c) => c,
            None if create => self.children.entry(Box::from(*first)).or_default(),
            None => return,
        };
        child.change(rest, name, create, change);
        if child.is_empty() {
            self.children.remove(*first);
        }
    }
}

/// The channels that hold history or have subscribers.
#[derive(Debug, Default)]
pub struct ChannelTree {
    root: Node,
}

impl ChannelTree {
    fn change(&mut self, channel: &ChannelName, create: bool, f: impl FnOnce(&mut Entry)) {
        let segs: Vec<&str> = channel.segments().collect();
        self.root.change(&segs, channel, create, f);
    }

    /// `channel` holds history now, or no longer.
    pub fn set_history(&mut self, channel: &ChannelName, held: bool) {
        self.change(channel, held, |e| e.history = held);
    }

    /// One more session subscribed to exactly `channel`, or one fewer.
    pub fn add_subscriber(&mut self, channel: &ChannelName, joined: bool) {
        self.change(channel, joined, |e| {
            e.subscribers = if joined {
                e.subscribers.saturating_add(1)
            } else {
                e.subscribers.saturating_sub(1)
            }
        });
    }

    /// `sessions` subscribed to exactly `channel`.
    pub fn set_subscribers(&mut self, channel: &ChannelName, sessions: u32) {
        self.change(channel, sessions > 0, |e| e.subscribers = sessions);
    }

    /// Every channel with subscribers, and how many.
    pub fn subscribed(&self) -> Vec<(ChannelName, u32)> {
        let mut out = Vec::new();
        self.root.visit_all(&mut |e| {
            if e.subscribers > 0 {
                out.push((e.name.clone(), e.subscribers));
            }
        });
        out
    }

    /// Calls `f` with every channel holding history that `pattern`
    /// matches, once each.
    pub fn for_each_match<'a>(
        &'a self,
        pattern: &ChannelPattern,
        mut f: impl FnMut(&'a ChannelName),
    ) {
        let segs: Vec<&str> = pattern.segments().collect();
        self.root.visit(&segs, &mut |e: &'a Entry| {
            if e.history {
                f(&e.name)
            }
        });
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.root.is_empty()
    }
}

/// What a listing walk reaches, and where it starts.
#[derive(Debug, Clone, Copy)]
pub struct Walk<'q> {
    /// The patterns (their segments after `logs`) whose channels, and the
    /// channels below them, are listed; an empty pattern reaches every
    /// channel, and no pattern none.
    pub patterns: &'q [Vec<&'q str>],
    /// Only the channels after this name in the walk's order (its
    /// segments after `logs`; empty: from the start).
    pub after: &'q [&'q str],
    /// Most nodes looked at after `after` (at least one).
    pub budget: usize,
}

/// Whether a walk goes on after an entry it was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Take {
    More,
    Enough,
}

/// How a walk ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Walked {
    /// Everything the patterns reach after `after` was looked at.
    All,
    /// The caller had enough.
    Enough,
    /// The budget ran out at the node named here; a walk after it goes on
    /// where this one stopped (what is below it comes after it).
    Spent(String),
}

impl ChannelTree {
    /// Calls `f` with each entry the patterns reach after `q.after`, in
    /// the tree's order, until `f` has enough or `q.budget` nodes after
    /// `after` have been looked at. Only nodes on the patterns' paths are
    /// looked at: at a `*` followed by a literal segment (the `*` of
    /// `logs:*:ws1`), every node of that level, and below a pattern's end,
    /// everything.
    pub fn walk<'t>(&'t self, q: Walk<'_>, f: impl FnMut(&'t Entry) -> Take) -> Walked {
        let mut w = Walker {
            q,
            left: q.budget.max(1),
            path: Vec::with_capacity(crate::channel::MAX_SEGMENTS),
            spent_at: None,
            f,
        };
        let scope = Scope::Some((0..q.patterns.len()).collect());
        match w.node(&self.root, &scope, true) {
            Flow::Go => Walked::All,
            Flow::Enough => Walked::Enough,
            Flow::Spent => Walked::Spent(w.spent_at.unwrap_or_default()),
        }
    }
}

/// The patterns a node's path agrees with so far (by index), or all of
/// what is below (the path reached the end of one of them).
enum Scope<'s> {
    All,
    Some(Vec<usize>),
    Borrowed(&'s [usize]),
}

impl Scope<'_> {
    fn active(&self) -> Option<&[usize]> {
        match self {
            Scope::All => None,
            Scope::Some(v) => Some(v),
            Scope::Borrowed(v) => Some(v),
        }
    }
}

enum Flow {
    Go,
    Enough,
    Spent,
}

struct Walker<'q, 't, F> {
    q: Walk<'q>,
    /// Nodes still to be looked at.
    left: usize,
    /// Segments of the node being looked at.
    path: Vec<&'t str>,
    /// The name of the node the budget ran out at.
    spent_at: Option<String>,
    f: F,
}

impl<'t, F: FnMut(&'t Entry) -> Take> Walker<'_, 't, F> {
    /// Looks at `node`, at `self.path`, then at its children in order.
    /// `on_path`: the path is `after` or above it, so neither the node nor
    /// the children before `after`'s next segment come after the cursor.
    fn node(&mut self, node: &'t Node, scope: &Scope, on_path: bool) -> Flow {
        let patterns = self.q.patterns;
        let depth = self.path.len();
        let (covered, wide) = match scope.active() {
            None => (true, true),
            Some(active) => {
                let covered = active.iter().any(|&i| patterns[i].len() <= depth);
                let wide = covered || active.iter().any(|&i| patterns[i][depth] == WILDCARD);
                (covered, wide)
            }
        };
        if !on_path {
            if covered
                && let Some(e) = &node.entry
                && (self.f)(e) == Take::Enough
            {
                return Flow::Enough;
            }
            self.left -= 1;
            if self.left == 0 {
                let mut name = String::from(ROOT);
                for seg in &self.path {
                    name.push(':');
                    name.push_str(seg);
                }
                self.spent_at = Some(name);
                return Flow::Spent;
            }
        }
        let from = if on_path {
            self.q.after.get(depth).copied()
        } else {
            None
        };
        // The patterns the children are held to; none once covered.
        let active = if covered { None } else { scope.active() };
        if wide {
            let lower = from.map_or(Bound::Unbounded, Bound::Included);
            for (key, child) in node.children.range::<str, _>((lower, Bound::Unbounded)) {
                let flow = self.child(key, child, active, from == Some(&**key));
                if !matches!(flow, Flow::Go) {
                    return flow;
                }
            }
        } else {
            // Only literal segments here: follow those edges, in order.
            let mut keys: Vec<&str> = active
                .unwrap_or_default()
                .iter()
                .map(|&i| patterns[i][depth])
                .collect();
            keys.sort_unstable();
            keys.dedup();
            for key in keys.into_iter().filter(|k| from.is_none_or(|f| *k >= f)) {
                let Some((key, child)) = node.children.get_key_value(key) else {
                    continue;
                };
                let flow = self.child(key, child, active, from == Some(&**key));
                if !matches!(flow, Flow::Go) {
                    return flow;
                }
            }
        }
        Flow::Go
    }

    /// Looks at `child`, under `key`, with the patterns of `active` that
    /// agree with `key` (`None`: the parent was covered, so all of it is).
    fn child(
        &mut self,
        key: &'t str,
        child: &'t Node,
        active: Option<&[usize]>,
        on_path: bool,
    ) -> Flow {
        let depth = self.path.len();
        let patterns = self.q.patterns;
        let agrees = |&i: &usize| patterns[i][depth] == WILDCARD || patterns[i][depth] == key;
        // Most often every pattern still agrees (a `*` level, or one
        // pattern): the parent's set serves again, with nothing allocated.
        let scope = match active {
            None => Scope::All,
            Some(active) if active.iter().all(agrees) => Scope::Borrowed(active),
            Some(active) => Scope::Some(active.iter().copied().filter(agrees).collect()),
        };
        self.path.push(key);
        let flow = self.node(child, &scope, on_path);
        self.path.pop();
        flow
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn name(c: &str) -> ChannelName {
        ChannelName::parse(c).unwrap()
    }

    fn names(tree: &ChannelTree, pattern: &str) -> Vec<String> {
        let mut out = Vec::new();
        tree.for_each_match(&ChannelPattern::parse(pattern).unwrap(), |c| {
            out.push(c.as_str().to_owned())
        });
        out.sort();
        out
    }

    fn tree_of(channels: &[&str]) -> ChannelTree {
        let mut t = ChannelTree::default();
        for c in channels {
            t.set_history(&name(c), true);
        }
        t
    }

    #[test]
    fn patterns_reach_their_channels_and_everything_below() {
        let mut t = tree_of(&[
            "logs:etl",
            "logs:etl:ws1",
            "logs:etl:ws1:job7",
            "logs:faas:ws1",
            "logs:faas:ws2:r",
        ]);
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
            t.set_history(&name(c), false);
        }
        assert!(t.is_empty());
        t.set_history(&name("logs:etl"), false);
        assert!(t.is_empty(), "forgetting what is not there makes nothing");
    }

    #[test]
    fn subscribers_keep_an_entry_without_history_and_history_ignores_them() {
        let mut t = ChannelTree::default();
        let c = name("logs:etl:ws1");
        t.add_subscriber(&c, true);
        t.add_subscriber(&c, true);
        assert!(names(&t, "logs:*").is_empty(), "no history to replay");
        t.set_history(&c, true);
        t.set_history(&c, false);
        assert_eq!(t.subscribed(), [(c.clone(), 2)]);
        t.add_subscriber(&c, false);
        t.add_subscriber(&c, false);
        assert!(t.is_empty());
        t.add_subscriber(&c, false);
        assert!(t.is_empty(), "a stray leave makes nothing");
    }

    /// Every page of a walk, from the start, each `limit` entries at most
    /// and `budget` nodes; the names in the order given.
    fn pages(t: &ChannelTree, patterns: &[&str], limit: usize, budget: usize) -> Vec<String> {
        let segs: Vec<Vec<&str>> = patterns
            .iter()
            .map(|p| p.split(':').skip(1).filter(|s| !s.is_empty()).collect())
            .collect();
        let mut out = Vec::new();
        let mut cursor = String::new();
        for _ in 0..10_000 {
            let after: Vec<&str> = cursor.split(':').skip(1).collect();
            let mut page = Vec::new();
            let walked = t.walk(
                Walk {
                    patterns: &segs,
                    after: &after,
                    budget,
                },
                |e| {
                    if page.len() == limit {
                        return Take::Enough;
                    }
                    page.push(e.name.as_str().to_owned());
                    Take::More
                },
            );
            let next = match walked {
                Walked::All => None,
                Walked::Enough => page.last().cloned(),
                Walked::Spent(at) => Some(at),
            };
            out.extend(page);
            match next {
                Some(n) => {
                    assert!(
                        cursor.is_empty() || n.split(':').gt(cursor.split(':')),
                        "{n} after {cursor}"
                    );
                    cursor = n;
                }
                None => return out,
            }
        }
        panic!("the walk never ended");
    }

    /// The order of a walk: segment by segment.
    fn in_order(mut v: Vec<String>) -> Vec<String> {
        v.sort_by(|a, b| a.split(':').cmp(b.split(':')));
        v
    }

    #[test]
    fn a_walk_goes_in_segment_order_and_resumes_after_its_cursor() {
        let all = [
            "logs:a",
            "logs:a:x",
            "logs:a:x:1",
            "logs:a-b",
            "logs:a0",
            "logs:b:ws1",
            "logs:b:ws2",
            "logs:c:ws1:r",
        ];
        let t = tree_of(&all);
        let want = in_order(all.iter().map(|s| s.to_string()).collect());
        assert_eq!(want[..3], ["logs:a", "logs:a:x", "logs:a:x:1"]);
        for limit in 1..=4 {
            for budget in 1..=5 {
                assert_eq!(
                    pages(&t, &["logs"], limit, budget),
                    want,
                    "{limit} {budget}"
                );
            }
        }
        assert_eq!(
            pages(&t, &["logs:*:ws1"], 1, 1),
            ["logs:b:ws1", "logs:c:ws1:r"]
        );
        assert_eq!(pages(&t, &["logs:a:x", "logs:a"], 2, 100).len(), 3);
        assert!(pages(&t, &[], 10, 100).is_empty(), "no grant, nothing");
    }

    #[test]
    fn a_walk_looks_only_where_its_patterns_lead() {
        // 1,000 channels of another workspace cost a walk of ws1 nothing:
        // it looks at the root's children and at ws1 under each.
        let mut t = tree_of(&["logs:etl:ws1:a", "logs:faas:ws1"]);
        for i in 0..1000 {
            t.set_history(&name(&format!("logs:etl:ws2:r{i}")), true);
        }
        let segs = vec![vec!["*", "ws1"]];
        let mut seen = Vec::new();
        let walked = t.walk(
            Walk {
                patterns: &segs,
                after: &[],
                budget: 6,
            },
            |e| {
                seen.push(e.name.as_str().to_owned());
                Take::More
            },
        );
        assert_eq!(walked, Walked::All, "etl, ws1, a, faas, ws1: five nodes");
        assert_eq!(seen, ["logs:etl:ws1:a", "logs:faas:ws1"]);
        let walked = t.walk(
            Walk {
                patterns: &segs,
                after: &[],
                budget: 5,
            },
            |_| Take::More,
        );
        assert_eq!(walked, Walked::Spent("logs:faas:ws1".into()));
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
                t.set_history(&name(c), true);
            }
            let p = ChannelPattern::parse(&pattern).unwrap();
            let want: Vec<String> = channels
                .iter()
                .filter(|c| p.matches(&name(c)))
                .cloned()
                .collect();
            prop_assert_eq!(names(&t, &pattern), want);
        }

        /// Paged walks, whatever their page size and budget, list every
        /// channel some pattern matches exactly once, in order.
        #[test]
        fn paged_walks_list_each_match_once_in_order(
            channels in prop::collection::btree_set(channel(), 0..20),
            patterns in prop::collection::vec(pattern(), 0..3),
            limit in 1usize..4,
            budget in 1usize..6,
        ) {
            let t = tree_of(&channels.iter().map(String::as_str).collect::<Vec<_>>());
            let parsed: Vec<ChannelPattern> =
                patterns.iter().map(|p| ChannelPattern::parse(p).unwrap()).collect();
            let want = in_order(
                channels
                    .iter()
                    .filter(|c| parsed.iter().any(|p| p.matches(&name(c))))
                    .cloned()
                    .collect(),
            );
            let pats: Vec<&str> = patterns.iter().map(String::as_str).collect();
            prop_assert_eq!(pages(&t, &pats, limit, budget), want);
        }
    }
}

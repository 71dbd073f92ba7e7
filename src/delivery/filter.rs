//! What a subscriber (or a history query) wants to see: a minimum level and
//! a text that the message must contain, case-insensitively.
//!
//! The registry evaluates filters on its own thread for every matching
//! session, so their cost is what a client controls there. Both checks are
//! linear: the query is folded to lower case once per subscription and
//! searched for with a prebuilt `memchr::memmem` finder (SIMD, no
//! backtracking), and each event's message is folded at most once per
//! fan-out however many sessions look at it ([`MessageText`]). The query
//! is at most [`MAX_QUERY_BYTES`].

use std::borrow::Cow;
use std::cell::OnceCell;

use memchr::memmem;

use crate::event::{Event, Level};

/// Longest text filter (`q`) accepted, in bytes.
pub const MAX_QUERY_BYTES: usize = 256;

/// Lower case for case-insensitive matching: ASCII folding when the text
/// is ASCII (no allocation if it is already lower case), Unicode
/// lowercasing otherwise. Query and message go through the same function.
pub fn fold(text: &str) -> Cow<'_, str> {
    if text.is_ascii() {
        if text.bytes().any(|b| b.is_ascii_uppercase()) {
            Cow::Owned(text.to_ascii_lowercase())
        } else {
            Cow::Borrowed(text)
        }
    } else {
        Cow::Owned(text.to_lowercase())
    }
}

/// An event's message, folded on first use and then shared by every
/// filter that looks at it.
pub struct MessageText<'a> {
    event: &'a Event,
    folded: OnceCell<Cow<'a, str>>,
}

impl<'a> MessageText<'a> {
    pub fn new(event: &'a Event) -> Self {
        MessageText {
            event,
            folded: OnceCell::new(),
        }
    }

    fn folded(&self) -> &str {
        self.folded.get_or_init(|| fold(&self.event.message))
    }
}

/// A text query, folded and compiled once.
#[derive(Debug, Clone)]
struct TextQuery {
    finder: memmem::Finder<'static>,
}

/// What a session wants to see of its channels' traffic. Applied when the
/// registry offers an event, so filtered events never occupy the queue.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Keep events at or above this level.
    pub min_level: Option<Level>,
    /// Boxed: a finder is a few hundred bytes, and most sessions have no
    /// query; every idle connection would carry them inline.
    query: Option<Box<TextQuery>>,
}

impl Filter {
    /// `query` must be at most [`MAX_QUERY_BYTES`] (the request parsers
    /// refuse longer ones); an empty query keeps everything.
    pub fn new(min_level: Option<Level>, query: Option<&str>) -> Self {
        let query = query.filter(|q| !q.is_empty()).map(|q| {
            Box::new(TextQuery {
                finder: memmem::Finder::new(fold(q).as_bytes()).into_owned(),
            })
        });
        Filter { min_level, query }
    }

    pub fn accepts(&self, text: &MessageText<'_>) -> bool {
        if self.min_level.is_some_and(|min| text.event.level < min) {
            return false;
        }
        match &self.query {
            None => true,
            Some(q) => q.finder.find(text.folded().as_bytes()).is_some(),
        }
    }

    /// The same check for a single event (history, replay, tests).
    pub fn accepts_event(&self, event: &Event) -> bool {
        self.accepts(&MessageText::new(event))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn event(level: Level, message: &str) -> Arc<Event> {
        crate::event::testing::event(1, "logs:etl:ws1", level, message, 0)
    }

    #[test]
    fn filter_by_level_and_text() {
        let f = Filter::new(Some(Level::Warn), Some("DiSk"));
        assert!(f.accepts_event(&event(Level::Error, "disk full")));
        assert!(f.accepts_event(&event(Level::Error, "DISK FULL")));
        assert!(!f.accepts_event(&event(Level::Info, "disk full")));
        assert!(!f.accepts_event(&event(Level::Fatal, "cpu hot")));
        let f = Filter::new(None, Some("ÉTÉ"));
        assert!(f.accepts_event(&event(Level::Info, "l'été est là")));
        assert!(f.accepts_event(&event(Level::Info, "L'ÉTÉ")));
        assert!(!f.accepts_event(&event(Level::Info, "ete")));
        assert!(Filter::new(None, Some("")).accepts_event(&event(Level::Trace, "a")));
        assert!(!Filter::new(None, Some("abc")).accepts_event(&event(Level::Info, "ab")));
    }

    #[test]
    fn a_message_is_folded_once_for_all_filters() {
        let e = event(Level::Info, "Connection TIMEOUT after 30s");
        let text = MessageText::new(&e);
        let filters: Vec<Filter> = ["timeout", "connection", "after 30", "nope"]
            .iter()
            .map(|q| Filter::new(None, Some(q)))
            .collect();
        let hits: Vec<bool> = filters.iter().map(|f| f.accepts(&text)).collect();
        assert_eq!(hits, [true, true, true, false]);
        assert!(matches!(text.folded.get(), Some(Cow::Owned(_))));
        let lower = event(Level::Info, "already lower");
        let text = MessageText::new(&lower);
        assert!(Filter::new(None, Some("LOWER")).accepts(&text));
        assert!(matches!(text.folded.get(), Some(Cow::Borrowed(_))));
    }

    /// The worst case the review measured (20,000 `a` + `b` against 60,000
    /// `a`) is linear now: a handful of such checks finish at once.
    #[test]
    fn adversarial_text_is_linear() {
        let q = format!("{}b", "a".repeat(MAX_QUERY_BYTES - 1));
        let f = Filter::new(None, Some(&q));
        let e = event(Level::Info, &"a".repeat(60_000));
        let started = std::time::Instant::now();
        for _ in 0..100 {
            assert!(!f.accepts_event(&e));
        }
        // Generous: a quadratic scan takes seconds for one check.
        assert!(started.elapsed() < std::time::Duration::from_secs(2));
    }
}

//! Channel names and patterns. The input is up to three `\n`-separated
//! texts, each parsed as a name and as a pattern; the relations between
//! them (`matches`, `covers`) must agree with each other.

use loggate::channel::{ChannelName, ChannelPattern};

fn main() {
    loggate_fuzz::fuzz!(|data: &[u8]| {
        let text = String::from_utf8_lossy(data);
        let texts: Vec<&str> = text.splitn(3, '\n').collect();
        let names: Vec<ChannelName> = texts.iter().filter_map(|t| name(t)).collect();
        let patterns: Vec<ChannelPattern> = texts.iter().filter_map(|t| pattern(t)).collect();
        for p in &patterns {
            assert!(p.covers(p), "{p} covers itself");
            for q in &patterns {
                if let Ok(concrete) = ChannelName::parse(q.as_str()) {
                    // For a concrete q, "covers" and "matches" are one question.
                    assert_eq!(p.covers(q), p.matches(&concrete), "{p} / {q}");
                }
                for n in &names {
                    if p.covers(q) && q.matches(n) {
                        assert!(p.matches(n), "{p} covers {q}, which matches {n}");
                    }
                }
            }
        }
        // The texts as parts: a channel built from them has exactly them as parts.
        let part = |i: usize| texts.get(i).copied();
        if let Ok(c) = ChannelName::from_parts(texts[0], part(1), part(2)) {
            assert_eq!(
                (c.service(), c.workspace(), c.resource()),
                (texts[0], part(1), part(2))
            );
        }
    });
}

fn name(text: &str) -> Option<ChannelName> {
    let n = ChannelName::parse(text).ok()?;
    assert_eq!(n.as_str(), text);
    assert_eq!(n.to_string(), text);
    let again = ChannelName::from_parts(n.service(), n.workspace(), n.resource());
    assert_eq!(again.as_ref(), Ok(&n));
    let p = ChannelPattern::parse(text).expect("a name is also a pattern");
    assert!(p.is_literal() && p.matches(&n));
    assert_eq!(ChannelPattern::from(n.clone()), p);
    Some(n)
}

fn pattern(text: &str) -> Option<ChannelPattern> {
    let p = ChannelPattern::parse(text).ok()?;
    assert_eq!(p.as_str(), text);
    assert_eq!(p.is_literal(), ChannelName::parse(text).is_ok(), "{text:?}");
    Some(p)
}

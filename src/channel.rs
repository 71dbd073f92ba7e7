//! Channel names and channel patterns: parsing, validation and containment.
//!
//! Owns the channel grammar of the contract and nothing else. A channel is
//! `logs:{service}[:{workspace}[:{resource}]]`; each segment is 1–64
//! characters of `[A-Za-z0-9_-]` (no dot, so a channel maps onto a NATS
//! subject one segment per token). A *pattern* may put `*` in place of any
//! segment after `logs`; `*` stands for exactly one segment. Subscriptions are
//! hierarchical: a pattern matches the channels it names *and every channel
//! below them*, so `logs:etl` matches `logs:etl:ws1:job7`.
//!
//! The registry's index (`registry::index`) and the auth grants build on the
//! two relations defined here: [`ChannelPattern::matches`] (does a published
//! channel reach this subscription?) and [`ChannelPattern::covers`] (does every
//! channel one pattern can match lie under another?).

use std::fmt;
use std::sync::Arc;

/// The first segment of every channel.
pub const ROOT: &str = "logs";
/// Longest segment, in bytes (segments are ASCII).
pub const MAX_SEGMENT_LEN: usize = 64;
/// `logs` + service + workspace + resource.
pub const MAX_SEGMENTS: usize = 4;
/// The single-segment wildcard of patterns.
pub const WILDCARD: &str = "*";

/// Why a channel name or pattern was refused; every variant is a 400
/// `invalid_channel` at the HTTP boundary.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChannelError {
    #[error("channel is empty")]
    Empty,
    #[error("channel {0:?} must start with \"logs:\"")]
    BadRoot(String),
    #[error("channel {0:?} needs a service: logs:{{service}}[:{{workspace}}[:{{resource}}]]")]
    NoService(String),
    #[error("channel {0:?} has more than 4 segments")]
    TooDeep(String),
    #[error(
        "channel {channel:?}: segment {index} must be 1-64 characters of A-Z a-z 0-9 _ -{wild}"
    )]
    BadSegment {
        channel: String,
        index: usize,
        wild: &'static str,
    },
    #[error("{0:?} is a pattern; a concrete channel cannot contain '*'")]
    WildcardInName(String),
    #[error(
        "channel {0:?}: a resource needs a workspace: logs:{{service}}:{{workspace}}:{{resource}}"
    )]
    ResourceWithoutWorkspace(String),
}

fn valid_segment(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_SEGMENT_LEN
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Truncates client text that is echoed back in an error, so a hostile
/// 100 KB channel name does not come back as a 100 KB error body.
fn echo(s: &str) -> String {
    const MAX_ECHO: usize = 80;
    match s.char_indices().nth(MAX_ECHO) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}

/// Splits and checks `text`; `allow_wildcard` decides whether `*` is a
/// segment of its own. Returns the segments after `logs`.
fn parse_segments(text: &str, allow_wildcard: bool) -> Result<Vec<&str>, ChannelError> {
    if text.is_empty() {
        return Err(ChannelError::Empty);
    }
    let mut parts = text.split(':');
    if parts.next() != Some(ROOT) {
        return Err(ChannelError::BadRoot(echo(text)));
    }
    let rest: Vec<&str> = parts.collect();
    if rest.is_empty() {
        return Err(ChannelError::NoService(echo(text)));
    }
    if rest.len() + 1 > MAX_SEGMENTS {
        return Err(ChannelError::TooDeep(echo(text)));
    }
    for (i, seg) in rest.iter().enumerate() {
        if *seg == WILDCARD {
            if allow_wildcard {
                continue;
            }
            return Err(ChannelError::WildcardInName(echo(text)));
        }
        if !valid_segment(seg) {
            return Err(ChannelError::BadSegment {
                channel: echo(text),
                index: i + 1,
                wild: if allow_wildcard { ", or *" } else { "" },
            });
        }
    }
    Ok(rest)
}

/// A concrete channel, the place an event is published to. Cheap to clone.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChannelName(Arc<str>);

impl ChannelName {
    pub fn parse(text: &str) -> Result<Self, ChannelError> {
        parse_segments(text, false)?;
        Ok(Self(Arc::from(text)))
    }

    /// Builds `logs:{service}[:{workspace}[:{resource}]]` from its parts,
    /// each checked like a parsed segment.
    pub fn from_parts(
        service: &str,
        workspace: Option<&str>,
        resource: Option<&str>,
    ) -> Result<Self, ChannelError> {
        let mut text = format!("{ROOT}:{service}");
        if let Some(w) = workspace {
            text.push(':');
            text.push_str(w);
        }
        if let Some(r) = resource {
            text.push(':');
            text.push_str(r);
        }
        // Each part must be one segment by itself: a ':' inside a part would
        // otherwise move the event to another channel.
        let parts = [Some(service), workspace, resource];
        for (i, part) in parts.iter().enumerate() {
            match part {
                Some(p) if !valid_segment(p) => {
                    return Err(ChannelError::BadSegment {
                        channel: echo(&text),
                        index: i + 1,
                        wild: "",
                    });
                }
                // A resource is only meaningful inside a workspace.
                None if i == 1 && resource.is_some() => {
                    return Err(ChannelError::ResourceWithoutWorkspace(echo(&text)));
                }
                _ => {}
            }
        }
        Self::parse(&text)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Segments after `logs`: service, then workspace and resource if present.
    pub fn segments(&self) -> impl Iterator<Item = &str> {
        self.0.split(':').skip(1)
    }

    pub fn service(&self) -> &str {
        self.segments().next().unwrap_or_default()
    }

    pub fn workspace(&self) -> Option<&str> {
        self.segments().nth(1)
    }

    pub fn resource(&self) -> Option<&str> {
        self.segments().nth(2)
    }
}

impl fmt::Display for ChannelName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for ChannelName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", &*self.0)
    }
}

/// What a subscriber asks for: a channel, possibly with `*` segments, that
/// matches itself and everything below it.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChannelPattern(Arc<str>);

impl ChannelPattern {
    pub fn parse(text: &str) -> Result<Self, ChannelError> {
        parse_segments(text, true)?;
        Ok(Self(Arc::from(text)))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Segments after `logs`; `*` stands for any one segment.
    pub fn segments(&self) -> impl Iterator<Item = &str> {
        self.0.split(':').skip(1)
    }

    pub fn is_literal(&self) -> bool {
        self.segments().all(|s| s != WILDCARD)
    }

    /// Does an event published on `channel` reach a subscriber of `self`?
    /// True when `self` is no deeper than `channel` and each of its segments
    /// is `*` or equal to the channel's segment at that place.
    pub fn matches(&self, channel: &ChannelName) -> bool {
        let mut chan = channel.segments();
        self.segments().all(|p| match chan.next() {
            Some(c) => p == WILDCARD || p == c,
            None => false,
        })
    }

    /// Does every channel that `other` can match also match `self`? This is
    /// the question a grant asks of a request: `logs:*:ws1` covers
    /// `logs:etl:ws1:job7` and `logs:*:ws1:*`, but not `logs:*` or `logs:etl`.
    pub fn covers(&self, other: &ChannelPattern) -> bool {
        let mut theirs = other.segments();
        self.segments().all(|mine| match theirs.next() {
            // `other` fixes this segment or leaves it open; `self` must accept
            // whatever `other` lets through.
            Some(t) => mine == WILDCARD || (t != WILDCARD && mine == t),
            // `other` stops above `self`: it also matches channels that
            // `self` does not reach.
            None => false,
        })
    }
}

impl From<ChannelName> for ChannelPattern {
    fn from(c: ChannelName) -> Self {
        Self(c.0)
    }
}

impl fmt::Display for ChannelPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for ChannelPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", &*self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_and_invalid_names() {
        for ok in [
            "logs:etl",
            "logs:etl:ws1",
            "logs:etl:ws1:job7",
            "logs:a-b_C9:x:y",
            &format!("logs:{}", "a".repeat(64)),
        ] {
            assert!(ChannelName::parse(ok).is_ok(), "{ok} should parse");
        }
        for bad in [
            "",
            "logs",
            "logs:",
            "log:etl",
            "LOGS:etl",
            "logs:etl:",
            "logs::ws1",
            "logs:etl:ws1:job7:extra",
            "logs:et.l",
            "logs:etl ws",
            "logs:etl\n",
            "logs:etl\0",
            "logs:é",
            "logs:*",
            "logs:etl:*",
            &format!("logs:{}", "a".repeat(65)),
        ] {
            assert!(
                ChannelName::parse(bad).is_err(),
                "{bad:?} should be refused"
            );
        }
    }

    #[test]
    fn wildcard_is_a_whole_segment_only() {
        assert!(ChannelPattern::parse("logs:*").is_ok());
        assert!(ChannelPattern::parse("logs:*:ws1").is_ok());
        assert!(ChannelPattern::parse("logs:*:*:*").is_ok());
        // As in NATS, `foo*` is not a wildcard; here it is simply invalid.
        assert!(ChannelPattern::parse("logs:etl*").is_err());
        assert!(ChannelPattern::parse("logs:**").is_err());
        assert!(ChannelPattern::parse("*:etl").is_err());
        assert!(ChannelPattern::parse("logs:>").is_err());
        assert!(ChannelPattern::parse("logs:*:*:*:*").is_err());
    }

    #[test]
    fn from_parts_builds_and_checks() {
        let c = ChannelName::from_parts("etl", Some("ws1"), Some("job7")).unwrap();
        assert_eq!(c.as_str(), "logs:etl:ws1:job7");
        assert_eq!(c.service(), "etl");
        assert_eq!(c.workspace(), Some("ws1"));
        assert_eq!(c.resource(), Some("job7"));
        assert_eq!(
            ChannelName::from_parts("etl", None, None).unwrap().as_str(),
            "logs:etl"
        );
        let err = ChannelName::from_parts("etl", None, Some("job7")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "channel \"logs:etl:job7\": a resource needs a workspace: \
             logs:{service}:{workspace}:{resource}"
        );
        assert!(ChannelName::from_parts("e:tl", None, None).is_err());
        assert!(ChannelName::from_parts("etl", Some("ws1:job7"), None).is_err());
        assert!(ChannelName::from_parts("etl", Some(""), None).is_err());
        assert!(ChannelName::from_parts("etl", Some("*"), None).is_err());
    }

    #[test]
    fn matching_is_hierarchical_with_single_segment_wildcards() {
        let c = |s| ChannelName::parse(s).unwrap();
        let p = |s| ChannelPattern::parse(s).unwrap();
        let job = c("logs:etl:ws1:job7");
        assert!(p("logs:etl").matches(&job));
        assert!(p("logs:etl:ws1").matches(&job));
        assert!(p("logs:etl:ws1:job7").matches(&job));
        assert!(p("logs:*").matches(&job));
        assert!(p("logs:*:ws1").matches(&job));
        assert!(p("logs:*:*:job7").matches(&job));
        assert!(!p("logs:etl:ws2").matches(&job));
        assert!(!p("logs:faas").matches(&job));
        assert!(!p("logs:*:ws2").matches(&job));
        // Deeper than the channel: a subscriber of a job does not see the
        // workspace-level events.
        assert!(!p("logs:etl:ws1:job7").matches(&c("logs:etl:ws1")));
        assert!(!p("logs:*:*").matches(&c("logs:etl")));
    }

    #[test]
    fn covers_is_containment() {
        let p = |s| ChannelPattern::parse(s).unwrap();
        assert!(p("logs:*:ws1").covers(&p("logs:etl:ws1")));
        assert!(p("logs:*:ws1").covers(&p("logs:*:ws1:job7")));
        assert!(p("logs:*:ws1").covers(&p("logs:*:ws1:*")));
        assert!(p("logs:*").covers(&p("logs:*")));
        assert!(p("logs:etl").covers(&p("logs:etl:*:x")));
        assert!(!p("logs:*:ws1").covers(&p("logs:*")));
        assert!(!p("logs:*:ws1").covers(&p("logs:etl")));
        assert!(!p("logs:*:ws1").covers(&p("logs:*:*")));
        assert!(!p("logs:etl:ws1").covers(&p("logs:etl:*")));
    }

    #[test]
    fn errors_do_not_echo_huge_input() {
        let long = format!("logs:{}", "x".repeat(10_000));
        let msg = ChannelName::parse(&long).unwrap_err().to_string();
        assert!(msg.len() < 300, "{}", msg.len());
    }
}

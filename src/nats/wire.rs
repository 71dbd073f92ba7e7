//! The cluster wire format: [`encode`], the subject and headers a node
//! publishes each accepted event under, [`decode_cluster`], the check
//! every inbound cluster message passes before it reaches the registry,
//! and [`OriginSequences`], which follows each origin node's numbering to
//! see the messages that never arrived.
//!
//! A message is the delivered event JSON without its `id`, on
//! `<prefix>.<service>[.<workspace>[.<resource>]]`, with the origin node,
//! its sequence number, level and times in headers. Anyone allowed to
//! publish on `<prefix>.>` can send one, so nothing in it is taken on
//! trust: the channel comes from the subject (which NATS permissions can
//! restrict) and the body must agree with it; size, fields, level, times
//! and `meta` are checked as for an HTTP publish; and the event is
//! re-encoded from the checked fields, so no byte of the payload reaches a
//! client unparsed.
//!
//! A node that has sent no event for a while publishes a sequence mark
//! ([`encode_mark`]) on `<prefix>.$seq` (no channel segment can be `$seq`):
//! the last number it gave, so a hole at the end of what it sent (events
//! dropped over its backlog, or lost in its NATS client when the connection
//! died) is seen without waiting for its next event.
//!
//! Origin ids and numbers are whoever publishes, too: [`OriginSequences`]
//! believes a jump only as far as a node accepting
//! `nats.max_node_events_per_sec` could have gone since its number last
//! moved ([`Followed::Implausible`]), and a mark below what was heard
//! ([`Followed::Rewound`]) not at all; either is refused and moves
//! nothing, so a forged number can neither swell the loss count nor hide
//! the real origin's next hole.
//!
//! Pure functions only, no actor or connection, so a fuzz target can call
//! [`decode_cluster`] directly.

use std::borrow::Cow;

use bytes::{BufMut, Bytes, BytesMut};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::channel::ChannelName;
use crate::event::{EventBody, EventTimes, Level, NewEvent};
use crate::ingest::{
    ENCODING_HEADROOM, PublishError, Received, check_size, clean_meta, event_error, format_time,
};
use crate::registry::outbound::ClusterEvent;

pub const HEADER_ORIGIN: &str = "Loggate-Origin";
pub const HEADER_LEVEL: &str = "Loggate-Level";
pub const HEADER_TIMESTAMP: &str = "Loggate-Timestamp-Ms";
pub const HEADER_RECEIVED: &str = "Loggate-Received-Ms";
/// The event's number in its origin node's cluster sequence.
pub const HEADER_SEQ: &str = "Loggate-Seq";

/// The last token of a sequence mark's subject; `$` is in no channel
/// segment, so no event is ever published there.
pub const MARK_TOKEN: &str = "$seq";

/// One event as it goes out over NATS.
#[derive(Debug)]
pub struct ClusterMessage {
    pub subject: String,
    pub headers: async_nats::HeaderMap,
    pub payload: Bytes,
}

/// How node `node_id` publishes `event`: on its channel's subject, the JSON
/// without `id` as payload, origin, sequence, level and times in headers.
pub fn encode(prefix: &str, node_id: &str, event: &ClusterEvent) -> ClusterMessage {
    let mut headers = async_nats::HeaderMap::new();
    headers.insert(HEADER_ORIGIN, node_id);
    headers.insert(HEADER_SEQ, event.seq.to_string().as_str());
    headers.insert(HEADER_LEVEL, event.level.as_str());
    headers.insert(
        HEADER_TIMESTAMP,
        event.times.timestamp_ms.to_string().as_str(),
    );
    headers.insert(
        HEADER_RECEIVED,
        event.times.received_ms.to_string().as_str(),
    );
    let mut payload = BytesMut::with_capacity(event.body_tail.len() + 1);
    payload.put_u8(b'{');
    payload.put_slice(&event.body_tail);
    ClusterMessage {
        subject: subject(prefix, &event.channel),
        headers,
        payload: payload.freeze(),
    }
}

/// Node `node_id`'s sequence mark: `last` is the last number it gave to
/// an event, sent or not. Empty payload.
pub fn encode_mark(prefix: &str, node_id: &str, last: u64) -> ClusterMessage {
    let mut headers = async_nats::HeaderMap::new();
    headers.insert(HEADER_ORIGIN, node_id);
    headers.insert(HEADER_SEQ, last.to_string().as_str());
    ClusterMessage {
        subject: format!("{prefix}.{MARK_TOKEN}"),
        headers,
        payload: Bytes::new(),
    }
}

/// Whether `subject` is where sequence marks go.
pub fn is_mark(prefix: &str, subject: &str) -> bool {
    subject
        .strip_prefix(prefix)
        .and_then(|rest| rest.strip_prefix('.'))
        == Some(MARK_TOKEN)
}

/// The subject a node publishes an event of `channel` on.
pub fn subject(prefix: &str, channel: &ChannelName) -> String {
    let mut subject = String::with_capacity(prefix.len() + channel.as_str().len());
    subject.push_str(prefix);
    for seg in channel.segments() {
        subject.push('.');
        subject.push_str(seg);
    }
    subject
}

/// The header values of a cluster message, `None` when absent.
#[derive(Debug, Clone, Copy, Default)]
pub struct ClusterHeaders<'a> {
    /// `Loggate-Level`.
    pub level: Option<&'a str>,
    /// `Loggate-Timestamp-Ms`: the event's `timestamp` in Unix ms.
    pub timestamp_ms: Option<&'a str>,
    /// `Loggate-Received-Ms`: the origin's `received_at` in Unix ms.
    pub received_ms: Option<&'a str>,
}

/// Header `name` of a message as it came, `None` when absent.
pub fn header<'a>(headers: Option<&'a async_nats::HeaderMap>, name: &str) -> Option<&'a str> {
    headers.and_then(|h| h.get(name)).map(|v| v.as_str())
}

impl<'a> ClusterHeaders<'a> {
    /// The cluster headers of a message as it came.
    pub fn of(headers: Option<&'a async_nats::HeaderMap>) -> Self {
        ClusterHeaders {
            level: header(headers, HEADER_LEVEL),
            timestamp_ms: header(headers, HEADER_TIMESTAMP),
            received_ms: header(headers, HEADER_RECEIVED),
        }
    }
}

/// The payload: the delivered event without `id`. Unknown fields (an `id`
/// among them) are refused, and serde refuses a repeated field, so no key
/// the checks did not see can reach a client.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ClusterBody<'a> {
    #[serde(borrow)]
    channel: Cow<'a, str>,
    #[serde(borrow)]
    service: Cow<'a, str>,
    #[serde(borrow, default)]
    workspace_id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    resource_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    level: Cow<'a, str>,
    #[serde(borrow)]
    message: Cow<'a, str>,
    #[serde(borrow)]
    timestamp: Cow<'a, str>,
    #[serde(borrow)]
    received_at: Cow<'a, str>,
    #[serde(borrow, default)]
    stream: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    source: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    meta: Option<&'a RawValue>,
}

fn invalid(message: String) -> PublishError {
    PublishError::InvalidEvent {
        index: None,
        message,
    }
}

/// At most `n` characters of client text, for an error message.
fn clip(text: &str, n: usize) -> String {
    text.chars().take(n).collect()
}

/// The channel a subject names: `<prefix>.<service>[.<workspace>[.<resource>]]`.
fn subject_channel(prefix: &str, subject: &str) -> Result<ChannelName, PublishError> {
    let rest = subject
        .strip_prefix(prefix)
        .and_then(|r| r.strip_prefix('.'))
        .ok_or_else(|| {
            invalid(format!(
                "subject {:?} is not under {prefix}.",
                clip(subject, 200)
            ))
        })?;
    let mut tokens = rest.split('.');
    let service = tokens.next().unwrap_or_default();
    let (workspace, resource) = (tokens.next(), tokens.next());
    if tokens.next().is_some() {
        return Err(invalid(format!(
            "subject {:?} has more than service, workspace and resource after {prefix}.",
            clip(subject, 200)
        )));
    }
    ChannelName::from_parts(service, workspace, resource).map_err(|source| {
        PublishError::InvalidChannel {
            index: None,
            source,
        }
    })
}

/// A time as loggate writes it (RFC 3339 in UTC, as [`format_time`] or
/// [`Received`] spell it), checked against its header in Unix ms. Only
/// these spellings pass, so an event looks the same on every node.
fn origin_time(text: &str, header: Option<&str>, name: &str) -> Result<i64, PublishError> {
    let bad = |value: &str| PublishError::InvalidTimestamp {
        index: None,
        value: clip(value, 48),
    };
    let t = DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .ok()
        .filter(|t| format_time(*t) == text || Received::at(*t).text == text)
        .ok_or_else(|| bad(text))?;
    let ms = t.timestamp_millis();
    let header = header.ok_or_else(|| invalid(format!("header {name} is missing")))?;
    if header.parse::<i64>().ok() != Some(ms) {
        return Err(bad(header));
    }
    Ok(ms)
}

/// Checks one cluster message and encodes its event afresh, as an HTTP
/// publish would be: at most `max_event_bytes` plus
/// [`ENCODING_HEADROOM`], a channel named by `subject` (under `prefix`)
/// that the body agrees with, the fields of the delivered event and no
/// other, a known level, the origin's times in loggate's own spelling and
/// agreeing with the headers, `meta` at most 32 levels deep. `timestamp`
/// and `received_at` are kept from the origin, so the event reads the same
/// on every node.
pub fn decode_cluster(
    prefix: &str,
    subject: &str,
    headers: ClusterHeaders<'_>,
    payload: &[u8],
    max_event_bytes: usize,
) -> Result<NewEvent, PublishError> {
    check_size(
        payload.len(),
        max_event_bytes.saturating_add(ENCODING_HEADROOM),
    )?;
    let channel = subject_channel(prefix, subject)?;
    let body: ClusterBody<'_> =
        serde_json::from_slice(payload).map_err(|e| event_error(None, e))?;
    let agrees = body.channel == channel.as_str()
        && body.service == channel.service()
        && body.workspace_id.as_deref() == channel.workspace()
        && body.resource_id.as_deref() == channel.resource();
    if !agrees {
        return Err(invalid(format!(
            "the body's channel {:?} is not {:?}, the subject's",
            clip(&body.channel, 200),
            channel.as_str()
        )));
    }
    let level = Level::parse(&body.level).ok_or_else(|| PublishError::InvalidLevel {
        index: None,
        level: clip(&body.level, 32),
    })?;
    match headers.level {
        None => return Err(invalid(format!("header {HEADER_LEVEL} is missing"))),
        Some(h) if Level::parse(h) != Some(level) => {
            return Err(invalid(format!(
                "header {HEADER_LEVEL} {:?} disagrees with the body's level",
                clip(h, 32)
            )));
        }
        Some(_) => {}
    }
    let times = EventTimes {
        timestamp_ms: origin_time(&body.timestamp, headers.timestamp_ms, HEADER_TIMESTAMP)?,
        received_ms: origin_time(&body.received_at, headers.received_ms, HEADER_RECEIVED)?,
    };
    let meta = clean_meta(body.meta, None)?;
    let event = EventBody {
        channel: channel.as_str(),
        service: channel.service(),
        workspace_id: channel.workspace(),
        resource_id: channel.resource(),
        level,
        message: &body.message,
        timestamp: &body.timestamp,
        received_at: &body.received_at,
        stream: body.stream.as_deref().filter(|s| !s.is_empty()),
        source: body.source.as_deref().filter(|s| !s.is_empty()),
        meta: meta.as_deref(),
    };
    Ok(NewEvent::new(channel.clone(), level, times, &event))
}

/// Most origin nodes whose sequence a node follows. Origins are named by
/// whoever may publish on the cluster subjects, so the table is bounded:
/// when full, the origin heard from least recently is forgotten (and, if
/// it speaks again, followed afresh, as a node just joined is).
pub const MAX_ORIGINS: usize = 256;

/// Added to the time since an origin's number last moved before the
/// plausible jump is worked out: the receiving node reads in batches, and
/// a busy one may read two messages together that the origin sent this
/// far apart. A real loss is never larger than the origin's rate allows
/// for that long plus this.
pub const PLAUSIBLE_GRACE: std::time::Duration = std::time::Duration::from_secs(2);

/// What a message's number says, for its origin's sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Followed {
    /// This many of the origin's messages before it never arrived (0: in
    /// order, late, repeated, or the first heard of a new origin).
    Lost(u64),
    /// Further past the expected number than the origin can have sent
    /// since its number last moved: refused, and nothing is moved.
    Implausible,
    /// A mark below what the origin was already heard at: no node sends
    /// one (its marks follow its events). Refused, nothing moved.
    Rewound,
}

/// Where one origin's sequence stands.
#[derive(Debug)]
struct Origin {
    /// The next number expected.
    next: u64,
    /// When last heard from, in messages observed (for forgetting).
    heard: u64,
    /// When `next` last moved: the origin's numbers since then can only
    /// have grown by what it can accept in that time.
    moved: std::time::Instant,
}

/// The next sequence number expected from each origin node, and the
/// holes: a message whose number is past the expected one means the
/// numbers between were lost on the way. A new origin (a node that
/// started, or that this node just began to hear) is followed from its
/// first message, not reported: its id changes with every start, so a
/// restart is a new origin, not a loss.
///
/// The numbers are whoever publishes on the cluster subjects, so a jump is
/// believed only as far as a real node could have gone: `max_rate` events
/// a second (`nats.max_node_events_per_sec`) for the time since the
/// origin's number last moved, plus [`PLAUSIBLE_GRACE`]. A larger one is
/// [`Followed::Implausible`] and changes nothing, so it can neither add
/// to the loss count nor move the origin's number past its real messages
/// (which would hide their holes, or make them look late). Only a number
/// that moves the sequence forward restarts the clock: a repeated mark
/// does not, so no one can keep a node that is cut off looking recently
/// heard and have its real loss refused when it comes back.
#[derive(Debug)]
pub struct OriginSequences {
    origins: std::collections::HashMap<Box<str>, Origin>,
    observed: u64,
    /// Events a second an origin can plausibly lose.
    max_rate: u64,
    /// Origins forgotten because the table was full.
    pub forgotten: u64,
}

impl OriginSequences {
    /// Follows origins that accept at most `max_rate` events a second.
    pub fn new(max_rate: u64) -> Self {
        OriginSequences {
            origins: std::collections::HashMap::new(),
            observed: 0,
            max_rate,
            forgotten: 0,
        }
    }

    /// Notes event `seq` of `origin`, read at `now`.
    pub fn observe(&mut self, origin: &str, seq: u64, now: std::time::Instant) -> Followed {
        // u64::MAX must not overflow.
        self.heard(origin, seq, seq.saturating_add(1), false, now)
    }

    /// Notes `origin`'s mark, read at `now`: `last` was the last number it
    /// gave.
    pub fn mark(&mut self, origin: &str, last: u64, now: std::time::Instant) -> Followed {
        let after = last.saturating_add(1);
        self.heard(origin, after, after, true, now)
    }

    /// Every number of `origin` below `upto` should have arrived; `next`
    /// is the one expected after this.
    fn heard(
        &mut self,
        origin: &str,
        upto: u64,
        next_after: u64,
        mark: bool,
        now: std::time::Instant,
    ) -> Followed {
        self.observed += 1;
        let order = self.observed;
        let max_rate = self.max_rate;
        if let Some(o) = self.origins.get_mut(origin) {
            if upto < o.next {
                if mark {
                    return Followed::Rewound;
                }
                // A late or repeated event: nothing lost, nothing moved back.
                o.heard = order;
                return Followed::Lost(0);
            }
            let lost = upto - o.next;
            if lost > allowance(max_rate, now.saturating_duration_since(o.moved)) {
                return Followed::Implausible;
            }
            o.heard = order;
            if next_after > o.next {
                o.next = next_after;
                o.moved = now;
            }
            return Followed::Lost(lost);
        }
        if self.origins.len() >= MAX_ORIGINS
            && let Some(oldest) = self
                .origins
                .iter()
                .min_by_key(|(_, o)| o.heard)
                .map(|(name, _)| name.clone())
        {
            self.origins.remove(&oldest);
            self.forgotten += 1;
        }
        self.origins.insert(
            origin.into(),
            Origin {
                next: next_after,
                heard: order,
                moved: now,
            },
        );
        Followed::Lost(0)
    }
}

/// The most an origin accepting `max_rate` events a second can have
/// numbered in `elapsed` (plus [`PLAUSIBLE_GRACE`]).
fn allowance(max_rate: u64, elapsed: std::time::Duration) -> u64 {
    let ms = (elapsed + PLAUSIBLE_GRACE).as_millis();
    u64::try_from(u128::from(max_rate).saturating_mul(ms) / 1000).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Event, EventId};
    use crate::ingest::{BodyFormat, Limits, parse_body};

    const MAX: usize = 64 * 1024;
    const SUBJECT: &str = "loggate.etl.ws1.r1";
    const TIME: &str = "2025-09-25T10:30:00.123Z";
    const MS: &str = "1758796200123";

    fn headers() -> ClusterHeaders<'static> {
        ClusterHeaders {
            level: Some("warn"),
            timestamp_ms: Some(MS),
            received_ms: Some(MS),
        }
    }

    /// The delivered fields of a good event without the braces, so a case
    /// can add to them.
    fn fields(channel: &str) -> String {
        let parts: Vec<&str> = channel.split(':').collect();
        let mut out = format!(r#""channel":"{channel}","service":"{}""#, parts[1]);
        if let Some(w) = parts.get(2) {
            out.push_str(&format!(r#","workspace_id":"{w}""#));
        }
        if let Some(r) = parts.get(3) {
            out.push_str(&format!(r#","resource_id":"{r}""#));
        }
        out.push_str(&format!(
            r#","level":"warn","message":"m","timestamp":"{TIME}","received_at":"{TIME}""#
        ));
        out
    }

    fn decode(subject: &str, payload: &str) -> Result<NewEvent, PublishError> {
        decode_cluster("loggate", subject, headers(), payload.as_bytes(), MAX)
    }

    fn code(subject: &str, payload: &str) -> &'static str {
        match decode(subject, payload) {
            Ok(_) => panic!("{payload:.200} on {subject} should be refused"),
            Err(e) => e.code(),
        }
    }

    fn delivered(e: NewEvent) -> String {
        let ev = Event::encode(EventId { epoch: 1, seq: 1 }, e);
        String::from_utf8(ev.json().to_vec()).unwrap()
    }

    #[test]
    fn a_good_event_round_trips_byte_for_byte() {
        let payload = format!(
            r#"{{{},"stream":"stdout","source":"api","meta":{{"rows":12,"x":[1.50e3]}}}}"#,
            fields("logs:etl:ws1:r1")
        );
        let e = decode(SUBJECT, &payload).unwrap();
        assert_eq!(e.channel.as_str(), "logs:etl:ws1:r1");
        assert_eq!(e.level, Level::Warn);
        assert_eq!(e.times.timestamp_ms, 1758796200123);
        assert_eq!(e.times.received_ms, 1758796200123);
        assert_eq!(&*e.message, "m");
        assert_eq!(&e.body_tail[..], &payload.as_bytes()[1..]);
        let json = delivered(e);
        assert!(json.starts_with(r#"{"id":"000000000001-000000000001","channel""#));
        // Shorter channels, and what a node writes for an HTTP publish.
        assert!(decode("loggate.etl", &format!("{{{}}}", fields("logs:etl"))).is_ok());
        let received = Received::at(DateTime::parse_from_rfc3339(TIME).unwrap().into());
        let http = br#"{"service":"etl","workspace_id":"ws1","resource_id":"r1","logData":{"level":"WARNING","message":"m","meta":{ "a" : [1, 2] }}}"#;
        let limits = Limits {
            max_event_bytes: MAX,
            max_batch_events: 1,
        };
        let sent = parse_body(http, BodyFormat::Json, "etl", &received, limits)
            .unwrap()
            .remove(0);
        let payload = [b"{".as_slice(), &sent.body_tail].concat();
        let got = decode_cluster("loggate", SUBJECT, headers(), &payload, MAX).unwrap();
        assert_eq!(got.body_tail, sent.body_tail);
        assert_eq!(got.times, sent.times);
    }

    #[test]
    fn an_event_accepted_at_the_limit_is_accepted_by_peers() {
        // The most an HTTP event grows by: the channel form (ids spelled
        // out on the way out), no level, no timestamp.
        let seg = "s".repeat(64);
        let head = format!(r#"{{"channel":"logs:{seg}:{seg}:{seg}","logData":{{"message":""#);
        let tail = r#""}}"#;
        let pad = "x".repeat(MAX - head.len() - tail.len());
        let body = format!("{head}{pad}{tail}");
        assert_eq!(body.len(), MAX);
        let received = Received::at(DateTime::parse_from_rfc3339(TIME).unwrap().into());
        let limits = Limits {
            max_event_bytes: MAX,
            max_batch_events: 1,
        };
        let sent = parse_body(body.as_bytes(), BodyFormat::Json, &seg, &received, limits)
            .unwrap()
            .remove(0);
        let payload = [b"{".as_slice(), &sent.body_tail].concat();
        let growth = payload.len() - MAX;
        assert!(growth < 400, "grew by {growth}");
        let subject = format!("loggate.{seg}.{seg}.{seg}");
        let headers = ClusterHeaders {
            level: Some("info"),
            ..headers()
        };
        assert!(decode_cluster("loggate", &subject, headers, &payload, MAX).is_ok());
    }

    #[test]
    fn oversize_is_refused_before_parsing() {
        let payload = format!(
            r#"{{{},"meta":"{}"}}"#,
            fields("logs:etl:ws1:r1"),
            "x".repeat(MAX + ENCODING_HEADROOM)
        );
        assert_eq!(code(SUBJECT, &payload), "event_too_large");
        assert_eq!(code(SUBJECT, &"x".repeat(900_000)), "event_too_large");
    }

    #[test]
    fn meta_is_bounded_and_compact() {
        let nested = |n: usize| {
            format!(
                r#"{{{},"meta":{}1{}}}"#,
                fields("logs:etl:ws1:r1"),
                "[".repeat(n),
                "]".repeat(n)
            )
        };
        assert_eq!(code(SUBJECT, &nested(120)), "invalid_event");
        assert_eq!(code(SUBJECT, &nested(33)), "invalid_event");
        assert!(decode(SUBJECT, &nested(32)).is_ok());
        let spaced = format!(
            "{{{},\"meta\":{{\n\"a\" :\r\n[1, \"b c\"]\r}}}}",
            fields("logs:etl:ws1:r1")
        );
        let json = delivered(decode(SUBJECT, &spaced).unwrap());
        assert!(json.ends_with(r#","meta":{"a":[1,"b c"]}}"#), "{json}");
    }

    #[test]
    fn the_subject_names_the_channel() {
        let faas = format!("{{{}}}", fields("logs:faas:ws1:r1"));
        assert_eq!(code(SUBJECT, &faas), "invalid_event");
        let cases = [
            // The body may not disagree with its subject in any part.
            (SUBJECT, fields("logs:etl:ws1:r2")),
            (SUBJECT, fields("logs:etl:ws1")),
            ("loggate.etl.ws1", fields("logs:etl:ws1:r1")),
            (
                SUBJECT,
                fields("logs:etl:ws1:r1").replace(r#""service":"etl""#, r#""service":"faas""#),
            ),
            (
                SUBJECT,
                fields("logs:etl:ws1:r1").replace(r#","resource_id":"r1""#, ""),
            ),
            // Subjects outside the prefix or deeper than a channel.
            ("other.etl.ws1.r1", fields("logs:etl:ws1:r1")),
            ("loggateX.etl.ws1.r1", fields("logs:etl:ws1:r1")),
            ("loggate.etl.ws1.r1.x", fields("logs:etl:ws1:r1")),
        ];
        for (subject, f) in cases {
            assert_eq!(
                code(subject, &format!("{{{f}}}")),
                "invalid_event",
                "{subject} {f}"
            );
        }
        // A token that cannot be a channel segment.
        for subject in ["loggate.et:l", "loggate.etl..r1", "loggate.", "loggate.*"] {
            let e = decode(subject, &format!("{{{}}}", fields("logs:etl"))).unwrap_err();
            assert_eq!(e.code(), "invalid_channel", "{subject}: {e}");
        }
    }

    #[test]
    fn only_the_delivered_fields_once_each() {
        let good = fields("logs:etl:ws1:r1");
        let cases = [
            format!(r#"{{"id":"000000000001-000000000001",{good}}}"#),
            format!(r#"{{{good},"id":"x"}}"#),
            format!(r#"{{{good},"extra":1}}"#),
            format!(r#"{{{good},"message":"again"}}"#),
            format!(r#"{{{good},"level":"fatal"}}"#),
            format!(r#"{{"channel":"logs:etl:ws1:r1",{good}}}"#),
            format!(r#"{{{good},"meta":1,"meta":2}}"#),
            format!("{{{}}}", good.replace(r#","message":"m""#, "")),
            format!("{{{}}}", good.replace(r#""message":"m""#, r#""message":1"#)),
        ];
        for payload in cases {
            assert_eq!(code(SUBJECT, &payload), "invalid_event", "{payload}");
        }
        assert_eq!(code(SUBJECT, "{"), "invalid_json");
        assert_eq!(code(SUBJECT, "not json"), "invalid_json");
        assert_eq!(code(SUBJECT, ""), "invalid_json");
    }

    #[test]
    fn level_and_times_must_be_loggates_own() {
        let good = format!("{{{}}}", fields("logs:etl:ws1:r1"));
        let with = |h: ClusterHeaders<'static>| {
            decode_cluster("loggate", SUBJECT, h, good.as_bytes(), MAX).map_err(|e| e.code())
        };
        assert!(with(headers()).is_ok());
        let cases = [
            (
                ClusterHeaders {
                    level: None,
                    ..headers()
                },
                "invalid_event",
            ),
            (
                ClusterHeaders {
                    level: Some("error"),
                    ..headers()
                },
                "invalid_event",
            ),
            (
                ClusterHeaders {
                    level: Some("loud"),
                    ..headers()
                },
                "invalid_event",
            ),
            (
                ClusterHeaders {
                    timestamp_ms: None,
                    ..headers()
                },
                "invalid_event",
            ),
            (
                ClusterHeaders {
                    received_ms: None,
                    ..headers()
                },
                "invalid_event",
            ),
            (
                ClusterHeaders {
                    timestamp_ms: Some("1"),
                    ..headers()
                },
                "invalid_timestamp",
            ),
            (
                ClusterHeaders {
                    received_ms: Some("x"),
                    ..headers()
                },
                "invalid_timestamp",
            ),
        ];
        for (h, want) in cases {
            assert_eq!(with(h).err(), Some(want), "{h:?}");
        }
        // A level header in another spelling of the same level is fine.
        assert!(
            with(ClusterHeaders {
                level: Some("WARNING"),
                ..headers()
            })
            .is_ok()
        );
        let body = |level: &str, ts: &str| {
            format!(
                "{{{}}}",
                fields("logs:etl:ws1:r1")
                    .replace(r#""level":"warn""#, &format!(r#""level":"{level}""#))
                    .replacen(TIME, ts, 1)
            )
        };
        assert_eq!(code(SUBJECT, &body("loud", TIME)), "invalid_level");
        for ts in [
            "yesterday",
            "2025-09-25T12:30:00.123+02:00",
            "2025-09-25t10:30:00.123z",
            "2025-09-25T10:30:00.1230Z",
        ] {
            assert_eq!(
                code(SUBJECT, &body("warn", ts)),
                "invalid_timestamp",
                "{ts}"
            );
        }
        // Both of loggate's spellings pass: with and without sub-seconds.
        let whole = body("warn", "2025-09-25T10:30:00Z");
        let h = ClusterHeaders {
            timestamp_ms: Some("1758796200000"),
            ..headers()
        };
        assert!(decode_cluster("loggate", SUBJECT, h, whole.as_bytes(), MAX).is_ok());
        let millis = body("warn", "2025-09-25T10:30:00.000Z");
        assert!(decode_cluster("loggate", SUBJECT, h, millis.as_bytes(), MAX).is_ok());
    }

    /// A million events a second, as the default.
    const RATE: u64 = 1_000_000;

    fn follower() -> (OriginSequences, std::time::Instant) {
        (OriginSequences::new(RATE), std::time::Instant::now())
    }

    #[test]
    fn holes_in_an_origins_sequence_are_counted_once() {
        let (mut seqs, t) = follower();
        let mut observe = |o: &str, seq: u64| seqs.observe(o, seq, t);
        assert_eq!(
            observe("a", 7),
            Followed::Lost(0),
            "a new origin is followed, not reported"
        );
        assert_eq!(observe("a", 8), Followed::Lost(0));
        assert_eq!(observe("a", 11), Followed::Lost(2));
        assert_eq!(
            observe("a", 10),
            Followed::Lost(0),
            "late: nothing more lost"
        );
        assert_eq!(observe("a", 12), Followed::Lost(0));
        assert_eq!(
            observe("b", 1),
            Followed::Lost(0),
            "another origin, its own sequence"
        );
        assert_eq!(observe("b", 3), Followed::Lost(1));
        assert_eq!(observe("a", 13), Followed::Lost(0));
    }

    #[test]
    fn a_mark_reveals_a_hole_at_the_end_of_what_an_origin_sent() {
        let (mut seqs, t) = follower();
        assert_eq!(
            seqs.mark("a", 5, t),
            Followed::Lost(0),
            "first heard: followed from here"
        );
        assert_eq!(seqs.observe("a", 6, t), Followed::Lost(0));
        assert_eq!(seqs.observe("a", 7, t), Followed::Lost(0));
        // 8, 9 and 10 never came, and nothing after them: the mark says so.
        assert_eq!(seqs.mark("a", 10, t), Followed::Lost(3));
        assert_eq!(seqs.mark("a", 10, t), Followed::Lost(0), "told once");
        assert_eq!(
            seqs.mark("a", 9, t),
            Followed::Rewound,
            "a mark below what was heard moves nothing back"
        );
        assert_eq!(seqs.observe("a", 11, t), Followed::Lost(0));
        assert_eq!(
            seqs.mark("a", 11, t),
            Followed::Lost(0),
            "nothing lost, nothing told"
        );
        // The subject no channel can have, under this prefix only.
        let m = encode_mark("loggate", "node-1", 42);
        assert!(is_mark("loggate", &m.subject), "{}", m.subject);
        assert_eq!(header(Some(&m.headers), HEADER_SEQ), Some("42"));
        assert!(!is_mark("loggate", "loggate.etl"));
        assert!(!is_mark("other", &m.subject));
        assert!(!is_mark("logg", &m.subject));
        assert!(ChannelName::parse("logs:$seq").is_err());
    }

    #[test]
    fn a_jump_no_node_could_have_made_is_refused_and_moves_nothing() {
        let (mut seqs, t) = follower();
        assert_eq!(seqs.observe("a", 100, t), Followed::Lost(0));
        let soon = t + std::time::Duration::from_millis(100);
        // 2.1 s at a million a second: 2,100,000 more numbers at most.
        for forged in [1 << 63, u64::MAX, 101 + 1_000_000_000, 101 + 2_100_001] {
            assert_eq!(
                seqs.mark("a", forged, soon),
                Followed::Implausible,
                "{forged}"
            );
            assert_eq!(
                seqs.observe("a", forged, soon),
                Followed::Implausible,
                "{forged}"
            );
        }
        // Nothing moved: the origin's next real message is judged as if
        // the forgeries never came, and a real hole is told exactly.
        assert_eq!(seqs.observe("a", 101, soon), Followed::Lost(0));
        assert_eq!(seqs.observe("a", 105, soon), Followed::Lost(3));
        assert_eq!(
            seqs.mark("a", 105 + 2_000_000, soon),
            Followed::Lost(2_000_000),
            "the most a node can lose at once: the grace of 2 s"
        );
        // A node cut off for an hour lost what an hour allows.
        let later = soon + std::time::Duration::from_secs(3600);
        let hour = 3_602 * RATE;
        let next = 106 + 2_000_000;
        assert_eq!(
            seqs.observe("a", next + hour + 1, later),
            Followed::Implausible
        );
        assert_eq!(seqs.observe("a", next + hour, later), Followed::Lost(hour));
    }

    #[test]
    fn repeated_marks_do_not_make_a_node_look_recently_heard() {
        let (mut seqs, t) = follower();
        assert_eq!(seqs.observe("a", 1, t), Followed::Lost(0));
        // The node is cut off for 60 s; meanwhile someone repeats its last
        // mark every second. Its real loss is still plausible when it is
        // back: only a number that moves restarts the clock.
        let mut now = t;
        for _ in 0..60 {
            now += std::time::Duration::from_secs(1);
            assert_eq!(seqs.mark("a", 1, now), Followed::Lost(0));
        }
        assert_eq!(
            seqs.observe("a", 2 + 60 * RATE, now),
            Followed::Lost(60 * RATE)
        );
    }

    #[test]
    fn forged_extreme_numbers_neither_panic_nor_wrap() {
        let (mut seqs, t) = follower();
        assert_eq!(seqs.observe("x", u64::MAX, t), Followed::Lost(0));
        assert_eq!(
            seqs.observe("x", u64::MAX, t),
            Followed::Lost(0),
            "a repeat of the last is not a loss"
        );
        assert_eq!(seqs.mark("x", u64::MAX, t), Followed::Lost(0));
        assert_eq!(seqs.observe("y", 0, t), Followed::Lost(0));
        assert_eq!(seqs.observe("y", u64::MAX, t), Followed::Implausible);
        assert_eq!(seqs.mark("y", u64::MAX - 1, t), Followed::Implausible);
        assert_eq!(seqs.observe("y", 5, t), Followed::Lost(4));
        let forever = t + std::time::Duration::from_secs(u64::MAX / RATE);
        assert_eq!(
            seqs.observe("y", u64::MAX, forever),
            Followed::Lost(u64::MAX - 6)
        );
        assert_eq!(
            allowance(u64::MAX, std::time::Duration::MAX - PLAUSIBLE_GRACE),
            u64::MAX
        );
    }

    #[test]
    fn the_origin_table_is_bounded_and_forgets_the_quietest() {
        let (mut seqs, t) = follower();
        for i in 0..MAX_ORIGINS {
            seqs.observe(&format!("n{i}"), 1, t);
        }
        seqs.observe("n0", 2, t);
        seqs.observe("newcomer", 1, t);
        assert_eq!((seqs.origins.len(), seqs.forgotten), (MAX_ORIGINS, 1));
        assert!(
            !seqs.origins.contains_key("n1"),
            "n1 was heard from least recently"
        );
        assert_eq!(
            seqs.observe("n0", 4, t),
            Followed::Lost(1),
            "n0 is still followed"
        );
    }

    #[test]
    fn subjects_follow_the_channel() {
        let c = ChannelName::parse("logs:etl:ws1:r1").unwrap();
        assert_eq!(subject("loggate.prod", &c), "loggate.prod.etl.ws1.r1");
        assert_eq!(
            subject_channel("loggate.prod", "loggate.prod.etl.ws1.r1").unwrap(),
            c
        );
    }
}

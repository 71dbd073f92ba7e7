//! Log events: levels, ids, and the encode-once wire forms.
//!
//! An event exists in two stages. A [`NewEvent`] is what ingestion (HTTP,
//! NATS) validated: its channel, level and a pre-serialised JSON body
//! holding every field except `id`. The registry, the single place that
//! orders events, gives it an [`EventId`] and turns it into an [`Event`]: the
//! delivered JSON and its SSE frame, built once as `Bytes` and shared by
//! every subscriber (a clone is a reference count, never a re-serialisation).
//!
//! Every JSON a client reads from loggate is written by [`write_json`]:
//! compact, and with the characters JSON allows raw but a terminal or a
//! line reader acts on (DEL, the C1 controls U+0080–U+009F, U+2028,
//! U+2029) written as `\uXXXX`, in strings and in the publisher's `meta`
//! alike; JSON itself escapes the C0 controls. So no control character
//! leaves loggate raw: `curl -N` of a stream in a terminal shows what a
//! publisher sent as text, and the JSON still reads back as what was sent.

use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, OnceLock};

use bytes::{BufMut, Bytes, BytesMut};
use serde::Serialize;
use serde_json::value::RawValue;

use crate::channel::ChannelName;

mod json;
pub mod ws_frame;

pub use json::{escape_json_text, json_string, write_json};
pub use ws_frame::{ws_frame_with_opcode, ws_text_frame};

/// Severity, ordered so that `level >= Warn` keeps warnings and worse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
    Fatal,
}

impl Level {
    /// Every level, in order: `ALL[level as usize] == level`.
    pub const ALL: [Level; 6] = [
        Level::Trace,
        Level::Debug,
        Level::Info,
        Level::Warn,
        Level::Error,
        Level::Fatal,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Level::Trace => "trace",
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
            Level::Fatal => "fatal",
        }
    }

    /// Normalises the spellings loggers use, in any case: `WARNING` → warn,
    /// `ERR` → error, syslog's `notice`/`crit` and friends to their nearest
    /// level. Anything else is refused rather than guessed.
    pub fn parse(text: &str) -> Option<Level> {
        const NAMES: &[(&str, Level)] = &[
            ("trace", Level::Trace),
            ("debug", Level::Debug),
            ("dbg", Level::Debug),
            ("info", Level::Info),
            ("information", Level::Info),
            ("notice", Level::Info),
            ("warn", Level::Warn),
            ("warning", Level::Warn),
            ("error", Level::Error),
            ("err", Level::Error),
            ("fatal", Level::Fatal),
            ("critical", Level::Fatal),
            ("crit", Level::Fatal),
            ("alert", Level::Fatal),
            ("emerg", Level::Fatal),
            ("panic", Level::Fatal),
        ];
        let text = text.trim();
        NAMES
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(text))
            .map(|(_, level)| *level)
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Epochs of ids drawn from a JetStream stream (`nats::jetstream`) have this
/// bit set; node epochs (Unix milliseconds) will not reach it before the
/// year 2527, so an id of one kind is never taken for the other.
pub const STREAM_EPOCH_BIT: u64 = 1 << 44;

/// An event's position in one gateway's stream: `epoch` names the gateway's
/// run (its start time in ms), `seq` counts accepted events from 1. The text
/// form is fixed-width, so ids of one run also sort as strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EventId {
    pub epoch: u64,
    pub seq: u64,
}

impl EventId {
    /// The text form, `{epoch:012x}-{seq:012}`, formatted on the stack:
    /// the registry writes one per accepted event, and `to_string` spent
    /// more on growing its `String` than on the digits.
    pub fn text(&self) -> IdText {
        let mut out = IdText {
            buf: [0; ID_TEXT_MAX],
            len: 0,
        };
        out.push_digits::<16>(self.epoch);
        out.buf[out.len] = b'-';
        out.len += 1;
        out.push_digits::<10>(self.seq);
        out
    }
}

/// The longest id text: 16 hex digits, `-`, 20 decimal digits.
const ID_TEXT_MAX: usize = 37;

/// An [`EventId`]'s text, by value; derefs to `&str`.
#[derive(Clone, Copy)]
pub struct IdText {
    buf: [u8; ID_TEXT_MAX],
    len: usize,
}

impl IdText {
    /// Appends `n` in `RADIX` (10 or 16, lower-case), at least 12 digits.
    /// A constant radix lets the compiler divide by multiplying.
    fn push_digits<const RADIX: u64>(&mut self, mut n: u64) {
        let mut digits = [b'0'; 20];
        let mut i = digits.len();
        while n > 0 {
            i -= 1;
            digits[i] = b"0123456789abcdef"[(n % RADIX) as usize];
            n /= RADIX;
        }
        let start = i.min(digits.len() - 12);
        let part = &digits[start..];
        self.buf[self.len..self.len + part.len()].copy_from_slice(part);
        self.len += part.len();
    }
}

impl serde::Serialize for IdText {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self)
    }
}

impl std::ops::Deref for IdText {
    type Target = str;

    fn deref(&self) -> &str {
        // Only ASCII digits, hex letters and `-` are ever written.
        std::str::from_utf8(&self.buf[..self.len]).unwrap_or_default()
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text())
    }
}

impl FromStr for EventId {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, ()> {
        let (epoch, seq) = s.trim().split_once('-').ok_or(())?;
        Ok(EventId {
            epoch: u64::from_str_radix(epoch, 16).map_err(|_| ())?,
            seq: seq.parse().map_err(|_| ())?,
        })
    }
}

/// Why a resume could not be exact.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GapReason {
    /// Retention limits evicted events after the resume point.
    HistoryTrimmed,
    /// More was missed than the connection's queue holds; the oldest were
    /// skipped.
    ReplayTruncated,
    /// The id is from another run of the gateway, whose history is gone.
    UnknownEpoch,
    /// Events another node of the cluster accepted never arrived here.
    ClusterLoss,
    /// The gateway stopped without writing everything it had sent
    /// (killed, or the machine lost power): events after the resume point
    /// may be gone from the store.
    RestartLoss,
}

impl GapReason {
    /// The `reason` of the `gap` notice.
    pub fn as_str(self) -> &'static str {
        match self {
            GapReason::HistoryTrimmed => "history_trimmed",
            GapReason::ReplayTruncated => "replay_truncated",
            GapReason::UnknownEpoch => "unknown_epoch",
            GapReason::ClusterLoss => "cluster_loss",
            GapReason::RestartLoss => "restart_loss",
        }
    }
}

/// What a resuming subscriber is told when history cannot cover the
/// events since its `Last-Event-ID`; sent before the replay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gap {
    pub reason: GapReason,
    /// How many events were lost, when known.
    pub lost: Option<u64>,
    /// The first event replayed after the gap, if any.
    pub resumed_from: Option<EventId>,
    /// For `cluster_loss`: the node whose events were lost.
    pub origin: Option<String>,
}

impl Gap {
    /// The notice as JSON: `{"reason":…,"lost":N|null,"resumed_from":id|null}`,
    /// and `"origin"` when it names a node.
    pub fn to_json(&self) -> String {
        let mut json = serde_json::json!({
            "reason": self.reason.as_str(),
            "lost": self.lost,
            "resumed_from": self.resumed_from.map(|id| id.to_string()),
        });
        if let (Some(origin), Some(obj)) = (&self.origin, json.as_object_mut()) {
            obj.insert("origin".into(), origin.as_str().into());
        }
        // The origin is a NATS header: whoever publishes there names it.
        json_string(&json)
    }
}

/// The delivered fields other than `id`, in the contract's order.
#[derive(Serialize)]
pub struct EventBody<'a> {
    pub channel: &'a str,
    pub service: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workspace_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource_id: Option<&'a str>,
    pub level: Level,
    pub message: &'a str,
    pub timestamp: &'a str,
    pub received_at: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stream: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub meta: Option<&'a RawValue>,
}

impl EventBody<'_> {
    /// About the length of the JSON object: the field names and their
    /// quoting, plus an eighth on the message for escapes.
    fn encoded_size_hint(&self) -> usize {
        let opt = |s: Option<&str>| s.map_or(0, |s| s.len() + 20);
        self.channel.len()
            + self.service.len()
            + opt(self.workspace_id)
            + opt(self.resource_id)
            + self.message.len()
            + self.message.len() / 8
            + self.timestamp.len()
            + self.received_at.len()
            + opt(self.stream)
            + opt(self.source)
            + self.meta.map_or(0, |m| m.get().len() + 10)
            + 96
    }
}

/// The current time in Unix milliseconds.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// When an event happened and when loggate received it, in Unix
/// milliseconds: history filters on the first and expires on the second.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EventTimes {
    pub timestamp_ms: i64,
    pub received_ms: i64,
}

/// A validated event that has no id yet.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub channel: ChannelName,
    pub level: Level,
    pub times: EventTimes,
    /// Kept beside the JSON for the `q` filter.
    pub message: Box<str>,
    /// `"channel":…}`: the event's JSON object without its opening brace and
    /// `id`, so the registry only has to prepend `{"id":"…",`.
    pub body_tail: Bytes,
}

impl NewEvent {
    pub fn new(
        channel: ChannelName,
        level: Level,
        times: EventTimes,
        body: &EventBody<'_>,
    ) -> Self {
        // Sized up front: grown from empty, the buffer was reallocated
        // seven times per event.
        let mut json = Vec::with_capacity(body.encoded_size_hint());
        write_json(&mut json, body)
            .expect("serialising strings and already-valid raw JSON cannot fail");
        // serde_json writes an object, so byte 0 is `{`; drop it.
        let body_tail = Bytes::from(json).slice(1..);
        NewEvent {
            channel,
            level,
            times,
            message: Box::from(body.message),
            body_tail,
        }
    }
}

/// An accepted event, encoded once. Shared as `Arc<Event>` between the
/// registry, every subscriber queue and history.
#[derive(Debug)]
pub struct Event {
    pub id: EventId,
    pub channel: ChannelName,
    pub level: Level,
    pub times: EventTimes,
    pub message: Box<str>,
    /// `event: log\nid: …\ndata: {…}\n\n`; [`Event::json`] is a slice of it.
    sse: Bytes,
    json_range: (usize, usize),
    /// `{"type":"log","event":{…}}`, built on first use by a WebSocket.
    ws: OnceLock<Bytes>,
}

impl Event {
    pub fn encode(id: EventId, new: NewEvent) -> Arc<Event> {
        let id_text = id.text();
        let mut buf = BytesMut::with_capacity(new.body_tail.len() + 2 * id_text.len() + 48);
        buf.put_slice(b"event: log\nid: ");
        buf.put_slice(id_text.as_bytes());
        buf.put_slice(b"\ndata: ");
        let start = buf.len();
        buf.put_slice(b"{\"id\":\"");
        buf.put_slice(id_text.as_bytes());
        buf.put_slice(b"\",");
        buf.put_slice(&new.body_tail);
        let end = buf.len();
        buf.put_slice(b"\n\n");
        Arc::new(Event {
            id,
            channel: new.channel,
            level: new.level,
            times: new.times,
            message: new.message,
            sse: buf.freeze(),
            json_range: (start, end),
            ws: OnceLock::new(),
        })
    }

    /// The delivered event JSON, one line.
    pub fn json(&self) -> Bytes {
        self.sse.slice(self.json_range.0..self.json_range.1)
    }

    /// The whole SSE frame, ready to write.
    pub fn sse_frame(&self) -> &Bytes {
        &self.sse
    }

    /// The whole WebSocket frame, `{"type":"log","event":{…}}`, ready to
    /// write. Server frames are unmasked, so one encoding serves every
    /// subscriber.
    pub fn ws_frame(&self) -> &Bytes {
        self.ws.get_or_init(|| {
            let json = &self.sse[self.json_range.0..self.json_range.1];
            let mut payload = Vec::with_capacity(json.len() + 24);
            payload.extend_from_slice(b"{\"type\":\"log\",\"event\":");
            payload.extend_from_slice(json);
            payload.push(b'}');
            ws_text_frame(&payload)
        })
    }

    pub fn service(&self) -> &str {
        self.channel.service()
    }

    /// Bytes this event occupies in a queue, for byte-bounded queues.
    pub fn size(&self) -> usize {
        self.sse.len()
    }
}

/// Events for unit tests elsewhere in the crate.
#[cfg(test)]
pub(crate) mod testing {
    use super::*;

    /// An accepted event `seq` on `channel`, received (and stamped) at
    /// `received_ms`.
    pub fn event(
        seq: u64,
        channel: &str,
        level: Level,
        message: &str,
        received_ms: i64,
    ) -> Arc<Event> {
        Event::encode(
            EventId { epoch: 1, seq },
            new_event(channel, level, message, received_ms),
        )
    }

    /// A validated event, before the registry gives it an id.
    pub fn new_event(channel: &str, level: Level, message: &str, received_ms: i64) -> NewEvent {
        let channel = ChannelName::parse(channel).expect("a test channel");
        let body = EventBody {
            channel: channel.as_str(),
            service: channel.service(),
            workspace_id: channel.workspace(),
            resource_id: channel.resource(),
            level,
            message,
            timestamp: "2025-09-25T10:30:00Z",
            received_at: "2025-09-25T10:30:00Z",
            stream: None,
            source: None,
            meta: None,
        };
        let times = EventTimes {
            timestamp_ms: received_ms,
            received_ms,
        };
        NewEvent::new(channel.clone(), level, times, &body)
    }
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use super::*;

    #[test]
    fn level_normalisation() {
        assert_eq!(Level::parse("WARNING"), Some(Level::Warn));
        assert_eq!(Level::parse("Err"), Some(Level::Error));
        assert_eq!(Level::parse("info"), Some(Level::Info));
        assert_eq!(Level::parse(" FATAL "), Some(Level::Fatal));
        assert_eq!(Level::parse("verbose"), None);
        assert_eq!(Level::parse(""), None);
        assert!(Level::Warn > Level::Info && Level::Fatal > Level::Error);
    }

    #[test]
    fn ids_round_trip_and_sort_as_text() {
        let a = EventId {
            epoch: 0x19a_0000_0000,
            seq: 9,
        };
        let b = EventId {
            epoch: 0x19a_0000_0000,
            seq: 10,
        };
        assert_eq!(a.to_string().parse::<EventId>(), Ok(a));
        assert!(a < b && a.to_string() < b.to_string());
        assert!("nonsense".parse::<EventId>().is_err());
        for (epoch, seq) in [
            (0, 0),
            (1, 7),
            (0x19a2_b3c4_d5e6, 999_999_999_999),
            (0xffff_ffff_ffff, 1_000_000_000_000),
            (u64::MAX, u64::MAX),
        ] {
            let id = EventId { epoch, seq };
            assert_eq!(&*id.text(), format!("{epoch:012x}-{seq:012}"));
        }
        assert!("zz-1".parse::<EventId>().is_err());
    }

    #[test]
    fn escapes_past_the_size_hint_still_encode() {
        // Every control character becomes a six-byte `\u00XX`: six times
        // the size hint's allowance for the message.
        let message: String = (0..4000u32)
            .map(|i| char::from_u32(i % 32).unwrap_or('"'))
            .collect();
        let channel = ChannelName::parse("logs:etl").unwrap();
        let body = EventBody {
            channel: channel.as_str(),
            service: "etl",
            workspace_id: None,
            resource_id: None,
            level: Level::Info,
            message: &message,
            timestamp: "2025-09-25T10:30:00Z",
            received_at: "2025-09-25T10:30:01Z",
            stream: None,
            source: None,
            meta: None,
        };
        assert!(body.encoded_size_hint() < message.len() * 2);
        let new = NewEvent::new(channel.clone(), Level::Info, EventTimes::default(), &body);
        let ev = Event::encode(EventId { epoch: 1, seq: 1 }, new);
        let json: serde_json::Value = serde_json::from_slice(&ev.json()).unwrap();
        assert_eq!(json["message"], message.as_str());
    }

    /// Every character [`next_unsafe`] names, raw, between text.
    fn unsafe_text() -> String {
        ('\u{7f}'..='\u{9f}')
            .chain(['\u{2028}', '\u{2029}'])
            .collect()
    }

    #[test]
    fn c1_controls_and_separators_leave_escaped_everywhere() {
        let all = unsafe_text();
        let channel = ChannelName::parse("logs:etl:ws1").unwrap();
        let meta_text = format!(r#"{{"k{all}":["{all}",{{"{all}":1}}]}}"#);
        let meta = RawValue::from_string(meta_text.clone()).unwrap();
        let body = EventBody {
            channel: channel.as_str(),
            service: "etl",
            workspace_id: Some("ws1"),
            resource_id: None,
            level: Level::Info,
            message: &format!("csi \u{9b}2J {all}"),
            timestamp: "2025-09-25T10:30:00Z",
            received_at: "2025-09-25T10:30:01Z",
            stream: Some(&all),
            source: Some(&all),
            meta: Some(&meta),
        };
        let new = NewEvent::new(channel.clone(), Level::Info, EventTimes::default(), &body);
        let ev = Event::encode(EventId { epoch: 1, seq: 1 }, new.clone());
        let text = std::str::from_utf8(&ev.json()).unwrap().to_owned();
        for c in all.chars() {
            assert!(!text.contains(c), "a raw {c:?} in {text}");
        }
        assert_eq!(text.matches(r"\u009b").count(), 1 + 6, "{text}");
        assert_eq!(text.matches(r"\u2028").count(), 6, "{text}");
        assert!(text.contains(r"\u007f") && text.contains(r"\u0080") && text.contains(r"\u009f"));
        let json: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(json["message"], body.message);
        assert_eq!(json["stream"], all.as_str());
        assert_eq!(json["source"], all.as_str());
        let meta_value: serde_json::Value = serde_json::from_str(&meta_text).unwrap();
        assert_eq!(json["meta"], meta_value);
        // The other transports are slices and wraps of the same bytes.
        assert!(
            !std::str::from_utf8(ev.sse_frame())
                .unwrap()
                .contains('\u{9b}')
        );
        assert!(!String::from_utf8_lossy(ev.ws_frame()).contains('\u{9b}'));
        // Encoding what was decoded gives the same bytes (a cluster peer
        // re-encodes what it receives).
        let message = json["message"].as_str().unwrap();
        let again = EventBody {
            message,
            stream: json["stream"].as_str(),
            source: json["source"].as_str(),
            ..body
        };
        let again = NewEvent::new(channel.clone(), Level::Info, EventTimes::default(), &again);
        assert_eq!(again.body_tail, new.body_tail);
    }

    #[test]
    fn other_text_is_written_as_serde_json_writes_it() {
        // The lead bytes 0xC2 and 0xE2 begin many other characters.
        let text = "\u{a0}©°± — … € ‰ ™ \u{2027}\u{202a} é ✓ 日本 \u{1f600} \x1b\n\"\\";
        assert_eq!(json_string(text), serde_json::to_string(text).unwrap());
        let value = serde_json::json!({"a": [1, 2.5, null, true, text]});
        assert_eq!(json_string(&value), value.to_string());
    }

    #[test]
    fn escaping_other_json_keeps_its_value() {
        let all = unsafe_text();
        let raw = serde_json::json!({"message": all, "n": 1, "k\u{85}": "é"}).to_string();
        assert!(raw.contains('\u{85}'));
        let escaped = escape_json_text(&raw);
        assert!(matches!(escaped, Cow::Owned(_)));
        assert!(!escaped.chars().any(|c| all.contains(c)), "{escaped}");
        let a: serde_json::Value = serde_json::from_str(&raw).unwrap();
        let b: serde_json::Value = serde_json::from_str(&escaped).unwrap();
        assert_eq!(a, b);
        assert_eq!(escaped, json_string(&a));
        let plain = r#"{"message":"é — € \u009b"}"#;
        assert!(matches!(escape_json_text(plain), Cow::Borrowed(t) if t == plain));
        // At the very end of the text.
        assert_eq!(escape_json_text("\"x\u{2029}\""), r#""x\u2029""#);
    }

    #[test]
    fn a_gap_names_its_origin_escaped() {
        let gap = Gap {
            reason: GapReason::ClusterLoss,
            lost: Some(3),
            resumed_from: None,
            origin: Some("node\u{9b}2J\u{2028}".into()),
        };
        let json = gap.to_json();
        assert!(json.contains(r#""origin":"node\u009b2J\u2028""#), "{json}");
    }

    #[test]
    fn encodes_once_with_id_first() {
        let channel = ChannelName::parse("logs:etl:ws1").unwrap();
        let meta = RawValue::from_string(r#"{"rows":12}"#.into()).unwrap();
        let body = EventBody {
            channel: channel.as_str(),
            service: "etl",
            workspace_id: Some("ws1"),
            resource_id: None,
            level: Level::Info,
            message: "line\nwith newline",
            timestamp: "2025-09-25T10:30:00Z",
            received_at: "2025-09-25T10:30:01Z",
            stream: None,
            source: Some("api"),
            meta: Some(&meta),
        };
        let id = EventId { epoch: 1, seq: 7 };
        let ev = Event::encode(
            id,
            NewEvent::new(channel.clone(), Level::Info, EventTimes::default(), &body),
        );
        let json: serde_json::Value = serde_json::from_slice(&ev.json()).unwrap();
        assert_eq!(json["id"], id.to_string());
        assert_eq!(json["message"], "line\nwith newline");
        assert_eq!(json["meta"]["rows"], 12);
        assert!(json.get("resource_id").is_none());
        let frame = std::str::from_utf8(ev.sse_frame()).unwrap();
        assert!(frame.starts_with("event: log\nid: 000000000001-000000000007\ndata: {\"id\""));
        assert_eq!(frame.matches('\n').count(), 4, "data stays on one line");
        let frame = ev.ws_frame();
        assert_eq!(frame[0], 0x81, "FIN + text");
        let header = match frame[1] {
            126 => 4,
            127 => 10,
            _ => 2,
        };
        let ws: serde_json::Value = serde_json::from_slice(&frame[header..]).unwrap();
        assert_eq!(ws["type"], "log");
        assert_eq!(ws["event"], json);
    }
}

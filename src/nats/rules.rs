//! Generic NATS ingest: `[[nats.ingest]]` rules let any NATS publisher feed
//! channels, on the cluster connection (`NATS_URL`).
//!
//! A rule is a NATS subject (wildcards allowed) and a channel template in
//! which `{1}`, `{2}`, … stand for the message subject's tokens. A JSON
//! payload may carry `message`, `level`, `timestamp`, `stream`, `source` and
//! `meta` (other fields are ignored); anything else becomes an `info` line
//! with the payload as its message. A message whose channel would be invalid
//! is refused and counted, never delivered to a guessed channel; so is one
//! that fails the checks of an HTTP publish (size, level, timestamp, `meta`
//! depth).

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::config::IngestRule;
use crate::event::NewEvent;
use crate::ingest::{
    PublishError, RawEvent, RawLogData, Received, check_encoded, check_size, validate,
};

/// The fields a generic JSON payload may carry.
#[derive(Deserialize)]
struct Generic<'a> {
    #[serde(borrow)]
    message: Cow<'a, str>,
    #[serde(borrow, default)]
    level: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    timestamp: Option<&'a RawValue>,
    #[serde(borrow, default)]
    stream: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    source: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    meta: Option<&'a RawValue>,
}

/// The event for one message on `subject` matched by `rule`, checked as an
/// HTTP publish would be: a payload over `max_event_bytes` is refused, and
/// so is an event whose encoding outgrew what other nodes accept (see
/// [`crate::ingest::ENCODING_HEADROOM`]). Pure, for tests and fuzzing.
pub fn decode_rule(
    rule: &IngestRule,
    subject: &str,
    payload: &[u8],
    received: &Received,
    max_event_bytes: usize,
) -> Result<NewEvent, PublishError> {
    check_size(payload.len(), max_event_bytes)?;
    let channel = rule
        .channel_for(subject)
        .ok_or_else(|| PublishError::InvalidEvent {
            index: None,
            message: format!(
                "subject {:?} lacks a token channel {:?} asks for",
                subject.chars().take(200).collect::<String>(),
                rule.channel
            ),
        })?;
    let text;
    let data = match serde_json::from_slice::<Generic<'_>>(payload) {
        Ok(g) => RawLogData {
            level: g.level,
            message: g.message,
            timestamp: g.timestamp,
            stream: g.stream,
            source: g.source,
            meta: g.meta,
        },
        Err(_) => {
            text = String::from_utf8_lossy(payload);
            RawLogData {
                level: Some("info".into()),
                message: Cow::Borrowed(text.trim_end()),
                timestamp: None,
                stream: None,
                source: None,
                meta: None,
            }
        }
    };
    let raw = RawEvent {
        service: None,
        workspace_id: None,
        resource_id: None,
        workflow_id: None,
        channel: Some(channel.into()),
        log_data: data,
    };
    validate(raw, None, received, None).and_then(|e| check_encoded(e, max_event_bytes, None))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Event, EventId};

    const MAX: usize = 64 * 1024;

    fn rule(subject: &str, channel: &str) -> IngestRule {
        IngestRule {
            subject: subject.into(),
            channel: channel.into(),
        }
    }

    #[test]
    fn templates_fill_from_subject_tokens() {
        let r = rule("app.*.logs.>", "logs:{2}:{4}");
        assert!(r.validate().is_ok());
        assert_eq!(
            r.channel_for("app.billing.logs.ws1").as_deref(),
            Some("logs:billing:ws1")
        );
        assert_eq!(r.channel_for("app.billing"), None, "missing token");
        for bad in ["logs:{0}", "logs:{x}", "logs:{1", "metrics:{1}"] {
            assert!(rule("a.>", bad).validate().is_err(), "{bad}");
        }
    }

    #[test]
    fn json_and_plain_payloads() {
        let r = rule("app.>", "logs:{2}:{3}");
        let now = Received::now();
        let e = decode_rule(
            &r,
            "app.billing.ws1",
            br#"{"message":"paid","level":"WARNING","extra":1}"#,
            &now,
            MAX,
        )
        .unwrap();
        let ev = Event::encode(EventId { epoch: 1, seq: 1 }, e);
        let j: serde_json::Value = serde_json::from_slice(&ev.json()).unwrap();
        assert_eq!(
            (
                j["channel"].as_str(),
                j["level"].as_str(),
                j["message"].as_str()
            ),
            (Some("logs:billing:ws1"), Some("warn"), Some("paid"))
        );
        let e = decode_rule(&r, "app.billing.ws1", b"just text\n", &now, MAX).unwrap();
        assert_eq!(&*e.message, "just text");
        let code = |subject: &str, payload: &[u8]| {
            decode_rule(&r, subject, payload, &now, MAX)
                .err()
                .map(|e| e.code())
        };
        // A token that cannot be a channel segment is refused.
        assert_eq!(code("app.bil*ling.ws1", b"x"), Some("invalid_channel"));
        assert_eq!(code("app.billing", b"x"), Some("invalid_event"));
        // The checks of an HTTP publish.
        let ok = "app.billing.ws1";
        assert_eq!(code(ok, &vec![b'x'; MAX + 1]), Some("event_too_large"));
        assert_eq!(code(ok, &vec![1u8; MAX]), Some("event_too_large"));
        let deep = format!(
            r#"{{"message":"m","meta":{}1{}}}"#,
            "[".repeat(120),
            "]".repeat(120)
        );
        assert_eq!(code(ok, deep.as_bytes()), Some("invalid_event"));
        assert_eq!(
            code(ok, br#"{"message":"m","level":"loud"}"#),
            Some("invalid_level")
        );
        let spaced = decode_rule(
            &r,
            ok,
            b"{\"message\":\"m\",\"meta\":{\n\"a\" : 1}}",
            &now,
            MAX,
        );
        let tail = spaced.unwrap().body_tail;
        assert!(tail.ends_with(br#","meta":{"a":1}}"#), "{tail:?}");
    }
}

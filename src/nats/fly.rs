//! Fly.io log-bus ingest: `logs.<app>.<region>.<instance>` messages become
//! events on `logs:<app>:<org>:<instance>`.
//!
//! Fly's JSON gives `level`, `message`, `timestamp`, `source` (the event
//! provider) and `meta` (`region`, `host`). A payload that is not that JSON
//! is kept as a plain `info` line, never dropped. Refused (and counted by
//! reason): a message whose subject or names cannot form a valid channel,
//! and one over `publish.max_event_bytes`, as an HTTP publish would be.
//! The subject, not the payload, names the app: whoever may publish on
//! `logs.<app>.>` can write that app's lines and no other's.

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::event::NewEvent;
use crate::ingest::{
    PublishError, RawEvent, RawLogData, Received, check_encoded, check_size, validate,
};

/// What the Fly link subscribes to and how it names channels.
#[derive(Debug, Clone)]
pub struct FlyIngest {
    pub org: String,
    /// `None` (or `*`): every app of the org.
    pub app: Option<String>,
    /// A NATS queue group, so several gateways share one org's stream.
    pub queue: Option<String>,
}

impl FlyIngest {
    pub fn subject(&self) -> String {
        match self.app.as_deref() {
            None | Some("*") | Some("") => "logs.>".into(),
            Some(app) => format!("logs.{app}.>"),
        }
    }

    /// The event for one log-bus message; `true` beside it when the payload
    /// was not Fly's JSON (kept as a plain line, and counted as such).
    pub fn decode(
        &self,
        subject: &str,
        payload: &[u8],
        max_event_bytes: usize,
    ) -> Result<(NewEvent, bool), PublishError> {
        let event = decode_fly(
            &self.org,
            subject,
            payload,
            &Received::now(),
            max_event_bytes,
        )?;
        let plain = serde_json::from_slice::<FlyLog<'_>>(payload).is_err();
        Ok((event, plain))
    }
}

#[derive(Deserialize)]
struct FlyLog<'a> {
    #[serde(borrow, default)]
    event: Option<FlyEvent<'a>>,
    #[serde(borrow)]
    fly: Option<FlyMeta<'a>>,
    #[serde(borrow, default)]
    host: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow, default)]
    log: Option<FlyLevel<'a>>,
    #[serde(borrow)]
    message: std::borrow::Cow<'a, str>,
    #[serde(borrow, default)]
    timestamp: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct FlyEvent<'a> {
    #[serde(borrow, default)]
    provider: Option<std::borrow::Cow<'a, str>>,
}

#[derive(Deserialize)]
struct FlyMeta<'a> {
    #[serde(borrow, default)]
    app: Option<FlyApp<'a>>,
    #[serde(borrow, default)]
    region: Option<std::borrow::Cow<'a, str>>,
}

#[derive(Deserialize)]
struct FlyApp<'a> {
    // `name` is not read: the subject names the app.
    #[serde(borrow, default)]
    instance: Option<std::borrow::Cow<'a, str>>,
}

#[derive(Deserialize)]
struct FlyLevel<'a> {
    #[serde(borrow, default)]
    level: Option<std::borrow::Cow<'a, str>>,
}

/// Maps one message on `subject` to an event of `org`, checked as an HTTP
/// publish would be: a payload over `max_event_bytes` is refused, and so is
/// an event whose encoding outgrew what other nodes accept (see
/// [`crate::ingest::ENCODING_HEADROOM`]). Pure, for tests and fuzzing.
pub fn decode_fly(
    org: &str,
    subject: &str,
    payload: &[u8],
    received: &Received,
    max_event_bytes: usize,
) -> Result<NewEvent, PublishError> {
    check_size(payload.len(), max_event_bytes)?;
    map(org, subject, payload, received).and_then(|e| check_encoded(e, max_event_bytes, None))
}

fn map(
    org: &str,
    subject: &str,
    payload: &[u8],
    received: &Received,
) -> Result<NewEvent, PublishError> {
    // logs.<app>.<region>.<instance>
    let mut tokens = subject.split('.');
    let (Some("logs"), Some(app), region, instance) =
        (tokens.next(), tokens.next(), tokens.next(), tokens.next())
    else {
        return Err(PublishError::InvalidEvent {
            index: None,
            message: format!(
                "subject {:?} is not logs.<app>.<region>.<instance>",
                subject.chars().take(200).collect::<String>()
            ),
        });
    };
    let parsed: Option<FlyLog<'_>> = serde_json::from_slice(payload).ok();
    let Some(log) = parsed else {
        // Not Fly's JSON: a plain info line, named by the subject alone.
        let text = String::from_utf8_lossy(payload);
        let raw = RawEvent {
            service: Some(app.into()),
            workspace_id: Some(org.into()),
            resource_id: instance.map(Into::into),
            workflow_id: None,
            channel: None,
            log_data: RawLogData {
                level: Some("info".into()),
                message: text.trim_end().to_owned().into(),
                timestamp: None,
                stream: None,
                source: None,
                meta: None,
            },
        };
        return validate(raw, None, received, None);
    };
    // The subject names the app and instance, not the JSON: NATS grants
    // permissions by subject, so a payload must not be able to move a line
    // onto another app's channel. The JSON only fills what the subject lacks.
    let fly_app = log.fly.as_ref().and_then(|f| f.app.as_ref());
    let app_name = app;
    let instance = instance.or(fly_app.and_then(|a| a.instance.as_deref()));
    let region = log
        .fly
        .as_ref()
        .and_then(|f| f.region.as_deref())
        .or(region);
    let meta = serde_json::json!({"region": region, "host": log.host.as_deref()}).to_string();
    let meta = RawValue::from_string(meta).ok();
    // Fly's levels are the usual words; anything else is kept as info.
    let level = log
        .log
        .as_ref()
        .and_then(|l| l.level.as_deref())
        .filter(|l| crate::event::Level::parse(l).is_some())
        .unwrap_or("info");
    let source = log.event.as_ref().and_then(|e| e.provider.clone());
    let attempt = |timestamp: Option<&RawValue>| {
        let raw = RawEvent {
            service: Some(app_name.into()),
            workspace_id: Some(org.into()),
            resource_id: instance.map(Into::into),
            workflow_id: None,
            channel: None,
            log_data: RawLogData {
                level: Some(level.into()),
                message: log.message.clone(),
                timestamp,
                stream: None,
                source: source.clone(),
                meta: meta.as_deref(),
            },
        };
        validate(raw, None, received, None)
    };
    // A timestamp Fly wrote in a form we do not read falls back to receipt
    // rather than losing the line.
    attempt(log.timestamp).or_else(|e| match e {
        PublishError::InvalidTimestamp { .. } => attempt(None),
        e => Err(e),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Event, EventId};

    const MAX: usize = 64 * 1024;

    fn json(e: NewEvent) -> serde_json::Value {
        let ev = Event::encode(EventId { epoch: 1, seq: 1 }, e);
        serde_json::from_slice(&ev.json()).unwrap()
    }

    #[test]
    fn fly_json_maps_to_the_contract_event() {
        let payload = br#"{"event":{"provider":"app"},"fly":{"app":{"instance":"inst1","name":"myapp"},"region":"iad"},"host":"h1","log":{"level":"warn"},"message":"hello","timestamp":"2025-09-25T10:30:00Z"}"#;
        let e = decode_fly(
            "myorg",
            "logs.myapp.iad.inst1",
            payload,
            &Received::now(),
            MAX,
        )
        .unwrap();
        let j = json(e);
        assert_eq!(j["channel"], "logs:myapp:myorg:inst1");
        assert_eq!(j["level"], "warn");
        assert_eq!(j["message"], "hello");
        assert_eq!(j["timestamp"], "2025-09-25T10:30:00Z");
        assert_eq!(j["source"], "app");
        assert_eq!(
            j["meta"],
            serde_json::json!({"region": "iad", "host": "h1"})
        );
    }

    #[test]
    fn other_payloads_become_info_lines() {
        let e = decode_fly(
            "myorg",
            "logs.myapp.iad.inst1",
            b"plain text line\n",
            &Received::now(),
            MAX,
        )
        .unwrap();
        let j = json(e);
        assert_eq!(j["channel"], "logs:myapp:myorg:inst1");
        assert_eq!(j["level"], "info");
        assert_eq!(j["message"], "plain text line");
        // A subject that cannot name a channel is refused.
        let code = |org: &str, subject: &str, payload: &[u8]| {
            decode_fly(org, subject, payload, &Received::now(), MAX)
                .err()
                .map(|e| e.code())
        };
        assert_eq!(code("myorg", "metrics.x", b"x"), Some("invalid_event"));
        assert_eq!(code("my.org", "logs.a.b.c", b"x"), Some("invalid_channel"));
    }

    #[test]
    fn publish_limits_apply() {
        let code = |payload: &[u8]| {
            decode_fly("o", "logs.a.r.i", payload, &Received::now(), MAX)
                .err()
                .map(|e| e.code())
        };
        assert_eq!(code(&vec![b'x'; MAX + 1]), Some("event_too_large"));
        assert_eq!(code(&vec![b'x'; MAX]), None);
        // A plain line of control bytes grows sixfold once escaped.
        assert_eq!(code(&vec![1u8; MAX]), Some("event_too_large"));
        let fly = |message: &str| {
            format!(r#"{{"fly":{{"app":{{"instance":"i"}},"region":"r"}},"message":"{message}"}}"#)
        };
        assert_eq!(
            code(fly(&"m".repeat(MAX)).as_bytes()),
            Some("event_too_large")
        );
        assert_eq!(code(fly("ok").as_bytes()), None);
    }

    #[test]
    fn subject_per_app() {
        let f = |app: Option<&str>| {
            FlyIngest {
                org: "o".into(),
                app: app.map(Into::into),
                queue: None,
            }
            .subject()
        };
        assert_eq!(f(Some("myapp")), "logs.myapp.>");
        assert_eq!(f(Some("*")), "logs.>");
        assert_eq!(f(None), "logs.>");
    }
}

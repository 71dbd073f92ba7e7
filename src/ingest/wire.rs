//! Events as publishers send them, and the times loggate stamps on them.

use std::borrow::Cow;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Deserialize;
use serde_json::value::RawValue;

/// One event as publishers send it. Unknown fields are refused, so a typo
/// such as `workspaceId` is an error instead of an event on the wrong channel.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawEvent<'a> {
    #[serde(borrow, default)]
    pub service: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub workspace_id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub resource_id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub workflow_id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub channel: Option<Cow<'a, str>>,
    #[serde(rename = "logData", borrow)]
    pub log_data: RawLogData<'a>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLogData<'a> {
    #[serde(borrow, default)]
    pub level: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub message: Cow<'a, str>,
    #[serde(borrow, default)]
    pub timestamp: Option<&'a RawValue>,
    #[serde(borrow, default)]
    pub stream: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub source: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub meta: Option<&'a RawValue>,
}

/// RFC 3339 in UTC with the precision the input had; the form every
/// timestamp leaves loggate in.
pub fn format_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// The time of receipt: `received_at` as written, and in Unix ms.
#[derive(Debug, Clone)]
pub struct Received {
    pub text: String,
    pub ms: i64,
}

impl Received {
    pub fn now() -> Self {
        Self::at(Utc::now())
    }

    pub fn at(t: DateTime<Utc>) -> Self {
        Received {
            text: t.to_rfc3339_opts(SecondsFormat::Millis, true),
            ms: t.timestamp_millis(),
        }
    }
}

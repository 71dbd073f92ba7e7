//! Publish bodies: one event, a JSON array of events, or NDJSON, each
//! element sized, parsed and validated; all or nothing.

use serde_json::value::RawValue;

use super::PublishError;
use super::validate::{check_encoded, validate};
use super::wire::{RawEvent, Received};
use crate::event::NewEvent;

/// The body format of a publish request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFormat {
    Json,
    Ndjson,
}

/// Limits applied while parsing a body.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_event_bytes: usize,
    pub max_batch_events: usize,
}

fn json_error(index: Option<usize>, e: serde_json::Error) -> PublishError {
    PublishError::InvalidJson {
        index,
        message: e.to_string(),
    }
}

/// A failed parse of one event: `invalid_event` when the JSON was well
/// formed but not an event (a missing, unknown or repeated field),
/// `invalid_json` otherwise.
pub fn event_error(index: Option<usize>, e: serde_json::Error) -> PublishError {
    if e.is_data() {
        PublishError::InvalidEvent {
            index,
            message: e.to_string(),
        }
    } else {
        json_error(index, e)
    }
}

fn parse_one(
    text: &RawValue,
    service: &str,
    received_at: &Received,
    index: Option<usize>,
    limits: Limits,
) -> Result<NewEvent, PublishError> {
    let size = text.get().len();
    if size > limits.max_event_bytes {
        return Err(PublishError::EventTooLarge {
            index,
            size,
            max: limits.max_event_bytes,
        });
    }
    let raw: RawEvent<'_> = serde_json::from_str(text.get()).map_err(|e| event_error(index, e))?;
    // Escapes can grow an event (a raw C1 control, two bytes, is written
    // as six): past what other nodes take, it is refused here, as the
    // other ingest paths do.
    validate(raw, Some(service), received_at, index)
        .and_then(|e| check_encoded(e, limits.max_event_bytes, index))
}

/// Parses and validates a whole publish body for `service`. All or nothing:
/// the first bad event fails the request.
pub fn parse_body(
    body: &[u8],
    format: BodyFormat,
    service: &str,
    received_at: &Received,
    limits: Limits,
) -> Result<Vec<NewEvent>, PublishError> {
    match format {
        BodyFormat::Json => {
            let first = body.iter().find(|b| !b.is_ascii_whitespace());
            match first {
                None => Err(PublishError::InvalidJson {
                    index: None,
                    message: "empty body: send one event, an array of events, or NDJSON".into(),
                }),
                Some(b'[') => {
                    let items: Vec<&RawValue> =
                        serde_json::from_slice(body).map_err(|e| json_error(None, e))?;
                    if items.len() > limits.max_batch_events {
                        return Err(PublishError::BatchTooLarge {
                            count: items.len(),
                            max: limits.max_batch_events,
                        });
                    }
                    items
                        .iter()
                        .enumerate()
                        .map(|(i, item)| parse_one(item, service, received_at, Some(i), limits))
                        .collect()
                }
                Some(_) => {
                    let item: &RawValue =
                        serde_json::from_slice(body).map_err(|e| json_error(None, e))?;
                    Ok(vec![parse_one(item, service, received_at, None, limits)?])
                }
            }
        }
        BodyFormat::Ndjson => {
            let lines: Vec<&[u8]> = body
                .split(|b| *b == b'\n')
                .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
                .filter(|l| l.iter().any(|b| !b.is_ascii_whitespace()))
                .collect();
            if lines.len() > limits.max_batch_events {
                return Err(PublishError::BatchTooLarge {
                    count: lines.len(),
                    max: limits.max_batch_events,
                });
            }
            lines
                .iter()
                .enumerate()
                .map(|(i, line)| {
                    if line.len() > limits.max_event_bytes {
                        return Err(PublishError::EventTooLarge {
                            index: Some(i),
                            size: line.len(),
                            max: limits.max_event_bytes,
                        });
                    }
                    let item: &RawValue =
                        serde_json::from_slice(line).map_err(|e| json_error(Some(i), e))?;
                    parse_one(item, service, received_at, Some(i), limits)
                })
                .collect()
        }
    }
}

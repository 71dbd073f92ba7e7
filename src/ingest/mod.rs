//! Ingestion: turning what publishers send into validated [`NewEvent`](crate::event::NewEvent)s.
//!
//! Owns the publish body formats (one event, a JSON array, NDJSON), the
//! event fields and their rules, and the [`PublishError`] every refusal maps
//! to: [`wire`] (what publishers send), [`validate`](mod@validate) (the rules of an
//! event), [`json`] (`meta`), [`formats`] (body formats), [`error`]; these do
//! not know about HTTP, so the NATS paths apply the same rules.
//!
//! Three HTTP endpoints take events, and all go through [`request`]
//! (token, byte rate, body limit, decompression in [`compression`], where
//! the work runs, event rate, registry, metrics):
//! [`http`] (`/api/logs/publish`), [`otlp`] (OpenTelemetry's `/v1/logs`) and
//! [`loki`] (Loki's push). Each only reads its own format into the fields
//! [`validate`](validate()) checks, and words refusals its own way. Validated
//! events go to the registry as one `Publish` message per request, which
//! makes a request all-or-nothing: nothing is sent until every event passed.
//!
//! `/api/logs/publish` and `/test/logs` take an `Idempotency-Key`:
//! `crate::idempotency` holds the keys already answered (a retry is
//! answered the first `202`, publishing nothing), reached through
//! `AppState`; [`request`] asks it once the body is read.

pub mod compression;
pub mod error;
pub mod formats;
pub mod http;
pub mod json;
pub mod loki;
pub mod otlp;
pub mod protobuf;
pub mod rate;
pub mod request;
#[cfg(test)]
mod tests;
pub mod validate;
pub mod wire;

pub use error::PublishError;
pub use formats::{BodyFormat, Limits, event_error, parse_body};
pub use json::{MAX_META_DEPTH, clean_meta, minify_json};
pub use validate::{ENCODING_HEADROOM, check_encoded, check_size, validate};
pub use wire::{RawEvent, RawLogData, Received, format_time};

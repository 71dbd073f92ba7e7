//! loggate: a real-time log gateway.
//!
//! Services POST log events; people watch them live over SSE or WebSocket.
//! The pieces, each owning one concern and talking to the others through
//! small messages:
//!
//! - [`config`]: the typed configuration, its sources and validation.
//! - [`channel`]: channel names and patterns (`logs:svc:ws:res`, `*`),
//!   matching and containment.
//! - [`event`]: levels, ids, and the encode-once wire forms of an event.
//! - [`registry`]: the `Registry` actor: the subscription trie, event
//!   ordering and fan-out into session outboxes. Only it touches the index;
//!   it writes history, which the history endpoint reads under a lock.
//! - [`session`]: subscriber sessions: request parsing, filters, connection
//!   caps, the bounded drop-oldest [`session::outbox::Outbox`], and the SSE
//!   and WebSocket transports.
//! - [`ingest`]: publish bodies and event validation; `ingest::http` is the
//!   `POST /api/logs/publish` handler.
//! - [`auth`]: service tokens, subscriber JWTs and channel grants.
//! - [`limits`]: publish and connection rate limits (governor).
//! - [`http`]: shared state, routes, the JSON error body, probes.
//! - [`logging`]: log output that never blocks the gateway.
//! - [`metrics`]: Prometheus metrics with bounded labels.
//! - [`nats`]: the NATS bridge actor: cluster mode and Fly.io ingest.
//! - [`server`]: wiring, graceful shutdown, and [`server::spawn`] for tests.

pub mod auth;
pub mod channel;
pub mod config;
pub mod delivery;
pub mod digest;
pub mod error;
pub mod event;
pub mod http;
pub mod ingest;
pub mod limits;
pub mod logging;
pub mod metrics;
pub mod nats;
pub mod registry;
pub mod server;
pub mod session;
pub mod state;

pub use config::Config;
pub use server::{Gateway, Running, serve, spawn};

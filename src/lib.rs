//! loggate: a real-time log gateway.
//!
//! Services publish log events (HTTP, NATS); people watch them live over
//! SSE or WebSocket. The modules, from the ground up (each imports only
//! modules listed before it; `ARCHITECTURE.md` draws it):
//!
//! - Ground: [`channel`] (names, patterns, matching), [`metrics`] (bounded
//!   labels, named once in `metrics::label`), [`error`] (the JSON error
//!   body), [`digest`] (token digests), [`event`] (levels, ids, the
//!   encode-once wire forms), [`config`] (plain settings: sources and
//!   validation), [`logging`] (log output that never blocks),
//!   [`request_body`] (request bodies under a limit and a deadline),
//!   [`sse_reader`] (server-sent events read as a client, for the CLI and
//!   the AI's model server).
//! - [`limits`]: rate limits and connection slots. [`auth`]: service tokens,
//!   subscriber JWTs and grants, the admin token. [`idempotency`]: the
//!   `Idempotency-Key`s publishes were answered under, per service, bounded.
//! - [`delivery`]: what the registry and the sessions share: the bounded
//!   drop-oldest outbox, filters, and each transport's framing.
//! - [`store`]: the durable history store (segment files in `DATA_DIR`,
//!   their writer thread, recovery at start).
//! - [`registry`]: the `Registry` actor: the subscription trie, event
//!   ordering and fan-out into outboxes; the history it writes; the queue of
//!   events it shares with the cluster.
//! - [`state`]: `AppState`, what every handler may reach.
//! - Handlers by concern: [`session`] (the SSE and WebSocket transports and
//!   the gate every subscriber passes), [`ingest`] (publish bodies, the
//!   rules of an event; `POST /api/logs/publish`, OTLP's `/v1/logs`, Loki's
//!   push), [`nats`] (the NATS bridge actor: cluster, Fly.io, ingest
//!   rules), [`ai`] (`/api/ai/chat`: the model server, the tools it may
//!   call over a tenant's own logs, redaction), [`http`] (the route table,
//!   probes, admin, history pages, the metrics dashboard).
//! - Top: [`server`]: wiring, graceful shutdown, and [`server::spawn`] for
//!   tests and benchmarks. [`cli`]: the `loggate` commands other than the
//!   gateway itself (`tail`, `publish`, `channels`), clients of its HTTP
//!   API.

pub mod ai;
pub mod auth;
pub mod channel;
pub mod cli;
pub mod config;
pub mod delivery;
pub mod digest;
pub mod error;
pub mod event;
pub mod http;
pub mod idempotency;
pub mod ingest;
pub mod limits;
pub mod logging;
pub mod metrics;
pub mod nats;
pub mod registry;
pub mod request_body;
pub mod server;
pub mod session;
pub mod sse_reader;
pub mod state;
pub mod store;

pub use config::Config;
pub use server::{Gateway, GatewayThread, serve, spawn};

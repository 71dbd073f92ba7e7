//! loggate's integration tests, one module per area, compiled into one test
//! binary so the crate and its dependencies are linked once (the layout
//! cargo itself uses). Each test starts what it needs on ephemeral ports:
//! the gateway in this process (`testkit::app`), the real binary
//! (`testkit::process`, `testkit::node`), nats-server, Chromium.
//!
//! Run one area with a filter on its module path, e.g.
//! `cargo test --test it nats::` or `cargo test --test it ai::tenancy`.
//! The soak test is a binary of its own (`tests/soak.rs`, see there).

mod ai;
mod attacks;
mod binary;
mod channels;
mod cli_connection;
mod cli_publish;
mod cli_tail;
mod docs;
mod durable;
mod hostile;
mod http;
mod idempotency;
mod jetstream;
mod loki;
mod nats;
mod ops;
mod otlp;
mod publish;
mod resume;
mod security;
mod stream;
mod viewer;
mod websocket;

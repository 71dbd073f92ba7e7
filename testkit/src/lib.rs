//! What loggate's integration tests (`tests/it/`, `tests/soak.rs`) share, one
//! helper per job:
//!
//! - [`app`]: the gateway in this process on 127.0.0.1:0 ([`InProcessGateway`]),
//!   or its application called with no socket ([`InProcessApp`]).
//! - [`browser`]: headless Chromium through ChromeDriver; [`viewer`]: the
//!   web viewer's lines, notices and status as a test reads them;
//!   [`proxy`]: the gateway under a path prefix.
//! - [`process`]: the real binary as a child process, killed by pid when its
//!   guard drops, its stderr kept and printed if the test fails.
//! - [`node`]: the real binary as a child process that speaks HTTP
//!   ([`node::GatewayProcess`]), for multi-node tests.
//! - [`nats`]: a `nats-server` child process, stoppable and restartable.
//! - [`pty`]: a pseudo-terminal, to read exactly what a program writes to
//!   a terminal.
//! - [`sse`]: the one SSE client and frame parser.
//! - [`ws`]: the WebSocket clients: the library one and a raw-frame one.
//! - [`jwt`]: the one minter of subscriber tokens.
//! - [`model`]: a scripted OpenAI-compatible model server for the AI tests.
//! - [`http`]: the publish request both gateways share, raw HTTP requests.
//! - [`data`]: event bodies, and what tests read back (messages, metrics).
//!
//! A library rather than a `tests/common` module: the soak binary uses only
//! part of it, and unused public items of a library are not warnings, so
//! nothing here needs `allow(dead_code)`; and helpers built once, optimised
//! (see `Cargo.toml`), serve both test binaries.
//!
//! Helpers that start the binary take its path as a parameter: Cargo sets
//! `CARGO_BIN_EXE_loggate` only for the main package's own tests.
//!
//! Every wait is bounded: by [`WAIT`] against the gateway in this process,
//! by [`DEADLINE`] against child processes. A test fails, it never hangs.

use std::time::Duration;

pub mod app;
pub mod browser;
pub mod data;
pub mod http;
pub mod jwt;
pub mod model;
pub mod nats;
pub mod node;
pub mod process;
pub mod proxy;
pub mod pty;
pub mod sse;
pub mod viewer;
pub mod ws;

pub use app::{
    InProcessApp, InProcessGateway, Reply, config, in_process, in_process_with, start, start_with,
};
pub use data::{event, messages, metric_value};
pub use http::raw_request;
pub use sse::{Frame, Next, SseClient};

/// How long any single wait on the gateway in this process may take before
/// the test fails.
pub const WAIT: Duration = Duration::from_secs(10);

/// How long any single wait on child processes (the NATS tests' gateways
/// and nats-server) may take: they start slower and share two cores.
pub const DEADLINE: Duration = Duration::from_secs(15);

/// Polling interval of the bounded waits on child processes.
pub const POLL: Duration = Duration::from_millis(50);

/// The etl service's token in the built-in development defaults.
pub const ETL_TOKEN: &str = "l5-etl-token";

//! Subscriber sessions: the SSE and WebSocket connections.
//!
//! - [`gate`]: what every subscriber passes (request, limits, auth, slot,
//!   registration); [`error`]: its refusals.
//! - [`core`]: what every session actor owns (connection caps are
//!   `crate::limits::slots`).
//! - [`writer`]: the response body that drains a session's outbox.
//! - [`sse`] and [`ws`]: the transports, one actor per client; [`ws_inbound`]
//!   reads what WebSocket clients send; [`socket`] lets a session reset a
//!   connection actix would wait on.
//!
//! A session talks to the registry only through messages (`Subscribe` when
//! it starts, `SessionClosed` when it stops); the registry talks to a
//! session only by offering events to its outbox (`crate::delivery`).

pub mod core;
pub mod error;
pub mod gate;
pub mod socket;
pub mod sse;
pub mod writer;
pub mod ws;
pub mod ws_inbound;

pub use core::{ClientGone, SessionCore};
pub use error::SubscribeError;
pub use gate::{
    StreamQuery, SubscribeRequest, authorize, check_address_limit, header, resume_point,
};

//! Delivery to subscribers: what the registry and the sessions share.
//!
//! The registry offers events to a session's [`outbox::Outbox`] (bounded,
//! drop-oldest) after its [`filter::Filter`] accepts them; the session's
//! transport drains the outbox and words each item with the session's
//! [`framing::Framing`]; a session the gateway ends says why with one
//! [`disconnect::Disconnect`]. This module imports neither the registry nor the
//! sessions: both import it, which is what keeps them from importing each
//! other.

pub mod disconnect;
pub mod filter;
pub mod framing;
pub mod outbox;

use std::fmt;

/// Identifies one subscriber connection for the life of the process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId(pub u64);

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// How a subscriber is connected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    Sse,
    WebSocket,
}

impl Transport {
    /// The `transport` label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Sse => crate::metrics::label::transport::SSE,
            Transport::WebSocket => crate::metrics::label::transport::WEBSOCKET,
        }
    }
}

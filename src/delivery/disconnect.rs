//! Why the gateway ends a session on its own initiative: one value that
//! carries its WebSocket close code and words, and its
//! `loggate_disconnects_total` reason, so that the three cannot disagree.

use super::framing::close;
use crate::metrics::label;

/// A session the gateway ends, not the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disconnect {
    /// A WebSocket frame declared more than the client-frame limit.
    FrameTooLarge,
    /// A WebSocket frame the codec could not read.
    ProtocolError,
    /// The client made the gateway queue more replies than it read.
    ControlOverflow,
    /// No answer to pings for three keepalive intervals.
    DeadPeer,
    /// An SSE reader whose queue stayed full with nothing written for
    /// `sse.stall_timeout_secs`.
    Stalled,
}

impl Disconnect {
    pub const ALL: [Disconnect; 5] = [
        Disconnect::FrameTooLarge,
        Disconnect::ProtocolError,
        Disconnect::ControlOverflow,
        Disconnect::DeadPeer,
        Disconnect::Stalled,
    ];

    /// The `reason` label of `loggate_disconnects_total`.
    pub fn label(self) -> &'static str {
        match self {
            Disconnect::FrameTooLarge => label::disconnect::FRAME_TOO_LARGE,
            Disconnect::ProtocolError => label::disconnect::PROTOCOL_ERROR,
            Disconnect::ControlOverflow => label::disconnect::CONTROL_OVERFLOW,
            Disconnect::DeadPeer => label::disconnect::DEAD_PEER,
            Disconnect::Stalled => label::disconnect::STALLED,
        }
    }

    /// The WebSocket close code (RFC 6455 §7.4.1) and its words. An SSE
    /// stream has no close frame; a stalled reader is not reading one.
    pub fn close(self) -> (u16, &'static str) {
        match self {
            Disconnect::FrameTooLarge => (close::TOO_BIG, "frame too large"),
            Disconnect::ProtocolError => (close::PROTOCOL_ERROR, "protocol error"),
            Disconnect::ControlOverflow => (close::POLICY_VIOLATION, "too many unread replies"),
            Disconnect::DeadPeer => (close::GOING_AWAY, "no answer to pings"),
            Disconnect::Stalled => (close::POLICY_VIOLATION, "stopped reading"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_is_a_label_and_every_label_a_reason() {
        let labels: Vec<&str> = Disconnect::ALL.iter().map(|d| d.label()).collect();
        assert_eq!(labels, label::disconnect::ALL);
    }
}

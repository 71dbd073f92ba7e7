//! How each transport words what a session sends: every SSE frame, and
//! what every WebSocket message says.
//!
//! Events are encoded once for both transports (`event::Event`); this picks
//! the right encoding and words the rest (ready, lag, gap, keepalive,
//! shutdown, expiry, and through [`json_frame`] the WebSocket session's
//! replies) the way each transport's clients expect. The bytes of a
//! WebSocket frame, its header and opcodes, are written in one place below
//! this, `event::ws_frame`, which the event encoding shares. A session's
//! [`Outbox`](super::outbox::Outbox) carries its framing, so whoever ends or
//! annotates a session (the registry on shutdown, the session on expiry,
//! the body on lag) words it without knowing the transport.

use bytes::{Bytes, BytesMut};

use super::{SessionId, Transport};
use crate::channel::ChannelPattern;
use crate::event::ws_frame::opcode;
use crate::event::{Event, Gap, json_string, ws_frame_with_opcode, ws_text_frame};

/// WebSocket close codes (RFC 6455 §7.4.1) loggate sends, and why.
pub mod close {
    /// The client said goodbye; so do we.
    pub const NORMAL: u16 = 1000;
    /// Shutdown, or a peer that stopped answering pings.
    pub const GOING_AWAY: u16 = 1001;
    /// A frame the codec could not read.
    pub const PROTOCOL_ERROR: u16 = 1002;
    /// The token expired, or the client queued more replies than it read.
    pub const POLICY_VIOLATION: u16 = 1008;
    /// A frame declared more than the client-frame limit.
    pub const TOO_BIG: u16 = 1009;
}

const SSE_KEEPALIVE: &[u8] = b": keepalive\n\n";

/// A WebSocket close frame with `code` and a short `reason`.
pub fn close_frame(code: u16, reason: &str) -> Bytes {
    let mut payload = code.to_be_bytes().to_vec();
    payload.extend_from_slice(reason.as_bytes());
    ws_frame_with_opcode(opcode::CLOSE, &payload)
}

/// A WebSocket text frame holding `value` as JSON, written as events are
/// (`event::json_string`): an error frame may quote what a client sent.
pub fn json_frame(value: serde_json::Value) -> Bytes {
    ws_text_frame(json_string(&value).as_bytes())
}

/// A transport's wording.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// `text/event-stream`; `retry_ms` is the reconnect hint sent first.
    Sse { retry_ms: u64 },
    /// JSON text frames.
    WebSocket,
}

impl Framing {
    pub fn transport(self) -> Transport {
        match self {
            Framing::Sse { .. } => Transport::Sse,
            Framing::WebSocket => Transport::WebSocket,
        }
    }

    /// The event, already encoded for this transport.
    pub fn event(self, event: &Event) -> &Bytes {
        match self {
            Framing::Sse { .. } => event.sse_frame(),
            Framing::WebSocket => event.ws_frame(),
        }
    }

    /// The first frame: the channels and the connection id. SSE's `retry:`
    /// hint rides in the same block: a block of its own would be
    /// dispatched as an empty `message` event by clients that dispatch any
    /// block with a field (httpx-sse, among others).
    pub fn ready(self, id: SessionId, channels: &[ChannelPattern]) -> Bytes {
        let channels: Vec<&str> = channels.iter().map(|p| p.as_str()).collect();
        match self {
            Framing::Sse { retry_ms } => {
                let data = serde_json::json!({
                    "connection_id": id.to_string(),
                    "channels": channels,
                });
                Bytes::from(format!("retry: {retry_ms}\nevent: ready\ndata: {data}\n\n"))
            }
            Framing::WebSocket => json_frame(serde_json::json!({
                "type": "ready",
                "connection_id": id.to_string(),
                "channels": channels,
            })),
        }
    }

    /// `dropped` events were lost because the client read too slowly.
    pub fn lag(self, dropped: u64) -> Bytes {
        match self {
            Framing::Sse { .. } => {
                Bytes::from(format!("event: lag\ndata: {{\"dropped\":{dropped}}}\n\n"))
            }
            Framing::WebSocket => {
                ws_text_frame(format!("{{\"type\":\"lag\",\"dropped\":{dropped}}}").as_bytes())
            }
        }
    }

    /// History could not cover a resume.
    pub fn gap(self, gap: &Gap) -> Bytes {
        let json = gap.to_json();
        match self {
            Framing::Sse { .. } => Bytes::from(format!("event: gap\ndata: {json}\n\n")),
            // `{"reason":…}` becomes `{"type":"gap","reason":…}`.
            Framing::WebSocket => {
                ws_text_frame(format!("{{\"type\":\"gap\",{}", &json[1..]).as_bytes())
            }
        }
    }

    /// What an idle SSE stream sends so proxies keep it open; WebSocket
    /// sessions ping instead.
    pub fn keepalive(self) -> Option<Bytes> {
        match self {
            Framing::Sse { .. } => Some(Bytes::from_static(SSE_KEEPALIVE)),
            Framing::WebSocket => None,
        }
    }

    /// The last frame on graceful shutdown (WebSocket: then close 1001).
    pub fn shutdown(self) -> Bytes {
        self.notice_then_close("shutdown", "server shutting down", close::GOING_AWAY)
    }

    /// The last frame when the subscriber's token expires (WebSocket: then
    /// close 1008).
    pub fn expired(self) -> Bytes {
        self.notice_then_close("expired", "token expired", close::POLICY_VIOLATION)
    }

    fn notice_then_close(self, event: &str, reason: &str, code: u16) -> Bytes {
        match self {
            Framing::Sse { .. } => Bytes::from(format!(
                "event: {event}\ndata: {}\n\n",
                serde_json::json!({ "reason": reason })
            )),
            Framing::WebSocket => {
                let mut b = BytesMut::new();
                b.extend_from_slice(&json_frame(
                    serde_json::json!({"type": event, "reason": reason}),
                ));
                b.extend_from_slice(&close_frame(code, reason));
                b.freeze()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_codec::Decoder;
    use actix_http::ws::{Codec, Frame};

    /// Frames built by hand here decode with actix-http's own client codec.
    #[test]
    fn frames_decode_with_a_standard_codec() {
        let mut client = Codec::new().client_mode().max_size(1 << 20);
        for size in [0usize, 5, 125, 126, 65_535, 65_536, 200_000] {
            let payload = "x".repeat(size);
            let mut buf = BytesMut::from(&ws_text_frame(payload.as_bytes())[..]);
            match client.decode(&mut buf).unwrap() {
                Some(Frame::Text(t)) => assert_eq!(t.len(), size),
                other => panic!("{size}: {other:?}"),
            }
        }
        let mut buf = BytesMut::from(&Framing::WebSocket.shutdown()[..]);
        assert!(matches!(
            client.decode(&mut buf).unwrap(),
            Some(Frame::Text(_))
        ));
        match client.decode(&mut buf).unwrap() {
            Some(Frame::Close(Some(reason))) => {
                assert_eq!(u16::from(reason.code), close::GOING_AWAY);
                assert_eq!(reason.description.as_deref(), Some("server shutting down"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn sse_notices_are_whole_frames() {
        let sse = Framing::Sse { retry_ms: 3000 };
        assert_eq!(
            &sse.shutdown()[..],
            b"event: shutdown\ndata: {\"reason\":\"server shutting down\"}\n\n"
        );
        assert_eq!(
            &sse.expired()[..],
            b"event: expired\ndata: {\"reason\":\"token expired\"}\n\n"
        );
        assert_eq!(&sse.lag(3)[..], b"event: lag\ndata: {\"dropped\":3}\n\n");
        assert_eq!(
            &sse.ready(SessionId(7), &[])[..],
            b"retry: 3000\nevent: ready\ndata: {\"channels\":[],\"connection_id\":\"7\"}\n\n"
        );
        assert_eq!(Framing::WebSocket.keepalive(), None);
    }
}

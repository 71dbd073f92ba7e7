//! The bytes of a server-to-client WebSocket frame (RFC 6455 §5.2), for
//! every frame loggate writes itself: an event's, encoded once and shared
//! by every subscriber, and the ones `delivery::framing` words (ready,
//! lag, gap, close) and the sessions send (ping, pong). The codec that
//! reads what clients send is `session::ws_inbound`.

use bytes::{BufMut, Bytes, BytesMut};

/// The opcodes loggate sends (RFC 6455 §11.8).
pub mod opcode {
    pub const TEXT: u8 = 0x1;
    pub const CLOSE: u8 = 0x8;
    pub const PING: u8 = 0x9;
    pub const PONG: u8 = 0xA;
}

/// A server-to-client WebSocket text frame (RFC 6455 §5.2: FIN, opcode 1,
/// no mask, 7/16/64-bit length).
pub fn ws_text_frame(payload: &[u8]) -> Bytes {
    ws_frame_with_opcode(opcode::TEXT, payload)
}

/// A server-to-client WebSocket frame with the given opcode.
pub fn ws_frame_with_opcode(opcode: u8, payload: &[u8]) -> Bytes {
    let len = payload.len();
    let mut buf = BytesMut::with_capacity(len + 10);
    buf.put_u8(0x80 | opcode);
    if len < 126 {
        buf.put_u8(len as u8);
    } else if len <= u16::MAX as usize {
        buf.put_u8(126);
        buf.put_u16(len as u16);
    } else {
        buf.put_u8(127);
        buf.put_u64(len as u64);
    }
    buf.put_slice(payload);
    buf.freeze()
}

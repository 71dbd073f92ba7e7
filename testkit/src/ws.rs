//! WebSocket clients: the library one (tokio-tungstenite), for what a
//! browser would do on `/api/logs/ws` and `/metrics/ws`, and [`RawWs`],
//! which speaks raw RFC 6455 frames so a test can send what no library
//! would (huge declared lengths, floods it never reads the answers to).

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::{InProcessGateway, WAIT};

/// A library WebSocket client.
pub type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Opens `/api/logs/ws?{query}` on `gw`; asserts the 101.
pub async fn connect(gw: &InProcessGateway, query: &str) -> Ws {
    let url = format!("ws://{}/api/logs/ws?{query}", gw.running.addr);
    let (ws, res) = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(url))
        .await
        .expect("handshake in time")
        .expect("handshake");
    assert_eq!(res.status().as_u16(), 101);
    ws
}

/// The status of a handshake the gateway refuses; panics if it upgrades.
pub async fn refusal(request: impl IntoClientRequest + Unpin) -> u16 {
    let answer = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(request))
        .await
        .expect("handshake answered in time");
    match answer {
        Err(tokio_tungstenite::tungstenite::Error::Http(res)) => res.status().as_u16(),
        other => panic!(
            "expected a refused handshake, got {:?}",
            other.map(|(_, r)| r.status())
        ),
    }
}

/// The next text frame as JSON (pings are answered by the client library).
pub async fn next_json(ws: &mut Ws) -> Value {
    loop {
        let msg = tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("a frame in time")
            .expect("open")
            .expect("valid frame");
        match msg {
            Message::Text(t) => return serde_json::from_str(&t).unwrap(),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("unexpected {other:?}"),
        }
    }
}

/// Sends `v` as a text frame.
pub async fn send(ws: &mut Ws, v: Value) {
    ws.send(Message::Text(v.to_string().into())).await.unwrap();
}

/// The messages of the next `n` frames, which must be `log` frames.
pub async fn logs(ws: &mut Ws, n: usize) -> Vec<String> {
    let mut out = Vec::new();
    while out.len() < n {
        let v = next_json(ws).await;
        assert_eq!(v["type"], "log", "{v}");
        out.push(v["event"]["message"].as_str().unwrap().to_owned());
    }
    out
}

/// A WebSocket client that speaks raw frames, so a test can send what no
/// library would.
pub struct RawWs {
    pub read: OwnedReadHalf,
    pub write: OwnedWriteHalf,
    /// What was read past the last whole frame.
    pub buf: Vec<u8>,
}

/// Opens `path` as a WebSocket; returns the status line and headers of the
/// answer, and the client when the answer is 101.
pub async fn raw_ws(addr: &str, path: &str, extra_headers: &str) -> (u16, Option<RawWs>) {
    let sock = TcpStream::connect(addr).await.expect("connect");
    let (mut read, mut write) = sock.into_split();
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{extra_headers}\r\n"
    );
    write
        .write_all(req.as_bytes())
        .await
        .expect("handshake sent");
    let mut buf = Vec::new();
    let head_end = loop {
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break p + 4;
        }
        let mut chunk = [0u8; 4096];
        let n = tokio::time::timeout(WAIT, read.read(&mut chunk))
            .await
            .expect("handshake answer in time")
            .expect("read");
        assert!(n > 0, "closed during the handshake");
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    buf.drain(..head_end);
    if status != 101 {
        return (status, None);
    }
    (status, Some(RawWs { read, write, buf }))
}

/// A masked client frame header (RFC 6455 §5.2) declaring `len` bytes.
pub fn frame_header(opcode: u8, len: u64) -> Vec<u8> {
    let mut h = vec![0x80 | opcode];
    if len < 126 {
        h.push(0x80 | len as u8);
    } else if len <= u64::from(u16::MAX) {
        h.push(0x80 | 126);
        h.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        h.push(0x80 | 127);
        h.extend_from_slice(&len.to_be_bytes());
    }
    // A zero mask keeps the payload readable and is as valid as any other.
    h.extend_from_slice(&[0, 0, 0, 0]);
    h
}

/// A masked client frame carrying `payload`.
pub fn client_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut f = frame_header(opcode, payload.len() as u64);
    f.extend_from_slice(payload);
    f
}

impl RawWs {
    /// The next server frame: (opcode, payload); `None` when the connection
    /// ends or nothing comes within `limit`.
    pub async fn next_frame(&mut self, limit: Duration) -> Option<(u8, Vec<u8>)> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            if self.buf.len() >= 2 {
                let len7 = (self.buf[1] & 0x7F) as usize;
                let (hlen, len) = match len7 {
                    126 if self.buf.len() >= 4 => {
                        (4, u16::from_be_bytes([self.buf[2], self.buf[3]]) as usize)
                    }
                    127 if self.buf.len() >= 10 => (
                        10,
                        u64::from_be_bytes(self.buf[2..10].try_into().unwrap()) as usize,
                    ),
                    126 | 127 => (usize::MAX, 0),
                    n => (2, n),
                };
                if hlen != usize::MAX && self.buf.len() >= hlen + len {
                    let op = self.buf[0] & 0x0F;
                    let payload = self.buf[hlen..hlen + len].to_vec();
                    self.buf.drain(..hlen + len);
                    return Some((op, payload));
                }
            }
            let mut chunk = vec![0u8; 64 * 1024];
            match tokio::time::timeout_at(deadline, self.read.read(&mut chunk)).await {
                Ok(Ok(n)) if n > 0 => self.buf.extend_from_slice(&chunk[..n]),
                _ => return None,
            }
        }
    }

    /// Reads frames until a close frame, returning its code.
    pub async fn close_code(&mut self) -> Option<u16> {
        while let Some((op, payload)) = self.next_frame(WAIT).await {
            if op == 0x8 {
                return payload.get(..2).map(|c| u16::from_be_bytes([c[0], c[1]]));
            }
        }
        None
    }

    /// True once the server has closed or dropped the connection.
    pub async fn ends_within(&mut self, limit: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        let mut chunk = vec![0u8; 64 * 1024];
        loop {
            match tokio::time::timeout_at(deadline, self.read.read(&mut chunk)).await {
                Err(_) => return false,
                Ok(Ok(0)) | Ok(Err(_)) => return true,
                Ok(Ok(_)) => {}
            }
        }
    }
}

/// Writes `chunk` again and again until `total` bytes went out, the server
/// stops reading (a write blocks for 2 s) or the connection fails. Returns
/// the bytes written.
pub async fn flood(write: &mut OwnedWriteHalf, chunk: &[u8], total: usize) -> usize {
    let mut sent = 0;
    while sent < total {
        match tokio::time::timeout(Duration::from_secs(2), write.write_all(chunk)).await {
            Ok(Ok(())) => sent += chunk.len(),
            _ => break,
        }
    }
    sent
}

//! A reverse proxy that serves a gateway under a path prefix, as a
//! company's ingress does (`https://example.com/logs/…` → the gateway's
//! `/…`): for tests that the viewer's URLs are all relative.
//!
//! Each connection carries one request: the proxy reads the request head,
//! strips the prefix from its path (a path outside the prefix is a 404),
//! asks the gateway to close after answering, and then copies bytes both
//! ways until either side closes. Enough for the GETs a viewer sends,
//! streams included; not a general proxy.

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// Longest request head the proxy reads.
const MAX_HEAD: usize = 64 * 1024;

/// The proxy; it stops accepting when dropped.
pub struct PrefixProxy {
    pub addr: SocketAddr,
    accept: JoinHandle<()>,
}

impl Drop for PrefixProxy {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

impl PrefixProxy {
    /// Serves `upstream` (host:port) under `prefix` (e.g. `/logs`).
    pub async fn start(upstream: SocketAddr, prefix: &'static str) -> PrefixProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let accept = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                tokio::spawn(serve(client, upstream, prefix));
            }
        });
        PrefixProxy { addr, accept }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

async fn serve(mut client: TcpStream, upstream: SocketAddr, prefix: &str) {
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    let end = loop {
        if let Some(i) = head.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if head.len() > MAX_HEAD {
            return;
        }
        match client.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    };
    let text = String::from_utf8_lossy(&head[..end]).into_owned();
    let mut lines = text.split("\r\n");
    let request_line = lines.next().unwrap_or_default();
    let mut parts = request_line.splitn(3, ' ');
    let (method, target, version) = (
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
    );
    let Some(rest) = target.strip_prefix(prefix) else {
        let _ = client
            .write_all(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
            .await;
        return;
    };
    let path = if rest.is_empty() { "/" } else { rest };
    let mut forwarded = format!("{method} {path} {version}\r\n");
    for h in lines.filter(|l| !l.is_empty()) {
        if !h.to_ascii_lowercase().starts_with("connection:") {
            forwarded.push_str(h);
            forwarded.push_str("\r\n");
        }
    }
    forwarded.push_str("connection: close\r\n\r\n");
    let Ok(mut server) = TcpStream::connect(upstream).await else {
        let _ = client
            .write_all(
                b"HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
            )
            .await;
        return;
    };
    if server.write_all(forwarded.as_bytes()).await.is_err()
        || server.write_all(&head[end..]).await.is_err()
    {
        return;
    }
    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
}

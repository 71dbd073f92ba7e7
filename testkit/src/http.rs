//! HTTP requests both kinds of gateway get: the publish request, and raw
//! bytes for requests an HTTP client library refuses to build.

use std::net::SocketAddr;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;

/// POSTs `body` to `{base}/api/logs/publish` with `token` as the service
/// token (none if empty), bounded by `limit`. Returns the status and the
/// answer as JSON (or its text as a JSON string).
pub async fn publish(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    content_type: &str,
    body: impl Into<reqwest::Body>,
    limit: Duration,
) -> (StatusCode, Value) {
    let mut req = client
        .post(format!("{base}/api/logs/publish"))
        .header("content-type", content_type)
        .body(body);
    if !token.is_empty() {
        req = req.header("x-service-token", token);
    }
    let res = tokio::time::timeout(limit, req.send())
        .await
        .expect("publish answered in time")
        .expect("publish request");
    let status = res.status();
    let text = res.text().await.expect("body");
    let json = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, json)
}

/// Sends raw bytes as a request and returns the status code and the body.
/// Reads until the server closes or [`crate::WAIT`] passes.
pub async fn raw_request(addr: SocketAddr, request: &[u8]) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut sock = tokio::net::TcpStream::connect(addr).await.expect("connect");
    // The server may answer and close before it read everything; a failed
    // write is then expected, the answer is what matters.
    let _ = sock.write_all(request).await;
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(crate::WAIT, sock.read_to_end(&mut buf)).await;
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text.split("\r\n\r\n").nth(1).unwrap_or_default().to_owned();
    (status, body)
}

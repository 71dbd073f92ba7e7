//! The SSE subscriber client. Each subscriber is one task on one raw
//! `TcpStream` (no HTTP client library in the hot path, so the bench spends
//! its two cores on reading, not on framework overhead): it sends the GET,
//! parses the response head with `httparse`, decodes the body
//! (`chunked.rs`), splits it into frames (`frames.rs`) and adds what it saw
//! to its counters in [`Shared`]. It never publishes and never decides when
//! a phase ends.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use anyhow::{Context as _, bail};
use bytes::{Buf, BytesMut};
use hdrhistogram::Histogram;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};

use crate::chunked::Decoder;
use crate::frames::{FrameCounts, FrameSplitter};
use crate::stats::{Shared, SubStats, new_histogram};

/// A response head longer than this is refused.
const MAX_HEAD: usize = 16 * 1024;
/// Response headers `httparse` may see (the gateway sends about ten).
const MAX_HEADERS: usize = 32;
/// The read buffer grows by this much when less than `MIN_FREE` is left.
const READ_RESERVE: usize = 32 * 1024;
const MIN_FREE: usize = 4096;

/// Subscriber `idx` of `shared`: opens the stream `path` (a request target
/// such as `/api/logs/stream?channels=…`) at `addr` and counts
/// what arrives until `stop` changes. Holds a `connect` permit until its
/// stream is ready. Returns its latency histogram. A failure is counted in
/// `shared` (`failed` before ready, `ended` after) and its message kept,
/// unless the bench is already stopping.
pub async fn subscriber(
    idx: usize,
    path: String,
    addr: SocketAddr,
    shared: Arc<Shared>,
    connect: Arc<Semaphore>,
    mut stop: watch::Receiver<bool>,
) -> Histogram<u64> {
    let mut sub = Subscriber {
        stats: &shared.subs[idx],
        shared: &shared,
        hist: new_histogram(),
        ready: false,
        permit: connect.acquire_owned().await.ok(),
    };
    let result = sub.run(&path, addr, &mut stop).await;
    let (ready, hist) = (sub.ready, sub.hist);
    if let Err(e) = result {
        let count = if ready { &shared.ended } else { &shared.failed };
        count.fetch_add(1, Relaxed);
        if !shared.stopping.load(Relaxed) {
            shared.error(format!("subscriber {idx} ({path}): {e:#}"));
        }
    }
    hist
}

/// One subscriber's state while its stream is open.
struct Subscriber<'a> {
    stats: &'a SubStats,
    shared: &'a Shared,
    hist: Histogram<u64>,
    /// It has seen `event: ready`.
    ready: bool,
    /// Held until ready: caps the subscribers connecting at once.
    permit: Option<OwnedSemaphorePermit>,
}

impl Subscriber<'_> {
    /// Opens the stream and reads it until `stop` changes (Ok) or it fails.
    async fn run(
        &mut self,
        path: &str,
        addr: SocketAddr,
        stop: &mut watch::Receiver<bool>,
    ) -> anyhow::Result<()> {
        let (mut stream, mut raw, chunked) = open(path, addr).await?;
        let mut decoder = Decoder::new(chunked);
        let mut frames = FrameSplitter::default();
        loop {
            let now_ns = self.shared.now_ns();
            let mut counts = FrameCounts::default();
            let hist = &mut self.hist;
            let alive = decoder.decode(&mut raw, |piece| {
                frames.feed(piece, now_ns, hist, &mut counts);
            })?;
            self.record(&counts, now_ns);
            if !alive {
                bail!("stream ended (terminal chunk)");
            }
            if raw.capacity() - raw.len() < MIN_FREE {
                raw.reserve(READ_RESERVE);
            }
            tokio::select! {
                biased;
                r = stream.read_buf(&mut raw) => match r {
                    Ok(0) => bail!("connection closed by the server"),
                    Ok(_) => {}
                    Err(e) => bail!("read: {e}"),
                },
                _ = stop.changed() => return Ok(()),
            }
        }
    }

    /// Adds what one pass over the buffer saw to the shared counters.
    fn record(&mut self, counts: &FrameCounts, now_ns: u64) {
        let (stats, shared) = (self.stats, self.shared);
        if counts.logs > 0 {
            stats.delivered.fetch_add(counts.logs, Relaxed);
            stats.last_delivery_ns.fetch_max(now_ns, Relaxed);
        }
        if counts.lag_frames > 0 {
            stats.lag_frames.fetch_add(counts.lag_frames, Relaxed);
            stats.dropped.fetch_add(counts.dropped, Relaxed);
        }
        if counts.bad_latency > 0 {
            shared
                .unparsed_latency
                .fetch_add(counts.bad_latency, Relaxed);
        }
        if counts.ready && !self.ready {
            self.ready = true;
            drop(self.permit.take());
            shared.ready.fetch_add(1, Relaxed);
        }
        if counts.shutdown {
            shared.shutdown_frames.fetch_add(1, Relaxed);
        }
    }
}

/// Connects, sends the stream request and reads the response head. Returns
/// the socket, the bytes read past the head, and whether the body is chunked.
async fn open(path: &str, addr: SocketAddr) -> anyhow::Result<(TcpStream, BytesMut, bool)> {
    let mut stream = match TcpStream::connect(addr).await {
        Ok(s) => s,
        Err(e) => {
            let hint = if e.raw_os_error() == Some(24) {
                " (EMFILE: raise the fd limit, e.g. `ulimit -n 65536`)"
            } else {
                ""
            };
            bail!("connect: {e}{hint}");
        }
    };
    stream.set_nodelay(true).ok();
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\n\
         Accept: text/event-stream\r\nCache-Control: no-cache\r\n\r\n"
    );
    stream
        .write_all(request.as_bytes())
        .await
        .context("write request")?;
    let mut raw = BytesMut::with_capacity(MAX_HEAD);
    loop {
        if let Some((head_len, chunked)) = parse_head(&raw)? {
            raw.advance(head_len);
            return Ok((stream, raw, chunked));
        }
        if raw.len() > MAX_HEAD {
            bail!("response head too long");
        }
        match stream.read_buf(&mut raw).await {
            Ok(0) => bail!(
                "connection closed before the response head ({:?})",
                String::from_utf8_lossy(&raw)
            ),
            Ok(_) => {}
            Err(e) => bail!("read response head: {e}"),
        }
    }
}

/// The response head in `raw`, once complete: its length and whether the
/// body is chunked. Fails unless it is `HTTP/1.1 200`.
fn parse_head(raw: &[u8]) -> anyhow::Result<Option<(usize, bool)>> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut headers);
    let head_len = match response.parse(raw).context("bad response head")? {
        httparse::Status::Complete(n) => n,
        httparse::Status::Partial => return Ok(None),
    };
    if response.version != Some(1) || response.code != Some(200) {
        let body = String::from_utf8_lossy(&raw[head_len..]);
        bail!(
            "stream refused: HTTP/1.{} {} {} {}",
            response.version.unwrap_or(0),
            response.code.unwrap_or(0),
            response.reason.unwrap_or_default(),
            body.trim()
        );
    }
    let chunked = response.headers.iter().any(|h| {
        h.name.eq_ignore_ascii_case("transfer-encoding")
            && String::from_utf8_lossy(h.value)
                .to_ascii_lowercase()
                .contains("chunked")
    });
    Ok(Some((head_len, chunked)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream_bytes() -> (Vec<u8>, u64) {
        let frames = [
            "retry: 3000\nevent: ready\ndata: {\"connection_id\":\"x\",\"channels\":[\"logs:etl:bench:c0\"]}\n\n"
                .to_string(),
            ": keepalive\n\n".to_string(),
            "event: log\nid: 1\ndata: {\"id\":\"1\",\"level\":\"info\",\"message\":\"t=1000000\"}\n\n"
                .to_string(),
            "event: lag\ndata: {\"dropped\":7}\n\n".to_string(),
            "event: log\nid: 2\ndata: {\"id\":\"2\",\"message\":\"xxxx\"}\n\n".to_string(),
            "event: log\nid: 3\ndata: {\"id\":\"3\",\"message\":\"t=2000000\"}\n\nevent: log\nid: 4\ndata: {\"message\":\"t=3000000\"}\n\n"
                .to_string(),
        ];
        let mut out = Vec::new();
        for f in &frames {
            // Split each frame over two chunks, in an awkward place.
            let mid = f.len() / 2;
            for part in [&f[..mid], &f[mid..]] {
                out.extend_from_slice(format!("{:x}\r\n", part.len()).as_bytes());
                out.extend_from_slice(part.as_bytes());
                out.extend_from_slice(b"\r\n");
            }
        }
        out.extend_from_slice(b"0\r\n\r\n");
        (out, 4u64)
    }

    #[test]
    fn parses_frames_at_any_split() {
        let (bytes, logs) = stream_bytes();
        for step in [1, 2, 3, 7, 16, 100, bytes.len()] {
            let mut decoder = Decoder::new(true);
            let mut raw = BytesMut::new();
            let mut frames = FrameSplitter::default();
            let mut hist = new_histogram();
            let mut counts = FrameCounts::default();
            let mut alive = true;
            for piece in bytes.chunks(step) {
                raw.extend_from_slice(piece);
                alive = decoder
                    .decode(&mut raw, |p| {
                        frames.feed(p, 5_000_000, &mut hist, &mut counts)
                    })
                    .unwrap();
            }
            assert!(!alive, "step {step}");
            assert!(frames.is_empty(), "step {step}");
            assert_eq!(counts.logs, logs, "step {step}");
            assert_eq!(counts.dropped, 7);
            assert_eq!(counts.lag_frames, 1);
            assert!(counts.ready);
            assert_eq!(hist.len(), 3);
            assert_eq!(hist.max(), hist.highest_equivalent(4000));
        }
    }

    #[test]
    fn response_heads() {
        let ok = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\
                   Transfer-Encoding: chunked\r\n\r\n5\r\n";
        assert_eq!(parse_head(ok).unwrap(), Some((ok.len() - 3, true)));
        assert_eq!(parse_head(&ok[..20]).unwrap(), None);
        let plain = b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n";
        assert_eq!(parse_head(plain).unwrap(), Some((plain.len(), false)));
        let refused = b"HTTP/1.1 503 Service Unavailable\r\n\r\n{\"error\":\"busy\"}";
        let e = parse_head(refused).unwrap_err().to_string();
        assert_eq!(
            e,
            "stream refused: HTTP/1.1 503 Service Unavailable {\"error\":\"busy\"}"
        );
    }
}

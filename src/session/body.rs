//! The response body of every subscriber connection: drains the session's
//! outbox and frames each item for the transport.
//!
//! Everything queued is taken at once (up to [`MAX_CHUNK_BYTES`]) and handed
//! to actix as one chunk, so a busy connection costs one socket write per
//! batch instead of one per event. Events are already encoded for both
//! transports; only the rare notices (lag, gap) are formatted here. When the
//! client goes away actix drops the body, and `Drop` tells the session.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use actix::prelude::*;
use bytes::{BufMut, Bytes, BytesMut};
use futures_util::Stream;
use prometheus::IntCounter;

use super::outbox::{Drained, Item, Outbox};
use super::{ClientGone, ConnectionGuard, Transport};
use crate::event::{Gap, ws_text_frame};

/// Upper bound on one chunk handed to actix. A chunk of dozens of frames
/// already makes one write out of many; larger chunks only pin memory,
/// because actix copies each chunk into its write buffer and keeps it there
/// while a slow client's socket is full (so a slow connection holds at most
/// about this much plus actix's own 32 KiB buffer).
pub const MAX_CHUNK_BYTES: usize = 16 * 1024;

pub struct OutboxBody {
    outbox: Arc<Outbox>,
    transport: Transport,
    session: Recipient<ClientGone>,
    delivered: IntCounter,
    latency: prometheus::Histogram,
    /// Held for the life of the stream: dropping it frees the slot.
    _slot: ConnectionGuard,
}

impl OutboxBody {
    pub fn new(
        outbox: Arc<Outbox>,
        transport: Transport,
        session: Recipient<ClientGone>,
        metrics: &crate::metrics::Metrics,
        slot: ConnectionGuard,
    ) -> Self {
        OutboxBody {
            outbox,
            transport,
            session,
            delivered: metrics.delivered(transport.as_str()),
            latency: metrics.delivery_latency.clone(),
            _slot: slot,
        }
    }

    fn event_frame<'a>(&self, item: &'a Item) -> Option<&'a Bytes> {
        match item {
            Item::Event(e) => Some(match self.transport {
                Transport::Sse => e.sse_frame(),
                Transport::WebSocket => e.ws_frame(),
            }),
            Item::Control(b) => Some(b),
            Item::Gap(_) => None,
        }
    }

    fn lag_notice(&self, dropped: u64) -> Bytes {
        match self.transport {
            Transport::Sse => {
                Bytes::from(format!("event: lag\ndata: {{\"dropped\":{dropped}}}\n\n"))
            }
            Transport::WebSocket => {
                ws_text_frame(format!("{{\"type\":\"lag\",\"dropped\":{dropped}}}").as_bytes())
            }
        }
    }

    fn gap_notice(&self, gap: &Gap) -> Bytes {
        match self.transport {
            Transport::Sse => Bytes::from(format!("event: gap\ndata: {}\n\n", gap.to_json())),
            Transport::WebSocket => {
                let json = gap.to_json();
                // `{"reason":…}` becomes `{"type":"gap","reason":…}`.
                ws_text_frame(format!("{{\"type\":\"gap\",{}", &json[1..]).as_bytes())
            }
        }
    }
}

impl Stream for OutboxBody {
    /// An error makes actix drop the connection at once, without flushing:
    /// the way to be rid of a client that will not take its close frame.
    type Item = Result<Bytes, std::io::Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        let batch = match this.outbox.poll_batch(cx, MAX_CHUNK_BYTES) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(Drained::End) => return Poll::Ready(None),
            Poll::Ready(Drained::Killed) => {
                return Poll::Ready(Some(Err(std::io::Error::new(
                    std::io::ErrorKind::ConnectionAborted,
                    "session closed by the gateway",
                ))));
            }
            Poll::Ready(Drained::Batch(b)) => b,
        };
        let events = batch
            .items
            .iter()
            .filter(|i| matches!(i, Item::Event(_)))
            .count() as u64;
        this.delivered.inc_by(events);
        if let Some(Item::Event(oldest)) = batch.items.iter().find(|i| matches!(i, Item::Event(_)))
            && oldest.id.seq > batch.replayed_through
        {
            let ms = crate::event::now_ms().saturating_sub(oldest.times.received_ms);
            this.latency.observe(ms.max(0) as f64 / 1000.0);
        }
        // The common idle case: one frame, handed over without a copy.
        if let ([item], 0) = (batch.items.as_slice(), batch.lagged)
            && let Some(frame) = this.event_frame(item)
        {
            return Poll::Ready(Some(Ok(frame.clone())));
        }
        let size: usize = batch
            .items
            .iter()
            .map(|i| this.event_frame(i).map_or(128, Bytes::len))
            .sum();
        let mut buf = BytesMut::with_capacity(size + 64);
        if batch.lagged > 0 {
            buf.put_slice(&this.lag_notice(batch.lagged));
        }
        for item in &batch.items {
            match (this.event_frame(item), item) {
                (Some(frame), _) => buf.put_slice(frame),
                (None, Item::Gap(g)) => buf.put_slice(&this.gap_notice(g)),
                (None, _) => {}
            }
        }
        Poll::Ready(Some(Ok(buf.freeze())))
    }
}

impl Drop for OutboxBody {
    fn drop(&mut self) {
        self.session.do_send(ClientGone);
    }
}

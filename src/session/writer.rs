//! The response body of every subscriber connection: drains the session's
//! outbox and hands its frames to actix.
//!
//! Everything queued is taken at once (up to [`MAX_CHUNK_BYTES`]) and handed
//! to actix as one chunk, so a busy connection costs one socket write per
//! batch instead of one per event. Items are already worded for the
//! transport; only the lag notice, which counts what was dropped until the
//! moment of writing, is worded here (by the outbox's framing). When the
//! client goes away actix drops the body, and `Drop` tells the session.
//!
//! A stream the session kills (a client it closed that did not hang up, a
//! reader that stopped reading) ends without an error when the session
//! also resets the socket: actix logs every body error at ERROR, and these
//! closes are routine (they are counted in `loggate_disconnects_total` and
//! logged at debug here). Without a socket handle an error is still the
//! way to make actix drop the connection.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use actix::prelude::*;
use bytes::{BufMut, Bytes, BytesMut};
use futures_util::Stream;
use prometheus::IntCounter;

use super::ClientGone;
use crate::delivery::outbox::{Drained, Item, Outbox};
use crate::limits::slots::ConnectionGuard;

/// Upper bound on one chunk handed to actix. A chunk of dozens of frames
/// already makes one write out of many; larger chunks only pin memory,
/// because actix copies each chunk into its write buffer and keeps it there
/// while a slow client's socket is full (so a slow connection holds at most
/// about this much plus actix's own 32 KiB buffer).
pub const MAX_CHUNK_BYTES: usize = 16 * 1024;

pub struct OutboxBody {
    outbox: Arc<Outbox>,
    session: Recipient<ClientGone>,
    delivered: IntCounter,
    latency: prometheus::Histogram,
    /// Held for the life of the stream: dropping it frees the slot.
    _slot: ConnectionGuard,
    /// The session resets the socket whenever it kills the stream, so a
    /// killed stream just ends.
    reset_on_kill: bool,
}

impl OutboxBody {
    pub fn new(
        outbox: Arc<Outbox>,
        session: Recipient<ClientGone>,
        metrics: &crate::metrics::Metrics,
        slot: ConnectionGuard,
    ) -> Self {
        let delivered = metrics.delivered(outbox.transport().as_str());
        OutboxBody {
            outbox,
            session,
            delivered,
            latency: metrics.delivery_latency.clone(),
            _slot: slot,
            reset_on_kill: false,
        }
    }

    /// Says whether the session resets the socket when it kills the stream
    /// (it holds a `SocketHandle`); if so a killed stream ends quietly.
    pub fn reset_on_kill(mut self, resets: bool) -> Self {
        self.reset_on_kill = resets;
        self
    }

    fn frame<'a>(&self, item: &'a Item) -> &'a Bytes {
        match item {
            Item::Event(e) => self.outbox.framing().event(e),
            Item::Control(b) => b,
        }
    }
}

impl Stream for OutboxBody {
    /// An error makes actix drop the connection at once, without flushing,
    /// and log the error at ERROR: only for a killed stream whose socket
    /// nobody resets.
    type Item = Result<Bytes, std::io::Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        let batch = match this.outbox.poll_batch(cx, MAX_CHUNK_BYTES) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(Drained::End) => return Poll::Ready(None),
            Poll::Ready(Drained::Killed) if this.reset_on_kill => {
                tracing::debug!(
                    transport = this.outbox.transport().as_str(),
                    "stream ended by the gateway; its socket is reset"
                );
                return Poll::Ready(None);
            }
            Poll::Ready(Drained::Killed) => {
                return Poll::Ready(Some(Err(std::io::Error::new(
                    std::io::ErrorKind::ConnectionAborted,
                    "session closed by the gateway",
                ))));
            }
            Poll::Ready(Drained::Batch(b)) => b,
        };
        let mut events = batch.items.iter().filter_map(|i| match i {
            Item::Event(e) => Some(e),
            Item::Control(_) => None,
        });
        if let Some(oldest) = events.next()
            && oldest.id.seq > batch.replayed_through
        {
            let ms = crate::event::now_ms().saturating_sub(oldest.times.received_ms);
            this.latency.observe(ms.max(0) as f64 / 1000.0);
        }
        let delivered = batch
            .items
            .iter()
            .filter(|i| matches!(i, Item::Event(_)))
            .count();
        this.delivered.inc_by(delivered as u64);
        // The common idle case: one frame, handed over without a copy.
        if let ([item], 0) = (batch.items.as_slice(), batch.lagged) {
            return Poll::Ready(Some(Ok(this.frame(item).clone())));
        }
        let lag = (batch.lagged > 0).then(|| this.outbox.framing().lag(batch.lagged));
        let size: usize = batch.items.iter().map(|i| this.frame(i).len()).sum();
        let mut buf = BytesMut::with_capacity(size + lag.as_ref().map_or(0, Bytes::len));
        if let Some(lag) = lag {
            buf.put_slice(&lag);
        }
        for item in &batch.items {
            buf.put_slice(this.frame(item));
        }
        Poll::Ready(Some(Ok(buf.freeze())))
    }
}

impl Drop for OutboxBody {
    fn drop(&mut self) {
        self.session.do_send(ClientGone);
    }
}

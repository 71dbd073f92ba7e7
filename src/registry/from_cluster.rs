//! What the cluster brings the registry: events the JetStream stream
//! stored ([`Stored`], with the stream's ids) and losses the NATS links
//! noticed ([`ClusterLoss`], told to every session as a gap and kept for
//! those who resume).

use std::sync::atomic::Ordering;

use actix::prelude::*;
use bytes::Bytes;

use super::{ClusterLoss, Registry, RegistryClosed, Stored};
use crate::delivery::framing::Framing;
use crate::delivery::outbox::Push;
use crate::event::{Event, EventId, Gap, GapReason};
use crate::metrics::label;

impl Handler<Stored> for Registry {
    type Result = Result<(), RegistryClosed>;

    fn handle(&mut self, msg: Stored, _: &mut Self::Context) -> Self::Result {
        if self.closed {
            return Err(RegistryClosed);
        }
        if msg.epoch != self.epoch {
            if self.epoch != 0 {
                // The stream was deleted and made again: its sequence
                // started over, and what history holds is of the old one.
                tracing::warn!("the cluster stream was made again; history starts over");
                self.history.write().start_over();
                for entry in self.sessions.values_mut() {
                    entry.last_seq = 0;
                    entry.floor = 0;
                }
            }
            self.epoch = msg.epoch;
            self.last_seq = 0;
            self.gauges.epoch.store(msg.epoch, Ordering::Release);
        }
        let mut starts_after = None;
        let mut accepted = Vec::with_capacity(msg.events.len());
        for (seq, new) in msg.events {
            if seq <= self.last_seq {
                continue; // read again after a reconnect: already here
            }
            if self.last_seq == 0 {
                starts_after = Some(seq.saturating_sub(1));
            }
            self.last_seq = seq;
            let event = Event::encode(
                EventId {
                    epoch: self.epoch,
                    seq,
                },
                new,
            );
            self.fan_out(&event);
            accepted.push(event);
        }
        self.keep(&accepted, starts_after);
        Ok(())
    }
}

impl Handler<ClusterLoss> for Registry {
    type Result = ();

    fn handle(&mut self, msg: ClusterLoss, _: &mut Self::Context) {
        let gaps: Vec<Gap> = msg
            .losses
            .into_iter()
            .map(|(origin, lost)| Gap {
                reason: GapReason::ClusterLoss,
                lost: Some(lost),
                resumed_from: None,
                origin: Some(origin),
            })
            .collect();
        // Worded once per transport, not once per session.
        let mut frames: Vec<(Framing, Vec<Bytes>)> = Vec::new();
        for entry in self.sessions.values() {
            let framing = entry.outbox.framing();
            let i = match frames.iter().position(|(f, _)| *f == framing) {
                Some(i) => i,
                None => {
                    frames.push((framing, gaps.iter().map(|g| framing.gap(g)).collect()));
                    frames.len() - 1
                }
            };
            for frame in &frames[i].1 {
                // A session that cannot take the notice (its reader has
                // stopped reading control frames) must not go on as if
                // nothing was lost: it ends with the notice as its last
                // frame, and on resume history tells it again.
                if entry.outbox.push_control(frame.clone()) == Push::Overflow {
                    entry.outbox.abort(frame.clone());
                    break;
                }
            }
        }
        let mut history = self.history.write();
        for gap in &gaps {
            let (origin, lost) = (
                gap.origin.as_deref().unwrap_or_default(),
                gap.lost.unwrap_or(0),
            );
            self.metrics.dropped(
                label::dropped::CLUSTER_LOSS,
                crate::metrics::OTHER_SERVICE,
                lost,
            );
            history.note_loss(self.last_seq, origin, lost, crate::event::now_ms());
        }
    }
}

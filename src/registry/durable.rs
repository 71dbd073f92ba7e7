//! `HISTORY_FSYNC=always`: batches held until the store has them on disk.
//!
//! The registry gives a batch its ids and encodes it as usual, then hands
//! it to the store's writer ([`crate::store::Appender::append_durable`])
//! instead of delivering it. The writer syncs once for every batch that
//! queued meanwhile (group commit) and reports each, in order, through a
//! stream this actor reads ([`Durable`]). Only then is the batch delivered
//! and put in memory, and its publisher told (`Publish::stored`), so
//! nothing is delivered that is not on disk, and a batch the disk refused
//! is answered `503 storage_unavailable` and never seen by anyone. Batches
//! are released in id order, as the writer reports them.

use std::collections::VecDeque;
use std::sync::Arc;

use actix::prelude::*;
use tokio::sync::oneshot;

use super::Registry;
use crate::event::Event;
use crate::store::Durable;

/// A batch given its ids, waiting for the disk.
pub(super) struct Held {
    batch: u64,
    events: Vec<Arc<Event>>,
    stored: Option<oneshot::Sender<bool>>,
}

/// The batches waiting, oldest first, and the next batch number.
#[derive(Default)]
pub(super) struct Waiting {
    held: VecDeque<Held>,
    next: u64,
}

impl Registry {
    /// Hands `events` to the writer and holds them until it reports.
    pub(super) fn hold(&mut self, events: Vec<Arc<Event>>, stored: Option<oneshot::Sender<bool>>) {
        let Some(store) = &self.store else {
            return;
        };
        self.waiting.next += 1;
        let batch = self.waiting.next;
        if store.append_durable(events.clone(), batch) {
            self.waiting.held.push_back(Held {
                batch,
                events,
                stored,
            });
        } else if let Some(stored) = stored {
            let _ = stored.send(false);
        }
    }

    /// Starts reading the writer's reports, if this registry holds batches.
    pub(super) fn read_reports(&mut self, ctx: &mut Context<Self>) {
        if let Some(reports) = self.store.as_mut().and_then(|s| s.take_reports()) {
            ctx.add_stream(futures_util::stream::unfold(reports, |mut rx| async move {
                rx.recv().await.map(|report| (report, rx))
            }));
        }
    }
}

impl StreamHandler<Durable> for Registry {
    fn handle(&mut self, report: Durable, _: &mut Context<Self>) {
        while let Some(front) = self.waiting.held.front() {
            if front.batch > report.batch {
                break;
            }
            let Some(held) = self.waiting.held.pop_front() else {
                break;
            };
            // Every batch is reported, in order; an older one still here
            // would be one whose report was lost, and is not known stored.
            let stored = held.batch == report.batch && report.stored;
            if stored {
                for event in &held.events {
                    self.fan_out(event);
                }
                self.keep(&held.events, None);
            }
            if let Some(tell) = held.stored {
                let _ = tell.send(stored);
            }
        }
    }

    /// The writer ended (the store closed at a stop): nothing more comes.
    /// Not a reason to stop the registry, whatever actix's default is.
    fn finished(&mut self, _: &mut Context<Self>) {}
}

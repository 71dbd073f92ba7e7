//! A request's hold on its key while it publishes.

use std::sync::Arc;

use sha2::Digest as _;

use super::{Digest, SlotName, Table};
use crate::event::{EventId, now_ms};

/// A request's hold on its key, from [`Table::begin`] until it publishes
/// ([`Claim::complete`]) or is dropped: dropped without completing (the
/// request was refused or failed), the key is free again.
pub struct Claim {
    pub(super) table: Arc<Table>,
    pub(super) name: SlotName,
    pub(super) turn: u64,
    pub(super) digest: Digest,
    pub(super) completed: bool,
}

impl Claim {
    /// Remembers the `202` this claim's request was answered: its ids.
    pub fn complete(mut self, ids: &[EventId]) {
        self.completed = true;
        self.table
            .complete(&self.name, self.turn, self.digest, ids, now_ms());
    }

    /// The base of the `Nats-Msg-Id`s of this request's events in
    /// JetStream mode (`<base>-<index in the batch>`): the same on every
    /// node for the same service, key and request, so a retry anywhere is
    /// stored once by the stream, and its ack names the first's sequence.
    /// The digest is part of it: a reused key with another body on another
    /// node (whose table never saw the key) is stored as new events, not
    /// answered with the first body's ids.
    pub fn msg_id_base(&self) -> String {
        let mut h = sha2::Sha256::new();
        h.update(self.name.as_bytes());
        h.update([0]);
        h.update(self.digest);
        let d: [u8; 32] = h.finalize().into();
        format!("key-{}", hex::encode(&d[..16]))
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        if !self.completed {
            self.table.release(&self.name, self.turn);
        }
    }
}

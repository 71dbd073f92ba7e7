//! Decode slots: how many large publish bodies are read, decompressed and
//! parsed at once (`publish.large_body_slots`).
//!
//! Parsing a megabyte of JSON takes milliseconds of a CPU, and actix runs
//! many connections on each worker thread: done on the worker, it holds
//! every other request of that worker back, whoever sent them. So a body
//! over `publish.large_body_bytes` (as sent, or once inflated) is decoded
//! on the blocking pool instead, and only while it holds a slot. The slots
//! bound both that work and the memory of large bodies in flight: a
//! request that declares a large body takes its slot before it reads it.
//! A request that finds every slot taken waits for one, up to
//! [`DecodeSlots::wait`]; then it is refused (`503 ingest_busy`) and
//! counted, rather than queued without end.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// How long a large request waits for a slot before it is refused.
pub const SLOT_WAIT: Duration = Duration::from_secs(5);

/// The slots for large bodies.
#[derive(Debug)]
pub struct DecodeSlots {
    semaphore: Arc<Semaphore>,
    /// The body size over which a request needs a slot.
    pub large_body_bytes: usize,
    wait: Duration,
}

/// A slot held: freed when dropped.
#[derive(Debug)]
pub struct DecodeSlot {
    _permit: OwnedSemaphorePermit,
}

/// Every slot stayed taken for the whole wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlotsBusy {
    pub waited: Duration,
}

impl DecodeSlots {
    pub fn new(slots: usize, large_body_bytes: usize, wait: Duration) -> Self {
        DecodeSlots {
            semaphore: Arc::new(Semaphore::new(slots)),
            large_body_bytes,
            wait,
        }
    }

    /// How long a request waits for a slot.
    pub fn wait(&self) -> Duration {
        self.wait
    }

    /// Is a body of `bytes` large, so that it needs a slot?
    pub fn is_large(&self, bytes: usize) -> bool {
        bytes > self.large_body_bytes
    }

    /// A slot, waiting for one up to the wait.
    pub async fn acquire(&self) -> Result<DecodeSlot, SlotsBusy> {
        let semaphore = Arc::clone(&self.semaphore);
        match tokio::time::timeout(self.wait, semaphore.acquire_owned()).await {
            Ok(Ok(permit)) => Ok(DecodeSlot { _permit: permit }),
            // The semaphore is never closed; a closed one has no slot either.
            Ok(Err(_)) | Err(_) => Err(SlotsBusy { waited: self.wait }),
        }
    }

    /// Slots free now.
    pub fn available(&self) -> usize {
        self.semaphore.available_permits()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_request_waits_for_a_slot_and_is_refused_after_the_wait() {
        let slots = DecodeSlots::new(1, 100, Duration::from_secs(5));
        assert!(!slots.is_large(100) && slots.is_large(101));
        let held = slots.acquire().await.unwrap();
        assert_eq!(slots.available(), 0);
        let refused = slots.acquire().await.unwrap_err();
        assert_eq!(refused.waited, Duration::from_secs(5));
        // A slot freed during the wait is taken.
        let waiting = tokio::spawn(async move {
            let s = slots;
            s.acquire().await.map(|_| ())
        });
        tokio::time::sleep(Duration::from_secs(1)).await;
        drop(held);
        assert_eq!(waiting.await.unwrap(), Ok(()));
    }
}

//! Connection slots: the cap on subscriber connections held at once
//! (`MAX_CONNECTIONS`) and per client address (`MAX_CONNECTIONS_PER_IP`).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use super::AddressKey;
use crate::delivery::Transport;
use crate::metrics::{Metrics, label};

/// Why no slot was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotRefused {
    /// All `MAX_CONNECTIONS` slots are held (the number).
    Full(usize),
    /// The client's address holds its `MAX_CONNECTIONS_PER_IP` (the number).
    AddressFull(usize),
}

/// Counts subscriber connections against `MAX_CONNECTIONS`, and those of
/// each client address against `MAX_CONNECTIONS_PER_IP`, so one address
/// cannot take every slot. A slot is held by a [`ConnectionGuard`] and
/// freed the moment the guard drops, which is when the client's stream is
/// dropped. The per-address table holds only addresses with a connection
/// open, so it is bounded by `MAX_CONNECTIONS`.
#[derive(Debug)]
pub struct Connections {
    open: AtomicUsize,
    max: usize,
    /// 0: no per-address cap.
    max_per_address: usize,
    per_address: Mutex<HashMap<AddressKey, usize>>,
    metrics: Arc<Metrics>,
}

impl Connections {
    pub fn new(max: usize, max_per_address: usize, metrics: Arc<Metrics>) -> Arc<Self> {
        Arc::new(Connections {
            open: AtomicUsize::new(0),
            max,
            max_per_address,
            per_address: Mutex::new(HashMap::new()),
            metrics,
        })
    }

    fn per_address(&self) -> std::sync::MutexGuard<'_, HashMap<AddressKey, usize>> {
        // Plain counts: a panic elsewhere cannot leave them inconsistent
        // with anything but themselves.
        self.per_address.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn reject(&self, reason: &str) {
        self.metrics
            .connections_rejected
            .with_label_values(&[reason])
            .inc();
    }

    pub fn try_acquire(
        self: &Arc<Self>,
        transport: Transport,
        client: Option<IpAddr>,
    ) -> Result<ConnectionGuard, SlotRefused> {
        let address = client
            .map(AddressKey::from)
            .filter(|_| self.max_per_address > 0);
        let mut table = address.map(|_| self.per_address());
        if let (Some(key), Some(table)) = (&address, &table)
            && table.get(key).is_some_and(|n| *n >= self.max_per_address)
        {
            self.reject(label::rejected::PER_ADDRESS_LIMIT);
            return Err(SlotRefused::AddressFull(self.max_per_address));
        }
        let taken = self
            .open
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.max).then_some(n + 1)
            });
        if taken.is_err() {
            self.reject(label::rejected::CONNECTION_LIMIT);
            return Err(SlotRefused::Full(self.max));
        }
        if let (Some(key), Some(table)) = (address, table.as_mut()) {
            *table.entry(key).or_default() += 1;
        }
        drop(table);
        self.metrics
            .connections
            .with_label_values(&[transport.as_str()])
            .inc();
        Ok(ConnectionGuard {
            owner: Arc::clone(self),
            transport,
            address,
        })
    }

    /// Connections held now.
    pub fn count(&self) -> usize {
        self.open.load(Ordering::Acquire)
    }
}

#[derive(Debug)]
pub struct ConnectionGuard {
    owner: Arc<Connections>,
    transport: Transport,
    address: Option<AddressKey>,
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        if let Some(key) = &self.address {
            let mut table = self.owner.per_address();
            if let Some(n) = table.get_mut(key) {
                *n -= 1;
                if *n == 0 {
                    table.remove(key);
                }
            }
        }
        self.owner.open.fetch_sub(1, Ordering::AcqRel);
        self.owner
            .metrics
            .connections
            .with_label_values(&[self.transport.as_str()])
            .dec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_cap_frees_on_drop() {
        let c = Connections::new(2, 0, Arc::new(Metrics::new(["etl"], &[])));
        let a = c.try_acquire(Transport::Sse, None).unwrap();
        let _b = c.try_acquire(Transport::Sse, None).unwrap();
        assert!(c.try_acquire(Transport::Sse, None).is_err());
        drop(a);
        assert!(c.try_acquire(Transport::Sse, None).is_ok());
    }

    #[test]
    fn per_address_cap_leaves_room_for_others_and_forgets_idle_addresses() {
        let c = Connections::new(10, 2, Arc::new(Metrics::new(["etl"], &[])));
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let a1 = c.try_acquire(Transport::Sse, Some(a)).unwrap();
        let _a2 = c.try_acquire(Transport::WebSocket, Some(a)).unwrap();
        assert!(matches!(
            c.try_acquire(Transport::Sse, Some(a)),
            Err(SlotRefused::AddressFull(2))
        ));
        assert_eq!(c.count(), 2, "a refusal takes no slot");
        let _b1 = c.try_acquire(Transport::Sse, Some(b)).unwrap();
        drop(a1);
        assert!(c.try_acquire(Transport::Sse, Some(a)).is_ok());
        drop(_b1);
        assert!(!c.per_address().contains_key(&AddressKey::from(b)));
    }
}

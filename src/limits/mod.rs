//! Limits on what clients may take: rate limits here (events per second
//! per service, new subscriber connections and history requests per second
//! per client address; governor's GCRA, burst twice the rate), bytes per
//! second per service in [`bytes`], the connection caps in [`slots`], and
//! the slots for decoding large publish bodies in [`decode_slots`].
//!
//! Owns the limiters and the bound on their key tables. Service keys are
//! configured names, so that table is bounded by the config. Address keys
//! come from clients: IPv6 addresses are keyed by their /64 (one host
//! typically owns a whole /64), the table is pruned of keys that have fully
//! recovered every [`PRUNE_INTERVAL`], and while it is at its cap a new
//! address is refused (and counted) rather than let the table grow.

pub mod bytes;
pub mod decode_slots;
pub mod slots;

use std::hash::Hash;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock, QuantaClock};
use governor::middleware::NoOpMiddleware;
use governor::state::keyed::DashMapStateStore;
use governor::{Quota, RateLimiter};

/// How often recovered keys are dropped from the address table.
pub const PRUNE_INTERVAL: Duration = Duration::from_secs(10);

/// Most client addresses tracked at once.
pub const MAX_TRACKED_ADDRESSES: usize = 100_000;

type Keyed<K, C> = RateLimiter<K, DashMapStateStore<K>, C, NoOpMiddleware<<C as Clock>::Instant>>;

/// The contract's burst: twice the sustained rate.
const BURST_FACTOR: NonZeroU32 = match NonZeroU32::new(2) {
    Some(n) => n,
    None => unreachable!(),
};

/// A refusal: when to try again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limited {
    pub retry_after: Duration,
    /// The address table was full (only for address limits).
    pub table_full: bool,
    /// More was asked for at once than the burst allows: it can never
    /// pass, however long the client waits (the burst, for the answer).
    pub over_burst: Option<u64>,
}

impl Limited {
    /// `Retry-After` in whole seconds, at least 1.
    pub fn retry_after_secs(&self) -> u64 {
        self.retry_after.as_secs_f64().ceil().max(1.0) as u64
    }
}

/// The limits kept per client address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressLimit {
    /// New subscriber connections.
    Connect,
    /// History requests.
    History,
}

impl AddressLimit {
    /// The `limit` label of `rate_limited_total` for a refusal.
    pub fn label(self, limited: &Limited) -> &'static str {
        use crate::metrics::label::limit;
        match (self, limited.table_full) {
            (AddressLimit::Connect, false) => limit::CONNECT,
            (AddressLimit::Connect, true) => limit::CONNECT_TABLE_FULL,
            (AddressLimit::History, false) => limit::HISTORY,
            (AddressLimit::History, true) => limit::HISTORY_TABLE_FULL,
        }
    }
}

/// A keyed limiter, `None` when the configured rate is 0 (no limit).
struct KeyedLimit<K: Hash + Eq + Clone, C: Clock> {
    limiter: Option<Keyed<K, C>>,
    clock: C,
}

impl<K: Hash + Eq + Clone, C: Clock + Clone> KeyedLimit<K, C> {
    fn new(rate: u32, clock: C) -> Self {
        let quota = NonZeroU32::new(rate)
            .map(|r| Quota::per_second(r).allow_burst(r.saturating_mul(BURST_FACTOR)));
        Self::with_quota(quota, clock)
    }

    fn with_quota(quota: Option<Quota>, clock: C) -> Self {
        let limiter = quota.map(|q| RateLimiter::dashmap_with_clock(q, clock.clone()));
        KeyedLimit { limiter, clock }
    }

    fn check(&self, key: &K, n: u32) -> Result<(), Limited> {
        let (Some(limiter), Some(n)) = (&self.limiter, NonZeroU32::new(n)) else {
            return Ok(());
        };
        match limiter.check_key_n(key, n) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(not_until)) => Err(Limited {
                retry_after: not_until.wait_time_from(self.clock.now()),
                table_full: false,
                over_burst: None,
            }),
            // More than the burst at once: a small rate is a normal
            // setting, so this is a batch too large for it, not an error of
            // the configuration.
            Err(governor::InsufficientCapacity(burst)) => Err(Limited {
                retry_after: Duration::from_secs(1),
                table_full: false,
                over_burst: Some(u64::from(burst)),
            }),
        }
    }

    fn len(&self) -> usize {
        self.limiter.as_ref().map_or(0, |l| l.len())
    }

    fn prune(&self) {
        if let Some(l) = &self.limiter {
            l.retain_recent();
            l.shrink_to_fit();
        }
    }
}

/// The key a client address is limited under.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AddressKey {
    V4(u32),
    /// The /64 network.
    V6(u64),
}

impl From<IpAddr> for AddressKey {
    fn from(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(v4) => AddressKey::V4(v4.into()),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => AddressKey::V4(v4.into()),
                None => AddressKey::V6((u128::from(v6) >> 64) as u64),
            },
        }
    }
}

/// Who is asking, for the chat limit: a digest of the caller's token (or
/// of its address, when subscriptions are open).
pub type CallerKey = [u8; 16];

/// The gateway's rate limits.
pub struct RateLimits<C: Clock = DefaultClock> {
    publish: KeyedLimit<String, C>,
    /// Publish bytes per service.
    publish_bytes: bytes::ByteRate<C>,
    connect: KeyedLimit<AddressKey, C>,
    history: KeyedLimit<AddressKey, C>,
    /// Chats per caller (a digest of its credential) per minute.
    chat: KeyedLimit<CallerKey, C>,
    max_addresses: usize,
}

/// Sustained rates (per second with a burst of twice that, except the
/// chat's; 0 = no limit).
#[derive(Debug, Clone, Copy, Default)]
pub struct Rates {
    /// Events per service.
    pub publish: u32,
    /// Bytes of (decoded) request body per service.
    pub publish_bytes: u64,
    /// New subscriber connections per client address.
    pub connect: u32,
    /// History requests per client address.
    pub history: u32,
    /// Chats per caller per minute, the burst the same.
    pub chat_per_minute: u32,
}

impl RateLimits<QuantaClock> {
    /// The limits at `rates`, on the real clock.
    pub fn new(rates: Rates) -> Self {
        Self::with_clock(rates, MAX_TRACKED_ADDRESSES, QuantaClock::default())
    }
}

impl<C: Clock + Clone> RateLimits<C> {
    /// The limits at `rates` on `clock`, tracking at most `max_addresses`
    /// client addresses per address limit (tests use a fake clock).
    pub fn with_clock(rates: Rates, max_addresses: usize, clock: C) -> Self {
        RateLimits {
            publish: KeyedLimit::new(rates.publish, clock.clone()),
            publish_bytes: bytes::ByteRate::new(rates.publish_bytes, clock.clone()),
            connect: KeyedLimit::new(rates.connect, clock.clone()),
            history: KeyedLimit::new(rates.history, clock.clone()),
            chat: KeyedLimit::with_quota(
                NonZeroU32::new(rates.chat_per_minute).map(Quota::per_minute),
                clock,
            ),
            max_addresses,
        }
    }

    /// May `service` publish `events` more events now?
    pub fn check_publish(&self, service: &str, events: usize) -> Result<(), Limited> {
        let n = u32::try_from(events).unwrap_or(u32::MAX);
        self.publish.check(&service.to_owned(), n)
    }

    /// May `service` publish a body of `bytes` now? They are spent if so.
    pub fn check_publish_bytes(&self, service: &str, bytes: usize) -> Result<(), Limited> {
        self.publish_bytes.check(service, bytes as u64, true)
    }

    /// Could `service` publish a body of `bytes` now? Nothing is spent: a
    /// look before the work, with the least size the body can have.
    pub fn peek_publish_bytes(&self, service: &str, bytes: usize) -> Result<(), Limited> {
        self.publish_bytes.check(service, bytes as u64, false)
    }

    /// Spends `bytes` of `service`'s byte rate whether or not they fit
    /// (work already done); the excess is a debt its next requests wait
    /// out.
    pub fn charge_publish_bytes(&self, service: &str, bytes: usize) {
        self.publish_bytes.charge(service, bytes as u64);
    }

    /// The most bytes one request may carry (0: no limit).
    pub fn publish_bytes_burst(&self) -> u64 {
        self.publish_bytes.burst()
    }

    /// May `ip` open a connection (or ask for history) now? `None` (no
    /// address known) is not limited.
    pub fn check_address(&self, which: AddressLimit, ip: Option<IpAddr>) -> Result<(), Limited> {
        let limit = match which {
            AddressLimit::Connect => &self.connect,
            AddressLimit::History => &self.history,
        };
        let Some(ip) = ip else { return Ok(()) };
        let key = AddressKey::from(ip);
        if limit.limiter.is_some() && limit.len() >= self.max_addresses {
            limit.prune();
            if limit.len() >= self.max_addresses {
                return Err(Limited {
                    retry_after: PRUNE_INTERVAL,
                    table_full: true,
                    over_burst: None,
                });
            }
        }
        limit.check(&key, 1)
    }

    /// One chat for `caller`; the caller table is bounded like the
    /// address tables.
    pub fn check_chat(&self, caller: &CallerKey) -> Result<(), Limited> {
        let limit = &self.chat;
        if limit.limiter.is_some() && limit.len() >= self.max_addresses {
            limit.prune();
            if limit.len() >= self.max_addresses {
                return Err(Limited {
                    retry_after: PRUNE_INTERVAL,
                    table_full: true,
                    over_burst: None,
                });
            }
        }
        limit.check(caller, 1)
    }

    /// Drops keys that have fully recovered; run every [`PRUNE_INTERVAL`].
    pub fn prune(&self) {
        self.publish.prune();
        self.publish_bytes.prune();
        self.connect.prune();
        self.history.prune();
        self.chat.prune();
    }

    /// Addresses tracked now (by the connection limit, and by the history
    /// limit).
    pub fn tracked_addresses(&self) -> usize {
        self.connect.len() + self.history.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use governor::clock::FakeRelativeClock;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn limits(
        publish: u32,
        connect: u32,
        max: usize,
    ) -> (RateLimits<FakeRelativeClock>, FakeRelativeClock) {
        let clock = FakeRelativeClock::default();
        let rates = Rates {
            publish,
            publish_bytes: 0,
            connect,
            history: connect,
            chat_per_minute: connect,
        };
        (RateLimits::with_clock(rates, max, clock.clone()), clock)
    }

    #[test]
    fn publish_rate_has_a_burst_of_twice_the_rate() {
        let (l, clock) = limits(100, 0, 10);
        assert!(l.check_publish("etl", 200).is_ok(), "burst is 2x");
        let refused = l.check_publish("etl", 1).unwrap_err();
        assert!(refused.retry_after > Duration::ZERO);
        assert!(l.check_publish("faas", 150).is_ok(), "per service");
        clock.advance(Duration::from_millis(500));
        assert!(l.check_publish("etl", 50).is_ok(), "refills at the rate");
        assert!(l.check_publish("etl", 1).is_err());
        assert_eq!(
            l.check_publish("etl", 201).unwrap_err().over_burst,
            Some(200),
            "never more than the burst"
        );
    }

    #[test]
    fn zero_means_no_limit() {
        let (l, _) = limits(0, 0, 1);
        for _ in 0..1000 {
            assert!(l.check_publish("etl", 1000).is_ok());
            assert!(
                l.check_address(AddressLimit::Connect, Some(Ipv4Addr::LOCALHOST.into()))
                    .is_ok()
            );
        }
        assert_eq!(l.tracked_addresses(), 0);
    }

    #[test]
    fn connections_per_address_and_ipv6_by_64() {
        let (l, clock) = limits(0, 5, 100);
        let a: IpAddr = Ipv4Addr::new(10, 0, 0, 1).into();
        for _ in 0..10 {
            assert!(l.check_address(AddressLimit::Connect, Some(a)).is_ok());
        }
        assert!(l.check_address(AddressLimit::Connect, Some(a)).is_err());
        assert!(
            l.check_address(
                AddressLimit::Connect,
                Some(Ipv4Addr::new(10, 0, 0, 2).into())
            )
            .is_ok()
        );
        // Two addresses of one /64 share a budget.
        let v6 = |last: u16| IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 1, 2, 0, 0, 0, last));
        for i in 0..10 {
            assert!(l.check_address(AddressLimit::Connect, Some(v6(i))).is_ok());
        }
        assert!(
            l.check_address(AddressLimit::Connect, Some(v6(999)))
                .is_err()
        );
        clock.advance(Duration::from_secs(1));
        assert!(l.check_address(AddressLimit::Connect, Some(a)).is_ok());
    }

    #[test]
    fn the_address_table_is_bounded_and_pruned() {
        let (l, clock) = limits(0, 5, 50);
        for i in 0..50u32 {
            assert!(
                l.check_address(AddressLimit::Connect, Some(IpAddr::V4(i.into())))
                    .is_ok()
            );
        }
        let full = l
            .check_address(AddressLimit::Connect, Some(IpAddr::V4(1000.into())))
            .unwrap_err();
        assert!(full.table_full);
        assert_eq!(l.tracked_addresses(), 50);
        // Once the keys have recovered, pruning frees the table.
        clock.advance(Duration::from_secs(5));
        l.prune();
        assert_eq!(l.tracked_addresses(), 0);
        assert!(
            l.check_address(AddressLimit::Connect, Some(IpAddr::V4(1000.into())))
                .is_ok()
        );
    }
}

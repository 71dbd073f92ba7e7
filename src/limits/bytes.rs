//! The publish byte rate (`PUBLISH_BYTES_PER_SEC`): bytes of request body
//! per second per service, burst twice that, as GCRA keeps it (a
//! service's "theoretical arrival time" advances by each byte's share of a
//! second; a request passes when that stays within the burst's two seconds
//! of now).
//!
//! Kept by hand rather than by governor, which the event rate uses,
//! because the size of a request is known in two steps: a compressed body
//! says how large it is only once inflated, and inflating is the work the
//! limit is there to bound. [`ByteRate::check`] can therefore look without
//! taking: a request whose least possible size already does not fit is
//! refused before its body is read, and the exact size is taken once known.
//!
//! Keys are service names, bounded by the configuration (and one shared
//! key for `/test/logs`'s others); [`ByteRate::prune`] drops those that
//! have fully recovered.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use governor::clock::{Clock, Reference};

use super::Limited;

const NANOS_PER_SEC: u128 = 1_000_000_000;

/// A byte budget per key: `rate` bytes per second, burst `2 × rate`.
pub struct ByteRate<C: Clock> {
    /// Bytes per second; 0 = no limit.
    rate: u64,
    clock: C,
    /// Where the clock's nanoseconds are counted from.
    origin: C::Instant,
    /// Per key, ns since `origin` before which its budget is spent
    /// (absent: full).
    tat: Mutex<HashMap<String, u64>>,
}

impl<C: Clock> ByteRate<C> {
    pub fn new(rate: u64, clock: C) -> Self {
        let origin = clock.now();
        ByteRate {
            rate,
            clock,
            origin,
            tat: Mutex::new(HashMap::new()),
        }
    }

    /// The most one request may ever carry: twice the rate.
    pub fn burst(&self) -> u64 {
        self.rate.saturating_mul(2)
    }

    fn now(&self) -> u64 {
        self.clock.now().duration_since(self.origin).as_u64()
    }

    /// How long `bytes` take to earn back, in ns.
    fn cost(&self, bytes: u64) -> u64 {
        let ns = u128::from(bytes) * NANOS_PER_SEC / u128::from(self.rate.max(1));
        u64::try_from(ns).unwrap_or(u64::MAX)
    }

    fn table(&self) -> std::sync::MutexGuard<'_, HashMap<String, u64>> {
        // Plain numbers: a panic elsewhere cannot leave them inconsistent.
        self.tat.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// May `key` send `bytes` more now? With `take`, they are spent when
    /// they may; without, nothing changes (a look before the work).
    pub fn check(&self, key: &str, bytes: u64, take: bool) -> Result<(), Limited> {
        if self.rate == 0 || bytes == 0 {
            return Ok(());
        }
        let burst = self.burst();
        if bytes > burst {
            return Err(Limited {
                retry_after: Duration::from_secs(1),
                table_full: false,
                over_burst: Some(burst),
            });
        }
        let now = self.now();
        let tolerance = self.cost(burst);
        let mut table = self.table();
        let tat = table.get(key).copied().unwrap_or(now).max(now);
        let next = tat.saturating_add(self.cost(bytes));
        let allowed_at = next.saturating_sub(tolerance);
        if allowed_at > now {
            return Err(Limited {
                retry_after: Duration::from_nanos(allowed_at - now),
                table_full: false,
                over_burst: None,
            });
        }
        if take {
            match table.get_mut(key) {
                Some(t) => *t = next,
                None => {
                    table.insert(key.to_owned(), next);
                }
            }
        }
        Ok(())
    }

    /// Spends `bytes` whether or not they fit: for work already done on a
    /// request whose size could not be known before. What does not fit is
    /// a debt the key's next requests wait out.
    pub fn charge(&self, key: &str, bytes: u64) {
        if self.rate == 0 || bytes == 0 {
            return;
        }
        let now = self.now();
        let cost = self.cost(bytes);
        let mut table = self.table();
        match table.get_mut(key) {
            Some(tat) => *tat = (*tat).max(now).saturating_add(cost),
            None => {
                table.insert(key.to_owned(), now.saturating_add(cost));
            }
        }
    }

    /// Drops keys whose budget is full again.
    pub fn prune(&self) {
        let now = self.now();
        let mut table = self.table();
        table.retain(|_, tat| *tat > now);
        table.shrink_to_fit();
    }

    /// Keys tracked now.
    pub fn tracked(&self) -> usize {
        self.table().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use governor::clock::FakeRelativeClock;

    fn rate(r: u64) -> (ByteRate<FakeRelativeClock>, FakeRelativeClock) {
        let clock = FakeRelativeClock::default();
        (ByteRate::new(r, clock.clone()), clock)
    }

    #[test]
    fn a_burst_of_twice_the_rate_then_the_rate() {
        let (b, clock) = rate(1000);
        assert!(b.check("etl", 1500, true).is_ok());
        assert!(b.check("etl", 500, true).is_ok(), "the burst is 2000");
        let refused = b.check("etl", 100, true).unwrap_err();
        assert_eq!(refused.over_burst, None);
        assert_eq!(refused.retry_after, Duration::from_millis(100));
        assert!(b.check("faas", 2000, true).is_ok(), "per key");
        clock.advance(Duration::from_millis(250));
        assert!(b.check("etl", 250, true).is_ok(), "refills at the rate");
        assert!(b.check("etl", 1, true).is_err());
    }

    #[test]
    fn looking_takes_nothing() {
        let (b, _) = rate(1000);
        for _ in 0..10 {
            assert!(b.check("etl", 2000, false).is_ok());
        }
        assert_eq!(b.tracked(), 0);
        assert!(b.check("etl", 2000, true).is_ok());
        assert!(b.check("etl", 1, false).is_err());
    }

    #[test]
    fn more_than_the_burst_can_never_pass_and_zero_is_no_limit() {
        let (b, _) = rate(1000);
        let e = b.check("etl", 2001, true).unwrap_err();
        assert_eq!(e.over_burst, Some(2000));
        assert!(b.check("etl", 2000, true).is_ok(), "a refusal took nothing");
        let (none, _) = rate(0);
        assert!(none.check("etl", u64::MAX, true).is_ok());
        assert_eq!(none.tracked(), 0);
    }

    #[test]
    fn a_charge_past_the_budget_is_a_debt_waited_out() {
        let (b, clock) = rate(1000);
        b.check("etl", 2000, true).unwrap();
        b.charge("etl", 1000);
        let refused = b.check("etl", 1, false).unwrap_err();
        assert_eq!(refused.retry_after, Duration::from_millis(1001));
        clock.advance(Duration::from_millis(1001));
        assert!(b.check("etl", 1, true).is_ok());
        let (none, _) = rate(0);
        none.charge("etl", 5);
        assert_eq!(none.tracked(), 0);
    }

    #[test]
    fn recovered_keys_are_pruned() {
        let (b, clock) = rate(1000);
        b.check("etl", 1000, true).unwrap();
        b.check("faas", 10, true).unwrap();
        clock.advance(Duration::from_millis(500));
        b.prune();
        assert_eq!(b.tracked(), 1, "faas has recovered, etl has not");
        clock.advance(Duration::from_millis(600));
        b.prune();
        assert_eq!(b.tracked(), 0);
    }
}

//! The one way a NATS link waits before trying again: a delay that
//! doubles with each failed try, up to a cap. The client's reconnects
//! ([`super::link`]) and the JetStream consumer's restarts
//! ([`super::jetstream::consumer`]) both use it, each with its own bounds.

use std::time::Duration;

/// A capped exponential backoff.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The wait after the first failure.
    pub first: Duration,
    /// The longest wait: a link that is down is still tried this often.
    pub max: Duration,
}

impl Backoff {
    pub const fn new(first: Duration, max: Duration) -> Self {
        Backoff { first, max }
    }

    /// The wait after `failures` failed tries in a row (0 or 1: `first`),
    /// doubling each time, at most `max`.
    pub fn delay(&self, failures: usize) -> Duration {
        let doublings = failures.saturating_sub(1).min(16) as u32;
        self.first.saturating_mul(1 << doublings).min(self.max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_its_cap() {
        let b = Backoff::new(Duration::from_millis(100), Duration::from_secs(2));
        let ms = |n| b.delay(n).as_millis();
        assert_eq!((ms(0), ms(1), ms(2), ms(3)), (100, 100, 200, 400));
        assert_eq!((ms(5), ms(6), ms(usize::MAX)), (1600, 2000, 2000));
    }
}

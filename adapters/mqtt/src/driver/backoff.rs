//! When to try connecting again: pure, so it is tested without a clock.

use std::time::Duration;

/// First delay after a failure.
pub(super) const START: Duration = Duration::from_millis(500);
/// Longest delay.
pub(super) const MAX: Duration = Duration::from_secs(30);
/// A connection that lasted at least this long counts as healthy: the next failure starts the
/// delays over.
pub(super) const HEALTHY: Duration = Duration::from_secs(30);

/// The reconnect delays of one broker connection: 0.5 s, doubling up to 30 s, back to 0.5 s
/// after a connection that lasted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Backoff {
    next: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self { next: START }
    }
}

impl Backoff {
    /// A connection attempt failed, or a connection dropped after `lasted` (`None`: it never
    /// came up). Returns how long to wait before the next attempt.
    pub(super) fn failed(&mut self, lasted: Option<Duration>) -> Duration {
        if lasted.is_some_and(|lasted| lasted >= HEALTHY) {
            self.next = START;
        }
        let delay = self.next;
        self.next = (self.next * 2).min(MAX);
        delay
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn failed_attempts_should_wait_half_a_second_doubling_up_to_thirty() {
        let mut backoff = Backoff::default();
        let delays: Vec<Duration> = (0..9).map(|_| backoff.failed(None)).collect();
        assert_eq!(
            delays,
            [
                ms(500),
                ms(1000),
                ms(2000),
                ms(4000),
                ms(8000),
                ms(16000),
                ms(30000),
                ms(30000),
                ms(30000)
            ]
        );
    }

    #[test]
    fn a_connection_that_lasted_thirty_seconds_should_start_the_delays_over() {
        let mut backoff = Backoff::default();
        for _ in 0..5 {
            backoff.failed(None);
        }
        assert_eq!(backoff.failed(Some(HEALTHY)), START);
        assert_eq!(backoff.failed(None), ms(1000));
    }

    #[test]
    fn a_short_lived_connection_should_keep_backing_off() {
        let mut backoff = Backoff::default();
        backoff.failed(None);
        backoff.failed(None);
        assert_eq!(backoff.failed(Some(Duration::from_secs(29))), ms(2000));
    }
}

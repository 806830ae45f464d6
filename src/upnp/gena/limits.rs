//! The bounds eventing works within: subscription lifetimes, how many subscriptions, how much is
//! queued per subscriber and how hard delivery tries.

use std::time::Duration;

use super::headers::RequestedTimeout;

/// Bounds for GENA eventing. [`GenaLimits::default`] gives values suited to a gateway with a few
/// dozen virtual devices.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenaLimits {
    /// Shortest subscription granted; shorter requests are raised to it.
    pub min_timeout: Duration,
    /// Longest subscription granted; longer requests and `Second-infinite` are lowered to it.
    pub max_timeout: Duration,
    /// Subscription granted when the SUBSCRIBE has no TIMEOUT header (clamped like a request).
    pub default_timeout: Duration,
    /// Most subscriptions one service accepts; more get 503.
    pub max_per_service: usize,
    /// Most subscriptions across all services; more get 503.
    pub max_total: usize,
    /// Most events waiting per subscriber (not counting the one being delivered); on overflow
    /// the waiting events are coalesced into one carrying the newest value of each variable.
    pub queue_len: usize,
    /// Attempts per event (each attempt tries every callback URL in order) before the event is
    /// abandoned; at least 1.
    pub delivery_attempts: u32,
    /// Wait before the second attempt; doubled for each further attempt.
    pub retry_backoff: Duration,
    /// Consecutive abandoned events after which a subscriber is considered dead and dropped.
    pub dead_after: u32,
    /// Bound on one NOTIFY to one callback URL: connect, send and response.
    pub delivery_timeout: Duration,
    /// How long the initial event of a new subscription is held so it does not overtake the
    /// SUBSCRIBE response on the wire.
    pub initial_event_delay: Duration,
}

impl Default for GenaLimits {
    fn default() -> Self {
        Self {
            min_timeout: Duration::from_secs(60),
            max_timeout: Duration::from_secs(3600),
            default_timeout: Duration::from_secs(1800),
            max_per_service: 32,
            max_total: 512,
            queue_len: 64,
            delivery_attempts: 3,
            retry_backoff: Duration::from_secs(2),
            dead_after: 3,
            delivery_timeout: Duration::from_secs(10),
            initial_event_delay: Duration::from_millis(200),
        }
    }
}

impl GenaLimits {
    /// The subscription duration granted for `requested`: within `[min_timeout, max_timeout]`,
    /// `infinite` as `max_timeout`, none as `default_timeout`.
    pub fn grant(&self, requested: RequestedTimeout) -> Duration {
        let wanted = match requested {
            RequestedTimeout::Unspecified => self.default_timeout,
            RequestedTimeout::Infinite => self.max_timeout,
            RequestedTimeout::Seconds(s) => Duration::from_secs(s),
        };
        wanted.clamp(self.min_timeout, self.max_timeout.max(self.min_timeout))
    }

    /// Wait before attempt `attempt` (1-based count of attempts already failed).
    pub(crate) fn backoff(&self, failed: u32) -> Duration {
        let doublings = failed.saturating_sub(1).min(16);
        self.retry_backoff.saturating_mul(1 << doublings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requested_timeouts_should_be_clamped_to_the_configured_range() {
        let limits = GenaLimits::default();
        let granted = |t| limits.grant(t).as_secs();
        assert_eq!(granted(RequestedTimeout::Seconds(1)), 60);
        assert_eq!(granted(RequestedTimeout::Seconds(0)), 60);
        assert_eq!(granted(RequestedTimeout::Seconds(300)), 300);
        assert_eq!(granted(RequestedTimeout::Seconds(86_400)), 3600);
        assert_eq!(granted(RequestedTimeout::Seconds(u64::MAX)), 3600);
        assert_eq!(granted(RequestedTimeout::Infinite), 3600);
        assert_eq!(granted(RequestedTimeout::Unspecified), 1800);
    }

    #[test]
    fn retry_backoff_should_double_per_failed_attempt() {
        let limits = GenaLimits::default();
        assert_eq!(limits.backoff(1), Duration::from_secs(2));
        assert_eq!(limits.backoff(2), Duration::from_secs(4));
        assert_eq!(limits.backoff(3), Duration::from_secs(8));
    }
}

//! Per-source token buckets for M-SEARCH (DESIGN.md §8: rate-limit responses), with a bounded
//! table so a flood of spoofed sources cannot grow memory. Sans-IO: `now` is passed in.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::time::Duration;

use tokio::time::Instant;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: u32,
    /// When the tokens were last topped up; a partial token's time is kept.
    refilled: Instant,
}

/// Token buckets keyed by source address.
#[derive(Debug)]
pub(crate) struct SourceLimiter {
    buckets: HashMap<Ipv4Addr, Bucket>,
    burst: u32,
    refill: Duration,
    max_sources: usize,
    last_sweep: Option<Instant>,
}

impl SourceLimiter {
    /// `burst` searches at once per source, one more every `refill`, at most `max_sources`
    /// sources tracked.
    pub(crate) fn new(burst: u32, refill: Duration, max_sources: usize) -> Self {
        Self {
            buckets: HashMap::new(),
            burst: burst.max(1),
            refill: refill.max(Duration::from_millis(1)),
            max_sources: max_sources.max(1),
            last_sweep: None,
        }
    }

    /// Whether `source` may make one more search at `now`; takes a token if so.
    pub(crate) fn allow(&mut self, source: Ipv4Addr, now: Instant) -> bool {
        if !self.buckets.contains_key(&source) && self.buckets.len() >= self.max_sources {
            self.sweep(now);
            if self.buckets.len() >= self.max_sources {
                return false;
            }
        }
        let (burst, refill) = (self.burst, self.refill);
        let bucket = self.buckets.entry(source).or_insert(Bucket {
            tokens: burst,
            refilled: now,
        });
        Self::top_up(bucket, burst, refill, now);
        if bucket.tokens == 0 {
            return false;
        }
        bucket.tokens -= 1;
        true
    }

    /// How many sources are tracked.
    #[cfg(test)]
    pub(crate) fn sources(&self) -> usize {
        self.buckets.len()
    }

    fn top_up(bucket: &mut Bucket, burst: u32, refill: Duration, now: Instant) {
        let elapsed = now.saturating_duration_since(bucket.refilled);
        let earned = elapsed.as_nanos() / refill.as_nanos().max(1);
        if earned == 0 {
            return;
        }
        let tokens = u128::from(bucket.tokens) + earned;
        if tokens >= u128::from(burst) {
            bucket.tokens = burst;
            bucket.refilled = now;
        } else {
            // `earned < burst`, so it fits in a u32.
            bucket.tokens = u32::try_from(tokens).unwrap_or(burst);
            bucket.refilled += refill * u32::try_from(earned).unwrap_or(0);
        }
    }

    /// Forgets sources whose bucket has refilled: they are as good as new. At most once per
    /// refill period, so a flood of new sources costs one pass per period, not one per packet.
    fn sweep(&mut self, now: Instant) {
        if self
            .last_sweep
            .is_some_and(|last| now.saturating_duration_since(last) < self.refill)
        {
            return;
        }
        self.last_sweep = Some(now);
        let (burst, refill) = (self.burst, self.refill);
        self.buckets.retain(|_, bucket| {
            Self::top_up(bucket, burst, refill, now);
            bucket.tokens < burst
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 50);
    const B: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 51);

    #[test]
    fn a_source_should_be_limited_after_its_burst_and_recover_over_time() {
        let now = Instant::now();
        let mut limiter = SourceLimiter::new(3, Duration::from_secs(1), 16);
        assert!((0..3).all(|_| limiter.allow(A, now)));
        assert!(!limiter.allow(A, now));
        assert!(limiter.allow(B, now), "other sources are not affected");
        assert!(!limiter.allow(A, now + Duration::from_millis(999)));
        assert!(limiter.allow(A, now + Duration::from_secs(1)));
        assert!(!limiter.allow(A, now + Duration::from_millis(1500)));
        let later = now + Duration::from_secs(60);
        assert!(
            (0..3).all(|_| limiter.allow(A, later)),
            "back to a full burst"
        );
        assert!(!limiter.allow(A, later));
    }

    #[test]
    fn a_full_table_should_refuse_new_sources_until_old_ones_refill() {
        let now = Instant::now();
        let mut limiter = SourceLimiter::new(2, Duration::from_secs(1), 4);
        for i in 0..4 {
            assert!(limiter.allow(Ipv4Addr::new(10, 0, 0, i), now));
        }
        assert!(!limiter.allow(Ipv4Addr::new(10, 0, 0, 9), now));
        assert_eq!(limiter.sources(), 4);
        let later = now + Duration::from_secs(2);
        assert!(limiter.allow(Ipv4Addr::new(10, 0, 0, 9), later));
        assert_eq!(limiter.sources(), 1, "refilled sources were forgotten");
    }
}

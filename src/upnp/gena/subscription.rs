//! One subscriber: its callbacks, lifetime, SEQ and ordered delivery queue (UDA 2.0 §4.2–4.3).
//!
//! Events wait in a bounded queue; one is delivered at a time so they arrive in order. The event
//! being delivered (the head) has its SEQ fixed when it is first tried and keeps it through
//! retries. When the queue is full, the waiting events are coalesced into one carrying the
//! newest value of each variable: a subscriber that cannot keep up loses intermediate values
//! but never the latest state, and the queue never holds more than `queue_len` sets.

use std::collections::VecDeque;

use tokio::time::Instant;

use super::headers::CallbackUrl;
use super::propertyset::PropertySet;
use super::service::ServiceKey;

/// The SEQ after `seq`: wraps from `u32::MAX` to 1, never back to 0 (UDA 2.0 §4.3.2; 0 is the
/// initial event's alone).
pub(crate) fn next_seq(seq: u32) -> u32 {
    seq.checked_add(1).unwrap_or(1)
}

/// The event being delivered.
#[derive(Debug, Clone)]
pub(crate) struct Head {
    /// Its SEQ.
    pub(crate) seq: u32,
    /// What it carries.
    pub(crate) set: PropertySet,
    /// Attempts that failed so far.
    pub(crate) failed: u32,
}

/// One subscription.
#[derive(Debug, Clone)]
pub(crate) struct Subscription {
    /// The service subscribed to.
    pub(crate) key: ServiceKey,
    /// Where NOTIFYs go, tried in order.
    pub(crate) callbacks: Vec<CallbackUrl>,
    /// When it lapses unless renewed.
    pub(crate) expires_at: Instant,
    /// SEQ of the next event started.
    seq: u32,
    /// The event being delivered, if any.
    pub(crate) head: Option<Head>,
    /// Events waiting, oldest first.
    queue: VecDeque<PropertySet>,
    queue_len: usize,
    /// No delivery starts before this (initial-event hold, retry backoff).
    pub(crate) not_before: Instant,
    /// The delivery in flight, if any.
    pub(crate) in_flight: Option<u64>,
    /// Events abandoned in a row.
    pub(crate) abandoned: u32,
}

impl Subscription {
    /// A new subscription whose first event, `initial`, is held until `not_before`.
    pub(crate) fn new(
        key: ServiceKey,
        callbacks: Vec<CallbackUrl>,
        expires_at: Instant,
        initial: PropertySet,
        not_before: Instant,
        queue_len: usize,
    ) -> Self {
        Self {
            key,
            callbacks,
            expires_at,
            seq: 0,
            head: None,
            queue: VecDeque::from([initial]),
            queue_len: queue_len.max(1),
            not_before,
            in_flight: None,
            abandoned: 0,
        }
    }

    /// Whether it lapsed at `now`.
    pub(crate) fn is_expired(&self, now: Instant) -> bool {
        now >= self.expires_at
    }

    /// Queues `set` behind what is waiting, coalescing when the queue is full.
    pub(crate) fn push(&mut self, set: &PropertySet) {
        if self.queue.len() >= self.queue_len {
            let mut merged = PropertySet::default();
            for waiting in self.queue.drain(..) {
                merged.merge(&waiting);
            }
            merged.merge(set);
            self.queue.push_back(merged);
        } else {
            self.queue.push_back(set.clone());
        }
    }

    /// Events waiting (not counting the head).
    #[cfg(test)]
    pub(crate) fn waiting(&self) -> usize {
        self.queue.len()
    }

    /// Whether there is an event to deliver.
    pub(crate) fn has_work(&self) -> bool {
        self.head.is_some() || !self.queue.is_empty()
    }

    /// When a delivery could start, if there is one to start and none in flight.
    pub(crate) fn ready_at(&self) -> Option<Instant> {
        (self.in_flight.is_none() && self.has_work()).then_some(self.not_before)
    }

    /// At `now`, starts delivery `id` of the head (taking the next waiting event as head, with
    /// the next SEQ, if there is none): returns the head, or `None` when nothing may start.
    pub(crate) fn start(&mut self, id: u64, now: Instant) -> Option<&Head> {
        if self.is_expired(now) || self.ready_at().is_none_or(|at| now < at) {
            return None;
        }
        if self.head.is_none() {
            let set = self.queue.pop_front()?;
            self.head = Some(Head {
                seq: self.seq,
                set,
                failed: 0,
            });
            self.seq = next_seq(self.seq);
        }
        self.in_flight = Some(id);
        self.head.as_ref()
    }

    #[cfg(test)]
    pub(crate) fn set_next_seq(&mut self, seq: u32) {
        self.seq = seq;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(pairs: &[(&str, &str)]) -> PropertySet {
        let mut s = PropertySet::default();
        for (n, v) in pairs {
            s.set(n, v);
        }
        s
    }

    fn subscription(queue_len: usize, now: Instant) -> Subscription {
        let key = ServiceKey {
            device: uuid::Uuid::nil(),
            service_id: "urn:x-test:serviceId:S".into(),
        };
        Subscription::new(
            key,
            Vec::new(),
            now + std::time::Duration::from_secs(60),
            set(&[("A", "0"), ("B", "0")]),
            now,
            queue_len,
        )
    }

    /// Starts and completes deliveries until none is left, returning (SEQ, set) in order.
    fn drain(s: &mut Subscription, now: Instant) -> Vec<(u32, PropertySet)> {
        let mut out = Vec::new();
        let mut id = 0;
        while let Some(head) = s.start(id, now) {
            out.push((head.seq, head.set.clone()));
            s.head = None;
            s.in_flight = None;
            id += 1;
        }
        out
    }

    #[test]
    fn seq_should_wrap_from_max_to_one_never_zero() {
        assert_eq!(next_seq(0), 1);
        assert_eq!(next_seq(41), 42);
        assert_eq!(next_seq(u32::MAX), 1);
    }

    #[test]
    fn only_one_delivery_should_be_in_flight_and_the_head_keeps_its_seq() {
        let now = Instant::now();
        let mut s = subscription(8, now);
        s.push(&set(&[("A", "1")]));
        assert_eq!(s.start(1, now).map(|h| h.seq), Some(0));
        assert!(
            s.start(2, now).is_none(),
            "second delivery while one is in flight"
        );
        // A failed attempt leaves the head in place; the retry carries the same SEQ.
        s.in_flight = None;
        assert_eq!(s.start(3, now).map(|h| h.seq), Some(0));
    }

    #[test]
    fn a_full_queue_should_coalesce_into_the_newest_value_of_each_variable() {
        let now = Instant::now();
        let mut s = subscription(3, now);
        s.push(&set(&[("A", "1")]));
        s.push(&set(&[("B", "1")]));
        assert_eq!(s.waiting(), 3);
        s.push(&set(&[("A", "2"), ("C", "1")]));
        assert_eq!(s.waiting(), 1);
        for i in 3..100 {
            s.push(&set(&[("A", &i.to_string())]));
            assert!(s.waiting() <= 3);
        }
        let delivered = drain(&mut s, now);
        let seqs: Vec<u32> = delivered.iter().map(|(seq, _)| *seq).collect();
        assert_eq!(seqs, (0..seqs.len() as u32).collect::<Vec<_>>());
        let mut last = PropertySet::default();
        for (_, set) in &delivered {
            last.merge(set);
        }
        assert_eq!(last.get("A"), Some("99"));
        assert_eq!(last.get("B"), Some("1"));
        assert_eq!(last.get("C"), Some("1"));
    }

    #[test]
    fn seq_should_wrap_to_one_across_deliveries() {
        let now = Instant::now();
        let mut s = subscription(8, now);
        drain(&mut s, now);
        s.set_next_seq(u32::MAX);
        s.push(&set(&[("A", "1")]));
        s.push(&set(&[("A", "2")]));
        let seqs: Vec<u32> = drain(&mut s, now).iter().map(|(seq, _)| *seq).collect();
        assert_eq!(seqs, [u32::MAX, 1]);
    }
}

//! Faults a test injects into a simulated device.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{PoisonError, RwLock};
use std::time::Duration;

use tokio::time::Instant;

use crate::frame::ExceptionCode;

/// Faults of one simulated device, changed by a test while servers use the device.
///
/// [`super::SimDevice`] consults them on every request, in this order: unresponsive (say
/// nothing), busy (exception 06), fail next (the exception, the request is not carried out),
/// then the request is carried out and its reply dropped, corrupted or delayed.
#[derive(Debug, Default)]
pub struct Faults {
    unresponsive: AtomicBool,
    delay_nanos: AtomicU64,
    fail_next: RwLock<Option<(ExceptionCode, u32)>>,
    corrupt_next: AtomicU32,
    drop_next: AtomicU32,
    acknowledge_actions: AtomicBool,
    busy_until: RwLock<Option<Instant>>,
}

impl Faults {
    /// Stops answering any request (`true`), or answers again (`false`).
    pub fn set_unresponsive(&self, unresponsive: bool) {
        self.unresponsive.store(unresponsive, Ordering::SeqCst);
    }

    /// Answers every request after `delay` (zero: at once).
    pub fn set_delay(&self, delay: Duration) {
        let nanos = u64::try_from(delay.as_nanos()).unwrap_or(u64::MAX);
        self.delay_nanos.store(nanos, Ordering::SeqCst);
    }

    /// Answers the next `count` requests with exception `code`, without carrying them out.
    pub fn fail_next(&self, code: ExceptionCode, count: u32) {
        *self
            .fail_next
            .write()
            .unwrap_or_else(PoisonError::into_inner) = (count > 0).then_some((code, count));
    }

    /// Carries out the next `count` requests but corrupts their replies.
    pub fn corrupt_next(&self, count: u32) {
        self.corrupt_next.store(count, Ordering::SeqCst);
    }

    /// Carries out the next `count` requests but sends no reply (the reply is lost).
    pub fn drop_next(&self, count: u32) {
        self.drop_next.store(count, Ordering::SeqCst);
    }

    /// Answers a write that starts an action with exception 05 (acknowledge: accepted, in
    /// progress) instead of the normal echo; the action still runs.
    pub fn acknowledge_actions(&self, acknowledge: bool) {
        self.acknowledge_actions
            .store(acknowledge, Ordering::SeqCst);
    }

    /// Answers exception 06 (server device busy) to every request for `duration` from now.
    pub fn busy_for(&self, duration: Duration) {
        *self
            .busy_until
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Some(Instant::now() + duration);
    }

    pub(crate) fn is_unresponsive(&self) -> bool {
        self.unresponsive.load(Ordering::SeqCst)
    }

    pub(crate) fn delay(&self) -> Duration {
        Duration::from_nanos(self.delay_nanos.load(Ordering::SeqCst))
    }

    pub(crate) fn acknowledges_actions(&self) -> bool {
        self.acknowledge_actions.load(Ordering::SeqCst)
    }

    pub(crate) fn is_busy(&self, now: Instant) -> bool {
        self.busy_until
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some_and(|until| now < until)
    }

    /// The exception to answer instead of carrying out this request, counting it down.
    pub(crate) fn take_failure(&self) -> Option<ExceptionCode> {
        let mut slot = self
            .fail_next
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        let (code, count) = (*slot)?;
        *slot = (count > 1).then_some((code, count - 1));
        Some(code)
    }

    pub(crate) fn take_drop(&self) -> bool {
        take(&self.drop_next)
    }

    pub(crate) fn take_corruption(&self) -> bool {
        take(&self.corrupt_next)
    }
}

/// Counts one down if any are left; whether there was one.
fn take(counter: &AtomicU32) -> bool {
    counter
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
}

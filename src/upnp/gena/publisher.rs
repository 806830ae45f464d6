//! The sans-IO eventing core: the services that publish events, their subscriptions, and which
//! NOTIFY to send next. Takes `now` as an argument and never reads the clock; inputs come in
//! through `handle_*`, `register` and `publish`, outputs go out through [`Publisher::poll_transmit`]
//! and [`Publisher::poll_timeout`] (the quinn-proto shape).

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;

use super::error::GenaError;
use super::headers::{CallbackUrl, GenaRequest, RequestedTimeout, Sid};
use super::limits::GenaLimits;
use super::moderation::{VariableState, Verdict};
use super::propertyset::PropertySet;
use super::service::{EventedVariable, ServiceKey, is_variable_name};
use super::subscription::Subscription;
use crate::upnp::net::ServedInterface;

/// What an accepted SUBSCRIBE or UNSUBSCRIBE did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Accepted {
    /// A new subscription, granted for `timeout`.
    Subscribed { sid: Sid, timeout: Duration },
    /// A renewal, now lasting `timeout` from the request.
    Renewed { sid: Sid, timeout: Duration },
    /// A cancelled subscription.
    Unsubscribed,
}

/// One NOTIFY to send: deliver it, then report with [`Publisher::handle_delivery_result`].
#[derive(Debug, Clone)]
pub(crate) struct Notify {
    /// Identifies this delivery in the result.
    pub(crate) id: u64,
    /// The subscription.
    pub(crate) sid: Sid,
    /// Its SEQ.
    pub(crate) seq: u32,
    /// Callback URLs to try in order.
    pub(crate) callbacks: Vec<CallbackUrl>,
    /// The propertyset.
    pub(crate) body: Bytes,
}

/// One registered service.
#[derive(Debug)]
struct Service {
    variables: Vec<VariableState>,
}

impl Service {
    fn snapshot(&self) -> PropertySet {
        let mut set = PropertySet::default();
        for v in &self.variables {
            set.set(v.name(), v.current());
        }
        set
    }
}

/// The eventing state of every registered service.
#[derive(Debug)]
pub(crate) struct Publisher {
    limits: GenaLimits,
    services: BTreeMap<ServiceKey, Service>,
    subscriptions: BTreeMap<Sid, Subscription>,
    next_delivery: u64,
}

impl Publisher {
    pub(crate) fn new(limits: GenaLimits) -> Self {
        Self {
            limits,
            services: BTreeMap::new(),
            subscriptions: BTreeMap::new(),
            next_delivery: 0,
        }
    }

    /// Registers (or re-registers) a service with its evented variables and their values.
    /// Variables missing from `initial` start empty; names that cannot be XML element names and
    /// repeated names are skipped. Existing subscriptions to the service are kept.
    pub(crate) fn register(
        &mut self,
        key: ServiceKey,
        variables: Vec<EventedVariable>,
        initial: Vec<(String, String)>,
    ) {
        let mut states: Vec<VariableState> = Vec::with_capacity(variables.len());
        for variable in variables {
            if !is_variable_name(&variable.name) || states.iter().any(|s| s.name() == variable.name)
            {
                tracing::warn!(service = %key.service_id, variable = %variable.name,
                    "evented variable skipped: not a usable or unique name");
                continue;
            }
            let value = initial
                .iter()
                .rev()
                .find(|(n, _)| *n == variable.name)
                .map(|(_, v)| v.clone())
                .unwrap_or_default();
            states.push(VariableState::new(variable, value));
        }
        self.services.insert(key, Service { variables: states });
    }

    /// Forgets a service and drops its subscriptions.
    pub(crate) fn unregister(&mut self, key: &ServiceKey) {
        self.services.remove(key);
        self.subscriptions.retain(|_, s| s.key != *key);
    }

    /// Publishes changed values at `now`. Each change goes through its variable's moderation;
    /// the changes evented now go to every live subscriber as one event.
    pub(crate) fn publish(&mut self, key: &ServiceKey, changes: &[(String, String)], now: Instant) {
        let Some(service) = self.services.get_mut(key) else {
            tracing::debug!(service = %key.service_id, "publish for an unregistered service");
            return;
        };
        let mut set = PropertySet::default();
        for (name, value) in changes {
            let Some(var) = service.variables.iter_mut().find(|v| v.name() == name) else {
                tracing::debug!(service = %key.service_id, variable = %name,
                    "publish for a variable that is not evented");
                continue;
            };
            if var.offer(value, now) == Verdict::Event {
                set.set(var.name(), var.current());
            }
        }
        self.fan_out(key, &set, now);
    }

    fn fan_out(&mut self, key: &ServiceKey, set: &PropertySet, now: Instant) {
        if set.is_empty() {
            return;
        }
        for sub in self.subscriptions.values_mut() {
            if sub.key == *key && !sub.is_expired(now) {
                sub.push(set);
            }
        }
    }

    /// Handles a parsed SUBSCRIBE or UNSUBSCRIBE for `key` that arrived on `arrived_on` at `now`.
    pub(crate) fn handle_request(
        &mut self,
        key: &ServiceKey,
        request: GenaRequest,
        arrived_on: &ServedInterface,
        now: Instant,
    ) -> Result<Accepted, GenaError> {
        match request {
            GenaRequest::Subscribe { callbacks, timeout } => {
                self.subscribe(key, callbacks, timeout, arrived_on, now)
            }
            GenaRequest::Renew { sid, timeout } => self.renew(key, sid, timeout, now),
            GenaRequest::Unsubscribe { sid } => self.unsubscribe(key, sid, now),
        }
    }

    fn subscribe(
        &mut self,
        key: &ServiceKey,
        callbacks: Vec<CallbackUrl>,
        timeout: RequestedTimeout,
        arrived_on: &ServedInterface,
        now: Instant,
    ) -> Result<Accepted, GenaError> {
        let service = self.services.get(key).ok_or(GenaError::NoSuchService)?;
        for url in &callbacks {
            url.check_reachable_from(arrived_on)
                .map_err(|why| GenaError::BadCallback {
                    url: super::error::shorten(url.as_str(), 80),
                    why,
                })?;
        }
        let initial = service.snapshot();
        self.handle_timeout(now);
        if self.subscriptions.len() >= self.limits.max_total {
            return Err(GenaError::TooMany("on this gateway"));
        }
        let on_service = self
            .subscriptions
            .values()
            .filter(|s| s.key == *key)
            .count();
        if on_service >= self.limits.max_per_service {
            return Err(GenaError::TooMany("on this service"));
        }
        let granted = self.limits.grant(timeout);
        let sid = loop {
            let sid = Sid::random();
            if !self.subscriptions.contains_key(&sid) {
                break sid;
            }
        };
        let sub = Subscription::new(
            key.clone(),
            callbacks,
            now + granted,
            initial,
            now + self.limits.initial_event_delay,
            self.limits.queue_len,
        );
        self.subscriptions.insert(sid, sub);
        Ok(Accepted::Subscribed {
            sid,
            timeout: granted,
        })
    }

    /// The live subscription `sid` on `key`; an expired one is removed on the way.
    fn live(
        &mut self,
        key: &ServiceKey,
        sid: Sid,
        now: Instant,
    ) -> Result<&mut Subscription, GenaError> {
        let found = self
            .subscriptions
            .get(&sid)
            .map(|s| (s.key == *key, s.is_expired(now)));
        match found {
            Some((true, false)) => self
                .subscriptions
                .get_mut(&sid)
                .ok_or_else(|| GenaError::UnknownSid(sid.to_string())),
            Some((true, true)) => {
                self.subscriptions.remove(&sid);
                Err(GenaError::UnknownSid(sid.to_string()))
            }
            _ => Err(GenaError::UnknownSid(sid.to_string())),
        }
    }

    fn renew(
        &mut self,
        key: &ServiceKey,
        sid: Sid,
        timeout: RequestedTimeout,
        now: Instant,
    ) -> Result<Accepted, GenaError> {
        let granted = self.limits.grant(timeout);
        let sub = self.live(key, sid, now)?;
        sub.expires_at = now + granted;
        Ok(Accepted::Renewed {
            sid,
            timeout: granted,
        })
    }

    fn unsubscribe(
        &mut self,
        key: &ServiceKey,
        sid: Sid,
        now: Instant,
    ) -> Result<Accepted, GenaError> {
        self.live(key, sid, now)?;
        self.subscriptions.remove(&sid);
        Ok(Accepted::Unsubscribed)
    }

    /// Advances timers to `now`: drops lapsed subscriptions and events the values `maximumRate`
    /// held whose period ended.
    pub(crate) fn handle_timeout(&mut self, now: Instant) {
        self.subscriptions.retain(|sid, s| {
            let live = !s.is_expired(now);
            if !live {
                tracing::debug!(%sid, "subscription lapsed without renewal");
            }
            live
        });
        let mut released = Vec::new();
        for (key, service) in &mut self.services {
            let mut set = PropertySet::default();
            for var in &mut service.variables {
                if let Some(value) = var.handle_timeout(now) {
                    set.set(var.name(), &value);
                }
            }
            if !set.is_empty() {
                released.push((key.clone(), set));
            }
        }
        for (key, set) in released {
            self.fan_out(&key, &set, now);
        }
    }

    /// The next NOTIFY to send at `now`, if any. At most one per subscription is in flight.
    pub(crate) fn poll_transmit(&mut self, now: Instant) -> Option<Notify> {
        let id = self.next_delivery;
        let (sid, sub, head) = self
            .subscriptions
            .iter_mut()
            .find_map(|(sid, sub)| sub.start(id, now).cloned().map(|head| (*sid, sub, head)))?;
        self.next_delivery += 1;
        Some(Notify {
            id,
            sid,
            seq: head.seq,
            callbacks: sub.callbacks.clone(),
            body: head.set.to_body(),
        })
    }

    /// Reports how delivery `id` to `sid` went. A failure is retried with backoff; after
    /// `delivery_attempts` the event is abandoned (its SEQ stays used, so the subscriber sees
    /// the gap), and after `dead_after` abandoned events in a row the subscriber is dropped.
    pub(crate) fn handle_delivery_result(
        &mut self,
        sid: Sid,
        id: u64,
        delivered: bool,
        now: Instant,
    ) {
        let Some(sub) = self.subscriptions.get_mut(&sid) else {
            return;
        };
        if sub.in_flight != Some(id) {
            return;
        }
        sub.in_flight = None;
        sub.not_before = now;
        if delivered {
            sub.head = None;
            sub.abandoned = 0;
            return;
        }
        let Some(head) = sub.head.as_mut() else {
            return;
        };
        head.failed += 1;
        if head.failed < self.limits.delivery_attempts.max(1) {
            sub.not_before = now + self.limits.backoff(head.failed);
            return;
        }
        tracing::debug!(%sid, seq = head.seq, "event abandoned after failed deliveries");
        sub.head = None;
        sub.abandoned += 1;
        if sub.abandoned >= self.limits.dead_after.max(1) {
            tracing::info!(%sid, "subscriber dropped: its callbacks stopped answering");
            self.subscriptions.remove(&sid);
        }
    }

    /// When [`Self::handle_timeout`] or [`Self::poll_transmit`] next has something to do.
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        let subs = self
            .subscriptions
            .values()
            .flat_map(|s| [Some(s.expires_at), s.ready_at()]);
        let vars = self
            .services
            .values()
            .flat_map(|s| s.variables.iter().map(VariableState::poll_timeout));
        subs.chain(vars).flatten().min()
    }

    /// Whether no NOTIFY is waiting or in flight.
    pub(crate) fn is_idle(&self) -> bool {
        self.subscriptions
            .values()
            .all(|s| s.in_flight.is_none() && !s.has_work())
    }
}

#[cfg(test)]
#[path = "publisher_tests.rs"]
mod tests;

//! The driver task of one broker connection: owns the event loop, serves commands from the
//! handles, routes messages to subscriptions and answers to requests, and reconnects.
//!
//! rumqttc's `EventLoop::poll` is not cancel-safe (a packet read or a request taken off its
//! queue can be lost if the future is dropped half-way), so the task never drops it: it pins
//! one poll future and `select!`s it against commands and shutdown until it completes, and
//! only then starts the next. Commands need no access to the event loop: they queue packets
//! through the rumqttc client, which never blocks.
//!
//! The `select!` is biased: shutdown first; then dropped subscriptions before new commands (so
//! a device link attached again right after its old link was dropped unsubscribes and
//! subscribes in that order, and gets the retained messages); then the event loop before new
//! commands, so a burst of commands cannot fill rumqttc's request queue while the event loop
//! waits to drain it.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::{Arc, PoisonError};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use iotmc_adapter::LinkError;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::{Instant, sleep_until, timeout};

use super::backoff::Backoff;
use super::session::{Client, Event, EventLoop, hex};
use super::{Command, ConnectionState, FilterStatus, Release, Shared, Subscriber};
use crate::frame::{Message, Outgoing, QoS};
use crate::topic;

/// Filters per SUBSCRIBE packet when resubscribing after a reconnect.
const SUBSCRIBE_BATCH: usize = 32;
/// How long a clean disconnect may take at shutdown.
const DISCONNECT_GRACE: Duration = Duration::from_secs(2);

/// Where the connection is.
#[derive(Debug)]
enum Phase {
    /// Attempting to connect, or resubscribing after the CONNACK.
    Connecting,
    /// CONNACK received at `since`: publishing is possible.
    Online { since: Instant },
    /// The last attempt failed, or the connection dropped; waiting for the next attempt.
    Down { reason: String },
}

/// One filter the broker has been asked for, shared by every subscription to it.
#[derive(Debug)]
struct Filter {
    subscribers: Vec<Subscriber>,
    status: watch::Sender<FilterStatus>,
}

/// A publish waiting for its packet id, then for its acknowledgement.
#[derive(Debug)]
struct PublishWaiter {
    topic: String,
    qos: QoS,
    done: oneshot::Sender<Result<(), LinkError>>,
}

/// A SUBSCRIBE waiting for its packet id, then for its SUBACK.
#[derive(Debug)]
struct SubscribeSent {
    filters: Vec<String>,
    /// Part of the resubscription after a CONNACK: `Connected` waits for it.
    initial: bool,
}

enum Step {
    Event(Result<Event, String>),
    Stop,
}

/// The state of the driver task.
#[derive(Debug)]
pub(super) struct Driver {
    pub(super) name: String,
    pub(super) client: Client,
    /// `<reply prefix>/#` on MQTT 5 connections.
    pub(super) reply_filter: Option<String>,
    pub(super) state: watch::Sender<ConnectionState>,
    pub(super) shared: Arc<Shared>,
    phase: Phase,
    backoff: Backoff,
    filters: BTreeMap<String, Filter>,
    /// Publishes queued in rumqttc, in order, not yet written.
    queued: VecDeque<PublishWaiter>,
    /// A publish rumqttc holds back until `pkid` is acknowledged (packet id collision).
    held: Option<(u16, PublishWaiter)>,
    /// Publishes written, waiting for PUBACK / PUBCOMP.
    inflight: HashMap<u16, PublishWaiter>,
    /// SUBSCRIBEs queued in rumqttc, in order, not yet written.
    subscribes: VecDeque<SubscribeSent>,
    /// SUBSCRIBEs written, waiting for SUBACK.
    subacks: HashMap<u16, SubscribeSent>,
    /// SUBACKs of the resubscription still missing before the connection counts as up.
    resubscribing: usize,
    /// Requests waiting for their answer, by correlation data.
    requests: HashMap<Bytes, oneshot::Sender<Message>>,
}

impl Driver {
    pub(super) fn new(
        name: String,
        client: Client,
        reply_filter: Option<String>,
        state: watch::Sender<ConnectionState>,
        shared: Arc<Shared>,
    ) -> Self {
        Self {
            name,
            client,
            reply_filter,
            state,
            shared,
            phase: Phase::Connecting,
            backoff: Backoff::default(),
            filters: BTreeMap::new(),
            queued: VecDeque::new(),
            held: None,
            inflight: HashMap::new(),
            subscribes: VecDeque::new(),
            subacks: HashMap::new(),
            resubscribing: 0,
            requests: HashMap::new(),
        }
    }

    /// Runs until shutdown or until every handle is gone.
    pub(super) async fn run(
        mut self,
        mut events: EventLoop,
        mut commands: mpsc::Receiver<Command>,
        mut releases: mpsc::UnboundedReceiver<Release>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        tracing::debug!("connecting");
        loop {
            let step = {
                let poll = events.poll();
                tokio::pin!(poll);
                loop {
                    tokio::select! {
                        biased;
                        () = stopped(&mut shutdown) => break Step::Stop,
                        Some(release) = releases.recv() => self.release(release),
                        event = &mut poll => break Step::Event(event),
                        command = commands.recv() => match command {
                            Some(command) => self.command(command),
                            None => break Step::Stop,
                        },
                    }
                }
            };
            match step {
                Step::Stop => break,
                Step::Event(Ok(event)) => self.event(event),
                Step::Event(Err(reason)) => {
                    let delay = self.dropped(reason);
                    let until = Instant::now() + delay;
                    let stop = loop {
                        tokio::select! {
                            biased;
                            () = stopped(&mut shutdown) => break true,
                            Some(release) = releases.recv() => self.release(release),
                            command = commands.recv() => match command {
                                Some(command) => self.command(command),
                                None => break true,
                            },
                            () = sleep_until(until) => break false,
                        }
                    };
                    if stop {
                        break;
                    }
                    self.connecting();
                }
            }
        }
        self.stop(&mut events).await;
    }

    fn online(&self) -> bool {
        matches!(self.phase, Phase::Online { .. })
    }

    fn set_state(&self, state: ConnectionState) {
        self.state.send_if_modified(|current| {
            let changed = *current != state;
            *current = state;
            changed
        });
    }

    /// A new attempt starts (after the backoff).
    fn connecting(&mut self) {
        tracing::debug!("connecting");
        self.phase = Phase::Connecting;
        self.set_state(ConnectionState::Connecting);
        for filter in self.filters.values() {
            filter.status.send_replace(FilterStatus::Pending);
        }
    }

    /// CONNACK: subscribe everything again; `Connected` once every SUBACK is in.
    fn connected(&mut self) {
        tracing::info!("connected");
        self.phase = Phase::Online {
            since: Instant::now(),
        };
        self.resubscribing = 0;
        let mut all: Vec<String> = self.filters.keys().cloned().collect();
        all.extend(self.reply_filter.clone());
        for batch in all.chunks(SUBSCRIBE_BATCH) {
            if self.send_subscribe(batch.to_vec(), true) {
                self.resubscribing += 1;
            }
        }
        if self.resubscribing == 0 {
            self.set_state(ConnectionState::Connected);
        }
    }

    /// Queues a SUBSCRIBE; on failure marks its filters down. Returns whether it was queued.
    fn send_subscribe(&mut self, filters: Vec<String>, initial: bool) -> bool {
        for filter in &filters {
            if let Some(entry) = self.filters.get(filter) {
                entry.status.send_replace(FilterStatus::Pending);
            }
        }
        match self.client.subscribe(&filters) {
            Ok(()) => {
                self.subscribes
                    .push_back(SubscribeSent { filters, initial });
                true
            }
            Err(e) => {
                tracing::warn!(error = %e, ?filters, "could not subscribe");
                for filter in &filters {
                    if let Some(entry) = self.filters.get(filter) {
                        entry.status.send_replace(FilterStatus::Down(format!(
                            "the SUBSCRIBE could not be queued: {e}"
                        )));
                    }
                }
                false
            }
        }
    }

    /// The connection failed or dropped: fail what waited on it, and back off.
    fn dropped(&mut self, reason: String) -> Duration {
        let lasted = match self.phase {
            Phase::Online { since } => Some(since.elapsed()),
            _ => None,
        };
        if lasted.is_some() {
            tracing::warn!(%reason, "connection dropped");
            let mut drops = self
                .shared
                .drops
                .write()
                .unwrap_or_else(PoisonError::into_inner);
            drops.count += 1;
            drops.last = Some(SystemTime::now());
        } else {
            tracing::warn!(%reason, "could not connect");
        }
        let name = self.name.clone();
        self.fail_publishes(|topic| {
            LinkError::Transport(format!(
                "publishing to `{topic}`: the connection to broker `{name}` dropped before the \
                 broker acknowledged the message ({reason}); it may or may not have arrived",
            ))
        });
        self.subscribes.clear();
        self.subacks.clear();
        self.resubscribing = 0;
        for filter in self.filters.values() {
            filter
                .status
                .send_replace(FilterStatus::Down(reason.clone()));
        }
        let retry_in = self.backoff.failed(lasted);
        self.set_state(ConnectionState::Down {
            reason: reason.clone(),
            retry_in,
        });
        self.phase = Phase::Down { reason };
        retry_in
    }

    /// Fails every publish waiting for the broker (queued, held or in flight) with `error` for
    /// its topic.
    fn fail_publishes(&mut self, error: impl Fn(&str) -> LinkError) {
        let waiters = self
            .queued
            .drain(..)
            .chain(self.held.take().map(|(_, w)| w))
            .chain(self.inflight.drain().map(|(_, w)| w));
        for waiter in waiters {
            let _ = waiter.done.send(Err(error(&waiter.topic)));
        }
    }

    /// Stops: disconnects cleanly if connected, fails every waiter, closes every subscription.
    async fn stop(&mut self, events: &mut EventLoop) {
        if self.online() && self.client.disconnect().is_ok() {
            let _ = timeout(DISCONNECT_GRACE, async {
                while let Ok(event) = events.poll().await {
                    if matches!(event, Event::Disconnected) {
                        break;
                    }
                }
            })
            .await;
        }
        let name = self.name.clone();
        self.fail_publishes(|topic| {
            LinkError::Transport(format!(
                "publishing to `{topic}`: the connection to broker `{name}` was shut down"
            ))
        });
        self.requests.clear();
        self.filters.clear();
        self.set_state(ConnectionState::Closed);
        tracing::info!("stopped");
    }

    fn command(&mut self, command: Command) {
        match command {
            Command::Subscribe {
                filter,
                subscriber,
                reply,
            } => self.subscribe(filter, subscriber, reply),
            Command::Publish { message, done } => {
                self.publish(message, done);
            }
            Command::Request {
                message,
                correlation,
                answer,
                done,
            } => {
                if self.publish(message, done) {
                    self.requests.retain(|_, waiter| !waiter.is_closed());
                    self.requests.insert(correlation, answer);
                }
            }
        }
    }

    fn subscribe(
        &mut self,
        filter: String,
        subscriber: Subscriber,
        reply: oneshot::Sender<watch::Receiver<FilterStatus>>,
    ) {
        let initial = match &self.phase {
            Phase::Down { reason } => FilterStatus::Down(reason.clone()),
            _ => FilterStatus::Pending,
        };
        let entry = self
            .filters
            .entry(filter.clone())
            .or_insert_with(|| Filter {
                subscribers: Vec::new(),
                status: watch::Sender::new(initial),
            });
        let id = subscriber.id;
        entry.subscribers.push(subscriber);
        let status = entry.status.subscribe();
        // Subscribe even if another subscription shares the filter: the broker sends the
        // retained messages again, which the new subscriber needs (the others get them twice).
        // While connecting, the resubscription after the CONNACK covers it.
        if self.online() {
            self.send_subscribe(vec![filter.clone()], false);
        }
        if reply.send(status).is_err() {
            // The caller gave up waiting: no Subscription exists to release it later.
            self.release(Release { filter, id });
        }
    }

    fn release(&mut self, release: Release) {
        let Some(entry) = self.filters.get_mut(&release.filter) else {
            return;
        };
        entry.subscribers.retain(|s| s.id != release.id);
        if entry.subscribers.is_empty() {
            self.filters.remove(&release.filter);
            if self.online()
                && let Err(e) = self.client.unsubscribe(&release.filter)
            {
                tracing::warn!(error = %e, filter = %release.filter, "could not unsubscribe");
            }
        }
    }

    /// Queues a publish; fails it at once while the connection is not up. Returns whether it
    /// was queued.
    fn publish(&mut self, message: Outgoing, done: oneshot::Sender<Result<(), LinkError>>) -> bool {
        let topic = message.topic.clone();
        if !self.online() {
            let _ = done.send(Err(LinkError::Transport(format!(
                "publishing to `{topic}`: the connection to broker `{}` is {}",
                self.name,
                *self.state.borrow()
            ))));
            return false;
        }
        match self.client.publish(&message) {
            Ok(()) => {
                self.queued.push_back(PublishWaiter {
                    topic,
                    qos: message.qos,
                    done,
                });
                true
            }
            Err(e) => {
                let _ = done.send(Err(LinkError::Transport(format!(
                    "publishing to `{topic}` on broker `{}`: {e}",
                    self.name
                ))));
                false
            }
        }
    }

    fn event(&mut self, event: Event) {
        match event {
            Event::ConnAck => self.connected(),
            Event::Message(message) => self.route(message),
            Event::PublishSent(pkid) => {
                let waiter = match self.held.take() {
                    Some((held, waiter)) if held == pkid => Some(waiter),
                    other => {
                        self.held = other;
                        self.queued.pop_front()
                    }
                };
                let Some(waiter) = waiter else {
                    tracing::debug!(pkid, "a publish went out that nobody waits for");
                    return;
                };
                if waiter.qos == QoS::AtMostOnce {
                    let _ = waiter.done.send(Ok(()));
                } else {
                    self.inflight.insert(pkid, waiter);
                }
            }
            Event::PublishHeld(pkid) => {
                if let Some(waiter) = self.queued.pop_front() {
                    self.held = Some((pkid, waiter));
                }
            }
            Event::PubAck { pkid, refused } => self.acknowledged(pkid, refused),
            Event::PubRec {
                pkid,
                refused: Some(code),
            } => self.acknowledged(pkid, Some(code)),
            Event::PubComp { pkid } => self.acknowledged(pkid, None),
            Event::SubscribeSent(pkid) => {
                if let Some(sent) = self.subscribes.pop_front() {
                    self.subacks.insert(pkid, sent);
                }
            }
            Event::SubAck { pkid, results } => self.suback(pkid, &results),
            Event::PubRec { refused: None, .. } | Event::Disconnected | Event::Other => {}
        }
    }

    /// The broker acknowledged (or refused) the publish in flight with `pkid`.
    fn acknowledged(&mut self, pkid: u16, refused: Option<String>) {
        let Some(waiter) = self.inflight.remove(&pkid) else {
            return;
        };
        let result = match refused {
            None => Ok(()),
            Some(code) => Err(LinkError::DeviceRefused {
                code,
                detail: Some(format!(
                    "broker `{}` refused the message to `{}`",
                    self.name, waiter.topic
                )),
            }),
        };
        let _ = waiter.done.send(result);
    }

    fn suback(&mut self, pkid: u16, results: &[Result<(), String>]) {
        let Some(sent) = self.subacks.remove(&pkid) else {
            tracing::debug!(pkid, "a SUBACK nobody waits for");
            return;
        };
        for (i, filter) in sent.filters.iter().enumerate() {
            let result = results
                .get(i)
                .cloned()
                .unwrap_or_else(|| Err("the SUBACK has no reason code for it".to_owned()));
            if let Err(code) = &result {
                tracing::warn!(%filter, %code, "the broker refused a subscription");
            }
            if let Some(entry) = self.filters.get(filter) {
                entry.status.send_replace(match result {
                    Ok(()) => FilterStatus::Acked,
                    Err(code) => FilterStatus::Refused(code),
                });
            }
        }
        if sent.initial && self.resubscribing > 0 {
            self.resubscribing -= 1;
            if self.resubscribing == 0 && self.online() {
                self.set_state(ConnectionState::Connected);
            }
        }
    }

    /// Hands a message to every subscription whose filter matches, and an answer to its
    /// request.
    fn route(&mut self, message: Message) {
        if let Some(reply) = &self.reply_filter
            && topic::matches(reply, &message.topic)
        {
            self.answer(&message);
        }
        for (filter, entry) in &mut self.filters {
            if topic::matches(filter, &message.topic) {
                entry
                    .subscribers
                    .retain_mut(|s| deliver(s, filter, &message));
            }
        }
    }

    fn answer(&mut self, message: &Message) {
        let Some(correlation) = &message.properties.correlation_data else {
            tracing::debug!(topic = %message.topic, "dropped an answer without correlation data");
            return;
        };
        let delivered = self
            .requests
            .remove(correlation)
            .is_some_and(|waiter| waiter.send(message.clone()).is_ok());
        if !delivered {
            tracing::debug!(
                topic = %message.topic,
                correlation = %hex(correlation),
                "dropped an answer nobody waits for (late, or not ours)"
            );
        }
    }
}

/// Gives a subscriber a message; counts it dropped when its queue is full. Returns whether the
/// subscriber is still there.
fn deliver(subscriber: &mut Subscriber, filter: &str, message: &Message) -> bool {
    match subscriber.messages.try_send(message.clone()) {
        Ok(()) => {
            if subscriber.in_burst {
                subscriber.in_burst = false;
                tracing::info!(
                    %filter,
                    dropped = subscriber.dropped.load(Ordering::Relaxed),
                    "a subscription's queue has room again"
                );
            }
            true
        }
        Err(mpsc::error::TrySendError::Full(_)) => {
            subscriber.dropped.fetch_add(1, Ordering::Relaxed);
            if !subscriber.in_burst {
                subscriber.in_burst = true;
                tracing::warn!(
                    %filter,
                    topic = %message.topic,
                    "a subscription's queue is full: dropping messages until it is read"
                );
            }
            true
        }
        Err(mpsc::error::TrySendError::Closed(_)) => false,
    }
}

/// Resolves when shutdown was asked for or every handle is gone.
async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}

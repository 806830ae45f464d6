//! The one task that owns the eventing core (rumqttc's shape): it `select!`s over a command
//! channel, the core's next timer and the completions of NOTIFY deliveries, which run as their
//! own tasks, one in flight per subscriber, so each subscriber gets its events in order.
//! Callers hold a cloneable [`Eventing`] handle.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use http_body_util::Full;
use hyper::{HeaderMap, Method, Response};
use tokio::sync::{mpsc, oneshot};
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;

use super::delivery;
use super::error::GenaError;
use super::headers::{GenaRequest, Sid, parse_request};
use super::limits::GenaLimits;
use super::publisher::{Accepted, Publisher};
use super::response;
use super::service::{EventedVariable, ServiceKey};
use crate::upnp::net::ServedInterface;

/// What the handle asks of the driver.
#[derive(Debug)]
enum Command {
    Register {
        key: ServiceKey,
        variables: Vec<EventedVariable>,
        initial: Vec<(String, String)>,
    },
    Unregister(ServiceKey),
    Publish {
        key: ServiceKey,
        changes: Vec<(String, String)>,
    },
    Request {
        key: ServiceKey,
        request: GenaRequest,
        arrived_on: ServedInterface,
        reply: oneshot::Sender<Result<Accepted, GenaError>>,
    },
    Flush(oneshot::Sender<()>),
    Shutdown,
}

/// A cloneable handle to the eventing task.
///
/// Commands go over an unbounded channel: `register` and `publish` are synchronous and come
/// from the gateway's own adapters, and dropping a state change would leave subscribers wrong
/// for good. The driver does no IO itself, so it drains the channel as fast as it is filled;
/// what control points can make it do is bounded by the HTTP layer's connection limits and by
/// the subscription caps.
#[derive(Debug, Clone)]
pub struct Eventing {
    commands: mpsc::UnboundedSender<Command>,
    task: Arc<tokio::sync::Mutex<Option<JoinHandle<()>>>>,
}

impl Eventing {
    /// Spawns the eventing task on the current Tokio runtime (panics outside one, like
    /// `tokio::spawn`).
    pub fn start(limits: GenaLimits) -> Self {
        let (commands, receiver) = mpsc::unbounded_channel();
        let task = tokio::spawn(run(limits, receiver));
        Self {
            commands,
            task: Arc::new(tokio::sync::Mutex::new(Some(task))),
        }
    }

    /// Registers an evented service with its variables and their current values, or replaces
    /// them (subscriptions are kept). Variables missing from `initial` start empty.
    pub fn register(
        &self,
        key: ServiceKey,
        variables: Vec<EventedVariable>,
        initial: Vec<(String, String)>,
    ) {
        self.send(Command::Register {
            key,
            variables,
            initial,
        });
    }

    /// Forgets a service (its device went away) and drops its subscriptions.
    pub fn unregister(&self, key: &ServiceKey) {
        self.send(Command::Unregister(key.clone()));
    }

    /// Publishes changed values (plain text; escaped for the NOTIFY body here). Changes to
    /// variables that are not evented are ignored; moderation decides what is evented when.
    pub fn publish(&self, key: &ServiceKey, changes: Vec<(String, String)>) {
        self.send(Command::Publish {
            key: key.clone(),
            changes,
        });
    }

    /// Handles a SUBSCRIBE or UNSUBSCRIBE request for `key` that arrived on `arrived_on`, and
    /// returns the complete HTTP response: 200 with DATE, SERVER, SID, CONTENT-LENGTH: 0 and
    /// TIMEOUT: Second-N (a bare 200 for UNSUBSCRIBE), or 400/405/412/503 with a plain-text
    /// reason. A new subscription to an unregistered `key` is 412 "no such event URL"; a
    /// renewal or UNSUBSCRIBE there is 412 for the unknown SID. The initial event is held for
    /// [`GenaLimits::initial_event_delay`] so it follows this response on the wire.
    pub async fn handle_request(
        &self,
        key: &ServiceKey,
        method: &Method,
        headers: &HeaderMap,
        arrived_on: &ServedInterface,
        server: &str,
    ) -> Response<Full<Bytes>> {
        let result = match parse_request(method, headers) {
            Ok(request) => self.request(key, request, arrived_on).await,
            Err(e) => Err(e),
        };
        match &result {
            Ok(accepted) => tracing::debug!(service = %key.service_id, ?accepted, "GENA request"),
            Err(error) => {
                tracing::debug!(service = %key.service_id, %error, "GENA request refused");
            }
        }
        response::build(&result, server, SystemTime::now())
    }

    async fn request(
        &self,
        key: &ServiceKey,
        request: GenaRequest,
        arrived_on: &ServedInterface,
    ) -> Result<Accepted, GenaError> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::Request {
            key: key.clone(),
            request,
            arrived_on: arrived_on.clone(),
            reply,
        });
        answer.await.unwrap_or(Err(GenaError::ShuttingDown))
    }

    /// Waits until no NOTIFY is queued or in flight (values held by `maximumRate` are not
    /// queued yet). With a subscriber that does not answer this lasts until its retries run out.
    pub async fn flush(&self) {
        let (reply, done) = oneshot::channel();
        self.send(Command::Flush(reply));
        // An error means the driver is gone, so nothing is in flight either.
        let _ = done.await;
    }

    /// Stops the eventing task and waits for it. Queued and in-flight NOTIFYs are dropped; call
    /// [`Self::flush`] first to deliver them. Other handles see 503 afterwards.
    pub async fn shutdown(self) {
        self.send(Command::Shutdown);
        let task = self.task.lock().await.take();
        if let Some(task) = task
            && let Err(error) = task.await
        {
            tracing::error!(%error, "eventing task failed");
        }
    }

    fn send(&self, command: Command) {
        if self.commands.send(command).is_err() {
            tracing::debug!("eventing command after shutdown ignored");
        }
    }
}

async fn run(limits: GenaLimits, mut commands: mpsc::UnboundedReceiver<Command>) {
    let delivery_timeout = limits.delivery_timeout;
    let mut publisher = Publisher::new(limits);
    let mut deliveries = JoinSet::new();
    let mut in_flight: HashMap<tokio::task::Id, (Sid, u64)> = HashMap::new();
    let mut flushes: Vec<oneshot::Sender<()>> = Vec::new();
    loop {
        let now = Instant::now();
        publisher.handle_timeout(now);
        while let Some(notify) = publisher.poll_transmit(now) {
            let (sid, id) = (notify.sid, notify.id);
            let task = deliveries.spawn(async move {
                let delivered = delivery::deliver(&notify, delivery_timeout).await;
                (notify.sid, notify.id, delivered)
            });
            in_flight.insert(task.id(), (sid, id));
        }
        if !flushes.is_empty() && publisher.is_idle() {
            for flush in flushes.drain(..) {
                let _ = flush.send(());
            }
        }
        let deadline = publisher.poll_timeout();
        tokio::select! {
            command = commands.recv() => match command {
                None | Some(Command::Shutdown) => break,
                Some(command) => apply(&mut publisher, command, &mut flushes, Instant::now()),
            },
            Some(joined) = deliveries.join_next_with_id(), if !deliveries.is_empty() => {
                let (task, result) = match joined {
                    Ok((task, (_, _, delivered))) => (task, delivered),
                    Err(error) => {
                        tracing::error!(%error, "NOTIFY delivery task failed");
                        (error.id(), false)
                    }
                };
                if let Some((sid, id)) = in_flight.remove(&task) {
                    publisher.handle_delivery_result(sid, id, result, Instant::now());
                }
            },
            () = sleep_until(deadline), if deadline.is_some() => {}
        }
    }
    deliveries.shutdown().await;
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

fn apply(
    publisher: &mut Publisher,
    command: Command,
    flushes: &mut Vec<oneshot::Sender<()>>,
    now: Instant,
) {
    match command {
        Command::Register {
            key,
            variables,
            initial,
        } => publisher.register(key, variables, initial),
        Command::Unregister(key) => publisher.unregister(&key),
        Command::Publish { key, changes } => publisher.publish(&key, &changes, now),
        Command::Request {
            key,
            request,
            arrived_on,
            reply,
        } => {
            let _ = reply.send(publisher.handle_request(&key, request, &arrived_on, now));
        }
        Command::Flush(reply) => flushes.push(reply),
        Command::Shutdown => {}
    }
}

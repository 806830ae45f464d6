//! One task per broker connection, shared by every device on that broker (DESIGN.md §3; shaped
//! like rumqttc's own event loop): it owns the rumqttc client and event loop of the connection's
//! protocol version, `select!`s over the event loop, a bounded command channel and shutdown, and
//! gives callers a cloneable [`BrokerHandle`].
//!
//! What it guarantees:
//! - **Reconnect with backoff** from 0.5 s to 30 s (doubling, reset after a connection that
//!   lasted); the state is watchable ([`BrokerHandle::state`]) and says why it is down.
//! - **Resubscribe after reconnect**: every live [`Subscription`]'s filter is subscribed again
//!   on every new connection (clean start), so retained messages are delivered again.
//! - **Acknowledged publishes**: [`BrokerHandle::publish`] returns when the broker acknowledged
//!   a QoS 1 message (PUBACK), and fails at once, with the reason, while the connection is down.
//! - **MQTT 5 request/response**: [`BrokerHandle::request`] sets a response topic under the
//!   connection's reply prefix and random correlation data, and waits for the matching answer
//!   or the timeout; answers nobody waits for (late ones) are dropped with a debug log.
//! - **Bounded**: an incoming packet above the configured maximum size is refused by rumqttc's
//!   codec, which drops the connection; the driver reconnects, and the state's reason names
//!   the size (MQTT 5 brokers should not send such packets: the limit is announced in CONNECT;
//!   rumqttd ignores it). Each subscription queue holds [`SUBSCRIPTION_QUEUE`] messages and
//!   counts what it had to drop.
//!
//! Publishing is possible from the CONNACK on; [`ConnectionState::Connected`] comes once the
//! resubscription is acknowledged too. The task layout is in `task.rs`, the rumqttc v4/v5
//! session behind one type in `session.rs`, failure reasons in `reason.rs`, the reconnect
//! policy in `backoff.rs`.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::{Instant, timeout_at};
use tracing::Instrument;

use crate::frame::{Message, Outgoing};
use crate::settings::{BrokerSettings, MqttVersion};
use crate::topic;
use iotmc_adapter::LinkError;

mod backoff;
mod reason;
mod session;
mod task;

/// Commands a broker's handles may queue before `subscribe`/`publish`/`request` wait.
const COMMAND_QUEUE: usize = 256;
/// Messages a subscription holds before it drops new ones (and counts them).
pub const SUBSCRIPTION_QUEUE: usize = 256;
/// Bytes a PUBLISH needs besides its topic, payload and properties (fixed header, lengths,
/// packet id), rounded up.
const PUBLISH_OVERHEAD: usize = 16;

/// Ids of subscriptions, unique in the process.
static NEXT_SUBSCRIPTION: AtomicU64 = AtomicU64::new(1);

/// The state of a broker connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectionState {
    /// Connecting (first attempt, or after a failure).
    Connecting,
    /// Connected: CONNACK received and every subscription re-established.
    Connected,
    /// Down since the last attempt failed; retrying after the backoff.
    Down {
        /// Why, in words (e.g. `connection refused`, `bad user name or password`,
        /// `TLS handshake failed: ...`).
        reason: String,
        /// The next attempt comes after this long.
        retry_in: Duration,
    },
    /// The handle was shut down.
    Closed,
}

impl fmt::Display for ConnectionState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Connecting => f.write_str("connecting"),
            Self::Connected => f.write_str("connected"),
            Self::Down { reason, retry_in } => {
                write!(f, "down ({reason}); retrying in {retry_in:?}")
            }
            Self::Closed => f.write_str("closed"),
        }
    }
}

/// A request to publish and wait for the answer (MQTT 5 request/response).
#[derive(Debug, Clone)]
pub struct Request {
    /// The message to publish; the driver sets its response topic and correlation data.
    pub message: Outgoing,
    /// How long to wait for the answer.
    pub timeout: Duration,
}

/// A cloneable handle on one broker connection's driver task. The task stops when the last
/// handle is dropped (or [`BrokerHandle::shutdown`] is called).
#[derive(Clone)]
pub struct BrokerHandle {
    name: String,
    version: MqttVersion,
    max_packet_size: usize,
    reply_prefix: String,
    commands: mpsc::Sender<Command>,
    releases: mpsc::UnboundedSender<Release>,
    shutdown: Arc<watch::Sender<bool>>,
    state: watch::Receiver<ConnectionState>,
    shared: Arc<Shared>,
}

impl fmt::Debug for BrokerHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BrokerHandle")
            .field("name", &self.name)
            .field("version", &self.version)
            .finish()
    }
}

impl BrokerHandle {
    /// Starts the driver task of a broker connection (inside a tokio runtime). It starts
    /// connecting at once.
    pub fn spawn(settings: BrokerSettings) -> Self {
        let (client, events) = session::open(&settings);
        let (commands, command_queue) = mpsc::channel(COMMAND_QUEUE);
        let (releases, release_queue) = mpsc::unbounded_channel();
        let (shutdown, shutdown_rx) = watch::channel(false);
        let (state_tx, state) = watch::channel(ConnectionState::Connecting);
        let shared = Arc::new(Shared::default());
        let reply_prefix = settings.reply_prefix.trim_end_matches('/').to_owned();
        let reply_filter = match settings.version {
            MqttVersion::V5 => Some(format!("{reply_prefix}/#")),
            MqttVersion::V311 => None,
        };
        let span = tracing::info_span!(
            "mqtt_broker",
            broker = %settings.name,
            endpoint = %settings.endpoint(),
            version = %settings.version,
            client_id = %settings.client_id,
        );
        let driver = task::Driver::new(
            settings.name.clone(),
            client,
            reply_filter,
            state_tx,
            Arc::clone(&shared),
        );
        tokio::spawn(
            driver
                .run(events, command_queue, release_queue, shutdown_rx)
                .instrument(span),
        );
        Self {
            name: settings.name,
            version: settings.version,
            max_packet_size: settings.max_packet_size,
            reply_prefix,
            commands,
            releases,
            shutdown: Arc::new(shutdown),
            state,
            shared,
        }
    }

    /// The broker's name in the gateway config.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The protocol version of the connection.
    pub fn version(&self) -> MqttVersion {
        self.version
    }

    /// The connection state, watchable.
    pub fn state(&self) -> watch::Receiver<ConnectionState> {
        self.state.clone()
    }

    /// Subscribes to `filter` (QoS 1). Returns at once; the subscription is established on the
    /// current connection and re-established on every reconnect. Several subscriptions may share
    /// a filter; the broker is unsubscribed when the last of them is dropped. Refuses an invalid
    /// filter.
    ///
    /// A new subscription to a filter others already hold is sent to the broker again, so it
    /// gets the retained messages; the others then receive them a second time.
    pub async fn subscribe(&self, filter: &str) -> Result<Subscription, LinkError> {
        let operation = || format!("subscribing to `{filter}` on broker `{}`", self.name);
        topic::check_filter(filter).map_err(|e| LinkError::Unsupported {
            operation: operation(),
            reason: e.to_string(),
        })?;
        let (messages_tx, messages) = mpsc::channel(SUBSCRIPTION_QUEUE);
        let dropped = Arc::new(AtomicU64::new(0));
        let id = NEXT_SUBSCRIPTION.fetch_add(1, Ordering::Relaxed);
        let (reply, status) = oneshot::channel();
        let command = Command::Subscribe {
            filter: filter.to_owned(),
            subscriber: Subscriber {
                id,
                messages: messages_tx,
                dropped: Arc::clone(&dropped),
                in_burst: false,
            },
            reply,
        };
        self.send(command, &operation()).await?;
        let status = status.await.map_err(|_| self.closed(&operation()))?;
        Ok(Subscription {
            filter: filter.to_owned(),
            messages,
            broker: self.name.clone(),
            id,
            status,
            dropped,
            release: self.releases.clone(),
        })
    }

    /// Publishes a message. QoS 1 and 2 return once the broker acknowledged it; QoS 0 once it
    /// was written. Fails at once while the connection is down (`LinkError::Transport`, naming
    /// the broker and why), with MQTT 5 properties on an MQTT 3.1.1 connection
    /// (`LinkError::Unsupported`), or for an invalid topic name.
    pub async fn publish(&self, message: Outgoing) -> Result<(), LinkError> {
        let operation = format!("publishing to `{}`", message.topic);
        self.check(&message, &operation)?;
        let (done, result) = oneshot::channel();
        self.send(Command::Publish { message, done }, &operation)
            .await?;
        result.await.map_err(|_| self.closed(&operation))?
    }

    /// Publishes a request and waits for its answer (MQTT 5 only; `LinkError::Unsupported` on
    /// MQTT 3.1.1). `LinkError::Timeout` if no answer came in time; if the connection dropped
    /// during the wait, the timeout's error says so (`LinkError::Transport`).
    ///
    /// The request goes out with the response topic `<reply prefix>/<correlation in hex>` and
    /// 16 random bytes of correlation data; the answer must echo the correlation data.
    pub async fn request(&self, request: Request) -> Result<Message, LinkError> {
        let Request {
            mut message,
            timeout,
        } = request;
        let operation = format!("request to `{}`", message.topic);
        if self.version == MqttVersion::V311 {
            return Err(LinkError::Unsupported {
                operation,
                reason: format!(
                    "request/response needs MQTT 5, and broker `{}` is configured for MQTT 3.1.1",
                    self.name
                ),
            });
        }
        let correlation = Bytes::copy_from_slice(&rand::random::<[u8; 16]>());
        message.properties.response_topic = Some(format!(
            "{}/{}",
            self.reply_prefix,
            session::hex(&correlation)
        ));
        message.properties.correlation_data = Some(correlation.clone());
        self.check(&message, &operation)?;
        let deadline = Instant::now() + timeout;
        let drops_before = self.shared.drop_count();
        let (answer, answered) = oneshot::channel();
        let (done, published) = oneshot::channel();
        let command = Command::Request {
            message,
            correlation,
            answer,
            done,
        };
        self.send(command, &operation).await?;
        match timeout_at(deadline, published).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(e))) => return Err(e),
            Ok(Err(_)) => return Err(self.closed(&operation)),
            Err(_) => return Err(self.timed_out(&operation, timeout, drops_before)),
        }
        match timeout_at(deadline, answered).await {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(_)) => Err(self.closed(&operation)),
            Err(_) => Err(self.timed_out(&operation, timeout, drops_before)),
        }
    }

    /// Stops the driver: disconnects cleanly and closes every subscription.
    pub fn shutdown(&self) {
        self.shutdown.send_replace(true);
    }

    /// Our own refusals, before anything is queued.
    fn check(&self, message: &Outgoing, operation: &str) -> Result<(), LinkError> {
        let refuse = |reason: String| LinkError::Unsupported {
            operation: operation.to_owned(),
            reason,
        };
        topic::check_name(&message.topic).map_err(|e| refuse(e.to_string()))?;
        if self.version == MqttVersion::V311 && !message.properties.is_empty() {
            return Err(refuse(format!(
                "the message carries MQTT 5 properties, and broker `{}` is configured for MQTT 3.1.1",
                self.name
            )));
        }
        let properties = &message.properties;
        let size = PUBLISH_OVERHEAD
            + message.topic.len()
            + message.payload.len()
            + properties
                .response_topic
                .as_ref()
                .map_or(0, |t| t.len() + 3)
            + properties
                .correlation_data
                .as_ref()
                .map_or(0, |c| c.len() + 3)
            + properties.content_type.as_ref().map_or(0, |c| c.len() + 3)
            + properties
                .user
                .iter()
                .map(|(k, v)| k.len() + v.len() + 5)
                .sum::<usize>();
        if size > self.max_packet_size {
            return Err(refuse(format!(
                "the message is about {size} bytes, above the max_packet_size of {} bytes of broker `{}`",
                self.max_packet_size, self.name
            )));
        }
        Ok(())
    }

    async fn send(&self, command: Command, operation: &str) -> Result<(), LinkError> {
        self.commands
            .send(command)
            .await
            .map_err(|_| self.closed(operation))
    }

    fn closed(&self, operation: &str) -> LinkError {
        LinkError::Transport(format!(
            "{operation}: the connection to broker `{}` was shut down",
            self.name
        ))
    }

    fn timed_out(&self, operation: &str, after: Duration, drops_before: u64) -> LinkError {
        match self.shared.dropped_since(drops_before) {
            Some(at) => LinkError::Transport(format!(
                "{operation}: no answer within {after:?}; the connection to broker `{}` dropped at \
                 {} while waiting; the device may have carried out the request",
                self.name,
                humantime::format_rfc3339_seconds(at)
            )),
            None => LinkError::Timeout { after },
        }
    }
}

/// Messages matching one filter, in arrival order. Dropping it unsubscribes (when no other
/// subscription shares the filter).
#[derive(Debug)]
pub struct Subscription {
    filter: String,
    messages: mpsc::Receiver<Message>,
    broker: String,
    id: u64,
    status: watch::Receiver<FilterStatus>,
    dropped: Arc<AtomicU64>,
    release: mpsc::UnboundedSender<Release>,
}

impl Subscription {
    /// The filter.
    pub fn filter(&self) -> &str {
        &self.filter
    }

    /// Waits until the broker acknowledged the subscription on the current connection (SUBACK).
    /// Fails if the broker refused it (`LinkError::DeviceRefused` with the SUBACK reason code) or
    /// the connection is down (`LinkError::Transport`). While connecting, it waits.
    pub async fn ready(&mut self) -> Result<(), LinkError> {
        loop {
            let status = self.status.borrow_and_update().clone();
            match status {
                FilterStatus::Acked => return Ok(()),
                FilterStatus::Refused(code) => {
                    return Err(LinkError::DeviceRefused {
                        code,
                        detail: Some(format!(
                            "broker `{}` refused the subscription to `{}`",
                            self.broker, self.filter
                        )),
                    });
                }
                FilterStatus::Down(reason) => {
                    return Err(LinkError::Transport(format!(
                        "subscribing to `{}`: the connection to broker `{}` is down ({reason})",
                        self.filter, self.broker
                    )));
                }
                FilterStatus::Pending => {}
            }
            if self.status.changed().await.is_err() {
                return Err(LinkError::Transport(format!(
                    "subscribing to `{}`: the connection to broker `{}` was shut down",
                    self.filter, self.broker
                )));
            }
        }
    }

    /// The next message; `None` once the driver stopped.
    pub async fn recv(&mut self) -> Option<Message> {
        self.messages.recv().await
    }

    /// How many messages were dropped because this subscription's queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let _ = self.release.send(Release {
            filter: std::mem::take(&mut self.filter),
            id: self.id,
        });
    }
}

/// What handles ask of the driver task.
#[derive(Debug)]
enum Command {
    Subscribe {
        filter: String,
        subscriber: Subscriber,
        reply: oneshot::Sender<watch::Receiver<FilterStatus>>,
    },
    Publish {
        message: Outgoing,
        done: oneshot::Sender<Result<(), LinkError>>,
    },
    Request {
        message: Outgoing,
        correlation: Bytes,
        answer: oneshot::Sender<Message>,
        done: oneshot::Sender<Result<(), LinkError>>,
    },
}

/// A dropped subscription.
#[derive(Debug)]
struct Release {
    filter: String,
    id: u64,
}

/// The driver's side of one subscription.
#[derive(Debug)]
struct Subscriber {
    id: u64,
    messages: mpsc::Sender<Message>,
    dropped: Arc<AtomicU64>,
    /// Messages are being dropped (logged once per burst).
    in_burst: bool,
}

/// Where a filter's subscription stands on the current connection.
#[derive(Debug, Clone, PartialEq, Eq)]
enum FilterStatus {
    /// SUBSCRIBE not yet answered (or not yet sent: connecting).
    Pending,
    /// SUBACK granted it.
    Acked,
    /// SUBACK refused it, with this reason code.
    Refused(String),
    /// The connection is down, for this reason.
    Down(String),
}

/// What the driver task and the handles share.
#[derive(Debug, Default)]
struct Shared {
    drops: RwLock<Drops>,
}

/// Connections that dropped after coming up.
#[derive(Debug, Default)]
struct Drops {
    count: u64,
    last: Option<SystemTime>,
}

impl Shared {
    fn drop_count(&self) -> u64 {
        self.drops
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .count
    }

    /// When the connection last dropped, if it dropped since the count was `before`.
    fn dropped_since(&self, before: u64) -> Option<SystemTime> {
        let drops = self.drops.read().unwrap_or_else(PoisonError::into_inner);
        if drops.count > before {
            drops.last
        } else {
            None
        }
    }
}

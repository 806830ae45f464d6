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
//! - **Bounded**: incoming packets above the configured maximum size are refused by the codec;
//!   each subscription queue holds 256 messages and counts what it had to drop.

use std::fmt;
use std::time::Duration;

use tokio::sync::{mpsc, watch};

use crate::frame::{Message, Outgoing};
use crate::settings::{BrokerSettings, MqttVersion};
use iotmc_adapter::LinkError;

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
    _commands: mpsc::Sender<()>,
    state: watch::Receiver<ConnectionState>,
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
        let _ = settings;
        todo!("driver")
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
    pub async fn subscribe(&self, filter: &str) -> Result<Subscription, LinkError> {
        let _ = filter;
        todo!("driver")
    }

    /// Publishes a message. QoS 1 and 2 return once the broker acknowledged it; QoS 0 once it
    /// was written. Fails at once while the connection is down (`LinkError::Transport`, naming
    /// the broker and why), with MQTT 5 properties on an MQTT 3.1.1 connection
    /// (`LinkError::Unsupported`), or for an invalid topic name.
    pub async fn publish(&self, message: Outgoing) -> Result<(), LinkError> {
        let _ = message;
        todo!("driver")
    }

    /// Publishes a request and waits for its answer (MQTT 5 only; `LinkError::Unsupported` on
    /// MQTT 3.1.1). `LinkError::Timeout` if no answer came in time; if the connection dropped
    /// during the wait, the timeout's error says so (`LinkError::Transport`).
    pub async fn request(&self, request: Request) -> Result<Message, LinkError> {
        let _ = request;
        todo!("driver")
    }

    /// Stops the driver: disconnects cleanly and closes every subscription.
    pub fn shutdown(&self) {
        todo!("driver")
    }
}

/// Messages matching one filter, in arrival order. Dropping it unsubscribes (when no other
/// subscription shares the filter).
#[derive(Debug)]
pub struct Subscription {
    filter: String,
    messages: mpsc::Receiver<Message>,
}

impl Subscription {
    /// The filter.
    pub fn filter(&self) -> &str {
        &self.filter
    }

    /// Waits until the broker acknowledged the subscription on the current connection (SUBACK).
    /// Fails if the broker refused it (`LinkError::DeviceRefused` with the SUBACK reason code) or
    /// the connection is down (`LinkError::Transport`).
    pub async fn ready(&mut self) -> Result<(), LinkError> {
        todo!("driver")
    }

    /// The next message; `None` once the driver stopped.
    pub async fn recv(&mut self) -> Option<Message> {
        self.messages.recv().await
    }

    /// How many messages were dropped because this subscription's queue was full.
    pub fn dropped(&self) -> u64 {
        todo!("driver")
    }
}

//! MQTT messages as the driver hands them to device links and takes them from them.
//!
//! These are independent of rumqttc's v4 and v5 packet types, so links do not care which
//! protocol version a broker connection speaks. Properties only exist on MQTT 5 connections; on
//! MQTT 3.1.1 they are empty on receipt and refused on sending (see [`crate::driver`]).

use bytes::Bytes;

/// Quality of service of a publish or subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum QoS {
    /// At most once.
    AtMostOnce,
    /// At least once (the default for everything the gateway sends).
    #[default]
    AtLeastOnce,
    /// Exactly once.
    ExactlyOnce,
}

/// MQTT 5 publish properties the gateway uses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Properties {
    /// Where the receiver should publish its answer (request/response).
    pub response_topic: Option<String>,
    /// Opaque data the answer echoes, to match it with its request.
    pub correlation_data: Option<Bytes>,
    /// MIME type of the payload, e.g. `application/json`.
    pub content_type: Option<String>,
    /// User properties, in order.
    pub user: Vec<(String, String)>,
}

impl Properties {
    /// Whether no property is set.
    pub fn is_empty(&self) -> bool {
        self == &Self::default()
    }

    /// The first user property named `key`.
    pub fn user(&self, key: &str) -> Option<&str> {
        self.user
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// A message received from the broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The topic it was published to.
    pub topic: String,
    /// The payload, as received (bounded by the connection's maximum packet size).
    pub payload: Bytes,
    /// The broker delivered it from its retained store.
    pub retain: bool,
    /// MQTT 5 properties (empty on MQTT 3.1.1 connections).
    pub properties: Properties,
}

impl Message {
    /// The payload as UTF-8 text, if it is.
    pub fn text(&self) -> Option<&str> {
        std::str::from_utf8(&self.payload).ok()
    }
}

/// A message to publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    /// Topic name (no wildcards).
    pub topic: String,
    /// Payload.
    pub payload: Bytes,
    /// Quality of service (default at least once).
    pub qos: QoS,
    /// Ask the broker to retain it.
    pub retain: bool,
    /// MQTT 5 properties; must be empty on MQTT 3.1.1 connections.
    pub properties: Properties,
}

impl Outgoing {
    /// A QoS 1, not retained message without properties.
    pub fn new(topic: impl Into<String>, payload: impl Into<Bytes>) -> Self {
        Self {
            topic: topic.into(),
            payload: payload.into(),
            qos: QoS::AtLeastOnce,
            retain: false,
            properties: Properties::default(),
        }
    }

    /// This message, retained.
    pub fn retained(mut self) -> Self {
        self.retain = true;
        self
    }

    /// This message with the given quality of service.
    pub fn with_qos(mut self, qos: QoS) -> Self {
        self.qos = qos;
        self
    }

    /// This message with the given properties.
    pub fn with_properties(mut self, properties: Properties) -> Self {
        self.properties = properties;
        self
    }
}

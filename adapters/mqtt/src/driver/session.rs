//! One broker connection's rumqttc client and event loop, for either protocol version, behind
//! one pair of types, so the driver task is written once: [`Client`] queues packets (never
//! blocks), [`EventLoop::poll`] drives the connection and yields [`Event`]s in our own terms,
//! and connection failures come out as a reason in words.
//!
//! rumqttc keeps QoS 1 and 2 packet ids to itself; what it tells us is, in the order requests
//! were queued, `Outgoing::Publish(pkid)` / `Outgoing::Subscribe(pkid)` as it writes them,
//! then the acknowledgement with the same id. The driver matches the two with a FIFO.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use rumqttc::v5::mqttbytes::v5 as p5;
use rumqttc::{TlsConfiguration, Transport};

use super::reason::{self, CONNECT_TIMEOUT_SECS};
use crate::frame::{Message, Outgoing, Properties, QoS};
use crate::settings::{BrokerSettings, MqttVersion};

/// Capacity of rumqttc's own request queue between [`Client`] and [`EventLoop`]. Each command
/// queues at most one request, and the driver polls the event loop ahead of new commands, so
/// the queue fills only if the broker stops acknowledging while thousands of callers publish;
/// then publishes fail with a transport error instead of waiting without bound.
const REQUEST_QUEUE: usize = 4096;

/// QoS 1 and 2 publishes in flight at once on a connection.
const INFLIGHT: u16 = 100;

/// What the event loop reports, independent of the protocol version.
#[derive(Debug)]
pub(super) enum Event {
    /// The broker accepted the connection (CONNACK success).
    ConnAck,
    /// A message arrived.
    Message(Message),
    /// A publish went out with this packet id (0 for QoS 0), in the order publishes were queued.
    PublishSent(u16),
    /// A publish is held back until the broker acknowledges `pkid` (packet id collision); it
    /// is the next queued publish, and goes out later as `PublishSent(pkid)`.
    PublishHeld(u16),
    /// The broker acknowledged a QoS 1 publish (PUBACK), or refused it (MQTT 5 reason code).
    PubAck { pkid: u16, refused: Option<String> },
    /// First acknowledgement of a QoS 2 publish (PUBREC); a refusal ends the exchange.
    PubRec { pkid: u16, refused: Option<String> },
    /// Last acknowledgement of a QoS 2 publish (PUBCOMP).
    PubComp { pkid: u16 },
    /// A SUBSCRIBE went out with this packet id, in the order subscriptions were queued.
    SubscribeSent(u16),
    /// The broker answered a SUBSCRIBE: `Err(reason)` per refused filter, in order.
    SubAck {
        pkid: u16,
        results: Vec<Result<(), String>>,
    },
    /// Our DISCONNECT went out.
    Disconnected,
    /// Anything else (pings, our own acks, UNSUBACK).
    Other,
}

/// The request side of a connection: queues packets for the event loop.
#[derive(Debug, Clone)]
pub(super) enum Client {
    V4(rumqttc::AsyncClient),
    V5(rumqttc::v5::AsyncClient),
}

/// The connection side: TCP/TLS, MQTT state, keep-alive. Reconnects on the next poll after a
/// failure (with a clean session, so nothing queued before the failure is sent afterwards).
pub(super) struct EventLoop {
    inner: Inner,
    endpoint: String,
    max_packet_size: usize,
}

enum Inner {
    V4(Box<rumqttc::EventLoop>),
    V5(Box<rumqttc::v5::EventLoop>),
}

impl std::fmt::Debug for EventLoop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventLoop")
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

/// Builds the client and event loop of a broker connection (nothing connects until the first
/// poll).
pub(super) fn open(settings: &BrokerSettings) -> (Client, EventLoop) {
    let transport = settings
        .tls
        .as_ref()
        .map(|tls| Transport::tls_with_config(TlsConfiguration::Rustls(Arc::clone(tls))));
    let max = settings.max_packet_size;
    let (client, inner) = match settings.version {
        MqttVersion::V311 => {
            let mut options =
                rumqttc::MqttOptions::new(&settings.client_id, &settings.host, settings.port);
            // rumqttc refuses keep-alives under a second (other than none at all).
            let keep_alive = if settings.keep_alive.is_zero() {
                Duration::ZERO
            } else {
                settings.keep_alive.max(Duration::from_secs(1))
            };
            options
                .set_keep_alive(keep_alive)
                .set_clean_session(true)
                .set_max_packet_size(max, max)
                .set_inflight(INFLIGHT);
            if let Some((user, password)) = &settings.credentials {
                options.set_credentials(user, password);
            }
            if let Some(transport) = transport {
                options.set_transport(transport);
            }
            let (client, mut eventloop) = rumqttc::AsyncClient::new(options, REQUEST_QUEUE);
            let mut network = eventloop.network_options();
            network.set_connection_timeout(CONNECT_TIMEOUT_SECS);
            // Small request and answer packets: without TCP_NODELAY, Nagle holds each write
            // until the broker's delayed ACK, ~44 ms per hop (measured by benches/mqtt.rs).
            network.set_tcp_nodelay(true);
            eventloop.set_network_options(network);
            (Client::V4(client), Inner::V4(Box::new(eventloop)))
        }
        MqttVersion::V5 => {
            let mut options =
                rumqttc::v5::MqttOptions::new(&settings.client_id, &settings.host, settings.port);
            // rumqttc's MQTT 5 client refuses keep-alives under five seconds.
            options
                .set_keep_alive(settings.keep_alive.max(Duration::from_secs(5)))
                .set_clean_start(true)
                .set_connection_timeout(CONNECT_TIMEOUT_SECS)
                .set_max_packet_size(Some(u32::try_from(max).unwrap_or(u32::MAX)));
            if let Some((user, password)) = &settings.credentials {
                options.set_credentials(user, password);
            }
            if let Some(transport) = transport {
                options.set_transport(transport);
            }
            // Without an upper limit rumqttc 0.25 pre-fills 65536 pending-publish slots, about
            // 16 MiB per connection (measured); 100 in flight is the 3.1.1 connection's figure.
            options.set_outgoing_inflight_upper_limit(INFLIGHT);
            let mut network = options.network_options();
            network.set_tcp_nodelay(true);
            options.set_network_options(network);
            let (client, eventloop) = rumqttc::v5::AsyncClient::new(options, REQUEST_QUEUE);
            (Client::V5(client), Inner::V5(Box::new(eventloop)))
        }
    };
    let eventloop = EventLoop {
        inner,
        endpoint: settings.endpoint(),
        max_packet_size: max,
    };
    (client, eventloop)
}

impl Client {
    /// Queues one SUBSCRIBE (QoS 1) for all of `filters` (not empty); the SUBACK answers each.
    pub(super) fn subscribe(&self, filters: &[String]) -> Result<(), String> {
        match self {
            Self::V4(c) => c
                .try_subscribe_many(
                    filters.iter().map(|f| {
                        rumqttc::SubscribeFilter::new(f.clone(), rumqttc::QoS::AtLeastOnce)
                    }),
                )
                .map_err(|e| e.to_string()),
            Self::V5(c) => c
                .try_subscribe_many(
                    filters
                        .iter()
                        .map(|f| p5::Filter::new(f.clone(), p5_qos(QoS::AtLeastOnce))),
                )
                .map_err(v5_client_error),
        }
    }

    /// Queues an UNSUBSCRIBE.
    pub(super) fn unsubscribe(&self, filter: &str) -> Result<(), String> {
        match self {
            Self::V4(c) => c.try_unsubscribe(filter).map_err(|e| e.to_string()),
            Self::V5(c) => c.try_unsubscribe(filter).map_err(|e| e.to_string()),
        }
    }

    /// Queues a PUBLISH. Properties must be empty on MQTT 3.1.1 (the handle checks).
    pub(super) fn publish(&self, message: &Outgoing) -> Result<(), String> {
        match self {
            Self::V4(c) => c
                .try_publish(
                    message.topic.as_str(),
                    v4_qos(message.qos),
                    message.retain,
                    message.payload.to_vec(),
                )
                .map_err(|e| e.to_string()),
            Self::V5(c) => {
                let result = if message.properties.is_empty() {
                    c.try_publish(
                        message.topic.as_str(),
                        p5_qos(message.qos),
                        message.retain,
                        message.payload.clone(),
                    )
                } else {
                    c.try_publish_with_properties(
                        message.topic.as_str(),
                        p5_qos(message.qos),
                        message.retain,
                        message.payload.clone(),
                        p5_properties(&message.properties),
                    )
                };
                result.map_err(v5_client_error)
            }
        }
    }

    /// Queues a DISCONNECT.
    pub(super) fn disconnect(&self) -> Result<(), String> {
        match self {
            Self::V4(c) => c.try_disconnect().map_err(|e| e.to_string()),
            Self::V5(c) => c.try_disconnect().map_err(|e| e.to_string()),
        }
    }
}

/// rumqttc's MQTT 5 client error prints the whole request, payload included; keep it short.
fn v5_client_error(e: rumqttc::v5::ClientError) -> String {
    match e {
        rumqttc::v5::ClientError::Request(_) => "the request is invalid".to_owned(),
        rumqttc::v5::ClientError::TryRequest(_) => {
            "the connection's request queue is full or closed".to_owned()
        }
    }
}

impl EventLoop {
    /// The next event; after an error the connection is gone, and the next poll reconnects.
    /// The error is the reason in words. Not cancel-safe: the driver keeps the future alive
    /// until it completes.
    pub(super) async fn poll(&mut self) -> Result<Event, String> {
        match &mut self.inner {
            Inner::V4(eventloop) => match eventloop.poll().await {
                Ok(event) => Ok(v4_event(event)),
                Err(e) => Err(reason::v4(&e, &self.endpoint, self.max_packet_size)),
            },
            Inner::V5(eventloop) => match eventloop.poll().await {
                Ok(event) => Ok(v5_event(event)),
                Err(e) => Err(reason::v5(&e, &self.endpoint, self.max_packet_size)),
            },
        }
    }
}

fn v4_qos(qos: QoS) -> rumqttc::QoS {
    match qos {
        QoS::AtMostOnce => rumqttc::QoS::AtMostOnce,
        QoS::AtLeastOnce => rumqttc::QoS::AtLeastOnce,
        QoS::ExactlyOnce => rumqttc::QoS::ExactlyOnce,
    }
}

fn p5_qos(qos: QoS) -> rumqttc::v5::mqttbytes::QoS {
    use rumqttc::v5::mqttbytes::QoS as Q;
    match qos {
        QoS::AtMostOnce => Q::AtMostOnce,
        QoS::AtLeastOnce => Q::AtLeastOnce,
        QoS::ExactlyOnce => Q::ExactlyOnce,
    }
}

fn p5_properties(properties: &Properties) -> p5::PublishProperties {
    p5::PublishProperties {
        response_topic: properties.response_topic.clone(),
        correlation_data: properties.correlation_data.clone(),
        content_type: properties.content_type.clone(),
        user_properties: properties.user.clone(),
        ..p5::PublishProperties::default()
    }
}

fn v4_event(event: rumqttc::Event) -> Event {
    use rumqttc::{Event as E, Outgoing as O, Packet as P, SubscribeReasonCode};
    match event {
        E::Incoming(P::ConnAck(_)) => Event::ConnAck,
        E::Incoming(P::Publish(p)) => Event::Message(Message {
            topic: p.topic,
            payload: p.payload,
            retain: p.retain,
            properties: Properties::default(),
        }),
        E::Incoming(P::PubAck(a)) => Event::PubAck {
            pkid: a.pkid,
            refused: None,
        },
        E::Incoming(P::PubRec(a)) => Event::PubRec {
            pkid: a.pkid,
            refused: None,
        },
        E::Incoming(P::PubComp(a)) => Event::PubComp { pkid: a.pkid },
        E::Incoming(P::SubAck(a)) => Event::SubAck {
            pkid: a.pkid,
            results: a
                .return_codes
                .iter()
                .map(|code| match code {
                    SubscribeReasonCode::Success(_) => Ok(()),
                    SubscribeReasonCode::Failure => Err("SUBACK 0x80 (failure)".to_owned()),
                })
                .collect(),
        },
        E::Outgoing(O::Publish(pkid)) => Event::PublishSent(pkid),
        E::Outgoing(O::AwaitAck(pkid)) => Event::PublishHeld(pkid),
        E::Outgoing(O::Subscribe(pkid)) => Event::SubscribeSent(pkid),
        E::Outgoing(O::Disconnect) => Event::Disconnected,
        _ => Event::Other,
    }
}

fn v5_event(event: rumqttc::v5::Event) -> Event {
    use rumqttc::Outgoing as O;
    use rumqttc::v5::Event as E;
    use rumqttc::v5::mqttbytes::v5::Packet as P;
    match event {
        E::Incoming(P::ConnAck(_)) => Event::ConnAck,
        E::Incoming(P::Publish(p)) => {
            let Ok(topic) = String::from_utf8(p.topic.to_vec()) else {
                tracing::warn!("dropped a message whose topic is not UTF-8");
                return Event::Other;
            };
            let properties = p
                .properties
                .map(|props| Properties {
                    response_topic: props.response_topic,
                    correlation_data: props.correlation_data,
                    content_type: props.content_type,
                    user: props.user_properties,
                })
                .unwrap_or_default();
            Event::Message(Message {
                topic,
                payload: p.payload,
                retain: p.retain,
                properties,
            })
        }
        E::Incoming(P::PubAck(a)) => Event::PubAck {
            pkid: a.pkid,
            refused: match a.reason {
                p5::PubAckReason::Success | p5::PubAckReason::NoMatchingSubscribers => None,
                other => Some(format!("PUBACK {}", puback_reason(other))),
            },
        },
        E::Incoming(P::PubRec(a)) => Event::PubRec {
            pkid: a.pkid,
            refused: match a.reason {
                p5::PubRecReason::Success | p5::PubRecReason::NoMatchingSubscribers => None,
                other => Some(format!("PUBREC {other:?}")),
            },
        },
        E::Incoming(P::PubComp(a)) => Event::PubComp { pkid: a.pkid },
        E::Incoming(P::SubAck(a)) => Event::SubAck {
            pkid: a.pkid,
            results: a
                .return_codes
                .iter()
                .map(|code| match code {
                    p5::SubscribeReasonCode::Success(_) => Ok(()),
                    other => Err(format!("SUBACK {}", suback_reason(*other))),
                })
                .collect(),
        },
        E::Outgoing(O::Publish(pkid)) => Event::PublishSent(pkid),
        E::Outgoing(O::AwaitAck(pkid)) => Event::PublishHeld(pkid),
        E::Outgoing(O::Subscribe(pkid)) => Event::SubscribeSent(pkid),
        E::Outgoing(O::Disconnect) => Event::Disconnected,
        _ => Event::Other,
    }
}

fn puback_reason(reason: p5::PubAckReason) -> &'static str {
    use p5::PubAckReason as R;
    match reason {
        R::Success => "0x00 (success)",
        R::NoMatchingSubscribers => "0x10 (no matching subscribers)",
        R::UnspecifiedError => "0x80 (unspecified error)",
        R::ImplementationSpecificError => "0x83 (implementation specific error)",
        R::NotAuthorized => "0x87 (not authorised)",
        R::TopicNameInvalid => "0x90 (topic name invalid)",
        R::PacketIdentifierInUse => "0x91 (packet identifier in use)",
        R::QuotaExceeded => "0x97 (quota exceeded)",
        R::PayloadFormatInvalid => "0x99 (payload format invalid)",
    }
}

fn suback_reason(reason: p5::SubscribeReasonCode) -> &'static str {
    use p5::SubscribeReasonCode as R;
    match reason {
        R::Success(_) => "0x00 (granted)",
        R::Failure | R::Unspecified => "0x80 (unspecified error)",
        R::ImplementationSpecific => "0x83 (implementation specific error)",
        R::NotAuthorized => "0x87 (not authorised)",
        R::TopicFilterInvalid => "0x8F (topic filter invalid)",
        R::PkidInUse => "0x91 (packet identifier in use)",
        R::QuotaExceeded => "0x97 (quota exceeded)",
        R::SharedSubscriptionsNotSupported => "0x9E (shared subscriptions not supported)",
        R::SubscriptionIdNotSupported => "0xA1 (subscription identifiers not supported)",
        R::WildcardSubscriptionsNotSupported => "0xA2 (wildcard subscriptions not supported)",
    }
}

/// A correlation id in hex, for response topics and logs.
pub(super) fn hex(bytes: &Bytes) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn refused_acknowledgements_should_carry_their_reason_code() {
        use rumqttc::v5::Event as E;
        use rumqttc::v5::mqttbytes::v5::Packet as P;
        let mut puback = p5::PubAck::new(7, None);
        puback.reason = p5::PubAckReason::NotAuthorized;
        let Event::PubAck { pkid, refused } = v5_event(E::Incoming(P::PubAck(puback))) else {
            panic!("not a PUBACK");
        };
        assert_eq!(
            (pkid, refused.as_deref()),
            (7, Some("PUBACK 0x87 (not authorised)"))
        );

        let suback = p5::SubAck {
            pkid: 9,
            return_codes: vec![
                p5::SubscribeReasonCode::Success(rumqttc::v5::mqttbytes::QoS::AtLeastOnce),
                p5::SubscribeReasonCode::TopicFilterInvalid,
            ],
            properties: None,
        };
        let Event::SubAck { pkid, results } = v5_event(E::Incoming(P::SubAck(suback))) else {
            panic!("not a SUBACK");
        };
        assert_eq!(pkid, 9);
        assert_eq!(
            results,
            [Ok(()), Err("SUBACK 0x8F (topic filter invalid)".to_owned())]
        );
    }

    #[test]
    fn mqtt5_properties_should_survive_the_conversion() {
        let properties = Properties {
            response_topic: Some("iotmc/gw/reply/ab".into()),
            correlation_data: Some(Bytes::from_static(&[1, 2, 3])),
            content_type: Some("application/json".into()),
            user: vec![("k".into(), "v".into())],
        };
        let converted = p5_properties(&properties);
        assert_eq!(converted.response_topic, properties.response_topic);
        assert_eq!(converted.correlation_data, properties.correlation_data);
        assert_eq!(converted.content_type, properties.content_type);
        assert_eq!(converted.user_properties, properties.user);
        assert_eq!(hex(&Bytes::from_static(&[0x0a, 0xff])), "0aff");
    }
}

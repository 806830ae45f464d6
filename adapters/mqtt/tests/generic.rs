//! The generic MQTT 5 dialect end to end: the embedded broker, the simulated AHU-5 controller
//! and the gateway's link through the driver.
#![cfg(feature = "sim")]
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use bytes::Bytes;
use iotmc_adapter_mqtt::sim::EmbeddedBroker;
use iotmc_adapter_mqtt::sim::generic::GenericDevice;
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::mqttbytes::v5::{Packet, PublishProperties};
use rumqttc::v5::{AsyncClient, Event, MqttOptions};

/// Publishes `payload` on `topic` as an MQTT 5 request from a plain rumqttc client and returns
/// the answer's payload and correlation data.
async fn raw_request(
    broker: &EmbeddedBroker,
    topic: &str,
    payload: &str,
) -> (serde_json::Value, Option<Bytes>) {
    let addr = broker.v5_addr();
    let (client, mut eventloop) = AsyncClient::new(
        MqttOptions::new("raw-requester", addr.ip().to_string(), addr.port()),
        16,
    );
    client
        .subscribe("raw/reply", QoS::AtLeastOnce)
        .await
        .unwrap();
    let mut sent = false;
    let wait = async {
        loop {
            match eventloop.poll().await.unwrap() {
                Event::Incoming(Packet::SubAck(_)) if !sent => {
                    sent = true;
                    let properties = PublishProperties {
                        response_topic: Some("raw/reply".into()),
                        correlation_data: Some(Bytes::from_static(b"corr-1")),
                        ..PublishProperties::default()
                    };
                    client
                        .publish_with_properties(
                            topic,
                            QoS::AtLeastOnce,
                            false,
                            payload.to_owned(),
                            properties,
                        )
                        .await
                        .unwrap();
                }
                Event::Incoming(Packet::Publish(p)) => {
                    let json = serde_json::from_slice(&p.payload).unwrap();
                    return (json, p.properties.and_then(|p| p.correlation_data));
                }
                _ => {}
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), wait)
        .await
        .expect("the simulator answered within 10 s")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulator_should_answer_on_the_response_topic_with_the_correlation_data() {
    let broker = EmbeddedBroker::start().unwrap();
    let device = GenericDevice::start(broker.v5_addr(), "ahu-1")
        .await
        .unwrap();
    let (answer, correlation) =
        raw_request(&broker, "iotmc/ahu/ahu-1/rpc", r#"{"op": "info"}"#).await;
    assert_eq!(answer["model"], "AHU-5");
    assert_eq!(answer["version"], "1.0.0");
    assert_eq!(correlation.as_deref(), Some(&b"corr-1"[..]));
    assert_eq!(device.requests(), 1);
}

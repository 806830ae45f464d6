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

// ---------------------------------------------------------------------------------------------
// The gateway's link against the simulator.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, PoisonError, RwLock};

use iotmc_adapter::testkit::{Conformance, FirmwareFixture, SimulatedDevice};
use iotmc_adapter::{
    ActionOutcome, ActionRequest, ActivationMode, Adapter, Availability, DeviceBinding, DeviceLink,
    ErrorKind, FirmwareImage, LinkError, LinkEvent, Profile, Readings, StageProgress, Value,
};
use iotmc_adapter_mqtt::sim::generic::SimTiming;
use iotmc_adapter_mqtt::{BrokerSettings, MqttAdapter, MqttVersion};
use sha2::{Digest, Sha256};
use tokio::sync::broadcast;

/// Longest any step waits; they take milliseconds when they pass.
const DEADLINE: Duration = Duration::from_secs(20);

fn shipped_text() -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../device-profiles/mqtt/iotmc-mqtt5-controller.toml");
    std::fs::read_to_string(path).unwrap()
}

fn profile_from(text: &str) -> Arc<Profile> {
    Arc::new(
        Profile::from_toml(std::path::Path::new("iotmc-mqtt5-controller.toml"), text)
            .unwrap_or_else(|e| panic!("{e:?}")),
    )
}

/// The shipped profile with a short response timeout, so timeouts are quick to see.
fn quick_profile() -> Arc<Profile> {
    profile_from(&shipped_text().replace("response_timeout = \"5s\"", "response_timeout = \"1s\""))
}

fn image(version: &str, body: usize) -> FirmwareImage {
    let mut bytes = format!("SIMFW:{version}\n").into_bytes();
    bytes.extend((0..body).map(|i| (i % 251) as u8));
    raw_image(version, bytes)
}

fn raw_image(version: &str, bytes: Vec<u8>) -> FirmwareImage {
    let sha256: [u8; 32] = Sha256::digest(&bytes).into();
    FirmwareImage {
        bytes: bytes.into(),
        sha256,
        version: version.to_owned(),
        download_url: None,
    }
}

/// A broker, a simulated controller `ahu-1` on it, and the gateway's link to it through `at`
/// (the broker's MQTT 5 address, or a proxy in front of it).
struct Rig {
    _broker: EmbeddedBroker,
    device: GenericDevice,
    link: Arc<dyn DeviceLink>,
    profile: Arc<Profile>,
}

async fn rig_with(profile: Arc<Profile>, timing: SimTiming, via: Option<SocketAddr>) -> Rig {
    let broker = EmbeddedBroker::start().unwrap();
    let device = GenericDevice::start_with(broker.v5_addr(), "ahu-1", timing)
        .await
        .unwrap();
    let at = via.unwrap_or(broker.v5_addr());
    let link = attach(&profile, at, MqttVersion::V5).await.unwrap();
    wait_availability(&*link, Availability::Online).await;
    Rig {
        _broker: broker,
        device,
        link,
        profile,
    }
}

async fn rig() -> Rig {
    rig_with(quick_profile(), SimTiming::default(), None).await
}

async fn attach(
    profile: &Arc<Profile>,
    at: SocketAddr,
    version: MqttVersion,
) -> Result<Arc<dyn DeviceLink>, LinkError> {
    let mut settings = BrokerSettings::plain("plant-room", "127.0.0.1", at.port(), "gateway-test");
    settings.version = version;
    let adapter = MqttAdapter::new(vec![settings]);
    adapter
        .validate_profile(profile)
        .unwrap_or_else(|e| panic!("{e:?}"));
    adapter
        .attach(&DeviceBinding {
            device_id: "ahu-1".into(),
            profile: Arc::clone(profile),
            address: "mqtt://plant-room/ahu-1".into(),
        })
        .await
}

/// Waits for the link to report `wanted` (now or in an event).
async fn wait_availability(link: &dyn DeviceLink, wanted: Availability) {
    let mut events = link.events();
    let wait = async {
        // The identify round trip proves the link is up; availability may already be known.
        loop {
            match events.recv().await {
                Ok(LinkEvent::Availability { availability, .. }) if availability == wanted => {
                    return;
                }
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => panic!("the link closed"),
            }
        }
    };
    // The availability may have been evented before we subscribed: a read proves the device
    // answers, which is what "online" means to these tests.
    if wanted == Availability::Online && link.identify().await.is_ok() {
        return;
    }
    tokio::time::timeout(DEADLINE, wait)
        .await
        .unwrap_or_else(|_| panic!("the link did not report {wanted:?} within {DEADLINE:?}"));
}

fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ahu_controller_should_pass_the_conformance_kit() {
    let profile = profile_from(&shipped_text());
    let rig = rig_with(profile, SimTiming::default(), None).await;
    let report = Conformance::new(Arc::clone(&rig.link), Arc::clone(&rig.profile), &rig.device)
        .with_firmware(FirmwareFixture {
            first: image("2.0.0", 10_000),
            second: image("3.0.0", 9_000),
        })
        .run()
        .await;
    println!("{report}");
    report.assert_passed();
    assert_eq!(rig.device.running_version(), "2.0.0");
}

//! What the generic dialect's end-to-end tests share: profiles, images, the rig of broker,
//! simulator and link, a TCP proxy that can cut connections, and plain MQTT 5 clients.
#![allow(clippy::unwrap_used, unreachable_pub)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use bytes::Bytes;
use iotmc_adapter::{
    Adapter, Availability, DeviceBinding, DeviceLink, FirmwareImage, LinkError, LinkEvent, Profile,
    Value,
};
use iotmc_adapter_mqtt::sim::EmbeddedBroker;
use iotmc_adapter_mqtt::sim::generic::{GenericDevice, SimTiming};
use iotmc_adapter_mqtt::{BrokerSettings, MqttAdapter, MqttVersion};
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::mqttbytes::v5::{Packet, PublishProperties};
use rumqttc::v5::{AsyncClient, Event, MqttOptions};
use sha2::{Digest, Sha256};
use tokio::sync::broadcast;

/// Longest any step waits; they take milliseconds when they pass.
pub const DEADLINE: Duration = Duration::from_secs(20);

pub fn shipped_text() -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../device-profiles/mqtt/iotmc-mqtt5-controller.toml");
    std::fs::read_to_string(path).unwrap()
}

pub fn profile_from(text: &str) -> Arc<Profile> {
    Arc::new(
        Profile::from_toml(std::path::Path::new("iotmc-mqtt5-controller.toml"), text)
            .unwrap_or_else(|e| panic!("{e:?}")),
    )
}

/// The shipped profile with a short response timeout, so timeouts are quick to see.
pub fn quick_profile() -> Arc<Profile> {
    profile_from(&shipped_text().replace("response_timeout = \"5s\"", "response_timeout = \"1s\""))
}

pub fn image(version: &str, body: usize) -> FirmwareImage {
    let mut bytes = format!("SIMFW:{version}\n").into_bytes();
    bytes.extend((0..body).map(|i| (i % 251) as u8));
    raw_image(version, bytes)
}

/// An image whose header `SIMFW:<version>;unhealthy` makes the simulator report a
/// `filter_pressure` outside the profile's health range while it runs.
pub fn unhealthy_image(version: &str, body: usize) -> FirmwareImage {
    let mut bytes = format!("SIMFW:{version};unhealthy\n").into_bytes();
    bytes.extend((0..body).map(|i| (i % 251) as u8));
    raw_image(version, bytes)
}

pub fn raw_image(version: &str, bytes: Vec<u8>) -> FirmwareImage {
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
pub struct Rig {
    pub _broker: EmbeddedBroker,
    pub device: GenericDevice,
    pub link: Arc<dyn DeviceLink>,
    pub profile: Arc<Profile>,
}

pub async fn rig_with(profile: Arc<Profile>, timing: SimTiming, via: Option<SocketAddr>) -> Rig {
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

pub async fn rig() -> Rig {
    rig_with(quick_profile(), SimTiming::default(), None).await
}

pub async fn attach(
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

/// The profile's highest healthy `filter_pressure` (its `[health] checks`).
pub fn filter_pressure_max(rig: &Rig) -> f64 {
    let check = rig
        .profile
        .health
        .checks
        .iter()
        .find(|c| c.parameter == "filter_pressure")
        .expect("the shipped profile checks filter_pressure");
    check.max.expect("the filter_pressure check has a max")
}

/// `filter_pressure` as the link reads it.
pub async fn filter_pressure(rig: &Rig) -> f64 {
    let readings = rig.link.read(&names(&["filter_pressure"])).await.unwrap();
    match readings.get("filter_pressure") {
        Some(Value::Float(x)) => *x,
        other => panic!("expected a float filter_pressure, got {other:?}"),
    }
}

/// Waits for the link to report `wanted` (now or in an event).
pub async fn wait_availability(link: &dyn DeviceLink, wanted: Availability) {
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

pub fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

/// Publishes `payload` on `topic` as an MQTT 5 request from a plain rumqttc client and returns
/// the answer's payload and correlation data.
pub async fn raw_request(
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

/// A TCP proxy in front of the broker whose connections the test can cut; it keeps accepting,
/// so the driver reconnects through it.
pub struct Proxy {
    pub addr: SocketAddr,
    connections: Arc<RwLock<Vec<tokio::task::JoinHandle<()>>>>,
    _accept: tokio::task::JoinHandle<()>,
}

impl Proxy {
    pub async fn start(to: SocketAddr) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let connections: Arc<RwLock<Vec<tokio::task::JoinHandle<()>>>> = Arc::default();
        let kept = Arc::clone(&connections);
        let accept = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let task = tokio::spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(to).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                kept.write()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(task);
            }
        });
        Self {
            addr,
            connections,
            _accept: accept,
        }
    }

    /// Drops every connection through the proxy (both sides see the TCP connection close).
    pub fn cut(&self) {
        for task in self
            .connections
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .drain(..)
        {
            task.abort();
        }
    }
}

/// A plain MQTT 5 client that publishes what a test needs, as a device would.
pub async fn publisher(broker: &EmbeddedBroker) -> (AsyncClient, tokio::task::JoinHandle<()>) {
    let addr = broker.v5_addr();
    let (client, mut eventloop) = AsyncClient::new(
        MqttOptions::new("raw-publisher", addr.ip().to_string(), addr.port()),
        16,
    );
    let poller = tokio::spawn(async move { while eventloop.poll().await.is_ok() {} });
    (client, poller)
}

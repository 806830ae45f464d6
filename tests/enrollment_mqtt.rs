//! Zero-touch enrollment over the real wire protocols: a simulated MQTT 5 air handler holds a
//! certificate from a device CA the gateway trusts ([trust] device_cas) and proves it holds the
//! key (a signature over the gateway's fresh nonce, over MQTT); its group approves such devices
//! zero-touch, so it is enrolled over mutual TLS, commissioned without an operator, and its
//! group's initial configuration arrives at the simulator over MQTT. The same device with a
//! certificate of a CA the gateway does not trust waits for an operator.

#![cfg(all(feature = "modbus", feature = "mqtt"))]
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed set-up step is a failed test

mod common;
mod firmware;

use std::path::Path;
use std::sync::Arc;

use iotmc_adapter_mqtt::sim::EmbeddedBroker;
use iotmc_adapter_mqtt::sim::generic::{GenericDevice, SimIdentity, SimTiming};
use iotmc_gateway::adapters::AdapterSet;
use iotmc_gateway::config::Config;
use iotmc_gateway::daemon::Gateway;
use iotmc_gateway::upnp::UpnpFace;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};

use firmware::events::Listener;

const SHIPPED_IDENTITY: &str =
    "identity = { request = { topic = \"iotmc/ahu/{device}/rpc\", payload = { op = \"info\" } } }";

/// A device CA (PEM) and a device certificate chain and PKCS#8 key it issued.
fn device_credentials() -> (String, SimIdentity) {
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, "AHU vendor device CA");
    let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let mut leaf = CertificateParams::new(Vec::<String>::new()).unwrap();
    leaf.distinguished_name
        .push(rcgen::DnType::CommonName, "AHU5-ahu-1");
    leaf.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    let leaf = leaf.signed_by(&key, &ca).unwrap();
    let identity = SimIdentity::new(
        vec![leaf.der().to_vec(), ca.der().to_vec()],
        &key.serialize_der(),
    )
    .unwrap();
    (ca.pem(), identity)
}

/// The shipped MQTT 5 controller profile, asking for the identity proof.
fn write_profile(dir: &Path) -> std::path::PathBuf {
    let shipped = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("device-profiles/mqtt/iotmc-mqtt5-controller.toml"),
    )
    .unwrap();
    assert!(
        shipped.contains(SHIPPED_IDENTITY),
        "the shipped identity line changed"
    );
    let proving = shipped.replace(
        SHIPPED_IDENTITY,
        "identity = { request = { topic = \"iotmc/ahu/{device}/rpc\", payload = { op = \"info\" } }, proof = { request = { topic = \"iotmc/ahu/{device}/rpc\", payload = { op = \"prove\" } }, address = \"/address\", echo = \"/nonce\" } }",
    );
    let profiles = dir.join("profiles");
    std::fs::create_dir_all(&profiles).unwrap();
    std::fs::write(profiles.join("ahu.toml"), proving).unwrap();
    profiles
}

struct Rig {
    _broker: EmbeddedBroker,
    device: GenericDevice,
    gateway: Gateway,
    face: UpnpFace,
}

/// A broker, the simulated `ahu-1` holding `identity`, and a gateway trusting `trusted_ca`.
async fn start(dir: &Path, identity: SimIdentity, trusted_ca: &str) -> Rig {
    let broker = EmbeddedBroker::start().unwrap();
    let device = GenericDevice::start_with_identity(
        broker.v5_addr(),
        "ahu-1",
        SimTiming::default(),
        identity,
    )
    .await
    .unwrap();
    let profiles = write_profile(dir);
    let pki = iotmc_gateway::upnp::tls::generate_demo_pki(&dir.join("pki")).unwrap();
    let device_ca = dir.join("device-ca.pem");
    std::fs::write(&device_ca, trusted_ca).unwrap();
    let quote = |p: &Path| toml::Value::String(p.display().to_string()).to_string();
    let text = format!(
        r#"
[gateway]
id = "zt-test"
name = "Zero-touch test gateway"
state_dir = {state}
profile_dirs = [{profiles}]

[listen]
interfaces = ["lo"]
http = "127.0.0.1:0"
https = "127.0.0.1:0"
ssdp_port = 0

[trust]
gateway_certificate = {cert}
gateway_key = {key}
operator_ca = {operator_ca}
device_cas = [{device_ca}]

[enrollment]
lab_pki = true

[[mqtt.brokers]]
name = "plant"
host = "{host}"
port = {port}
keep_alive = "5s"

[[groups]]
name = "ahus"
approval = "zero-touch"
zero_touch = {{ profiles = ["iotmc-mqtt5-controller"], addresses = ["mqtt://plant/ahu-*"], evidence = ["certificate"] }}
defaults = {{ setpoint = 17.5, supply_fan_speed = 40 }}

[[devices]]
id = "ahu-1"
profile = "iotmc-mqtt5-controller"
address = "mqtt://plant/ahu-1"
group = "ahus"
"#,
        state = quote(&dir.join("state")),
        profiles = quote(&profiles),
        cert = quote(&pki.server_certificate),
        key = quote(&pki.server_key),
        operator_ca = quote(&pki.ca),
        device_ca = quote(&device_ca),
        host = broker.v5_addr().ip(),
        port = broker.v5_addr().port(),
    );
    let config =
        Config::from_toml(&dir.join("gateway.toml"), &text).unwrap_or_else(|e| panic!("{e:?}"));
    let adapters = AdapterSet::for_config(&config).unwrap();
    let gateway = Gateway::start(config, adapters).await.unwrap();
    let face = UpnpFace::start(&gateway).await.unwrap();
    Rig {
        _broker: broker,
        device,
        gateway,
        face,
    }
}

async fn follow(rig: &Rig, listener: &Listener) {
    let udn = rig
        .gateway
        .devices()
        .iter()
        .find(|d| d.record.id == "ahu-1")
        .unwrap()
        .record
        .udn;
    listener
        .subscribe(
            rig.face.http_addr(),
            &format!("/upnp/{udn}/Lifecycle/event"),
            "/ahu",
        )
        .await;
}

#[tokio::test]
async fn a_device_proving_a_trusted_certificate_should_be_commissioned_zero_touch() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, identity) = device_credentials();
    let rig = start(dir.path(), identity, &ca).await;
    let mut listener = Listener::start().await;
    follow(&rig, &listener).await;
    listener
        .until("/ahu", "LifecycleState", "Commissioned", |v| {
            v == "Commissioned"
        })
        .await;
    // The group's initial configuration went over MQTT and the device holds it.
    assert_eq!(rig.device.value("setpoint"), Some(serde_json::json!(17.5)));
    assert_eq!(
        rig.device.value("supply_fan_speed"),
        Some(serde_json::json!(40))
    );
    assert!(
        rig.device.proof_requests() >= 1,
        "the gateway asked for a proof"
    );
    let identities = rig.gateway.identities().unwrap();
    let enrollment = identities
        .get("ahu-1")
        .unwrap()
        .unwrap()
        .enrollment
        .unwrap();
    assert_eq!(enrollment.evidence, "certificate");
    assert!(
        matches!(&enrollment.outcome, iotmc_gateway::lifecycle::Outcome::Approved { by, .. } if by.contains("zero-touch")),
        "{enrollment:?}"
    );
    rig.face.stop().await;
    rig.gateway.stop().await;
}

#[tokio::test]
async fn a_device_proving_a_certificate_of_an_untrusted_ca_should_wait_for_an_operator() {
    let dir = tempfile::tempdir().unwrap();
    let (_, identity) = device_credentials();
    let (other_ca, _) = device_credentials();
    let rig = start(dir.path(), identity, &other_ca).await;
    let mut listener = Listener::start().await;
    follow(&rig, &listener).await;
    listener
        .until("/ahu", "LifecycleState", "PendingApproval", |v| {
            v == "PendingApproval"
        })
        .await;
    // Enrollment is answered before the agent returns; wait for the answer to be recorded.
    let identities = Arc::clone(rig.gateway.identities().unwrap());
    let enrollment = identities
        .get("ahu-1")
        .unwrap()
        .unwrap()
        .enrollment
        .unwrap();
    assert_eq!(enrollment.evidence, "certificate");
    assert_eq!(
        enrollment.outcome,
        iotmc_gateway::lifecycle::Outcome::Pending
    );
    assert_ne!(rig.device.value("setpoint"), Some(serde_json::json!(17.5)));
    rig.face.stop().await;
    rig.gateway.stop().await;
}

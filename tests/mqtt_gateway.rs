//! The MQTT adapter inside the gateway: a Tasmota plug configured through `[[mqtt.brokers]]`
//! pulls its firmware from the one-time URL the gateway's HTTP listener offers, and an image the
//! plug refuses leaves it on the version it ran.
#![cfg(feature = "mqtt")]
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use iotmc_adapter::{ActivationMode, ErrorKind, FirmwareImage};
use iotmc_adapter_mqtt::sim::EmbeddedBroker;
use iotmc_adapter_mqtt::sim::tasmota::{PlugOptions, TasmotaPlug};
use iotmc_gateway::adapters::AdapterSet;
use iotmc_gateway::config::Config;
use iotmc_gateway::daemon::Gateway;
use iotmc_gateway::upnp::UpnpFace;
use sha2::{Digest as _, Sha256};

const TOPIC: &str = "tasmota_gateway_e2e";

fn config(dir: &Path, broker: std::net::SocketAddr) -> Config {
    let repository = Path::new(env!("CARGO_MANIFEST_DIR")).join("device-profiles");
    let text = format!(
        r#"
[gateway]
id = "mqtt-e2e"
name = "MQTT end-to-end gateway"
state_dir = "{state}"
profile_dirs = ["{profiles}"]

[listen]
interfaces = ["lo"]
http = "127.0.0.1:0"
https = "127.0.0.1:0"
ssdp_port = 0

[[mqtt.brokers]]
name = "plant"
host = "{host}"
port = {port}
keep_alive = "5s"

[[devices]]
id = "plug-1"
profile = "athom-plug-v2-tasmota"
address = "mqtt://plant/{TOPIC}"
"#,
        state = dir.join("state").display(),
        profiles = repository.display(),
        host = broker.ip(),
        port = broker.port(),
    );
    Config::from_toml(&dir.join("gateway.toml"), &text).unwrap_or_else(|e| panic!("{e:?}"))
}

fn image(header: &str, version: &str) -> (Arc<[u8]>, FirmwareImage) {
    let mut bytes = header.as_bytes().to_vec();
    bytes.extend((0..20_000u32).map(|i| (i % 251) as u8));
    let bytes: Arc<[u8]> = bytes.into();
    let image = FirmwareImage {
        bytes: Arc::clone(&bytes),
        sha256: Sha256::digest(&bytes).into(),
        version: version.to_owned(),
        download_url: None,
    };
    (bytes, image)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tasmota_plug_should_pull_its_firmware_from_the_gateways_one_time_url() {
    let dir = tempfile::tempdir().unwrap();
    let broker = tokio::task::spawn_blocking(EmbeddedBroker::start)
        .await
        .unwrap()
        .unwrap();
    let plug = TasmotaPlug::start(broker.v311_addr(), PlugOptions::new(TOPIC));
    assert!(plug.wait_online(Duration::from_secs(10)).await);
    let config = config(dir.path(), broker.v5_addr());
    let adapters = AdapterSet::for_config(&config).unwrap();
    let gateway = Gateway::start(config, adapters).await.unwrap();
    let face = UpnpFace::start(&gateway).await.unwrap();
    let link = gateway
        .devices()
        .iter()
        .find(|d| d.record.id == "plug-1")
        .and_then(|d| d.link.clone())
        .expect("the plug is attached");
    let target = link
        .firmware()
        .expect("the profile declares url-pull firmware");
    let offers = gateway.image_offers();
    assert_eq!(
        offers.base_url().as_deref(),
        Some(format!("http://{}", face.http_addr()).as_str()),
        "the offer URLs point at the HTTP listener"
    );
    let before = plug.firmware_version();

    // An image the plug cannot boot: the upgrade fails and the plug keeps its version.
    let (bytes, mut bad) = image("no header\n", "13.9.0");
    bad.download_url = Some(offers.offer("plug-1", bytes).unwrap());
    target.stage(&bad, 0, &|_| {}).await.unwrap();
    let err = target
        .activate(ActivationMode::Permanent)
        .await
        .expect_err("an image without a SIMFW header must not be taken");
    assert_eq!(err.kind(), ErrorKind::DeviceRefused, "{err}");
    assert_eq!(plug.firmware_version(), before);
    assert_eq!(offers.open(), 0, "the plug took the offer");

    // A good image: pulled once from the gateway, the plug restarts into it.
    let (bytes, good) = image("SIMFW:13.4.1\n", "13.4.1");
    let url = offers.offer("plug-1", bytes).unwrap();
    let good = FirmwareImage {
        download_url: Some(url.clone()),
        ..good
    };
    target.stage(&good, 0, &|_| {}).await.unwrap();
    target.activate(ActivationMode::Permanent).await.unwrap();
    assert_eq!(plug.firmware_version(), "13.4.1");
    let identity = link.identify().await.unwrap();
    assert!(
        identity
            .firmware_version
            .as_deref()
            .is_some_and(|v| v.starts_with("13.4.1")),
        "{identity:?}"
    );
    assert_eq!(offers.open(), 0);
    assert!(
        offers.take(url.rsplit('/').next().unwrap()).is_none(),
        "the URL served once"
    );

    face.stop().await;
    gateway.stop().await;
}

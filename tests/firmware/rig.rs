//! An in-process gateway for the UPnP end-to-end tests: the simulated Modbus controller
//! (`controller-1`) and the generic MQTT 5 controller (`ahu-1`, on an embedded broker), both in
//! group `hvac` with a 3 s probation, the firmware trust store of a test vendor, HTTPS with the
//! demo PKI, and a GENA listener subscribed to both devices' FirmwareUpdate and to the root
//! device's ManagementController.

use std::path::Path;
use std::time::Duration;

use iotmc_adapter_mqtt::sim::EmbeddedBroker;
use iotmc_adapter_mqtt::sim::generic::{GenericDevice, SimTiming};
use iotmc_gateway::adapters::AdapterSet;
use iotmc_gateway::config::Config;
use iotmc_gateway::daemon::Gateway;
use iotmc_gateway::registry::gateway_udn;
use iotmc_gateway::upnp::UpnpFace;
use iotmc_gateway::upnp::tls::{DemoPki, generate_demo_pki};

use super::control::{Face, Service};
use super::events::Listener;
use super::images::{Imported, SimImage, Vendor};
use super::modbus::Controller;
use super::quote;

/// The Modbus device's id.
pub(crate) const MODBUS_DEVICE: &str = "controller-1";
/// The MQTT device's id.
pub(crate) const MQTT_DEVICE: &str = "ahu-1";
/// The gateway id.
const GATEWAY_ID: &str = "fw-e2e";
/// The GENA callback path of the root device's ManagementController events.
pub(crate) const CONTROLLER_EVENTS: &str = "/events/gateway";

/// The GENA callback path of device `id`'s FirmwareUpdate events.
pub(crate) fn firmware_events(id: &str) -> String {
    format!("/events/{id}/firmware")
}

/// The running gateway, its simulated devices and a control point subscribed to it.
pub(crate) struct Rig {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) vendor: Vendor,
    pub(crate) face: Face,
    pub(crate) events: Listener,
    pub(crate) modbus: Controller,
    pub(crate) mqtt: GenericDevice,
    _broker: EmbeddedBroker,
    gateway: Gateway,
    upnp: UpnpFace,
}

impl std::fmt::Debug for Rig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rig")
            .field("http", &self.face.http)
            .finish_non_exhaustive()
    }
}

fn config(
    dir: &Path,
    vendor: &Vendor,
    modbus: &str,
    broker: std::net::SocketAddr,
) -> (Config, DemoPki) {
    let pki = generate_demo_pki(&dir.join("pki")).unwrap();
    let text = format!(
        r#"
[gateway]
id = "{GATEWAY_ID}"
name = "Firmware end-to-end gateway"
state_dir = {state}
profile_dirs = [{profiles}]

[listen]
interfaces = ["lo"]
http = "127.0.0.1:0"
https = "127.0.0.1:0"
ssdp_port = 0

[trust]
gateway_certificate = {certificate}
gateway_key = {key}
operator_ca = {ca}
firmware_keys = {firmware_keys}

[firmware]
scan_interval = "200ms"
check_interval = "300ms"
test_probation_floor = "1s"

[[mqtt.brokers]]
name = "plant"
host = "{host}"
port = {port}
keep_alive = "5s"

[[groups]]
name = "hvac"

[groups.firmware]
probation = "3s"
emergency_probation = "2s"

[[devices]]
id = "{MODBUS_DEVICE}"
profile = "iotmc-demo-controller"
address = "{modbus}"
group = "hvac"

[[devices]]
id = "{MQTT_DEVICE}"
profile = "iotmc-mqtt5-controller"
address = "mqtt://plant/{MQTT_DEVICE}"
group = "hvac"
"#,
        state = quote(&dir.join("state")),
        profiles = quote(&super::profile_dir()),
        certificate = quote(&pki.server_certificate),
        key = quote(&pki.server_key),
        ca = quote(&pki.ca),
        firmware_keys = quote(&vendor.trust_dir),
        host = broker.ip(),
        port = broker.port(),
    );
    let config =
        Config::from_toml(&dir.join("gateway.toml"), &text).unwrap_or_else(|e| panic!("{e:?}"));
    (config, pki)
}

impl Rig {
    /// Starts the simulators, the gateway and its face, and subscribes to the firmware events
    /// of both devices and of the root device.
    pub(crate) async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let vendor = Vendor::new(dir.path());
        let modbus = Controller::start();
        let broker = tokio::task::spawn_blocking(EmbeddedBroker::start)
            .await
            .unwrap()
            .unwrap();
        let mqtt = GenericDevice::start_with(
            broker.v5_addr(),
            MQTT_DEVICE,
            SimTiming {
                reboot: Duration::from_millis(300),
                // The gateway's probation decides, not the device's own revert.
                confirm_window: Duration::from_secs(600),
                state_interval: Duration::from_secs(1),
            },
        )
        .await
        .unwrap();
        let (config, pki) = config(dir.path(), &vendor, &modbus.address(), broker.v5_addr());
        let adapters = AdapterSet::for_config(&config).unwrap_or_else(|e| panic!("{e:?}"));
        let gateway = Gateway::start(config, adapters)
            .await
            .unwrap_or_else(|e| panic!("{e:?}"));
        let upnp = UpnpFace::start(&gateway)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let face = Face::new(upnp.http_addr(), upnp.https_addr().unwrap(), &pki);
        let events = Listener::start().await;
        let rig = Self {
            dir,
            vendor,
            face,
            events,
            modbus,
            mqtt,
            _broker: broker,
            gateway,
            upnp,
        };
        for id in [MODBUS_DEVICE, MQTT_DEVICE] {
            let service = rig.firmware(id).await;
            rig.events
                .subscribe(rig.face.http, &service.event, &firmware_events(id))
                .await;
        }
        let controller = rig.controller().await;
        rig.events
            .subscribe(rig.face.http, &controller.event, CONTROLLER_EVENTS)
            .await;
        rig
    }

    /// The UDN of device `id`, from the root device's inventory.
    pub(crate) async fn udn(&self, id: &str) -> uuid::Uuid {
        let inventory = self.face.inventory(gateway_udn(GATEWAY_ID)).await;
        *inventory
            .get(id)
            .unwrap_or_else(|| panic!("no {id} in the inventory: {inventory:?}"))
    }

    /// Device `id`'s FirmwareUpdate service.
    pub(crate) async fn firmware(&self, id: &str) -> Service {
        self.face
            .service(self.udn(id).await, &super::firmware_update_type())
            .await
    }

    /// The root device's ManagementController service.
    pub(crate) async fn controller(&self) -> Service {
        self.face
            .service(
                gateway_udn(GATEWAY_ID),
                &super::management_controller_type(),
            )
            .await
    }

    /// Signs and imports `image` into the running gateway's store.
    pub(crate) fn import(&self, image: &SimImage) -> Imported {
        self.vendor.import(&self.dir.path().join("state"), image)
    }

    /// Waits for device `id`'s FirmwareAvailable to offer `image`.
    pub(crate) async fn await_offer(&mut self, id: &str, image: &Imported) -> String {
        let expected = image.available();
        self.events
            .until(
                &firmware_events(id),
                "FirmwareAvailable",
                &format!("{} offered to {id}", image.version),
                |v| v == expected || v.strip_suffix(",emergency") == Some(expected.as_str()),
            )
            .await
    }

    /// The version device `id`'s simulator runs.
    pub(crate) fn running(&self, id: &str) -> String {
        match id {
            MODBUS_DEVICE => self.modbus.sim().running_version(),
            MQTT_DEVICE => self.mqtt.running_version(),
            other => panic!("no simulated device {other}"),
        }
    }

    /// Stops the face, then the gateway.
    pub(crate) async fn stop(self) {
        self.upnp.stop().await;
        self.gateway.stop().await;
    }
}

//! The demo's simulated MQTT devices, on an embedded broker (rumqttd on loopback) or on one the
//! user names with `--mqtt-broker`: a Tasmota plug (MQTT 3.1.1, like real Tasmota), a Homie 5
//! thermostat, and a generic MQTT 5 air-handling unit controller with request/response, two
//! firmware banks and a log. They speak the real wire protocol to the gateway's MQTT adapter
//! through the broker.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context as _;
use iotmc_adapter_mqtt::BrokerSettings;
use iotmc_adapter_mqtt::sim::EmbeddedBroker;
use iotmc_adapter_mqtt::sim::generic::GenericDevice;
use iotmc_adapter_mqtt::sim::homie::HomieThermostat;
use iotmc_adapter_mqtt::sim::tasmota::{PlugOptions, TasmotaPlug};

use super::ConfiguredDevice;

/// A profile the demo simulates: `(file name, text)`.
pub(super) const PROFILES: [(&str, &str); 3] = [
    (
        "tasmota-plug.toml",
        include_str!("../../device-profiles/mqtt/tasmota-plug.toml"),
    ),
    (
        "homie-thermostat.toml",
        include_str!("../../device-profiles/mqtt/homie-thermostat.toml"),
    ),
    (
        "iotmc-mqtt5-controller.toml",
        include_str!("../../device-profiles/mqtt/iotmc-mqtt5-controller.toml"),
    ),
];

/// The broker's name in the demo config.
const BROKER: &str = "demo";

/// The running simulators (and the embedded broker, unless an external one is used).
#[derive(Debug)]
pub(super) struct Simulators {
    /// Where the gateway and the MQTT 5 devices connect.
    pub(super) broker_v5: SocketAddr,
    /// Where the MQTT 3.1.1 devices connect (the same as `broker_v5` on an external broker).
    pub(super) broker_v311: SocketAddr,
    /// Whether the broker is the embedded one.
    pub(super) embedded: bool,
    plug: TasmotaPlug,
    thermostat: HomieThermostat,
    controller: GenericDevice,
    pub(super) devices: Vec<ConfiguredDevice>,
}

impl Simulators {
    /// Each simulated device writes a line to its own log, as real ones do in normal
    /// operation: the plug and the Homie thermostat publish theirs (the gateway keeps what it
    /// receives while subscribed), the AHU keeps it for the gateway to fetch.
    pub(super) fn log_activity(&self, step: u64) {
        use iotmc_adapter::Severity::Informational;
        use iotmc_adapter::testkit::SimulatedDevice as _;
        self.plug
            .append_log(Informational, &format!("energy counters saved ({step})"));
        self.thermostat
            .append_log(Informational, &format!("temperature sampled ({step})"));
        self.controller
            .append_log(Informational, &format!("filter pressure sampled ({step})"));
    }

    /// The broker connection of the demo's gateway.
    pub(super) fn broker_settings(&self) -> BrokerSettings {
        BrokerSettings::plain(
            BROKER,
            &self.broker_v5.ip().to_string(),
            self.broker_v5.port(),
            "iotmc-demo",
        )
    }

    /// The `[[mqtt.brokers]]` table of the demo config.
    pub(super) fn config_table(&self) -> String {
        format!(
            "[[mqtt.brokers]]\nname = \"{BROKER}\"\nhost = \"{}\"\nport = {}\nclient_id = \"iotmc-demo\"\n",
            self.broker_v5.ip(),
            self.broker_v5.port()
        )
    }
}

/// Starts the broker (unless `external` is given) and the simulated devices.
pub(super) async fn start(external: Option<&str>) -> anyhow::Result<Simulators> {
    let (broker_v5, broker_v311, embedded) = match external {
        Some(addr) => {
            let addr = tokio::net::lookup_host(addr)
                .await
                .with_context(|| format!("--mqtt-broker {addr}: cannot resolve it"))?
                .next()
                .with_context(|| format!("--mqtt-broker {addr}: no address"))?;
            (addr, addr, false)
        }
        None => {
            let broker = tokio::task::spawn_blocking(EmbeddedBroker::start)
                .await
                .context("the embedded MQTT broker's start task failed")?
                .context("the embedded MQTT broker could not start")?;
            (broker.v5_addr(), broker.v311_addr(), true)
        }
    };
    // Telemetry every 10 s: often enough to watch the power change, and at MqttLog 2 each
    // message is also a line of the plug's own log, which must not crowd out the rest.
    let plug = TasmotaPlug::start(
        broker_v311,
        PlugOptions {
            tele_interval: Duration::from_secs(10),
            ..PlugOptions::new("tasmota_demo_plug")
        },
    );
    let thermostat = HomieThermostat::start(broker_v311, "thermostat-demo");
    // The gateway's probation (24 h by default), not the simulated device, decides whether a
    // test image is kept.
    let timing = iotmc_adapter_mqtt::sim::generic::SimTiming {
        confirm_window: DEMO_CONFIRM_WINDOW,
        ..Default::default()
    };
    let controller = GenericDevice::start_with(broker_v5, "ahu-5", timing)
        .await
        .context("the simulated MQTT 5 controller could not start")?;
    let devices = vec![
        ConfiguredDevice {
            id: "plug-1".into(),
            name: "Fan plug (Tasmota)".into(),
            profile: "athom-plug-v2-tasmota".into(),
            address: format!("mqtt://{BROKER}/tasmota_demo_plug"),
        },
        ConfiguredDevice {
            id: "thermostat-2".into(),
            name: "Room thermostat (Homie)".into(),
            profile: "homie-thermostat".into(),
            address: format!("mqtt://{BROKER}/thermostat-demo"),
        },
        ConfiguredDevice {
            id: "ahu-5".into(),
            name: "AHU controller (MQTT 5)".into(),
            profile: "iotmc-mqtt5-controller".into(),
            address: format!("mqtt://{BROKER}/ahu-5"),
        },
    ];
    Ok(Simulators {
        broker_v5,
        broker_v311,
        embedded,
        plug,
        thermostat,
        controller,
        devices,
    })
}

/// How long the demo's two-bank simulators keep an unconfirmed test image: longer than the
/// longest probation the gateway allows.
pub(super) const DEMO_CONFIRM_WINDOW: Duration = Duration::from_secs(31 * 24 * 3600);

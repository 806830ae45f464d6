//! The demo's simulated Modbus devices: the two-bank demo controller on a Modbus TCP server on
//! loopback, and an Eastron SDM120 energy meter on a Modbus RTU line (a pty pair standing in for
//! an RS-485 adapter), both speaking the real wire protocol to the gateway's Modbus adapter.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use iotmc_adapter::Profile;
use iotmc_adapter_modbus::profile::load_section;
use iotmc_adapter_modbus::sim::{RtuServer, SimDevice, SimIdentity, TcpServer, Unit, open_pty};

/// A profile the demo simulates: `(file name, text)`.
pub(super) const PROFILES: [(&str, &str); 2] = [
    (
        "iotmc-demo-controller.toml",
        include_str!("../../device-profiles/modbus/iotmc-demo-controller.toml"),
    ),
    (
        "eastron-sdm120.toml",
        include_str!("../../device-profiles/modbus/eastron-sdm120.toml"),
    ),
];

/// One simulated Modbus device as the demo config lists it.
#[derive(Debug, Clone)]
pub(super) struct DemoDevice {
    pub(super) id: &'static str,
    pub(super) name: &'static str,
    pub(super) profile: String,
    pub(super) address: String,
}

/// The running simulators; dropping them stops them.
#[derive(Debug)]
pub(super) struct Simulators {
    tcp: TcpServer,
    rtu: Option<(RtuServer, String)>,
    pub(super) devices: Vec<DemoDevice>,
    pub(super) controller: SimDevice,
}

impl Simulators {
    /// Where the Modbus TCP simulator listens.
    pub(super) fn tcp_addr(&self) -> SocketAddr {
        self.tcp.local_addr()
    }

    /// The pty the RTU simulator answers on, if it could be opened.
    pub(super) fn rtu_port(&self) -> Option<&str> {
        self.rtu.as_ref().map(|(_, path)| path.as_str())
    }
}

fn simulated(index: usize, unit: u8, serial: &str) -> anyhow::Result<(Arc<Profile>, SimDevice)> {
    let (file, text) = PROFILES[index];
    let profile = Arc::new(
        Profile::from_toml(Path::new(file), text)
            .map_err(|e| anyhow::anyhow!("built-in profile {file}: {e:?}"))?,
    );
    let section =
        load_section(&profile).map_err(|e| anyhow::anyhow!("built-in profile {file}: {e:?}"))?;
    let device = SimDevice::new(
        Arc::clone(&profile),
        section,
        unit,
        SimIdentity {
            vendor: profile.manufacturer.clone(),
            product_code: profile.model.clone(),
            revision: "1.0.0".into(),
            model_name: profile.model.clone(),
            serial: Some(serial.to_owned()),
        },
    )
    .with_reboot_time(Duration::from_secs(3))
    // The gateway's probation, not the simulated device, decides whether a test image is kept.
    .with_confirm_window(Duration::from_secs(31 * 24 * 3600));
    Ok((profile, device))
}

/// Starts the simulators on loopback (TCP) and a pty (RTU; left out where no pty can be
/// opened).
pub(super) async fn start() -> anyhow::Result<Simulators> {
    let (controller_profile, controller) = simulated(0, 1, "DC-000001")?;
    // The controller's own event log starts with its boot, as a real one's does (code 1 of its
    // profile's log codes: "power on").
    controller.append_log(iotmc_adapter::Severity::Informational, 1, "");
    let tcp = TcpServer::bind(
        SocketAddr::from(([127, 0, 0, 1], 0)),
        vec![Arc::new(controller.clone()) as Arc<dyn Unit>],
    )
    .context("cannot start the Modbus TCP simulator on 127.0.0.1")?;
    let mut devices = vec![DemoDevice {
        id: "controller-1",
        name: "Demo controller (Modbus TCP)",
        profile: controller_profile.id.clone(),
        address: format!("tcp://{}?unit=1", tcp.local_addr()),
    }];
    let rtu = match open_pty() {
        Ok((master, path)) => {
            let (meter_profile, meter) = simulated(1, 5, "SDM-000042")?;
            let server = RtuServer::spawn(
                master,
                vec![Arc::new(meter) as Arc<dyn Unit>],
                Duration::from_micros(1750),
            );
            devices.push(DemoDevice {
                id: "meter-1",
                name: "Energy meter (Modbus RTU)",
                profile: meter_profile.id.clone(),
                address: format!("rtu://{path}?baud=9600&parity=none&unit=5"),
            });
            Some((server, path))
        }
        Err(e) => {
            tracing::warn!(error = %e, "no pty for the Modbus RTU simulator; the demo serves Modbus TCP only");
            None
        }
    };
    Ok(Simulators {
        tcp,
        rtu,
        devices,
        controller,
    })
}

/// The controller's supply temperature drifts between 40 and 50 °C, 0.5 °C per `every`: a change
/// at the device that the gateway finds by polling and events to subscribers.
pub(super) async fn drift(controller: SimDevice, every: Duration) {
    let mut tick = tokio::time::interval(every.max(Duration::from_millis(100)));
    tick.tick().await;
    let mut step = 0u32;
    loop {
        tick.tick().await;
        step = step.wrapping_add(1);
        let phase = f64::from(step % 40);
        let half_degrees = if phase < 20.0 { phase } else { 40.0 - phase };
        if let Err(e) = controller.set_value(
            "supply_temperature",
            iotmc_adapter::Value::Float(40.0 + half_degrees / 2.0),
        ) {
            tracing::warn!(error = %e, "the simulated controller refused a temperature");
        }
    }
}

//! The simulated two-bank Modbus controller (`iotmc-demo-controller`) on a Modbus TCP server on
//! 127.0.0.1:0, counting the image bytes it receives in Write File Record requests.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use iotmc_adapter::Profile;
use iotmc_adapter_modbus::frame::{Request, Response};
use iotmc_adapter_modbus::profile::load_section;
use iotmc_adapter_modbus::sim::{Reply, SimDevice, SimIdentity, TcpServer, Unit};

/// The version the simulated controller starts with.
pub(crate) const INITIAL_VERSION: &str = "1.0.0";

/// The controller's boot state register (0 confirmed, 1 testing), from its profile.
const BOOT_STATE: u16 = 0x0305;

/// Bytes of one Write File Record request of this profile (122 registers).
pub(crate) const CHUNK: u64 = 244;

/// The simulated device, with a count of the image bytes written to it.
#[derive(Debug)]
struct Counting {
    sim: SimDevice,
    image_bytes: AtomicU64,
}

impl Unit for Counting {
    fn unit(&self) -> u8 {
        self.sim.unit()
    }

    fn reply(&self, request: &Request) -> Reply {
        if let Request::WriteFileRecord(records) = request {
            let bytes: usize = records.iter().map(|r| 2 * r.data.len()).sum();
            self.image_bytes.fetch_add(bytes as u64, Ordering::SeqCst);
        }
        self.sim.reply(request)
    }
}

/// A running simulated controller; the server stops when this is dropped.
#[derive(Debug)]
pub(crate) struct Controller {
    unit: Arc<Counting>,
    server: TcpServer,
}

impl Controller {
    /// Starts the controller: reboots take 1 s, and a test image reverts on its own only after
    /// ten minutes, so the gateway's probation decides.
    pub(crate) fn start() -> Self {
        let path = super::profile_dir().join("modbus/iotmc-demo-controller.toml");
        let text = std::fs::read_to_string(&path).unwrap();
        let profile =
            Arc::new(Profile::from_toml(&path, &text).unwrap_or_else(|e| panic!("{e:?}")));
        let section = load_section(&profile).unwrap_or_else(|e| panic!("{e:?}"));
        let sim = SimDevice::new(
            Arc::clone(&profile),
            section,
            1,
            SimIdentity {
                vendor: profile.manufacturer.clone(),
                product_code: profile.model.clone(),
                revision: INITIAL_VERSION.into(),
                model_name: profile.model.clone(),
                serial: Some("DC-E2E-0001".into()),
            },
        )
        .with_reboot_time(Duration::from_secs(1))
        .with_confirm_window(Duration::from_secs(600));
        let unit = Arc::new(Counting {
            sim,
            image_bytes: AtomicU64::new(0),
        });
        let server = TcpServer::bind(
            SocketAddr::from(([127, 0, 0, 1], 0)),
            vec![Arc::clone(&unit) as Arc<dyn Unit>],
        )
        .unwrap();
        Self { unit, server }
    }

    /// The device's address in the gateway config.
    pub(crate) fn address(&self) -> String {
        format!("tcp://{}?unit=1", self.server.local_addr())
    }

    /// The simulated device (faults, running version, active bank).
    pub(crate) fn sim(&self) -> &SimDevice {
        &self.unit.sim
    }

    /// Image bytes received so far, over every transfer.
    pub(crate) fn image_bytes(&self) -> u64 {
        self.unit.image_bytes.load(Ordering::SeqCst)
    }

    /// Whether the running image is confirmed (false: a test image on probation), read from
    /// the boot state register; None while the device restarts.
    pub(crate) fn confirmed(&self) -> Option<bool> {
        let request = Request::ReadHoldingRegisters {
            address: BOOT_STATE,
            count: 1,
        };
        match self.unit.sim.reply(&request) {
            Reply::Answer(Ok(Response::ReadHoldingRegisters(words)))
            | Reply::Delayed(_, Ok(Response::ReadHoldingRegisters(words))) => Some(words == [0]),
            _ => None,
        }
    }
}

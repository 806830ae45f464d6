//! The Modbus [`Adapter`]: checks profiles and addresses, and attaches devices to the driver
//! of their bus, starting it with the first device and stopping it after the last.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};

use async_trait::async_trait;
use iotmc_adapter::{
    Adapter, DeviceBinding, DeviceLink, LinkError, LocatedError, Profile, Resource,
};

use crate::address::{Address, BusKey, LineSettings};
use crate::codec::rtu;
use crate::driver::{BusHandle, Framing, SerialConnector, TcpConnector, WeakBusHandle};
use crate::link::ModbusLink;
use crate::profile::{ModbusSection, load_section};

/// The Modbus adapter.
#[derive(Debug, Default)]
pub struct ModbusAdapter {
    buses: RwLock<HashMap<BusKey, Bus>>,
}

#[derive(Debug)]
struct Bus {
    handle: WeakBusHandle,
    /// Serial buses: the line settings the port was opened with, and by which device.
    line: Option<(LineSettings, String)>,
}

impl ModbusAdapter {
    /// An adapter with no buses open yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// The driver of the bus `address` is on: the running one, or a new one.
    fn bus(&self, device_id: &str, address: &Address) -> Result<BusHandle, LinkError> {
        let key = address.bus();
        let mut buses = self.buses.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(bus) = buses.get(&key)
            && let Some(handle) = bus.handle.upgrade()
        {
            if let (Address::Rtu { line, .. }, Some((open, by))) = (address, &bus.line)
                && line != open
            {
                return Err(LinkError::Unsupported {
                    operation: format!("attaching device `{device_id}` on {key}"),
                    reason: format!(
                        "the port is already open with `{open}` for device `{by}`, and this device asks for `{line}`; every device on one RS-485 bus must use the same line settings"
                    ),
                });
            }
            return Ok(handle);
        }
        let (handle, line) = match address {
            Address::Tcp { .. } => {
                let endpoint = match &key {
                    BusKey::Tcp(endpoint) | BusKey::Serial(endpoint) => endpoint.clone(),
                };
                (
                    BusHandle::spawn(key.clone(), Framing::Tcp, TcpConnector::new(endpoint)),
                    None,
                )
            }
            Address::Rtu { port, line, .. } => {
                let silence = rtu::frame_silence(line.baud, line.bits_per_char());
                (
                    BusHandle::spawn(
                        key.clone(),
                        Framing::Rtu { silence },
                        SerialConnector::new(port.clone(), *line),
                    ),
                    Some((*line, device_id.to_owned())),
                )
            }
        };
        buses.insert(
            key,
            Bus {
                handle: handle.downgrade(),
                line,
            },
        );
        Ok(handle)
    }
}

#[async_trait]
impl Adapter for ModbusAdapter {
    fn protocol(&self) -> &'static str {
        "modbus"
    }

    fn validate_profile(&self, profile: &Profile) -> Result<(), Vec<LocatedError>> {
        load_section(profile).map(|_| ())
    }

    fn profile_section_schema(&self) -> schemars::Schema {
        schemars::schema_for!(ModbusSection)
    }

    fn validate_address(&self, address: &str) -> Result<(), String> {
        address.parse::<Address>().map(|_| ())
    }

    fn resources(&self, address: &str) -> Vec<Resource> {
        match address.parse::<Address>() {
            Ok(Address::Rtu { port, .. }) => vec![Resource::SerialPort(port)],
            Ok(Address::Tcp { .. }) | Err(_) => Vec::new(),
        }
    }

    async fn attach(&self, binding: &DeviceBinding) -> Result<Arc<dyn DeviceLink>, LinkError> {
        let address: Address = binding
            .address
            .parse()
            .map_err(|e| LinkError::Unsupported {
                operation: format!("attaching device `{}`", binding.device_id),
                reason: format!("{:?} is not a Modbus address: {e}", binding.address),
            })?;
        let section = load_section(&binding.profile).map_err(|errors| {
            LinkError::invalid_profile(&binding.device_id, &binding.profile.id, &errors)
        })?;
        let bus = self.bus(&binding.device_id, &address)?;
        tracing::info!(device = %binding.device_id, bus = %bus.bus(), unit = address.unit(), "attached");
        Ok(Arc::new(ModbusLink::new(
            binding.device_id.clone(),
            Arc::clone(&binding.profile),
            Arc::new(section),
            bus,
            address.unit(),
        )))
    }
}

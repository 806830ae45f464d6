//! The device link of one Modbus device: reads, writes, identification, actions, background
//! polling with change detection and availability, and (where the profile declares them) a
//! firmware target and a log source.

mod action;
mod firmware;
mod identify;
mod logs;
mod ops;
mod poll;

use std::sync::Arc;

use async_trait::async_trait;
use iotmc_adapter::{
    ActionOutcome, ActionRequest, DeviceLink, FirmwareTarget, Identity, LinkError, LinkEvent,
    LogSource, Profile, Readings,
};
use tokio::sync::broadcast;
use tokio::task::AbortHandle;

use crate::driver::{BusHandle, Priority};
use crate::profile::ModbusSection;

pub use firmware::FileRecordFirmware;
pub use logs::DeviceLog;
pub(crate) use ops::Device;

/// Link events a subscriber may fall behind by before it loses the oldest.
const EVENT_BUFFER: usize = 64;

/// One attached Modbus device.
#[derive(Debug)]
pub struct ModbusLink {
    device: Arc<Device>,
    events: broadcast::Sender<LinkEvent>,
    poller: AbortHandle,
    firmware: Option<FileRecordFirmware>,
    logs: Option<DeviceLog>,
}

impl ModbusLink {
    /// A link to unit `unit` on `bus`, polling in the background at the profile's interval.
    /// `section` must have been checked against `profile` ([`crate::profile::load_section`]).
    pub fn new(
        device_id: impl Into<String>,
        profile: Arc<Profile>,
        section: Arc<ModbusSection>,
        bus: BusHandle,
        unit: u8,
    ) -> Self {
        let device = Arc::new(Device::new(device_id.into(), profile, section, bus, unit));
        let (events, _) = broadcast::channel(EVENT_BUFFER);
        let poller = poll::spawn(Arc::clone(&device), events.clone());
        let firmware = FileRecordFirmware::new(Arc::clone(&device));
        let logs = DeviceLog::new(Arc::clone(&device));
        Self {
            device,
            events,
            poller,
            firmware,
            logs,
        }
    }
}

impl Drop for ModbusLink {
    fn drop(&mut self) {
        self.poller.abort();
    }
}

#[async_trait]
impl DeviceLink for ModbusLink {
    async fn identify(&self) -> Result<Identity, LinkError> {
        identify::identify(&self.device).await
    }

    async fn read(&self, names: &[String]) -> Result<Readings, LinkError> {
        self.device.profile.check_read(names)?;
        self.device
            .read_parameters(names, Priority::Management)
            .await
    }

    async fn write(&self, values: &Readings) -> Result<(), LinkError> {
        let values = self.device.profile.check_write(values)?;
        self.device.write_parameters(&values).await
    }

    async fn invoke(&self, action: &ActionRequest) -> Result<ActionOutcome, LinkError> {
        action::invoke(&self.device, action).await
    }

    fn events(&self) -> broadcast::Receiver<LinkEvent> {
        self.events.subscribe()
    }

    fn firmware(&self) -> Option<&dyn FirmwareTarget> {
        self.firmware.as_ref().map(|f| f as &dyn FirmwareTarget)
    }

    fn logs(&self) -> Option<&dyn LogSource> {
        self.logs.as_ref().map(|l| l as &dyn LogSource)
    }
}

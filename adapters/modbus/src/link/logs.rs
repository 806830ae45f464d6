//! The device's own event log (a register ring or file records), and on RTU the serial-line
//! diagnostics (FC 0x0C comm event log, FC 0x08 counters), as log records.

use std::sync::Arc;

use super::Device;

/// The log source of a device whose profile declares a log method.
#[derive(Debug)]
pub struct DeviceLog {
    device: Arc<Device>,
}

impl DeviceLog {
    /// The log source, if the profile declares one.
    pub(crate) fn new(device: Arc<Device>) -> Option<Self> {
        device
            .profile
            .logs
            .is_supported()
            .then_some(Self { device })
    }
}

#[async_trait::async_trait]
impl iotmc_adapter::LogSource for DeviceLog {
    async fn fetch(
        &self,
        since: Option<iotmc_adapter::LogCursor>,
    ) -> Result<iotmc_adapter::LogBatch, iotmc_adapter::LinkError> {
        let _ = since;
        todo!("logs: fetch from {}", self.device.device_id)
    }

    async fn clear(&self) -> Result<(), iotmc_adapter::LinkError> {
        todo!("logs: clear")
    }
}

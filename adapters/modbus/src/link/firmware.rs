//! Firmware by file records (FC 0x15), verified by read-back (FC 0x14) or a device-side digest,
//! with bank handling through profile-declared registers.

use std::sync::Arc;

use super::Device;

/// The firmware target of a device whose profile declares `firmware.method = "file-record"`.
#[derive(Debug)]
pub struct FileRecordFirmware {
    device: Arc<Device>,
}

impl FileRecordFirmware {
    /// The target, if the profile declares one.
    pub(crate) fn new(device: Arc<Device>) -> Option<Self> {
        device.section.firmware.as_ref()?;
        Some(Self { device })
    }
}

#[async_trait::async_trait]
impl iotmc_adapter::FirmwareTarget for FileRecordFirmware {
    fn capabilities(&self) -> iotmc_adapter::FirmwareCapabilities {
        todo!("firmware: capabilities of {}", self.device.device_id)
    }

    async fn banks(&self) -> Result<Vec<iotmc_adapter::BankInfo>, iotmc_adapter::LinkError> {
        todo!("firmware: banks")
    }

    async fn stage(
        &self,
        image: &iotmc_adapter::FirmwareImage,
        from_offset: u64,
        progress: &(dyn Fn(iotmc_adapter::StageProgress) + Send + Sync),
    ) -> Result<iotmc_adapter::StageOutcome, iotmc_adapter::LinkError> {
        let _ = (image, from_offset, progress);
        todo!("firmware: stage")
    }

    async fn activate(
        &self,
        mode: iotmc_adapter::ActivationMode,
    ) -> Result<(), iotmc_adapter::LinkError> {
        let _ = mode;
        todo!("firmware: activate")
    }

    async fn confirm(&self) -> Result<(), iotmc_adapter::LinkError> {
        todo!("firmware: confirm")
    }

    async fn revert(&self) -> Result<(), iotmc_adapter::LinkError> {
        todo!("firmware: revert")
    }
}

//! Firmware transfer and bank handling: the mechanism the firmware engine drives.

use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;

use crate::LinkError;

/// What a device's firmware mechanism can do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FirmwareCapabilities {
    /// The device has two banks and can run a new image in test mode, keeping the old one.
    pub dual_bank: bool,
    /// An image activated in test mode must be confirmed, or the device reverts on its own.
    pub confirm_required: bool,
    /// A transfer can resume from the last acknowledged offset.
    pub resumable: bool,
    /// Largest image the device accepts, in bytes.
    pub max_image_size: u64,
    /// The chunk size the transfer works best with, in bytes.
    pub preferred_chunk: u32,
}

/// One firmware bank (slot) of a device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BankInfo {
    /// Slot number as the device numbers it.
    pub slot: u8,
    /// Version of the image in the slot, if any.
    pub version: Option<String>,
    /// The device runs this slot now.
    pub active: bool,
    /// The image in this slot has been confirmed (will be kept across reboots).
    pub confirmed: bool,
    /// The device will boot this slot next (test or permanent).
    pub pending: bool,
}

/// A verified firmware image, ready to move to a device.
///
/// The core has checked signature, target and SHA-256 before it builds one of these.
#[derive(Debug, Clone)]
pub struct FirmwareImage {
    /// The whole image.
    pub bytes: Arc<[u8]>,
    /// SHA-256 of `bytes`.
    pub sha256: [u8; 32],
    /// Version the image declares.
    pub version: String,
    /// For devices that pull their image (e.g. Tasmota `OtaUrl`): a one-time URL on the
    /// gateway's own server where the image is offered.
    pub download_url: Option<String>,
}

/// Progress of a transfer: every byte before `acknowledged` is on the device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StageProgress {
    /// Bytes the device has acknowledged, from the start of the image.
    pub acknowledged: u64,
    /// Size of the image.
    pub total: u64,
}

/// How a transfer ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageOutcome {
    /// Bytes transferred in this call (less than the image when resumed).
    pub transferred: u64,
    /// The device verified the image itself (hash or CRC read-back), as opposed to the
    /// gateway's SHA-256 check alone.
    pub verified_on_device: bool,
}

/// How to activate a staged image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActivationMode {
    /// Boot the new image once; the device reverts unless it is confirmed.
    Test,
    /// Boot the new image and keep it.
    Permanent,
}

/// The firmware mechanism of one device.
#[async_trait]
pub trait FirmwareTarget: Send + Sync + Debug {
    /// What the mechanism can do.
    fn capabilities(&self) -> FirmwareCapabilities;

    /// The device's banks. Single-bank devices report one.
    async fn banks(&self) -> Result<Vec<BankInfo>, LinkError>;

    /// Transfers `image` from `from_offset` (0, or a previously acknowledged offset), calling
    /// `progress` each time the device acknowledges more.
    async fn stage(
        &self,
        image: &FirmwareImage,
        from_offset: u64,
        progress: &(dyn Fn(StageProgress) + Send + Sync),
    ) -> Result<StageOutcome, LinkError>;

    /// Activates the staged image (the device usually reboots).
    async fn activate(&self, mode: ActivationMode) -> Result<(), LinkError>;

    /// Confirms the running test image so the device keeps it.
    async fn confirm(&self) -> Result<(), LinkError>;

    /// Returns the device to its previous image.
    async fn revert(&self) -> Result<(), LinkError>;
}

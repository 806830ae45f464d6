//! Why the engine refused a request. Each refusal says which device or image, what is wrong and
//! what to do; [`EngineError::code`] is the UPnP error code it is answered with (README.md, "UPnP
//! error codes").

use super::super::machine::CancelError;

/// A refused firmware request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EngineError {
    /// The caller named something that does not exist or cannot be parsed.
    #[error("{0}")]
    InvalidArgument(String),
    /// The device cannot take firmware through the gateway.
    #[error("{0}")]
    NotSupported(String),
    /// No image to install: none on offer, or the named one is not in the store.
    #[error("{0}")]
    NoImage(String),
    /// The image is not for this device (target profile, size, hardware, bootloader).
    #[error("{0}")]
    WrongTarget(String),
    /// An update of the device is under way.
    #[error("{0}")]
    Busy(String),
    /// A failed update could not be undone, so the gateway does not start one.
    #[error("{0}")]
    NoRollback(String),
    /// No such update or campaign.
    #[error("{0}")]
    NotFound(String),
    /// The update can no longer be cancelled.
    #[error(transparent)]
    Cancel(#[from] CancelError),
    /// The campaign is not in a state that allows this.
    #[error("{0}")]
    CampaignState(String),
    /// The gateway could not persist the request.
    #[error("{0}")]
    Storage(String),
}

/// 712: no image to install.
pub const NO_IMAGE: u16 = 712;
/// 713: the image is not for this device.
pub const WRONG_TARGET: u16 = 713;
/// 714: an update is under way.
pub const UPDATE_IN_PROGRESS: u16 = 714;
/// 715: a failed update could not be rolled back.
pub const NO_ROLLBACK: u16 = 715;
/// 716: no such update or campaign.
pub const NO_SUCH_UPDATE: u16 = 716;
/// 717: too late to cancel, or the campaign's state does not allow it.
pub const NOT_NOW: u16 = 717;

impl EngineError {
    /// The UPnP error code.
    pub fn code(&self) -> u16 {
        match self {
            Self::InvalidArgument(_) => 600,
            Self::NotSupported(_) => 602,
            Self::NoImage(_) => NO_IMAGE,
            Self::WrongTarget(_) => WRONG_TARGET,
            Self::Busy(_) => UPDATE_IN_PROGRESS,
            Self::NoRollback(_) => NO_ROLLBACK,
            Self::NotFound(_) => NO_SUCH_UPDATE,
            Self::Cancel(_) | Self::CampaignState(_) => NOT_NOW,
            Self::Storage(_) => 501,
        }
    }
}

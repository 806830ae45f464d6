//! The homie link. (Filled in by the homie dialect.)

use std::sync::Arc;

use iotmc_adapter::{DeviceLink, LinkError};

use super::LinkContext;

/// A device speaking homie.
#[derive(Debug)]
pub struct HomieLink {}

impl HomieLink {
    /// Attaches the device.
    pub async fn attach(context: LinkContext) -> Result<Arc<dyn DeviceLink>, LinkError> {
        let _ = context;
        Err(LinkError::Unsupported {
            operation: "attach".into(),
            reason: "the homie dialect is not built yet".into(),
        })
    }
}

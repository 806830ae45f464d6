//! The generic link. (Filled in by the generic dialect.)

use std::sync::Arc;

use iotmc_adapter::{DeviceLink, LinkError};

use super::LinkContext;

/// A device speaking generic.
#[derive(Debug)]
pub struct GenericLink {}

impl GenericLink {
    /// Attaches the device.
    pub async fn attach(context: LinkContext) -> Result<Arc<dyn DeviceLink>, LinkError> {
        let _ = context;
        Err(LinkError::Unsupported {
            operation: "attach".into(),
            reason: "the generic dialect is not built yet".into(),
        })
    }
}

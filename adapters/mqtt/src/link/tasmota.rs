//! The tasmota link. (Filled in by the tasmota dialect.)

use std::sync::Arc;

use iotmc_adapter::{DeviceLink, LinkError};

use super::LinkContext;

/// A device speaking tasmota.
#[derive(Debug)]
pub struct TasmotaLink {}

impl TasmotaLink {
    /// Attaches the device.
    pub async fn attach(context: LinkContext) -> Result<Arc<dyn DeviceLink>, LinkError> {
        let _ = context;
        Err(LinkError::Unsupported {
            operation: "attach".into(),
            reason: "the tasmota dialect is not built yet".into(),
        })
    }
}

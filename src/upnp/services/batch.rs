//! BatchSetValues on the gateway's root device: one ParameterValueList written to many devices.

use super::{Caller, FaceState};
use crate::upnp::soap::UpnpError;

/// BatchSetValues(BatchId, Targets, ParameterValueList, MaxConcurrent) -> Results.
pub(super) async fn batch_set_values(
    _state: &FaceState,
    _args: &[&str],
    _caller: &Caller,
) -> Result<Vec<(&'static str, String)>, UpnpError> {
    Err(UpnpError::not_implemented(
        "ManagementController#BatchSetValues is declared but not served yet",
    ))
}

//! `[mqtt.tasmota]`: the tasmota mapping. (Filled in by the tasmota dialect.)

use iotmc_adapter::{LocatedError, Profile};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The `[mqtt.tasmota]` table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TasmotaSection {}

/// Checks what serde cannot; every error located at its field.
pub(crate) fn check(profile: &Profile, section: &TasmotaSection) -> Vec<LocatedError> {
    let _ = (profile, section);
    Vec::new()
}

//! `[mqtt.homie]`: the homie mapping. (Filled in by the homie dialect.)

use iotmc_adapter::{LocatedError, Profile};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The `[mqtt.homie]` table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HomieSection {}

/// Checks what serde cannot; every error located at its field.
pub(crate) fn check(profile: &Profile, section: &HomieSection) -> Vec<LocatedError> {
    let _ = (profile, section);
    Vec::new()
}

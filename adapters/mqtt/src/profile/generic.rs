//! `[mqtt.generic]`: the generic mapping. (Filled in by the generic dialect.)

use iotmc_adapter::{LocatedError, Profile};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The `[mqtt.generic]` table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GenericSection {}

/// Checks what serde cannot; every error located at its field.
pub(crate) fn check(profile: &Profile, section: &GenericSection) -> Vec<LocatedError> {
    let _ = (profile, section);
    Vec::new()
}

//! The JSON Schema of device profiles, for editors (`iotmc-gateway profile schema`).

use iotmc_adapter::Profile;
use serde_json::Value as Json;

use crate::adapters::AdapterSet;

/// The schema document: the common part, with each built adapter's section added as a property
/// of the same name. Committed at `device-profiles/schema/device-profile.schema.json`.
pub fn schema_document(adapters: &AdapterSet) -> String {
    let mut schema = schemars::schema_for!(Profile).to_value();
    if let Some(properties) = schema.get_mut("properties").and_then(Json::as_object_mut) {
        for adapter in adapters.iter() {
            properties.insert(
                adapter.protocol().to_owned(),
                adapter.profile_section_schema().to_value(),
            );
        }
    }
    let mut text = serde_json::to_string_pretty(&schema).unwrap_or_default();
    text.push('\n');
    text
}

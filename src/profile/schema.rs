//! The JSON Schema of device profiles, for editors (`iotmc-gateway profile schema`).

use iotmc_adapter::Profile;
use serde_json::Value as Json;

use crate::adapters::{AdapterSet, KNOWN_PROTOCOLS};

/// The schema document: the common part, with each protocol's section added as a property of the
/// same name (the adapter's own schema where it is built, any table where it is not). Committed at `device-profiles/schema/device-profile.schema.json`.
pub fn schema_document(adapters: &AdapterSet) -> String {
    let mut schema = schemars::schema_for!(Profile).to_value();
    if let Some(properties) = schema.get_mut("properties").and_then(Json::as_object_mut) {
        for protocol in KNOWN_PROTOCOLS {
            let section = match adapters.get(protocol) {
                Some(adapter) => adapter.profile_section_schema().to_value(),
                None => serde_json::json!({
                    "type": "object",
                    "description": format!("The `{protocol}` protocol mapping, checked by the {protocol} adapter (not built into this release)."),
                }),
            };
            properties.insert(protocol.to_owned(), section);
        }
        for adapter in adapters
            .iter()
            .filter(|a| !KNOWN_PROTOCOLS.contains(&a.protocol()))
        {
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

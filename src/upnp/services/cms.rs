//! ConfigurationManagement:2 on a virtual device: the data model tree, GetValues, SetValues,
//! GetSupportedParameters and the ConfigurationUpdate bookkeeping.
//!
//! The tree (DESIGN.md §4):
//! - `/UPnP/DM/DeviceInfo/{FriendlyName,Manufacturer,ModelName,ModelNumber,SerialNumber,SoftwareVersion}`
//! - `/IoTMC/Device/{Id,Protocol,Address,Profile,Group,LifecycleState,Availability}`
//! - `/IoTMC/Parameters/<profile parameter>` — read and written through the device's link.
//!
//! Only profile parameters are writable; everything else is read-only here (group assignment
//! and lifecycle change through their own services).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::upnp::xml_text::escape;
use iotmc_adapter::profile::Access;
use iotmc_adapter::{LinkError, Readings, Value, ValueType};

use super::errors::{self, link_error};
use crate::upnp::device::VirtualDevice;
use crate::upnp::soap::UpnpError;
use crate::upnp::xml_list;

/// The CMS data-model namespace.
pub const CMS_NS: &str = "urn:schemas-upnp-org:dm:cms";
/// Where profile parameters live.
pub const PARAMETERS: &str = "/IoTMC/Parameters/";

const DEVICE_INFO: [&str; 6] = [
    "FriendlyName",
    "Manufacturer",
    "ModelName",
    "ModelNumber",
    "SerialNumber",
    "SoftwareVersion",
];
const DEVICE_NODE: [&str; 7] = [
    "Id",
    "Protocol",
    "Address",
    "Profile",
    "Group",
    "LifecycleState",
    "Availability",
];

/// Every leaf path of the device's tree, in order.
pub fn leaf_paths(device: &VirtualDevice) -> Vec<String> {
    DEVICE_INFO
        .iter()
        .map(|n| format!("/UPnP/DM/DeviceInfo/{n}"))
        .chain(DEVICE_NODE.iter().map(|n| format!("/IoTMC/Device/{n}")))
        .chain(
            device
                .profile
                .parameters
                .iter()
                .map(|p| format!("{PARAMETERS}{}", p.name)),
        )
        .collect()
}

/// The value of a fact (non-parameter) leaf.
fn fact(device: &VirtualDevice, path: &str) -> Option<String> {
    let record = device.record();
    let facts = &device.facts;
    Some(match path {
        "/UPnP/DM/DeviceInfo/FriendlyName" => facts.friendly_name.clone(),
        "/UPnP/DM/DeviceInfo/Manufacturer" => facts.manufacturer.clone(),
        "/UPnP/DM/DeviceInfo/ModelName" => facts.model.clone(),
        "/UPnP/DM/DeviceInfo/ModelNumber" => facts.model_number.clone(),
        "/UPnP/DM/DeviceInfo/SerialNumber" => facts.serial.clone(),
        "/UPnP/DM/DeviceInfo/SoftwareVersion" => facts.firmware_version.clone().unwrap_or_default(),
        "/IoTMC/Device/Id" => record.id,
        "/IoTMC/Device/Protocol" => record.protocol,
        "/IoTMC/Device/Address" => record.address,
        "/IoTMC/Device/Profile" => record.profile,
        "/IoTMC/Device/Group" => record.group.unwrap_or_default(),
        "/IoTMC/Device/LifecycleState" => record.lifecycle.as_str().to_owned(),
        "/IoTMC/Device/Availability" => device.live().availability.as_str().to_owned(),
        _ => return None,
    })
}

/// The leaves a content path selects: itself if it is a leaf, everything below it if it ends
/// with `/`. Unknown paths are 702.
fn select(device: &VirtualDevice, paths: &[String]) -> Result<Vec<String>, UpnpError> {
    let leaves = leaf_paths(device);
    let mut chosen = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for path in paths {
        let path = path.trim();
        let matching: Vec<&String> = if path.ends_with('/') {
            leaves.iter().filter(|l| l.starts_with(path)).collect()
        } else {
            leaves.iter().filter(|l| *l == path).collect()
        };
        if matching.is_empty() {
            return Err(errors::no_such_name(device, path));
        }
        // Each leaf once, however often it is asked for: a list of 1024 `/` must not read the
        // device 1024 times over.
        for leaf in matching {
            if seen.insert(leaf.as_str()) {
                chosen.push(leaf.clone());
            }
        }
    }
    Ok(chosen)
}

/// GetValues: the ParameterValueList, and the readings taken from the device (empty when only
/// facts were asked for and the device was not contacted).
pub async fn get_values(
    device: &VirtualDevice,
    parameters: &str,
) -> Result<(String, Readings), UpnpError> {
    let items = xml_list::parse(parameters, "ContentPathList")
        .map_err(|why| errors::invalid_xml(device, "GetValues", "Parameters", &why))?;
    let paths: Vec<String> = items.into_iter().map(|i| i.text).collect();
    let leaves = select(device, &paths)?;
    let names: Vec<String> = leaves
        .iter()
        .filter_map(|l| l.strip_prefix(PARAMETERS))
        .filter(|name| {
            device
                .profile
                .parameter(name)
                .is_some_and(|p| p.access.can_read())
        })
        .map(str::to_owned)
        .collect();
    let readings = if names.is_empty() {
        BTreeMap::new()
    } else {
        let link = device
            .link()
            .map_err(|e| link_error(device, "GetValues", &e))?;
        link.read(&names)
            .await
            .map_err(|e| link_error(device, "GetValues", &e))?
    };
    let mut xml = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><cms:ParameterValueList xmlns:cms="{CMS_NS}">"#
    );
    for leaf in &leaves {
        let value = match leaf.strip_prefix(PARAMETERS) {
            Some(name) => match readings.get(name) {
                Some(v) => value_text(v),
                // Write-only parameters have no readable value.
                None => continue,
            },
            None => fact(device, leaf).unwrap_or_default(),
        };
        let _ = write!(
            xml,
            "<Parameter><ParameterPath>{}</ParameterPath><Value>{}</Value></Parameter>",
            escape(leaf.as_str()),
            escape(value.as_str())
        );
    }
    xml.push_str("</cms:ParameterValueList>");
    Ok((xml, readings))
}

/// SetValues: checks every value first (nothing is written unless all are valid), then writes
/// them in one request. Returns the values written.
pub async fn set_values(device: &VirtualDevice, list: &str) -> Result<Readings, UpnpError> {
    let items = xml_list::parse(list, "ParameterValueList")
        .map_err(|why| errors::invalid_xml(device, "SetValues", "ParameterValueList", &why))?;
    if items.is_empty() {
        return Err(errors::invalid_xml(
            device,
            "SetValues",
            "ParameterValueList",
            "it holds no Parameter",
        ));
    }
    let mut values = BTreeMap::new();
    for item in &items {
        let (Some(path), Some(text)) = (item.field("ParameterPath"), item.field("Value")) else {
            return Err(errors::invalid_xml(
                device,
                "SetValues",
                "ParameterValueList",
                "every Parameter needs a ParameterPath and a Value",
            ));
        };
        let path = path.trim();
        let Some(name) = path.strip_prefix(PARAMETERS) else {
            return Err(if fact(device, path).is_some() {
                errors::read_only(device, path)
            } else {
                errors::no_such_name(device, path)
            });
        };
        let Some(parameter) = device.profile.parameter(name) else {
            return Err(errors::no_such_name(device, path));
        };
        if parameter.access == Access::Read {
            return Err(errors::read_only(device, path));
        }
        let value = parse_value(text, parameter.value_type).ok_or_else(|| {
            link_error(
                device,
                "SetValues",
                &LinkError::WrongType {
                    name: name.to_owned(),
                    expected: parameter.value_type.to_string(),
                    got: format!("`{}`", text.chars().take(64).collect::<String>()),
                },
            )
        })?;
        if values.insert(name.to_owned(), value).is_some() {
            return Err(errors::multiple_set(device, path));
        }
    }
    let checked = device
        .profile
        .check_write(&values)
        .map_err(|e| link_error(device, "SetValues", &e))?;
    let link = device
        .link()
        .map_err(|e| link_error(device, "SetValues", &e))?;
    link.write(&checked)
        .await
        .map_err(|e| link_error(device, "SetValues", &e))?;
    Ok(checked)
}

/// A value as CMS carries it: text without quotes, numbers and booleans as written.
pub fn value_text(value: &Value) -> String {
    match value {
        Value::Text(text) => text.clone(),
        other => other.to_string(),
    }
}

/// Parses a CMS value text as the parameter's type.
pub fn parse_value(text: &str, value_type: ValueType) -> Option<Value> {
    let text = text.trim();
    match value_type {
        ValueType::Bool => match text {
            "1" | "true" | "yes" | "on" => Some(Value::Bool(true)),
            "0" | "false" | "no" | "off" => Some(Value::Bool(false)),
            _ => None,
        },
        ValueType::Int => text.parse().ok().map(Value::Int),
        ValueType::Float => text
            .parse::<f64>()
            .ok()
            .filter(|f| f.is_finite())
            .map(Value::Float),
        ValueType::String | ValueType::Enum => Some(Value::Text(text.to_owned())),
    }
}

/// GetSupportedParameters: the structure paths below `starting_node`, at most `depth` levels
/// below it (0: all).
pub fn supported_parameters(
    device: &VirtualDevice,
    starting_node: &str,
    depth: u32,
) -> Result<String, UpnpError> {
    let start = if starting_node.trim().is_empty() {
        "/"
    } else {
        starting_node.trim()
    };
    let start_levels = start.split('/').filter(|s| !s.is_empty()).count();
    let mut paths: Vec<String> = Vec::new();
    for leaf in leaf_paths(device) {
        if !(leaf.starts_with(start) || leaf == start) {
            continue;
        }
        let segments: Vec<&str> = leaf.split('/').filter(|s| !s.is_empty()).collect();
        let below = segments.len().saturating_sub(start_levels);
        let path = if depth == 0 || below <= depth as usize {
            leaf
        } else {
            // Cut to a node `depth` levels below the start.
            let keep = start_levels + depth as usize;
            format!("/{}/", segments[..keep].join("/"))
        };
        if !paths.contains(&path) {
            paths.push(path);
        }
    }
    if paths.is_empty() {
        return Err(errors::no_such_name(device, start));
    }
    let mut xml = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><cms:StructurePathList xmlns:cms="{CMS_NS}">"#
    );
    for path in paths {
        let _ = write!(
            xml,
            "<StructurePath>{}</StructurePath>",
            escape(path.as_str())
        );
    }
    xml.push_str("</cms:StructurePathList>");
    Ok(xml)
}

/// GetSupportedDataModels.
pub fn supported_data_models(vendor_domain: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><cms:SupportedDataModels xmlns:cms="{CMS_NS}"><SubTree><URI>urn:{}:dm:iotmc:1</URI><Location>/IoTMC/</Location><URL></URL><Description>iotmc-gateway managed device: profile parameters under /IoTMC/Parameters/, device facts under /IoTMC/Device/</Description></SubTree><SubTree><URI>urn:schemas-upnp-org:dm:DeviceInfo:1</URI><Location>/UPnP/DM/DeviceInfo/</Location><URL></URL><Description>device information</Description></SubTree></cms:SupportedDataModels>"#,
        crate::upnp::scpd::urn_domain(vendor_domain)
    )
}

/// Whether a change of these parameters is a configuration change (one of them is writable),
/// as opposed to new measurements.
pub fn is_configuration_change<'a>(
    device: &VirtualDevice,
    names: impl IntoIterator<Item = &'a String>,
) -> bool {
    names.into_iter().any(|n| {
        device
            .profile
            .parameter(n)
            .is_some_and(|p| p.access != Access::Read)
    })
}

/// The ConfigurationUpdate value: `<version>,<UTC time of the change>,<path>[,<path>...]`.
///
/// The time makes every change a new value, so that GENA (which never events an unchanged
/// value) events repeated changes of the same parameter even when the configuration version
/// stays (measurements do not make a new configuration).
pub fn configuration_update<'a>(
    version: u64,
    at: std::time::SystemTime,
    names: impl IntoIterator<Item = &'a String>,
) -> String {
    let mut value = format!("{version},{}", humantime::format_rfc3339_millis(at));
    for name in names {
        let _ = write!(value, ",{PARAMETERS}{name}");
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configuration_update_should_name_version_time_and_paths() {
        let at = std::time::UNIX_EPOCH + std::time::Duration::from_millis(1_700_000_000_123);
        let names = ["setpoint".to_owned(), "mode".to_owned()];
        assert_eq!(
            configuration_update(7, at, &names),
            "7,2023-11-14T22:13:20.123Z,/IoTMC/Parameters/setpoint,/IoTMC/Parameters/mode"
        );
    }

    #[test]
    fn values_should_parse_by_type_and_refuse_nonsense() {
        assert_eq!(
            parse_value(" 21.5 ", ValueType::Float),
            Some(Value::Float(21.5))
        );
        assert_eq!(parse_value("NaN", ValueType::Float), None);
        assert_eq!(parse_value("1", ValueType::Bool), Some(Value::Bool(true)));
        assert_eq!(parse_value("maybe", ValueType::Bool), None);
        assert_eq!(parse_value("12x", ValueType::Int), None);
        assert_eq!(value_text(&Value::Text("heat".into())), "heat");
    }
}

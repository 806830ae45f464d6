//! The device's `$description` against the profile: does every mapped property exist, with a
//! datatype the parameter's type can be read from, settable where the profile writes it,
//! with the profile's members and range inside the device's own format? Every mismatch is a
//! warning naming the parameter and the property; the ones that make writes futile also
//! refuse writes to that parameter, with the reason.

use std::collections::BTreeMap;

use iotmc_adapter::profile::Parameter;
use iotmc_adapter::{Profile, ValueType};

use crate::codec::homie::{Datatype, Description, Format, PropertyDescription, PropertyPath};

use super::view::Mapping;

/// The mismatches found in one description.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Mismatches {
    warnings: Vec<String>,
    refusals: BTreeMap<String, String>,
}

impl Mismatches {
    /// Every mismatch, in words.
    pub(crate) fn warnings(&self) -> impl Iterator<Item = &str> {
        self.warnings.iter().map(String::as_str)
    }

    /// Why writes to `parameter` are refused, if they are.
    pub(crate) fn refusal(&self, parameter: &str) -> Option<&str> {
        self.refusals.get(parameter).map(String::as_str)
    }

    fn warn(&mut self, message: String) {
        self.warnings.push(message);
    }

    fn refuse(&mut self, parameter: &str, reason: String) {
        self.warnings
            .push(format!("{reason}; writes to it are refused"));
        self.refusals.entry(parameter.to_owned()).or_insert(reason);
    }
}

/// Checks every mapped parameter against `description`.
pub(crate) fn check_description(
    profile: &Profile,
    mapping: &Mapping,
    description: &Description,
) -> Mismatches {
    let mut found = Mismatches::default();
    for (name, path) in mapping.parameters() {
        let Some(parameter) = profile.parameter(name) else {
            continue;
        };
        let Some(property) = description.property(&path.node, &path.property) else {
            let reason = format!(
                "parameter `{name}` is on property `{path}`, which the device's $description (version {}) does not describe",
                description.version
            );
            if parameter.access.can_write() {
                found.refuse(name, reason);
            } else {
                found.warn(format!("{reason}; reads of it will time out"));
            }
            continue;
        };
        check_property(&mut found, parameter, path, property);
    }
    found
}

fn check_property(
    found: &mut Mismatches,
    parameter: &Parameter,
    path: &PropertyPath,
    property: &PropertyDescription,
) {
    let name = &parameter.name;
    if !readable_as(parameter.value_type, property.datatype) {
        let reason = format!(
            "parameter `{name}` is {} in the profile, but property `{path}` is a Homie {}",
            parameter.value_type, property.datatype
        );
        if parameter.access.can_write() {
            found.refuse(name, reason);
        } else {
            found.warn(format!("{reason}; its values will not decode"));
        }
        return;
    }
    if parameter.access.can_write() && !property.settable {
        found.refuse(
            name,
            format!(
                "parameter `{name}` is {} in the profile, but the device's $description says property `{path}` is not settable",
                parameter.access.as_str()
            ),
        );
    }
    if parameter.access.can_read() && !property.retained {
        found.warn(format!(
            "parameter `{name}` is read from property `{path}`, which is not retained (momentary events): a read waits for the next event"
        ));
    }
    match (&property.format, parameter.value_type) {
        (Format::Members(members), ValueType::Enum) => {
            let missing: Vec<&str> = parameter
                .values
                .iter()
                .filter(|v| !members.contains(v))
                .map(String::as_str)
                .collect();
            if !missing.is_empty() {
                found.warn(format!(
                    "parameter `{name}` has members {} that property `{path}` does not list (it takes {}); the device ignores them",
                    missing.join(", "),
                    members.join(", ")
                ));
            }
        }
        (Format::Range { min, max, .. }, ValueType::Int | ValueType::Float) => {
            let range = parameter
                .range
                .unwrap_or(iotmc_adapter::profile::ValueRange {
                    min: None,
                    max: None,
                });
            let below = min.is_some_and(|device| range.min.is_none_or(|ours| ours < device));
            let above = max.is_some_and(|device| range.max.is_none_or(|ours| ours > device));
            if parameter.access.can_write() && (below || above) {
                found.warn(format!(
                    "parameter `{name}` accepts {}, wider than property `{path}`'s format {}; the device ignores values outside its own",
                    describe(range.min, range.max),
                    describe(*min, *max)
                ));
            }
        }
        _ => {}
    }
}

/// Whether a value of the parameter's type can be read from, and written to, a property of
/// `datatype`.
fn readable_as(value_type: ValueType, datatype: Datatype) -> bool {
    match value_type {
        ValueType::Bool => datatype == Datatype::Boolean,
        ValueType::Int => datatype == Datatype::Integer,
        ValueType::Float => matches!(datatype, Datatype::Float | Datatype::Integer),
        ValueType::Enum => matches!(datatype, Datatype::Enum | Datatype::String),
        ValueType::String => matches!(
            datatype,
            Datatype::String
                | Datatype::Enum
                | Datatype::Color
                | Datatype::Datetime
                | Datatype::Duration
                | Datatype::Json
        ),
    }
}

fn describe(min: Option<f64>, max: Option<f64>) -> String {
    let bound = |b: Option<f64>| b.map(|b| b.to_string()).unwrap_or_default();
    format!("`{}:{}`", bound(min), bound(max))
}

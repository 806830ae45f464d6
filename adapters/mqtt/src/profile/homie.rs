//! `[mqtt.homie]`: which Homie 5 property carries each parameter, what each action sets, and
//! where identity facts come from. The device lives under `<domain>/5/<device id>`, the device
//! id being the device part of its address (`mqtt://<broker>/<device id>`).
//!
//! ```toml
//! [mqtt]
//! dialect = "homie"
//! [mqtt.homie.parameters]
//! temperature = "thermostat/temperature"
//! setpoint = "thermostat/setpoint"
//! [mqtt.homie.actions.reboot]
//! property = "system/reboot"
//! payload = "true"
//! confirm = "restart"
//! [mqtt.homie.identity]
//! firmware_version = { property = "system/firmware" }
//! ```
//!
//! Homie defines no firmware transfer, so `firmware.method` must be `none`; logs are the
//! device's `$log/<level>` lines (`logs.method = "topic"`).

use std::collections::BTreeMap;

use iotmc_adapter::{LocatedError, Profile};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::codec::homie::{PropertyPath, is_id};

/// The `[mqtt.homie]` table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HomieSection {
    /// The Homie domain, the first topic level (default `homie`): the device's topics are
    /// `<domain>/5/<device id>/...`. Lowercase letters, digits and `-`.
    #[serde(default = "default_domain")]
    pub domain: String,
    /// The property carrying each parameter, as `"<node>/<property>"`, e.g.
    /// `setpoint = "thermostat/setpoint"`. Every parameter of the profile needs one. The
    /// property's values are read in Homie's text forms (`21.5`, `true`, `heat`); a write sets
    /// `<node>/<property>/set` and waits until the property or its `$target` reports the value.
    #[serde(default)]
    pub parameters: BTreeMap<String, String>,
    /// What each action of the profile sets. Homie has no standard reboot or reset: a device
    /// offers one as a settable property (often non-retained, e.g. `system/reboot` set to
    /// `true`); every action of the profile needs an entry.
    #[serde(default)]
    pub actions: BTreeMap<String, HomieAction>,
    /// Where identity facts come from beyond the profile's manufacturer and model.
    #[serde(default)]
    pub identity: HomieIdentity,
}

fn default_domain() -> String {
    "homie".to_owned()
}

/// One action: a property to set, and what to set it to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HomieAction {
    /// The settable property the action sets, as `"<node>/<property>"`, e.g. `"system/reboot"`.
    pub property: String,
    /// The value to set, in Homie's text form, e.g. `"true"`. Give this or `argument`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<String>,
    /// The action's argument whose value is set (in Homie's text form for its type), for an
    /// action with one argument. Give this or `payload`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub argument: Option<String>,
    /// How the device confirms: `restart` (its `$state` leaves `ready`, as a device does when
    /// it reboots or resets; the action is then accepted and the device reported offline until
    /// it is `ready` again), `value` (the property or its `$target` reports the value set,
    /// within the action's timeout), or `none` (a momentary command without feedback: done once
    /// the broker has it).
    pub confirm: ActionConfirm,
}

/// How a device confirms an action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ActionConfirm {
    /// The device's `$state` leaves `ready` (reboot, reset).
    Restart,
    /// The property or its `$target` reports the value set.
    Value,
    /// Nothing: done once the broker acknowledged the set.
    None,
}

/// Where identity facts come from. Each is left unknown when not given.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HomieIdentity {
    /// The model name as the device reports it (default: the profile's `model`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<IdentitySource>,
    /// The serial number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serial: Option<IdentitySource>,
    /// The running firmware version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub firmware_version: Option<IdentitySource>,
    /// The hardware revision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hardware_version: Option<IdentitySource>,
}

/// Where one identity fact comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum IdentitySource {
    /// A property's value, `{ property = "<node>/<property>" }`, e.g. `"system/firmware"`.
    Property(String),
    /// A field of the device's `$description`, `{ description = "name" }`: `name` (its
    /// friendly name), `type` (its device type) or `version` (the description document's
    /// version, which changes whenever the device's description does).
    Description(DescriptionField),
}

/// A field of the `$description` document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum DescriptionField {
    /// `name`: the device's friendly name (its ID when not given).
    Name,
    /// `type`: the device's type.
    Type,
    /// `version`: the document's version.
    Version,
}

impl HomieSection {
    /// The property carrying `parameter`, if mapped (and valid: the section is checked).
    pub fn parameter_path(&self, parameter: &str) -> Option<PropertyPath> {
        self.parameters.get(parameter)?.parse().ok()
    }

    /// The identity facts mapped, with their field names.
    pub fn identity_sources(&self) -> [(&'static str, Option<&IdentitySource>); 4] {
        [
            ("model", self.identity.model.as_ref()),
            ("serial", self.identity.serial.as_ref()),
            ("firmware_version", self.identity.firmware_version.as_ref()),
            ("hardware_version", self.identity.hardware_version.as_ref()),
        ]
    }
}

/// Checks what serde cannot; every error located at its field.
pub(crate) fn check(profile: &Profile, section: &HomieSection) -> Vec<LocatedError> {
    let source = profile.source();
    let mut errors = Vec::new();
    let mut fail = |field: &str, message: String| errors.push(source.error_at(field, message));

    if profile.firmware.is_supported() {
        fail(
            "firmware.method",
            format!(
                "firmware method `{}` does not apply to a Homie device: the Homie convention defines no firmware update, so use `method = \"none\"` (or the generic dialect, if the device updates over MQTT request/response)",
                profile.firmware.method
            ),
        );
    }
    if !matches!(profile.logs.method.as_str(), "none" | "topic") {
        fail(
            "logs.method",
            format!(
                "log method `{}` does not apply to a Homie device: use `topic` (the device's `$log/<level>` lines are collected) or `none`",
                profile.logs.method
            ),
        );
    }
    if !is_id(&section.domain) {
        fail(
            "mqtt.homie.domain",
            format!(
                "domain {:?} must be one Homie ID (lowercase a-z, 0-9 and `-`), e.g. `homie`",
                section.domain
            ),
        );
    }

    let mut used: BTreeMap<PropertyPath, &str> = BTreeMap::new();
    for parameter in &profile.parameters {
        let Some(path) = section.parameters.get(&parameter.name) else {
            fail(
                "mqtt.homie.parameters",
                format!(
                    "parameter `{0}` has no property; add `{0} = \"<node>/<property>\"` to [mqtt.homie.parameters]",
                    parameter.name
                ),
            );
            continue;
        };
        let field = format!("mqtt.homie.parameters.{}", parameter.name);
        match path.parse::<PropertyPath>() {
            Ok(path) => {
                if let Some(other) = used.insert(path.clone(), &parameter.name) {
                    fail(
                        &field,
                        format!(
                            "`{path}` already carries parameter `{other}`; a property carries one parameter"
                        ),
                    );
                }
            }
            Err(e) => fail(&field, format!("parameter `{}`: {e}", parameter.name)),
        }
    }
    for name in section.parameters.keys() {
        if profile.parameter(name).is_none() {
            fail(
                &format!("mqtt.homie.parameters.{name}"),
                format!(
                    "the profile declares no parameter `{name}`; remove this line or declare it under [[parameters]]"
                ),
            );
        }
    }

    for action in &profile.actions {
        let Some(mapping) = section.actions.get(&action.name) else {
            fail(
                "mqtt.homie.actions",
                format!(
                    "action `{0}` has no mapping; add [mqtt.homie.actions.{0}] with the property it sets, its payload and how the device confirms",
                    action.name
                ),
            );
            continue;
        };
        let field = format!("mqtt.homie.actions.{}", action.name);
        if let Err(e) = mapping.property.parse::<PropertyPath>() {
            fail(&format!("{field}.property"), e);
        }
        match (&mapping.payload, &mapping.argument) {
            (Some(_), Some(_)) | (None, None) => fail(
                &field,
                format!(
                    "action `{}` needs exactly one of `payload` (a fixed value) and `argument` (the argument whose value is set)",
                    action.name
                ),
            ),
            (Some(payload), None) => {
                if payload.is_empty() {
                    fail(
                        &format!("{field}.payload"),
                        "an empty payload would delete a retained topic; Homie sends the empty string as \"\\u0000\"".to_owned(),
                    );
                }
                if let Some(argument) = action.arguments.first() {
                    fail(
                        &field,
                        format!(
                            "action `{}` declares argument `{}`, which a fixed payload leaves unused; set `argument = \"{}\"` instead of `payload`",
                            action.name, argument.name, argument.name
                        ),
                    );
                }
            }
            (None, Some(argument)) => {
                if !action.arguments.iter().any(|a| &a.name == argument) {
                    fail(
                        &format!("{field}.argument"),
                        format!("action `{}` declares no argument `{argument}`", action.name),
                    );
                } else if action.arguments.len() > 1 {
                    fail(
                        &field,
                        format!(
                            "action `{}` declares {} arguments; a Homie property takes one value, so the action may declare only `{argument}`",
                            action.name,
                            action.arguments.len()
                        ),
                    );
                }
            }
        }
    }
    for name in section.actions.keys() {
        if profile.action(name).is_none() {
            fail(
                &format!("mqtt.homie.actions.{name}"),
                format!(
                    "the profile declares no action `{name}`; remove this table or declare it under [[actions]]"
                ),
            );
        }
    }

    for (field, source) in section.identity_sources() {
        if let Some(IdentitySource::Property(path)) = source
            && let Err(e) = path.parse::<PropertyPath>()
        {
            fail(&format!("mqtt.homie.identity.{field}.property"), e);
        }
    }
    errors
}

#[cfg(test)]
mod tests;

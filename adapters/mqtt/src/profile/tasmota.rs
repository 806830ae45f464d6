//! `[mqtt.tasmota]`: how a Tasmota device's commands, answers and telemetry carry the
//! profile's parameters, actions and identity. The reference for integrators is
//! `device-profiles/mqtt/tasmota.md`.
//!
//! ```toml
//! [mqtt.tasmota]
//! mqtt_log_level = 2                       # opt-in: `MqttLog 2` each time the plug comes online
//!
//! [mqtt.tasmota.parameters.power]
//! command = "Power1"                       # read: `cmnd/<t>/Power1` empty; write: `Power1 ON`
//! pointer = "/POWER"                       # into the answer {"POWER":"ON"}
//! map = { ON = true, OFF = false }
//! tele = { topic = "STATE", pointer = "/POWER" }
//!
//! [mqtt.tasmota.parameters.active_power]
//! status = 8                               # read: `Status 8`, answered on stat/<t>/STATUS8
//! pointer = "/StatusSNS/ENERGY/Power"
//! tele = { topic = "SENSOR", pointer = "/ENERGY/Power" }
//!
//! [mqtt.tasmota.actions.reboot]
//! command = "Restart"
//! payload = "1"
//! restarts = true
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use iotmc_adapter::profile::{ActionKind, Parameter};
use iotmc_adapter::{LocatedError, Profile, Value, ValueType, serde_duration};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::codec::json::check_pointer;
use crate::codec::tasmota::{Topics, is_command_name};
use crate::topic;

/// Tasmota's default FullTopic.
pub const DEFAULT_FULL_TOPIC: &str = "%prefix%/%topic%/";

/// The `[mqtt.tasmota]` table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TasmotaSection {
    /// The device's FullTopic, as its `FullTopic` command shows it (default
    /// `%prefix%/%topic%/`). `%topic%` is the device part of the address.
    #[serde(default = "default_full_topic")]
    pub full_topic: String,
    /// Where each parameter's value comes from and how it is set, by parameter name. Every
    /// parameter of the profile needs one.
    #[serde(default)]
    pub parameters: BTreeMap<String, ParameterMap>,
    /// The command each action sends, by action name. Every action of the profile needs one.
    #[serde(default)]
    pub actions: BTreeMap<String, ActionMap>,
    /// Where the identity facts are in the answer to `Status0`.
    #[serde(default)]
    pub identity: IdentityMap,
    /// Opt-in: the `MqttLog` level (1 errors, 2 info, 3 debug, 4 more debug) the gateway sets
    /// each time the device comes online, so that its log lines reach `stat/<topic>/LOGGING`.
    /// This changes the device's settings; left out, the gateway changes nothing and collects
    /// whatever the device already publishes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mqtt_log_level: Option<u8>,
    /// How long a firmware activation may take, from `Upgrade 1` to the device answering with
    /// its new version: download, flash, restart and reconnect (default `5m`).
    #[serde(default = "default_upgrade_timeout", with = "serde_duration")]
    #[schemars(with = "String")]
    pub upgrade_timeout: Duration,
}

fn default_full_topic() -> String {
    DEFAULT_FULL_TOPIC.to_owned()
}

fn default_upgrade_timeout() -> Duration {
    Duration::from_secs(300)
}

/// Where one parameter's value comes from and how it is set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ParameterMap {
    /// The command that reads the value (sent with an empty payload) and, for a writable
    /// parameter, sets it (sent with the value), e.g. `Power1`, `TelePeriod`, `PowerOnState`.
    /// Its answer on `stat/<topic>/RESULT` echoes the value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// Read the value from the answer to `Status <n>` instead (on `stat/<topic>/STATUS<n>`),
    /// e.g. `8` for energy readings. Only for read-only parameters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u8>,
    /// JSON pointer to the value in the answer, e.g. `/POWER`, `/PulseTime1/Set`,
    /// `/StatusSNS/ENERGY/Power`. Keys are matched ignoring case when the exact pointer finds
    /// nothing.
    pub pointer: String,
    /// Also take the value from the device's periodic telemetry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tele: Option<TeleSource>,
    /// The device's words for the parameter's values, e.g. `{ ON = true, OFF = false }`, or
    /// `{ "0" = "off", "1" = "on" }` for an enum the device numbers. Numbers the device sends
    /// are looked up by their decimal text. Writes send the word of the value.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub map: BTreeMap<String, DeviceValue>,
}

/// A value in a value map, in the parameter's type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum DeviceValue {
    /// For a `bool` parameter.
    Bool(bool),
    /// For an `int` (or `float`) parameter.
    Int(i64),
    /// For a `float` parameter.
    Float(f64),
    /// For a `string` or `enum` parameter.
    Text(String),
}

impl DeviceValue {
    fn value(&self) -> Value {
        match self {
            Self::Bool(b) => Value::Bool(*b),
            Self::Int(i) => Value::Int(*i),
            Self::Float(f) => Value::Float(*f),
            Self::Text(t) => Value::Text(t.clone()),
        }
    }
}

impl ParameterMap {
    /// The value map as pairs of device word and parameter value, normalised to the
    /// parameter's type (checked when the profile is loaded).
    pub fn value_map(&self, parameter: &Parameter) -> Vec<(String, Value)> {
        self.map
            .iter()
            .map(|(word, v)| {
                let value = parameter
                    .check_value(&v.value())
                    .unwrap_or_else(|_| v.value());
                (word.clone(), value)
            })
            .collect()
    }
}

/// A periodic telemetry message that carries the value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TeleSource {
    /// `STATE` (`tele/<topic>/STATE`, every TelePeriod: power, Wi-Fi, uptime) or `SENSOR`
    /// (`tele/<topic>/SENSOR`: energy and sensor readings).
    pub topic: TeleTopic,
    /// JSON pointer to the value in that message, e.g. `/ENERGY/Power`.
    pub pointer: String,
}

/// The telemetry topics that carry values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum TeleTopic {
    /// `tele/<topic>/STATE`.
    #[serde(rename = "STATE")]
    State,
    /// `tele/<topic>/SENSOR`.
    #[serde(rename = "SENSOR")]
    Sensor,
}

impl TeleTopic {
    /// The last level of the topic.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::State => "STATE",
            Self::Sensor => "SENSOR",
        }
    }
}

/// The command one action sends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ActionMap {
    /// The command, e.g. `Restart`, `Reset`, `Power1`.
    pub command: String,
    /// Its payload, e.g. `1`; `{name}` is replaced by the action's argument of that name.
    #[serde(default)]
    pub payload: String,
    /// The command restarts the device (`Restart 1`, `Reset <n>`): the action is accepted
    /// when the device answers, and the device goes offline and comes back.
    #[serde(default)]
    pub restarts: bool,
}

/// JSON pointers into the answer to `Status0` (all status sections in one object).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IdentityMap {
    /// The running firmware version (default `/StatusFWR/Version`, e.g. `13.1.0(tasmota)`).
    #[serde(default = "default_firmware_pointer")]
    pub firmware_version: String,
    /// The serial number (default `/StatusNET/Mac`: Tasmota knows no serial number, the Wi-Fi
    /// MAC is the closest stable fact).
    #[serde(default = "default_serial_pointer")]
    pub serial: String,
    /// The hardware (default `/StatusFWR/Hardware`, e.g. `ESP8266EX`).
    #[serde(default = "default_hardware_pointer")]
    pub hardware_version: String,
    /// The model as the device names it (e.g. `/Status/DeviceName`); left out, the profile's
    /// `model` is reported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
}

impl Default for IdentityMap {
    fn default() -> Self {
        Self {
            firmware_version: default_firmware_pointer(),
            serial: default_serial_pointer(),
            hardware_version: default_hardware_pointer(),
            model: None,
        }
    }
}

fn default_firmware_pointer() -> String {
    "/StatusFWR/Version".to_owned()
}

fn default_serial_pointer() -> String {
    "/StatusNET/Mac".to_owned()
}

fn default_hardware_pointer() -> String {
    "/StatusFWR/Hardware".to_owned()
}

/// The `{name}` placeholders of an action payload, or the text of a broken one.
pub fn placeholders(payload: &str) -> Result<Vec<&str>, String> {
    let mut names = Vec::new();
    let mut rest = payload;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        let close = after
            .find('}')
            .ok_or_else(|| format!("`{{` without `}}` in payload {payload:?}"))?;
        names.push(&after[..close]);
        rest = &after[close + 1..];
    }
    if rest.contains('}') {
        return Err(format!("`}}` without `{{` in payload {payload:?}"));
    }
    Ok(names)
}

/// Checks what serde cannot; every error located at its field.
pub(crate) fn check(profile: &Profile, section: &TasmotaSection) -> Vec<LocatedError> {
    let source = profile.source();
    let mut errors = Vec::new();
    let mut fail = |field: String, message: String| errors.push(source.error_at(&field, message));
    let at = |rest: &str| format!("mqtt.tasmota.{rest}");

    check_full_topic(&section.full_topic).unwrap_or_else(|m| fail(at("full_topic"), m));
    for parameter in &profile.parameters {
        if !section.parameters.contains_key(&parameter.name) {
            fail(
                at("parameters"),
                format!(
                    "parameter `{}` has no mapping; add `[mqtt.tasmota.parameters.{}]` with its command or status and pointer",
                    parameter.name, parameter.name
                ),
            );
        }
    }
    for (name, map) in &section.parameters {
        let field = at(&format!("parameters.{name}"));
        match profile.parameter(name) {
            None => fail(
                field,
                format!(
                    "the profile declares no parameter `{name}`; remove this mapping or declare it under [[parameters]]"
                ),
            ),
            Some(parameter) => {
                for (sub, message) in check_parameter(parameter, map) {
                    fail(format!("{field}{sub}"), message);
                }
            }
        }
    }
    for action in &profile.actions {
        if !section.actions.contains_key(&action.name) {
            fail(
                at("actions"),
                format!(
                    "action `{}` has no mapping; add `[mqtt.tasmota.actions.{}]` with its command",
                    action.name, action.name
                ),
            );
        }
    }
    for (name, map) in &section.actions {
        let field = at(&format!("actions.{name}"));
        let Some(action) = profile.action(name) else {
            fail(
                field,
                format!(
                    "the profile declares no action `{name}`; remove this mapping or declare it under [[actions]]"
                ),
            );
            continue;
        };
        if !is_command_name(&map.command) {
            fail(format!("{field}.command"), bad_command(&map.command));
        }
        if matches!(action.kind, ActionKind::Reboot | ActionKind::FactoryReset) && !map.restarts {
            fail(
                format!("{field}.restarts"),
                format!(
                    "action `{name}` is a {} and Tasmota restarts to carry it out; set `restarts = true`",
                    if action.kind == ActionKind::Reboot {
                        "reboot"
                    } else {
                        "factory reset"
                    }
                ),
            );
        }
        match placeholders(&map.payload) {
            Err(message) => fail(format!("{field}.payload"), message),
            Ok(used) => {
                for placeholder in &used {
                    if !action.arguments.iter().any(|a| a.name == *placeholder) {
                        fail(
                            format!("{field}.payload"),
                            format!("`{{{placeholder}}}` names no argument of action `{name}`"),
                        );
                    }
                }
                for argument in &action.arguments {
                    if !used.contains(&argument.name.as_str()) {
                        fail(
                            format!("{field}.payload"),
                            format!(
                                "argument `{}` is not used; put `{{{}}}` in the payload",
                                argument.name, argument.name
                            ),
                        );
                    }
                }
            }
        }
    }
    let identity = &section.identity;
    for (field, pointer) in [
        ("firmware_version", Some(&identity.firmware_version)),
        ("serial", Some(&identity.serial)),
        ("hardware_version", Some(&identity.hardware_version)),
        ("model", identity.model.as_ref()),
    ] {
        if let Some(Err(message)) = pointer.map(|p| check_pointer(p)) {
            fail(at(&format!("identity.{field}")), message);
        }
    }
    if let Some(level) = section.mqtt_log_level
        && level > 4
    {
        fail(
            at("mqtt_log_level"),
            format!("MqttLog takes 0 (off) to 4 (more debug); {level} is none of them"),
        );
    }
    if section.upgrade_timeout < Duration::from_secs(10)
        || section.upgrade_timeout > Duration::from_secs(3600)
    {
        fail(
            at("upgrade_timeout"),
            format!(
                "upgrade_timeout {:?} is outside 10s..1h; a download, flash and restart takes one to a few minutes",
                section.upgrade_timeout
            ),
        );
    }
    match profile.firmware.method.as_str() {
        "none" => {}
        "url-pull" if profile.firmware.dual_bank => fail(
            "firmware.dual_bank".to_owned(),
            "Tasmota has one firmware bank (OTA replaces the running image); set `dual_bank = false`: the gateway keeps the old image to re-install it instead".to_owned(),
        ),
        "url-pull" => {}
        other => fail(
            "firmware.method".to_owned(),
            format!("a Tasmota device pulls its firmware from a URL: use `method = \"url-pull\"` (or \"none\"), not {other:?}"),
        ),
    }
    match profile.logs.method.as_str() {
        "none" | "topic" => {}
        other => fail(
            "logs.method".to_owned(),
            format!(
                "a Tasmota device publishes its log lines on a topic: use `method = \"topic\"` (or \"none\"), not {other:?}"
            ),
        ),
    }
    errors
}

fn bad_command(command: &str) -> String {
    format!(
        "{command:?} is not a Tasmota command name: a letter, then letters, digits or `_`, at most 32, e.g. `Power1`"
    )
}

fn check_full_topic(full_topic: &str) -> Result<(), String> {
    if !full_topic.contains("%prefix%") || !full_topic.contains("%topic%") {
        return Err(format!(
            "FullTopic {full_topic:?} must hold both `%prefix%` and `%topic%`, as Tasmota's does (default `{DEFAULT_FULL_TOPIC}`)"
        ));
    }
    let example = Topics::new(full_topic, "device").command("Power");
    topic::check_name(&example)
        .map_err(|e| format!("FullTopic {full_topic:?} gives bad topics: {e}"))
}

/// Errors of one parameter mapping: (field suffix, message).
fn check_parameter(parameter: &Parameter, map: &ParameterMap) -> Vec<(String, String)> {
    let mut errors = Vec::new();
    let name = &parameter.name;
    match (&map.command, map.status) {
        (Some(_), Some(_)) => errors.push((
            String::new(),
            "give `command` or `status`, not both: the pointer points into one answer".to_owned(),
        )),
        (None, None) => errors.push((
            String::new(),
            format!("parameter `{name}` needs `command` (e.g. \"Power1\") or `status` (e.g. 8) to be read"),
        )),
        (None, Some(_)) if parameter.access.can_write() => errors.push((
            ".status".to_owned(),
            format!("parameter `{name}` is writable, so it needs the `command` that sets it; `Status` only reads"),
        )),
        (_, Some(n)) if !(1..=13).contains(&n) => errors.push((
            ".status".to_owned(),
            format!("Status {n} does not exist: Tasmota has Status 1 to 13 (identity uses Status0)"),
        )),
        (Some(command), _) if !is_command_name(command) => {
            errors.push((".command".to_owned(), bad_command(command)));
        }
        _ => {}
    }
    if map.pointer.is_empty() {
        errors.push((".pointer".to_owned(), "the pointer cannot be empty: Tasmota's answers are objects; point at the value, e.g. `/POWER`".to_owned()));
    } else if let Err(message) = check_pointer(&map.pointer) {
        errors.push((".pointer".to_owned(), message));
    }
    if let Some(tele) = &map.tele
        && let Err(message) = check_pointer(&tele.pointer).and_then(|()| {
            if tele.pointer.is_empty() {
                Err("the telemetry pointer cannot be empty, e.g. `/ENERGY/Power`".to_owned())
            } else {
                Ok(())
            }
        })
    {
        errors.push((".tele.pointer".to_owned(), message));
    }
    let mut seen: Vec<Value> = Vec::new();
    for (word, value) in &map.map {
        let field = ".map".to_owned();
        if word.is_empty() {
            errors.push((field, "a device word cannot be empty".to_owned()));
            continue;
        }
        match parameter.check_value(&value.value()) {
            Err(e) => errors.push((field, format!("{word} = {}: {e}", value.value()))),
            Ok(v) if seen.contains(&v) => errors.push((
                field,
                format!("{v} has two device words; a write could not choose one"),
            )),
            Ok(v) => seen.push(v),
        }
    }
    if !map.map.is_empty() && parameter.access.can_write() {
        let needed: Vec<Value> = match parameter.value_type {
            ValueType::Bool => vec![Value::Bool(true), Value::Bool(false)],
            ValueType::Enum => parameter
                .values
                .iter()
                .map(|m| Value::Text(m.clone()))
                .collect(),
            _ => Vec::new(),
        };
        let missing: BTreeSet<String> = needed
            .iter()
            .filter(|v| !seen.contains(v))
            .map(ToString::to_string)
            .collect();
        if !missing.is_empty() {
            errors.push((
                ".map".to_owned(),
                format!(
                    "parameter `{name}` is writable but the map gives no device word for {}",
                    missing.into_iter().collect::<Vec<_>>().join(", ")
                ),
            ));
        }
    }
    errors
}

#[cfg(test)]
mod tests;

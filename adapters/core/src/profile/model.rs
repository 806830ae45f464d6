//! The common part of a device profile.

use std::collections::BTreeMap;
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{DEFAULT_MAX_IMAGE_SIZE, TomlSource};
use crate::serde_duration;
use crate::{LinkError, Value, ValueType};

/// A device model, as an integrator describes it.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "iotmc-gateway device profile")]
pub struct Profile {
    /// Unique id of the device model, used by the gateway config: lowercase letters, digits,
    /// `.`, `_` and `-`, e.g. `eastron-sdm630`.
    pub id: String,
    /// Manufacturer, as shown to controllers (UPnP `manufacturer`).
    pub manufacturer: String,
    /// Model name, as shown to controllers (UPnP `modelName`).
    pub model: String,
    /// What the device is, in a sentence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The adapter that talks to this device: `modbus`, `mqtt`, `zigbee` or `ble`. The table of
    /// the same name holds the protocol mapping.
    pub protocol: String,
    /// Parameters, exposed under `/IoTMC/Parameters/<name>` in ConfigurationManagement.
    #[serde(default)]
    pub parameters: Vec<Parameter>,
    /// Actions the device can carry out.
    #[serde(default)]
    pub actions: Vec<ActionSpec>,
    /// How firmware reaches the device.
    #[serde(default)]
    pub firmware: FirmwareSpec,
    /// Where the device keeps a log of its own.
    #[serde(default)]
    pub logs: LogSpec,
    /// What counts as healthy.
    #[serde(default)]
    pub health: HealthSpec,
    /// How often and how patiently the device is polled.
    #[serde(default)]
    pub poll: PollSpec,
    #[serde(skip)]
    #[schemars(skip)]
    pub(super) source: TomlSource,
}

impl Profile {
    /// The file this profile was read from.
    pub fn source(&self) -> &TomlSource {
        &self.source
    }

    /// The parameter of this name, if declared.
    pub fn parameter(&self, name: &str) -> Option<&Parameter> {
        self.parameters.iter().find(|p| p.name == name)
    }

    /// The names of the parameters that can be read, in declaration order.
    pub fn readable_parameters(&self) -> Vec<String> {
        self.parameters
            .iter()
            .filter(|p| p.access.can_read())
            .map(|p| p.name.clone())
            .collect()
    }

    /// The action of this name, if declared.
    pub fn action(&self, name: &str) -> Option<&ActionSpec> {
        self.actions.iter().find(|a| a.name == name)
    }

    /// Checks a write of `values` against the declared parameters: names, access, types and
    /// ranges. Returns the values normalised to their declared types.
    pub fn check_write(
        &self,
        values: &BTreeMap<String, Value>,
    ) -> Result<BTreeMap<String, Value>, LinkError> {
        values
            .iter()
            .map(|(name, value)| {
                let parameter = self
                    .parameter(name)
                    .ok_or_else(|| LinkError::UnknownParameter { name: name.clone() })?;
                if !parameter.access.can_write() {
                    return Err(LinkError::AccessDenied {
                        name: name.clone(),
                        access: parameter.access.as_str(),
                        operation: "write",
                    });
                }
                Ok((name.clone(), parameter.check_value(value)?))
            })
            .collect()
    }

    /// Checks a read of `names` against the declared parameters.
    pub fn check_read(&self, names: &[String]) -> Result<(), LinkError> {
        for name in names {
            let parameter = self
                .parameter(name)
                .ok_or_else(|| LinkError::UnknownParameter { name: name.clone() })?;
            if !parameter.access.can_read() {
                return Err(LinkError::AccessDenied {
                    name: name.clone(),
                    access: parameter.access.as_str(),
                    operation: "read",
                });
            }
        }
        Ok(())
    }
}

/// One parameter of a device.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Parameter {
    /// Name: a letter, then letters, digits or `_` (at most 64), e.g. `supply_temperature`.
    pub name: String,
    /// What the parameter is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Value type.
    #[serde(rename = "type")]
    pub value_type: ValueType,
    /// Engineering unit after scaling, e.g. `°C`, `kWh`, `V`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    /// Who may do what: `read` (default), `read-write` or `write`.
    #[serde(default)]
    pub access: Access,
    /// Accepted range for `int` and `float` parameters, inclusive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub range: Option<ValueRange>,
    /// The members of an `enum` parameter.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<String>,
    /// Longest accepted `string` value, in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_length: Option<u32>,
    /// Smallest step the device stores (e.g. `0.1` for a value kept in tenths). Values read back
    /// are compared within this tolerance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolution: Option<f64>,
    /// Whether changes are evented to subscribed controllers (default `true`).
    #[serde(default = "default_true")]
    pub evented: bool,
}

fn default_true() -> bool {
    true
}

impl Parameter {
    /// Checks a value against the declared type, range, members and length, and returns it
    /// normalised to the declared type (an `int` given for a `float` becomes a float).
    pub fn check_value(&self, value: &Value) -> Result<Value, LinkError> {
        check_value(
            &self.name,
            self.value_type,
            self.range.as_ref(),
            &self.values,
            self.max_length,
            value,
        )
    }
}

/// An inclusive numeric range. Either bound may be left out.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ValueRange {
    /// Lowest accepted value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    /// Highest accepted value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
}

impl ValueRange {
    /// Whether `x` lies inside the range.
    pub fn contains(&self, x: f64) -> bool {
        self.min.is_none_or(|min| x >= min) && self.max.is_none_or(|max| x <= max)
    }

    fn describe(&self) -> String {
        match (self.min, self.max) {
            (Some(min), Some(max)) => format!("{min} ..= {max}"),
            (Some(min), None) => format!(">= {min}"),
            (None, Some(max)) => format!("<= {max}"),
            (None, None) => "any number".to_owned(),
        }
    }
}

/// Who may do what with a parameter.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Access {
    /// Read only (measurements, status).
    #[default]
    Read,
    /// Read and write (setpoints, configuration).
    ReadWrite,
    /// Write only (commands that have no readable state).
    Write,
}

impl Access {
    /// Whether reading is allowed.
    pub fn can_read(self) -> bool {
        matches!(self, Self::Read | Self::ReadWrite)
    }

    /// Whether writing is allowed.
    pub fn can_write(self) -> bool {
        matches!(self, Self::Write | Self::ReadWrite)
    }

    /// The name used in profiles.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::ReadWrite => "read-write",
            Self::Write => "write",
        }
    }
}

/// One action a device can carry out.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ActionSpec {
    /// Name: a letter, then letters, digits or `_`, e.g. `reboot`, `start_calibration`.
    pub name: String,
    /// What the action means to the management model: `reboot` (BasicManagement Reboot),
    /// `factory-reset` (BaselineReset), `self-test`, or `custom` (default).
    #[serde(default)]
    pub kind: ActionKind,
    /// What the action does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Arguments the action takes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub arguments: Vec<ArgumentSpec>,
    /// How long the device may take to carry it out (default `30s`).
    #[serde(default = "default_action_timeout", with = "serde_duration")]
    #[schemars(with = "String")]
    pub timeout: Duration,
}

fn default_action_timeout() -> Duration {
    Duration::from_secs(30)
}

impl ActionSpec {
    /// Checks request arguments against the declared ones: every declared argument present,
    /// none extra, each of the right type and range.
    pub fn check_arguments(
        &self,
        given: &BTreeMap<String, Value>,
    ) -> Result<BTreeMap<String, Value>, LinkError> {
        if let Some(extra) = given
            .keys()
            .find(|k| !self.arguments.iter().any(|a| &a.name == *k))
        {
            return Err(LinkError::UnknownParameter {
                name: format!("{}.{extra}", self.name),
            });
        }
        self.arguments
            .iter()
            .map(|arg| {
                let value = given.get(&arg.name).ok_or_else(|| LinkError::WrongType {
                    name: format!("{}.{}", self.name, arg.name),
                    expected: arg.value_type.to_string(),
                    got: "nothing (the argument is required)".to_owned(),
                })?;
                let value = check_value(
                    &arg.name,
                    arg.value_type,
                    arg.range.as_ref(),
                    &arg.values,
                    arg.max_length,
                    value,
                )?;
                Ok((arg.name.clone(), value))
            })
            .collect()
    }
}

/// The management meaning of an action.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ActionKind {
    /// Restart the device (BasicManagement `Reboot`).
    Reboot,
    /// Return to factory settings (BasicManagement `BaselineReset`).
    FactoryReset,
    /// Run the device's self test.
    SelfTest,
    /// Anything else the profile defines.
    #[default]
    Custom,
}

/// One argument of an action.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ArgumentSpec {
    /// Name: a letter, then letters, digits or `_`.
    pub name: String,
    /// What the argument means.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Value type.
    #[serde(rename = "type")]
    pub value_type: ValueType,
    /// Unit, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    /// Accepted range for numbers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub range: Option<ValueRange>,
    /// Members of an `enum` argument.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<String>,
    /// Longest accepted `string`, in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_length: Option<u32>,
}

/// How firmware reaches the device.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FirmwareSpec {
    /// The adapter's transfer method (e.g. `file-record` for Modbus), or `none` (default) for a
    /// device whose firmware the gateway cannot update.
    #[serde(default = "default_none")]
    pub method: String,
    /// The device has two banks and can test a new image while keeping the old one.
    #[serde(default)]
    pub dual_bank: bool,
    /// Largest image the device takes, in bytes (default and upper bound 32 MiB).
    #[serde(default = "default_max_image_size")]
    pub max_image_size: u64,
}

impl Default for FirmwareSpec {
    fn default() -> Self {
        Self {
            method: default_none(),
            dual_bank: false,
            max_image_size: DEFAULT_MAX_IMAGE_SIZE,
        }
    }
}

impl FirmwareSpec {
    /// Whether the profile declares a firmware method.
    pub fn is_supported(&self) -> bool {
        self.method != "none"
    }
}

fn default_none() -> String {
    "none".to_owned()
}

fn default_max_image_size() -> u64 {
    DEFAULT_MAX_IMAGE_SIZE
}

/// Where the device keeps a log of its own.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LogSpec {
    /// The adapter's log method, or `none` (default) when the device keeps no log the gateway
    /// can read. The gateway keeps its own record of every device either way.
    #[serde(default = "default_none")]
    pub method: String,
    /// Fetch the device's log this often in the background (default: only on demand).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "serde_duration::option"
    )]
    #[schemars(with = "Option<String>")]
    pub fetch_interval: Option<Duration>,
}

impl Default for LogSpec {
    fn default() -> Self {
        Self {
            method: default_none(),
            fetch_interval: None,
        }
    }
}

impl LogSpec {
    /// Whether the profile declares a log method.
    pub fn is_supported(&self) -> bool {
        self.method != "none"
    }
}

/// What counts as healthy; used by health reporting and by firmware probation.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HealthSpec {
    /// The device counts as offline after this long without an answer (default: three poll
    /// intervals).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "serde_duration::option"
    )]
    #[schemars(with = "Option<String>")]
    pub offline_after: Option<Duration>,
    /// Numeric parameters that must stay in range.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<HealthCheck>,
}

/// A numeric parameter that must stay inside a range for the device to count as healthy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HealthCheck {
    /// The parameter's name.
    pub parameter: String,
    /// Lowest healthy value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    /// Highest healthy value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
}

/// How often and how patiently the device is polled.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PollSpec {
    /// Time between polls (default `10s`).
    #[serde(default = "default_poll_interval", with = "serde_duration")]
    #[schemars(with = "String")]
    pub interval: Duration,
    /// How long to wait for one answer (default `1s`).
    #[serde(default = "default_poll_timeout", with = "serde_duration")]
    #[schemars(with = "String")]
    pub timeout: Duration,
    /// How many times to retry a request that timed out (default 2).
    #[serde(default = "default_retries")]
    pub retries: u32,
}

impl Default for PollSpec {
    fn default() -> Self {
        Self {
            interval: default_poll_interval(),
            timeout: default_poll_timeout(),
            retries: default_retries(),
        }
    }
}

impl PollSpec {
    /// The longest one request may take including retries.
    pub fn request_deadline(&self) -> Duration {
        self.timeout.saturating_mul(self.retries.saturating_add(1))
    }
}

fn default_poll_interval() -> Duration {
    Duration::from_secs(10)
}

fn default_poll_timeout() -> Duration {
    Duration::from_secs(1)
}

fn default_retries() -> u32 {
    2
}

fn check_value(
    name: &str,
    value_type: ValueType,
    range: Option<&ValueRange>,
    members: &[String],
    max_length: Option<u32>,
    value: &Value,
) -> Result<Value, LinkError> {
    let wrong_type = || LinkError::WrongType {
        name: name.to_owned(),
        expected: value_type.to_string(),
        got: format!("{} {value}", value.kind_name()),
    };
    let normalised = match (value_type, value) {
        (ValueType::Bool, Value::Bool(_))
        | (ValueType::Int, Value::Int(_))
        | (ValueType::Float, Value::Float(_))
        | (ValueType::String | ValueType::Enum, Value::Text(_)) => value.clone(),
        (ValueType::Float, Value::Int(_)) => Value::Float(value.as_f64().ok_or_else(wrong_type)?),
        _ => return Err(wrong_type()),
    };
    let out_of_range = |expected: String| LinkError::OutOfRange {
        name: name.to_owned(),
        value: value.to_string(),
        expected,
    };
    match &normalised {
        Value::Float(x) if !x.is_finite() => {
            return Err(out_of_range("a finite number".to_owned()));
        }
        Value::Int(_) | Value::Float(_) => {
            if let (Some(range), Some(x)) = (range, normalised.as_f64())
                && !range.contains(x)
            {
                return Err(out_of_range(range.describe()));
            }
        }
        Value::Text(text) if value_type == ValueType::Enum => {
            if !members.iter().any(|m| m == text) {
                return Err(out_of_range(format!("one of {}", members.join(", "))));
            }
        }
        Value::Text(text) => {
            if let Some(max) = max_length
                && text.len() > max as usize
            {
                return Err(out_of_range(format!("at most {max} bytes")));
            }
        }
        Value::Bool(_) => {}
    }
    Ok(normalised)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    fn setpoint() -> Parameter {
        Parameter {
            name: "setpoint".into(),
            description: None,
            value_type: ValueType::Float,
            unit: Some("°C".into()),
            access: Access::ReadWrite,
            range: Some(ValueRange {
                min: Some(5.0),
                max: Some(30.0),
            }),
            values: vec![],
            max_length: None,
            resolution: Some(0.1),
            evented: true,
        }
    }

    #[test]
    fn int_given_for_float_should_be_accepted_as_float() {
        assert_eq!(
            setpoint().check_value(&Value::Int(21)),
            Ok(Value::Float(21.0))
        );
    }

    #[test]
    fn value_above_range_should_be_out_of_range() {
        let err = setpoint().check_value(&Value::Float(30.5)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::OutOfRange);
        assert_eq!(
            err.to_string(),
            "value 30.5 for `setpoint` is out of range: expected 5 ..= 30"
        );
    }

    #[test]
    fn nan_should_be_out_of_range() {
        let err = setpoint().check_value(&Value::Float(f64::NAN)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::OutOfRange);
    }

    #[test]
    fn text_for_number_should_be_wrong_type() {
        let err = setpoint().check_value(&Value::from("warm")).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::WrongType);
    }

    #[test]
    fn enum_member_outside_declared_values_should_be_out_of_range() {
        let mut mode = setpoint();
        mode.value_type = ValueType::Enum;
        mode.range = None;
        mode.values = vec!["auto".into(), "heat".into()];
        assert_eq!(
            mode.check_value(&Value::from("heat")),
            Ok(Value::from("heat"))
        );
        let err = mode.check_value(&Value::from("cool")).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::OutOfRange);
        assert!(err.to_string().contains("one of auto, heat"), "{err}");
    }
}

//! Homie 5 payloads, pure and bounded: device states, property values in Homie's own text forms,
//! the `$description` document, `$log/<level>` lines, and where a topic below a device points.
//!
//! Facts from the Homie convention v5.0.0 (<https://homieiot.github.io/specification/spec-core-v5_0_0/>,
//! released 11 May 2025):
//! - Topics: `<domain>/5/<device>/$state`, `$description`, `$log/<level>`, `$alert/<id>`,
//!   `<node>/<property>`, `<node>/<property>/set`, `<node>/<property>/$target`. IDs are lowercase
//!   `a`-`z`, `0`-`9` and `-`; `$` starts attributes.
//! - Payloads are UTF-8 text, never JSON except `$description` and the `json` datatype: an
//!   integer is `21`, a float `21.5` (digits, `-`, `e`/`E`, one `.`; no `NaN`/`Infinity`), a
//!   boolean exactly `true` or `false`, an enum member exactly as its format lists it. The empty
//!   string travels as one NUL byte, since an empty MQTT payload deletes a retained topic.
//! - `$state` is `init`, `ready`, `disconnected`, `sleeping` or `lost`; an empty payload removes
//!   the device.
//! - Log levels are `debug`, `info`, `warn`, `error` and `fatal`.

mod description;

use std::fmt;
use std::str::FromStr;

use iotmc_adapter::profile::Parameter;
use iotmc_adapter::{Severity, Value, ValueType};

use super::PayloadError;

pub use description::{
    Datatype, Description, Format, MAX_DESCRIPTION, NodeDescription, PropertyDescription,
    decode_description, parse_format,
};

/// Largest property value accepted, in bytes. (Homie allows strings of 256 MiB; no device of
/// ours needs more than a few hundred bytes.)
pub const MAX_VALUE_PAYLOAD: usize = 64 * 1024;

/// Longest log line kept, in bytes; longer lines are cut at a character boundary and say so.
pub const MAX_LOG_LINE: usize = 4 * 1024;

/// The Homie payload of an empty string: one NUL byte (§ Empty string values).
pub const EMPTY_STRING: &str = "\0";

/// Whether `id` is a Homie topic ID: one or more of `a`-`z`, `0`-`9` and `-`.
pub fn is_id(id: &str) -> bool {
    !id.is_empty()
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// A device's `$state` (§ Device Lifecycle).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeviceState {
    /// Connected, still publishing its description and values (or reconfiguring).
    Init,
    /// Described, values published, subscribed to its `/set` topics.
    Ready,
    /// Disconnected cleanly.
    Disconnected,
    /// Asleep, announced before sleeping.
    Sleeping,
    /// Disconnected uncleanly: the broker published the device's will.
    Lost,
}

impl DeviceState {
    /// The payload as Homie spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Init => "init",
            Self::Ready => "ready",
            Self::Disconnected => "disconnected",
            Self::Sleeping => "sleeping",
            Self::Lost => "lost",
        }
    }
}

impl fmt::Display for DeviceState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Decodes a `$state` payload. `Ok(None)` is an empty payload: the device was removed.
pub fn decode_state(topic: &str, payload: &[u8]) -> Result<Option<DeviceState>, PayloadError> {
    if payload.is_empty() {
        return Ok(None);
    }
    let text = text(topic, payload, 32)?;
    let state = match text {
        "init" => DeviceState::Init,
        "ready" => DeviceState::Ready,
        "disconnected" => DeviceState::Disconnected,
        "sleeping" => DeviceState::Sleeping,
        "lost" => DeviceState::Lost,
        other => {
            return Err(unexpected(
                topic,
                format!(
                    "expected a Homie state (init, ready, disconnected, sleeping or lost), got {}",
                    quote(other)
                ),
            ));
        }
    };
    Ok(Some(state))
}

/// A property's place in a device: `<node>/<property>`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PropertyPath {
    /// The node ID.
    pub node: String,
    /// The property ID.
    pub property: String,
}

impl fmt::Display for PropertyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.node, self.property)
    }
}

impl FromStr for PropertyPath {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let expected = "expected `<node>/<property>`, two Homie IDs (lowercase a-z, 0-9 and `-`), e.g. `thermostat/setpoint`";
        let Some((node, property)) = s.split_once('/') else {
            return Err(format!("{s:?}: {expected}"));
        };
        if !is_id(node) || !is_id(property) {
            return Err(format!("{s:?}: {expected}"));
        }
        Ok(Self {
            node: node.to_owned(),
            property: property.to_owned(),
        })
    }
}

/// What a topic below `<domain>/5/<device>/` is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceTopic<'a> {
    /// `$state`.
    State,
    /// `$description`.
    Description,
    /// `$log/<level>`.
    Log(&'a str),
    /// `$alert/<id>`.
    Alert(&'a str),
    /// `<node>/<property>`: a value.
    Value(PropertyPath),
    /// `<node>/<property>/$target`: the value the device is moving to.
    Target(PropertyPath),
    /// `<node>/<property>/set`: a command to the device (ours or another controller's).
    Set(PropertyPath),
    /// Anything else (other attributes, extensions, malformed levels).
    Other,
}

impl<'a> DeviceTopic<'a> {
    /// Classifies `rest`, the topic after `<domain>/5/<device>/`.
    pub fn classify(rest: &'a str) -> Self {
        let levels: Vec<&str> = rest.splitn(4, '/').collect();
        let path = |node: &str, property: &str| {
            (is_id(node) && is_id(property)).then(|| PropertyPath {
                node: node.to_owned(),
                property: property.to_owned(),
            })
        };
        match levels.as_slice() {
            ["$state"] => Self::State,
            ["$description"] => Self::Description,
            ["$log", level] if !level.is_empty() => Self::Log(level),
            ["$alert", id] if !id.is_empty() => Self::Alert(id),
            [node, property] => path(node, property).map_or(Self::Other, Self::Value),
            [node, property, "$target"] => path(node, property).map_or(Self::Other, Self::Target),
            [node, property, "set"] => path(node, property).map_or(Self::Other, Self::Set),
            _ => Self::Other,
        }
    }
}

/// Decodes a property value into the parameter's type, by Homie's payload rules (a float
/// parameter also reads a Homie integer).
pub fn decode_value(
    topic: &str,
    parameter: &Parameter,
    payload: &[u8],
) -> Result<Value, PayloadError> {
    let text = text(topic, payload, MAX_VALUE_PAYLOAD)?;
    let wrong = |what: &str| {
        unexpected(
            topic,
            format!(
                "expected {what} for parameter `{}`, got {}",
                parameter.name,
                quote(text)
            ),
        )
    };
    let value = match parameter.value_type {
        ValueType::Bool => match text {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            _ => return Err(wrong("a Homie boolean (`true` or `false`)")),
        },
        ValueType::Int => Value::Int(parse_integer(text).ok_or_else(|| wrong("a Homie integer"))?),
        ValueType::Float => Value::Float(parse_float(text).ok_or_else(|| wrong("a Homie float"))?),
        ValueType::Enum => {
            if parameter.values.iter().any(|m| m == text) {
                Value::Text(text.to_owned())
            } else {
                return Err(wrong(&format!("one of {}", parameter.values.join(", "))));
            }
        }
        ValueType::String => Value::Text(if text == EMPTY_STRING {
            String::new()
        } else {
            text.to_owned()
        }),
    };
    Ok(value)
}

/// Encodes a checked value as the Homie payload for a property of `datatype` (or of the
/// value's own kind when the description is not known): `true`, `21`, `21.5`, `heat`; an
/// empty string as one NUL byte. A whole float for an `integer` property is written without
/// a fraction. Returns an error for a fractional value to an `integer` property.
pub fn encode_value(value: &Value, datatype: Option<Datatype>) -> Result<String, String> {
    let text = match value {
        Value::Bool(b) => b.to_string(),
        Value::Int(i) => i.to_string(),
        Value::Float(f) if datatype == Some(Datatype::Integer) => {
            if f.fract() == 0.0 && f.abs() < 9.0e15 {
                // Checked above: whole and well inside i64.
                #[allow(clippy::cast_possible_truncation)]
                let whole = *f as i64;
                whole.to_string()
            } else {
                return Err(format!(
                    "{f} is not a whole number, and the device's property is a Homie integer"
                ));
            }
        }
        // Rust prints the shortest text that reads back as the same f64, without exponent:
        // only digits, `-` and `.`, as Homie floats must be.
        Value::Float(f) => f.to_string(),
        Value::Text(s) if s.is_empty() => EMPTY_STRING.to_owned(),
        Value::Text(s) => s.clone(),
    };
    Ok(text)
}

/// A Homie integer: an optional `-` and digits, nothing else.
pub fn parse_integer(text: &str) -> Option<i64> {
    let digits = text.strip_prefix('-').unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// A Homie float: digits, `-`, `e`/`E` and at most one `.`, finite. (A `+` in the exponent is
/// tolerated, as devices printing with `%g` send it.)
pub fn parse_float(text: &str) -> Option<f64> {
    let allowed = text
        .bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b'-' | b'+' | b'e' | b'E' | b'.'));
    if !allowed || text.bytes().filter(|&b| b == b'.').count() > 1 {
        return None;
    }
    text.parse::<f64>().ok().filter(|f| f.is_finite())
}

/// The severity of a `$log/<level>` line. `None` for a level Homie does not define.
pub fn log_severity(level: &str) -> Option<Severity> {
    let severity = match level {
        "debug" => Severity::Debug,
        "info" => Severity::Informational,
        "warn" => Severity::Warning,
        "error" => Severity::Error,
        "fatal" => Severity::Critical,
        _ => return None,
    };
    Some(severity)
}

/// The Homie level a device logs a line of `severity` at (the simulator's side of
/// [`log_severity`]): emergency, alert and critical are `fatal`; notice is `info`.
pub fn log_level(severity: Severity) -> &'static str {
    match severity {
        Severity::Emergency | Severity::Alert | Severity::Critical => "fatal",
        Severity::Error => "error",
        Severity::Warning => "warn",
        Severity::Notice | Severity::Informational => "info",
        Severity::Debug => "debug",
    }
}

/// Decodes a log line: UTF-8 text, cut at [`MAX_LOG_LINE`] bytes with a note saying how much
/// was cut.
pub fn decode_log_line(topic: &str, payload: &[u8]) -> Result<String, PayloadError> {
    let text = std::str::from_utf8(payload).map_err(|_| PayloadError::NotText {
        topic: topic.to_owned(),
    })?;
    if text.len() <= MAX_LOG_LINE {
        return Ok(text.to_owned());
    }
    let mut end = MAX_LOG_LINE;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    Ok(format!(
        "{} [... {} more bytes cut by the gateway]",
        &text[..end],
        text.len() - end
    ))
}

fn text<'a>(topic: &str, payload: &'a [u8], limit: usize) -> Result<&'a str, PayloadError> {
    if payload.len() > limit {
        return Err(PayloadError::TooLarge {
            topic: topic.to_owned(),
            size: payload.len(),
            limit,
        });
    }
    std::str::from_utf8(payload).map_err(|_| PayloadError::NotText {
        topic: topic.to_owned(),
    })
}

fn unexpected(topic: &str, reason: String) -> PayloadError {
    PayloadError::Unexpected {
        topic: topic.to_owned(),
        reason,
    }
}

/// A payload quoted for an error message, cut to 64 characters.
pub(crate) fn quote(text: &str) -> String {
    const SHOWN: usize = 64;
    if text.chars().count() <= SHOWN {
        format!("{text:?}")
    } else {
        let head: String = text.chars().take(SHOWN).collect();
        format!("{head:?}... ({} bytes)", text.len())
    }
}

#[cfg(test)]
mod tests;

//! The `$description` document (Homie 5 § Device Attributes, Nodes, Properties, Formats): a
//! JSON object with `homie` (`"5.x"`), `version`, optional `name` and `type`, and `nodes`
//! indexed by ID, each with `properties` indexed by ID.
//!
//! As the convention asks of controllers (§ Forward compatibility): unknown fields are ignored;
//! a node or property with an illegal value in a known field is left out, and the reason kept
//! in [`Description::skipped`] so the link can log it. An illegal device-level field refuses
//! the whole document.

use std::collections::BTreeMap;
use std::fmt;

use serde_json::{Map, Value as Json};

use super::{is_id, parse_float, parse_integer, quote};
use crate::codec::PayloadError;
use crate::codec::json;

/// Largest `$description` accepted, in bytes.
pub const MAX_DESCRIPTION: usize = json::MAX_JSON_PAYLOAD;

/// A device's `$description`.
#[derive(Debug, Clone, PartialEq)]
pub struct Description {
    /// The convention version the device implements, `5.x`.
    pub homie: String,
    /// The document's version; changes whenever the document does.
    pub version: i64,
    /// Friendly name, if given (the device ID otherwise).
    pub name: Option<String>,
    /// The device's type, if given.
    pub device_type: Option<String>,
    /// The nodes, by ID.
    pub nodes: BTreeMap<String, NodeDescription>,
    /// Nodes and properties left out for an illegal value, in words.
    pub skipped: Vec<String>,
}

impl Description {
    /// The property at `node`/`property`, if described.
    pub fn property(&self, node: &str, property: &str) -> Option<&PropertyDescription> {
        self.nodes.get(node)?.properties.get(property)
    }
}

/// One node of a device.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeDescription {
    /// Friendly name, if given.
    pub name: Option<String>,
    /// The node's type, if given.
    pub node_type: Option<String>,
    /// The properties, by ID.
    pub properties: BTreeMap<String, PropertyDescription>,
}

/// One property of a node.
#[derive(Debug, Clone, PartialEq)]
pub struct PropertyDescription {
    /// Friendly name, if given.
    pub name: Option<String>,
    /// Its datatype.
    pub datatype: Datatype,
    /// Its format, parsed.
    pub format: Format,
    /// Whether it takes `/set` (default `false`).
    pub settable: bool,
    /// Whether its values are retained (default `true`); non-retained ones are momentary events.
    pub retained: bool,
    /// Its unit, if given.
    pub unit: Option<String>,
}

/// A property's datatype.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Datatype {
    /// `integer`: 64-bit signed.
    Integer,
    /// `float`: 64-bit.
    Float,
    /// `boolean`: `true` or `false`.
    Boolean,
    /// `string`.
    String,
    /// `enum`: one of the format's members.
    Enum,
    /// `color`: `rgb,...`, `hsv,...` or `xyz,...`.
    Color,
    /// `datetime`: ISO 8601.
    Datetime,
    /// `duration`: ISO 8601 duration, `PTxHxMxS`.
    Duration,
    /// `json`: a JSON array or object.
    Json,
}

impl Datatype {
    /// The name as Homie spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Integer => "integer",
            Self::Float => "float",
            Self::Boolean => "boolean",
            Self::String => "string",
            Self::Enum => "enum",
            Self::Color => "color",
            Self::Datetime => "datetime",
            Self::Duration => "duration",
            Self::Json => "json",
        }
    }

    fn parse(name: &str) -> Option<Self> {
        let datatype = match name {
            "integer" => Self::Integer,
            "float" => Self::Float,
            "boolean" => Self::Boolean,
            "string" => Self::String,
            "enum" => Self::Enum,
            "color" => Self::Color,
            "datetime" => Self::Datetime,
            "duration" => Self::Duration,
            "json" => Self::Json,
            _ => return None,
        };
        Some(datatype)
    }
}

impl fmt::Display for Datatype {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A property's `format` (§ Formats), parsed for its datatype.
#[derive(Debug, Clone, PartialEq)]
pub enum Format {
    /// None given, or none defined for the datatype.
    None,
    /// `[min]:[max][:step]` of an `integer` or `float`.
    Range {
        /// Lowest allowed value, inclusive.
        min: Option<f64>,
        /// Highest allowed value, inclusive.
        max: Option<f64>,
        /// Step size, greater than 0.
        step: Option<f64>,
    },
    /// The members of an `enum`.
    Members(Vec<String>),
    /// The labels of a `boolean`'s `false` and `true`, e.g. `close,open`.
    Labels(String, String),
    /// The color formats a `color` property takes, preferred first.
    Colors(Vec<String>),
    /// The JSON schema of a `json` property, as text.
    Schema(String),
}

/// Decodes a `$description` payload that arrived on `topic`.
pub fn decode_description(topic: &str, payload: &[u8]) -> Result<Description, PayloadError> {
    let document = json::parse(topic, payload)?;
    let fail = |reason: String| PayloadError::Unexpected {
        topic: topic.to_owned(),
        reason: format!("the Homie $description {reason}"),
    };
    let Json::Object(device) = document else {
        return Err(fail(format!(
            "must be a JSON object, got {}",
            kind(&document)
        )));
    };
    let homie = match device.get("homie") {
        Some(Json::String(v)) if is_v5(v) => v.clone(),
        Some(other) => {
            return Err(fail(format!(
                "says `homie`: {other}; expected \"5.x\" (this is a Homie 5 controller)"
            )));
        }
        None => return Err(fail("has no `homie` field (expected \"5.x\")".to_owned())),
    };
    let version = match device.get("version") {
        Some(Json::Number(n)) => n.as_i64().ok_or_else(|| {
            fail(format!(
                "has `version`: {n}; expected an integer (the document's version)"
            ))
        })?,
        Some(other) => {
            return Err(fail(format!(
                "has `version`: {}; expected an integer",
                kind(other)
            )));
        }
        None => {
            return Err(fail(
                "has no `version` field (an integer that changes with the document)".to_owned(),
            ));
        }
    };
    let name = optional_string(&device, "name").map_err(&fail)?;
    let device_type = optional_string(&device, "type").map_err(&fail)?;
    let mut skipped = Vec::new();
    let nodes = match device.get("nodes") {
        None => BTreeMap::new(),
        Some(Json::Object(nodes)) => nodes
            .iter()
            .filter_map(|(id, node)| match decode_node(id, node, &mut skipped) {
                Ok(node) => Some((id.clone(), node)),
                Err(why) => {
                    skipped.push(format!("node `{id}` left out: {why}"));
                    None
                }
            })
            .collect(),
        Some(other) => {
            return Err(fail(format!(
                "has `nodes`: {}; expected an object of nodes by ID",
                kind(other)
            )));
        }
    };
    Ok(Description {
        homie,
        version,
        name,
        device_type,
        nodes,
        skipped,
    })
}

fn decode_node(
    id: &str,
    node: &Json,
    skipped: &mut Vec<String>,
) -> Result<NodeDescription, String> {
    if !is_id(id) {
        return Err("the ID is not a Homie ID (lowercase a-z, 0-9 and `-`)".to_owned());
    }
    let Json::Object(node) = node else {
        return Err(format!("expected an object, got {}", kind(node)));
    };
    let name = optional_string(node, "name")?;
    let node_type = optional_string(node, "type")?;
    let properties = match node.get("properties") {
        None => BTreeMap::new(),
        Some(Json::Object(properties)) => properties
            .iter()
            .filter_map(|(pid, property)| match decode_property(pid, property) {
                Ok(property) => Some((pid.clone(), property)),
                Err(why) => {
                    skipped.push(format!("property `{id}/{pid}` left out: {why}"));
                    None
                }
            })
            .collect(),
        Some(other) => {
            return Err(format!(
                "`properties` is {}; expected an object of properties by ID",
                kind(other)
            ));
        }
    };
    Ok(NodeDescription {
        name,
        node_type,
        properties,
    })
}

fn decode_property(id: &str, property: &Json) -> Result<PropertyDescription, String> {
    if !is_id(id) {
        return Err("the ID is not a Homie ID (lowercase a-z, 0-9 and `-`)".to_owned());
    }
    let Json::Object(property) = property else {
        return Err(format!("expected an object, got {}", kind(property)));
    };
    let datatype = match property.get("datatype") {
        Some(Json::String(name)) => Datatype::parse(name).ok_or_else(|| {
            format!(
                "unknown datatype {}; Homie 5 has integer, float, boolean, string, enum, color, datetime, duration and json",
                quote(name)
            )
        })?,
        Some(other) => return Err(format!("`datatype` is {}; expected a string", kind(other))),
        None => return Err("no `datatype`".to_owned()),
    };
    let format = optional_string(property, "format")?;
    let format = parse_format(datatype, format.as_deref())?;
    Ok(PropertyDescription {
        name: optional_string(property, "name")?,
        datatype,
        format,
        settable: optional_bool(property, "settable")?.unwrap_or(false),
        retained: optional_bool(property, "retained")?.unwrap_or(true),
        unit: optional_string(property, "unit")?,
    })
}

/// Parses a `format` for its datatype.
pub fn parse_format(datatype: Datatype, format: Option<&str>) -> Result<Format, String> {
    let parsed = match (datatype, format) {
        (Datatype::Integer | Datatype::Float, None) => Format::None,
        (Datatype::Integer | Datatype::Float, Some(text)) => parse_range(datatype, text)?,
        (Datatype::Enum, None) => {
            return Err("an enum needs a `format` listing its members".to_owned());
        }
        (Datatype::Enum, Some(text)) => {
            let members: Vec<String> = text.split(',').map(str::to_owned).collect();
            if members.iter().any(String::is_empty) {
                return Err(format!("enum format {} has an empty member", quote(text)));
            }
            let mut sorted = members.clone();
            sorted.sort();
            sorted.dedup();
            if sorted.len() != members.len() {
                return Err(format!("enum format {} repeats a member", quote(text)));
            }
            Format::Members(members)
        }
        (Datatype::Boolean, None) => Format::None,
        (Datatype::Boolean, Some(text)) => match text.split_once(',') {
            Some((off, on)) if !off.is_empty() && !on.is_empty() && !on.contains(',') => {
                Format::Labels(off.to_owned(), on.to_owned())
            }
            _ => {
                return Err(format!(
                    "boolean format {} must be two labels, `<false>,<true>`",
                    quote(text)
                ));
            }
        },
        (Datatype::Color, None) => {
            return Err("a color needs a `format` (rgb, hsv and/or xyz)".to_owned());
        }
        (Datatype::Color, Some(text)) => {
            let formats: Vec<String> = text.split(',').map(str::to_owned).collect();
            if formats
                .iter()
                .all(|f| matches!(f.as_str(), "rgb" | "hsv" | "xyz"))
            {
                Format::Colors(formats)
            } else {
                return Err(format!(
                    "color format {} may only list rgb, hsv and xyz",
                    quote(text)
                ));
            }
        }
        (Datatype::Json, Some(text)) => Format::Schema(text.to_owned()),
        (Datatype::Json | Datatype::String | Datatype::Datetime | Datatype::Duration, _) => {
            Format::None
        }
    };
    Ok(parsed)
}

/// `[min]:[max][:step]`, each bound in the datatype's own syntax.
fn parse_range(datatype: Datatype, text: &str) -> Result<Format, String> {
    let bad = |why: &str| {
        format!(
            "{datatype} format {} {why}; expected `[min]:[max][:step]`, e.g. `5:30:0.5`",
            quote(text)
        )
    };
    let parts: Vec<&str> = text.split(':').collect();
    if !(2..=3).contains(&parts.len()) {
        return Err(bad("is not a range"));
    }
    let number = |part: &str| -> Result<Option<f64>, String> {
        if part.is_empty() {
            return Ok(None);
        }
        let parsed = match datatype {
            // Integer bounds are whole; as f64 they compare with the profile's ranges.
            #[allow(clippy::cast_precision_loss)]
            Datatype::Integer => parse_integer(part).map(|i| i as f64),
            _ => parse_float(part),
        };
        parsed
            .map(Some)
            .ok_or_else(|| bad(&format!("has {} where a number belongs", quote(part))))
    };
    let min = number(parts[0])?;
    let max = number(parts[1])?;
    let step = match parts.get(2) {
        Some(part) => match number(part)? {
            Some(step) if step > 0.0 => Some(step),
            _ => return Err(bad("has a step that is not greater than 0")),
        },
        None => None,
    };
    if let (Some(min), Some(max)) = (min, max)
        && min > max
    {
        return Err(bad("has its minimum above its maximum"));
    }
    Ok(Format::Range { min, max, step })
}

fn is_v5(version: &str) -> bool {
    version
        .strip_prefix("5.")
        .is_some_and(|minor| !minor.is_empty() && minor.bytes().all(|b| b.is_ascii_digit()))
}

fn optional_string(object: &Map<String, Json>, key: &str) -> Result<Option<String>, String> {
    match object.get(key) {
        None => Ok(None),
        Some(Json::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(format!("`{key}` is {}; expected a string", kind(other))),
    }
}

fn optional_bool(object: &Map<String, Json>, key: &str) -> Result<Option<bool>, String> {
    match object.get(key) {
        None => Ok(None),
        Some(Json::Bool(b)) => Ok(Some(*b)),
        Some(other) => Err(format!(
            "`{key}` is {}; expected true or false",
            kind(other)
        )),
    }
}

fn kind(json: &Json) -> &'static str {
    match json {
        Json::Null => "null",
        Json::Bool(_) => "a boolean",
        Json::Number(_) => "a number",
        Json::String(_) => "a string",
        Json::Array(_) => "an array",
        Json::Object(_) => "an object",
    }
}

//! JSON payloads: bounded parsing, JSON pointers (RFC 6901, as `serde_json` implements them),
//! and conversion between JSON and the profile's value types.

use iotmc_adapter::profile::Parameter;
use iotmc_adapter::{Value, ValueType};
use serde_json::Value as Json;

use super::PayloadError;

/// Largest JSON payload parsed, in bytes. serde_json also bounds nesting depth (128).
pub const MAX_JSON_PAYLOAD: usize = 64 * 1024;

/// Parses a JSON payload that arrived on `topic`.
pub fn parse(topic: &str, payload: &[u8]) -> Result<Json, PayloadError> {
    if payload.len() > MAX_JSON_PAYLOAD {
        return Err(PayloadError::TooLarge {
            topic: topic.to_owned(),
            size: payload.len(),
            limit: MAX_JSON_PAYLOAD,
        });
    }
    serde_json::from_slice(payload).map_err(|e| PayloadError::NotJson {
        topic: topic.to_owned(),
        reason: e.to_string(),
    })
}

/// Converts a JSON value to a value of the parameter's type. Accepts the forms devices really
/// send: numbers as strings (`"21.5"`), `"ON"`/`"OFF"`, `"true"`/`"false"`, 0/1 for booleans, and
/// enum members by name. The error says what was expected and what came.
pub fn to_value(parameter: &Parameter, json: &Json) -> Result<Value, String> {
    let got = || format!("{json}");
    let value = match (parameter.value_type, json) {
        (ValueType::Bool, Json::Bool(b)) => Value::Bool(*b),
        (ValueType::Bool, Json::Number(n)) => match n.as_i64() {
            Some(0) => Value::Bool(false),
            Some(1) => Value::Bool(true),
            _ => return Err(format!("expected a boolean, got {}", got())),
        },
        (ValueType::Bool, Json::String(s)) => match s.to_ascii_lowercase().as_str() {
            "on" | "true" | "1" => Value::Bool(true),
            "off" | "false" | "0" => Value::Bool(false),
            _ => {
                return Err(format!(
                    "expected a boolean (ON/OFF, true/false), got {}",
                    got()
                ));
            }
        },
        (ValueType::Int, Json::Number(n)) => match n.as_i64() {
            Some(i) => Value::Int(i),
            None => match n.as_f64() {
                Some(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => {
                    // Checked above: integral and well inside i64.
                    #[allow(clippy::cast_possible_truncation)]
                    Value::Int(f as i64)
                }
                _ => return Err(format!("expected an integer, got {}", got())),
            },
        },
        (ValueType::Int, Json::String(s)) => s
            .trim()
            .parse::<i64>()
            .map(Value::Int)
            .map_err(|_| format!("expected an integer, got {}", got()))?,
        (ValueType::Float, Json::Number(n)) => n
            .as_f64()
            .map(Value::Float)
            .ok_or_else(|| format!("expected a number, got {}", got()))?,
        (ValueType::Float, Json::String(s)) => match s.trim().parse::<f64>() {
            Ok(f) if f.is_finite() => Value::Float(f),
            _ => return Err(format!("expected a number, got {}", got())),
        },
        (ValueType::String, Json::String(s)) => Value::Text(s.clone()),
        (ValueType::String, Json::Number(n)) => Value::Text(n.to_string()),
        (ValueType::String, Json::Bool(b)) => Value::Text(b.to_string()),
        (ValueType::Enum, Json::String(s)) => {
            if parameter.values.iter().any(|m| m == s) {
                Value::Text(s.clone())
            } else {
                return Err(format!(
                    "expected one of {}, got {}",
                    parameter.values.join(", "),
                    got()
                ));
            }
        }
        (expected, _) => return Err(format!("expected {expected}, got {}", got())),
    };
    Ok(value)
}

/// Converts a checked value to JSON.
pub fn from_value(value: &Value) -> Json {
    match value {
        Value::Bool(b) => Json::Bool(*b),
        Value::Int(i) => Json::from(*i),
        Value::Float(f) => serde_json::Number::from_f64(*f)
            .map(Json::Number)
            .unwrap_or(Json::Null),
        Value::Text(s) => Json::String(s.clone()),
    }
}

/// Checks that `pointer` is a syntactically valid JSON pointer (empty, or `/`-separated with
/// `~0`/`~1` escapes only).
pub fn check_pointer(pointer: &str) -> Result<(), String> {
    if pointer.is_empty() {
        return Ok(());
    }
    if !pointer.starts_with('/') {
        return Err(format!(
            "JSON pointer {pointer:?} must be empty or start with `/` (RFC 6901), e.g. `/ENERGY/Power`"
        ));
    }
    let mut chars = pointer.chars();
    while let Some(c) = chars.next() {
        if c == '~' && !matches!(chars.next(), Some('0' | '1')) {
            return Err(format!(
                "JSON pointer {pointer:?} has a `~` not followed by 0 or 1 (RFC 6901 escapes `~` as `~0` and `/` as `~1`)"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use iotmc_adapter::Profile;
    use std::path::Path;

    fn parameters() -> Profile {
        Profile::from_toml(
            Path::new("t.toml"),
            r#"
id = "t"
manufacturer = "m"
model = "m"
protocol = "mqtt"
[[parameters]]
name = "power"
type = "bool"
[[parameters]]
name = "count"
type = "int"
[[parameters]]
name = "temp"
type = "float"
[[parameters]]
name = "mode"
type = "enum"
values = ["heat", "cool"]
[[parameters]]
name = "label"
type = "string"
"#,
        )
        .unwrap()
    }

    #[test]
    fn device_forms_should_convert_to_the_declared_type() {
        let p = parameters();
        let param = |n: &str| p.parameter(n).unwrap().clone();
        assert_eq!(
            to_value(&param("power"), &Json::from("ON")),
            Ok(Value::Bool(true))
        );
        assert_eq!(
            to_value(&param("power"), &Json::from(0)),
            Ok(Value::Bool(false))
        );
        assert_eq!(
            to_value(&param("count"), &Json::from("42")),
            Ok(Value::Int(42))
        );
        assert_eq!(
            to_value(&param("count"), &Json::from(42.0)),
            Ok(Value::Int(42))
        );
        assert_eq!(
            to_value(&param("temp"), &Json::from("21.5")),
            Ok(Value::Float(21.5))
        );
        assert_eq!(
            to_value(&param("mode"), &Json::from("cool")),
            Ok(Value::Text("cool".into()))
        );
        assert_eq!(
            to_value(&param("label"), &Json::from(7)),
            Ok(Value::Text("7".into()))
        );
    }

    #[test]
    fn wrong_types_should_say_what_was_expected_and_what_came() {
        let p = parameters();
        let param = |n: &str| p.parameter(n).unwrap().clone();
        let err = to_value(&param("power"), &Json::from("maybe")).unwrap_err();
        assert!(err.contains("boolean") && err.contains("maybe"), "{err}");
        let err = to_value(&param("count"), &Json::from(1.5)).unwrap_err();
        assert!(err.contains("integer") && err.contains("1.5"), "{err}");
        let err = to_value(&param("mode"), &Json::from("fan")).unwrap_err();
        assert!(err.contains("heat, cool") && err.contains("fan"), "{err}");
        let err = to_value(&param("temp"), &serde_json::json!({"a": 1})).unwrap_err();
        assert!(err.contains("float"), "{err}");
        assert!(to_value(&param("temp"), &Json::from("NaN")).is_err());
    }

    #[test]
    fn payloads_should_be_bounded_and_named_by_topic() {
        let big = vec![b' '; MAX_JSON_PAYLOAD + 1];
        assert!(matches!(
            parse("t/x", &big),
            Err(PayloadError::TooLarge { .. })
        ));
        let err = parse("stat/plug/RESULT", b"{not json").unwrap_err();
        assert!(err.to_string().contains("stat/plug/RESULT"), "{err}");
        let deep = "[".repeat(10_000);
        assert!(parse("t", deep.as_bytes()).is_err());
    }

    #[test]
    fn pointers_should_be_checked() {
        assert!(check_pointer("").is_ok());
        assert!(check_pointer("/ENERGY/Power").is_ok());
        assert!(check_pointer("/a~1b/~0c").is_ok());
        assert!(check_pointer("ENERGY").is_err());
        assert!(check_pointer("/a~2").is_err());
    }
}

//! Choosing values for the kit's writes.

use std::collections::BTreeMap;

use crate::profile::{ActionSpec, Parameter, ValueRange};
use crate::{Value, ValueType};

/// A valid value for `parameter` that differs from `current`, if the declaration has one.
pub(super) fn different_valid_value(
    parameter: &Parameter,
    current: Option<&Value>,
) -> Option<Value> {
    candidates(
        parameter.value_type,
        parameter.range.as_ref(),
        &parameter.values,
        parameter.max_length,
        parameter.resolution,
    )
    .into_iter()
    .find(|candidate| current.is_none_or(|c| !same(parameter, c, candidate)))
}

/// A value the declaration forbids (above the range, or outside the members), if there is one.
pub(super) fn out_of_range_value(parameter: &Parameter) -> Option<Value> {
    let step = parameter.resolution.unwrap_or(1.0).max(1.0);
    match parameter.value_type {
        ValueType::Int => {
            let range = parameter.range?;
            #[allow(clippy::cast_possible_truncation)]
            range
                .max
                .map(|max| Value::Int(max.floor() as i64 + 1))
                .or_else(|| range.min.map(|min| Value::Int(min.ceil() as i64 - 1)))
        }
        ValueType::Float => {
            let range = parameter.range?;
            range
                .max
                .map(|max| Value::Float(max + step))
                .or_else(|| range.min.map(|min| Value::Float(min - step)))
        }
        ValueType::Enum => Some(Value::Text("not_a_declared_member".into())),
        ValueType::String => parameter
            .max_length
            .map(|max| Value::Text("x".repeat(max as usize + 1))),
        ValueType::Bool => None,
    }
}

/// Valid arguments for an action: the lowest value of each declared argument.
pub(super) fn valid_arguments(action: &ActionSpec) -> BTreeMap<String, Value> {
    action
        .arguments
        .iter()
        .map(|arg| {
            let value = candidates(
                arg.value_type,
                arg.range.as_ref(),
                &arg.values,
                arg.max_length,
                None,
            )
            .into_iter()
            .next()
            .unwrap_or(Value::Bool(false));
            (arg.name.clone(), value)
        })
        .collect()
}

/// Whether a value read back equals the one written, within the parameter's resolution.
pub(super) fn same(parameter: &Parameter, a: &Value, b: &Value) -> bool {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) if parameter.value_type == ValueType::Float => {
            let tolerance = parameter
                .resolution
                .map_or(1e-9 * x.abs().max(1.0), |r| r / 2.0);
            (x - y).abs() <= tolerance
        }
        _ => a == b,
    }
}

/// Whether a value read has the parameter's declared type.
pub(super) fn type_matches(parameter: &Parameter, value: &Value) -> Result<(), String> {
    let ok = matches!(
        (parameter.value_type, value),
        (ValueType::Bool, Value::Bool(_))
            | (ValueType::Int, Value::Int(_))
            | (ValueType::Float, Value::Float(_) | Value::Int(_))
            | (ValueType::String | ValueType::Enum, Value::Text(_))
    );
    if ok {
        Ok(())
    } else {
        Err(format!(
            "declared {}, read {} {value}",
            parameter.value_type,
            value.kind_name()
        ))
    }
}

fn candidates(
    value_type: ValueType,
    range: Option<&ValueRange>,
    members: &[String],
    max_length: Option<u32>,
    resolution: Option<f64>,
) -> Vec<Value> {
    let range = range.copied().unwrap_or(ValueRange {
        min: None,
        max: None,
    });
    match value_type {
        ValueType::Bool => vec![Value::Bool(true), Value::Bool(false)],
        ValueType::Int => {
            let (low, high) = bounds(range);
            #[allow(clippy::cast_possible_truncation)]
            let (low, high) = (low.ceil() as i64, high.floor() as i64);
            let mid = low + (high - low) / 2;
            vec![Value::Int(mid), Value::Int(low), Value::Int(high)]
        }
        ValueType::Float => {
            let (low, high) = bounds(range);
            let step = resolution.unwrap_or(0.5);
            let mid = ((low + (high - low) / 2.0) / step).round() * step;
            vec![
                Value::Float(mid.clamp(low, high)),
                Value::Float(low),
                Value::Float(high),
            ]
        }
        ValueType::Enum => members.iter().map(|m| Value::Text(m.clone())).collect(),
        ValueType::String => {
            let limit = max_length.map_or(usize::MAX, |m| m as usize);
            ["iotmc conformance", "kit"]
                .iter()
                .map(|s| Value::Text(s.chars().take(limit).collect()))
                .collect()
        }
    }
}

/// The range to pick test values from: the declared bounds, a span of 100 beside a single
/// bound, or 0 to 100 when there is none.
fn bounds(range: ValueRange) -> (f64, f64) {
    match (range.min, range.max) {
        (Some(low), Some(high)) => (low, high),
        (Some(low), None) => (low, low + 100.0),
        (None, Some(high)) => (high - 100.0, high),
        (None, None) => (0.0, 100.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_sided_ranges_should_give_values_inside_them() {
        for range in [
            ValueRange {
                min: Some(150.0),
                max: None,
            },
            ValueRange {
                min: None,
                max: Some(-10.0),
            },
        ] {
            for value_type in [ValueType::Int, ValueType::Float] {
                for value in candidates(value_type, Some(&range), &[], None, None) {
                    let x = value.as_f64().unwrap_or(f64::NAN);
                    assert!(range.contains(x), "{value} outside {range:?}");
                }
            }
        }
    }
}

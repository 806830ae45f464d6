//! Starting values of a simulated device, and the value an unhealthy image makes it report.

use iotmc_adapter::profile::Parameter;
use iotmc_adapter::{Profile, Value, ValueType};

use crate::encoding::Codec;
use crate::frame::Table;
use crate::profile::{ModbusSection, Point};

/// A valid starting value: inside the parameter's health check and range where possible.
pub(super) fn initial_value(
    profile: &Profile,
    section: &ModbusSection,
    point: &Point,
    parameter: &Parameter,
) -> Option<Value> {
    let codec = Codec::new(section, point);
    let fits = |value: Value| -> Option<Value> {
        let value = parameter.check_value(&value).ok()?;
        let ok = if codec.table().is_bits() {
            codec.encode_bit(parameter, &value).is_ok()
        } else {
            codec.encode_registers(parameter, &value, Some(0)).is_ok()
        };
        ok.then_some(value)
    };
    match parameter.value_type {
        ValueType::Bool => fits(Value::Bool(false)),
        ValueType::Enum => parameter
            .values
            .first()
            .and_then(|m| fits(Value::from(m.as_str()))),
        ValueType::String => {
            let max = parameter.max_length.map_or(usize::MAX, |m| m as usize);
            let room = usize::from(codec.span()) * 2;
            fits(Value::from(&"SIM"[..3.min(max).min(room)]))
        }
        ValueType::Int | ValueType::Float => {
            let mut candidates = Vec::new();
            let bounds = |min: Option<f64>, max: Option<f64>| match (min, max) {
                (Some(a), Some(b)) => vec![(a + b) / 2.0, a, b],
                (Some(a), None) => vec![a],
                (None, Some(b)) => vec![b],
                (None, None) => vec![],
            };
            if let Some(check) = profile
                .health
                .checks
                .iter()
                .find(|c| c.parameter == parameter.name)
            {
                candidates.extend(bounds(check.min, check.max));
            }
            if let Some(range) = parameter.range {
                candidates.extend(bounds(range.min, range.max));
            }
            candidates.push(0.0);
            candidates
                .into_iter()
                .flat_map(|x| [x, x.round()])
                .find_map(|x| {
                    fits(if parameter.value_type == ValueType::Int {
                        // Rounded candidates are tried too; a fractional one for an int is refused.
                        #[allow(clippy::cast_possible_truncation)]
                        Value::Int(x as i64)
                    } else {
                        Value::Float(x)
                    })
                    .filter(|_| parameter.value_type == ValueType::Float || x.fract() == 0.0)
                })
        }
    }
}

/// The words of a value outside the profile's first health check, for an unhealthy image.
pub(super) fn unhealthy_words(
    profile: &Profile,
    section: &ModbusSection,
) -> Option<(Table, u16, Vec<u16>)> {
    let check = profile.health.checks.first()?;
    let parameter = profile.parameter(&check.parameter)?;
    let point = section.parameters.get(&check.parameter)?;
    let codec = Codec::new(section, point);
    if codec.table().is_bits() {
        return None;
    }
    let width = match (check.min, check.max) {
        (Some(a), Some(b)) => (b - a).abs().max(1.0),
        _ => 10.0,
    };
    let mut candidates = Vec::new();
    if let Some(max) = check.max {
        candidates.extend([max + width, max + 1.0, max.floor() + 1.0]);
    }
    if let Some(min) = check.min {
        candidates.extend([min - width, min - 1.0, min.ceil() - 1.0]);
    }
    candidates.into_iter().find_map(|x| {
        let outside = check.min.is_some_and(|m| x < m) || check.max.is_some_and(|m| x > m);
        let value = if parameter.value_type == ValueType::Int {
            #[allow(clippy::cast_possible_truncation)]
            Value::Int(x.round() as i64)
        } else {
            Value::Float(x)
        };
        let words = codec.encode_registers(parameter, &value, Some(0)).ok()?;
        outside.then_some((codec.table(), point.address, words))
    })
}

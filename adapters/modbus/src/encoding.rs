//! Register words and bits ⇄ parameter values: encodings, byte and word order, scale and
//! offset, masks and enum maps. Pure functions; every input may be hostile.
//!
//! Reading goes words → raw (a whole number, a float or text) → value; writing goes back the
//! same way. Byte order swaps the two bytes of each register; word order reverses the registers
//! of a multi-register number (strings keep their register order, only their byte order is
//! applied). A mask selects bits of one register and shifts them down to bit 0.

use std::collections::BTreeMap;

use iotmc_adapter::profile::{Access, Parameter};
use iotmc_adapter::{LinkError, Value, ValueType};

use crate::frame::Table;
use crate::profile::{Encoding, ModbusSection, Order, Point};

/// A point resolved against its section: orders and encoding filled in, its register span
/// known.
#[derive(Debug, Clone, PartialEq)]
pub struct Codec {
    table: Table,
    encoding: Encoding,
    span: u16,
    byte_order: Order,
    word_order: Order,
    scale: Scale,
    offset: f64,
    mask: Option<u16>,
    map: BTreeMap<String, i64>,
}

/// A multiplier, kept with its integral inverse when it has one (`0.1` → 10), so that
/// `2305 * 0.1` comes out as `230.5` rather than `230.50000000000003`.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Scale {
    factor: f64,
    inverse: Option<f64>,
}

impl Scale {
    fn new(factor: f64) -> Self {
        let inverse = (factor.is_finite() && factor != 0.0 && factor.abs() < 1.0)
            .then(|| 1.0 / factor)
            .filter(|k| (k - k.round()).abs() < 1e-9 * k.abs())
            .map(f64::round);
        Self { factor, inverse }
    }

    fn is_one(self) -> bool {
        self.factor == 1.0
    }

    fn apply(self, raw: f64) -> f64 {
        match self.inverse {
            Some(k) => raw / k,
            None => raw * self.factor,
        }
    }

    fn invert(self, units: f64) -> f64 {
        match self.inverse {
            Some(k) => units * k,
            None => units / self.factor,
        }
    }
}

/// The f64 a person reads in an f32: its shortest decimal form, so that 0.98 stays 0.98
/// instead of becoming 0.9800000190734863.
fn f32_as_f64(x: f32) -> f64 {
    x.to_string().parse().unwrap_or(f64::from(x))
}

/// A value as the registers hold it, before scale and offset.
#[derive(Debug, Clone, PartialEq)]
enum Raw {
    Int(i128),
    Float(f64),
    Text(String),
}

/// A parameter declaration for a point that is not a profile parameter (a firmware size, a log
/// pointer, a bank register), so that it can go through a [`Codec`] too.
pub fn internal_parameter(name: &str, value_type: ValueType) -> Parameter {
    Parameter {
        name: name.to_owned(),
        description: None,
        value_type,
        unit: None,
        access: Access::ReadWrite,
        range: None,
        values: Vec::new(),
        max_length: None,
        resolution: None,
        evented: false,
    }
}

impl Codec {
    /// Resolves `point` with the defaults of `section`.
    pub fn new(section: &ModbusSection, point: &Point) -> Self {
        let table = point.table();
        let encoding = point.resolved_encoding();
        Self {
            table,
            encoding,
            span: point.span(),
            byte_order: point.byte_order.unwrap_or(section.byte_order),
            word_order: point.word_order.unwrap_or(section.word_order),
            scale: Scale::new(point.scale.unwrap_or(1.0)),
            offset: point.offset.unwrap_or(0.0),
            mask: point.mask.filter(|_| !table.is_bits()),
            map: point.map.clone(),
        }
    }

    /// Registers (or bits, for bit tables) the point spans.
    pub fn span(&self) -> u16 {
        self.span
    }

    /// The point's table.
    pub fn table(&self) -> Table {
        self.table
    }

    /// The value of `parameter` from the point's registers (exactly [`Self::span`] of them).
    /// A raw value with no enum member, a string that is not text, a NaN, are
    /// [`LinkError::Malformed`] naming the parameter.
    pub fn decode_registers(
        &self,
        parameter: &Parameter,
        words: &[u16],
    ) -> Result<Value, LinkError> {
        let name = &parameter.name;
        if self.table.is_bits() {
            return Err(LinkError::Malformed(format!(
                "`{name}` is a {} point, registers were given for it",
                self.table
            )));
        }
        if words.len() != usize::from(self.span) {
            return Err(LinkError::Malformed(format!(
                "`{name}` takes {} register(s), the answer held {}",
                self.span,
                words.len()
            )));
        }
        let raw = self.raw_from_words(name, words)?;
        self.value_from_raw(parameter, raw)
    }

    /// The value of `parameter` from the point's bits.
    pub fn decode_bits(&self, parameter: &Parameter, bits: &[bool]) -> Result<Value, LinkError> {
        let name = &parameter.name;
        if !self.table.is_bits() {
            return Err(LinkError::Malformed(format!(
                "`{name}` is a {} register point, bits were given for it",
                self.table
            )));
        }
        match bits {
            [bit] => self.value_from_raw(parameter, Raw::Int(i128::from(*bit))),
            _ => Err(LinkError::Malformed(format!(
                "`{name}` takes 1 bit, the answer held {}",
                bits.len()
            ))),
        }
    }

    /// The registers that store `value` (already checked against the parameter's declaration).
    /// For a masked point, `current` is the register's present content, which the bits outside
    /// the mask keep. A value that does not land on a raw integer of the encoding after scale
    /// and offset is [`LinkError::OutOfRange`].
    pub fn encode_registers(
        &self,
        parameter: &Parameter,
        value: &Value,
        current: Option<u16>,
    ) -> Result<Vec<u16>, LinkError> {
        if self.table.is_bits() {
            return Err(LinkError::Unsupported {
                operation: format!("register write of `{}`", parameter.name),
                reason: format!("it is a {} point", self.table),
            });
        }
        let raw = self.raw_from_value(parameter, value)?;
        self.words_from_raw(parameter, value, raw, current)
    }

    /// The bit that stores `value`.
    pub fn encode_bit(&self, parameter: &Parameter, value: &Value) -> Result<bool, LinkError> {
        match self.raw_from_value(parameter, value)? {
            Raw::Int(0) => Ok(false),
            Raw::Int(1) => Ok(true),
            _ => Err(LinkError::OutOfRange {
                name: parameter.name.clone(),
                value: value.to_string(),
                expected: "a value stored as one bit (0 or 1)".to_owned(),
            }),
        }
    }

    /// Whether writes must read the register first (masked points).
    pub fn needs_read_modify_write(&self) -> bool {
        self.mask.is_some_and(|m| m != u16::MAX)
    }

    /// The mask and the shift that brings its lowest bit to bit 0.
    fn mask_and_shift(&self) -> Option<(u16, u32)> {
        self.mask
            .filter(|m| *m != 0)
            .map(|m| (m, m.trailing_zeros()))
    }

    /// The registers in big-endian order, most significant first, bytes high first.
    fn normalise(&self, words: &[u16]) -> Vec<u16> {
        let mut ordered: Vec<u16> = words
            .iter()
            .map(|w| match self.byte_order {
                Order::Big => *w,
                Order::Little => w.swap_bytes(),
            })
            .collect();
        if self.word_order == Order::Little && self.encoding != Encoding::String {
            ordered.reverse();
        }
        ordered
    }

    fn raw_from_words(&self, name: &str, words: &[u16]) -> Result<Raw, LinkError> {
        let w = self.normalise(words);
        let malformed = |what: String| LinkError::Malformed(format!("`{name}`: {what}"));
        let wide = |n: usize| -> Result<u64, LinkError> {
            match w.get(..n) {
                Some(part) if w.len() == n => {
                    Ok(part.iter().fold(0u64, |acc, x| (acc << 16) | u64::from(*x)))
                }
                _ => Err(malformed(format!(
                    "expected {n} registers for {:?}, got {}",
                    self.encoding,
                    w.len()
                ))),
            }
        };
        let raw = match self.encoding {
            Encoding::Bool | Encoding::U16 | Encoding::I16 => {
                let word = u16::try_from(wide(1)?).unwrap_or_default();
                match (self.mask_and_shift(), self.encoding) {
                    (Some((mask, shift)), _) => Raw::Int(i128::from((word & mask) >> shift)),
                    (None, Encoding::I16) => Raw::Int(i128::from(word.cast_signed())),
                    (None, _) => Raw::Int(i128::from(word)),
                }
            }
            Encoding::U32 => Raw::Int(i128::from(wide(2)?)),
            Encoding::I32 => Raw::Int(i128::from(
                u32::try_from(wide(2)?).unwrap_or_default().cast_signed(),
            )),
            Encoding::U64 => Raw::Int(i128::from(wide(4)?)),
            Encoding::I64 => Raw::Int(i128::from(wide(4)?.cast_signed())),
            Encoding::F32 => {
                let x = f32::from_bits(u32::try_from(wide(2)?).unwrap_or_default());
                if !x.is_finite() {
                    return Err(malformed(format!("the device reports {x}, not a number")));
                }
                Raw::Float(f32_as_f64(x))
            }
            Encoding::F64 => {
                let x = f64::from_bits(wide(4)?);
                if !x.is_finite() {
                    return Err(malformed(format!("the device reports {x}, not a number")));
                }
                Raw::Float(x)
            }
            Encoding::String => Raw::Text(text_from_words(&w).map_err(malformed)?),
        };
        Ok(raw)
    }

    fn value_from_raw(&self, parameter: &Parameter, raw: Raw) -> Result<Value, LinkError> {
        let name = &parameter.name;
        let malformed = |what: String| LinkError::Malformed(format!("`{name}`: {what}"));
        match (parameter.value_type, raw) {
            (ValueType::Bool, Raw::Int(r)) => Ok(Value::Bool(r != 0)),
            (ValueType::Bool, Raw::Float(x)) => Ok(Value::Bool(x != 0.0)),
            (ValueType::Int, Raw::Int(r)) if self.scale.is_one() && self.offset == 0.0 => {
                i64::try_from(r).map(Value::Int).map_err(|_| {
                    malformed(format!(
                        "raw value {r} does not fit a 64-bit signed integer"
                    ))
                })
            }
            (ValueType::Int, Raw::Int(r)) => self.integral(name, self.units(r as f64)),
            (ValueType::Int, Raw::Float(x)) => self.integral(name, self.units(x)),
            (ValueType::Float, Raw::Int(r)) => Ok(Value::Float(self.units(r as f64))),
            (ValueType::Float, Raw::Float(x)) => {
                let x = self.units(x);
                if x.is_finite() {
                    Ok(Value::Float(x))
                } else {
                    Err(malformed(format!(
                        "scaled value {x} is not a finite number"
                    )))
                }
            }
            (ValueType::String, Raw::Text(text)) => Ok(Value::Text(text)),
            (ValueType::String, Raw::Int(r)) if self.scale.is_one() && self.offset == 0.0 => {
                Ok(Value::Text(r.to_string()))
            }
            (ValueType::String, Raw::Int(r)) => Ok(Value::Text(self.units(r as f64).to_string())),
            (ValueType::String, Raw::Float(x)) => Ok(Value::Text(self.units(x).to_string())),
            // Some devices (the Eastron meters) keep even their settings as floats.
            (ValueType::Enum, Raw::Float(x)) if x.fract() == 0.0 && x.abs() < 9.2e18 => {
                // Integral and in range, checked just above.
                #[allow(clippy::cast_possible_truncation)]
                self.value_from_raw(parameter, Raw::Int(x as i128))
            }
            (ValueType::Enum, Raw::Int(r)) => self
                .map
                .iter()
                .find(|(_, raw)| i128::from(**raw) == r)
                .map(|(member, _)| Value::Text(member.clone()))
                .ok_or_else(|| {
                    malformed(format!(
                        "raw value {r} stands for none of its members ({})",
                        describe_map(&self.map)
                    ))
                }),
            (value_type, raw) => Err(malformed(format!(
                "registers holding {} cannot be read as `{value_type}`",
                match raw {
                    Raw::Int(_) => "a whole number",
                    Raw::Float(_) => "a float",
                    Raw::Text(_) => "text",
                }
            ))),
        }
    }

    fn units(&self, raw: f64) -> f64 {
        self.scale.apply(raw) + self.offset
    }

    fn integral(&self, name: &str, x: f64) -> Result<Value, LinkError> {
        let rounded = x.round();
        if x.is_finite() && (x - rounded).abs() <= 1e-9 * x.abs().max(1.0) && rounded.abs() < 9.2e18
        {
            // In range and integral, checked just above.
            #[allow(clippy::cast_possible_truncation)]
            Ok(Value::Int(rounded as i64))
        } else {
            Err(LinkError::Malformed(format!(
                "`{name}`: the device's value {x} is not a whole number, and the parameter is an `int`"
            )))
        }
    }

    fn raw_from_value(&self, parameter: &Parameter, value: &Value) -> Result<Raw, LinkError> {
        let name = &parameter.name;
        let wrong_type = || LinkError::WrongType {
            name: name.clone(),
            expected: parameter.value_type.to_string(),
            got: format!("{} {value}", value.kind_name()),
        };
        match (parameter.value_type, value) {
            (ValueType::Bool, Value::Bool(b)) => Ok(Raw::Int(i128::from(*b))),
            (ValueType::Enum, Value::Text(member)) => {
                let raw = self.map.get(member).ok_or_else(|| LinkError::OutOfRange {
                    name: name.clone(),
                    value: value.to_string(),
                    expected: format!(
                        "one of {}",
                        self.map.keys().cloned().collect::<Vec<_>>().join(", ")
                    ),
                })?;
                if matches!(self.encoding, Encoding::F32 | Encoding::F64) {
                    // Raw enum values are small whole numbers; f64 holds them exactly.
                    #[allow(clippy::cast_precision_loss)]
                    return Ok(Raw::Float(*raw as f64));
                }
                Ok(Raw::Int(i128::from(*raw)))
            }
            (ValueType::String, Value::Text(text)) => Ok(Raw::Text(text.clone())),
            (ValueType::Int | ValueType::Float, Value::Int(_) | Value::Float(_)) => {
                if matches!(self.encoding, Encoding::F32 | Encoding::F64) {
                    let x = value.as_f64().ok_or_else(wrong_type)?;
                    return Ok(Raw::Float(self.scale.invert(x - self.offset)));
                }
                if let Value::Int(i) = value
                    && self.scale.is_one()
                    && self.offset == 0.0
                {
                    return Ok(Raw::Int(i128::from(*i)));
                }
                let x = value.as_f64().ok_or_else(wrong_type)?;
                let raw = self.scale.invert(x - self.offset);
                let rounded = raw.round();
                if raw.is_finite() && (raw - rounded).abs() <= 1e-6 * raw.abs().max(1.0) {
                    // f64 → i128 saturates; the range check that follows catches huge values.
                    #[allow(clippy::cast_possible_truncation)]
                    Ok(Raw::Int(rounded as i128))
                } else {
                    Err(self.out_of_range(parameter, value))
                }
            }
            _ => Err(wrong_type()),
        }
    }

    /// The raw whole numbers the point can hold.
    fn raw_bounds(&self) -> (i128, i128) {
        if let Some((mask, shift)) = self.mask_and_shift() {
            return (0, i128::from(mask >> shift));
        }
        match self.encoding {
            Encoding::Bool => (0, 1),
            Encoding::U16 => (0, i128::from(u16::MAX)),
            Encoding::I16 => (i128::from(i16::MIN), i128::from(i16::MAX)),
            Encoding::U32 => (0, i128::from(u32::MAX)),
            Encoding::I32 => (i128::from(i32::MIN), i128::from(i32::MAX)),
            Encoding::U64 => (0, i128::from(u64::MAX)),
            Encoding::I64 => (i128::from(i64::MIN), i128::from(i64::MAX)),
            // Float and text points hold no whole numbers of their own; give them the widest.
            Encoding::F32 | Encoding::F64 | Encoding::String => {
                (i128::from(i64::MIN), i128::from(i64::MAX))
            }
        }
    }

    /// What a write to this point accepts, in the parameter's units.
    fn accepted(&self) -> String {
        let (lo, hi) = self.raw_bounds();
        if self.scale.is_one() && self.offset == 0.0 {
            return format!("a whole number between {lo} and {hi}");
        }
        let (a, b) = (self.units(lo as f64), self.units(hi as f64));
        let (lo, hi) = (a.min(b), a.max(b));
        let step = self.scale.factor.abs();
        if self.offset == 0.0 {
            format!("a multiple of {step} between {lo} and {hi}")
        } else {
            format!(
                "{} plus a multiple of {step}, between {lo} and {hi}",
                self.offset
            )
        }
    }

    fn out_of_range(&self, parameter: &Parameter, value: &Value) -> LinkError {
        LinkError::OutOfRange {
            name: parameter.name.clone(),
            value: value.to_string(),
            expected: self.accepted(),
        }
    }

    fn words_from_raw(
        &self,
        parameter: &Parameter,
        value: &Value,
        raw: Raw,
        current: Option<u16>,
    ) -> Result<Vec<u16>, LinkError> {
        let big_endian: Vec<u16> = match raw {
            Raw::Text(text) => {
                let max = usize::from(self.span) * 2;
                if self.encoding != Encoding::String
                    || text.len() > max
                    || !text.bytes().all(|b| (0x20..=0x7E).contains(&b))
                {
                    return Err(LinkError::OutOfRange {
                        name: parameter.name.clone(),
                        value: value.to_string(),
                        expected: format!("printable ASCII text of at most {max} characters"),
                    });
                }
                let mut bytes = text.into_bytes();
                bytes.resize(max, 0);
                bytes
                    .chunks_exact(2)
                    .map(|pair| u16::from_be_bytes([pair[0], pair[1]]))
                    .collect()
            }
            Raw::Float(x) => match self.encoding {
                Encoding::F32 if x.abs() <= f64::from(f32::MAX) => {
                    // Inside f32's range, checked just above; precision loss is the encoding's.
                    #[allow(clippy::cast_possible_truncation)]
                    let bits = (x as f32).to_bits();
                    vec![(bits >> 16) as u16, bits as u16]
                }
                Encoding::F64 if x.is_finite() => {
                    let bits = x.to_bits();
                    (0..4).rev().map(|i| (bits >> (16 * i)) as u16).collect()
                }
                _ => {
                    return Err(LinkError::OutOfRange {
                        name: parameter.name.clone(),
                        value: value.to_string(),
                        expected: format!("a finite number the {:?} encoding holds", self.encoding),
                    });
                }
            },
            Raw::Int(r) => {
                let (lo, hi) = self.raw_bounds();
                if r < lo || r > hi || matches!(self.encoding, Encoding::String) {
                    return Err(self.out_of_range(parameter, value));
                }
                // Two's complement truncation is exactly the wire form of the signed encodings.
                #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                let bits = r as u64;
                match (self.encoding, self.mask_and_shift()) {
                    (_, Some((mask, shift))) => {
                        let field = ((bits as u16) << shift) & mask;
                        vec![(current.unwrap_or(0) & !mask) | field]
                    }
                    (Encoding::Bool | Encoding::U16 | Encoding::I16, None) => vec![bits as u16],
                    (Encoding::U32 | Encoding::I32, None) => {
                        vec![(bits >> 16) as u16, bits as u16]
                    }
                    (Encoding::F32, None) => {
                        let x = (r as f64) as f32;
                        let b = x.to_bits();
                        vec![(b >> 16) as u16, b as u16]
                    }
                    (Encoding::F64, None) => {
                        let b = (r as f64).to_bits();
                        (0..4).rev().map(|i| (b >> (16 * i)) as u16).collect()
                    }
                    _ => (0..4).rev().map(|i| (bits >> (16 * i)) as u16).collect(),
                }
            }
        };
        let mut words = big_endian;
        if self.word_order == Order::Little && self.encoding != Encoding::String {
            words.reverse();
        }
        if self.byte_order == Order::Little {
            for w in &mut words {
                *w = w.swap_bytes();
            }
        }
        Ok(words)
    }
}

/// ASCII text, two characters per register, high byte first: cut at the first NUL, trailing
/// spaces trimmed, anything but printable ASCII refused.
fn text_from_words(words: &[u16]) -> Result<String, String> {
    let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_be_bytes()).collect();
    let end = bytes.iter().position(|b| *b == 0).unwrap_or(bytes.len());
    let text = bytes.get(..end).unwrap_or_default();
    if let Some(bad) = text.iter().find(|b| !(0x20..=0x7E).contains(*b)) {
        return Err(format!(
            "the registers hold byte 0x{bad:02X}, which is not printable ASCII text"
        ));
    }
    Ok(String::from_utf8_lossy(text).trim_end().to_owned())
}

fn describe_map(map: &BTreeMap<String, i64>) -> String {
    if map.is_empty() {
        return "the profile maps none".to_owned();
    }
    map.iter()
        .map(|(member, raw)| format!("{member} = {raw}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests;

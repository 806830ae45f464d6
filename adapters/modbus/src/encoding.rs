//! Register words and bits ⇄ parameter values: encodings, byte and word order, scale and
//! offset, masks and enum maps. Pure functions; every input may be hostile.

use iotmc_adapter::profile::Parameter;
use iotmc_adapter::{LinkError, Value};

use crate::profile::{ModbusSection, Point};

/// A point resolved against its section: orders and encoding filled in, its register span
/// known.
#[derive(Debug, Clone, PartialEq)]
pub struct Codec {
    _private: (),
}

impl Codec {
    /// Resolves `point` with the defaults of `section`.
    pub fn new(section: &ModbusSection, point: &Point) -> Self {
        let _ = (section, point);
        todo!("encoding: Codec::new")
    }

    /// Registers (or bits, for bit tables) the point spans.
    pub fn span(&self) -> u16 {
        todo!("encoding: span")
    }

    /// The value of `parameter` from the point's registers (exactly [`Self::span`] of them).
    /// A raw value with no enum member, a string that is not text, a NaN, are
    /// [`LinkError::Malformed`] naming the parameter.
    pub fn decode_registers(
        &self,
        parameter: &Parameter,
        words: &[u16],
    ) -> Result<Value, LinkError> {
        let _ = (parameter, words);
        todo!("encoding: decode_registers")
    }

    /// The value of `parameter` from the point's bits.
    pub fn decode_bits(&self, parameter: &Parameter, bits: &[bool]) -> Result<Value, LinkError> {
        let _ = (parameter, bits);
        todo!("encoding: decode_bits")
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
        let _ = (parameter, value, current);
        todo!("encoding: encode_registers")
    }

    /// The bit that stores `value`.
    pub fn encode_bit(&self, parameter: &Parameter, value: &Value) -> Result<bool, LinkError> {
        let _ = (parameter, value);
        todo!("encoding: encode_bit")
    }

    /// Whether writes must read the register first (masked points).
    pub fn needs_read_modify_write(&self) -> bool {
        todo!("encoding: needs_read_modify_write")
    }
}

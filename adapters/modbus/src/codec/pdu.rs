//! The PDU: function code and data, the same on every transport.
//!
//! Requests are in [`request`], responses and exceptions in [`answer`]; this file holds the
//! public entry points and the bounded reader both sides share.

mod answer;
mod request;

use super::CodecError;
use crate::frame::{Answer, Request};

/// Appends the PDU of `request` to `out`. Refuses counts outside the protocol's limits, and
/// then leaves `out` as it was.
pub fn encode_request(request: &Request, out: &mut Vec<u8>) -> Result<(), CodecError> {
    let start = out.len();
    let result = request::encode(request, out);
    if result.is_err() {
        out.truncate(start);
    }
    result
}

/// Decodes a request PDU (the simulator's side). An error is answered by the server with
/// exception 0x01 (unknown function) or 0x03 (malformed data), see [`CodecError`].
///
/// What the specification answers with exception 0x03 (a count out of range, a byte count
/// that does not match) is refused here; what it answers with 0x02 (an address, a file or
/// record number, an object id the device does not have) is the device's to judge.
pub fn decode_request(pdu: &[u8]) -> Result<Request, CodecError> {
    request::decode(pdu)
}

/// Appends the PDU answering a request of `function_code`: the response, or the exception
/// (function code | 0x80, exception code).
///
/// A response that cannot be encoded within the protocol's limits (200 registers, a 300-byte
/// object) is sent as exception 0x04 (server device failure) instead, and logged.
pub fn encode_answer(function_code: u8, answer: &Answer, out: &mut Vec<u8>) {
    answer::encode(function_code, answer, out);
}

/// Decodes the PDU answering `request`: checks the function code and that counts match what
/// was asked (a read of 10 registers must bring 10 registers back).
pub fn decode_answer(request: &Request, pdu: &[u8]) -> Result<Answer, CodecError> {
    answer::decode(request, pdu)
}

/// Reads fields off the front of a PDU's data, never past its end.
#[derive(Debug)]
struct Reader<'a> {
    rest: &'a [u8],
    function_code: u8,
    kind: &'static str,
}

impl<'a> Reader<'a> {
    /// A reader over the data (after the function code) of a `kind` ("request", "response").
    fn new(function_code: u8, kind: &'static str, data: &'a [u8]) -> Self {
        Self {
            rest: data,
            function_code,
            kind,
        }
    }

    fn malformed(&self, detail: impl Into<String>) -> CodecError {
        malformed(self.function_code, self.kind, detail)
    }

    fn bytes(&mut self, len: usize, field: &str) -> Result<&'a [u8], CodecError> {
        match self.rest.split_at_checked(len) {
            Some((taken, rest)) => {
                self.rest = rest;
                Ok(taken)
            }
            None => Err(self.malformed(format!(
                "{field} needs {len} byte(s), {} left",
                self.rest.len()
            ))),
        }
    }

    fn u8(&mut self, field: &str) -> Result<u8, CodecError> {
        match self.bytes(1, field)? {
            [byte] => Ok(*byte),
            _ => Err(self.malformed(format!("{field} missing"))),
        }
    }

    fn u16(&mut self, field: &str) -> Result<u16, CodecError> {
        match self.bytes(2, field)? {
            [hi, lo] => Ok(u16::from_be_bytes([*hi, *lo])),
            _ => Err(self.malformed(format!("{field} missing"))),
        }
    }

    /// `count` big-endian registers.
    fn registers(&mut self, count: usize, field: &str) -> Result<Vec<u16>, CodecError> {
        let bytes = self.bytes(count.saturating_mul(2), field)?;
        Ok(registers(bytes))
    }

    fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    /// Refuses bytes left after the last field.
    fn finish(self) -> Result<(), CodecError> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(self.malformed(format!("{} byte(s) after the last field", self.rest.len())))
        }
    }
}

fn malformed(function_code: u8, kind: &str, detail: impl Into<String>) -> CodecError {
    CodecError::Malformed {
        what: format!("FC 0x{function_code:02X} {kind}"),
        detail: detail.into(),
    }
}

/// Big-endian registers from bytes (an odd last byte is ignored; callers check the count).
fn registers(bytes: &[u8]) -> Vec<u16> {
    bytes
        .chunks_exact(2)
        .map(|pair| match pair {
            [hi, lo] => u16::from_be_bytes([*hi, *lo]),
            _ => 0,
        })
        .collect()
}

fn put_u16(out: &mut Vec<u8>, value: u16) {
    out.extend_from_slice(&value.to_be_bytes());
}

fn put_registers(out: &mut Vec<u8>, values: &[u16]) {
    for value in values {
        put_u16(out, *value);
    }
}

/// Bytes needed for `count` packed bits.
fn bit_bytes(count: usize) -> usize {
    count.div_ceil(8)
}

/// Packs bits LSB first, the first bit in the low bit of the first byte (§6.1); padding is 0.
fn pack_bits(out: &mut Vec<u8>, bits: &[bool]) {
    for chunk in bits.chunks(8) {
        let byte = chunk
            .iter()
            .enumerate()
            .fold(0u8, |byte, (i, bit)| byte | (u8::from(*bit) << i));
        out.push(byte);
    }
}

/// The first `count` bits of packed bytes.
fn unpack_bits(bytes: &[u8], count: usize) -> Vec<bool> {
    bytes
        .iter()
        .flat_map(|byte| (0..8).map(move |i| byte & (1 << i) != 0))
        .take(count)
        .collect()
}

/// Reference type of every file record sub-request (§6.14, §6.15).
const FILE_REFERENCE_TYPE: u8 = 0x06;
/// MEI type of Read Device Identification (§6.21).
const MEI_READ_DEVICE_ID: u8 = 0x0E;
/// Coil on and off in FC 0x05 (§6.5).
const COIL_ON: u16 = 0xFF00;
const COIL_OFF: u16 = 0x0000;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_should_pack_lsb_first_and_unpack_to_the_count() {
        let bits = [
            true, false, true, true, false, false, true, true, // 0xCD
            true, true, false, true, // 0x0B (padded)
        ];
        let mut out = Vec::new();
        pack_bits(&mut out, &bits);
        assert_eq!(out, [0xCD, 0x0B]);
        assert_eq!(unpack_bits(&out, bits.len()), bits);
        assert_eq!(bit_bytes(0), 0);
        assert_eq!(bit_bytes(8), 1);
        assert_eq!(bit_bytes(9), 2);
    }

    #[test]
    fn reader_should_refuse_fields_past_the_end() {
        let mut reader = Reader::new(0x03, "response", &[0x01]);
        assert!(reader.u16("value").is_err());
        assert_eq!(reader.u8("byte count"), Ok(0x01));
        assert!(reader.u8("more").is_err());
        assert!(reader.finish().is_ok());
    }
}

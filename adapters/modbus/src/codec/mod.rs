//! Bytes ⇄ frames, with no IO: the PDU codec shared by both transports, RTU framing (address,
//! PDU, CRC; frame length from the byte counts; resynchronisation after noise) and Modbus TCP
//! framing (MBAP header).
//!
//! Everything here takes untrusted bytes: decoders are bounded, never panic, return `Ok(None)`
//! on a partial frame and are fuzzed (`tests/fuzz`, targets `modbus_*`).

mod pdu;
pub mod rtu;
pub mod tcp;
#[cfg(test)]
mod vectors;

pub use pdu::{decode_answer, decode_request, encode_answer, encode_request};

/// Why bytes could not be turned into a frame, or a frame into bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    /// The PDU does not follow the layout of its function code.
    #[error("malformed {what}: {detail}")]
    Malformed {
        /// What was being decoded, e.g. `FC 0x03 response`.
        what: String,
        /// What was wrong, e.g. `byte count 7 is odd`.
        detail: String,
    },
    /// The response is for another function code than the request.
    #[error("response has function code 0x{got:02X}, expected 0x{expected:02X}")]
    UnexpectedFunction {
        /// The request's function code.
        expected: u8,
        /// The response's.
        got: u8,
    },
    /// A request could not be encoded (counts outside the protocol's limits).
    #[error("cannot encode request: {0}")]
    Encode(String),
    /// A function code the codec does not know (requests only).
    #[error("unsupported function code 0x{0:02X}")]
    UnsupportedFunction(u8),
}

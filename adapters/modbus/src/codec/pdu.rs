//! The PDU: function code and data, the same on every transport.

use super::CodecError;
use crate::frame::{Answer, Request};

/// Appends the PDU of `request` to `out`. Refuses counts outside the protocol's limits.
pub fn encode_request(request: &Request, out: &mut Vec<u8>) -> Result<(), CodecError> {
    let _ = (request, out);
    todo!("codec: encode_request")
}

/// Decodes a request PDU (the simulator's side). An error is answered by the server with
/// exception 0x01 (unknown function) or 0x03 (malformed data), see [`CodecError`].
pub fn decode_request(pdu: &[u8]) -> Result<Request, CodecError> {
    let _ = pdu;
    todo!("codec: decode_request")
}

/// Appends the PDU answering a request of `function_code`: the response, or the exception
/// (function code | 0x80, exception code).
pub fn encode_answer(function_code: u8, answer: &Answer, out: &mut Vec<u8>) {
    let _ = (function_code, answer, out);
    todo!("codec: encode_answer")
}

/// Decodes the PDU answering `request`: checks the function code and that counts match what
/// was asked (a read of 10 registers must bring 10 registers back).
pub fn decode_answer(request: &Request, pdu: &[u8]) -> Result<Answer, CodecError> {
    let _ = (request, pdu);
    todo!("codec: decode_answer")
}

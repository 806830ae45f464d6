//! Modbus TCP framing (*Modbus Messaging on TCP/IP Implementation Guide V1.0b*, §3.1): the MBAP
//! header (transaction id, protocol id 0, length, unit id) before the PDU.

use super::CodecError;

/// Length of the MBAP header.
pub const MBAP_LEN: usize = 7;

/// One Modbus TCP frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcpFrame {
    /// Transaction id, echoed by the server.
    pub transaction: u16,
    /// Unit id (the RTU address behind a gateway, or 0xFF).
    pub unit: u8,
    /// The PDU.
    pub pdu: Vec<u8>,
}

/// Appends the frame for `pdu` to `out`.
pub fn encode_frame(transaction: u16, unit: u8, pdu: &[u8], out: &mut Vec<u8>) {
    let _ = (transaction, unit, pdu, out);
    todo!("codec: tcp encode_frame")
}

/// Takes the next complete frame off the front of `buf`; `Ok(None)` while partial. An error
/// (protocol id not 0, length out of range) means the stream cannot be trusted any more: the
/// caller closes the connection.
pub fn decode_frame(buf: &mut Vec<u8>) -> Result<Option<TcpFrame>, CodecError> {
    let _ = buf;
    todo!("codec: tcp decode_frame")
}

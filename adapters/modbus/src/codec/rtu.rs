//! Modbus RTU framing (*Modbus over Serial Line V1.02*, §2.5): address, PDU, CRC-16 low byte
//! first. The frame length is worked out from the function code and its byte counts, for
//! requests and responses alike, including FC 0x08, 0x0C, 0x14, 0x15 and 0x2B.

use std::time::Duration;

/// Which side's frames a decoder reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Requests (a server reads these).
    Request,
    /// Responses (a master reads these).
    Response,
}

/// One RTU frame with a good CRC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtuFrame {
    /// Server address (unit id), 0 for broadcast.
    pub unit: u8,
    /// The PDU.
    pub pdu: Vec<u8>,
}

/// The CRC-16/MODBUS of `data`.
pub fn crc16(data: &[u8]) -> u16 {
    let _ = data;
    todo!("codec: crc16")
}

/// Appends the RTU frame for `pdu` to `unit`.
pub fn encode_frame(unit: u8, pdu: &[u8], out: &mut Vec<u8>) {
    let _ = (unit, pdu, out);
    todo!("codec: rtu encode_frame")
}

/// Turns a byte stream into frames, resynchronising after noise.
#[derive(Debug)]
pub struct RtuDecoder {
    direction: Direction,
    dropped: u64,
}

impl RtuDecoder {
    /// A decoder for frames going in `direction`.
    pub fn new(direction: Direction) -> Self {
        Self {
            direction,
            dropped: 0,
        }
    }

    /// Takes the next complete frame off the front of `buf`: `None` while the frame is partial.
    /// A frame with a bad CRC, or bytes that cannot start a frame, are dropped one byte at a
    /// time (counted in [`Self::dropped`] and logged) until a good frame lines up.
    pub fn decode(&mut self, buf: &mut Vec<u8>) -> Option<RtuFrame> {
        let _ = (buf, self.direction);
        todo!("codec: rtu decode")
    }

    /// Bytes dropped while resynchronising, since the decoder was made.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }
}

/// The silent interval that ends a frame (t3.5): 3.5 character times at `baud` with
/// `bits_per_char` (start + data + parity + stop, 11 by the specification), and a fixed
/// 1.75 ms above 19200 baud (§2.5.1.1).
pub fn frame_silence(baud: u32, bits_per_char: u32) -> Duration {
    let _ = (baud, bits_per_char);
    todo!("codec: frame_silence")
}

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

/// Largest RTU frame: address, 253-byte PDU, CRC (§2.5.1).
pub const MAX_FRAME: usize = 256;
/// Address and CRC around the PDU.
const OVERHEAD: usize = 3;

const CRC: crc::Crc<u16> = crc::Crc::<u16>::new(&crc::CRC_16_MODBUS);

/// The CRC-16/MODBUS of `data`.
pub fn crc16(data: &[u8]) -> u16 {
    CRC.checksum(data)
}

/// Appends the RTU frame for `pdu` to `unit`.
pub fn encode_frame(unit: u8, pdu: &[u8], out: &mut Vec<u8>) {
    let start = out.len();
    out.push(unit);
    out.extend_from_slice(pdu);
    let crc = crc16(out.get(start..).unwrap_or_default());
    out.extend_from_slice(&crc.to_le_bytes());
}

/// What the bytes at the front of the buffer say about the frame they start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FrameLen {
    /// More bytes are needed to know the length.
    Partial,
    /// The whole frame, address to CRC, is this long.
    Known(usize),
    /// No frame of this direction starts like this.
    Impossible(&'static str),
}

/// Function codes the codec knows (requests and the exceptions answering them).
fn is_known_function(fc: u8) -> bool {
    matches!(
        fc,
        0x01..=0x06 | 0x08 | 0x0C | 0x0F | 0x10 | 0x14 | 0x15 | 0x2B
    )
}

/// The length of the frame starting `buf` (address first), from its function code and counts.
fn frame_len(direction: Direction, buf: &[u8]) -> FrameLen {
    let Some(&fc) = buf.get(1) else {
        return FrameLen::Partial;
    };
    // PDU byte `i` (the function code is byte 0), or Partial.
    let at = |i: usize| buf.get(1 + i).map(|b| usize::from(*b));
    let pdu_len = match (direction, fc) {
        (Direction::Request, 0x01..=0x06 | 0x08) => Some(5),
        (Direction::Request, 0x0C) => Some(1),
        (Direction::Request, 0x0F | 0x10) => at(5).map(|count| 6 + count),
        (Direction::Request, 0x14 | 0x15) => at(1).map(|count| 2 + count),
        (Direction::Request, 0x2B) => match at(1) {
            Some(0x0E) => Some(4),
            Some(_) => return FrameLen::Impossible("MEI type other than 0x0E"),
            None => None,
        },
        (Direction::Response, 0x01..=0x04 | 0x0C | 0x14 | 0x15) => at(1).map(|count| 2 + count),
        (Direction::Response, 0x05 | 0x06 | 0x08 | 0x0F | 0x10) => Some(5),
        (Direction::Response, 0x2B) => match at(1) {
            Some(0x0E) => return device_identification_len(buf),
            Some(_) => return FrameLen::Impossible("MEI type other than 0x0E"),
            None => None,
        },
        (Direction::Response, fc) if fc & 0x80 != 0 && is_known_function(fc & 0x7F) => Some(2),
        _ => return FrameLen::Impossible("unknown function code"),
    };
    match pdu_len {
        None => FrameLen::Partial,
        Some(len) if len + OVERHEAD > MAX_FRAME => FrameLen::Impossible("longer than 256 bytes"),
        Some(len) => FrameLen::Known(len + OVERHEAD),
    }
}

/// Walks the object list of a Read Device Identification response: function code, MEI type,
/// code, conformity, more follows, next object id, number of objects, then id, length, value.
fn device_identification_len(buf: &[u8]) -> FrameLen {
    /// Address byte and the fixed fields before the first object.
    const FIRST_OBJECT: usize = 8;
    let Some(&objects) = buf.get(FIRST_OBJECT - 1) else {
        return FrameLen::Partial;
    };
    let mut offset = FIRST_OBJECT;
    for _ in 0..objects {
        let Some(&len) = buf.get(offset + 1) else {
            return FrameLen::Partial;
        };
        offset += 2 + usize::from(len);
        if offset + 2 > MAX_FRAME {
            return FrameLen::Impossible("longer than 256 bytes");
        }
    }
    FrameLen::Known(offset + 2)
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
        // Every pass either returns or drops a byte, so this ends.
        loop {
            let reason = match frame_len(self.direction, buf) {
                FrameLen::Partial => return None,
                FrameLen::Impossible(reason) => reason,
                FrameLen::Known(len) => {
                    let (frame, _) = buf.split_at_checked(len)?;
                    let (adu, crc) = frame.split_at_checked(len - 2)?;
                    let sent = match crc {
                        [lo, hi] => u16::from_le_bytes([*lo, *hi]),
                        _ => return None,
                    };
                    if crc16(adu) == sent {
                        let (unit, pdu) = adu.split_first()?;
                        let frame = RtuFrame {
                            unit: *unit,
                            pdu: pdu.to_vec(),
                        };
                        buf.drain(..len);
                        return Some(frame);
                    }
                    "CRC mismatch"
                }
            };
            self.drop_first(buf, reason);
        }
    }

    fn drop_first(&mut self, buf: &mut Vec<u8>, reason: &'static str) {
        if buf.is_empty() {
            return;
        }
        let byte = buf.remove(0);
        self.dropped += 1;
        tracing::debug!(
            direction = ?self.direction,
            byte = format_args!("0x{byte:02X}"),
            reason,
            dropped = self.dropped,
            "RTU decoder dropped a byte to resynchronise"
        );
    }

    /// Bytes dropped while resynchronising, since the decoder was made.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }
}

/// The fixed t3.5 above 19200 baud (§2.5.1.1).
const FAST_SILENCE: Duration = Duration::from_micros(1750);

/// The silent interval that ends a frame (t3.5): 3.5 character times at `baud` with
/// `bits_per_char` (start + data + parity + stop, 11 by the specification), and a fixed
/// 1.75 ms above 19200 baud (§2.5.1.1).
pub fn frame_silence(baud: u32, bits_per_char: u32) -> Duration {
    if baud > 19_200 {
        return FAST_SILENCE;
    }
    // 3.5 characters = 7 half characters, in nanoseconds; a baud of 0 means "no baud rate" and
    // is taken as 1 rather than dividing by zero.
    let nanos = 7 * u64::from(bits_per_char) * 1_000_000_000 / (2 * u64::from(baud.max(1)));
    Duration::from_nanos(nanos)
}

#[cfg(test)]
mod tests;

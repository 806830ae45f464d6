//! Modbus TCP framing (*Modbus Messaging on TCP/IP Implementation Guide V1.0b*, §3.1): the MBAP
//! header (transaction id, protocol id 0, length, unit id) before the PDU.

use super::CodecError;

/// Length of the MBAP header.
pub const MBAP_LEN: usize = 7;

/// Protocol id of Modbus in the MBAP header.
const PROTOCOL_ID: u16 = 0;
/// Smallest MBAP length: the unit id and a function code.
const MIN_LENGTH: u16 = 2;
/// Largest MBAP length: the unit id and a 253-byte PDU.
const MAX_LENGTH: u16 = 254;

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
    // A PDU longer than the protocol allows gets a length the peer refuses, never a wrapped one.
    let length = u16::try_from(pdu.len() + 1).unwrap_or(u16::MAX);
    out.extend_from_slice(&transaction.to_be_bytes());
    out.extend_from_slice(&PROTOCOL_ID.to_be_bytes());
    out.extend_from_slice(&length.to_be_bytes());
    out.push(unit);
    out.extend_from_slice(pdu);
}

/// Takes the next complete frame off the front of `buf`; `Ok(None)` while partial. An error
/// (protocol id not 0, length out of range) means the stream cannot be trusted any more: the
/// caller closes the connection.
pub fn decode_frame(buf: &mut Vec<u8>) -> Result<Option<TcpFrame>, CodecError> {
    // The header is checked as soon as its fields arrive, so garbage is refused early.
    if let Some(&[hi, lo]) = buf.get(2..4) {
        let protocol = u16::from_be_bytes([hi, lo]);
        if protocol != PROTOCOL_ID {
            return Err(mbap(format!("protocol id {protocol}, not 0")));
        }
    }
    let Some(&[t_hi, t_lo, _, _, l_hi, l_lo, unit]) = buf.get(..MBAP_LEN) else {
        return Ok(None);
    };
    let length = u16::from_be_bytes([l_hi, l_lo]);
    if !(MIN_LENGTH..=MAX_LENGTH).contains(&length) {
        return Err(mbap(format!(
            "length {length} outside {MIN_LENGTH} to {MAX_LENGTH}"
        )));
    }
    let end = MBAP_LEN - 1 + usize::from(length);
    let Some(pdu) = buf.get(MBAP_LEN..end) else {
        return Ok(None);
    };
    let frame = TcpFrame {
        transaction: u16::from_be_bytes([t_hi, t_lo]),
        unit,
        pdu: pdu.to_vec(),
    };
    buf.drain(..end);
    Ok(Some(frame))
}

fn mbap(detail: String) -> CodecError {
    CodecError::Malformed {
        what: "MBAP header".into(),
        detail,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TRANSACTION_HI: u8 = 0x10;
    const TRANSACTION_LO: u8 = 0x01;
    const UNIT: u8 = 0xFE;

    #[test]
    fn encode_frame_should_write_the_mbap_header() {
        let mut out = vec![0xAA];
        encode_frame(0x1001, UNIT, &[0x03, 0x00, 0x6B, 0x00, 0x03], &mut out);
        assert_eq!(
            out,
            [
                0xAA, // what was there before
                TRANSACTION_HI,
                TRANSACTION_LO,
                0x00,
                0x00, // protocol id
                0x00,
                0x06, // length: unit and PDU
                UNIT, //
                0x03,
                0x00,
                0x6B,
                0x00,
                0x03, // PDU
            ]
        );
    }

    #[test]
    fn decode_frame_should_take_one_frame_and_leave_the_next() {
        let mut buf = vec![
            TRANSACTION_HI,
            TRANSACTION_LO,
            0x00,
            0x00, // protocol id
            0x00,
            0x03, // length
            UNIT, //
            0x83,
            0x02, // PDU: exception
            0x00, // the next frame's first byte
        ];
        assert_eq!(
            decode_frame(&mut buf),
            Ok(Some(TcpFrame {
                transaction: 0x1001,
                unit: UNIT,
                pdu: vec![0x83, 0x02],
            }))
        );
        assert_eq!(buf, [0x00]);
    }

    #[test]
    fn decode_frame_should_wait_for_a_partial_header_or_pdu() {
        let mut header = vec![TRANSACTION_HI, TRANSACTION_LO, 0x00, 0x00, 0x00, 0x03];
        assert_eq!(decode_frame(&mut header), Ok(None));
        assert_eq!(header.len(), 6);
        let mut partial = vec![
            TRANSACTION_HI,
            TRANSACTION_LO,
            0x00,
            0x00, // protocol id
            0x00,
            0x03, // length
            UNIT, //
            0x02, // function code; one byte still to come
        ];
        assert_eq!(decode_frame(&mut partial), Ok(None));
        assert_eq!(partial.len(), 8);
        assert_eq!(decode_frame(&mut Vec::new()), Ok(None));
    }

    #[test]
    fn decode_frame_should_refuse_another_protocol_id() {
        let mut buf = vec![TRANSACTION_HI, TRANSACTION_LO, 0x00, 0x01];
        assert!(decode_frame(&mut buf).is_err());
    }

    #[test]
    fn decode_frame_should_refuse_a_length_out_of_range() {
        for length in [0u16, 1, 255, 0xFFFF] {
            let [hi, lo] = length.to_be_bytes();
            let mut buf = vec![TRANSACTION_HI, TRANSACTION_LO, 0x00, 0x00, hi, lo, UNIT];
            assert!(decode_frame(&mut buf).is_err(), "length {length}");
        }
        let mut largest = vec![TRANSACTION_HI, TRANSACTION_LO, 0x00, 0x00, 0x00, 0xFE, UNIT];
        largest.extend([0x03; 253]);
        assert!(matches!(decode_frame(&mut largest), Ok(Some(frame)) if frame.pdu.len() == 253));
    }
}

use super::*;

/// The RTU frame of `pdu` to `unit`, CRC included.
fn frame(unit: u8, pdu: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    encode_frame(unit, pdu, &mut out);
    out
}

fn decode_all(direction: Direction, mut buf: Vec<u8>) -> (Vec<RtuFrame>, Vec<u8>, u64) {
    let mut decoder = RtuDecoder::new(direction);
    let mut frames = Vec::new();
    while let Some(frame) = decoder.decode(&mut buf) {
        frames.push(frame);
    }
    (frames, buf, decoder.dropped())
}

/// Decodes `pdu` framed for unit 0x11 in `direction`, whole and byte by byte, and checks that
/// every proper prefix is partial.
fn decodes_exactly(direction: Direction, pdu: &[u8]) {
    let bytes = frame(0x11, pdu);
    let expected = RtuFrame {
        unit: 0x11,
        pdu: pdu.to_vec(),
    };
    for cut in 0..bytes.len() {
        let mut partial = bytes.get(..cut).unwrap_or_default().to_vec();
        let mut decoder = RtuDecoder::new(direction);
        assert_eq!(
            decoder.decode(&mut partial),
            None,
            "{pdu:02X?} cut at {cut}"
        );
        assert_eq!(partial.len(), cut, "a partial frame is kept whole");
        assert_eq!(decoder.dropped(), 0);
    }
    // Followed by the first byte of the next frame, which must stay in the buffer.
    let mut buf = bytes.clone();
    buf.push(0x11);
    let mut decoder = RtuDecoder::new(direction);
    assert_eq!(decoder.decode(&mut buf), Some(expected), "{pdu:02X?}");
    assert_eq!(buf, [0x11]);
    assert_eq!(decoder.dropped(), 0);
}

#[test]
fn crc16_should_match_the_specification_example() {
    // Modbus over Serial Line V1.02 §6.2.2 style check value: 01 03 00 00 00 0A → C5 CD.
    assert_eq!(
        frame(0x01, &[0x03, 0x00, 0x00, 0x00, 0x0A]),
        [
            0x01, // address
            0x03, // function code
            0x00, 0x00, // starting address
            0x00, 0x0A, // quantity
            0xC5, 0xCD, // CRC, low byte first
        ]
    );
    assert_eq!(crc16(&[0x01, 0x03, 0x00, 0x00, 0x00, 0x0A]), 0xCDC5);
}

#[test]
fn request_frames_of_every_function_should_decode() {
    for pdu in [
        &[0x01, 0x00, 0x13, 0x00, 0x13][..], // read coils
        &[0x02, 0x00, 0xC4, 0x00, 0x16][..], // read discrete inputs
        &[0x03, 0x00, 0x6B, 0x00, 0x03][..], // read holding registers
        &[0x04, 0x00, 0x08, 0x00, 0x01][..], // read input registers
        &[0x05, 0x00, 0xAC, 0xFF, 0x00][..], // write single coil
        &[0x06, 0x00, 0x01, 0x00, 0x03][..], // write single register
        &[0x08, 0x00, 0x00, 0xA5, 0x37][..], // diagnostics, 4 data bytes
        &[0x0C][..],                         // get comm event log
        &[0x0F, 0x00, 0x13, 0x00, 0x0A, 0x02, 0xCD, 0x01][..], // byte count at offset 5
        &[0x10, 0x00, 0x01, 0x00, 0x02, 0x04, 0, 0x0A, 1, 2][..], // byte count at offset 5
        &[0x14, 0x07, 0x06, 0x00, 0x04, 0x00, 0x01, 0x00, 0x02][..], // byte count
        &[
            0x15, 0x09, 0x06, 0x00, 0x04, 0x00, 0x07, 0x00, 0x01, 0x06, 0xAF,
        ][..], // data length
        &[0x2B, 0x0E, 0x01, 0x00][..],       // read device identification
    ] {
        decodes_exactly(Direction::Request, pdu);
    }
}

#[test]
fn response_frames_of_every_function_should_decode() {
    for pdu in [
        &[0x01, 0x03, 0xCD, 0x6B, 0x05][..], // read coils: byte count
        &[0x02, 0x01, 0x06][..],             // read discrete inputs
        &[0x03, 0x06, 0x02, 0x2B, 0x00, 0x00, 0x00, 0x64][..], // read holding registers
        &[0x04, 0x02, 0x00, 0x0A][..],       // read input registers
        &[0x05, 0x00, 0xAC, 0xFF, 0x00][..], // write single coil: echo
        &[0x06, 0x00, 0x01, 0x00, 0x03][..], // write single register: echo
        &[0x08, 0x00, 0x0B, 0x01, 0x23][..], // diagnostics: 4 data bytes
        &[0x0C, 0x08, 0, 0, 0x01, 0x08, 0x01, 0x21, 0x20, 0x00][..], // comm event log
        &[0x0F, 0x00, 0x13, 0x00, 0x0A][..], // write multiple coils
        &[0x10, 0x00, 0x01, 0x00, 0x02][..], // write multiple registers
        &[0x14, 0x06, 0x05, 0x06, 0x0D, 0xFE, 0x00, 0x20][..], // read file record
        &[
            0x15, 0x09, 0x06, 0x00, 0x04, 0x00, 0x07, 0x00, 0x01, 0x06, 0xAF,
        ][..], // echo
        &[0x83, 0x02][..],                   // exception
        &[0xAB, 0x01][..],                   // exception to FC 0x2B
    ] {
        decodes_exactly(Direction::Response, pdu);
    }
}

#[test]
fn read_device_identification_response_length_should_come_from_the_object_list() {
    let pdu = [
        0x2B, // function code
        0x0E, // MEI type
        0x01, // read device id code
        0x01, // conformity level
        0x00, // more follows
        0x00, // next object id
        0x03, // number of objects
        0x00, 0x07, b'C', b'o', b'm', b'p', b'a', b'n', b'y', // vendor name
        0x01, 0x02, b'P', b'C', // product code
        0x02, 0x00, // an empty revision
    ];
    decodes_exactly(Direction::Response, &pdu);
    decodes_exactly(
        Direction::Response,
        &[0x2B, 0x0E, 0x04, 0x01, 0x00, 0x00, 0x00],
    );
}

#[test]
fn decoder_should_resynchronise_after_noise() {
    let good = frame(0x11, &[0x03, 0x02, 0x00, 0x2A]);
    let mut buf = vec![
        0x00, 0x99, // noise: unknown function code
        0xFF, // noise
    ];
    buf.extend(&good);
    let (frames, rest, dropped) = decode_all(Direction::Response, buf);
    assert_eq!(
        frames,
        [RtuFrame {
            unit: 0x11,
            pdu: vec![0x03, 0x02, 0x00, 0x2A],
        }]
    );
    assert!(rest.is_empty());
    assert_eq!(dropped, 3);
}

#[test]
fn decoder_should_resynchronise_after_a_bad_crc_and_find_the_next_good_frame() {
    let mut bad = frame(0x11, &[0x03, 0x00, 0x6B, 0x00, 0x03]);
    if let Some(crc_hi) = bad.last_mut() {
        *crc_hi ^= 0xFF;
    }
    let good = frame(0x12, &[0x06, 0x00, 0x01, 0x00, 0x03]);
    let mut buf = bad.clone();
    buf.extend(&good);
    let (frames, rest, dropped) = decode_all(Direction::Request, buf);
    assert_eq!(
        frames,
        [RtuFrame {
            unit: 0x12,
            pdu: vec![0x06, 0x00, 0x01, 0x00, 0x03],
        }]
    );
    assert!(rest.is_empty());
    assert_eq!(dropped, bad.len() as u64);
}

#[test]
fn decoder_should_take_frames_back_to_back() {
    let mut buf = frame(0x01, &[0x0C]);
    buf.extend(frame(0x00, &[0x06, 0x00, 0x01, 0x00, 0x03]));
    let (frames, rest, dropped) = decode_all(Direction::Request, buf);
    assert_eq!(frames.len(), 2);
    assert_eq!(frames.get(1).map(|f| f.unit), Some(0x00), "broadcast");
    assert!(rest.is_empty());
    assert_eq!(dropped, 0);
}

#[test]
fn decoder_should_not_take_requests_for_responses() {
    // A read request is five PDU bytes; read as a response its "byte count" is 0x00.
    let request = frame(0x11, &[0x03, 0x00, 0x6B, 0x00, 0x03]);
    let (frames, _, dropped) = decode_all(Direction::Response, request);
    assert!(frames.is_empty());
    assert!(dropped > 0);
    // An exception is never a request.
    let exception = frame(0x11, &[0x83, 0x02]);
    let (frames, rest, dropped) = decode_all(Direction::Request, exception);
    assert!(frames.is_empty());
    assert_eq!((rest.len() as u64) + dropped, 5);
}

#[test]
fn decoder_should_drop_a_frame_that_would_pass_256_bytes() {
    // A write of registers claiming 251 data bytes: 1 + 6 + 251 + 2 = 260 bytes.
    let mut buf = vec![0x11, 0x10, 0x00, 0x00, 0x00, 0x7D, 0xFB];
    buf.extend([0u8; 253]);
    let mut decoder = RtuDecoder::new(Direction::Request);
    assert_eq!(decoder.decode(&mut buf), None);
    assert!(decoder.dropped() >= 1);
    // A device identification whose objects run past 256 bytes.
    let mut id = vec![0x11, 0x2B, 0x0E, 0x01, 0x01, 0x00, 0x00, 0x02];
    id.extend([0x00, 0xFF]);
    id.extend([b'x'; 255]);
    id.extend([0x01, 0x01, b'y', 0, 0]);
    let mut decoder = RtuDecoder::new(Direction::Response);
    assert_eq!(decoder.decode(&mut id), None);
    assert!(decoder.dropped() >= 1);
}

#[test]
fn decoder_should_wait_for_the_mei_type_before_judging_fc_0x2b() {
    let mut buf = vec![0x11, 0x2B];
    let mut decoder = RtuDecoder::new(Direction::Request);
    assert_eq!(decoder.decode(&mut buf), None);
    assert_eq!(buf.len(), 2);
    buf.push(0x0D); // CANopen MEI: not ours
    assert_eq!(decoder.decode(&mut buf), None);
    assert_eq!(decoder.dropped(), 2, "0x11, then 0x2B as a function code");
    assert_eq!(buf, [0x0D]);
}

#[test]
fn frame_silence_should_be_three_and_a_half_characters_up_to_19200_baud() {
    // 9600 baud, 11 bits: 38.5 bits / 9600 = 4.0104 ms.
    assert_eq!(frame_silence(9600, 11), Duration::from_nanos(4_010_416));
    assert_eq!(frame_silence(19_200, 11), Duration::from_nanos(2_005_208));
    assert_eq!(frame_silence(19_201, 11), Duration::from_micros(1750));
    assert_eq!(frame_silence(115_200, 10), Duration::from_micros(1750));
    assert_eq!(frame_silence(0, 11), Duration::from_nanos(38_500_000_000));
}

//! The Modbus RTU decoder takes any byte stream, in both directions, without panicking: it
//! yields frames of at most 256 bytes with a good CRC, accounts for every byte, keeps less
//! than a frame when it waits, and finds the same frames whether bytes come at once or in
//! pieces. Each frame's PDU then goes to the request or answer decoder.
#![no_main]

#[path = "modbus/requests.rs"]
mod requests;

use iotmc_adapter_modbus::codec::rtu::{self, Direction, MAX_FRAME, RtuDecoder, RtuFrame};
use iotmc_adapter_modbus::codec::{decode_answer, decode_request, encode_request};
use libfuzzer_sys::fuzz_target;

fn decode_at_once(direction: Direction, data: &[u8]) -> (Vec<RtuFrame>, Vec<u8>, u64) {
    let mut decoder = RtuDecoder::new(direction);
    let mut buf = data.to_vec();
    let mut frames = Vec::new();
    while let Some(frame) = decoder.decode(&mut buf) {
        frames.push(frame);
    }
    (frames, buf, decoder.dropped())
}

fn decode_in_pieces(direction: Direction, data: &[u8], piece: usize) -> (Vec<RtuFrame>, Vec<u8>) {
    let mut decoder = RtuDecoder::new(direction);
    let mut buf = Vec::new();
    let mut frames = Vec::new();
    for chunk in data.chunks(piece.max(1)) {
        buf.extend_from_slice(chunk);
        while let Some(frame) = decoder.decode(&mut buf) {
            frames.push(frame);
        }
    }
    (frames, buf)
}

fuzz_target!(|data: &[u8]| {
    let requests = requests::fixed();
    for direction in [Direction::Request, Direction::Response] {
        let (frames, rest, dropped) = decode_at_once(direction, data);
        let taken: usize = frames.iter().map(|frame| frame.pdu.len() + 3).sum();
        assert_eq!(
            taken + rest.len() + dropped as usize,
            data.len(),
            "every byte accounted for"
        );
        assert!(rest.len() < MAX_FRAME, "waits with {} bytes", rest.len());
        let piece = usize::from(data.first().copied().unwrap_or(1) % 17);
        assert_eq!(
            decode_in_pieces(direction, data, piece),
            (frames.clone(), rest)
        );

        for frame in frames {
            assert!(frame.pdu.len() + 3 <= MAX_FRAME);
            let mut again = Vec::new();
            rtu::encode_frame(frame.unit, &frame.pdu, &mut again);
            assert_eq!(decode_at_once(direction, &again).0, [frame.clone()]);
            match direction {
                Direction::Request => {
                    if let Ok(request) = decode_request(&frame.pdu) {
                        let mut pdu = Vec::new();
                        if encode_request(&request, &mut pdu).is_ok() {
                            assert_eq!(decode_request(&pdu), Ok(request));
                        }
                    }
                }
                Direction::Response => {
                    for request in &requests {
                        let _ = decode_answer(request, &frame.pdu);
                    }
                }
            }
        }
    }
});

//! The Modbus TCP (MBAP) decoder takes any byte stream without panicking: frames carry 1 to
//! 253 PDU bytes, and a request that decodes encodes back to itself when within the limits.
#![no_main]

use iotmc_adapter_modbus::codec::tcp::{self, MBAP_LEN};
use iotmc_adapter_modbus::codec::{decode_request, encode_request};
use iotmc_adapter_modbus::frame::MAX_PDU;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut buf = data.to_vec();
    let mut taken = 0;
    while let Ok(Some(frame)) = tcp::decode_frame(&mut buf) {
        assert!((1..=MAX_PDU).contains(&frame.pdu.len()));
        taken += MBAP_LEN + frame.pdu.len();
        let mut again = Vec::new();
        tcp::encode_frame(frame.transaction, frame.unit, &frame.pdu, &mut again);
        assert_eq!(tcp::decode_frame(&mut again), Ok(Some(frame.clone())));
        if let Ok(request) = decode_request(&frame.pdu) {
            let mut pdu = Vec::new();
            if encode_request(&request, &mut pdu).is_ok() {
                assert_eq!(decode_request(&pdu), Ok(request));
            }
        }
    }
    assert_eq!(
        taken + buf.len(),
        data.len(),
        "frames are taken off the front, nothing else"
    );
});

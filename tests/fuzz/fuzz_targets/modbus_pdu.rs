//! Answers decode against any request without panicking. A request built from the input
//! encodes within the limits (or is refused) and decodes back to itself; an answer that
//! decodes encodes back to the same answer.
#![no_main]

#[path = "modbus/requests.rs"]
mod requests;

use iotmc_adapter_modbus::codec::{decode_answer, decode_request, encode_answer, encode_request};
use iotmc_adapter_modbus::frame::MAX_PDU;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut fields = requests::Fields(data);
    let request = requests::built(&mut fields);
    let pdu = fields.0;

    let mut encoded = Vec::new();
    if encode_request(&request, &mut encoded).is_ok() {
        assert!(encoded.len() <= MAX_PDU);
        assert_eq!(decode_request(&encoded), Ok(request.clone()));
    } else {
        assert!(
            encoded.is_empty(),
            "a refused request leaves nothing behind"
        );
    }

    if let Ok(answer) = decode_answer(&request, pdu) {
        let mut again = Vec::new();
        encode_answer(request.function_code(), &answer, &mut again);
        assert!(again.len() <= pdu.len());
        assert_eq!(decode_answer(&request, &again), Ok(answer));
    }
});

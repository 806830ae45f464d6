//! The SOAP envelope parser takes any bytes without panicking, and whatever it accepts it
//! accepts within its bounds.
#![no_main]

use iotmc_gateway::upnp::soap;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(call) = soap::parse_envelope(data) {
        assert!(call.arguments.len() <= soap::MAX_ARGUMENTS);
        assert!(call.arguments.iter().all(|(_, v)| v.len() <= soap::MAX_BODY));
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = soap::parse_soap_action(text);
    }
});

//! The SSDP datagram parser takes any bytes without panicking.
#![no_main]

use iotmc_gateway::upnp::ssdp;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(message) = ssdp::parse(data) {
        assert!(data.len() <= ssdp::MAX_DATAGRAM);
        assert!(message.headers().count() <= ssdp::MAX_HEADERS);
        let _ = message.header("ST");
    }
});

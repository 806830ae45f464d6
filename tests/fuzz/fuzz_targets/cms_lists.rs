//! The XML lists inside ConfigurationManagement arguments take any text without panicking.
#![no_main]

use iotmc_gateway::upnp::xml_list;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(items) = xml_list::parse(text, "ParameterValueList") {
            assert!(items.len() <= xml_list::MAX_ITEMS);
        }
    }
});

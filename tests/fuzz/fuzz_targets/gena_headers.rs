//! GENA request parsing takes any header values without panicking. The input is split into
//! method and header lines (`name: value`).
#![no_main]

use hyper::header::{HeaderMap, HeaderName, HeaderValue};
use iotmc_gateway::upnp::gena;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut lines = text.split('\n');
    let method = match lines.next().unwrap_or_default() {
        "U" => hyper::Method::from_bytes(b"UNSUBSCRIBE"),
        _ => hyper::Method::from_bytes(b"SUBSCRIBE"),
    };
    let Ok(method) = method else { return };
    let mut headers = HeaderMap::new();
    for line in lines.take(16) {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.trim().as_bytes()),
            HeaderValue::from_str(value.trim()),
        ) {
            headers.append(name, value);
        }
    }
    let _ = gena::parse_request(&method, &headers);
});

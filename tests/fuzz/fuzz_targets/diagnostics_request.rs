//! A log request as a controller sends it (GetDiagnosticsLog's arguments, the HTTP log's
//! query) takes any text without panicking, and a request that parses reads a ring without
//! panicking, never returning more records than asked or a record at or before its cursor.
#![no_main]

use iotmc_gateway::diagnostics::record::{Category, Cursor, Event, Severity};
use iotmc_gateway::diagnostics::{LogRequest, RequestText, Ring};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let parts: Vec<&str> = text.splitn(5, '\u{1f}').collect();
    let part = |i: usize| parts.get(i).copied().unwrap_or_default();
    let _ = Cursor::parse(&text);
    let Ok(request) = LogRequest::parse(
        &RequestText {
            min_severity: part(0),
            start: part(1),
            end: part(2),
            max: part(3),
            cursor: part(4),
        },
        500,
    ) else {
        return;
    };
    let mut ring = Ring::new(16 * 1024, &[0]);
    for (i, byte) in data.iter().take(64).enumerate() {
        let severity = [Severity::Error, Severity::Warning, Severity::Notice, Severity::Debug]
            [usize::from(*byte) % 4];
        ring.push(
            u64::from(*byte) * 1_000_000_000,
            Event::gateway(severity, Category::Operational, format!("record {i}")),
        );
    }
    let after = request.cursor.map_or(0, |c| c.seq);
    let page = ring.read(after, &request.filter);
    assert!(page.records.len() <= request.filter.max.max(1));
    assert!(page.records.iter().all(|r| r.seq > after));
    let _ = ring.clear_through(after);
});

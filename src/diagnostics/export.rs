//! Export of device logs to rotating files and syslog collectors (filled in by the export
//! work; see the brief).

use super::engine::DiagnosticsEngine;

/// Starts one task per export sink of `engine`; the engine stops them.
pub fn start(engine: &DiagnosticsEngine) {
    let _ = engine;
}

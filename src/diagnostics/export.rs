//! Export of device logs to rotating files and syslog collectors (filled in by the export
//! work; see the brief).

use super::engine::DiagnosticsEngine;

/// Starts one task per export sink of `engine`; the engine stops them.
/// `hostname` is the HOSTNAME of syslog messages (the gateway id).
pub fn start(engine: &DiagnosticsEngine, hostname: &str) {
    let _ = (engine, hostname);
}

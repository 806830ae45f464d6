//! Export of device logs to rotating files and syslog collectors, per group
//! (`[diagnostics]` and `[groups.diagnostics]`).
//!
//! One task per export sink ([`Config::export_sinks`](crate::config::Config::export_sinks))
//! drains the rings of the sink's devices: up to 256 records of a device per batch, written,
//! then marked exported in the ring. A batch that fails stays unmarked and is written again
//! (at least once, never silently lost while the ring holds it); the sink backs off 1 s
//! doubling to 60 s, logs a warning when it starts failing and a note when it works again.
//! Between rounds the task waits for new records, or a second.
//!
//! Records overwritten (or cleared) in the ring before a sink wrote them are counted. The sink
//! gets a record-shaped notice in their place (sequence number 0, "N records of <device> were
//! overwritten or cleared ... before they were exported", fields `lost` and `sink`), and the
//! device's ring gets one warning per gap, however long the sink stays down.
//!
//! - [`file`]: `<directory>/<group or gateway>.jsonl`, JSON lines, rotated by size and age.
//! - [`rfc5424`]: the syslog message of a record (pure).
//! - [`syslog`]: UDP (RFC 5426) or TCP with octet counting (RFC 6587) to a collector.

pub mod file;
pub mod rfc5424;
pub mod syslog;
mod task;

use super::engine::DiagnosticsEngine;
use task::{Exporter, Timing, Writer};

/// Why a sink could not write a batch.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The file sink.
    #[error(transparent)]
    File(#[from] file::FileError),
    /// The syslog sink.
    #[error(transparent)]
    Syslog(#[from] syslog::SyslogError),
    /// The blocking file writer ended without an answer (only when the runtime shuts down).
    #[error("the file writer stopped: {0}")]
    WriterStopped(String),
}

/// Starts one task per export sink of `engine` (none for a sink without devices); syslog
/// messages carry `hostname` (the gateway id) as HOSTNAME. The engine stops them.
pub fn start(engine: &DiagnosticsEngine, hostname: &str) {
    start_timed(engine, hostname, Timing::default());
}

fn start_timed(engine: &DiagnosticsEngine, hostname: &str, timing: Timing) {
    for (sink, spec) in engine.sinks().iter().enumerate() {
        if engine.sink_devices(sink).is_empty() {
            continue;
        }
        let writer = Writer::new(spec, hostname);
        let exporter = Exporter::new(engine, sink, spec, writer, timing);
        engine.adopt_exporter(tokio::spawn(exporter.run()));
    }
}

#[cfg(test)]
mod tests;

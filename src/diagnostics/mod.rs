//! Diagnostics: every device's log (DESIGN.md §2).
//!
//! - [`record`]: one record (time, severity, source, category, message, fields) and the cursor.
//! - [`ring`]: one device's log, a ring bounded in bytes that keeps the newest records, counts
//!   what it overwrote and how far each export sink got. Sans-IO.
//! - [`query`]: a log request (severity, time range, maximum, cursor) checked once for the
//!   UPnP action and the HTTP endpoint.
//! - [`native`]: the device's own log through its adapter, each record taken once.
//! - [`engine`]: the rings of all devices, the background reads, the observers' entry point.
//! - [`observe`]: what the gateway records about every device on its own.
//! - [`render`]: the XML, JSON-lines and text forms of a page of records.
//! - [`export`]: rotating files and RFC 5424 syslog, per group.

pub mod engine;
pub mod export;
pub mod native;
pub mod observe;
pub mod query;
pub mod record;
pub mod render;
pub mod ring;

pub use engine::{
    DeviceEntry, DiagnosticsEngine, DiagnosticsError, LogInfo, LogPage, NativeStatus,
};
pub use query::{LogRequest, RequestText};
pub use record::{Category, Cursor, Event, LogRecord, Severity, Source};
pub use ring::{Filter, Page, Ring};

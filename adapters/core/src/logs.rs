//! A device's own log.

use std::collections::BTreeMap;
use std::fmt::{self, Debug};
use std::time::SystemTime;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::LinkError;

/// Syslog severity (RFC 5424), most severe first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// 0: system is unusable.
    Emergency,
    /// 1: action must be taken immediately.
    Alert,
    /// 2: critical condition.
    Critical,
    /// 3: error condition.
    Error,
    /// 4: warning condition.
    Warning,
    /// 5: normal but significant condition.
    Notice,
    /// 6: informational message.
    Informational,
    /// 7: debug-level message.
    Debug,
}

impl Severity {
    /// The RFC 5424 numeric code.
    pub fn code(self) -> u8 {
        self as u8
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            Self::Emergency => "emergency",
            Self::Alert => "alert",
            Self::Critical => "critical",
            Self::Error => "error",
            Self::Warning => "warning",
            Self::Notice => "notice",
            Self::Informational => "informational",
            Self::Debug => "debug",
        };
        f.write_str(name)
    }
}

/// Where to continue reading a device's log: the device's own record index, or its timestamp
/// where it has no index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum LogCursor {
    /// After the record with this index.
    Index(u64),
    /// After records stamped at or before this time.
    Time(SystemTime),
}

/// One record from a device's own log.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceLogRecord {
    /// The device's own index of the record, if it numbers them.
    pub index: Option<u64>,
    /// When the device says it happened, if it keeps time.
    pub timestamp: Option<SystemTime>,
    /// Severity, mapped to syslog levels by the adapter.
    pub severity: Severity,
    /// The message.
    pub message: String,
    /// Structured fields.
    pub fields: BTreeMap<String, String>,
}

/// Records fetched from a device, and where to continue.
#[derive(Debug, Clone, PartialEq)]
pub struct LogBatch {
    /// Records in the device's order, oldest first.
    pub records: Vec<DeviceLogRecord>,
    /// Pass this to the next [`LogSource::fetch`] to get only newer records.
    pub next: Option<LogCursor>,
}

/// A device's own log.
#[async_trait]
pub trait LogSource: Send + Sync + Debug {
    /// Fetches records after `since` (all the device holds if `None`).
    async fn fetch(&self, since: Option<LogCursor>) -> Result<LogBatch, LinkError>;

    /// Clears the device's log, where the device allows it.
    async fn clear(&self) -> Result<(), LinkError>;
}

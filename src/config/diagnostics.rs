//! `[diagnostics]`: the per-device log ring and its export, gateway-wide and per group.

use std::path::PathBuf;
use std::time::Duration;

use iotmc_adapter::{LocatedError, TomlSource, serde_duration};
use serde::Deserialize;

use super::Config;

/// Default ring size per device, in bytes (DESIGN.md §1: at least 64 KB).
pub const DEFAULT_RING_SIZE: usize = 64 * 1024;
/// Smallest ring accepted: room for a few of the largest records.
pub(super) const MIN_RING_SIZE: usize = 16 * 1024;
/// Largest ring accepted.
pub(super) const MAX_RING_SIZE: usize = 16 * 1024 * 1024;

/// `[diagnostics]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiagnosticsSection {
    /// Bytes of log kept per device, in memory (16 KiB to 16 MiB; default 64 KiB). Each record
    /// costs 96 bytes plus its message, plus 48 bytes plus name and value per field; the oldest
    /// records are overwritten when it is full.
    #[serde(default = "default_ring_size")]
    pub ring_size: usize,
    /// How long reading a device's own log may take before a GetDiagnosticsLog answers with
    /// what the gateway holds (default 5s).
    #[serde(default = "default_fetch_timeout", with = "serde_duration")]
    pub fetch_timeout: Duration,
    /// Most records one GetDiagnosticsLog or HTTP log request returns (default 500, at most
    /// 10000); MaximumRecords 0 means this many.
    #[serde(default = "default_max_records")]
    pub max_records: usize,
    /// Rotating files for devices whose group has no `diagnostics` of its own.
    #[serde(default)]
    pub file: Option<FileExport>,
    /// Syslog for devices whose group has no `diagnostics` of its own.
    #[serde(default)]
    pub syslog: Option<SyslogExport>,
}

impl DiagnosticsSection {
    /// The gateway-wide export.
    pub fn export(&self) -> ExportConfig {
        ExportConfig {
            file: self.file.clone(),
            syslog: self.syslog.clone(),
        }
    }
}

impl Default for DiagnosticsSection {
    fn default() -> Self {
        Self {
            ring_size: default_ring_size(),
            fetch_timeout: default_fetch_timeout(),
            max_records: default_max_records(),
            file: None,
            syslog: None,
        }
    }
}

fn default_ring_size() -> usize {
    DEFAULT_RING_SIZE
}

fn default_fetch_timeout() -> Duration {
    Duration::from_secs(5)
}

fn default_max_records() -> usize {
    500
}

/// Where a set of devices' records are exported: rotating files, a syslog collector, both or
/// neither.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportConfig {
    /// Rotating JSON-lines files.
    #[serde(default)]
    pub file: Option<FileExport>,
    /// RFC 5424 syslog to a collector.
    #[serde(default)]
    pub syslog: Option<SyslogExport>,
}

impl ExportConfig {
    /// Whether anything is exported.
    pub fn is_empty(&self) -> bool {
        self.file.is_none() && self.syslog.is_none()
    }
}

/// `file = { ... }`: JSON lines in `<directory>/<group or "gateway">.jsonl`, rotated to
/// `.1` … `.<keep>` by size and by age.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileExport {
    /// Directory of the files; relative paths are relative to the config file. Created if
    /// missing.
    pub directory: PathBuf,
    /// Rotate when the file reaches this many bytes (default 10 MiB; at least 4 KiB).
    #[serde(default = "default_max_size")]
    pub max_size: u64,
    /// Rotate when the file was started this long ago (default 1day; at least 1s).
    #[serde(default = "default_max_age", with = "serde_duration")]
    pub max_age: Duration,
    /// Rotated files kept; older ones are deleted (default 5, 1 to 100).
    #[serde(default = "default_keep")]
    pub keep: u32,
}

fn default_max_size() -> u64 {
    10 * 1024 * 1024
}

fn default_max_age() -> Duration {
    Duration::from_secs(24 * 3600)
}

fn default_keep() -> u32 {
    5
}

/// Transport to a syslog collector.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SyslogTransport {
    /// RFC 5426: one message per datagram.
    #[default]
    Udp,
    /// RFC 6587 octet counting over one TCP connection, reconnected when it drops.
    Tcp,
}

/// `syslog = { ... }`: RFC 5424 messages to a collector.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyslogExport {
    /// The collector, `host:port` (a name is resolved at each connect).
    pub collector: String,
    /// `udp` (default) or `tcp`.
    #[serde(default)]
    pub transport: SyslogTransport,
    /// Facility, `local0` (default) to `local7`, `user` or `daemon`.
    #[serde(default = "default_facility")]
    pub facility: String,
}

fn default_facility() -> String {
    "local0".to_owned()
}

impl SyslogExport {
    /// The RFC 5424 facility code, if the name is known.
    pub fn facility_code(&self) -> Option<u8> {
        Some(match self.facility.as_str() {
            "user" => 1,
            "daemon" => 3,
            "local0" => 16,
            "local1" => 17,
            "local2" => 18,
            "local3" => 19,
            "local4" => 20,
            "local5" => 21,
            "local6" => 22,
            "local7" => 23,
            _ => return None,
        })
    }
}

/// Which devices an export sink serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SinkScope {
    /// Devices whose group sets no `diagnostics` (and devices without a group).
    Default,
    /// The devices of this group.
    Group(String),
}

impl SinkScope {
    /// The name used for files and in messages: the group's, or `gateway`.
    pub fn name(&self) -> &str {
        match self {
            Self::Default => "gateway",
            Self::Group(g) => g,
        }
    }
}

/// What a sink does.
#[derive(Debug, Clone)]
pub enum SinkKind {
    /// Rotating files.
    File(FileExport),
    /// Syslog.
    Syslog(SyslogExport),
}

/// One export sink: a scope and a destination. Its index in [`Config::export_sinks`] is its
/// id in the rings.
#[derive(Debug, Clone)]
pub struct SinkSpec {
    /// Which devices.
    pub scope: SinkScope,
    /// Where to.
    pub kind: SinkKind,
}

impl SinkSpec {
    /// `file:<scope>` or `syslog:<scope>`, for messages.
    pub fn label(&self) -> String {
        match &self.kind {
            SinkKind::File(_) => format!("file:{}", self.scope.name()),
            SinkKind::Syslog(_) => format!("syslog:{}", self.scope.name()),
        }
    }
}

impl Config {
    /// Every export sink: the gateway-wide ones first, then each group's, in config order.
    pub fn export_sinks(&self) -> Vec<SinkSpec> {
        let mut sinks = Vec::new();
        let mut add = |scope: SinkScope, export: &ExportConfig| {
            if let Some(file) = &export.file {
                sinks.push(SinkSpec {
                    scope: scope.clone(),
                    kind: SinkKind::File(file.clone()),
                });
            }
            if let Some(syslog) = &export.syslog {
                sinks.push(SinkSpec {
                    scope,
                    kind: SinkKind::Syslog(syslog.clone()),
                });
            }
        };
        add(SinkScope::Default, &self.diagnostics.export());
        for group in &self.groups {
            if let Some(export) = &group.diagnostics {
                add(SinkScope::Group(group.name.clone()), export);
            }
        }
        sinks
    }

    /// The indices in [`Config::export_sinks`] of the sinks that export a device of `group`.
    pub fn sinks_for(&self, group: Option<&str>) -> Vec<usize> {
        let own = group
            .and_then(|g| self.group(g))
            .and_then(|g| g.diagnostics.as_ref())
            .map(|_| SinkScope::Group(group.unwrap_or_default().to_owned()));
        let wanted = own.unwrap_or(SinkScope::Default);
        self.export_sinks()
            .iter()
            .enumerate()
            .filter(|(_, s)| s.scope == wanted)
            .map(|(i, _)| i)
            .collect()
    }
}

impl DiagnosticsSection {
    pub(super) fn check(&self, source: &TomlSource, errors: &mut Vec<LocatedError>) {
        let mut fail = |field: &str, message: String| errors.push(source.error_at(field, message));
        if !(MIN_RING_SIZE..=MAX_RING_SIZE).contains(&self.ring_size) {
            fail(
                "diagnostics.ring_size",
                format!(
                    "{} bytes is outside 16 KiB (16384) to 16 MiB (default 64 KiB)",
                    self.ring_size
                ),
            );
        }
        if self.fetch_timeout < Duration::from_millis(100)
            || self.fetch_timeout > Duration::from_secs(60)
        {
            fail(
                "diagnostics.fetch_timeout",
                format!(
                    "{} is outside 100ms to 1min",
                    humantime::format_duration(self.fetch_timeout)
                ),
            );
        }
        if !(1..=10_000).contains(&self.max_records) {
            fail(
                "diagnostics.max_records",
                format!("{} is outside 1 to 10000", self.max_records),
            );
        }
    }
}

impl ExportConfig {
    /// Checks the export settings found at `at` (`diagnostics` or `groups[2].diagnostics`).
    pub(super) fn check(&self, at: &str, source: &TomlSource, errors: &mut Vec<LocatedError>) {
        let mut fail = |field: &str, message: String| {
            errors.push(source.error_at(&format!("{at}.{field}"), message))
        };
        if let Some(file) = &self.file {
            if file.max_size < 4096 {
                fail(
                    "file.max_size",
                    format!("{} bytes is below 4 KiB (default 10 MiB)", file.max_size),
                );
            }
            if file.max_age < Duration::from_secs(1) {
                fail("file.max_age", "must be at least 1s (default 1day)".into());
            }
            if !(1..=100).contains(&file.keep) {
                fail(
                    "file.keep",
                    format!("{} is outside 1 to 100 (default 5)", file.keep),
                );
            }
        }
        if let Some(syslog) = &self.syslog {
            let port = syslog
                .collector
                .rsplit_once(':')
                .and_then(|(host, port)| (!host.is_empty()).then_some(port))
                .and_then(|p| p.parse::<u16>().ok());
            if port.is_none_or(|p| p == 0) {
                fail(
                    "syslog.collector",
                    format!(
                        "{:?} is not host:port; e.g. \"logs.example.net:514\" or \"[2001:db8::5]:6514\"",
                        syslog.collector
                    ),
                );
            }
            if syslog.facility_code().is_none() {
                fail(
                    "syslog.facility",
                    format!(
                        "{:?} is not a facility; use local0 to local7, user or daemon",
                        syslog.facility
                    ),
                );
            }
        }
    }

    pub(super) fn paths_mut(&mut self) -> impl Iterator<Item = &mut PathBuf> {
        self.file.as_mut().map(|f| &mut f.directory).into_iter()
    }
}

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
        let wanted = match group.and_then(|g| self.group(g)) {
            Some(g) if g.diagnostics.is_some() => SinkScope::Group(g.name.clone()),
            _ => SinkScope::Default,
        };
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
        // Below the HTTP listeners' 30 s per request, so that a read of a silent device
        // still answers with the records held.
        if self.fetch_timeout < Duration::from_millis(100)
            || self.fetch_timeout > Duration::from_secs(20)
        {
            fail(
                "diagnostics.fetch_timeout",
                format!(
                    "{} is outside 100ms to 20s (a log request must answer within the 30 s the HTTP listeners allow)",
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
            if !is_host_port(&syslog.collector) {
                fail(
                    "syslog.collector",
                    format!(
                        "{:?} is not host:port (a port 1 to 65535; an IPv6 address in brackets); e.g. \"logs.example.net:514\" or \"[2001:db8::5]:6514\"",
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

/// Whether `text` is `host:port` as the syslog export resolves it: a host name or IPv4
/// address (letters, digits, `.`, `-`, `_`), or an IPv6 address in brackets, and a port from 1.
fn is_host_port(text: &str) -> bool {
    let Some((host, port)) = text.rsplit_once(':') else {
        return false;
    };
    let port_ok = port.parse::<u16>().is_ok_and(|p| p != 0);
    let host_ok = match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(v6) => v6.parse::<std::net::Ipv6Addr>().is_ok(),
        None => {
            !host.is_empty()
                && host
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
        }
    };
    port_ok && host_ok
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    const BASE: &str = r#"
[gateway]
id = "plant-room-1"
name = "Plant room gateway"
state_dir = "state"
"#;

    fn load(tail: &str) -> Result<Config, Vec<LocatedError>> {
        Config::from_toml(
            Path::new("/etc/iotmc-gateway/gateway.toml"),
            &format!("{BASE}{tail}"),
        )
    }

    /// (field, line) of each error, in order.
    fn located(errors: &[LocatedError]) -> Vec<(String, Option<usize>)> {
        errors
            .iter()
            .map(|e| (e.field.clone().unwrap_or_default(), e.line))
            .collect()
    }

    #[test]
    fn without_a_section_the_defaults_should_hold_and_nothing_be_exported() {
        let config = load("").unwrap();
        let d = &config.diagnostics;
        assert_eq!(d.ring_size, 64 * 1024);
        assert_eq!(d.fetch_timeout, Duration::from_secs(5));
        assert_eq!(d.max_records, 500);
        assert!(d.export().is_empty());
        assert!(config.export_sinks().is_empty());
        assert!(config.sinks_for(None).is_empty());
    }

    const EXPORTS: &str = r#"
[diagnostics]
ring_size = 131072
file = { directory = "logs" }
syslog = { collector = "logs.example.net:514" }

[[groups]]
name = "hvac"

[groups.diagnostics]
syslog = { collector = "[2001:db8::5]:6514", transport = "tcp", facility = "local5" }

[[groups]]
name = "lighting"

[[groups]]
name = "lab"
diagnostics = {}
"#;

    #[test]
    fn export_sinks_should_list_the_gateway_wide_ones_then_each_groups() {
        let config = load(EXPORTS).unwrap();
        let sinks = config.export_sinks();
        let labels: Vec<_> = sinks.iter().map(SinkSpec::label).collect();
        assert_eq!(labels, ["file:gateway", "syslog:gateway", "syslog:hvac"]);
        let SinkKind::File(file) = &sinks[0].kind else {
            panic!("a file sink first")
        };
        assert_eq!(file.directory, Path::new("/etc/iotmc-gateway/logs"));
        assert_eq!(file.max_size, 10 * 1024 * 1024);
        assert_eq!(file.max_age, Duration::from_secs(24 * 3600));
        assert_eq!(file.keep, 5);
        let SinkKind::Syslog(gateway) = &sinks[1].kind else {
            panic!("a syslog sink second")
        };
        assert_eq!(gateway.transport, SyslogTransport::Udp);
        assert_eq!(gateway.facility_code(), Some(16));
        let SinkKind::Syslog(hvac) = &sinks[2].kind else {
            panic!("the group's syslog sink third")
        };
        assert_eq!(hvac.transport, SyslogTransport::Tcp);
        assert_eq!(hvac.facility_code(), Some(21));
    }

    #[test]
    fn a_device_should_be_exported_by_its_groups_sinks_or_else_the_gateway_wide_ones() {
        let config = load(EXPORTS).unwrap();
        assert_eq!(config.sinks_for(Some("hvac")), [2]);
        assert_eq!(config.sinks_for(Some("lighting")), [0, 1]);
        assert_eq!(config.sinks_for(None), [0, 1]);
        // An empty `diagnostics` of its own opts the group out of the gateway-wide export.
        assert!(config.sinks_for(Some("lab")).is_empty());
    }

    #[test]
    fn bad_export_settings_should_each_be_located_and_say_what_to_do() {
        let text = EXPORTS
            .replace("ring_size = 131072", "ring_size = 1000\nmax_records = 0")
            .replace(
                "file = { directory = \"logs\" }",
                "file = { directory = \"logs\", max_size = 100, max_age = \"0s\", keep = 0 }",
            )
            .replace(
                "collector = \"logs.example.net:514\"",
                "collector = \"logs.example.net\", facility = \"local9\"",
            )
            .replace("[2001:db8::5]:6514", "2001:db8::5:6514");
        let errors = load(&text).unwrap_err();
        assert_eq!(
            located(&errors),
            [
                ("diagnostics.ring_size".to_owned(), Some(8)),
                ("diagnostics.max_records".to_owned(), Some(9)),
                ("diagnostics.file.max_size".to_owned(), Some(10)),
                ("diagnostics.file.max_age".to_owned(), Some(10)),
                ("diagnostics.file.keep".to_owned(), Some(10)),
                ("diagnostics.syslog.collector".to_owned(), Some(11)),
                ("diagnostics.syslog.facility".to_owned(), Some(11)),
                (
                    "groups[0].diagnostics.syslog.collector".to_owned(),
                    Some(17)
                ),
            ],
            "{errors:#?}"
        );
        let message = |field: &str| {
            errors
                .iter()
                .find(|e| e.field.as_deref() == Some(field))
                .map(|e| e.message.clone())
                .unwrap_or_default()
        };
        assert!(message("diagnostics.ring_size").contains("16 KiB"));
        assert!(message("diagnostics.file.max_size").contains("4 KiB"));
        assert!(message("diagnostics.file.keep").contains("1 to 100"));
        assert!(message("diagnostics.syslog.collector").contains("logs.example.net:514"));
        assert!(message("diagnostics.syslog.facility").contains("local0 to local7"));
        assert!(message("groups[0].diagnostics.syslog.collector").contains("brackets"));
    }

    #[test]
    fn an_unknown_transport_or_key_should_be_refused_at_its_line() {
        let errors =
            load(&EXPORTS.replace("transport = \"tcp\"", "transport = \"tls\"")).unwrap_err();
        assert_eq!(errors.len(), 1, "{errors:#?}");
        assert_eq!(errors[0].line, Some(16), "{}", errors[0]);
        assert!(errors[0].message.contains("udp"), "{}", errors[0]);
        let errors = load(&EXPORTS.replace(
            "directory = \"logs\"",
            "directory = \"logs\", rotate = \"daily\"",
        ))
        .unwrap_err();
        assert_eq!(errors[0].line, Some(9), "{}", errors[0]);
        assert!(errors[0].message.contains("rotate"), "{}", errors[0]);
    }

    #[test]
    fn collectors_should_be_a_host_or_bracketed_ipv6_address_and_a_port() {
        for good in [
            "logs.example.net:514",
            "192.0.2.7:6514",
            "[2001:db8::5]:514",
            "[::1]:1",
            "collector_1:65535",
        ] {
            assert!(is_host_port(good), "{good}");
        }
        for bad in [
            "logs.example.net",
            ":514",
            "logs:0",
            "logs:65536",
            "logs:syslog",
            "2001:db8::5:514",
            "[2001:db8::zz]:514",
            "[]:514",
            "two words:514",
            "udp://logs:514",
        ] {
            assert!(!is_host_port(bad), "{bad}");
        }
    }
}

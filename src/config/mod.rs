//! The gateway configuration file (TOML).
//!
//! Every key is documented in `deploy/gateway.example.toml`. Unknown keys are errors, located by
//! file and line; so are values that parse but make no sense (a VLAN id of 5000, a device in a
//! group that does not exist, a probation period shorter than the bounds allow).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use iotmc_adapter::{LocatedError, TomlSource, serde_duration};
use serde::Deserialize;

/// Largest config file read, in bytes.
const MAX_CONFIG_SIZE: u64 = 4 * 1024 * 1024;

/// Shortest probation period for ordinary firmware updates.
pub const MIN_PROBATION: Duration = Duration::from_secs(24 * 3600);
/// Shortest probation period for emergency firmware updates.
pub const MIN_EMERGENCY_PROBATION: Duration = Duration::from_secs(3600);
/// Longest probation period accepted.
pub const MAX_PROBATION: Duration = Duration::from_secs(30 * 24 * 3600);

/// The whole configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The gateway itself.
    pub gateway: GatewaySection,
    /// Where the gateway listens.
    #[serde(default)]
    pub listen: ListenSection,
    /// Certificates, keys and trust anchors.
    #[serde(default)]
    pub trust: TrustSection,
    /// Management groups.
    #[serde(default)]
    pub groups: Vec<GroupConfig>,
    /// Managed devices.
    #[serde(default)]
    pub devices: Vec<DeviceConfig>,
    /// MQTT broker connections.
    #[serde(default)]
    pub mqtt: MqttConfig,
    /// The firmware engine.
    #[serde(default)]
    pub firmware: FirmwareSection,
    /// Device logs: ring size and export.
    #[serde(default)]
    pub diagnostics: DiagnosticsSection,
    /// Device identities and enrollment.
    #[serde(default)]
    pub enrollment: EnrollmentSection,
    /// The file this came from (for locating errors found later).
    #[serde(skip)]
    pub source: TomlSource,
}

/// `[gateway]`: identity and local storage.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewaySection {
    /// Stable id of this gateway; virtual device UDNs derive from it. Never change it after
    /// deployment.
    pub id: String,
    /// Name shown to controllers.
    pub name: String,
    /// Where the registry, images and logs live.
    pub state_dir: PathBuf,
    /// Domain used in vendor URNs and the vendor SSDP header.
    #[serde(default = "default_vendor_domain")]
    pub vendor_domain: String,
    /// Directories of device profiles; relative paths are relative to this file.
    #[serde(default = "default_profile_dirs")]
    pub profile_dirs: Vec<PathBuf>,
    /// How long a stop waits for running operations before giving up on them.
    #[serde(default = "default_shutdown_grace", with = "serde_duration")]
    pub shutdown_grace: Duration,
}

fn default_vendor_domain() -> String {
    "iotmc-gateway.local".to_owned()
}

fn default_profile_dirs() -> Vec<PathBuf> {
    vec![
        PathBuf::from("/usr/share/iotmc-gateway/device-profiles"),
        PathBuf::from("/etc/iotmc-gateway/profiles"),
    ]
}

fn default_shutdown_grace() -> Duration {
    Duration::from_secs(10)
}

/// `[listen]`: sockets of the UPnP face.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenSection {
    /// Network interfaces SSDP is served on; empty means every up, non-loopback interface.
    #[serde(default)]
    pub interfaces: Vec<String>,
    /// Plain HTTP: descriptions, read-only queries, eventing.
    #[serde(default = "default_http")]
    pub http: SocketAddr,
    /// HTTPS with client certificates: every state-changing action.
    #[serde(default = "default_https")]
    pub https: SocketAddr,
    /// UDP port of SSDP (1900 is the standard's; other values only for tests and labs).
    #[serde(default = "default_ssdp_port")]
    pub ssdp_port: u16,
    /// Base of the one-time firmware URLs given to devices that download their image (Tasmota),
    /// e.g. `http://192.168.10.2:49152`, when they reach the gateway by another address than
    /// the first served interface (NAT, another VLAN). Default: that interface and the HTTP port.
    #[serde(default)]
    pub image_base_url: Option<String>,
}

impl Default for ListenSection {
    fn default() -> Self {
        Self {
            interfaces: Vec::new(),
            http: default_http(),
            https: default_https(),
            ssdp_port: default_ssdp_port(),
            image_base_url: None,
        }
    }
}

fn default_http() -> SocketAddr {
    SocketAddr::from(([0, 0, 0, 0], 49152))
}

fn default_ssdp_port() -> u16 {
    1900
}

fn default_https() -> SocketAddr {
    SocketAddr::from(([0, 0, 0, 0], 49443))
}

/// `[trust]`: paths to certificates and keys. Relative paths are relative to this file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustSection {
    /// The gateway's TLS certificate chain (PEM).
    #[serde(default)]
    pub gateway_certificate: Option<PathBuf>,
    /// The gateway's private key (PEM, mode 0600).
    #[serde(default)]
    pub gateway_key: Option<PathBuf>,
    /// CA certificate that issues virtual device identities (PEM).
    #[serde(default)]
    pub issuing_ca_certificate: Option<PathBuf>,
    /// Its private key (PEM, mode 0600).
    #[serde(default)]
    pub issuing_ca_key: Option<PathBuf>,
    /// CA whose client certificates operators present for state-changing actions.
    #[serde(default)]
    pub operator_ca: Option<PathBuf>,
    /// CAs whose certificates enrolling devices may present.
    #[serde(default)]
    pub device_cas: Vec<PathBuf>,
    /// Directory of vendor Ed25519 public keys trusted to sign firmware.
    #[serde(default)]
    pub firmware_keys: Option<PathBuf>,
}

/// Largest firmware image accepted by default (DESIGN.md §1: 32 MB for a device with 64 MB of
/// flash).
pub const DEFAULT_MAX_IMAGE_SIZE: u64 = 32 * 1024 * 1024;

/// `[firmware]`: the firmware engine.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FirmwareSection {
    /// Largest image the store accepts, in bytes (default 32 MiB, at most 1 GiB); a profile's
    /// `firmware.max_image_size` lowers it for its devices.
    #[serde(default = "default_max_image_size")]
    pub max_image_size: u64,
    /// How often the running gateway looks for images imported by `iotmc-gateway firmware
    /// import` (default 5s).
    #[serde(default = "default_scan_interval", with = "serde_duration")]
    pub scan_interval: Duration,
    /// Time between health checks of a device on probation (default 1min).
    #[serde(default = "default_check_interval", with = "serde_duration")]
    pub check_interval: Duration,
    /// Test builds only (debug assertions on): lowers the probation floors (24h, and 1h for
    /// emergency images) to this, so tests can watch a probation end. A release build refuses
    /// the key.
    #[serde(default, with = "serde_duration::option")]
    pub test_probation_floor: Option<Duration>,
}

impl Default for FirmwareSection {
    fn default() -> Self {
        Self {
            max_image_size: default_max_image_size(),
            scan_interval: default_scan_interval(),
            check_interval: default_check_interval(),
            test_probation_floor: None,
        }
    }
}

fn default_max_image_size() -> u64 {
    DEFAULT_MAX_IMAGE_SIZE
}

fn default_scan_interval() -> Duration {
    Duration::from_secs(5)
}

fn default_check_interval() -> Duration {
    Duration::from_secs(60)
}

impl Config {
    /// The shortest probation allowed for ordinary and for emergency images: 24h and 1h, or
    /// `[firmware] test_probation_floor` in a test build.
    pub fn probation_floors(&self) -> (Duration, Duration) {
        match self.firmware.test_probation_floor {
            Some(floor) if cfg!(debug_assertions) => (floor, floor),
            _ => (MIN_PROBATION, MIN_EMERGENCY_PROBATION),
        }
    }
}

/// `[[groups]]`: a management group.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupConfig {
    /// Unique name.
    pub name: String,
    /// 802.1Q VLAN id (1–4094) of the group's sub-interface; none keeps the group on the parent.
    #[serde(default)]
    pub vlan: Option<u16>,
    /// Interface the VLAN sub-interface is created on.
    #[serde(default)]
    pub parent_interface: Option<String>,
    /// How enrolling devices are approved.
    #[serde(default)]
    pub approval: ApprovalMode,
    /// Which devices `approval = "zero-touch"` approves without an operator.
    #[serde(default)]
    pub zero_touch: ZeroTouchRule,
    /// Parameter values pushed to a device when it joins the group.
    #[serde(default)]
    pub defaults: BTreeMap<String, toml::Value>,
    /// Firmware update policy.
    #[serde(default)]
    pub firmware: FirmwarePolicy,
    /// When disruptive work (firmware, reboots) may happen; none means any time.
    #[serde(default)]
    pub maintenance_window: Option<MaintenanceWindow>,
    /// Where the group's device logs are exported, instead of the gateway-wide
    /// `[diagnostics]` file and syslog.
    #[serde(default)]
    pub diagnostics: Option<ExportConfig>,
}

/// How enrolling devices are approved.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ApprovalMode {
    /// An operator approves each device.
    #[default]
    Manual,
    /// Devices with cryptographic identity evidence are approved without an operator.
    ZeroTouch,
}

/// When firmware updates run and how long new firmware is watched.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FirmwarePolicy {
    /// `as-scheduled` (default): at the time the controller scheduled; `maintenance-window`: scheduled updates
    /// wait for the group's next window.
    #[serde(default)]
    pub schedule: SchedulePolicy,
    /// Probation after an ordinary update (24 h to 30 days; default 24 h).
    #[serde(default = "default_probation", with = "serde_duration")]
    pub probation: Duration,
    /// Probation after an emergency update (1 h up to `probation`; default 4 h).
    #[serde(default = "default_emergency_probation", with = "serde_duration")]
    pub emergency_probation: Duration,
}

impl Default for FirmwarePolicy {
    fn default() -> Self {
        Self {
            schedule: SchedulePolicy::default(),
            probation: default_probation(),
            emergency_probation: default_emergency_probation(),
        }
    }
}

fn default_probation() -> Duration {
    MIN_PROBATION
}

fn default_emergency_probation() -> Duration {
    Duration::from_secs(4 * 3600)
}

/// When scheduled firmware updates run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SchedulePolicy {
    /// At the time the controller scheduled.
    #[default]
    AsScheduled,
    /// At the group's next maintenance window at or after the scheduled time.
    MaintenanceWindow,
}

/// A weekly maintenance window, in UTC.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaintenanceWindow {
    /// Days it opens on (`mon` … `sun`); default every day.
    #[serde(default = "every_day")]
    pub days: Vec<Weekday>,
    /// Opening time, `HH:MM` UTC.
    pub start: String,
    /// How long it stays open.
    #[serde(with = "serde_duration")]
    pub duration: Duration,
}

fn every_day() -> Vec<Weekday> {
    use Weekday::*;
    vec![Mon, Tue, Wed, Thu, Fri, Sat, Sun]
}

impl MaintenanceWindow {
    /// Opening time as minutes after midnight UTC, if `start` is valid.
    pub fn start_minute(&self) -> Option<u16> {
        let (h, m) = self.start.split_once(':')?;
        if h.len() != 2 || m.len() != 2 {
            return None;
        }
        let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
        (h < 24 && m < 60).then_some(h * 60 + m)
    }
}

/// A day of the week.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
#[allow(missing_docs)]
pub enum Weekday {
    Mon,
    Tue,
    Wed,
    Thu,
    Fri,
    Sat,
    Sun,
}

/// `[[devices]]`: a managed device.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceConfig {
    /// Unique id: lowercase letters, digits, `-` and `_`.
    pub id: String,
    /// Friendly name shown to controllers; defaults to the profile's model and the id.
    #[serde(default)]
    pub name: Option<String>,
    /// Profile id.
    pub profile: String,
    /// Protocol address, in the syntax of the profile's adapter.
    pub address: String,
    /// Management group.
    #[serde(default)]
    pub group: Option<String>,
}

impl Config {
    /// Reads and checks the config file at `path`. Every error found is returned.
    pub fn load(path: &Path) -> Result<Self, Vec<LocatedError>> {
        let source = TomlSource::read(path, MAX_CONFIG_SIZE, "config").map_err(|e| vec![e])?;
        Self::from_toml(path, source.text())
    }

    /// Parses and checks a config from text; `path` names it in errors and anchors relative
    /// paths.
    pub fn from_toml(path: &Path, text: &str) -> Result<Self, Vec<LocatedError>> {
        let source = TomlSource::new(path, text);
        let mut config: Config =
            toml::from_str(text).map_err(|e| vec![source.error_from_toml(&e)])?;
        config.source = source;
        let errors = config.check_meaning();
        if !errors.is_empty() {
            return Err(errors);
        }
        config.resolve_paths();
        Ok(config)
    }

    /// The group of this name.
    pub fn group(&self, name: &str) -> Option<&GroupConfig> {
        self.groups.iter().find(|g| g.name == name)
    }

    /// Makes relative paths relative to the config file's directory.
    fn resolve_paths(&mut self) {
        let base = self
            .source
            .path()
            .parent()
            .map(Path::to_owned)
            .unwrap_or_default();
        let resolve = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        resolve(&mut self.gateway.state_dir);
        self.gateway.profile_dirs.iter_mut().for_each(resolve);
        let t = &mut self.trust;
        for p in [
            &mut t.gateway_certificate,
            &mut t.gateway_key,
            &mut t.issuing_ca_certificate,
            &mut t.issuing_ca_key,
            &mut t.operator_ca,
            &mut t.firmware_keys,
        ]
        .into_iter()
        .flatten()
        {
            resolve(p);
        }
        t.device_cas.iter_mut().for_each(resolve);
        for broker in &mut self.mqtt.brokers {
            broker.paths_mut().for_each(resolve);
        }
        if let Some(file) = &mut self.diagnostics.file {
            resolve(&mut file.directory);
        }
        for group in &mut self.groups {
            if let Some(export) = &mut group.diagnostics {
                export.paths_mut().for_each(resolve);
            }
        }
    }
}

mod check;
mod diagnostics;
mod enrollment;
mod mqtt;

pub use diagnostics::{
    DEFAULT_RING_SIZE, DiagnosticsSection, ExportConfig, FileExport, SinkKind, SinkScope, SinkSpec,
    SyslogExport, SyslogTransport,
};

pub use enrollment::{
    CRYPTOGRAPHIC_EVIDENCE, EnrollmentSection, MAX_CERTIFICATE_VALIDITY, MIN_CERTIFICATE_VALIDITY,
    ZeroTouchRule,
};
pub use mqtt::{BrokerConfig, BrokerTlsConfig, MqttConfig, VersionConfig};

#[cfg(test)]
mod tests;

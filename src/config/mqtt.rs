//! `[mqtt]`: the broker connections MQTT devices are reached through. Device addresses name a
//! broker: `mqtt://<broker name>/<device>`.

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::Duration;

use iotmc_adapter::{LocatedError, TomlSource, serde_duration};
use serde::Deserialize;

/// Shortest keep-alive accepted (rumqttc's own lower bound).
const MIN_KEEP_ALIVE: Duration = Duration::from_secs(5);
/// Longest keep-alive accepted.
const MAX_KEEP_ALIVE: Duration = Duration::from_secs(3600);

/// `[mqtt]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MqttConfig {
    /// `[[mqtt.brokers]]`: one entry per broker; the gateway opens one connection to each broker
    /// that has a device on it, shared by all its devices.
    #[serde(default)]
    pub brokers: Vec<BrokerConfig>,
}

/// `[[mqtt.brokers]]`: one broker connection.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BrokerConfig {
    /// Name device addresses use: letters, digits, `-` and `_`.
    pub name: String,
    /// Host name or IP address.
    pub host: String,
    /// TCP port; default 1883, or 8883 with `tls`.
    #[serde(default)]
    pub port: Option<u16>,
    /// Protocol version: `"5"` (default) or `"3.1.1"` for brokers without MQTT 5 (the generic
    /// dialect's request/response then is unavailable).
    #[serde(default)]
    pub version: VersionConfig,
    /// Client id; default `iotmc-<gateway id>`. Must be unique on the broker.
    #[serde(default)]
    pub client_id: Option<String>,
    /// Keep-alive interval, 5s to 1h (default 30s).
    #[serde(default = "default_keep_alive", with = "serde_duration")]
    pub keep_alive: Duration,
    /// User name, if the broker wants one.
    #[serde(default)]
    pub username: Option<String>,
    /// File holding the password (its first line; keep it mode 0600). Needs `username`.
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// TLS: the CA to trust and, for mutual TLS, a client certificate and key.
    #[serde(default)]
    pub tls: Option<BrokerTlsConfig>,
    /// Largest packet accepted from the broker, in bytes (default 262144; at least 4096).
    #[serde(default = "default_max_packet_size")]
    pub max_packet_size: usize,
}

/// `[mqtt.brokers.tls]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BrokerTlsConfig {
    /// CA certificate(s) that sign the broker's certificate (PEM).
    pub ca: PathBuf,
    /// Client certificate chain for mutual TLS (PEM); needs `key`.
    #[serde(default)]
    pub certificate: Option<PathBuf>,
    /// Its private key (PEM, mode 0600).
    #[serde(default)]
    pub key: Option<PathBuf>,
}

/// The protocol version of a broker connection.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub enum VersionConfig {
    /// MQTT 5.
    #[default]
    #[serde(rename = "5")]
    V5,
    /// MQTT 3.1.1.
    #[serde(rename = "3.1.1")]
    V311,
}

fn default_keep_alive() -> Duration {
    Duration::from_secs(30)
}

fn default_max_packet_size() -> usize {
    256 * 1024
}

impl BrokerConfig {
    /// The port, with the default for plain or TLS connections.
    pub fn port(&self) -> u16 {
        self.port
            .unwrap_or(if self.tls.is_some() { 8883 } else { 1883 })
    }

    /// The client id, with the default derived from the gateway id.
    pub fn client_id(&self, gateway_id: &str) -> String {
        self.client_id
            .clone()
            .unwrap_or_else(|| format!("iotmc-{gateway_id}"))
    }

    /// Every path this entry refers to, for making them relative to the config file.
    pub(super) fn paths_mut(&mut self) -> impl Iterator<Item = &mut PathBuf> {
        let tls = self.tls.as_mut();
        self.password_file
            .iter_mut()
            .chain(tls.into_iter().flat_map(|t| {
                std::iter::once(&mut t.ca)
                    .chain(t.certificate.iter_mut())
                    .chain(t.key.iter_mut())
            }))
    }
}

impl MqttConfig {
    /// Checks names, bounds and pairings; every error located.
    pub(super) fn check(&self, source: &TomlSource, errors: &mut Vec<LocatedError>) {
        let mut names = HashSet::new();
        for (i, broker) in self.brokers.iter().enumerate() {
            let mut fail = |field: &str, message: String| {
                errors.push(source.error_at(&format!("mqtt.brokers[{i}].{field}"), message));
            };
            let name_ok = !broker.name.is_empty()
                && broker.name.len() <= 64
                && broker
                    .name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
            if !name_ok {
                fail(
                    "name",
                    format!(
                        "{:?} is not a valid broker name; expected letters, digits, `-` and `_` (device addresses use it: mqtt://<name>/<device>)",
                        broker.name
                    ),
                );
            } else if !names.insert(broker.name.as_str()) {
                fail(
                    "name",
                    format!("broker `{}` is declared twice", broker.name),
                );
            }
            if broker.host.trim().is_empty() {
                fail("host", "must not be empty".into());
            }
            if broker.port == Some(0) {
                fail("port", "0 is not a port".into());
            }
            if broker.keep_alive < MIN_KEEP_ALIVE || broker.keep_alive > MAX_KEEP_ALIVE {
                fail(
                    "keep_alive",
                    format!(
                        "{:?} is outside 5s..1h; the broker drops a client after 1.5 times this without a packet",
                        broker.keep_alive
                    ),
                );
            }
            if let Some(id) = &broker.client_id
                && (id.is_empty() || id.len() > 64 || id.contains(['+', '#', '/', '\0']))
            {
                fail(
                    "client_id",
                    format!(
                        "{id:?} is not a usable client id; 1 to 64 characters without `+`, `#`, `/`"
                    ),
                );
            }
            if broker.password_file.is_some() && broker.username.is_none() {
                fail(
                    "password_file",
                    "a password needs a `username` as well".into(),
                );
            }
            if broker.max_packet_size < 4096 || broker.max_packet_size > 16 * 1024 * 1024 {
                fail(
                    "max_packet_size",
                    format!("{} is outside 4096..16777216 bytes", broker.max_packet_size),
                );
            }
            if let Some(tls) = &broker.tls
                && tls.certificate.is_some() != tls.key.is_some()
            {
                fail(
                    "tls",
                    "a client certificate needs its key and a key needs its certificate: set both `certificate` and `key`, or neither".into(),
                );
            }
        }
    }
}

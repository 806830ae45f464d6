//! `[[mqtt.brokers]]` of the gateway config turned into the MQTT adapter's broker settings:
//! certificates, keys and passwords read from their files, TLS set up.

use std::path::Path;

use iotmc_adapter::LocatedError;
use iotmc_adapter_mqtt::settings::{DEFAULT_MAX_PACKET_SIZE, tls_client_config};
use iotmc_adapter_mqtt::{BrokerSettings, MqttVersion};

use crate::config::{Config, VersionConfig};

/// Largest certificate, key or password file read, in bytes.
const MAX_SECRET_FILE: u64 = 256 * 1024;

/// The broker settings of every `[[mqtt.brokers]]` entry.
pub(super) fn brokers(config: &Config) -> Result<Vec<BrokerSettings>, Vec<LocatedError>> {
    let source = &config.source;
    let mut errors = Vec::new();
    let mut brokers = Vec::new();
    for (i, broker) in config.mqtt.brokers.iter().enumerate() {
        let at = |field: &str| format!("mqtt.brokers[{i}].{field}");
        let mut read = |field: &str, path: &Path, what: &str| match read_secret(path) {
            Ok(bytes) => Some(bytes),
            Err(e) => {
                errors.push(source.error_at(
                    &at(field),
                    format!(
                        "broker `{}`: cannot read the {what} {}: {e}",
                        broker.name,
                        path.display()
                    ),
                ));
                None
            }
        };
        let password = broker
            .password_file
            .as_deref()
            .and_then(|p| read("password_file", p, "password file"))
            .map(|bytes| {
                String::from_utf8_lossy(&bytes)
                    .lines()
                    .next()
                    .unwrap_or_default()
                    .to_owned()
            });
        let tls = match &broker.tls {
            None => None,
            Some(tls) => {
                let ca = read("tls.ca", &tls.ca, "CA certificate");
                let certificate = tls
                    .certificate
                    .as_deref()
                    .and_then(|p| read("tls.certificate", p, "client certificate"));
                let key = tls
                    .key
                    .as_deref()
                    .and_then(|p| read("tls.key", p, "client key"));
                let Some(ca) = ca else { continue };
                let client = match (&certificate, &key) {
                    (Some(c), Some(k)) => Some((c.as_slice(), k.as_slice())),
                    _ if tls.certificate.is_some() => continue,
                    _ => None,
                };
                match tls_client_config(&ca, client) {
                    Ok(config) => Some(config),
                    Err(e) => {
                        errors.push(
                            source.error_at(&at("tls"), format!("broker `{}`: {e}", broker.name)),
                        );
                        continue;
                    }
                }
            }
        };
        let client_id = broker.client_id(&config.gateway.id);
        brokers.push(BrokerSettings {
            name: broker.name.clone(),
            host: broker.host.clone(),
            port: broker.port(),
            version: match broker.version {
                VersionConfig::V5 => MqttVersion::V5,
                VersionConfig::V311 => MqttVersion::V311,
            },
            reply_prefix: format!("iotmc/{client_id}/reply"),
            client_id,
            keep_alive: broker.keep_alive,
            credentials: broker
                .username
                .clone()
                .map(|user| (user, password.unwrap_or_default())),
            tls,
            max_packet_size: if broker.max_packet_size == 0 {
                DEFAULT_MAX_PACKET_SIZE
            } else {
                broker.max_packet_size
            },
        });
    }
    if errors.is_empty() {
        Ok(brokers)
    } else {
        Err(errors)
    }
}

fn read_secret(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read as _;
    let file = std::fs::File::open(path)?;
    let mut bytes = Vec::new();
    file.take(MAX_SECRET_FILE + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_SECRET_FILE {
        return Err(std::io::Error::other(format!(
            "larger than {MAX_SECRET_FILE} bytes; this is not a certificate, key or password"
        )));
    }
    Ok(bytes)
}

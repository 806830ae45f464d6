//! `[[mqtt.brokers]]` of the gateway config turned into the MQTT adapter's broker settings:
//! certificates, keys and passwords read from their files, TLS set up.

use std::path::Path;

use iotmc_adapter::LocatedError;
use iotmc_adapter_mqtt::settings::tls_client_config;
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
        // `plain` gives the reply prefix the driver answers on; the rest is the config's.
        brokers.push(BrokerSettings {
            version: match broker.version {
                VersionConfig::V5 => MqttVersion::V5,
                VersionConfig::V311 => MqttVersion::V311,
            },
            keep_alive: broker.keep_alive,
            credentials: broker
                .username
                .clone()
                .map(|user| (user, password.unwrap_or_default())),
            tls,
            // `config check` keeps it within 4096..16 MiB.
            max_packet_size: broker.max_packet_size,
            ..BrokerSettings::plain(
                &broker.name,
                &broker.host,
                broker.port(),
                &broker.client_id(&config.gateway.id),
            )
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

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn config(dir: &Path, tls: &str) -> Config {
        let text = format!(
            "[gateway]\nid = \"gw\"\nname = \"gw\"\nstate_dir = \"state\"\n\n[[mqtt.brokers]]\nname = \"plant\"\nhost = \"127.0.0.1\"\nusername = \"gw\"\npassword_file = \"password\"\n{tls}\n"
        );
        Config::from_toml(&dir.join("gateway.toml"), &text).expect("the config is valid")
    }

    #[test]
    fn broker_files_should_be_read_and_their_problems_located() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        std::fs::write(dir.path().join("password"), "s3cret\nignored\n").expect("write");
        std::fs::write(dir.path().join("ca.pem"), "not a certificate").expect("write");

        let plain = brokers(&config(dir.path(), "")).expect("no TLS, readable password");
        assert_eq!(
            plain[0].credentials,
            Some(("gw".to_owned(), "s3cret".to_owned())),
            "the password is the file's first line"
        );
        assert_eq!(plain[0].client_id, "iotmc-gw");
        assert_eq!(plain[0].port, 1883);

        let errors = brokers(&config(
            dir.path(),
            "tls = { ca = \"ca.pem\", certificate = \"missing.pem\", key = \"missing.key\" }",
        ))
        .expect_err("a missing client certificate and key");
        let fields: Vec<_> = errors.iter().filter_map(|e| e.field.as_deref()).collect();
        assert_eq!(
            fields,
            ["mqtt.brokers[0].tls.certificate", "mqtt.brokers[0].tls.key"]
        );
        assert!(
            errors[0].message.contains("broker `plant`")
                && errors[0].message.contains("missing.pem"),
            "{}",
            errors[0]
        );

        let errors = brokers(&config(dir.path(), "tls = { ca = \"ca.pem\" }"))
            .expect_err("a CA file without a certificate");
        assert_eq!(errors[0].field.as_deref(), Some("mqtt.brokers[0].tls"));
        assert!(errors[0].message.contains("CA"), "{}", errors[0]);
    }
}

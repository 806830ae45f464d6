//! Broker connections, as the gateway config describes them (`[[mqtt.brokers]]`), with
//! certificates and secrets already read from their files.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use rustls::ClientConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// Default largest incoming packet, in bytes: room for a Homie `$description` or a firmware
/// chunk answer, small enough that a misbehaving device cannot exhaust memory.
pub const DEFAULT_MAX_PACKET_SIZE: usize = 256 * 1024;

/// The MQTT protocol version a broker connection speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum MqttVersion {
    /// MQTT 3.1.1 (protocol level 4), for brokers that lack MQTT 5.
    V311,
    /// MQTT 5 (the default): needed for request/response (generic dialect).
    #[default]
    V5,
}

impl fmt::Display for MqttVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::V311 => "MQTT 3.1.1",
            Self::V5 => "MQTT 5",
        })
    }
}

/// One broker connection of the gateway.
#[derive(Clone)]
pub struct BrokerSettings {
    /// Name device addresses use (`mqtt://<name>/<device>`).
    pub name: String,
    /// Host name or IP address.
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// Protocol version.
    pub version: MqttVersion,
    /// Client id the gateway connects with; unique on the broker.
    pub client_id: String,
    /// Keep-alive interval (the broker drops the connection after 1.5 times this without a
    /// packet; the client pings).
    pub keep_alive: Duration,
    /// User name and password, if the broker wants them.
    pub credentials: Option<(String, String)>,
    /// TLS, with the CA to trust and an optional client certificate.
    pub tls: Option<Arc<ClientConfig>>,
    /// Largest packet accepted from the broker, in bytes.
    pub max_packet_size: usize,
    /// Topic prefix for answers to the gateway's MQTT 5 requests; the driver subscribes to
    /// `<prefix>/#`. Default `iotmc/<client id>/reply`.
    pub reply_prefix: String,
}

impl fmt::Debug for BrokerSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the password.
        f.debug_struct("BrokerSettings")
            .field("name", &self.name)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("version", &self.version)
            .field("client_id", &self.client_id)
            .field("keep_alive", &self.keep_alive)
            .field(
                "user",
                &self.credentials.as_ref().map(|(user, _)| user.as_str()),
            )
            .field("tls", &self.tls.is_some())
            .field("max_packet_size", &self.max_packet_size)
            .field("reply_prefix", &self.reply_prefix)
            .finish()
    }
}

impl BrokerSettings {
    /// Plain TCP settings with the defaults: MQTT 5, keep-alive 30 s, no credentials.
    pub fn plain(name: &str, host: &str, port: u16, client_id: &str) -> Self {
        Self {
            name: name.to_owned(),
            host: host.to_owned(),
            port,
            version: MqttVersion::V5,
            client_id: client_id.to_owned(),
            keep_alive: Duration::from_secs(30),
            credentials: None,
            tls: None,
            max_packet_size: DEFAULT_MAX_PACKET_SIZE,
            reply_prefix: format!("iotmc/{client_id}/reply"),
        }
    }

    /// `host:port`, for messages.
    pub fn endpoint(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

/// Builds the TLS client configuration of a broker connection from PEM text: the CA
/// certificate(s) to trust, and a client certificate chain with its key for mutual TLS. Uses
/// rustls with the ring provider; TLS 1.2 and 1.3.
pub fn tls_client_config(
    ca_pem: &[u8],
    client: Option<(&[u8], &[u8])>,
) -> Result<Arc<ClientConfig>, String> {
    let mut roots = rustls::RootCertStore::empty();
    let mut found = 0;
    for cert in CertificateDer::pem_slice_iter(ca_pem) {
        let cert = cert.map_err(|e| format!("the CA file is not valid PEM: {e}"))?;
        roots
            .add(cert)
            .map_err(|e| format!("the CA certificate cannot be used: {e}"))?;
        found += 1;
    }
    if found == 0 {
        return Err("the CA file holds no certificate".to_owned());
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| format!("TLS setup failed: {e}"))?
        .with_root_certificates(roots);
    let config = match client {
        None => builder.with_no_client_auth(),
        Some((chain_pem, key_pem)) => {
            let chain = CertificateDer::pem_slice_iter(chain_pem)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("the client certificate file is not valid PEM: {e}"))?;
            if chain.is_empty() {
                return Err("the client certificate file holds no certificate".to_owned());
            }
            let key = PrivateKeyDer::from_pem_slice(key_pem)
                .map_err(|e| format!("the client key file holds no usable private key: {e}"))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| format!("the client certificate and key do not fit together: {e}"))?
        }
    };
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};

    /// A CA, and a client certificate it signed with the client's key, all PEM.
    struct Pki {
        ca: String,
        client: String,
        client_key: String,
    }

    fn pki() -> Pki {
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca_key = KeyPair::generate().unwrap();
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let client_key = KeyPair::generate().unwrap();
        let client = CertificateParams::new(vec!["gateway".to_owned()])
            .unwrap()
            .signed_by(&client_key, &Issuer::from_params(&ca_params, &ca_key))
            .unwrap();
        Pki {
            ca: ca.pem(),
            client: client.pem(),
            client_key: client_key.serialize_pem(),
        }
    }

    #[test]
    fn a_ca_and_a_matching_client_pair_should_build_a_config() {
        let pki = pki();
        let config = tls_client_config(
            pki.ca.as_bytes(),
            Some((pki.client.as_bytes(), pki.client_key.as_bytes())),
        )
        .unwrap();
        assert!(config.client_auth_cert_resolver.has_certs());
        let server_only = tls_client_config(pki.ca.as_bytes(), None).unwrap();
        assert!(!server_only.client_auth_cert_resolver.has_certs());
    }

    #[test]
    fn a_ca_file_without_a_certificate_should_say_so() {
        let pki = pki();
        for empty in [&b""[..], b"not PEM at all", pki.client_key.as_bytes()] {
            let err = tls_client_config(empty, None).unwrap_err();
            assert_eq!(err, "the CA file holds no certificate");
        }
    }

    #[test]
    fn a_ca_file_with_broken_pem_should_say_so() {
        let broken =
            "-----BEGIN CERTIFICATE-----\n!!!! not base64 !!!!\n-----END CERTIFICATE-----\n";
        let err = tls_client_config(broken.as_bytes(), None).unwrap_err();
        assert!(err.starts_with("the CA file is not valid PEM"), "{err}");
        // Valid PEM around bytes that are no certificate.
        let junk = "-----BEGIN CERTIFICATE-----\naGVsbG8gd29ybGQ=\n-----END CERTIFICATE-----\n";
        let err = tls_client_config(junk.as_bytes(), None).unwrap_err();
        assert!(
            err.starts_with("the CA certificate cannot be used"),
            "{err}"
        );
    }

    #[test]
    fn a_client_key_that_does_not_fit_the_certificate_should_say_so() {
        let pki = pki();
        let other_key = KeyPair::generate().unwrap().serialize_pem();
        let err = tls_client_config(
            pki.ca.as_bytes(),
            Some((pki.client.as_bytes(), other_key.as_bytes())),
        )
        .unwrap_err();
        assert!(
            err.starts_with("the client certificate and key do not fit together"),
            "{err}"
        );
    }

    #[test]
    fn missing_client_certificates_or_keys_should_say_which() {
        let pki = pki();
        let err = tls_client_config(
            pki.ca.as_bytes(),
            Some((pki.client_key.as_bytes(), pki.client_key.as_bytes())),
        )
        .unwrap_err();
        assert_eq!(err, "the client certificate file holds no certificate");
        let err = tls_client_config(
            pki.ca.as_bytes(),
            Some((pki.client.as_bytes(), pki.client.as_bytes())),
        )
        .unwrap_err();
        assert!(
            err.starts_with("the client key file holds no usable private key"),
            "{err}"
        );
    }
}

//! The client's TLS: the rustls configuration, and turning a failed exchange into words an
//! operator can act on (was it the server's certificate, or did the server refuse ours?).

use std::error::Error as StdError;
use std::sync::Arc;

use rustls::{AlertDescription, CertificateError, RootCertStore};
use rustls_pki_types::CertificateDer;

use super::{ClientError, Identity};

/// What went wrong in TLS, for the operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsFailure {
    /// The server's certificate is not issued by a trusted CA (or expired, revoked, malformed).
    ServerNotTrusted,
    /// The server's certificate is not valid for the host name or address connected to.
    ServerName,
    /// The server refused the client certificate presented.
    ClientRefused,
    /// The server wants a client certificate and none was presented.
    ClientCertificateRequired,
    /// Anything else (protocol versions, ciphers, a broken peer).
    Other,
}

impl std::fmt::Display for TlsFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::ServerNotTrusted => {
                "the server's certificate is not trusted: it is not issued by the CA this client trusts, or it expired"
            }
            Self::ServerName => {
                "the server's certificate is not valid for the host name or address connected to"
            }
            Self::ClientRefused => "the server refused this client's certificate",
            Self::ClientCertificateRequired => "the server requires a client certificate",
            Self::Other => "the TLS handshake failed",
        })
    }
}

/// A connector trusting `ca` for the server and presenting `identity`, if any.
pub(super) fn connector(
    ca: Vec<CertificateDer<'static>>,
    identity: Option<Identity>,
) -> Result<tokio_rustls::TlsConnector, ClientError> {
    if ca.is_empty() {
        return Err(ClientError::Request(
            "https needs the CA certificate that issued the server's certificate".into(),
        ));
    }
    let mut roots = RootCertStore::empty();
    for certificate in ca {
        roots.add(certificate).map_err(|e| {
            ClientError::Request(format!(
                "a CA certificate cannot be used as a trust anchor: {e}"
            ))
        })?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| ClientError::Request(format!("TLS configuration: {e}")))?
        .with_root_certificates(roots);
    let mut config = match identity {
        Some(Identity { chain, key }) => {
            builder.with_client_auth_cert(chain, key).map_err(|e| {
                ClientError::Request(format!(
                    "the client certificate and key cannot be used together: {e}"
                ))
            })?
        }
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
}

/// The rustls error somewhere in `error`'s chain, if any. `io::Error` hides the error it wraps
/// from `source()`, so the walk steps into it by hand.
fn rustls_error<'a>(error: &'a (dyn StdError + 'static)) -> Option<&'a rustls::Error> {
    let mut current = Some(error);
    while let Some(e) = current {
        if let Some(found) = e.downcast_ref::<rustls::Error>() {
            return Some(found);
        }
        current = match e
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            Some(inner) => Some(inner as &(dyn StdError + 'static)),
            None => e.source(),
        };
    }
    None
}

/// What kind of TLS failure `error` is; `presented`: whether a client certificate was sent.
pub(super) fn failure(error: &rustls::Error, presented: bool) -> TlsFailure {
    match error {
        rustls::Error::InvalidCertificate(
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
        ) => TlsFailure::ServerName,
        rustls::Error::InvalidCertificate(_) => TlsFailure::ServerNotTrusted,
        rustls::Error::AlertReceived(AlertDescription::CertificateRequired) if !presented => {
            TlsFailure::ClientCertificateRequired
        }
        rustls::Error::AlertReceived(
            AlertDescription::BadCertificate
            | AlertDescription::UnsupportedCertificate
            | AlertDescription::CertificateRevoked
            | AlertDescription::CertificateExpired
            | AlertDescription::CertificateUnknown
            | AlertDescription::UnknownCA
            | AlertDescription::AccessDenied
            | AlertDescription::DecryptError,
        ) if presented => TlsFailure::ClientRefused,
        _ => TlsFailure::Other,
    }
}

/// The client error for a failed exchange with `address`.
pub(super) fn classify(
    address: String,
    error: &(dyn StdError + 'static),
    presented: bool,
) -> ClientError {
    if let Some(tls) = rustls_error(error) {
        return ClientError::Tls {
            address,
            failure: failure(tls, presented),
            why: tls.to_string(),
        };
    }
    let mut why = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        let text = e.to_string();
        if !why.contains(&text) {
            why.push_str(": ");
            why.push_str(&text);
        }
        source = e.source();
    }
    ClientError::Connect { address, why }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_alert_should_blame_our_certificate_only_when_one_was_presented() {
        let unknown_ca = rustls::Error::AlertReceived(AlertDescription::UnknownCA);
        assert_eq!(failure(&unknown_ca, true), TlsFailure::ClientRefused);
        assert_eq!(failure(&unknown_ca, false), TlsFailure::Other);
        let required = rustls::Error::AlertReceived(AlertDescription::CertificateRequired);
        assert_eq!(
            failure(&required, false),
            TlsFailure::ClientCertificateRequired
        );
    }

    #[test]
    fn a_bad_server_certificate_should_be_told_apart_from_a_wrong_name() {
        let issuer = rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer);
        assert_eq!(failure(&issuer, true), TlsFailure::ServerNotTrusted);
        let name = rustls::Error::InvalidCertificate(CertificateError::NotValidForName);
        assert_eq!(failure(&name, false), TlsFailure::ServerName);
    }

    #[test]
    fn a_rustls_error_wrapped_in_io_errors_should_still_be_found() {
        let inner = std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            rustls::Error::AlertReceived(AlertDescription::UnknownCA),
        );
        let outer = std::io::Error::other(inner);
        let error = classify("gw:1".into(), &outer, true);
        assert!(
            matches!(
                error,
                ClientError::Tls {
                    failure: TlsFailure::ClientRefused,
                    ..
                }
            ),
            "{error}"
        );
        let refused = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        assert!(matches!(
            classify("gw:1".into(), &refused, false),
            ClientError::Connect { .. }
        ));
    }
}

/// Presents one certificate and key whatever the server asks.
#[derive(Debug)]
struct FixedIdentity(Arc<rustls::sign::CertifiedKey>);

impl rustls::client::ResolvesClientCert for FixedIdentity {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[rustls::SignatureScheme],
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        Some(Arc::clone(&self.0))
    }

    fn has_certs(&self) -> bool {
        true
    }
}

/// A connector that accepts exactly the server certificate `pinned` (its handshake signature
/// checked), presenting `chain` with `key`: a virtual device talking to its own gateway over
/// loopback, where the certificate's names (the gateway's network names) cannot match.
pub(super) fn connector_pinned(
    pinned: CertificateDer<'static>,
    chain: Vec<CertificateDer<'static>>,
    key: Arc<dyn rustls::sign::SigningKey>,
) -> Result<tokio_rustls::TlsConnector, ClientError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let algorithms = provider.signature_verification_algorithms;
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| ClientError::Request(format!("TLS configuration: {e}")))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(Pinned { pinned, algorithms }))
        .with_client_cert_resolver(Arc::new(FixedIdentity(Arc::new(
            rustls::sign::CertifiedKey::new(chain, key),
        ))));
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
}

/// Accepts one server certificate, byte for byte.
#[derive(Debug)]
struct Pinned {
    pinned: CertificateDer<'static>,
    algorithms: rustls::crypto::WebPkiSupportedAlgorithms,
}

impl rustls::client::danger::ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &rustls_pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls_pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        if end_entity.as_ref() == self.pinned.as_ref() {
            Ok(rustls::client::danger::ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::ApplicationVerificationFailure,
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

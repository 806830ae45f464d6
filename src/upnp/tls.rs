//! The HTTPS listener's TLS: rustls with the ring provider only, TLS 1.3 preferred and 1.2 the
//! minimum, the gateway's certificate, and client certificates verified against the operator
//! CA. A client without a certificate still gets a TLS session, but as an anonymous caller:
//! it may read, not change anything.
//!
//! Also the demo's throw-away PKI: a CA, a server certificate for loopback and an operator
//! client certificate, written to the demo's state directory.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::RootCertStore;
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// Why the TLS configuration could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A PEM file could not be read or holds nothing usable.
    #[error("{what} `{path}`: {why}")]
    File {
        /// Which file (`[trust] gateway_certificate`).
        what: &'static str,
        /// Its path.
        path: PathBuf,
        /// What is wrong.
        why: String,
    },
    /// rustls refused the combination.
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
    /// The client verifier could not be built.
    #[error("operator CA: {0}")]
    Verifier(String),
    /// Generating the demo PKI failed.
    #[error("generating the demo certificates: {0}")]
    Generate(String),
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Every PEM certificate in `path`; a file that cannot be read or holds none is an error in
/// words (the caller names the file's role).
pub fn pem_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| e.to_string())?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    if certs.is_empty() {
        return Err("holds no PEM certificate".into());
    }
    Ok(certs)
}

fn certificates(what: &'static str, path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    pem_certificates(path).map_err(|why| TlsError::File {
        what,
        path: path.to_owned(),
        why,
    })
}

/// The server configuration for the HTTPS listener. Client certificates are asked for and
/// their possession proved in the handshake, but judged afterwards by [`ClientTrust`], so that
/// a refused certificate gets an answer saying why instead of a bare TLS alert.
pub fn server_config(
    certificate: &Path,
    key: &Path,
    trust: &ClientTrust,
) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let chain = certificates("[trust] gateway_certificate", certificate)?;
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(key)
            .map_err(|e| TlsError::File {
                what: "[trust] gateway_key",
                path: key.to_owned(),
                why: e.to_string(),
            })?
            .permissions()
            .mode()
            & 0o777;
        if mode & 0o077 != 0 {
            return Err(TlsError::File {
                what: "[trust] gateway_key",
                path: key.to_owned(),
                why: format!(
                    "the private key is readable by others (mode {mode:o}); run `chmod 600 {}` (and check who could have copied it)",
                    key.display()
                ),
            });
        }
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| TlsError::File {
        what: "[trust] gateway_key",
        path: key.to_owned(),
        why: e.to_string(),
    })?;
    let verifier = Arc::new(ProvePossession {
        hints: trust.hints.clone(),
        algorithms: provider().signature_verification_algorithms,
    });
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Asks for a client certificate and checks that the client holds its key (the handshake
/// signature); who the certificate names and who issued it is for [`ClientTrust::classify`].
#[derive(Debug)]
struct ProvePossession {
    hints: Vec<rustls::DistinguishedName>,
    algorithms: rustls::crypto::WebPkiSupportedAlgorithms,
}

impl rustls::server::danger::ClientCertVerifier for ProvePossession {
    fn root_hint_subjects(&self) -> &[rustls::DistinguishedName] {
        &self.hints
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: rustls_pki_types::UnixTime,
    ) -> Result<rustls::server::danger::ClientCertVerified, rustls::Error> {
        Ok(rustls::server::danger::ClientCertVerified::assertion())
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

/// Who may call: operators (certificates of `[trust] operator_ca`) and enrolling devices
/// (certificates of the issuing CA or of `[trust] device_cas`, not revoked).
#[derive(Debug)]
pub struct ClientTrust {
    operators: Arc<dyn rustls::server::danger::ClientCertVerifier>,
    device_roots: Option<Arc<RootCertStore>>,
    devices: std::sync::RwLock<Option<Arc<dyn rustls::server::danger::ClientCertVerifier>>>,
    /// `[trust] device_cas` alone (not the issuing CA): what certificate evidence must chain to.
    evidence: Option<Arc<dyn rustls::server::danger::ClientCertVerifier>>,
    hints: Vec<rustls::DistinguishedName>,
}

impl ClientTrust {
    /// Trust in the operator CA file and in the device CAs: the files of `[trust] device_cas`
    /// and the issuing CA's certificate (PEM), when enrollment is on.
    pub fn new(
        operator_ca: &Path,
        device_cas: &[std::path::PathBuf],
        issuing_ca_pem: Option<&str>,
    ) -> Result<Self, TlsError> {
        // Every file is read once: (where it came from, certificate).
        let operator_certificates: Vec<(String, CertificateDer<'static>)> =
            certificates("[trust] operator_ca", operator_ca)?
                .into_iter()
                .map(|c| (operator_ca.display().to_string(), c))
                .collect();
        let mut vendor_certificates = Vec::new();
        for path in device_cas {
            for ca in certificates("[trust] device_cas", path)? {
                vendor_certificates.push((path.display().to_string(), ca));
            }
        }
        let mut issuing_certificates = Vec::new();
        if let Some(pem) = issuing_ca_pem {
            for ca in CertificateDer::pem_slice_iter(pem.as_bytes()) {
                let ca = ca.map_err(|e| TlsError::Verifier(format!("issuing CA: {e}")))?;
                issuing_certificates.push(("the issuing CA".to_owned(), ca));
            }
        }
        separate(
            &operator_certificates,
            vendor_certificates.iter().chain(&issuing_certificates),
        )?;

        let operators = roots("[trust] operator_ca", &operator_certificates)?;
        let mut hints: Vec<rustls::DistinguishedName> = operators.subjects();
        let operators =
            WebPkiClientVerifier::builder_with_provider(Arc::new(operators), provider())
                .build()
                .map_err(|e| TlsError::Verifier(e.to_string()))?;
        let vendors = roots("[trust] device_cas", &vendor_certificates)?;
        let evidence = if vendors.is_empty() {
            None
        } else {
            Some(
                WebPkiClientVerifier::builder_with_provider(Arc::new(vendors), provider())
                    .build()
                    .map_err(|e| TlsError::Verifier(e.to_string()))?,
            )
        };
        let devices = roots(
            "[trust] device_cas or the issuing CA",
            &[vendor_certificates, issuing_certificates].concat(),
        )?;
        hints.extend(devices.subjects());
        let device_roots = (!devices.is_empty()).then(|| Arc::new(devices));
        let trust = Self {
            operators,
            device_roots,
            devices: std::sync::RwLock::new(None),
            evidence,
            hints,
        };
        trust.set_crls(Vec::new())?;
        Ok(trust)
    }

    /// Device certificates are checked against these CRLs from now on (the issuing CA's, after
    /// a decommissioning). Certificates of CAs without a CRL here are not refused for it.
    pub fn set_crls(
        &self,
        crls: Vec<rustls_pki_types::CertificateRevocationListDer<'static>>,
    ) -> Result<(), TlsError> {
        let verifier = match &self.device_roots {
            Some(roots) => Some(
                WebPkiClientVerifier::builder_with_provider(Arc::clone(roots), provider())
                    .with_crls(crls)
                    .only_check_end_entity_revocation()
                    .allow_unknown_revocation_status()
                    .build()
                    .map_err(|e| TlsError::Verifier(e.to_string()))?,
            ),
            None => None,
        };
        *self
            .devices
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = verifier;
        Ok(())
    }

    /// Whether `der`, a certificate a device proved to its adapter, chains to a CA of
    /// `[trust] device_cas` and is valid now (the gateway's own issuing CA does not count:
    /// its certificates prove nothing about a device).
    pub fn verify_evidence(&self, der: &[u8]) -> Result<(), String> {
        let verifier = self
            .evidence
            .as_ref()
            .ok_or("no device CA is configured ([trust] device_cas)")?;
        verifier
            .verify_client_cert(
                &CertificateDer::from(der),
                &[],
                rustls_pki_types::UnixTime::now(),
            )
            .map(|_| ())
            .map_err(|e| refusal(&e))
    }

    /// Judges a client's certificate chain (leaf first), whose key the client proved it holds.
    pub fn classify(&self, chain: &[CertificateDer<'static>]) -> super::services::Caller {
        use super::services::Caller;
        let Some((leaf, intermediates)) = chain.split_first() else {
            return Caller::Anonymous;
        };
        let now = rustls_pki_types::UnixTime::now();
        let subject = subject(leaf);
        let as_operator = self.operators.verify_client_cert(leaf, intermediates, now);
        if as_operator.is_ok() {
            return Caller::Operator { subject };
        }
        let devices = self
            .devices
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        let as_device = devices.map(|v| v.verify_client_cert(leaf, intermediates, now));
        match as_device {
            Some(Ok(_)) => Caller::Device {
                subject,
                chain: chain.to_vec(),
            },
            Some(Err(device_error)) => {
                let error = match (&as_operator, &device_error) {
                    // Judged by the CA that knows it: a device certificate refused as an
                    // operator one says nothing useful.
                    (
                        Err(rustls::Error::InvalidCertificate(
                            rustls::CertificateError::UnknownIssuer,
                        )),
                        e,
                    ) => e,
                    (Err(e), _) => e,
                    (Ok(_), e) => e,
                };
                Caller::Untrusted {
                    reason: refusal(error),
                    subject,
                }
            }
            None => Caller::Untrusted {
                reason: as_operator.err().map_or_else(String::new, |e| refusal(&e)),
                subject,
            },
        }
    }
}

/// Refuses trust where a device certificate would pass as an operator's: a device CA that is
/// an operator CA, or is issued by one (every certificate it issues would chain to the
/// operator CA too).
fn separate<'a>(
    operators: &[(String, CertificateDer<'static>)],
    devices: impl Iterator<Item = &'a (String, CertificateDer<'static>)>,
) -> Result<(), TlsError> {
    let names = |der: &CertificateDer<'_>| {
        x509_parser::parse_x509_certificate(der.as_ref())
            .ok()
            .map(|(_, c)| (c.subject().as_raw().to_vec(), c.issuer().as_raw().to_vec()))
    };
    let operator_subjects: Vec<Vec<u8>> = operators
        .iter()
        .filter_map(|(_, c)| names(c).map(|(subject, _)| subject))
        .collect();
    for (source, ca) in devices {
        let Some((subject, issuer)) = names(ca) else {
            continue;
        };
        if operator_subjects.contains(&subject) || operator_subjects.contains(&issuer) {
            return Err(TlsError::Verifier(format!(
                "{source} is the operator CA or is issued by it ([trust] operator_ca): every device certificate would also be an operator's; give operators a CA of their own"
            )));
        }
    }
    Ok(())
}

/// A root store of `certificates` (each with the file it came from, for errors).
fn roots(
    what: &'static str,
    certificates: &[(String, CertificateDer<'static>)],
) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for (source, ca) in certificates {
        roots.add(ca.clone()).map_err(|e| TlsError::File {
            what,
            path: source.into(),
            why: e.to_string(),
        })?;
    }
    Ok(roots)
}

/// Why a certificate is refused, in the words of an operator.
fn refusal(error: &rustls::Error) -> String {
    use rustls::CertificateError as C;
    match error {
        rustls::Error::InvalidCertificate(C::Expired | C::ExpiredContext { .. }) => {
            "it has expired; renew it".into()
        }
        rustls::Error::InvalidCertificate(C::NotValidYet | C::NotValidYetContext { .. }) => {
            "it is not valid yet; check the clocks of the gateway and the client".into()
        }
        rustls::Error::InvalidCertificate(C::Revoked) => {
            "it has been revoked (the device was decommissioned)".into()
        }
        rustls::Error::InvalidCertificate(C::UnknownIssuer) => {
            "it is issued by a CA this gateway does not trust ([trust] operator_ca for operators, [trust] device_cas or the issuing CA for devices)".into()
        }
        rustls::Error::InvalidCertificate(C::InvalidPurpose | C::InvalidPurposeContext { .. }) => {
            "it is not meant for TLS client authentication (extended key usage clientAuth)".into()
        }
        other => format!("it failed verification: {other}"),
    }
}

/// The subject of a verified client certificate, for the log (`CN=...`).
pub fn subject(certificate: &CertificateDer<'_>) -> String {
    match x509_parser::parse_x509_certificate(certificate.as_ref()) {
        Ok((_, cert)) => cert.subject().to_string(),
        Err(_) => "an unparsable certificate".into(),
    }
}

/// The files of the demo's throw-away PKI.
#[derive(Debug, Clone)]
pub struct DemoPki {
    /// CA certificate (trusted as operator CA, and the server's issuer).
    pub ca: PathBuf,
    /// Server certificate (for 127.0.0.1 and localhost).
    pub server_certificate: PathBuf,
    /// Server key.
    pub server_key: PathBuf,
    /// Operator client certificate.
    pub operator_certificate: PathBuf,
    /// Operator client key.
    pub operator_key: PathBuf,
}

impl DemoPki {
    /// The files [`generate_demo_pki`] writes in `dir`.
    pub fn in_dir(dir: &Path) -> Self {
        Self {
            ca: dir.join("ca.pem"),
            server_certificate: dir.join("server.pem"),
            server_key: dir.join("server.key"),
            operator_certificate: dir.join("operator.pem"),
            operator_key: dir.join("operator.key"),
        }
    }
}

/// Generates the demo PKI in `dir` (created if needed). Keys are written with mode 0600.
pub fn generate_demo_pki(dir: &Path) -> Result<DemoPki, TlsError> {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
        KeyPair, KeyUsagePurpose,
    };
    let gen_err = |e: rcgen::Error| TlsError::Generate(e.to_string());
    let io_err = |path: &Path, e: io::Error| TlsError::File {
        what: "demo PKI",
        path: path.to_owned(),
        why: e.to_string(),
    };
    std::fs::create_dir_all(dir).map_err(|e| io_err(dir, e))?;

    let ca_key = KeyPair::generate().map_err(gen_err)?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(gen_err)?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "iotmc-gateway demo CA (throw-away)");
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_cert = ca_params.self_signed(&ca_key).map_err(gen_err)?;
    let issuer = Issuer::new(ca_params, ca_key);

    let leaf = |names: Vec<String>, common_name: &str, usage: ExtendedKeyUsagePurpose| {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(names)?;
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.extended_key_usages = vec![usage];
        let cert = params.signed_by(&key, &issuer)?;
        Ok::<_, rcgen::Error>((cert, key))
    };
    let (server_cert, server_key) = leaf(
        vec!["localhost".to_owned(), "127.0.0.1".to_owned()],
        "iotmc-gateway demo",
        ExtendedKeyUsagePurpose::ServerAuth,
    )
    .map_err(gen_err)?;
    let (operator_cert, operator_key) = leaf(
        Vec::new(),
        "demo operator",
        ExtendedKeyUsagePurpose::ClientAuth,
    )
    .map_err(gen_err)?;

    let pki = DemoPki::in_dir(dir);
    for (path, text, secret) in [
        (&pki.ca, ca_cert.pem(), false),
        (&pki.server_certificate, server_cert.pem(), false),
        (&pki.server_key, server_key.serialize_pem(), true),
        (&pki.operator_certificate, operator_cert.pem(), false),
        (&pki.operator_key, operator_key.serialize_pem(), true),
    ] {
        write_file(path, &text, secret).map_err(|e| io_err(path, e))?;
    }
    Ok(pki)
}

fn write_file(path: &Path, text: &str, secret: bool) -> io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(if secret { 0o600 } else { 0o644 })
        .open(path)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::upnp::services::Caller;

    #[test]
    fn the_demo_pki_should_make_a_working_server_config_with_private_keys() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let pki = generate_demo_pki(dir.path()).unwrap();
        let trust = ClientTrust::new(&pki.ca, &[], None).unwrap();
        server_config(&pki.server_certificate, &pki.server_key, &trust).unwrap();
        let mode = std::fs::metadata(&pki.operator_key)
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let operator = certificates("x", &pki.operator_certificate).unwrap();
        assert!(subject(&operator[0]).contains("demo operator"));
    }

    #[test]
    fn a_missing_or_empty_file_should_be_named_with_its_config_key() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "").unwrap();
        let pki = generate_demo_pki(dir.path()).unwrap();
        let trust = ClientTrust::new(&pki.ca, &[], None).unwrap();
        let err = server_config(&empty, &empty, &trust)
            .unwrap_err()
            .to_string();
        assert!(err.contains("[trust] gateway_certificate"), "{err}");
        assert!(err.contains("empty.pem"), "{err}");
    }

    #[test]
    fn client_certificates_should_be_told_apart_and_revoked_ones_refused() {
        use crate::lifecycle::pki::{DeviceSubject, IssuingCa, Revoked};
        use rustls_pki_types::CertificateRevocationListDer;
        use std::time::{Duration, SystemTime};

        let dir = tempfile::tempdir().unwrap();
        let pki = generate_demo_pki(&dir.path().join("demo")).unwrap();
        let now = SystemTime::now();
        let ca = IssuingCa::generate_lab(dir.path(), "gw", now).unwrap();
        let trust = ClientTrust::new(&pki.ca, &[], Some(ca.certificate_pem())).unwrap();
        let chain = |path: &Path| certificates("x", path).unwrap();

        let operator = trust.classify(&chain(&pki.operator_certificate));
        assert!(matches!(operator, Caller::Operator { .. }), "{operator:?}");

        let key = rcgen::KeyPair::generate().unwrap();
        let subject = DeviceSubject {
            gateway_id: "gw",
            device_id: "meter-1",
            protocol: "modbus",
            address: "tcp://192.0.2.7:502",
        };
        let issued = ca
            .issue(&subject, &key, Duration::from_secs(3600), now, None)
            .unwrap();
        let device = vec![CertificateDer::from(issued.der.clone())];
        assert!(matches!(trust.classify(&device), Caller::Device { .. }));
        // The gateway's own certificates prove nothing about a device.
        assert!(trust.verify_evidence(&issued.der).is_err());

        let crl = ca
            .crl(
                &[Revoked {
                    serial: issued.serial.clone(),
                    at: now,
                }],
                1,
                now,
                Duration::from_secs(3600),
            )
            .unwrap();
        trust
            .set_crls(vec![
                CertificateRevocationListDer::from_pem_slice(crl.as_bytes()).unwrap(),
            ])
            .unwrap();
        match trust.classify(&device) {
            Caller::Untrusted { reason, .. } => assert!(reason.contains("revoked"), "{reason}"),
            other => panic!("a revoked certificate must not pass: {other:?}"),
        }
        // The demo server certificate is for server authentication only, from the operator CA.
        match trust.classify(&chain(&pki.server_certificate)) {
            Caller::Untrusted { reason, .. } => {
                assert!(reason.contains("client authentication"), "{reason}")
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(trust.classify(&[]), Caller::Anonymous));
    }

    #[test]
    fn a_gateway_key_others_can_read_should_be_refused() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let pki = generate_demo_pki(dir.path()).unwrap();
        std::fs::set_permissions(&pki.server_key, std::fs::Permissions::from_mode(0o640)).unwrap();
        let trust = ClientTrust::new(&pki.ca, &[], None).unwrap();
        let err = server_config(&pki.server_certificate, &pki.server_key, &trust)
            .unwrap_err()
            .to_string();
        assert!(err.contains("chmod 600"), "{err}");
    }

    #[test]
    fn a_device_ca_that_is_the_operator_ca_should_be_refused() {
        let dir = tempfile::tempdir().unwrap();
        let pki = generate_demo_pki(dir.path()).unwrap();
        let err = ClientTrust::new(&pki.ca, std::slice::from_ref(&pki.ca), None).unwrap_err();
        assert!(err.to_string().contains("operator CA"), "{err}");
    }
}

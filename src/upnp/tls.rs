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

fn certificates(what: &'static str, path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let err = |why: String| TlsError::File {
        what,
        path: path.to_owned(),
        why,
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| err(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| err(e.to_string()))?;
    if certs.is_empty() {
        return Err(err("holds no PEM certificate".into()));
    }
    Ok(certs)
}

/// The server configuration for the HTTPS listener.
pub fn server_config(
    certificate: &Path,
    key: &Path,
    operator_ca: &Path,
) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let chain = certificates("[trust] gateway_certificate", certificate)?;
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| TlsError::File {
        what: "[trust] gateway_key",
        path: key.to_owned(),
        why: e.to_string(),
    })?;
    let mut roots = RootCertStore::empty();
    for ca in certificates("[trust] operator_ca", operator_ca)? {
        roots.add(ca).map_err(|e| TlsError::File {
            what: "[trust] operator_ca",
            path: operator_ca.to_owned(),
            why: e.to_string(),
        })?;
    }
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
        .allow_unauthenticated()
        .build()
        .map_err(|e| TlsError::Verifier(e.to_string()))?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
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

    let pki = DemoPki {
        ca: dir.join("ca.pem"),
        server_certificate: dir.join("server.pem"),
        server_key: dir.join("server.key"),
        operator_certificate: dir.join("operator.pem"),
        operator_key: dir.join("operator.key"),
    };
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

    #[test]
    fn the_demo_pki_should_make_a_working_server_config_with_private_keys() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let pki = generate_demo_pki(dir.path()).unwrap();
        server_config(&pki.server_certificate, &pki.server_key, &pki.ca).unwrap();
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
        let err = server_config(&empty, &empty, &empty)
            .unwrap_err()
            .to_string();
        assert!(err.contains("[trust] gateway_certificate"), "{err}");
        assert!(err.contains("empty.pem"), "{err}");
    }
}

#![allow(clippy::unwrap_used)]

use std::os::unix::fs::PermissionsExt as _;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rcgen::KeyPair;
use rustls::RootCertStore;
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, CertificateRevocationListDer, UnixTime};

use super::*;

const DAY: Duration = Duration::from_secs(24 * 3600);

fn subject() -> DeviceSubject<'static> {
    DeviceSubject {
        gateway_id: "bldg-a",
        device_id: "boiler-1",
        protocol: "modbus",
        address: "tcp://192.0.2.7:502?unit=1",
    }
}

fn lab(dir: &std::path::Path) -> IssuingCa {
    IssuingCa::generate_lab(dir, "bldg-a", SystemTime::now()).unwrap()
}

/// The verifier enrollment uses: client certificates chaining to `ca`, checked against `crls`.
fn verify(
    ca: &IssuingCa,
    crls: Vec<CertificateRevocationListDer<'static>>,
    device: &Issued,
    at: SystemTime,
) -> Result<(), rustls::Error> {
    let mut roots = RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(ca.certificate_pem().as_bytes()).unwrap())
        .unwrap();
    let verifier = WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        Arc::new(rustls::crypto::ring::default_provider()),
    )
    .with_crls(crls)
    .build()
    .unwrap();
    let at = UnixTime::since_unix_epoch(at.duration_since(SystemTime::UNIX_EPOCH).unwrap());
    verifier
        .verify_client_cert(&CertificateDer::from(device.der.clone()), &[], at)
        .map(|_| ())
}

#[test]
fn a_device_certificate_should_chain_to_the_issuing_ca_and_name_the_device() {
    let dir = tempfile::tempdir().unwrap();
    let ca = lab(dir.path());
    let device_key = KeyPair::generate().unwrap();
    let now = SystemTime::now();
    let issued = ca
        .issue(
            &subject(),
            &device_key,
            365 * DAY,
            now,
            Some("http://127.0.0.1:8080/pki/crl.pem"),
        )
        .unwrap();
    assert_eq!(issued.serial.len(), 32);
    verify(&ca, Vec::new(), &issued, now).unwrap();

    let (_, cert) = x509_parser::parse_x509_certificate(&issued.der).unwrap();
    let name = cert.subject().to_string();
    assert!(name.contains("CN=boiler-1"), "{name}");
    assert!(name.contains("OU=modbus"), "{name}");
    assert!(name.contains("O=bldg-a"), "{name}");
    let san = cert.subject_alternative_name().unwrap().unwrap();
    let uri = format!("{:?}", san.value.general_names);
    assert!(
        uri.contains("urn:iotmc:bldg-a:modbus:tcp%3A%2F%2F192.0.2.7%3A502%3Funit%3D1"),
        "{uri}"
    );
    assert!(!cert.is_ca());
    let extensions = format!("{:?}", cert.extensions());
    assert!(
        extensions.contains("127.0.0.1:8080/pki/crl.pem"),
        "no CRL distribution point: {extensions}"
    );
}

#[test]
fn an_expired_device_certificate_should_be_refused() {
    let dir = tempfile::tempdir().unwrap();
    let ca = lab(dir.path());
    let now = SystemTime::now();
    let issued = ca
        .issue(&subject(), &KeyPair::generate().unwrap(), DAY, now, None)
        .unwrap();
    let error = verify(&ca, Vec::new(), &issued, now + 2 * DAY).unwrap_err();
    assert!(format!("{error:?}").contains("Expired"), "{error:?}");
}

#[test]
fn a_revoked_device_certificate_should_be_refused_by_a_verifier_with_the_crl() {
    let dir = tempfile::tempdir().unwrap();
    let ca = lab(dir.path());
    let now = SystemTime::now();
    let revoked = ca
        .issue(&subject(), &KeyPair::generate().unwrap(), DAY, now, None)
        .unwrap();
    let kept = ca
        .issue(&subject(), &KeyPair::generate().unwrap(), DAY, now, None)
        .unwrap();
    let crl = ca
        .crl(
            &[Revoked {
                serial: revoked.serial.clone(),
                at: now,
            }],
            1,
            now,
            DAY,
        )
        .unwrap();
    let crl = CertificateRevocationListDer::from_pem_slice(crl.as_bytes()).unwrap();
    let error = verify(&ca, vec![crl.clone()], &revoked, now).unwrap_err();
    assert!(format!("{error:?}").contains("Revoked"), "{error:?}");
    verify(&ca, vec![crl], &kept, now).unwrap();
}

#[test]
fn a_certificate_of_another_ca_should_be_refused() {
    let ours = tempfile::tempdir().unwrap();
    let theirs = tempfile::tempdir().unwrap();
    let (ca, stranger) = (lab(ours.path()), lab(theirs.path()));
    let now = SystemTime::now();
    let issued = stranger
        .issue(&subject(), &KeyPair::generate().unwrap(), DAY, now, None)
        .unwrap();
    // Both lab CAs carry the same name: the verifier finds "ours" by name and the signature
    // does not match; with another name it finds no issuer. Refused either way.
    let error = format!("{:?}", verify(&ca, Vec::new(), &issued, now).unwrap_err());
    assert!(
        error.contains("BadSignature") || error.contains("UnknownIssuer"),
        "{error}"
    );
}

#[test]
fn lab_keys_should_be_written_0600_and_never_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    let _ = lab(dir.path());
    let key = dir.path().join("issuing-ca.key");
    let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let before = std::fs::read(&key).unwrap();
    let again = IssuingCa::generate_lab(dir.path(), "bldg-a", SystemTime::now()).unwrap_err();
    assert!(again.to_string().contains("issuing-ca.key"), "{again}");
    assert_eq!(
        std::fs::read(&key).unwrap(),
        before,
        "the existing key is untouched"
    );
}

#[test]
fn a_key_others_may_read_should_be_refused_naming_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let _ = lab(dir.path());
    let key = dir.path().join("issuing-ca.key");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let error = FileKey::load(&key).unwrap_err();
    assert!(
        matches!(error, KeyError::Exposed { mode: 0o644, .. }),
        "{error}"
    );
    assert!(error.to_string().contains("chmod 600"), "{error}");
}

#[test]
fn a_ca_certificate_with_another_key_should_be_refused() {
    let first = tempfile::tempdir().unwrap();
    let second = tempfile::tempdir().unwrap();
    let _ = lab(first.path());
    let _ = lab(second.path());
    let wrong: Arc<dyn SigningKeyHandle> =
        Arc::new(FileKey::load(&second.path().join("issuing-ca.key")).unwrap());
    let error = IssuingCa::load(&first.path().join("issuing-ca.pem"), wrong).unwrap_err();
    assert!(matches!(error, CaError::KeyMismatch { .. }), "{error}");
    let right: Arc<dyn SigningKeyHandle> =
        Arc::new(FileKey::load(&first.path().join("issuing-ca.key")).unwrap());
    let ca = IssuingCa::load(&first.path().join("issuing-ca.pem"), right).unwrap();
    let now = SystemTime::now();
    let issued = ca
        .issue(&subject(), &KeyPair::generate().unwrap(), DAY, now, None)
        .unwrap();
    verify(&ca, Vec::new(), &issued, now).unwrap();
}

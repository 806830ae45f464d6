//! The gateway's issuing CA: an identity certificate for each virtual device, and the CRL of
//! the ones revoked (DESIGN.md §5: legacy devices have no certificate of their own; the gateway
//! issues one and records the evidence behind it).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rand::Rng as _;
use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, DnType,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyIdMethod, KeyUsagePurpose, PublicKeyData,
    RevocationReason, RevokedCertParams, SanType, SerialNumber,
};

use super::keys::{FileKey, KeyError, SigningKeyHandle};
use crate::firmware::store::hex;

/// Why the CA could not be loaded or could not sign.
#[derive(Debug, thiserror::Error)]
pub enum CaError {
    /// The key.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The certificate file.
    #[error("{}: {why}", path.display())]
    Certificate {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        why: String,
    },
    /// The certificate and the key do not belong together.
    #[error("{}: the issuing CA certificate does not match its key {key}; give the key it was issued for", path.display())]
    KeyMismatch {
        /// The certificate file.
        path: std::path::PathBuf,
        /// Where the key lives.
        key: String,
    },
    /// Signing failed.
    #[error("signing with the issuing CA's key ({key}) failed: {why}")]
    Sign {
        /// Where the key lives.
        key: String,
        /// Why.
        why: String,
    },
}

/// Whom a device certificate names.
#[derive(Debug, Clone, Copy)]
pub struct DeviceSubject<'a> {
    /// The gateway's id.
    pub gateway_id: &'a str,
    /// The device's id.
    pub device_id: &'a str,
    /// Its protocol (`modbus`, `mqtt`, ...).
    pub protocol: &'a str,
    /// Its protocol address.
    pub address: &'a str,
}

impl DeviceSubject<'_> {
    /// The URI the certificate carries as its subject alternative name:
    /// `urn:iotmc:<gateway>:<protocol>:<address, percent-encoded>`.
    pub fn uri(&self) -> String {
        let address: String = form_urlencoded::byte_serialize(self.address.as_bytes()).collect();
        format!("urn:iotmc:{}:{}:{address}", self.gateway_id, self.protocol)
    }
}

/// A certificate the CA issued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issued {
    /// Its serial number, lowercase hex.
    pub serial: String,
    /// PEM.
    pub pem: String,
    /// DER.
    pub der: Vec<u8>,
    /// Valid from.
    pub not_before: SystemTime,
    /// Valid until.
    pub not_after: SystemTime,
}

/// A revoked certificate, for the CRL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revoked {
    /// Its serial number, lowercase hex (as [`Issued::serial`]).
    pub serial: String,
    /// When it was revoked.
    pub at: SystemTime,
}

/// The issuing CA: its certificate and the handle of its key.
#[derive(Debug, Clone)]
pub struct IssuingCa {
    certificate_pem: String,
    key: Arc<dyn SigningKeyHandle>,
}

impl IssuingCa {
    /// The CA whose certificate is at `certificate` (PEM) and whose key is `key`; the two must
    /// belong together.
    pub fn load(certificate: &Path, key: Arc<dyn SigningKeyHandle>) -> Result<Self, CaError> {
        let pem = std::fs::read_to_string(certificate).map_err(|e| CaError::Certificate {
            path: certificate.to_owned(),
            why: e.to_string(),
        })?;
        let (_, parsed) =
            x509_parser::pem::parse_x509_pem(pem.as_bytes()).map_err(|e| CaError::Certificate {
                path: certificate.to_owned(),
                why: format!("not a PEM certificate: {e}"),
            })?;
        let cert = parsed.parse_x509().map_err(|e| CaError::Certificate {
            path: certificate.to_owned(),
            why: format!("not an X.509 certificate: {e}"),
        })?;
        if cert.public_key().raw != key.subject_public_key_info().as_slice() {
            return Err(CaError::KeyMismatch {
                path: certificate.to_owned(),
                key: key.location(),
            });
        }
        if !cert.is_ca() {
            return Err(CaError::Certificate {
                path: certificate.to_owned(),
                why: "is not a CA certificate (basicConstraints CA:TRUE); the issuing CA must be allowed to sign certificates".into(),
            });
        }
        Ok(Self {
            certificate_pem: pem,
            key,
        })
    }

    /// Creates a CA for a lab in `dir` (`issuing-ca.pem`, `issuing-ca.key` with mode 0600),
    /// valid ten years, named after the gateway. Production gateways import a CA of their
    /// organisation instead; the caller warns loudly.
    pub fn generate_lab(dir: &Path, gateway_id: &str, now: SystemTime) -> Result<Self, CaError> {
        let key_path = dir.join("issuing-ca.key");
        let certificate = dir.join("issuing-ca.pem");
        let key: Arc<dyn SigningKeyHandle> = Arc::new(FileKey::generate(&key_path)?);
        let mut params = CertificateParams::default();
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.distinguished_name.push(
            DnType::CommonName,
            format!("iotmc-gateway {gateway_id} lab issuing CA"),
        );
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params.not_before = now.into();
        params.not_after = (now + Duration::from_secs(10 * 365 * 24 * 3600)).into();
        params.serial_number = Some(random_serial());
        let signer: &dyn SigningKeyHandle = &*key;
        let cert = params
            .self_signed(&signer)
            .map_err(|e| sign_error(signer, &e))?;
        std::fs::write(&certificate, cert.pem()).map_err(|e| CaError::Certificate {
            path: certificate.clone(),
            why: e.to_string(),
        })?;
        Ok(Self {
            certificate_pem: cert.pem(),
            key,
        })
    }

    /// The CA certificate, PEM (what devices and controllers trust).
    pub fn certificate_pem(&self) -> &str {
        &self.certificate_pem
    }

    fn issuer(&self) -> Result<Issuer<'_, &dyn SigningKeyHandle>, CaError> {
        Issuer::from_ca_cert_pem(&self.certificate_pem, &*self.key)
            .map_err(|e| sign_error(&*self.key, &e))
    }

    /// Issues the identity certificate of `subject` for `public_key`, valid `validity` from
    /// `now`: CN the device id, OU its protocol, O the gateway, the subject alternative name
    /// [`DeviceSubject::uri`], for TLS clients and servers, not a CA; with the URL its CRL is
    /// published at, when given.
    pub fn issue(
        &self,
        subject: &DeviceSubject<'_>,
        public_key: &impl PublicKeyData,
        validity: Duration,
        now: SystemTime,
        crl_url: Option<&str>,
    ) -> Result<Issued, CaError> {
        let mut params = CertificateParams::default();
        if let Some(url) = crl_url {
            params.crl_distribution_points = vec![rcgen::CrlDistributionPoint {
                uris: vec![url.to_owned()],
            }];
        }
        let dn = &mut params.distinguished_name;
        dn.push(DnType::CommonName, subject.device_id);
        dn.push(DnType::OrganizationalUnitName, subject.protocol);
        dn.push(DnType::OrganizationName, subject.gateway_id);
        let uri = subject
            .uri()
            .try_into()
            .map_err(|e: rcgen::Error| sign_error(&*self.key, &e))?;
        params.subject_alt_names = vec![SanType::URI(uri)];
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ClientAuth,
            ExtendedKeyUsagePurpose::ServerAuth,
        ];
        // A minute of slack for clocks a little behind the gateway's.
        let not_before = now
            - Duration::from_secs(60).min(
                now.duration_since(SystemTime::UNIX_EPOCH)
                    .unwrap_or_default(),
            );
        let not_after = now + validity;
        params.not_before = not_before.into();
        params.not_after = not_after.into();
        let serial = random_serial();
        params.serial_number = Some(serial.clone());
        params.use_authority_key_identifier_extension = true;
        let cert = params
            .signed_by(public_key, &self.issuer()?)
            .map_err(|e| sign_error(&*self.key, &e))?;
        Ok(Issued {
            serial: hex(serial.as_ref()),
            pem: cert.pem(),
            der: cert.der().to_vec(),
            not_before,
            not_after,
        })
    }

    /// The CRL (PEM) listing `revoked`, number `number` (increase it with every new list),
    /// valid until `now + next_update`.
    pub fn crl(
        &self,
        revoked: &[Revoked],
        number: u64,
        now: SystemTime,
        next_update: Duration,
    ) -> Result<String, CaError> {
        let revoked_certs = revoked
            .iter()
            .map(|r| RevokedCertParams {
                serial_number: SerialNumber::from_slice(&unhex(&r.serial)),
                revocation_time: r.at.into(),
                reason_code: Some(RevocationReason::CessationOfOperation),
                invalidity_date: None,
            })
            .collect();
        let params = CertificateRevocationListParams {
            this_update: now.into(),
            next_update: (now + next_update).into(),
            crl_number: SerialNumber::from(number),
            issuing_distribution_point: None,
            revoked_certs,
            key_identifier_method: KeyIdMethod::Sha256,
        };
        params
            .signed_by(&self.issuer()?)
            .and_then(|crl| crl.pem())
            .map_err(|e| sign_error(&*self.key, &e))
    }
}

fn sign_error(key: &dyn SigningKeyHandle, e: &rcgen::Error) -> CaError {
    CaError::Sign {
        key: key.location(),
        why: e.to_string(),
    }
}

/// 16 random bytes, the top bit clear (a positive INTEGER, RFC 5280 §4.1.2.2) and the first
/// byte non-zero (no leading zero to strip).
fn random_serial() -> SerialNumber {
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    bytes[0] = (bytes[0] & 0x7f) | 0x40;
    SerialNumber::from_slice(&bytes)
}

fn unhex(text: &str) -> Vec<u8> {
    (0..text.len() / 2)
        .filter_map(|i| text.get(2 * i..2 * i + 2))
        .filter_map(|pair| u8::from_str_radix(pair, 16).ok())
        .collect()
}

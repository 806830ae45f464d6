//! The identities of the virtual devices: an identity certificate from the gateway's issuing CA
//! for each declared device (its key in `<state_dir>/identities`, mode 0600), the enrollment
//! made with it and the evidence behind it, the revocations and the CRL that publishes them.
//!
//! Records live in the registry (tables `identities` and `revocations`), so they survive
//! restarts with the rest of the device's state.

use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::pki::{CaError, DeviceSubject, FileKey, IssuingCa, KeyError, Revoked, SigningKeyHandle};
use crate::config::Config;
use crate::registry::{DeviceRecord, RecordTable, Registry, RegistryError};
use crate::utc::{from_unix_ms, unix_ms};

/// How long a published CRL is valid; it is signed again when half of that is gone.
const CRL_VALIDITY: Duration = Duration::from_secs(7 * 24 * 3600);

/// Why an identity could not be loaded, issued or revoked.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// The issuing CA.
    #[error("issuing CA: {0}")]
    Ca(#[from] CaError),
    /// A device key.
    #[error("device key: {0}")]
    Key(#[from] KeyError),
    /// The registry.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// Enrollment needs an issuing CA and none is configured.
    #[error(
        "enrollment is on but no issuing CA is configured: set [trust] issuing_ca_certificate and issuing_ca_key (or, in a lab, [enrollment] lab_pki = true), or set [enrollment] enabled = false"
    )]
    NoCa,
}

/// What the gateway keeps of a device's identity certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdentityRecord {
    /// The device.
    pub device_id: String,
    /// Its UDN.
    pub udn: Uuid,
    /// Serial number of the current certificate, lowercase hex.
    pub serial: String,
    /// The certificate, PEM.
    pub certificate_pem: String,
    /// Valid from, ms since the epoch.
    pub not_before_ms: u64,
    /// Valid until, ms since the epoch.
    pub not_after_ms: u64,
    /// Where its private key lives.
    pub key: PathBuf,
    /// The device's enrollment, once it enrolled.
    #[serde(default)]
    pub enrollment: Option<Enrollment>,
}

/// One enrollment: when, with which certificate, on what evidence, and its outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Enrollment {
    /// When the device enrolled, ms since the epoch.
    pub at_ms: u64,
    /// Serial of the certificate it presented.
    pub serial: String,
    /// Its identity evidence: `certificate`, `install-code`, `bonded-key` or `none`.
    pub evidence: String,
    /// SHA-256 (hex) of the evidence, when there is some.
    #[serde(default)]
    pub evidence_sha256: Option<String>,
    /// What became of it.
    pub outcome: Outcome,
}

/// Where an enrollment stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "kebab-case")]
pub enum Outcome {
    /// Waiting for an operator (or for its zero-touch approval to finish).
    Pending,
    /// Approved into `group`.
    Approved {
        /// The management group.
        group: String,
        /// `operator <subject>` or `zero-touch rule of group <g>`.
        by: String,
        /// When, ms since the epoch.
        at_ms: u64,
    },
    /// Refused.
    Rejected {
        /// The operator's reason.
        reason: String,
        /// The operator.
        by: String,
        /// When, ms since the epoch.
        at_ms: u64,
    },
}

impl Outcome {
    /// The `EnrollmentState` word: `pending`, `approved`, `rejected`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Approved { .. } => "approved",
            Self::Rejected { .. } => "rejected",
        }
    }
}

/// A revoked certificate, as kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevocationRecord {
    /// Its serial, lowercase hex.
    pub serial: String,
    /// The device it identified.
    pub device_id: String,
    /// When, ms since the epoch.
    pub at_ms: u64,
    /// Why.
    pub reason: String,
}

/// The identity store.
#[derive(Debug)]
pub struct Identities {
    ca: IssuingCa,
    registry: Arc<Registry>,
    dir: PathBuf,
    gateway_id: String,
    validity: Duration,
    crl_url: RwLock<Option<String>>,
    /// The CRL last signed (PEM) and when.
    crl: RwLock<Option<(String, SystemTime)>>,
    /// Held while a CRL is signed.
    signing: RwLock<()>,
}

impl Identities {
    /// The store for `config`, or `None` when enrollment is off. Loads the issuing CA named in
    /// `[trust]`, or in a lab (`[enrollment] lab_pki`) the one in `<state_dir>/pki`, generating
    /// it on first start.
    pub fn open(config: &Config, registry: Arc<Registry>) -> Result<Option<Self>, IdentityError> {
        let has_ca = config.trust.issuing_ca_certificate.is_some();
        if !config
            .enrollment
            .enabled
            .unwrap_or(has_ca || config.enrollment.lab_pki)
        {
            return Ok(None);
        }
        let ca = match (
            &config.trust.issuing_ca_certificate,
            &config.trust.issuing_ca_key,
        ) {
            (Some(cert), Some(key)) => {
                let key: Arc<dyn SigningKeyHandle> = Arc::new(FileKey::load(key)?);
                IssuingCa::load(cert, key)?
            }
            _ if config.enrollment.lab_pki => {
                let dir = lab_dir(config);
                let cert = dir.join("issuing-ca.pem");
                let key = dir.join("issuing-ca.key");
                if cert.exists() {
                    IssuingCa::load(&cert, Arc::new(FileKey::load(&key)?))?
                } else {
                    std::fs::create_dir_all(&dir).map_err(|e| KeyError::File {
                        path: dir.clone(),
                        why: e.to_string(),
                    })?;
                    IssuingCa::generate_lab(&dir, &config.gateway.id, SystemTime::now())?
                }
            }
            _ => return Err(IdentityError::NoCa),
        };
        if config.trust.issuing_ca_certificate.is_none() {
            tracing::warn!(
                dir = %lab_dir(config).display(),
                "LAB PKI: the issuing CA of device identities was generated by this gateway and its key lies on this disk; import your organisation's CA ([trust] issuing_ca_certificate, issuing_ca_key) before production"
            );
        }
        Ok(Some(Self {
            ca,
            registry,
            dir: config.gateway.state_dir.join("identities"),
            gateway_id: config.gateway.id.clone(),
            validity: config.enrollment.certificate_validity,
            crl_url: RwLock::new(None),
            crl: RwLock::new(None),
            signing: RwLock::new(()),
        }))
    }

    /// The issuing CA certificate, PEM.
    pub fn ca_pem(&self) -> &str {
        self.ca.certificate_pem()
    }

    /// Sets the URL the CRL is published at, written into certificates issued from now on.
    pub fn set_crl_url(&self, url: String) {
        *self.crl_url.write().unwrap_or_else(|e| e.into_inner()) = Some(url);
    }

    /// The identity record of `device_id`, if it has one.
    pub fn get(&self, device_id: &str) -> Result<Option<IdentityRecord>, IdentityError> {
        Ok(self
            .registry
            .get_record(RecordTable::Identities, device_id)?)
    }

    /// Stores `record` (durable when this returns).
    pub fn put(&self, record: &IdentityRecord) -> Result<(), IdentityError> {
        Ok(self
            .registry
            .put_record(RecordTable::Identities, &record.device_id, record)?)
    }

    /// The device's current identity: the one it has while more than a tenth of its validity
    /// is left and its key is there, otherwise a new certificate with a new key (the old one is
    /// superseded, not revoked: it was never handed out).
    pub fn ensure(
        &self,
        device: &DeviceRecord,
        now: SystemTime,
    ) -> Result<IdentityRecord, IdentityError> {
        let current = self.get(&device.id)?;
        if let Some(record) = &current {
            let left = from_unix_ms(record.not_after_ms)
                .duration_since(now)
                .unwrap_or_default();
            if left > self.validity / 10 && record.key.exists() && record.udn == device.udn {
                return Ok(record.clone());
            }
        }
        let key_path = self.dir.join(format!("{}.key", device.udn));
        // A key left by a superseded certificate (or by a crash between writing the key and
        // the record) is replaced.
        if key_path.exists() {
            std::fs::remove_file(&key_path).map_err(|e| KeyError::File {
                path: key_path.clone(),
                why: e.to_string(),
            })?;
        }
        let key = FileKey::generate(&key_path)?;
        let url = self
            .crl_url
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let issued = self.ca.issue(
            &DeviceSubject {
                gateway_id: &self.gateway_id,
                device_id: &device.id,
                protocol: &device.protocol,
                address: &device.address,
            },
            &key,
            self.validity,
            now,
            url.as_deref(),
        )?;
        let record = IdentityRecord {
            device_id: device.id.clone(),
            udn: device.udn,
            serial: issued.serial,
            certificate_pem: issued.pem,
            not_before_ms: unix_ms(issued.not_before),
            not_after_ms: unix_ms(issued.not_after),
            key: key_path,
            enrollment: current.and_then(|c| c.enrollment),
        };
        self.put(&record)?;
        tracing::info!(device = %device.id, serial = %record.serial, not_after = %crate::utc::format_ms(record.not_after_ms), "identity certificate issued");
        Ok(record)
    }

    /// The key of `record`, through the key trait.
    pub fn key(&self, record: &IdentityRecord) -> Result<Arc<dyn SigningKeyHandle>, IdentityError> {
        Ok(Arc::new(FileKey::load(&record.key)?))
    }

    /// The revocation of the device's current certificate, if it has one, to be stored in
    /// the same registry transaction as the decommissioning ([`Registry::decommission`]); then
    /// call [`Self::revoked`].
    pub fn revocation(
        &self,
        device_id: &str,
        reason: &str,
        now: SystemTime,
    ) -> Result<Option<(IdentityRecord, RevocationRecord)>, IdentityError> {
        Ok(self.get(device_id)?.map(|record| {
            let revocation = RevocationRecord {
                serial: record.serial.clone(),
                device_id: device_id.to_owned(),
                at_ms: unix_ms(now),
                reason: reason.to_owned(),
            };
            (record, revocation)
        }))
    }

    /// After a revocation was stored: deletes the identity's key and signs a new CRL.
    pub fn revoked(
        &self,
        record: &IdentityRecord,
        now: SystemTime,
    ) -> Result<String, IdentityError> {
        if let Err(e) = std::fs::remove_file(&record.key)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(device = %record.device_id, key = %record.key.display(), error = %e, "the revoked identity's key could not be deleted; delete it by hand");
        }
        self.sign_crl(now)
    }

    /// The device other than `device_id` whose enrollment recorded evidence with this
    /// SHA-256, if any.
    pub fn evidence_holder(&self, sha256: &str, device_id: &str) -> Option<String> {
        self.registry
            .records::<IdentityRecord>(RecordTable::Identities)
            .ok()?
            .into_iter()
            .find(|(id, record)| {
                id != device_id
                    && record
                        .enrollment
                        .as_ref()
                        .and_then(|e| e.evidence_sha256.as_deref())
                        == Some(sha256)
            })
            .map(|(id, _)| id)
    }

    /// The CRL (PEM), signed again when half its validity is gone.
    pub fn crl_pem(&self, now: SystemTime) -> Result<String, IdentityError> {
        if let Some((pem, made)) = &*self.crl.read().unwrap_or_else(|e| e.into_inner())
            && now.duration_since(*made).unwrap_or_default() < CRL_VALIDITY / 2
        {
            return Ok(pem.clone());
        }
        self.sign_crl(now)
    }

    /// Signs a CRL of every revocation stored, under one lock (two revocations at once must
    /// not publish a list missing one), numbered by a persisted counter.
    fn sign_crl(&self, now: SystemTime) -> Result<String, IdentityError> {
        let _signing = self.signing.write().unwrap_or_else(|e| e.into_inner());
        let revoked: Vec<RevocationRecord> = self
            .registry
            .records::<RevocationRecord>(RecordTable::Revocations)?
            .into_iter()
            .map(|(_, r)| r)
            .collect();
        let list: Vec<Revoked> = revoked
            .iter()
            .map(|r| Revoked {
                serial: r.serial.clone(),
                at: from_unix_ms(r.at_ms),
            })
            .collect();
        let number = self.registry.next_counter("crl-number")?;
        let pem = self.ca.crl(&list, number, now, CRL_VALIDITY)?;
        *self.crl.write().unwrap_or_else(|e| e.into_inner()) = Some((pem.clone(), now));
        Ok(pem)
    }
}

/// Where a lab's generated PKI lives.
pub fn lab_dir(config: &Config) -> PathBuf {
    config.gateway.state_dir.join("pki")
}

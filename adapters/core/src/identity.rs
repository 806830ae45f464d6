//! What a device says it is, and the evidence behind that claim.

use serde::{Deserialize, Serialize};

/// Identity facts read from a device.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// Manufacturer name as the device reports it (or as the profile declares it).
    pub manufacturer: String,
    /// Model name.
    pub model: String,
    /// Serial number, if the device has one it will tell.
    pub serial: Option<String>,
    /// Running firmware version, if known.
    pub firmware_version: Option<String>,
    /// Hardware revision, if known.
    pub hardware_version: Option<String>,
    /// The strongest identity evidence the protocol offers for this device.
    pub evidence: IdentityEvidence,
}

/// Evidence that a device is the device it claims to be.
///
/// Only cryptographic evidence may ever justify zero-touch approval; an address, MAC or serial
/// number alone is [`IdentityEvidence::None`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum IdentityEvidence {
    /// A certificate the device presented (DER), e.g. an MQTT client certificate.
    Certificate {
        /// The DER-encoded certificate.
        der: Vec<u8>,
    },
    /// A Zigbee install code used to derive the device's link key.
    InstallCode {
        /// SHA-256 of the install code; the code itself is a secret and is not kept.
        sha256: [u8; 32],
    },
    /// A bonded key, e.g. a BLE LE Secure Connections long-term key.
    BondedKey {
        /// SHA-256 fingerprint of the bonded key.
        fingerprint: [u8; 32],
    },
    /// Nothing cryptographic: the device is known only by its address or serial number.
    #[default]
    None,
}

impl IdentityEvidence {
    /// Whether the evidence is cryptographic (and so may qualify for zero-touch approval).
    pub fn is_cryptographic(&self) -> bool {
        !matches!(self, Self::None)
    }

    /// The evidence kind in the words of the configuration and logs.
    pub fn kind_name(&self) -> &'static str {
        match self {
            Self::Certificate { .. } => "certificate",
            Self::InstallCode { .. } => "install-code",
            Self::BondedKey { .. } => "bonded-key",
            Self::None => "none",
        }
    }
}

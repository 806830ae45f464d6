//! What a firmware image says about itself, and the signed envelope that carries it.
//!
//! SKELETON (issue 6): types are the contract; bodies are filled in by the image-store work.

use serde::{Deserialize, Serialize};

/// DSSE payload type of an iotmc firmware manifest.
pub const PAYLOAD_TYPE: &str = "application/vnd.iotmc.firmware-manifest+json";

/// The manifest of one image. Signed (inside a [`Envelope`]) by a vendor key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Profile ids (device models) the image is for; at least one.
    pub targets: Vec<String>,
    /// Version the image installs, as the device will report it.
    pub version: String,
    /// Release date, `YYYY-MM-DD`.
    pub release_date: String,
    /// Size of the image in bytes.
    pub size: u64,
    /// SHA-256 of the image, 64 lowercase hex digits.
    pub sha256: String,
    /// A security fix that may use the shorter emergency probation.
    #[serde(default)]
    pub emergency: bool,
    /// Lowest hardware revision the image runs on, if it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_hardware: Option<String>,
    /// Lowest bootloader version the image needs, if it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_bootloader: Option<String>,
}

/// A DSSE envelope (<https://github.com/secure-systems-lab/dsse>) around a manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    /// Always [`PAYLOAD_TYPE`].
    #[serde(rename = "payloadType")]
    pub payload_type: String,
    /// The manifest's JSON bytes, base64 (standard alphabet, padded).
    pub payload: String,
    /// Signatures over `PAE(payloadType, payload)`.
    pub signatures: Vec<EnvelopeSignature>,
}

/// One signature of an envelope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvelopeSignature {
    /// The signing key's id: the file stem of its public key in the trust store.
    pub keyid: String,
    /// Ed25519 signature, base64.
    pub sig: String,
}

/// DSSE pre-authentication encoding: `DSSEv1 <len> <type> <len> <body>`.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "DSSEv1 {} {} {} ",
        payload_type.len(),
        payload_type,
        payload.len()
    )
    .into_bytes();
    out.extend_from_slice(payload);
    out
}

//! Identity proofs of generic MQTT 5 devices, without IO: the message a device signs to show it
//! holds its certificate's key, and the check of its answer. Bounded, and never panics on what a
//! device sent.
//!
//! The gateway sends a fresh 32-byte nonce; the device answers its certificate (base64 DER or
//! PEM) and a signature, with the certificate's private key, over
//!
//! ```text
//! "iotmc-identity-proof-v1" 0x00 <device address, UTF-8> 0x00 <the 32 nonce bytes>
//! ```
//!
//! where the address is the binding's, `mqtt://<broker>/<device>`. Keys: ECDSA P-256 with SHA-256
//! and ECDSA P-384 with SHA-384 (ASN.1 DER signatures, as X.509 and TLS use them), and Ed25519.
//! Whether the certificate chains to a trusted CA is not checked here: the gateway's core does
//! that with its trusted device CAs.

use base64::Engine;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use ring::signature::{self, UnparsedPublicKey, VerificationAlgorithm};
use serde_json::Value as Json;
use x509_parser::certificate::X509Certificate;
use x509_parser::oid_registry::{
    OID_EC_P256, OID_KEY_TYPE_EC_PUBLIC_KEY, OID_NIST_EC_P384, OID_SIG_ED25519,
};
use x509_parser::pem::Pem;
use x509_parser::prelude::FromDer;

/// What every signed proof starts with: the proof's purpose and version, so a signature made
/// for anything else (a TLS handshake, another protocol) is never a proof.
pub const PROOF_CONTEXT: &[u8] = b"iotmc-identity-proof-v1\0";

/// Bytes of a nonce.
pub const NONCE_LEN: usize = 32;

/// Largest certificate accepted (DER), in bytes.
pub const MAX_CERTIFICATE: usize = 8 * 1024;

/// Largest signature accepted, in bytes (an ECDSA P-384 signature is at most 104, Ed25519 64).
pub const MAX_SIGNATURE: usize = 512;

/// Largest certificate text read (base64 or PEM of [`MAX_CERTIFICATE`] bytes, with line breaks).
const MAX_CERTIFICATE_TEXT: usize = 12 * 1024;

/// Largest signature text read.
const MAX_SIGNATURE_TEXT: usize = 1024;

/// Standard base64; padding optional, as devices differ.
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// A nonce as it travels in the request: standard base64 with padding.
pub fn encode_nonce(nonce: &[u8; NONCE_LEN]) -> String {
    base64::engine::general_purpose::STANDARD.encode(nonce)
}

/// The message the device signs for `address` (the binding's, `mqtt://<broker>/<device>`) and
/// `nonce`.
pub fn signed_message(address: &str, nonce: &[u8; NONCE_LEN]) -> Vec<u8> {
    let mut message = Vec::with_capacity(PROOF_CONTEXT.len() + address.len() + 1 + NONCE_LEN);
    message.extend_from_slice(PROOF_CONTEXT);
    message.extend_from_slice(address.as_bytes());
    message.push(0);
    message.extend_from_slice(nonce);
    message
}

/// Where the answer carries each part of the proof (JSON pointers).
#[derive(Debug, Clone, Copy)]
pub struct ProofPointers<'a> {
    /// The certificate: base64 DER or PEM text, or an array of them with the leaf first.
    pub certificate: &'a str,
    /// The signature, base64.
    pub signature: &'a str,
    /// The nonce echoed back, if the device echoes it.
    pub echo: Option<&'a str>,
}

/// A key type whose proofs are checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyAlgorithm {
    /// ECDSA on P-256 with SHA-256, ASN.1 DER signature.
    EcdsaP256,
    /// ECDSA on P-384 with SHA-384, ASN.1 DER signature.
    EcdsaP384,
    /// Ed25519.
    Ed25519,
}

impl KeyAlgorithm {
    /// Its name in messages.
    pub fn name(self) -> &'static str {
        match self {
            Self::EcdsaP256 => "ECDSA P-256",
            Self::EcdsaP384 => "ECDSA P-384",
            Self::Ed25519 => "Ed25519",
        }
    }

    fn verification(self) -> &'static dyn VerificationAlgorithm {
        match self {
            Self::EcdsaP256 => &signature::ECDSA_P256_SHA256_ASN1,
            Self::EcdsaP384 => &signature::ECDSA_P384_SHA384_ASN1,
            Self::Ed25519 => &signature::ED25519,
        }
    }
}

/// A proof that holds: the leaf certificate (DER) and its key type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proven {
    /// The device's certificate, DER, exactly as presented.
    pub certificate: Vec<u8>,
    /// The type of its key.
    pub algorithm: KeyAlgorithm,
}

/// Why an answer proves nothing. Each says what is wrong and what the device must send.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    /// Nothing at the pointer.
    #[error("the answer has no {what} at `{pointer}`; the device must answer it there")]
    Missing {
        /// `certificate`, `signature` or `nonce`.
        what: &'static str,
        /// Where it was looked for.
        pointer: String,
    },
    /// Something other than text at the pointer.
    #[error("the {what} at `{pointer}` is not text ({found}); expected {expected}")]
    NotText {
        /// What was looked for.
        what: &'static str,
        /// Where.
        pointer: String,
        /// What was there (its JSON type).
        found: &'static str,
        /// The form expected.
        expected: &'static str,
    },
    /// Larger than its bound.
    #[error("the {what} at `{pointer}` is {size} bytes; at most {limit} are accepted")]
    TooLarge {
        /// What was looked for.
        what: &'static str,
        /// Where.
        pointer: String,
        /// Its size.
        size: usize,
        /// The bound.
        limit: usize,
    },
    /// Not base64 (or PEM without a certificate).
    #[error("the {what} at `{pointer}` does not decode: {reason}")]
    Undecodable {
        /// What was looked for.
        what: &'static str,
        /// Where.
        pointer: String,
        /// The decoder's words.
        reason: String,
    },
    /// Not an X.509 certificate.
    #[error(
        "the certificate does not parse as X.509 DER ({reason}); the device must answer its own certificate, base64 DER or PEM"
    )]
    Certificate {
        /// The parser's words.
        reason: String,
    },
    /// A key whose signatures are not checked.
    #[error(
        "the certificate's key is {algorithm}; proofs are checked for ECDSA P-256, ECDSA P-384 and Ed25519 keys: give the device a certificate for one of them"
    )]
    UnsupportedKey {
        /// The key's algorithm (OID, and curve if any).
        algorithm: String,
    },
    /// The echoed nonce is not the one sent.
    #[error(
        "the answer echoes another nonce than the one just sent (an old or replayed answer); the device must sign and echo the nonce of each request"
    )]
    NonceMismatch,
    /// The signature does not verify.
    #[error(
        "the signature does not verify with the certificate's {algorithm} key over this challenge (signed by another key, or over an old nonce or another address); the device must sign \"iotmc-identity-proof-v1\\0\" + `{address}` + \"\\0\" + the nonce's 32 bytes with its certificate's key"
    )]
    BadSignature {
        /// The certificate's key type.
        algorithm: &'static str,
        /// The address the signature must cover.
        address: String,
    },
}

/// Checks the device's answer to the proof request sent with `nonce` to the device at
/// `address`: the echoed nonce (if the profile maps one), the certificate, and the signature by
/// the certificate's key. Returns the leaf certificate.
pub fn verify_answer(
    answer: &Json,
    pointers: ProofPointers<'_>,
    address: &str,
    nonce: &[u8; NONCE_LEN],
) -> Result<Proven, ProofError> {
    if let Some(pointer) = pointers.echo {
        let echoed = text(answer, pointer, "nonce", "base64 text", NONCE_LEN * 2)?;
        let decoded = decode_base64(echoed, "nonce", pointer)?;
        if decoded != nonce {
            return Err(ProofError::NonceMismatch);
        }
    }
    let certificate = certificate_at(answer, pointers.certificate)?;
    let signature_text = text(
        answer,
        pointers.signature,
        "signature",
        "base64 text",
        MAX_SIGNATURE_TEXT,
    )?;
    let signature = decode_base64(signature_text, "signature", pointers.signature)?;
    if signature.len() > MAX_SIGNATURE {
        return Err(ProofError::TooLarge {
            what: "signature",
            pointer: pointers.signature.to_owned(),
            size: signature.len(),
            limit: MAX_SIGNATURE,
        });
    }
    let algorithm = verify_signature(
        &certificate,
        &signed_message(address, nonce),
        &signature,
        address,
    )?;
    Ok(Proven {
        certificate,
        algorithm,
    })
}

/// Verifies `signature` over `message` with the public key of `certificate` (DER); `address`
/// only names the challenge in the error.
pub fn verify_signature(
    certificate: &[u8],
    message: &[u8],
    signature: &[u8],
    address: &str,
) -> Result<KeyAlgorithm, ProofError> {
    let (_, parsed) =
        X509Certificate::from_der(certificate).map_err(|e| ProofError::Certificate {
            reason: e.to_string(),
        })?;
    let spki = parsed.public_key();
    let oid = &spki.algorithm.algorithm;
    let algorithm = if *oid == OID_SIG_ED25519 {
        KeyAlgorithm::Ed25519
    } else if *oid == OID_KEY_TYPE_EC_PUBLIC_KEY {
        let curve = spki
            .algorithm
            .parameters
            .as_ref()
            .and_then(|p| p.as_oid().ok());
        match curve {
            Some(c) if c == OID_EC_P256 => KeyAlgorithm::EcdsaP256,
            Some(c) if c == OID_NIST_EC_P384 => KeyAlgorithm::EcdsaP384,
            Some(c) => {
                return Err(ProofError::UnsupportedKey {
                    algorithm: format!("an EC key on curve {c}"),
                });
            }
            None => {
                return Err(ProofError::UnsupportedKey {
                    algorithm: "an EC key without a named curve".into(),
                });
            }
        }
    } else {
        return Err(ProofError::UnsupportedKey {
            algorithm: format!("of algorithm {oid}"),
        });
    };
    let key = UnparsedPublicKey::new(
        algorithm.verification(),
        spki.subject_public_key.data.as_ref(),
    );
    key.verify(message, signature)
        .map_err(|_| ProofError::BadSignature {
            algorithm: algorithm.name(),
            address: address.to_owned(),
        })?;
    Ok(algorithm)
}

/// The leaf certificate at `pointer`: text (base64 DER or PEM), or an array of such with the
/// leaf first. Exactly one DER certificate, nothing after it.
fn certificate_at(answer: &Json, pointer: &str) -> Result<Vec<u8>, ProofError> {
    const WHAT: &str = "certificate";
    let leaf = match answer.pointer(pointer) {
        Some(Json::Array(chain)) => chain.first().unwrap_or(&Json::Null),
        Some(other) => other,
        None => &Json::Null,
    };
    let text = match leaf {
        Json::String(s) => s.as_str(),
        Json::Null => {
            return Err(ProofError::Missing {
                what: WHAT,
                pointer: pointer.to_owned(),
            });
        }
        other => {
            return Err(ProofError::NotText {
                what: WHAT,
                pointer: pointer.to_owned(),
                found: kind(other),
                expected: "base64 DER or PEM text, or an array of them with the leaf first",
            });
        }
    };
    if text.len() > MAX_CERTIFICATE_TEXT {
        return Err(ProofError::TooLarge {
            what: WHAT,
            pointer: pointer.to_owned(),
            size: text.len(),
            limit: MAX_CERTIFICATE_TEXT,
        });
    }
    let der = if text.trim_start().starts_with("-----BEGIN") {
        Pem::iter_from_buffer(text.as_bytes())
            .filter_map(Result::ok)
            .find(|pem| pem.label == "CERTIFICATE")
            .map(|pem| pem.contents)
            .ok_or_else(|| ProofError::Undecodable {
                what: WHAT,
                pointer: pointer.to_owned(),
                reason: "PEM text without a `CERTIFICATE` block".into(),
            })?
    } else {
        decode_base64(text, WHAT, pointer)?
    };
    if der.len() > MAX_CERTIFICATE {
        return Err(ProofError::TooLarge {
            what: WHAT,
            pointer: pointer.to_owned(),
            size: der.len(),
            limit: MAX_CERTIFICATE,
        });
    }
    let (rest, _) = X509Certificate::from_der(&der).map_err(|e| ProofError::Certificate {
        reason: e.to_string(),
    })?;
    if !rest.is_empty() {
        return Err(ProofError::Certificate {
            reason: format!("{} bytes follow the certificate", rest.len()),
        });
    }
    Ok(der)
}

/// Bounded text at `pointer`.
fn text<'a>(
    answer: &'a Json,
    pointer: &str,
    what: &'static str,
    expected: &'static str,
    limit: usize,
) -> Result<&'a str, ProofError> {
    match answer.pointer(pointer) {
        None | Some(Json::Null) => Err(ProofError::Missing {
            what,
            pointer: pointer.to_owned(),
        }),
        Some(Json::String(s)) if s.len() > limit => Err(ProofError::TooLarge {
            what,
            pointer: pointer.to_owned(),
            size: s.len(),
            limit,
        }),
        Some(Json::String(s)) => Ok(s),
        Some(other) => Err(ProofError::NotText {
            what,
            pointer: pointer.to_owned(),
            found: kind(other),
            expected,
        }),
    }
}

/// Standard base64, padding optional, line breaks and spaces ignored.
fn decode_base64(text: &str, what: &'static str, pointer: &str) -> Result<Vec<u8>, ProofError> {
    let compact: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    BASE64.decode(compact).map_err(|e| ProofError::Undecodable {
        what,
        pointer: pointer.to_owned(),
        reason: format!("not base64: {e}"),
    })
}

fn kind(json: &Json) -> &'static str {
    match json {
        Json::Null => "null",
        Json::Bool(_) => "a boolean",
        Json::Number(_) => "a number",
        Json::String(_) => "text",
        Json::Array(_) => "an array",
        Json::Object(_) => "an object",
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;

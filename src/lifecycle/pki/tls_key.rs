//! A [`SigningKeyHandle`] as a rustls signing key, so that TLS client authentication (a virtual
//! device enrolling) uses the key through the same trait as certificate signing: a TPM or
//! PKCS#11 backend then serves both.

use std::sync::Arc;

use rustls::sign::{Signer, SigningKey as TlsSigningKey};
use rustls::{SignatureAlgorithm, SignatureScheme};

use super::keys::SigningKeyHandle;

/// A rustls signing key backed by a [`SigningKeyHandle`] (ECDSA P-256 or P-384, or Ed25519).
#[derive(Debug, Clone)]
pub struct HandleSigningKey {
    key: Arc<dyn SigningKeyHandle>,
    scheme: SignatureScheme,
    algorithm: SignatureAlgorithm,
}

impl HandleSigningKey {
    /// Wraps `key`; `None` when its algorithm is not one TLS client authentication can use
    /// with it (RSA keys sign PKCS#1 v1.5, which TLS 1.3 forbids for handshakes).
    pub fn new(key: Arc<dyn SigningKeyHandle>) -> Option<Self> {
        let algorithm = key.algorithm();
        let (scheme, family) = if algorithm == &rcgen::PKCS_ECDSA_P256_SHA256 {
            (
                SignatureScheme::ECDSA_NISTP256_SHA256,
                SignatureAlgorithm::ECDSA,
            )
        } else if algorithm == &rcgen::PKCS_ECDSA_P384_SHA384 {
            (
                SignatureScheme::ECDSA_NISTP384_SHA384,
                SignatureAlgorithm::ECDSA,
            )
        } else if algorithm == &rcgen::PKCS_ED25519 {
            (SignatureScheme::ED25519, SignatureAlgorithm::ED25519)
        } else {
            return None;
        };
        Some(Self {
            key,
            scheme,
            algorithm: family,
        })
    }
}

impl TlsSigningKey for HandleSigningKey {
    fn choose_scheme(&self, offered: &[SignatureScheme]) -> Option<Box<dyn Signer>> {
        offered.contains(&self.scheme).then(|| {
            Box::new(HandleSigner {
                key: Arc::clone(&self.key),
                scheme: self.scheme,
            }) as Box<dyn Signer>
        })
    }

    fn algorithm(&self) -> SignatureAlgorithm {
        self.algorithm
    }
}

#[derive(Debug)]
struct HandleSigner {
    key: Arc<dyn SigningKeyHandle>,
    scheme: SignatureScheme,
}

impl Signer for HandleSigner {
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, rustls::Error> {
        // rcgen's ECDSA signatures are ASN.1 DER, as TLS wants them.
        self.key.sign(message).map_err(|e| {
            rustls::Error::General(format!("signing with {}: {e}", self.key.location()))
        })
    }

    fn scheme(&self) -> SignatureScheme {
        self.scheme
    }
}

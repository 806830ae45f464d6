//! The gateway's PKI for device identities (DESIGN.md §5):
//!
//! - [`keys`]: private keys, used only through one trait so that a TPM or PKCS#11 backend can
//!   be added; the file backend refuses keys others may read.
//! - [`ca`]: the issuing CA: an identity certificate per virtual device (subject: device id,
//!   protocol, address) and the CRL of revoked ones.
//! - [`tls_key`]: the same key handles as rustls signing keys, for TLS client authentication.

pub mod ca;
pub mod keys;
pub mod tls_key;

pub use ca::{CaError, DeviceSubject, Issued, IssuingCa, Revoked};
pub use keys::{FileKey, KeyError, SigningKeyHandle};
pub use tls_key::HandleSigningKey;

#[cfg(test)]
mod tests;

//! Ed25519 vendor keys: the trust store the gateway checks images against, and key generation
//! and signing for the `firmware` CLI.
//!
//! SKELETON (issue 6): filled in by the image-store work.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::manifest::{Envelope, Manifest};

/// The vendor public keys trusted to sign firmware (`[trust] firmware_keys`: a directory of
/// `<key id>.pub` PEM files).
#[derive(Debug, Clone, Default)]
pub struct TrustedKeys {
    keys: BTreeMap<String, [u8; 32]>,
}

impl TrustedKeys {
    /// No keys: every image is refused.
    pub fn empty() -> Self {
        Self::default()
    }

    /// Loads every `*.pub` file of `dir`.
    pub fn load_dir(dir: &Path) -> Result<Self, String> {
        let _ = dir;
        todo!("signing")
    }

    /// The key ids, sorted.
    pub fn ids(&self) -> Vec<String> {
        self.keys.keys().cloned().collect()
    }
}

/// Why a key could not be made, read or used.
#[derive(Debug, thiserror::Error)]
pub enum SigningError {
    /// Placeholder until the signing work lands.
    #[error("{0}")]
    Other(String),
}

/// Generates a key pair: `<dir>/<name>.key` (PKCS#8 PEM, mode 0600) and `<dir>/<name>.pub`
/// (SubjectPublicKeyInfo PEM). Refuses to overwrite. Returns (private, public) paths.
pub fn generate(dir: &Path, name: &str) -> Result<(PathBuf, PathBuf), SigningError> {
    let _ = (dir, name);
    todo!("signing")
}

/// Signs a manifest with the private key in `key_file`; the key id is the file stem.
pub fn sign(key_file: &Path, manifest: &Manifest) -> Result<Envelope, SigningError> {
    let _ = (key_file, manifest);
    todo!("signing")
}

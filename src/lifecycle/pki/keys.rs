//! Private keys. Every use of one goes through [`SigningKeyHandle`] (rcgen's `SigningKey`: the
//! public key and "sign these bytes"), so that a TPM or PKCS#11 backend can take the place of
//! the file-backed [`FileKey`] without touching the code that issues certificates.

use std::fmt;
use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use rcgen::{KeyPair, PublicKeyData, SigningKey};

/// Why a key could not be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The key file is readable by others than its owner.
    #[error("{}: the private key is readable by others (mode {mode:o}); run `chmod 600 {}` (and check who could have copied it)", path.display(), path.display())]
    Exposed {
        /// The file.
        path: PathBuf,
        /// Its mode bits.
        mode: u32,
    },
    /// The file could not be read or written.
    #[error("{}: {why}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// Why.
        why: String,
    },
    /// The file holds no usable key.
    #[error("{}: not a PEM private key rcgen can use (PKCS#8 ECDSA P-256/P-384 or Ed25519): {why}", path.display())]
    Unusable {
        /// The file.
        path: PathBuf,
        /// Why.
        why: String,
    },
}

/// A private key the gateway signs with, wherever it lives.
pub trait SigningKeyHandle: SigningKey + Send + Sync + fmt::Debug {
    /// Where the key lives, for messages (`/var/lib/iotmc-gateway/pki/ca.key`, `tpm:0x81000001`).
    fn location(&self) -> String;
}

/// A private key in a PEM file of mode 0600.
pub struct FileKey {
    path: PathBuf,
    pair: KeyPair,
}

impl fmt::Debug for FileKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileKey")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl FileKey {
    /// Loads the key at `path`; refuses one that its group or others may read.
    pub fn load(path: &Path) -> Result<Self, KeyError> {
        let file_err = |why: String| KeyError::File {
            path: path.to_owned(),
            why,
        };
        let metadata = std::fs::metadata(path).map_err(|e| file_err(e.to_string()))?;
        let mode = metadata.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(KeyError::Exposed {
                path: path.to_owned(),
                mode,
            });
        }
        let text = std::fs::read_to_string(path).map_err(|e| file_err(e.to_string()))?;
        let pair = KeyPair::from_pem(&text).map_err(|e| KeyError::Unusable {
            path: path.to_owned(),
            why: e.to_string(),
        })?;
        Ok(Self {
            path: path.to_owned(),
            pair,
        })
    }

    /// Generates an ECDSA P-256 key and writes it to `path` with mode 0600; an existing file
    /// is never overwritten.
    pub fn generate(path: &Path) -> Result<Self, KeyError> {
        let file_err = |why: String| KeyError::File {
            path: path.to_owned(),
            why,
        };
        let pair = KeyPair::generate().map_err(|e| file_err(e.to_string()))?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| file_err(e.to_string()))?;
        }
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(|e| file_err(e.to_string()))?;
        file.write_all(pair.serialize_pem().as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(|e| file_err(e.to_string()))?;
        Ok(Self {
            path: path.to_owned(),
            pair,
        })
    }
}

impl PublicKeyData for FileKey {
    fn der_bytes(&self) -> &[u8] {
        self.pair.der_bytes()
    }

    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        self.pair.algorithm()
    }
}

impl SigningKey for FileKey {
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
        self.pair.sign(msg)
    }
}

impl SigningKeyHandle for FileKey {
    fn location(&self) -> String {
        self.path.display().to_string()
    }
}

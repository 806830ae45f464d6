//! Ed25519 vendor keys: the trust store the gateway checks images against, and key generation
//! and signing for the `firmware` CLI.
//!
//! Key files are PEM: the private `<key id>.key` is PKCS#8 (mode 0600, kept offline by the
//! vendor), the public `<key id>.pub` is SubjectPublicKeyInfo. The key id is the file stem; it is
//! what an envelope's signature names in `keyid`.

use std::collections::BTreeMap;
use std::io::{Read as _, Write as _};
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use rand::Rng as _;

use super::manifest::{
    Envelope, EnvelopeError, EnvelopeSignature, Manifest, ManifestError, PAYLOAD_TYPE,
    decode_base64, encode_base64, pae,
};
use super::store::ImportError;

/// Largest key file read, in bytes. An Ed25519 PEM key is about 120 bytes.
const MAX_KEY_FILE_SIZE: u64 = 16 * 1024;

/// The vendor public keys trusted to sign firmware (`[trust] firmware_keys`: a directory of
/// `<key id>.pub` PEM files).
#[derive(Debug, Clone, Default)]
pub struct TrustedKeys {
    keys: BTreeMap<String, VerifyingKey>,
}

impl TrustedKeys {
    /// No keys: every image is refused.
    pub fn empty() -> Self {
        Self::default()
    }

    /// Loads every `*.pub` file of `dir`. A missing or empty directory, and a file that is not
    /// an Ed25519 public key, are errors that say which and what to do.
    pub fn load_dir(dir: &Path) -> Result<Self, String> {
        Self::load_dir_typed(dir).map_err(|e| e.to_string())
    }

    /// [`TrustedKeys::load_dir`] with the error as a [`SigningError`].
    pub fn load_dir_typed(dir: &Path) -> Result<Self, SigningError> {
        let io = |source| SigningError::Io {
            path: dir.to_owned(),
            source,
        };
        let entries = match std::fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(SigningError::NoKeyDir {
                    dir: dir.to_owned(),
                });
            }
            Err(e) => return Err(io(e)),
        };
        let mut files = Vec::new();
        for entry in entries {
            let path = entry.map_err(io)?.path();
            if path.extension().is_some_and(|e| e == "pub") {
                files.push(path);
            } else if path.extension().is_some_and(|e| e == "key") {
                tracing::warn!(
                    file = %path.display(),
                    "a private key lies in the firmware trust directory; the gateway needs only \
                     the .pub file: move the .key offline"
                );
            }
        }
        files.sort();
        let mut keys = Self::empty();
        for path in files {
            let id = key_id_of(&path)?;
            let pem = read_key_file(&path)?;
            let key = VerifyingKey::from_public_key_pem(&pem).map_err(|e| {
                SigningError::NotAPublicKey {
                    path: path.clone(),
                    detail: e.to_string(),
                }
            })?;
            keys.keys.insert(id, key);
        }
        if keys.keys.is_empty() {
            return Err(SigningError::EmptyKeyDir {
                dir: dir.to_owned(),
            });
        }
        Ok(keys)
    }

    /// One key from its SubjectPublicKeyInfo PEM (for tests and tools).
    pub fn from_public_pem(id: &str, pem: &str) -> Result<Self, SigningError> {
        let mut keys = Self::empty();
        let key =
            VerifyingKey::from_public_key_pem(pem).map_err(|e| SigningError::NotAPublicKey {
                path: PathBuf::from(format!("{id}.pub")),
                detail: e.to_string(),
            })?;
        keys.insert(id, key);
        Ok(keys)
    }

    /// Adds (or replaces) a key.
    pub fn insert(&mut self, id: &str, key: VerifyingKey) {
        self.keys.insert(id.to_owned(), key);
    }

    /// The key ids, sorted.
    pub fn ids(&self) -> Vec<String> {
        self.keys.keys().cloned().collect()
    }

    /// Checks the envelope's signatures and returns its manifest, checked
    /// ([`Manifest::check`]), with the id of the key that signed it. One valid signature by a
    /// trusted key is enough; a signature with an empty `keyid` is tried against every key.
    ///
    /// Refused: [`ImportError::Unsigned`] (no signatures), [`ImportError::UnknownKey`] (no
    /// signature names a trusted key), [`ImportError::BadSignature`] (a trusted key's signature
    /// does not match: the manifest was altered or signed by another key of that name),
    /// [`ImportError::Unreadable`] and [`ImportError::Manifest`].
    pub fn verify(&self, envelope: &Envelope) -> Result<(Manifest, String), ImportError> {
        if envelope.signatures.is_empty() {
            return Err(ImportError::Unsigned);
        }
        let payload = envelope.payload_bytes()?;
        let message = pae(&envelope.payload_type, &payload);
        let mut mis_signed_by = None;
        for signature in &envelope.signatures {
            let candidates: Vec<(&String, &VerifyingKey)> = if signature.keyid.is_empty() {
                self.keys.iter().collect()
            } else {
                self.keys
                    .get_key_value(&signature.keyid)
                    .into_iter()
                    .collect()
            };
            for (id, key) in candidates {
                let verified = decode_base64(&signature.sig)
                    .ok()
                    .and_then(|bytes| Signature::from_slice(&bytes).ok())
                    .is_some_and(|sig| key.verify_strict(&message, &sig).is_ok());
                if verified {
                    return self.manifest_of(envelope, &payload, id);
                }
                if !signature.keyid.is_empty() {
                    mis_signed_by.get_or_insert_with(|| id.clone());
                }
            }
        }
        match mis_signed_by {
            Some(key_id) => Err(ImportError::BadSignature { key_id }),
            None => Err(ImportError::UnknownKey {
                key_ids: envelope
                    .key_ids()
                    .into_iter()
                    .filter(|id| !id.is_empty())
                    .collect(),
                trusted: self.ids(),
            }),
        }
    }

    fn manifest_of(
        &self,
        envelope: &Envelope,
        payload: &[u8],
        key_id: &str,
    ) -> Result<(Manifest, String), ImportError> {
        if envelope.payload_type != PAYLOAD_TYPE {
            return Err(EnvelopeError::PayloadType {
                found: envelope.payload_type.clone(),
            }
            .into());
        }
        let manifest: Manifest =
            serde_json::from_slice(payload).map_err(EnvelopeError::Manifest)?;
        manifest.check()?;
        Ok((manifest, key_id.to_owned()))
    }
}

/// Why a key could not be made, read or used.
#[derive(Debug, thiserror::Error)]
pub enum SigningError {
    /// A key name that cannot be a key id.
    #[error(
        "{name:?} cannot be a key id: use 1 to 64 letters, digits, `.`, `_` and `-`, starting with a letter or digit"
    )]
    InvalidKeyId {
        /// The name.
        name: String,
    },
    /// `keygen` would overwrite a key file.
    #[error(
        "{} already exists; keys are never overwritten: pick another name, or move the old key away first",
        path.display()
    )]
    KeyExists {
        /// The file.
        path: PathBuf,
    },
    /// A private key file that others can read.
    #[error(
        "{} is readable by its group or others (mode {mode:04o}); a firmware signing key must be private: run `chmod 600 {}` (and consider the key compromised if others could read it)",
        path.display(), path.display()
    )]
    LoosePermissions {
        /// The key file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// A file that is not an Ed25519 private key.
    #[error(
        "{} is not an Ed25519 private key in PKCS#8 PEM ({detail}); use a .key file made by `iotmc-gateway firmware keygen`",
        path.display()
    )]
    NotAPrivateKey {
        /// The file.
        path: PathBuf,
        /// What the parser said.
        detail: String,
    },
    /// A file that is not an Ed25519 public key.
    #[error(
        "{} is not an Ed25519 public key in SubjectPublicKeyInfo PEM ({detail}); replace it with the vendor's .pub file made by `iotmc-gateway firmware keygen`, or remove it",
        path.display()
    )]
    NotAPublicKey {
        /// The file.
        path: PathBuf,
        /// What the parser said.
        detail: String,
    },
    /// The trust directory does not exist.
    #[error(
        "the firmware trust directory {} ([trust] firmware_keys) does not exist; create it and copy the vendors' public keys (<key id>.pub, made by `iotmc-gateway firmware keygen`) into it",
        dir.display()
    )]
    NoKeyDir {
        /// The directory.
        dir: PathBuf,
    },
    /// The trust directory holds no key.
    #[error(
        "the firmware trust directory {} ([trust] firmware_keys) holds no *.pub key, so every image would be refused; copy the vendors' public keys (<key id>.pub, made by `iotmc-gateway firmware keygen`) into it",
        dir.display()
    )]
    EmptyKeyDir {
        /// The directory.
        dir: PathBuf,
    },
    /// The manifest to sign makes no sense.
    #[error("the manifest cannot be signed: {0}")]
    Manifest(#[from] ManifestError),
    /// The manifest could not be encoded.
    #[error("the manifest cannot be encoded as JSON: {0}")]
    Encode(#[from] serde_json::Error),
    /// Reading or writing a key file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// Whether `id` can be a key id (and so a key file's stem): 1 to 64 ASCII letters, digits, `.`,
/// `_` and `-`, starting with a letter or digit.
pub fn is_key_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// The key id of a key file: its stem.
fn key_id_of(path: &Path) -> Result<String, SigningError> {
    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("");
    if is_key_id(stem) {
        Ok(stem.to_owned())
    } else {
        Err(SigningError::InvalidKeyId {
            name: path.display().to_string(),
        })
    }
}

fn read_key_file(path: &Path) -> Result<String, SigningError> {
    let io = |source| SigningError::Io {
        path: path.to_owned(),
        source,
    };
    let mut text = String::new();
    std::fs::File::open(path)
        .map_err(io)?
        .take(MAX_KEY_FILE_SIZE)
        .read_to_string(&mut text)
        .map_err(io)?;
    Ok(text)
}

/// Generates a key pair: `<dir>/<name>.key` (PKCS#8 PEM, mode 0600) and `<dir>/<name>.pub`
/// (SubjectPublicKeyInfo PEM). Refuses to overwrite. Returns (private, public) paths.
pub fn generate(dir: &Path, name: &str) -> Result<(PathBuf, PathBuf), SigningError> {
    if !is_key_id(name) {
        return Err(SigningError::InvalidKeyId {
            name: name.to_owned(),
        });
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|source| SigningError::Io {
            path: dir.to_owned(),
            source,
        })?;
    let private = dir.join(format!("{name}.key"));
    let public = dir.join(format!("{name}.pub"));
    for path in [&private, &public] {
        if path.symlink_metadata().is_ok() {
            return Err(SigningError::KeyExists { path: path.clone() });
        }
    }

    let mut secret = [0u8; 32];
    rand::rng().fill_bytes(&mut secret);
    let key = SigningKey::from_bytes(&secret);
    let pkcs8_error = |e: &dyn std::fmt::Display| SigningError::NotAPrivateKey {
        path: private.clone(),
        detail: format!("cannot encode the new key: {e}"),
    };
    let private_pem = key
        .to_pkcs8_pem(LineEnding::LF)
        .map_err(|e| pkcs8_error(&e))?;
    let public_pem = key
        .verifying_key()
        .to_public_key_pem(LineEnding::LF)
        .map_err(|e| pkcs8_error(&e))?;

    write_new(&private, private_pem.as_bytes(), 0o600)?;
    if let Err(e) = write_new(&public, public_pem.as_bytes(), 0o644) {
        // Leave no half pair behind.
        let _ = std::fs::remove_file(&private);
        return Err(e);
    }
    Ok((private, public))
}

/// Writes a file that must not exist yet, with `mode`, and syncs it.
fn write_new(path: &Path, bytes: &[u8], mode: u32) -> Result<(), SigningError> {
    let io = |source: std::io::Error| {
        if source.kind() == std::io::ErrorKind::AlreadyExists {
            SigningError::KeyExists {
                path: path.to_owned(),
            }
        } else {
            SigningError::Io {
                path: path.to_owned(),
                source,
            }
        }
    };
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(io)?;
    file.write_all(bytes).map_err(io)?;
    file.sync_all().map_err(io)
}

/// Reads a private key file, refusing one that group or others can read.
pub fn read_signing_key(key_file: &Path) -> Result<(SigningKey, String), SigningError> {
    let key_id = key_id_of(key_file)?;
    let metadata = std::fs::metadata(key_file).map_err(|source| SigningError::Io {
        path: key_file.to_owned(),
        source,
    })?;
    let mode = metadata.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(SigningError::LoosePermissions {
            path: key_file.to_owned(),
            mode,
        });
    }
    let pem = read_key_file(key_file)?;
    let key = SigningKey::from_pkcs8_pem(&pem).map_err(|e| SigningError::NotAPrivateKey {
        path: key_file.to_owned(),
        detail: e.to_string(),
    })?;
    Ok((key, key_id))
}

/// Signs a manifest with the private key in `key_file`; the key id is the file stem. Refuses a
/// key file others can read, and a manifest that fails [`Manifest::check`].
pub fn sign(key_file: &Path, manifest: &Manifest) -> Result<Envelope, SigningError> {
    let (key, key_id) = read_signing_key(key_file)?;
    sign_with_key(&key, &key_id, manifest)
}

/// Signs a manifest with a key in memory, naming it `key_id` (for tests and tools; the CLI uses
/// [`sign`]). Refuses a manifest that fails [`Manifest::check`].
pub fn sign_with_key(
    key: &SigningKey,
    key_id: &str,
    manifest: &Manifest,
) -> Result<Envelope, SigningError> {
    manifest.check()?;
    let payload = manifest.to_payload()?;
    let signature = key.sign(&pae(PAYLOAD_TYPE, &payload));
    Ok(Envelope {
        payload_type: PAYLOAD_TYPE.to_owned(),
        payload: encode_base64(&payload),
        signatures: vec![EnvelopeSignature {
            keyid: key_id.to_owned(),
            sig: encode_base64(&signature.to_bytes()),
        }],
    })
}

#[cfg(test)]
mod tests;

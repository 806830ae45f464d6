//! The image store: images content-addressed by SHA-256 under `<state_dir>/firmware/images/`,
//! each with its signed manifest.
//!
//! SKELETON (issue 6): types and signatures are the contract the engine builds on; bodies are
//! filled in by the image-store work.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use super::manifest::Manifest;

/// One image in the store, with its checked manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredImage {
    /// SHA-256 of the image (also its name in the store).
    pub sha256: [u8; 32],
    /// The manifest, signature checked.
    pub manifest: Manifest,
    /// The key that signed it.
    pub key_id: String,
    /// When it was imported.
    pub imported_at: SystemTime,
}

impl StoredImage {
    /// The SHA-256 as 64 lowercase hex digits.
    pub fn sha256_hex(&self) -> String {
        hex(&self.sha256)
    }

    /// Whether the image is for devices of this profile.
    pub fn targets(&self, profile_id: &str) -> bool {
        self.manifest.targets.iter().any(|t| t == profile_id)
    }
}

/// Lowercase hex of bytes.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// Why the store failed (after import: reading, listing).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No image with this SHA-256 in the store.
    #[error(
        "no firmware image with SHA-256 {sha256} in the store; import it with `iotmc-gateway firmware import`"
    )]
    Unknown {
        /// The hash asked for.
        sha256: String,
    },
    /// The stored bytes no longer hash to their name.
    #[error("the stored image {} is corrupted (its SHA-256 is now {actual}); import it again", path.display())]
    Corrupted {
        /// The file.
        path: PathBuf,
        /// What the bytes hash to now.
        actual: String,
    },
    /// Reading or writing failed.
    #[error("firmware store {}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// What an import is checked against besides the signature.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportCheck {
    /// Largest image accepted (`[firmware] max_image_size`).
    pub max_image_size: u64,
    /// The profiles the gateway knows, with their `firmware.max_image_size`; profiles whose
    /// firmware method is `none` are left out.
    pub profiles: std::collections::BTreeMap<String, u64>,
}

/// Why an import was refused. Each kind names the file, what is wrong and what to do.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// Placeholder until the store work lands.
    #[error("{0}")]
    Other(String),
}

/// The image store. Cheap to share behind an `Arc`; every method is safe to call from several
/// threads (the running gateway reads while `firmware import` writes).
#[derive(Debug)]
pub struct ImageStore {
    dir: PathBuf,
}

impl ImageStore {
    /// The store under `state_dir` (created if missing).
    pub fn open(state_dir: &Path) -> Result<Self, StoreError> {
        let dir = state_dir.join("firmware").join("images");
        std::fs::create_dir_all(&dir).map_err(|source| StoreError::Io {
            path: dir.clone(),
            source,
        })?;
        Ok(Self { dir })
    }

    /// The store's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Every image in the store whose manifest still verifies against `trust`; the others are
    /// logged (naming the file and why) and left out.
    pub fn list(
        &self,
        trust: &super::signing::TrustedKeys,
    ) -> Result<Vec<StoredImage>, StoreError> {
        let _ = trust;
        todo!("image store")
    }

    /// Checks an image and its envelope and, when everything holds, adds both to the store.
    /// Refused before anything is written: unsigned, signed by an unknown key, mis-signed,
    /// manifest unreadable, size or SHA-256 not matching the bytes (corrupted), larger than
    /// `check.max_image_size` or a target profile's limit (oversize), no known target profile
    /// (wrong target). Importing an image already in the store is not an error.
    pub fn import(
        &self,
        image: &[u8],
        envelope: &super::manifest::Envelope,
        trust: &super::signing::TrustedKeys,
        check: &ImportCheck,
    ) -> Result<StoredImage, ImportError> {
        let _ = (image, envelope, trust, check);
        todo!("image store")
    }

    /// Reads an image and checks its SHA-256 against its name.
    pub fn read(&self, sha256: &[u8; 32]) -> Result<Arc<[u8]>, StoreError> {
        let _ = sha256;
        todo!("image store")
    }
}

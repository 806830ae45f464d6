//! The image store: images content-addressed by SHA-256 under `<state_dir>/firmware/images/`,
//! each with its signed manifest.
//!
//! Layout: `<sha hex>.bin` (the image) and `<sha hex>.dsse.json` (its DSSE envelope). An import
//! writes each to a temporary file in the same directory, syncs it and renames it into place,
//! the envelope LAST: an image is listed only once its envelope exists, so a crash mid-import
//! never shows a half-written image. The store is plain files, so `iotmc-gateway firmware
//! import` adds images while the gateway runs; the gateway finds them on its next [`list`].
//!
//! Every refusal happens before a byte is written (see [`ImportError`]).
//!
//! [`list`]: ImageStore::list

use std::fs::File;
use std::io::{Read as _, Write as _};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use sha2::{Digest as _, Sha256};

use super::manifest::{Envelope, EnvelopeError, Manifest, ManifestError};
use super::signing::TrustedKeys;

mod import;

use import::check_bytes;
pub use import::{ImportCheck, ImportError};

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

/// A SHA-256 from 64 hex digits (either case); `None` for anything else.
pub fn parse_sha256(text: &str) -> Option<[u8; 32]> {
    let digits = text.as_bytes();
    if digits.len() != 64 {
        return None;
    }
    let nibble = |b: u8| (b as char).to_digit(16);
    let mut out = [0u8; 32];
    for (byte, pair) in out.iter_mut().zip(digits.chunks_exact(2)) {
        let high = u8::try_from(nibble(pair[0])?).ok()?;
        let low = u8::try_from(nibble(pair[1])?).ok()?;
        *byte = (high << 4) | low;
    }
    Some(out)
}

/// SHA-256 of bytes.
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// Size and SHA-256 of a file, read in blocks (the file is never held in memory whole).
pub fn hash_file(path: &Path) -> std::io::Result<(u64, [u8; 32])> {
    let mut file = File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 64 * 1024];
    let mut size = 0u64;
    loop {
        let n = file.read(&mut buffer)?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
        size += n as u64;
    }
    Ok((size, hasher.finalize().into()))
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

/// Why a stored entry is left out of [`ImageStore::list`].
#[derive(Debug, thiserror::Error)]
enum EntryError {
    #[error("cannot read it: {0}")]
    Io(std::io::Error),
    #[error("{0}")]
    Envelope(EnvelopeError),
    #[error("its envelope no longer verifies: {0}")]
    Verify(ImportError),
    #[error("its manifest names SHA-256 {0}, not the file's name")]
    WrongName(String),
    #[error("its image {} is missing", .0.display())]
    NoImage(PathBuf),
    #[error("its image {} is {actual} bytes, the manifest says {expected}", path.display())]
    ImageSize {
        path: PathBuf,
        actual: u64,
        expected: u64,
    },
}

/// The image store. Cheap to share behind an `Arc`; every method is safe to call from several
/// threads (the running gateway reads while `firmware import` writes).
#[derive(Debug)]
pub struct ImageStore {
    dir: PathBuf,
}

const BIN: &str = ".bin";
const ENVELOPE: &str = ".dsse.json";

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

    fn path(&self, sha256: &[u8; 32], suffix: &str) -> PathBuf {
        self.dir.join(format!("{}{suffix}", hex(sha256)))
    }

    /// Every image in the store whose manifest still verifies against `trust`; the others are
    /// logged (naming the file and why) and left out. Sorted by release date, then version.
    /// Checks each image's size, not its bytes ([`ImageStore::read`] re-hashes).
    pub fn list(&self, trust: &TrustedKeys) -> Result<Vec<StoredImage>, StoreError> {
        let entries = std::fs::read_dir(&self.dir).map_err(|source| StoreError::Io {
            path: self.dir.clone(),
            source,
        })?;
        let mut images = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|source| StoreError::Io {
                path: self.dir.clone(),
                source,
            })?;
            let name = entry.file_name();
            let Some(sha256) = name
                .to_str()
                .and_then(|n| n.strip_suffix(ENVELOPE))
                .filter(|hex| hex.bytes().all(|b| !b.is_ascii_uppercase()))
                .and_then(parse_sha256)
            else {
                continue;
            };
            match self.entry(&sha256, trust) {
                Ok(Some(image)) => images.push(image),
                Ok(None) => {} // removed since read_dir
                Err(e) => tracing::warn!(
                    file = %entry.path().display(),
                    problem = %e,
                    "a stored firmware image is left out; import it again or remove it"
                ),
            }
        }
        images.sort_by(|a, b| {
            (&a.manifest.release_date, &a.manifest.version, a.sha256).cmp(&(
                &b.manifest.release_date,
                &b.manifest.version,
                b.sha256,
            ))
        });
        Ok(images)
    }

    /// The image with this SHA-256, if it is in the store and its manifest verifies against
    /// `trust` (one that does not is logged and `None`, as [`ImageStore::list`] leaves it out).
    pub fn get(
        &self,
        sha256: &[u8; 32],
        trust: &TrustedKeys,
    ) -> Result<Option<StoredImage>, StoreError> {
        match self.entry(sha256, trust) {
            Ok(image) => Ok(image),
            Err(EntryError::Io(source)) => Err(StoreError::Io {
                path: self.path(sha256, ENVELOPE),
                source,
            }),
            Err(e) => {
                tracing::warn!(
                    file = %self.path(sha256, ENVELOPE).display(),
                    problem = %e,
                    "a stored firmware image is left out; import it again or remove it"
                );
                Ok(None)
            }
        }
    }

    /// One stored entry, checked; `None` when its envelope does not exist.
    fn entry(
        &self,
        sha256: &[u8; 32],
        trust: &TrustedKeys,
    ) -> Result<Option<StoredImage>, EntryError> {
        let envelope_path = self.path(sha256, ENVELOPE);
        let (bytes, metadata) = match read_bounded(&envelope_path) {
            Ok(read) => read,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(EntryError::Io(e)),
        };
        let envelope = Envelope::from_json(&bytes).map_err(EntryError::Envelope)?;
        let (manifest, key_id) = trust.verify(&envelope).map_err(EntryError::Verify)?;
        if manifest.sha256 != hex(sha256) {
            return Err(EntryError::WrongName(manifest.sha256));
        }
        let bin = self.path(sha256, BIN);
        let size = match std::fs::metadata(&bin) {
            Ok(m) => m.len(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(EntryError::NoImage(bin));
            }
            Err(e) => return Err(EntryError::Io(e)),
        };
        if size != manifest.size {
            return Err(EntryError::ImageSize {
                path: bin,
                actual: size,
                expected: manifest.size,
            });
        }
        Ok(Some(StoredImage {
            sha256: *sha256,
            manifest,
            key_id,
            imported_at: metadata.modified().unwrap_or(SystemTime::UNIX_EPOCH),
        }))
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
        let (manifest, key_id) = Self::admit(envelope, trust, check)?;
        check_bytes(&manifest, image)?;
        self.store(image, envelope, manifest, key_id)
    }

    /// [`ImageStore::import`] of an image file: everything about the envelope is checked before
    /// the image is read, and an image whose file size is not the manifest's is refused without
    /// holding it in memory.
    pub fn import_file(
        &self,
        image: &Path,
        envelope: &Envelope,
        trust: &TrustedKeys,
        check: &ImportCheck,
    ) -> Result<StoredImage, ImportError> {
        let (manifest, key_id) = Self::admit(envelope, trust, check)?;
        let read_error = |source| ImportError::ReadImage {
            path: image.to_owned(),
            source,
        };
        let size = std::fs::metadata(image).map_err(read_error)?.len();
        if size != manifest.size {
            let (actual_size, actual) = hash_file(image).map_err(read_error)?;
            return Err(ImportError::Corrupted {
                expected_sha256: manifest.sha256,
                actual_sha256: hex(&actual),
                expected_size: manifest.size,
                actual_size,
            });
        }
        // Bounded by the manifest's size, which `admit` bounded by the limits.
        let mut bytes = Vec::with_capacity(usize::try_from(manifest.size).unwrap_or(0));
        File::open(image)
            .and_then(|f| {
                f.take(manifest.size.saturating_add(1))
                    .read_to_end(&mut bytes)
            })
            .map_err(read_error)?;
        check_bytes(&manifest, &bytes)?;
        self.store(&bytes, envelope, manifest, key_id)
    }

    /// Everything about an import that does not need the image's bytes.
    fn admit(
        envelope: &Envelope,
        trust: &TrustedKeys,
        check: &ImportCheck,
    ) -> Result<(Manifest, String), ImportError> {
        let (manifest, key_id) = trust.verify(envelope)?;
        check.admit(&manifest)?;
        Ok((manifest, key_id))
    }

    /// Writes a checked image and its envelope: the image first, the envelope last.
    fn store(
        &self,
        image: &[u8],
        envelope: &Envelope,
        manifest: Manifest,
        key_id: String,
    ) -> Result<StoredImage, ImportError> {
        let Some(sha256) = parse_sha256(&manifest.sha256) else {
            // `check_bytes` compared it with a hash we computed; it cannot be anything else.
            return Err(ManifestError::Sha256 {
                value: manifest.sha256,
            }
            .into());
        };
        let envelope_json = format!("{}\n", envelope.to_json_pretty());
        let envelope_path = self.path(&sha256, ENVELOPE);
        let bin_path = self.path(&sha256, BIN);
        let stored_envelope = std::fs::read(&envelope_path).ok();
        if let Some(stored) = &stored_envelope
            && stored.as_slice() != envelope_json.as_bytes()
            && let Ok(stored_manifest) =
                Envelope::from_json(stored).and_then(|e| e.unverified_manifest())
            && stored_manifest != manifest
        {
            return Err(ImportError::ManifestConflict {
                sha256: manifest.sha256,
                stored_version: stored_manifest.version,
                stored_targets: stored_manifest.targets,
            });
        }
        let unchanged = stored_envelope.is_some_and(|b| b == envelope_json.as_bytes())
            && std::fs::metadata(&bin_path).is_ok_and(|m| m.len() == manifest.size);
        if !unchanged {
            self.write_atomically(&bin_path, image)?;
            self.write_atomically(&envelope_path, envelope_json.as_bytes())?;
            let dir = File::open(&self.dir).and_then(|d| d.sync_all());
            dir.map_err(|source| StoreError::Io {
                path: self.dir.clone(),
                source,
            })?;
        }
        let imported_at = std::fs::metadata(&envelope_path)
            .and_then(|m| m.modified())
            .map_err(|source| StoreError::Io {
                path: envelope_path.clone(),
                source,
            })?;
        Ok(StoredImage {
            sha256,
            manifest,
            key_id,
            imported_at,
        })
    }

    /// Writes `bytes` to a temporary file in the store's directory, syncs it, makes it readable
    /// by the gateway's user (the CLI may run as another), and renames it to `path`.
    fn write_atomically(&self, path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
        let io = |source| StoreError::Io {
            path: path.to_owned(),
            source,
        };
        let mut file = tempfile::Builder::new()
            .prefix(".import-")
            .suffix(".tmp")
            .tempfile_in(&self.dir)
            .map_err(io)?;
        file.write_all(bytes).map_err(io)?;
        file.as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o644))
            .map_err(io)?;
        file.as_file().sync_all().map_err(io)?;
        file.persist(path).map_err(|e| io(e.error))?;
        Ok(())
    }

    /// Reads an image and checks its SHA-256 against its name.
    pub fn read(&self, sha256: &[u8; 32]) -> Result<Arc<[u8]>, StoreError> {
        let path = self.path(sha256, BIN);
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(StoreError::Unknown {
                    sha256: hex(sha256),
                });
            }
            Err(source) => return Err(StoreError::Io { path, source }),
        };
        let actual = self::sha256(&bytes);
        if &actual != sha256 {
            return Err(StoreError::Corrupted {
                path,
                actual: hex(&actual),
            });
        }
        Ok(bytes.into())
    }

    /// Removes an image: its envelope first (so it is no longer listed), then its bytes.
    /// Returns whether it was there.
    pub fn remove(&self, sha256: &[u8; 32]) -> Result<bool, StoreError> {
        let mut found = false;
        for path in [self.path(sha256, ENVELOPE), self.path(sha256, BIN)] {
            match std::fs::remove_file(&path) {
                Ok(()) => found = true,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => return Err(StoreError::Io { path, source }),
            }
        }
        Ok(found)
    }
}

/// Reads an envelope file, at most one byte past the envelope limit (so an oversized file is
/// refused by [`Envelope::from_json`] without being read whole).
fn read_bounded(path: &Path) -> std::io::Result<(Vec<u8>, std::fs::Metadata)> {
    let file = File::open(path)?;
    let metadata = file.metadata()?;
    let mut bytes = Vec::new();
    file.take(super::manifest::MAX_ENVELOPE_SIZE as u64 + 1)
        .read_to_end(&mut bytes)?;
    Ok((bytes, metadata))
}

#[cfg(test)]
mod tests;

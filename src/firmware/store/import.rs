//! What an import is checked against, and why one is refused.

use std::path::PathBuf;

use super::{StoreError, hex, sha256};
use crate::firmware::manifest::{EnvelopeError, Manifest, ManifestError};

/// What an import is checked against besides the signature.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportCheck {
    /// Largest image accepted (`[firmware] max_image_size`).
    pub max_image_size: u64,
    /// The profiles the gateway knows, with their `firmware.max_image_size`; profiles whose
    /// firmware method is `none` are left out.
    pub profiles: std::collections::BTreeMap<String, u64>,
}

impl ImportCheck {
    /// The check for a gateway: its `[firmware] max_image_size` and the profiles of its catalog
    /// that declare a firmware method.
    pub fn for_catalog(max_image_size: u64, catalog: &crate::profile::Catalog) -> Self {
        Self {
            max_image_size,
            profiles: catalog
                .iter()
                .filter(|p| p.firmware.is_supported())
                .map(|p| (p.id.clone(), p.firmware.max_image_size))
                .collect(),
        }
    }

    /// Whether the manifest names a known target and its size fits every limit: the gateway's,
    /// and that of each target profile the gateway knows (an image for two profiles must fit the
    /// smaller).
    pub fn admit(&self, manifest: &Manifest) -> Result<(), ImportError> {
        let known: Vec<(&String, u64)> = manifest
            .targets
            .iter()
            .filter_map(|t| self.profiles.get(t).map(|limit| (t, *limit)))
            .collect();
        if known.is_empty() {
            return Err(ImportError::WrongTarget {
                targets: manifest.targets.clone(),
                known: self.profiles.keys().cloned().collect(),
            });
        }
        if manifest.size > self.max_image_size {
            return Err(ImportError::Oversize {
                size: manifest.size,
                limit: self.max_image_size,
                limit_source: "`[firmware] max_image_size` in the gateway config".to_owned(),
            });
        }
        if let Some((id, limit)) = known
            .into_iter()
            .filter(|(_, limit)| manifest.size > *limit)
            .min_by_key(|(_, limit)| *limit)
        {
            return Err(ImportError::Oversize {
                size: manifest.size,
                limit,
                limit_source: format!("`firmware.max_image_size` of the profile `{id}`"),
            });
        }
        Ok(())
    }
}

/// Why an import was refused. Each kind says what is wrong and what to do; the CLI prefixes it
/// with the image's file.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The envelope has no signature.
    #[error(
        "refused: the image is unsigned (its envelope carries no signature); sign it with `iotmc-gateway firmware sign --key VENDOR.key ...` and import it with the signed .dsse.json"
    )]
    Unsigned,
    /// No signature names a trusted key.
    #[error(
        "refused: the manifest is signed by {}, which is not a trusted firmware key (trusted: {}); copy the vendor's <key id>.pub into the gateway's `[trust] firmware_keys` directory, or ask the vendor which key signed it",
        list_or(key_ids, "a key without an id"),
        list_or(trusted, "none")
    )]
    UnknownKey {
        /// The key ids the envelope names.
        key_ids: Vec<String>,
        /// The key ids the gateway trusts.
        trusted: Vec<String>,
    },
    /// A trusted key's signature does not match.
    #[error(
        "refused: the signature by key `{key_id}` does not match the manifest: the manifest was altered after signing, or signed by another key of that name; get the vendor's original .dsse.json"
    )]
    BadSignature {
        /// The trusted key the signature names.
        key_id: String,
    },
    /// The store holds the same bytes under another signed manifest.
    #[error(
        "refused: the store already holds this image (SHA-256 {sha256}) as version {stored_version} for {}, under another manifest; one image has one manifest: sign a single manifest listing every target profile, or remove the stored one first (`{sha256}.bin` and `{sha256}.dsse.json` in the store, with the gateway stopped)",
        stored_targets.join(", ")
    )]
    ManifestConflict {
        /// The image's SHA-256.
        sha256: String,
        /// Version in the stored manifest.
        stored_version: String,
        /// Targets of the stored manifest.
        stored_targets: Vec<String>,
    },
    /// The envelope or its manifest cannot be read.
    #[error("refused: the manifest cannot be read: {0}")]
    Unreadable(#[from] EnvelopeError),
    /// The manifest is signed but makes no sense.
    #[error(
        "refused: the manifest is not acceptable: {0}; ask the vendor for a corrected, re-signed manifest"
    )]
    Manifest(#[from] ManifestError),
    /// The bytes are not those the manifest describes.
    #[error(
        "refused: the image is corrupted: it is {actual_size} bytes with SHA-256 {actual_sha256}, but its manifest says {expected_size} bytes with SHA-256 {expected_sha256}; download the image again (or, if these are the intended bytes, sign them anew)"
    )]
    Corrupted {
        /// SHA-256 the manifest names.
        expected_sha256: String,
        /// SHA-256 of the bytes.
        actual_sha256: String,
        /// Size the manifest names.
        expected_size: u64,
        /// Size of the bytes.
        actual_size: u64,
    },
    /// Larger than a limit.
    #[error(
        "refused: the image is too large: {size} bytes, but {limit_source} allows at most {limit}; build a smaller image, or raise that limit if the device's flash allows"
    )]
    Oversize {
        /// The image's size.
        size: u64,
        /// The limit it exceeds.
        limit: u64,
        /// Where the limit is set.
        limit_source: String,
    },
    /// No target is a profile with firmware support here.
    #[error(
        "refused: the image is for {}, and none of these is a profile with firmware support on this gateway (known: {}); check the manifest's targets, or add the profile to `[gateway] profile_dirs`",
        list_or(targets, "no profile"),
        list_or(known, "none")
    )]
    WrongTarget {
        /// The manifest's targets.
        targets: Vec<String>,
        /// The profiles with firmware support the gateway knows.
        known: Vec<String>,
    },
    /// The image file cannot be read.
    #[error("cannot read the image {}: {source}", path.display())]
    ReadImage {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Writing to the store failed (nothing is listed).
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn list_or(items: &[String], empty: &str) -> String {
    if items.is_empty() {
        empty.to_owned()
    } else {
        items
            .iter()
            .map(|i| format!("`{i}`"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Whether `image` is what `manifest` describes.
pub(super) fn check_bytes(manifest: &Manifest, image: &[u8]) -> Result<(), ImportError> {
    let actual = hex(&sha256(image));
    if image.len() as u64 != manifest.size || actual != manifest.sha256 {
        return Err(ImportError::Corrupted {
            expected_sha256: manifest.sha256.clone(),
            actual_sha256: actual,
            expected_size: manifest.size,
            actual_size: image.len() as u64,
        });
    }
    Ok(())
}

//! The demo's firmware: a throw-away vendor key the demo gateway trusts, and signed images of a
//! newer version for each simulated device that takes firmware (plus the running version of the
//! one-bank Tasmota plug, which a rollback re-installs), imported into the store before the
//! gateway starts, so a controller sees FirmwareAvailable at once and can schedule an update.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use sha2::{Digest as _, Sha256};

use crate::firmware::manifest::Manifest;
use crate::firmware::signing::{self, TrustedKeys};
use crate::firmware::store::{ImageStore, ImportCheck, hex};

/// Size of each demo image (the simulators take up to 1 MiB).
const IMAGE_SIZE: usize = 64 * 1024;

/// `(profile, version, release date)` of the demo images. The simulators boot images that start
/// with `SIMFW:<version>\n`.
const IMAGES: &[(&str, &str, &str)] = &[
    ("iotmc-demo-controller", "1.1.0", "2026-11-02"),
    ("iotmc-mqtt5-controller", "1.1.0", "2026-11-02"),
    ("athom-plug-v2-tasmota", "13.1.0", "2026-07-15"),
    ("athom-plug-v2-tasmota", "13.2.0", "2026-11-02"),
];

/// Makes the demo vendor key and imports the demo images. Returns the directory of trusted
/// public keys for `[trust] firmware_keys`.
pub(super) fn prepare(state_dir: &Path) -> anyhow::Result<PathBuf> {
    let keys = state_dir.join("demo-firmware-keys");
    let trusted = keys.join("trusted");
    std::fs::create_dir_all(&trusted)
        .with_context(|| format!("cannot create {}", trusted.display()))?;
    let key = keys.join("iotmc-demo.key");
    if !key.is_file() {
        let (_, public) = signing::generate(&keys, "iotmc-demo")?;
        std::fs::copy(&public, trusted.join("iotmc-demo.pub"))
            .with_context(|| format!("cannot copy {}", public.display()))?;
    }
    let trust = TrustedKeys::load_dir(&trusted).map_err(|e| anyhow::anyhow!(e))?;
    let store = ImageStore::open(state_dir)?;
    let check = ImportCheck {
        max_image_size: crate::config::DEFAULT_MAX_IMAGE_SIZE,
        profiles: IMAGES
            .iter()
            .map(|(profile, _, _)| ((*profile).to_owned(), 1024 * 1024))
            .collect::<BTreeMap<String, u64>>(),
    };
    for (profile, version, date) in IMAGES {
        let bytes = image(profile, version);
        let manifest = Manifest {
            targets: vec![(*profile).to_owned()],
            version: (*version).to_owned(),
            release_date: (*date).to_owned(),
            size: bytes.len() as u64,
            sha256: hex(&Sha256::digest(&bytes)),
            emergency: false,
            min_hardware: None,
            min_bootloader: None,
        };
        let envelope = signing::sign(&key, &manifest)?;
        store
            .import(&bytes, &envelope, &trust, &check)
            .with_context(|| format!("demo image {profile} {version}"))?;
    }
    Ok(trusted)
}

/// A simulated image: its header, then filler that differs per profile (two profiles' images
/// of one version are different images, each with its own manifest).
fn image(profile: &str, version: &str) -> Vec<u8> {
    let mut bytes = format!("SIMFW:{version}\n").into_bytes();
    let mut x: u32 = profile
        .bytes()
        .fold(0x1234_5678, |h: u32, b| h.rotate_left(5) ^ u32::from(b))
        | 1;
    while bytes.len() < IMAGE_SIZE {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        bytes.push(x.to_le_bytes()[0]);
    }
    bytes
}

//! Signed simulated images: a vendor key pair (its public half alone in the trust directory the
//! gateway reads), `SIMFW:` images with their manifests, and import into a state directory's
//! image store, as `iotmc-gateway firmware import` does.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use iotmc_adapter::Profile;
use iotmc_gateway::firmware::manifest::Manifest;
use iotmc_gateway::firmware::signing::{self, TrustedKeys};
use iotmc_gateway::firmware::store::{ImageStore, ImportCheck, hex};
use sha2::{Digest as _, Sha256};

/// Profiles of the two simulated two-bank devices.
pub(crate) const MODBUS_PROFILE: &str = "iotmc-demo-controller";
/// The generic MQTT 5 controller's profile.
pub(crate) const MQTT_PROFILE: &str = "iotmc-mqtt5-controller";

/// A vendor's signing key and the trust directory holding only its public key.
#[derive(Debug)]
pub(crate) struct Vendor {
    key: PathBuf,
    /// `[trust] firmware_keys`.
    pub(crate) trust_dir: PathBuf,
}

impl Vendor {
    /// Generates the key pair under `dir/vendor-keys` and trusts it in `dir/firmware-trust`.
    pub(crate) fn new(dir: &Path) -> Self {
        let keys = dir.join("vendor-keys");
        std::fs::create_dir_all(&keys).unwrap();
        let (key, public) = signing::generate(&keys, "iotmc-test-vendor")
            .unwrap_or_else(|e| panic!("generating the vendor key: {e}"));
        let trust_dir = dir.join("firmware-trust");
        std::fs::create_dir_all(&trust_dir).unwrap();
        std::fs::copy(&public, trust_dir.join(public.file_name().unwrap())).unwrap();
        Self { key, trust_dir }
    }

    /// Signs `image`'s manifest and imports both into the store under `state_dir`.
    pub(crate) fn import(&self, state_dir: &Path, image: &SimImage) -> Imported {
        self.import_checked(state_dir, image, &import_check())
    }

    /// Like [`Vendor::import`], checked against `check` instead of the two simulated profiles.
    pub(crate) fn import_checked(
        &self,
        state_dir: &Path,
        image: &SimImage,
        check: &ImportCheck,
    ) -> Imported {
        let envelope = signing::sign(&self.key, &image.manifest)
            .unwrap_or_else(|e| panic!("signing {}: {e}", image.manifest.version));
        let trust = TrustedKeys::load_dir(&self.trust_dir)
            .unwrap_or_else(|e| panic!("loading the trust directory: {e}"));
        let store = ImageStore::open(state_dir).unwrap_or_else(|e| panic!("{e}"));
        let stored = store
            .import(&image.bytes, &envelope, &trust, check)
            .unwrap_or_else(|e| panic!("importing {}: {e}", image.manifest.version));
        assert_eq!(stored.sha256_hex(), image.manifest.sha256);
        Imported {
            sha256: image.manifest.sha256.clone(),
            version: image.manifest.version.clone(),
            size: image.manifest.size,
            release_date: image.manifest.release_date.clone(),
        }
    }
}

/// What the import checks besides the signature: the two simulated profiles and their limits,
/// read from the repository's profile files.
fn import_check() -> ImportCheck {
    let profiles = [
        (MODBUS_PROFILE, "modbus/iotmc-demo-controller.toml"),
        (MQTT_PROFILE, "mqtt/iotmc-mqtt5-controller.toml"),
    ]
    .into_iter()
    .map(|(id, file)| {
        let path = super::profile_dir().join(file);
        let text = std::fs::read_to_string(&path).unwrap();
        let profile = Profile::from_toml(&path, &text).unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(profile.id, id);
        (id.to_owned(), profile.firmware.max_image_size)
    })
    .collect::<BTreeMap<_, _>>();
    ImportCheck {
        max_image_size: iotmc_gateway::config::DEFAULT_MAX_IMAGE_SIZE,
        profiles,
    }
}

/// A simulated image and its (unsigned) manifest.
#[derive(Debug, Clone)]
pub(crate) struct SimImage {
    pub(crate) bytes: Vec<u8>,
    pub(crate) manifest: Manifest,
}

impl SimImage {
    /// `SIMFW:<version>\n` (healthy) or `SIMFW:<version>;unhealthy\n` (boots, then fails the
    /// profile's health check), padded to `size` bytes, for devices of `targets`.
    pub(crate) fn new(version: &str, healthy: bool, size: usize, targets: &[&str]) -> Self {
        let header = if healthy {
            format!("SIMFW:{version}\n")
        } else {
            format!("SIMFW:{version};unhealthy\n")
        };
        let mut bytes = header.into_bytes();
        assert!(bytes.len() < size, "{size} bytes leave no room for padding");
        // Padding that differs per version, so two images never share a hash.
        let seed = version
            .bytes()
            .fold(7u32, |h, b| h.wrapping_mul(31) ^ u32::from(b));
        bytes.extend((0..size - bytes.len()).map(|i| {
            let i = u32::try_from(i).unwrap();
            (i.wrapping_mul(2_654_435_761) ^ seed).to_be_bytes()[0]
        }));
        let manifest = Manifest {
            targets: targets.iter().map(|t| (*t).to_owned()).collect(),
            version: version.to_owned(),
            release_date: "2026-03-02".to_owned(),
            size: bytes.len() as u64,
            sha256: hex(&Sha256::digest(&bytes)),
            emergency: false,
            min_hardware: None,
            min_bootloader: None,
        };
        Self { bytes, manifest }
    }
}

/// An image in the store, as the tests expect the gateway to describe it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Imported {
    pub(crate) sha256: String,
    pub(crate) version: String,
    pub(crate) size: u64,
    pub(crate) release_date: String,
}

impl Imported {
    /// `FirmwareAvailable` for this image: `<version>,<sha256>,<size>,<release date>`.
    pub(crate) fn available(&self) -> String {
        format!(
            "{},{},{},{}",
            self.version, self.sha256, self.size, self.release_date
        )
    }
}

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use ed25519_dalek::{Signer as _, SigningKey};

use super::*;
use crate::firmware::manifest::{EnvelopeSignature, PAYLOAD_TYPE, pae};
use crate::firmware::signing::sign_with_key;

const PROFILE: &str = "iotmc-demo-controller";

fn key() -> SigningKey {
    SigningKey::from_bytes(&[7; 32])
}

fn trust() -> TrustedKeys {
    let mut trust = TrustedKeys::empty();
    trust.insert("vendor", key().verifying_key());
    trust
}

fn check() -> ImportCheck {
    ImportCheck {
        max_image_size: 32 * 1024 * 1024,
        profiles: BTreeMap::from([(PROFILE.to_owned(), 1024 * 1024), ("small".to_owned(), 100)]),
    }
}

fn image(seed: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31) ^ seed)
        .collect()
}

fn manifest_for(bytes: &[u8], version: &str, date: &str) -> Manifest {
    Manifest {
        targets: vec![PROFILE.into()],
        version: version.into(),
        release_date: date.into(),
        size: bytes.len() as u64,
        sha256: hex(&sha256(bytes)),
        emergency: false,
        min_hardware: None,
        min_bootloader: None,
    }
}

fn signed(manifest: &Manifest) -> Envelope {
    sign_with_key(&key(), "vendor", manifest).unwrap()
}

/// An envelope over any payload, signed by the trusted key (for manifests `sign` refuses).
fn signed_payload(payload: &[u8]) -> Envelope {
    let sig = key().sign(&pae(PAYLOAD_TYPE, payload));
    Envelope {
        payload_type: PAYLOAD_TYPE.into(),
        payload: crate::firmware::manifest::encode_base64(payload),
        signatures: vec![EnvelopeSignature {
            keyid: "vendor".into(),
            sig: crate::firmware::manifest::encode_base64(&sig.to_bytes()),
        }],
    }
}

/// Every file of the store's directory with its bytes.
fn contents(store: &ImageStore) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(store.dir())
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect()
}

fn store() -> (tempfile::TempDir, ImageStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = ImageStore::open(dir.path()).unwrap();
    (dir, store)
}

#[test]
fn an_imported_image_should_be_listed_found_and_read_back() {
    let (dir, store) = store();
    assert_eq!(store.dir(), dir.path().join("firmware/images"));
    let bytes = image(1, 5000);
    let manifest = manifest_for(&bytes, "1.2.0", "2026-03-01");
    let imported = store
        .import(&bytes, &signed(&manifest), &trust(), &check())
        .unwrap();
    assert_eq!(imported.manifest, manifest);
    assert_eq!(imported.key_id, "vendor");
    assert_eq!(imported.sha256_hex(), manifest.sha256);
    assert!(imported.targets(PROFILE) && !imported.targets("small"));

    let names: Vec<String> = contents(&store).into_keys().collect();
    assert_eq!(
        names,
        [
            format!("{}.bin", manifest.sha256),
            format!("{}.dsse.json", manifest.sha256)
        ]
    );
    assert_eq!(
        store.list(&trust()).unwrap(),
        std::slice::from_ref(&imported)
    );
    assert_eq!(
        store.get(&imported.sha256, &trust()).unwrap(),
        Some(imported.clone())
    );
    assert_eq!(&*store.read(&imported.sha256).unwrap(), &bytes[..]);
}

#[test]
fn importing_an_image_twice_should_change_nothing() {
    let (_dir, store) = store();
    let bytes = image(1, 5000);
    let envelope = signed(&manifest_for(&bytes, "1.2.0", "2026-03-01"));
    let first = store.import(&bytes, &envelope, &trust(), &check()).unwrap();
    let before = contents(&store);
    let again = store.import(&bytes, &envelope, &trust(), &check()).unwrap();
    assert_eq!(again, first);
    assert_eq!(contents(&store), before);
    assert_eq!(store.list(&trust()).unwrap().len(), 1);
}

#[test]
fn the_same_bytes_under_another_manifest_should_be_refused_keeping_the_stored_one() {
    let (_dir, store) = store();
    let bytes = image(3, 5000);
    let first = manifest_for(&bytes, "1.2.0", "2026-03-01");
    store
        .import(&bytes, &signed(&first), &trust(), &check())
        .unwrap();
    let mut other = first.clone();
    other.targets = vec!["small-target".into()];
    other.version = "1.2.1".into();
    let mut check = check();
    check.profiles.insert("small-target".into(), 1024 * 1024);
    let e = refused(&store, &bytes, &signed(&other), &check);
    assert!(matches!(e, ImportError::ManifestConflict { .. }), "{e}");
    let text = e.to_string();
    assert!(
        text.contains("version 1.2.0 for iotmc-demo-controller")
            && text.contains("sign a single manifest listing every target profile"),
        "{text}"
    );
    let listed = store.list(&trust()).unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].manifest, first, "the stored manifest is kept");
}

/// Imports and asserts the refusal left the store as it was.
fn refused(
    store: &ImageStore,
    bytes: &[u8],
    envelope: &Envelope,
    check: &ImportCheck,
) -> ImportError {
    let before = contents(store);
    let e = store.import(bytes, envelope, &trust(), check).unwrap_err();
    assert_eq!(
        contents(store),
        before,
        "a refused import changed the store: {e}"
    );
    e
}

#[test]
fn an_unsigned_image_should_be_refused_before_a_byte_is_written() {
    let (_dir, store) = store();
    let bytes = image(1, 50);
    let envelope = Envelope::unsigned(&manifest_for(&bytes, "1", "2026-03-01")).unwrap();
    assert!(matches!(
        refused(&store, &bytes, &envelope, &check()),
        ImportError::Unsigned
    ));
}

#[test]
fn an_image_signed_by_an_unknown_key_should_be_refused_before_a_byte_is_written() {
    let (_dir, store) = store();
    let bytes = image(1, 50);
    let envelope = sign_with_key(
        &SigningKey::from_bytes(&[9; 32]),
        "stranger",
        &manifest_for(&bytes, "1", "2026-03-01"),
    )
    .unwrap();
    let e = refused(&store, &bytes, &envelope, &check());
    assert!(
        matches!(&e, ImportError::UnknownKey { key_ids, trusted } if key_ids == &["stranger"] && trusted == &["vendor"])
    );
}

#[test]
fn a_mis_signed_image_should_be_refused_before_a_byte_is_written() {
    let (_dir, store) = store();
    let bytes = image(1, 50);
    let mut envelope = signed(&manifest_for(&bytes, "1", "2026-03-01"));
    let other = signed(&manifest_for(&bytes, "2", "2026-03-01"));
    envelope.payload = other.payload;
    assert!(matches!(
        refused(&store, &bytes, &envelope, &check()),
        ImportError::BadSignature { .. }
    ));
}

#[test]
fn an_unreadable_manifest_should_be_refused_before_a_byte_is_written() {
    let (_dir, store) = store();
    let bytes = image(1, 50);
    let envelope = signed_payload(b"not json");
    let e = refused(&store, &bytes, &envelope, &check());
    assert!(matches!(e, ImportError::Unreadable(_)), "{e}");
    assert!(e.to_string().contains("the manifest cannot be read"), "{e}");
}

#[test]
fn a_signed_manifest_that_fails_its_check_should_be_refused_before_a_byte_is_written() {
    let (_dir, store) = store();
    let bytes = image(1, 50);
    let mut manifest = manifest_for(&bytes, "1", "2026-03-01");
    manifest.release_date = "01.03.2026".into();
    let envelope = signed_payload(&manifest.to_payload().unwrap());
    let e = refused(&store, &bytes, &envelope, &check());
    assert!(
        matches!(e, ImportError::Manifest(ManifestError::ReleaseDate { .. })),
        "{e}"
    );
    assert!(e.to_string().contains("re-signed manifest"), "{e}");
}

#[test]
fn a_corrupted_image_should_be_refused_naming_both_hashes() {
    let (_dir, store) = store();
    let bytes = image(1, 50);
    let manifest = manifest_for(&bytes, "1", "2026-03-01");
    let mut damaged = bytes.clone();
    damaged[10] ^= 1;
    let e = refused(&store, &damaged, &signed(&manifest), &check());
    let message = e.to_string();
    assert!(message.contains(&manifest.sha256), "{message}");
    assert!(message.contains(&hex(&sha256(&damaged))), "{message}");
    assert!(matches!(
        e,
        ImportError::Corrupted {
            actual_size: 50,
            expected_size: 50,
            ..
        }
    ));

    // Truncated: the size differs too.
    let e = refused(&store, &bytes[..49], &signed(&manifest), &check());
    assert!(matches!(
        e,
        ImportError::Corrupted {
            actual_size: 49,
            ..
        }
    ));
}

#[test]
fn an_image_over_the_gateway_limit_should_be_refused_saying_where_the_limit_is_set() {
    let (_dir, store) = store();
    let bytes = image(1, 50);
    let mut small = check();
    small.max_image_size = 49;
    let e = refused(
        &store,
        &bytes,
        &signed(&manifest_for(&bytes, "1", "2026-03-01")),
        &small,
    );
    assert!(matches!(
        e,
        ImportError::Oversize {
            size: 50,
            limit: 49,
            ..
        }
    ));
    assert!(e.to_string().contains("`[firmware] max_image_size`"), "{e}");
}

#[test]
fn an_image_for_two_profiles_should_fit_the_smaller_limit() {
    let (_dir, store) = store();
    let bytes = image(1, 101);
    let mut manifest = manifest_for(&bytes, "1", "2026-03-01");
    manifest.targets.push("small".into());
    let e = refused(&store, &bytes, &signed(&manifest), &check());
    assert!(matches!(
        e,
        ImportError::Oversize {
            size: 101,
            limit: 100,
            ..
        }
    ));
    assert!(
        e.to_string()
            .contains("`firmware.max_image_size` of the profile `small`"),
        "{e}"
    );
}

#[test]
fn an_image_for_no_known_profile_should_be_refused_listing_the_known_ones() {
    let (_dir, store) = store();
    let bytes = image(1, 50);
    let mut manifest = manifest_for(&bytes, "1", "2026-03-01");
    manifest.targets = vec!["eastron-sdm120".into()];
    let e = refused(&store, &bytes, &signed(&manifest), &check());
    assert!(
        e.to_string().contains(
            "the image is for `eastron-sdm120`, and none of these is a profile with firmware support on this gateway (known: `iotmc-demo-controller`, `small`)"
        ),
        "{e}"
    );
}

#[test]
fn an_image_file_whose_size_differs_from_its_manifest_should_be_refused_as_corrupted() {
    let (dir, store) = store();
    let bytes = image(1, 5000);
    let manifest = manifest_for(&bytes, "1", "2026-03-01");
    let file = dir.path().join("fw.bin");
    std::fs::write(&file, &bytes[..4000]).unwrap();
    let before = contents(&store);
    let e = store
        .import_file(&file, &signed(&manifest), &trust(), &check())
        .unwrap_err();
    assert_eq!(contents(&store), before);
    assert!(
        matches!(&e, ImportError::Corrupted { actual_size: 4000, actual_sha256, .. } if *actual_sha256 == hex(&sha256(&bytes[..4000])))
    );

    std::fs::write(&file, &bytes).unwrap();
    let stored = store
        .import_file(&file, &signed(&manifest), &trust(), &check())
        .unwrap();
    assert_eq!(&*store.read(&stored.sha256).unwrap(), &bytes[..]);

    let e = store
        .import_file(
            &dir.path().join("gone.bin"),
            &signed(&manifest),
            &trust(),
            &check(),
        )
        .unwrap_err();
    assert!(e.to_string().contains("cannot read the image"), "{e}");
}

#[test]
fn list_should_skip_a_tampered_envelope_and_keep_the_others() {
    let (_dir, store) = store();
    let good = image(1, 50);
    let bad = image(2, 60);
    store
        .import(
            &good,
            &signed(&manifest_for(&good, "1", "2026-03-01")),
            &trust(),
            &check(),
        )
        .unwrap();
    let tampered = store
        .import(
            &bad,
            &signed(&manifest_for(&bad, "2", "2026-03-02")),
            &trust(),
            &check(),
        )
        .unwrap();
    let path = store
        .dir()
        .join(format!("{}.dsse.json", tampered.sha256_hex()));
    let mut envelope = Envelope::from_json(&std::fs::read(&path).unwrap()).unwrap();
    let mut widened = tampered.manifest.clone();
    widened.targets.push("small".into());
    envelope.payload = crate::firmware::manifest::encode_base64(&widened.to_payload().unwrap());
    std::fs::write(&path, envelope.to_json_pretty()).unwrap();

    let listed = store.list(&trust()).unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].manifest.version, "1");
    assert_eq!(store.get(&tampered.sha256, &trust()).unwrap(), None);
}

#[test]
fn list_should_skip_images_whose_bytes_are_missing_or_the_wrong_size() {
    let (_dir, store) = store();
    let a = image(1, 50);
    let b = image(2, 60);
    let a = store
        .import(
            &a,
            &signed(&manifest_for(&a, "1", "2026-03-01")),
            &trust(),
            &check(),
        )
        .unwrap();
    let b = store
        .import(
            &b,
            &signed(&manifest_for(&b, "2", "2026-03-01")),
            &trust(),
            &check(),
        )
        .unwrap();
    std::fs::remove_file(store.dir().join(format!("{}.bin", a.sha256_hex()))).unwrap();
    std::fs::write(
        store.dir().join(format!("{}.bin", b.sha256_hex())),
        b"short",
    )
    .unwrap();
    assert_eq!(store.list(&trust()).unwrap(), []);
}

#[test]
fn list_should_leave_out_images_whose_key_is_no_longer_trusted() {
    let (_dir, store) = store();
    let bytes = image(1, 50);
    store
        .import(
            &bytes,
            &signed(&manifest_for(&bytes, "1", "2026-03-01")),
            &trust(),
            &check(),
        )
        .unwrap();
    let mut other = TrustedKeys::empty();
    other.insert("rotated", SigningKey::from_bytes(&[8; 32]).verifying_key());
    assert_eq!(store.list(&other).unwrap(), []);
    assert_eq!(store.list(&trust()).unwrap().len(), 1);
}

#[test]
fn list_should_ignore_temporary_and_foreign_files_and_an_image_whose_envelope_never_landed() {
    let (_dir, store) = store();
    // What a crash between the two renames of an import leaves.
    let bytes = image(1, 50);
    std::fs::write(
        store.dir().join(format!("{}.bin", hex(&sha256(&bytes)))),
        &bytes,
    )
    .unwrap();
    std::fs::write(store.dir().join(".import-abc.tmp"), b"half").unwrap();
    std::fs::write(store.dir().join("notes.txt"), b"x").unwrap();
    std::fs::write(
        store.dir().join(format!("{}.dsse.json", "AB".repeat(32))),
        b"{}",
    )
    .unwrap();
    assert_eq!(store.list(&trust()).unwrap(), []);
}

#[test]
fn list_should_sort_by_release_date_then_version() {
    let (_dir, store) = store();
    for (seed, version, date) in [
        (1, "1.1", "2026-05-01"),
        (2, "1.0", "2026-01-01"),
        (3, "0.9", "2026-05-01"),
    ] {
        let bytes = image(seed, 40 + seed as usize);
        store
            .import(
                &bytes,
                &signed(&manifest_for(&bytes, version, date)),
                &trust(),
                &check(),
            )
            .unwrap();
    }
    let versions: Vec<String> = store
        .list(&trust())
        .unwrap()
        .into_iter()
        .map(|i| i.manifest.version)
        .collect();
    assert_eq!(versions, ["1.0", "0.9", "1.1"]);
}

#[test]
fn read_should_detect_a_corrupted_image() {
    let (_dir, store) = store();
    let bytes = image(1, 50);
    let stored = store
        .import(
            &bytes,
            &signed(&manifest_for(&bytes, "1", "2026-03-01")),
            &trust(),
            &check(),
        )
        .unwrap();
    let path = store.dir().join(format!("{}.bin", stored.sha256_hex()));
    let mut damaged = bytes.clone();
    damaged[0] ^= 0xff;
    std::fs::write(&path, &damaged).unwrap();
    let e = store.read(&stored.sha256).unwrap_err();
    assert!(
        matches!(&e, StoreError::Corrupted { path: p, actual } if *p == path && *actual == hex(&sha256(&damaged)))
    );
}

#[test]
fn read_of_an_unknown_image_should_say_how_to_import_it() {
    let (_dir, store) = store();
    let e = store.read(&[0; 32]).unwrap_err();
    assert!(matches!(e, StoreError::Unknown { .. }));
    assert!(
        e.to_string().contains("iotmc-gateway firmware import"),
        "{e}"
    );
}

#[test]
fn remove_should_unlist_and_delete_an_image() {
    let (_dir, store) = store();
    let bytes = image(1, 50);
    let stored = store
        .import(
            &bytes,
            &signed(&manifest_for(&bytes, "1", "2026-03-01")),
            &trust(),
            &check(),
        )
        .unwrap();
    assert!(store.remove(&stored.sha256).unwrap());
    assert!(contents(&store).is_empty());
    assert!(!store.remove(&stored.sha256).unwrap());
    assert_eq!(store.get(&stored.sha256, &trust()).unwrap(), None);
}

#[test]
fn parse_sha256_should_take_64_hex_digits_of_either_case_and_nothing_else() {
    let expected: [u8; 32] = core::array::from_fn(|i| if i == 0 { 0xab } else { 0x01 });
    let text = format!("ab{}", "01".repeat(31));
    assert_eq!(parse_sha256(&text), Some(expected));
    assert_eq!(parse_sha256(&text.to_uppercase()), Some(expected));
    assert_eq!(hex(&expected), text);
    assert_eq!(parse_sha256(&text[..62]), None);
    assert_eq!(parse_sha256(&format!("{text}0")), None);
    assert_eq!(parse_sha256(&format!("zz{}", &text[2..])), None);
    assert_eq!(parse_sha256(&format!("é{}", &text[2..])), None);
}

#[test]
fn hash_file_should_agree_with_hashing_the_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = image(5, 200_000);
    let path = dir.path().join("fw.bin");
    std::fs::write(&path, &bytes).unwrap();
    assert_eq!(hash_file(&path).unwrap(), (200_000, sha256(&bytes)));
    // SHA-256("abc"), FIPS 180-2 appendix B.1.
    assert_eq!(
        hex(&sha256(b"abc")),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
}

#[test]
fn the_import_check_should_come_from_the_profiles_with_firmware_support() {
    let adapters = crate::adapters::AdapterSet::built();
    let dirs = [std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("device-profiles")];
    let (catalog, _) = crate::profile::Catalog::load(&dirs, &adapters);
    let check = ImportCheck::for_catalog(1234, &catalog);
    assert_eq!(check.max_image_size, 1234);
    assert_eq!(check.profiles.get(PROFILE), Some(&1_048_576));
    assert!(catalog.get("eastron-sdm120").is_some());
    assert!(
        !check.profiles.contains_key("eastron-sdm120"),
        "no firmware method"
    );
}

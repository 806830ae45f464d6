#![allow(clippy::unwrap_used)]

use super::*;

fn manifest() -> Manifest {
    Manifest {
        targets: vec!["iotmc-demo-controller".into()],
        version: "1.2.0".into(),
        release_date: "2026-03-01".into(),
        size: 5000,
        sha256: "ab".repeat(32),
        emergency: true,
        min_hardware: None,
        min_bootloader: Some("2.0".into()),
    }
}

fn key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

fn trusting(id: &str, key: &SigningKey) -> TrustedKeys {
    let mut trust = TrustedKeys::empty();
    trust.insert(id, key.verifying_key());
    trust
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn keygen_should_write_a_private_key_only_its_owner_can_read_and_a_public_key() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    let (private, public) = generate(&keys, "vendor-2026").unwrap();
    assert_eq!(private, keys.join("vendor-2026.key"));
    assert_eq!(public, keys.join("vendor-2026.pub"));
    assert_eq!(mode(&private), 0o600);
    let private_pem = std::fs::read_to_string(&private).unwrap();
    assert!(private_pem.starts_with("-----BEGIN PRIVATE KEY-----\n"));
    let public_pem = std::fs::read_to_string(&public).unwrap();
    assert!(public_pem.starts_with("-----BEGIN PUBLIC KEY-----\n"));

    // The pair belongs together: what the .key signs, the .pub verifies.
    let envelope = sign(&private, &manifest()).unwrap();
    let trust = TrustedKeys::load_dir(&keys).unwrap();
    assert_eq!(trust.ids(), ["vendor-2026"]);
    assert_eq!(
        trust.verify(&envelope).unwrap(),
        (manifest(), "vendor-2026".to_owned())
    );
}

#[test]
fn keygen_should_never_overwrite_either_key_file() {
    let dir = tempfile::tempdir().unwrap();
    let (private, _) = generate(dir.path(), "vendor").unwrap();
    let before = std::fs::read(&private).unwrap();
    let e = generate(dir.path(), "vendor").unwrap_err();
    assert!(matches!(&e, SigningError::KeyExists { path } if *path == private));
    assert!(e.to_string().contains("keys are never overwritten"), "{e}");
    assert_eq!(std::fs::read(&private).unwrap(), before);

    // Only the .pub is there: still refused, and no .key appears.
    std::fs::write(dir.path().join("other.pub"), "x").unwrap();
    let e = generate(dir.path(), "other").unwrap_err();
    assert!(matches!(e, SigningError::KeyExists { .. }));
    assert!(!dir.path().join("other.key").exists());
}

#[test]
fn keygen_should_refuse_a_name_that_cannot_be_a_key_id() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["", "../escape", "has space", ".hidden", &"k".repeat(65)] {
        let e = generate(dir.path(), name).unwrap_err();
        assert!(
            matches!(e, SigningError::InvalidKeyId { .. }),
            "{name}: {e}"
        );
    }
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn signing_should_refuse_a_key_file_its_group_or_others_can_read() {
    let dir = tempfile::tempdir().unwrap();
    let (private, _) = generate(dir.path(), "vendor").unwrap();
    std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o640)).unwrap();
    let e = sign(&private, &manifest()).unwrap_err();
    let message = e.to_string();
    assert!(matches!(
        e,
        SigningError::LoosePermissions { mode: 0o640, .. }
    ));
    assert!(
        message.contains(&private.display().to_string()),
        "{message}"
    );
    assert!(message.contains("chmod 600"), "{message}");
}

#[test]
fn signing_should_refuse_a_file_that_is_not_a_private_key() {
    let dir = tempfile::tempdir().unwrap();
    let (_, public) = generate(dir.path(), "vendor").unwrap();
    std::fs::set_permissions(&public, std::fs::Permissions::from_mode(0o600)).unwrap();
    let e = sign(&public, &manifest()).unwrap_err();
    assert!(matches!(e, SigningError::NotAPrivateKey { .. }), "{e}");
    assert!(
        e.to_string()
            .contains("vendor.pub is not an Ed25519 private key")
    );
}

#[test]
fn signing_should_refuse_a_manifest_that_fails_its_check() {
    let mut m = manifest();
    m.version = "1,2".into();
    let e = sign_with_key(&key(1), "vendor", &m).unwrap_err();
    assert!(matches!(
        e,
        SigningError::Manifest(ManifestError::Version { .. })
    ));
}

#[test]
fn a_signed_envelope_should_verify_and_name_its_key() {
    let envelope = sign_with_key(&key(1), "vendor", &manifest()).unwrap();
    assert_eq!(envelope.payload_type, PAYLOAD_TYPE);
    assert_eq!(envelope.key_ids(), ["vendor"]);
    let (m, id) = trusting("vendor", &key(1)).verify(&envelope).unwrap();
    assert_eq!((m, id.as_str()), (manifest(), "vendor"));
}

#[test]
fn an_envelope_without_signatures_should_be_refused_as_unsigned() {
    let envelope = Envelope::unsigned(&manifest()).unwrap();
    let e = trusting("vendor", &key(1)).verify(&envelope).unwrap_err();
    assert!(matches!(e, ImportError::Unsigned));
    assert!(e.to_string().contains("the image is unsigned"), "{e}");
}

#[test]
fn an_envelope_signed_by_an_unknown_key_should_be_refused_listing_the_trusted_ones() {
    let envelope = sign_with_key(&key(2), "stranger", &manifest()).unwrap();
    let mut trust = trusting("vendor", &key(1));
    trust.insert("vendor-old", key(3).verifying_key());
    let e = trust.verify(&envelope).unwrap_err();
    let message = e.to_string();
    assert!(
        message.contains("signed by `stranger`, which is not a trusted firmware key (trusted: `vendor`, `vendor-old`)"),
        "{message}"
    );
    assert!(message.contains("[trust] firmware_keys"), "{message}");
}

#[test]
fn an_altered_manifest_should_be_refused_as_mis_signed() {
    let mut envelope = sign_with_key(&key(1), "vendor", &manifest()).unwrap();
    let mut altered = manifest();
    altered.targets.push("eastron-sdm120".into());
    envelope.payload = encode_base64(&altered.to_payload().unwrap());
    let e = trusting("vendor", &key(1)).verify(&envelope).unwrap_err();
    assert!(matches!(&e, ImportError::BadSignature { key_id } if key_id == "vendor"));
    assert!(e.to_string().contains("altered after signing"), "{e}");
}

#[test]
fn a_signature_by_another_key_under_a_trusted_name_should_be_refused_as_mis_signed() {
    let envelope = sign_with_key(&key(2), "vendor", &manifest()).unwrap();
    let e = trusting("vendor", &key(1)).verify(&envelope).unwrap_err();
    assert!(matches!(e, ImportError::BadSignature { .. }), "{e}");
}

#[test]
fn a_signature_that_is_not_base64_should_be_refused_as_mis_signed() {
    let mut envelope = sign_with_key(&key(1), "vendor", &manifest()).unwrap();
    envelope.signatures[0].sig = "???".into();
    let e = trusting("vendor", &key(1)).verify(&envelope).unwrap_err();
    assert!(matches!(e, ImportError::BadSignature { .. }), "{e}");
}

#[test]
fn a_changed_payload_type_should_break_the_signature() {
    let mut envelope = sign_with_key(&key(1), "vendor", &manifest()).unwrap();
    envelope.payload_type = "text/plain".into();
    let e = trusting("vendor", &key(1)).verify(&envelope).unwrap_err();
    assert!(matches!(e, ImportError::BadSignature { .. }), "{e}");
}

#[test]
fn one_good_signature_among_several_should_be_enough_and_an_empty_keyid_tries_every_key() {
    let good = sign_with_key(&key(1), "", &manifest()).unwrap();
    let mut envelope = sign_with_key(&key(2), "stranger", &manifest()).unwrap();
    envelope.signatures.push(good.signatures[0].clone());
    let mut trust = trusting("other", &key(3));
    trust.insert("vendor", key(1).verifying_key());
    let (_, id) = trust.verify(&envelope).unwrap();
    assert_eq!(id, "vendor");
}

#[test]
fn a_signature_without_a_keyid_that_no_trusted_key_made_should_be_refused_as_unknown() {
    let envelope = sign_with_key(&key(2), "", &manifest()).unwrap();
    let e = trusting("vendor", &key(1)).verify(&envelope).unwrap_err();
    assert!(
        e.to_string()
            .contains("signed by a key without an id, which is not a trusted"),
        "{e}"
    );
}

#[test]
fn a_signed_payload_that_is_not_a_manifest_should_be_refused_as_unreadable() {
    let payload = br#"{"hello":"world"}"#;
    let sig = key(1).sign(&pae(PAYLOAD_TYPE, payload));
    let envelope = Envelope {
        payload_type: PAYLOAD_TYPE.into(),
        payload: encode_base64(payload),
        signatures: vec![EnvelopeSignature {
            keyid: "vendor".into(),
            sig: encode_base64(&sig.to_bytes()),
        }],
    };
    let e = trusting("vendor", &key(1)).verify(&envelope).unwrap_err();
    assert!(
        matches!(e, ImportError::Unreadable(EnvelopeError::Manifest(_))),
        "{e}"
    );
}

#[test]
fn a_missing_trust_directory_should_say_so_and_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let e = TrustedKeys::load_dir(&dir.path().join("nope")).unwrap_err();
    assert!(
        e.contains("nope ([trust] firmware_keys) does not exist"),
        "{e}"
    );
    assert!(e.contains("firmware keygen"), "{e}");
}

#[test]
fn an_empty_trust_directory_should_say_every_image_would_be_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("README"), "keys go here").unwrap();
    let e = TrustedKeys::load_dir(dir.path()).unwrap_err();
    assert!(
        e.contains("holds no *.pub key, so every image would be refused"),
        "{e}"
    );
}

#[test]
fn a_public_key_file_that_does_not_parse_should_be_named() {
    let dir = tempfile::tempdir().unwrap();
    generate(dir.path(), "good").unwrap();
    std::fs::write(
        dir.path().join("broken.pub"),
        "-----BEGIN PUBLIC KEY-----\nAAAA\n",
    )
    .unwrap();
    let e = TrustedKeys::load_dir(dir.path()).unwrap_err();
    assert!(e.contains("broken.pub is not an Ed25519 public key"), "{e}");
}

#[test]
fn a_trust_directory_should_yield_its_keys_by_file_stem() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    generate(&keys, "b-vendor").unwrap();
    generate(&keys, "a-vendor").unwrap();
    let trust = TrustedKeys::load_dir(&keys).unwrap();
    assert_eq!(trust.ids(), ["a-vendor", "b-vendor"]);

    let pem = std::fs::read_to_string(keys.join("a-vendor.pub")).unwrap();
    assert_eq!(
        TrustedKeys::from_public_pem("a-vendor", &pem)
            .unwrap()
            .ids(),
        ["a-vendor"]
    );
    assert!(TrustedKeys::from_public_pem("x", "not pem").is_err());
}

use rcgen::{CertificateParams, KeyPair, SignatureAlgorithm, SigningKey};
use serde_json::json;

use super::*;

const ADDRESS: &str = "mqtt://plant-room/ahu-1";

const POINTERS: ProofPointers<'static> = ProofPointers {
    certificate: "/certificate",
    signature: "/signature",
    echo: None,
};

/// A device with a self-signed certificate for a key of `algorithm`.
struct Device {
    certificate: Vec<u8>,
    key: KeyPair,
}

impl Device {
    fn new(algorithm: &'static SignatureAlgorithm) -> Self {
        let key = KeyPair::generate_for(algorithm).unwrap();
        let certificate = CertificateParams::new(vec!["ahu-1.devices.example".into()])
            .unwrap()
            .self_signed(&key)
            .unwrap()
            .der()
            .to_vec();
        Self { certificate, key }
    }

    fn p256() -> Self {
        Self::new(&rcgen::PKCS_ECDSA_P256_SHA256)
    }

    /// The answer a device gives to `nonce` for `address`, signed by `key`.
    fn answer_signed_by(&self, key: &KeyPair, address: &str, nonce: &[u8; NONCE_LEN]) -> Json {
        let signature = key.sign(&signed_message(address, nonce)).unwrap();
        json!({
            "certificate": BASE64.encode(&self.certificate),
            "signature": BASE64.encode(signature),
            "nonce": encode_nonce(nonce),
        })
    }

    fn answer(&self, address: &str, nonce: &[u8; NONCE_LEN]) -> Json {
        self.answer_signed_by(&self.key, address, nonce)
    }
}

fn nonce(seed: u8) -> [u8; NONCE_LEN] {
    std::array::from_fn(|i| seed.wrapping_mul(31).wrapping_add(u8::try_from(i).unwrap()))
}

#[test]
fn signed_message_should_be_the_context_the_address_a_zero_and_the_nonce() {
    let nonce = [0xAB; NONCE_LEN];
    let message = signed_message("mqtt://b/d", &nonce);
    let mut expected = Vec::new();
    expected.extend_from_slice(b"iotmc-identity-proof-v1"); // purpose and version
    expected.push(0x00); // end of the context
    expected.extend_from_slice(b"mqtt://b/d"); // the binding's address, UTF-8
    expected.push(0x00); // end of the address
    expected.extend_from_slice(&[0xAB; 32]); // the nonce's bytes, not its base64
    assert_eq!(message, expected);
}

#[test]
fn a_p256_signature_over_the_challenge_should_prove_the_certificate() {
    let device = Device::p256();
    let nonce = nonce(1);
    let proven = verify_answer(&device.answer(ADDRESS, &nonce), POINTERS, ADDRESS, &nonce).unwrap();
    assert_eq!(proven.certificate, device.certificate);
    assert_eq!(proven.algorithm, KeyAlgorithm::EcdsaP256);
}

#[test]
fn ed25519_and_p384_keys_should_prove_their_certificates_too() {
    for (algorithm, expected) in [
        (&rcgen::PKCS_ED25519, KeyAlgorithm::Ed25519),
        (&rcgen::PKCS_ECDSA_P384_SHA384, KeyAlgorithm::EcdsaP384),
    ] {
        let device = Device::new(algorithm);
        let nonce = nonce(2);
        let proven =
            verify_answer(&device.answer(ADDRESS, &nonce), POINTERS, ADDRESS, &nonce).unwrap();
        assert_eq!(proven.algorithm, expected);
        assert_eq!(proven.certificate, device.certificate);
    }
}

#[test]
fn a_signature_by_another_key_should_not_prove_the_certificate() {
    let device = Device::p256();
    let thief = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let nonce = nonce(3);
    let answer = device.answer_signed_by(&thief, ADDRESS, &nonce);
    let err = verify_answer(&answer, POINTERS, ADDRESS, &nonce).unwrap_err();
    assert!(matches!(err, ProofError::BadSignature { .. }), "{err}");
    let text = err.to_string();
    assert!(text.contains("ECDSA P-256"), "{text}");
    assert!(text.contains(ADDRESS), "{text}");
}

#[test]
fn a_signature_over_an_older_nonce_should_not_prove_anything() {
    let device = Device::p256();
    let old = device.answer(ADDRESS, &nonce(4));
    let err = verify_answer(&old, POINTERS, ADDRESS, &nonce(5)).unwrap_err();
    assert!(matches!(err, ProofError::BadSignature { .. }), "{err}");
}

#[test]
fn a_signature_for_another_address_should_not_prove_anything() {
    let device = Device::p256();
    let nonce = nonce(6);
    let answer = device.answer("mqtt://plant-room/ahu-2", &nonce);
    let err = verify_answer(&answer, POINTERS, ADDRESS, &nonce).unwrap_err();
    assert!(matches!(err, ProofError::BadSignature { .. }), "{err}");
}

#[test]
fn an_echo_of_an_older_nonce_should_be_refused_as_a_mismatch() {
    let device = Device::p256();
    let old = device.answer(ADDRESS, &nonce(7));
    let pointers = ProofPointers {
        echo: Some("/nonce"),
        ..POINTERS
    };
    let err = verify_answer(&old, pointers, ADDRESS, &nonce(8)).unwrap_err();
    assert_eq!(err, ProofError::NonceMismatch);
    // The echo of the right nonce passes on to the signature.
    let fresh = device.answer(ADDRESS, &nonce(8));
    verify_answer(&fresh, pointers, ADDRESS, &nonce(8)).unwrap();
}

#[test]
fn a_missing_echo_should_be_named_when_the_profile_maps_one() {
    let device = Device::p256();
    let nonce = nonce(9);
    let mut answer = device.answer(ADDRESS, &nonce);
    answer["nonce"] = Json::Null;
    let pointers = ProofPointers {
        echo: Some("/nonce"),
        ..POINTERS
    };
    let err = verify_answer(&answer, pointers, ADDRESS, &nonce).unwrap_err();
    assert_eq!(
        err,
        ProofError::Missing {
            what: "nonce",
            pointer: "/nonce".into()
        }
    );
}

#[test]
fn pem_text_and_a_chain_with_the_leaf_first_should_give_the_leaf() {
    let device = Device::p256();
    let other = Device::p256();
    let nonce = nonce(10);
    let mut answer = device.answer(ADDRESS, &nonce);
    let pem = format!(
        "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
        BASE64
            .encode(&device.certificate)
            .as_bytes()
            .chunks(64)
            .map(|line| std::str::from_utf8(line).unwrap())
            .collect::<Vec<_>>()
            .join("\n")
    );
    answer["certificate"] = json!(pem);
    let proven = verify_answer(&answer, POINTERS, ADDRESS, &nonce).unwrap();
    assert_eq!(proven.certificate, device.certificate);

    answer["certificate"] = json!([
        BASE64.encode(&device.certificate),
        BASE64.encode(&other.certificate)
    ]);
    let proven = verify_answer(&answer, POINTERS, ADDRESS, &nonce).unwrap();
    assert_eq!(proven.certificate, device.certificate);
}

#[test]
fn a_certificate_that_does_not_parse_should_be_refused() {
    let device = Device::p256();
    let nonce = nonce(11);
    let mut answer = device.answer(ADDRESS, &nonce);
    for bad in [
        BASE64.encode(b"not a certificate at all"),
        BASE64.encode(&device.certificate[..device.certificate.len() / 2]),
        BASE64.encode([device.certificate.as_slice(), b"trailer"].concat()),
    ] {
        answer["certificate"] = json!(bad);
        let err = verify_answer(&answer, POINTERS, ADDRESS, &nonce).unwrap_err();
        assert!(matches!(err, ProofError::Certificate { .. }), "{err}");
    }
    answer["certificate"] = json!("***not base64***");
    let err = verify_answer(&answer, POINTERS, ADDRESS, &nonce).unwrap_err();
    assert!(matches!(err, ProofError::Undecodable { .. }), "{err}");
    answer["certificate"] = json!("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n");
    let err = verify_answer(&answer, POINTERS, ADDRESS, &nonce).unwrap_err();
    assert!(err.to_string().contains("CERTIFICATE"), "{err}");
}

#[test]
fn oversized_certificates_and_signatures_should_be_refused() {
    let device = Device::p256();
    let nonce = nonce(12);
    let mut answer = device.answer(ADDRESS, &nonce);
    answer["certificate"] = json!("A".repeat(MAX_CERTIFICATE_TEXT + 1));
    let err = verify_answer(&answer, POINTERS, ADDRESS, &nonce).unwrap_err();
    assert!(
        matches!(
            err,
            ProofError::TooLarge {
                what: "certificate",
                ..
            }
        ),
        "{err}"
    );
    // Within the text bound but past the DER bound once decoded.
    answer["certificate"] = json!(BASE64.encode(vec![0x30; MAX_CERTIFICATE + 3]));
    let err = verify_answer(&answer, POINTERS, ADDRESS, &nonce).unwrap_err();
    assert!(
        matches!(err, ProofError::TooLarge { what: "certificate", size, .. } if size == MAX_CERTIFICATE + 3),
        "{err}"
    );

    let mut answer = device.answer(ADDRESS, &nonce);
    answer["signature"] = json!(BASE64.encode(vec![7u8; MAX_SIGNATURE + 1]));
    let err = verify_answer(&answer, POINTERS, ADDRESS, &nonce).unwrap_err();
    assert!(
        matches!(
            err,
            ProofError::TooLarge {
                what: "signature",
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn missing_parts_and_wrong_types_should_name_the_pointer() {
    let device = Device::p256();
    let nonce = nonce(13);
    let answer = device.answer(ADDRESS, &nonce);
    let moved = ProofPointers {
        certificate: "/cert/der",
        ..POINTERS
    };
    let err = verify_answer(&answer, moved, ADDRESS, &nonce).unwrap_err();
    assert!(err.to_string().contains("`/cert/der`"), "{err}");

    for (field, value) in [
        ("certificate", json!(42)),
        ("certificate", json!({"der": "AAAA"})),
        ("certificate", json!([])),
        ("signature", json!(["AAAA"])),
    ] {
        let mut answer = answer.clone();
        answer[field] = value;
        let err = verify_answer(&answer, POINTERS, ADDRESS, &nonce).unwrap_err();
        assert!(
            matches!(err, ProofError::NotText { .. } | ProofError::Missing { .. }),
            "{field}: {err}"
        );
        assert!(err.to_string().contains(&format!("`/{field}`")), "{err}");
    }
}

#[test]
fn a_key_of_another_type_should_be_named_as_unsupported() {
    // An Ed25519 certificate whose key OID (1.3.101.112) is turned into Ed448's
    // (1.3.101.113): it still parses, but its key is one proofs do not check.
    let device = Device::new(&rcgen::PKCS_ED25519);
    let ed25519 = [0x06, 0x03, 0x2B, 0x65, 0x70];
    let mut der = device.certificate.clone();
    let mut replaced = 0;
    for i in 0..der.len().saturating_sub(ed25519.len()) {
        if der[i..i + ed25519.len()] == ed25519 {
            der[i + 4] = 0x71;
            replaced += 1;
        }
    }
    assert!(replaced >= 1);
    let err = verify_signature(&der, b"message", &[0; 64], ADDRESS).unwrap_err();
    assert!(matches!(err, ProofError::UnsupportedKey { .. }), "{err}");
    assert!(err.to_string().contains("1.3.101.113"), "{err}");
}

#[test]
fn arbitrary_answers_should_never_panic() {
    let device = Device::p256();
    let nonce = nonce(14);
    let good = device.answer(ADDRESS, &nonce);
    let pointers = ProofPointers {
        echo: Some("/nonce"),
        ..POINTERS
    };
    // Every prefix of the certificate, and bytes flipped through it.
    let mut tried = 0;
    for cut in (0..device.certificate.len()).step_by(7) {
        let mut answer = good.clone();
        answer["certificate"] = json!(BASE64.encode(&device.certificate[..cut]));
        assert!(verify_answer(&answer, pointers, ADDRESS, &nonce).is_err());
        let mut flipped = device.certificate.clone();
        flipped[cut] ^= 0xFF;
        answer["certificate"] = json!(BASE64.encode(&flipped));
        let _ = verify_answer(&answer, pointers, ADDRESS, &nonce);
        tried += 1;
    }
    assert!(tried > 10);
    for answer in [
        json!(null),
        json!([]),
        json!("text"),
        json!({"certificate": null, "signature": null, "nonce": null}),
        json!({"certificate": "", "signature": "", "nonce": ""}),
        json!({"certificate": "====", "signature": "=", "nonce": "AAAA"}),
    ] {
        assert!(verify_answer(&answer, pointers, ADDRESS, &nonce).is_err());
    }
}

//! The simulated controller's own identity: a certificate chain and its private key, given at
//! start ([`GenericDevice::start_with_identity`](super::GenericDevice::start_with_identity)),
//! and its answer to the identity proof request on `.../rpc`:
//!
//! ```text
//! {"op": "prove", "nonce": "<base64 of 32 bytes>", "address": "mqtt://<broker>/<device>"?}
//!   → {"certificate": "<base64 DER of the leaf>", "chain": ["<base64 DER>", ...],
//!      "signature": "<base64>", "nonce": "<the nonce, echoed>"}
//! ```
//!
//! It signs the message of [`crate::codec::proof::signed_message`] for the address in the
//! request (refusing one whose device part is not its own), or else the address it was given.
//! Faults ([`ProofFault`]) sign with another key, replay the previous answer, answer raw bytes or
//! stay silent.

use std::io;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use ring::rand::SystemRandom;
use ring::signature::{
    ECDSA_P256_SHA256_ASN1_SIGNING, ECDSA_P384_SHA384_ASN1_SIGNING, EcdsaKeyPair, Ed25519KeyPair,
};
use serde_json::{Value as Json, json};

use super::firmware::Refused;
use crate::address::Address;
use crate::codec::proof::{NONCE_LEN, signed_message};

/// A private key the simulator signs with: ECDSA P-256 or P-384, or Ed25519, from PKCS#8 DER.
#[derive(Debug)]
pub struct SimKey(Box<Signer>);

#[derive(Debug)]
enum Signer {
    Ecdsa(EcdsaKeyPair),
    Ed25519(Ed25519KeyPair),
}

impl SimKey {
    /// Reads a PKCS#8 DER private key of ECDSA P-256, ECDSA P-384 or Ed25519.
    pub fn from_pkcs8(pkcs8: &[u8]) -> io::Result<Self> {
        let rng = SystemRandom::new();
        for algorithm in [
            &ECDSA_P256_SHA256_ASN1_SIGNING,
            &ECDSA_P384_SHA384_ASN1_SIGNING,
        ] {
            if let Ok(pair) = EcdsaKeyPair::from_pkcs8(algorithm, pkcs8, &rng) {
                return Ok(Self(Box::new(Signer::Ecdsa(pair))));
            }
        }
        Ed25519KeyPair::from_pkcs8_maybe_unchecked(pkcs8)
            .map(|pair| Self(Box::new(Signer::Ed25519(pair))))
            .map_err(|e| {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!(
                        "the simulated device's key is not a PKCS#8 ECDSA P-256, P-384 or Ed25519 key ({e}); give it the DER of one"
                    ),
                )
            })
    }

    /// Signs `message` (ECDSA: ASN.1 DER signature).
    fn sign(&self, message: &[u8]) -> Option<Vec<u8>> {
        match &*self.0 {
            Signer::Ecdsa(pair) => pair
                .sign(&SystemRandom::new(), message)
                .ok()
                .map(|s| s.as_ref().to_vec()),
            Signer::Ed25519(pair) => Some(pair.sign(message).as_ref().to_vec()),
        }
    }
}

/// The device's certificate chain (DER, leaf first) and the leaf's private key.
#[derive(Debug)]
pub struct SimIdentity {
    chain: Vec<Vec<u8>>,
    key: SimKey,
    address: Option<String>,
}

impl SimIdentity {
    /// An identity from a chain (DER, leaf first, at least the leaf) and the leaf's PKCS#8 key.
    /// The simulator does not check that they belong together: a test may give it a mismatch.
    pub fn new(chain: Vec<Vec<u8>>, pkcs8: &[u8]) -> io::Result<Self> {
        if chain.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "the simulated device's certificate chain is empty; give at least its own certificate",
            ));
        }
        Ok(Self {
            chain,
            key: SimKey::from_pkcs8(pkcs8)?,
            address: None,
        })
    }

    /// The address it signs when the request names none (as a device provisioned with its
    /// address would), e.g. `mqtt://plant-room/ahu-1`.
    pub fn with_address(mut self, address: &str) -> Self {
        self.address = Some(address.to_owned());
        self
    }
}

/// How the next proof answer goes wrong.
#[derive(Debug)]
pub enum ProofFault {
    /// Signed by this key instead of the certificate's.
    SignWith(SimKey),
    /// The previous proof answer again (signed over an older nonce).
    Replay,
    /// These bytes, whatever they are.
    Answer(Vec<u8>),
    /// No answer at all.
    Silent,
}

/// What the device answers to a proof request.
#[derive(Debug)]
pub(super) enum ProofAnswer {
    /// A JSON answer or the device's refusal.
    Json(Result<Json, Refused>),
    /// Raw bytes.
    Raw(Vec<u8>),
    /// Nothing.
    Silent,
}

/// The proof side of the simulated device.
#[derive(Debug, Default)]
pub(super) struct Prover {
    pub(super) identity: Option<SimIdentity>,
    pub(super) fault: Option<ProofFault>,
    last: Option<Json>,
    /// Proof requests received.
    pub(super) requests: u64,
}

impl Prover {
    /// Answers `{"op": "prove", ...}` for the device named `device`.
    pub(super) fn answer(&mut self, device: &str, request: &Json) -> ProofAnswer {
        self.requests += 1;
        let mut other_key = None;
        match self.fault.take() {
            Some(ProofFault::Silent) => return ProofAnswer::Silent,
            Some(ProofFault::Answer(bytes)) => return ProofAnswer::Raw(bytes),
            Some(ProofFault::Replay) => {
                if let Some(last) = &self.last {
                    return ProofAnswer::Json(Ok(last.clone()));
                }
            }
            Some(ProofFault::SignWith(key)) => other_key = Some(key),
            None => {}
        }
        let answer = self.sign(device, request, other_key.as_ref());
        if let Ok(json) = &answer {
            self.last = Some(json.clone());
        }
        ProofAnswer::Json(answer)
    }

    fn sign(&self, device: &str, request: &Json, other: Option<&SimKey>) -> Result<Json, Refused> {
        let Some(identity) = &self.identity else {
            return Err((
                "unsupported",
                "this device has no identity of its own".into(),
            ));
        };
        let nonce_text = request.get("nonce").and_then(Json::as_str).unwrap_or("");
        let nonce: [u8; NONCE_LEN] = BASE64
            .decode(nonce_text)
            .ok()
            .and_then(|bytes| bytes.try_into().ok())
            .ok_or_else(|| {
                (
                    "bad_request",
                    format!("`nonce` must be base64 of {NONCE_LEN} bytes"),
                )
            })?;
        let address = match request.get("address").and_then(Json::as_str) {
            Some(asked) => match asked.parse::<Address>() {
                Ok(parsed) if parsed.device == device => asked.to_owned(),
                _ => {
                    return Err((
                        "not_mine",
                        format!("{asked:?} is not an address of device `{device}`"),
                    ));
                }
            },
            None => identity.address.clone().ok_or_else(|| {
                (
                    "no_address",
                    "send `address`: this device was not given the address it signs".into(),
                )
            })?,
        };
        let key = other.unwrap_or(&identity.key);
        let signature = key
            .sign(&signed_message(&address, &nonce))
            .ok_or_else(|| ("internal", "signing failed".to_owned()))?;
        let (leaf, rest) = identity
            .chain
            .split_first()
            .ok_or_else(|| ("internal", "no certificate".to_owned()))?;
        Ok(json!({
            "certificate": BASE64.encode(leaf),
            "chain": rest.iter().map(|c| BASE64.encode(c)).collect::<Vec<_>>(),
            "signature": BASE64.encode(signature),
            "nonce": nonce_text,
        }))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::codec::proof::{ProofPointers, encode_nonce, verify_answer};

    fn prover() -> (Prover, Vec<u8>) {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let certificate = rcgen::CertificateParams::new(vec!["ahu-1".into()])
            .unwrap()
            .self_signed(&key)
            .unwrap()
            .der()
            .to_vec();
        let identity = SimIdentity::new(vec![certificate.clone()], &key.serialize_der()).unwrap();
        let prover = Prover {
            identity: Some(identity),
            ..Prover::default()
        };
        (prover, certificate)
    }

    fn refusal(answer: ProofAnswer) -> &'static str {
        match answer {
            ProofAnswer::Json(Err((code, _))) => code,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn its_proof_should_pass_the_gateway_s_check() {
        let (mut prover, certificate) = prover();
        let nonce = [9u8; NONCE_LEN];
        let address = "mqtt://plant-room/ahu-1";
        let request = json!({"op": "prove", "nonce": encode_nonce(&nonce), "address": address});
        let ProofAnswer::Json(Ok(answer)) = prover.answer("ahu-1", &request) else {
            panic!("no proof");
        };
        let pointers = ProofPointers {
            certificate: "/certificate",
            signature: "/signature",
            echo: Some("/nonce"),
        };
        let proven = verify_answer(&answer, pointers, address, &nonce).unwrap();
        assert_eq!(proven.certificate, certificate);
    }

    #[test]
    fn it_should_refuse_to_sign_another_device_s_address_or_a_bad_nonce() {
        let (mut prover, _) = prover();
        let nonce = encode_nonce(&[1; NONCE_LEN]);
        let other = json!({"op": "prove", "nonce": nonce, "address": "mqtt://plant-room/ahu-2"});
        assert_eq!(refusal(prover.answer("ahu-1", &other)), "not_mine");
        let short = json!({"op": "prove", "nonce": "AAAA", "address": "mqtt://plant-room/ahu-1"});
        assert_eq!(refusal(prover.answer("ahu-1", &short)), "bad_request");
        let unaddressed = json!({"op": "prove", "nonce": nonce});
        assert_eq!(refusal(prover.answer("ahu-1", &unaddressed)), "no_address");
        assert_eq!(
            refusal(Prover::default().answer("ahu-1", &unaddressed)),
            "unsupported"
        );
        assert_eq!(prover.requests, 3);
    }

    #[test]
    fn keys_that_are_not_pkcs8_of_a_supported_type_should_be_refused() {
        let err = SimKey::from_pkcs8(b"not a key").unwrap_err();
        assert!(err.to_string().contains("PKCS#8"), "{err}");
        assert!(SimIdentity::new(Vec::new(), b"").is_err());
    }
}

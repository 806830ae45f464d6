//! The identity proof of a generic device (`identity.proof`): a fresh random nonce in the
//! challenge request, the answer checked by [`crate::codec::proof`]. Only a proof that holds
//! makes the device's certificate its identity evidence; anything else (no answer, a refusal, a
//! wrong signature, a replayed answer, a certificate that does not parse) is no evidence, logged
//! with the reason, and never fails `identify`.

use iotmc_adapter::{IdentityEvidence, LinkError};
use ring::rand::{SecureRandom, SystemRandom};
use serde_json::Value as Json;

use super::request::{Ask, Requester};
use crate::codec::generic::place;
use crate::codec::proof::{self, NONCE_LEN, ProofError, ProofPointers, Proven};
use crate::profile::generic::ProofMap;

/// Why a proof failed, for the log.
#[derive(Debug, thiserror::Error)]
enum ProofFailure {
    /// The system's random source failed.
    #[error("no nonce could be drawn: the system's random source failed")]
    Random,
    /// The payload template cannot take the nonce (the profile check prevents this).
    #[error("the proof request cannot be built: {0}; check `mqtt.generic.identity.proof`")]
    Payload(String),
    /// No usable answer: timeout, refusal, transport, not JSON.
    #[error("the proof request failed: {0}")]
    Request(LinkError),
    /// An answer that proves nothing.
    #[error(transparent)]
    Answer(ProofError),
}

/// The evidence of the device at `address`: its certificate if it proves it holds the key,
/// none otherwise (with a warning naming the device and why).
pub(super) async fn evidence(
    requester: &Requester,
    map: &ProofMap,
    topic: &str,
    address: &str,
) -> IdentityEvidence {
    match prove(requester, map, topic, address).await {
        Ok(proven) => {
            tracing::info!(
                device = %requester.device_id,
                %address,
                key = proven.algorithm.name(),
                certificate_bytes = proven.certificate.len(),
                "the device proved it holds its certificate's key"
            );
            IdentityEvidence::Certificate {
                der: proven.certificate,
            }
        }
        Err(why) => {
            tracing::warn!(
                device = %requester.device_id,
                %address,
                %topic,
                reason = %why,
                "no identity evidence: the device did not prove it holds its certificate's key"
            );
            IdentityEvidence::None
        }
    }
}

async fn prove(
    requester: &Requester,
    map: &ProofMap,
    topic: &str,
    address: &str,
) -> Result<Proven, ProofFailure> {
    let nonce = fresh_nonce()?;
    let mut payload = map.request.payload.clone();
    place(
        &mut payload,
        &map.nonce,
        Json::String(proof::encode_nonce(&nonce)),
    )
    .map_err(ProofFailure::Payload)?;
    if let Some(pointer) = &map.address {
        place(&mut payload, pointer, Json::String(address.to_owned()))
            .map_err(ProofFailure::Payload)?;
    }
    let mut ask = Ask::json("identity proof", topic, &payload);
    if let Some(timeout) = map.timeout {
        ask = ask.within(timeout);
    }
    let answer = requester.ask(ask).await.map_err(ProofFailure::Request)?;
    let pointers = ProofPointers {
        certificate: &map.certificate,
        signature: &map.signature,
        echo: map.echo.as_deref(),
    };
    proof::verify_answer(&answer, pointers, address, &nonce).map_err(ProofFailure::Answer)
}

/// 32 bytes from the system's random source, new for every proof.
fn fresh_nonce() -> Result<[u8; NONCE_LEN], ProofFailure> {
    let mut nonce = [0u8; NONCE_LEN];
    SystemRandom::new()
        .fill(&mut nonce)
        .map_err(|_| ProofFailure::Random)?;
    Ok(nonce)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonces_should_differ_from_call_to_call() {
        let drawn: std::collections::BTreeSet<[u8; NONCE_LEN]> =
            (0..64).filter_map(|_| fresh_nonce().ok()).collect();
        assert_eq!(drawn.len(), 64);
    }
}

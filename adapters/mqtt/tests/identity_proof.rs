//! Identity evidence of generic MQTT 5 devices end to end: the simulated controller with a
//! certificate and key of its own, the gateway's link asking it to prove it holds the key, and
//! every way a proof can fail turning into no evidence while identify still succeeds.
#![cfg(feature = "sim")]
#![allow(clippy::unwrap_used)]

#[allow(dead_code)]
#[path = "generic/rig.rs"]
mod rig;

use std::sync::Arc;

use iotmc_adapter::{Availability, DeviceLink, Identity, IdentityEvidence, LinkEvent, Profile};
use iotmc_adapter_mqtt::MqttVersion;
use iotmc_adapter_mqtt::sim::EmbeddedBroker;
use iotmc_adapter_mqtt::sim::generic::{GenericDevice, ProofFault, SimIdentity, SimKey, SimTiming};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair, SignatureAlgorithm,
};

use rig::{attach, profile_from, quick_profile, shipped_text};

const SHIPPED_IDENTITY: &str =
    "identity = { request = { topic = \"iotmc/ahu/{device}/rpc\", payload = { op = \"info\" } } }";

/// The shipped controller profile (with a 1 s response timeout) whose identity also asks for a
/// proof: `extra` adds keys to the proof table, e.g. `address = "/address", echo = "/nonce"`.
fn proof_profile(extra: &str) -> Arc<Profile> {
    let shipped = shipped_text();
    assert!(
        shipped.contains(SHIPPED_IDENTITY),
        "the shipped profile's identity line changed; update this test"
    );
    let extra = if extra.is_empty() {
        String::new()
    } else {
        format!(", {extra}")
    };
    let identity = format!(
        "identity = {{ request = {{ topic = \"iotmc/ahu/{{device}}/rpc\", payload = {{ op = \"info\" }} }}, proof = {{ request = {{ topic = \"iotmc/ahu/{{device}}/rpc\", payload = {{ op = \"prove\" }} }}{extra} }} }}"
    );
    profile_from(
        &shipped
            .replace(SHIPPED_IDENTITY, &identity)
            .replace("response_timeout = \"5s\"", "response_timeout = \"1s\""),
    )
}

/// The test profile: the address travels in the request, the nonce is echoed.
fn echoing_profile() -> Arc<Profile> {
    proof_profile("address = \"/address\", echo = \"/nonce\"")
}

/// A device certificate issued by a test CA: the chain (leaf first) and the leaf's PKCS#8 key.
struct Credentials {
    chain: Vec<Vec<u8>>,
    pkcs8: Vec<u8>,
}

impl Credentials {
    fn new(algorithm: &'static SignatureAlgorithm) -> Self {
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca =
            CertifiedIssuer::self_signed(ca, KeyPair::generate_for(algorithm).unwrap()).unwrap();
        let key = KeyPair::generate_for(algorithm).unwrap();
        let leaf = CertificateParams::new(vec!["ahu-1.devices.example".into()])
            .unwrap()
            .signed_by(&key, &ca)
            .unwrap();
        Self {
            chain: vec![leaf.der().to_vec(), ca.der().to_vec()],
            pkcs8: key.serialize_der(),
        }
    }

    fn p256() -> Self {
        Self::new(&rcgen::PKCS_ECDSA_P256_SHA256)
    }

    fn leaf(&self) -> &[u8] {
        &self.chain[0]
    }

    fn identity(&self) -> SimIdentity {
        SimIdentity::new(self.chain.clone(), &self.pkcs8).unwrap()
    }
}

/// A broker, a simulated `ahu-1` (with `identity` if given) and the gateway's link to it with
/// `profile`.
struct ProofRig {
    broker: EmbeddedBroker,
    device: GenericDevice,
    link: Arc<dyn DeviceLink>,
}

impl ProofRig {
    async fn start(profile: Arc<Profile>, identity: Option<SimIdentity>) -> Self {
        let broker = EmbeddedBroker::start().unwrap();
        let device = match identity {
            Some(identity) => GenericDevice::start_with_identity(
                broker.v5_addr(),
                "ahu-1",
                SimTiming::default(),
                identity,
            )
            .await
            .unwrap(),
            None => GenericDevice::start(broker.v5_addr(), "ahu-1")
                .await
                .unwrap(),
        };
        let link = attach(&profile, broker.v5_addr(), MqttVersion::V5)
            .await
            .unwrap();
        wait_ready(&*link).await;
        Self {
            broker,
            device,
            link,
        }
    }

    /// Identify, which must succeed whatever the proof does.
    async fn identify(&self) -> Identity {
        let identity = tokio::time::timeout(rig::DEADLINE, self.link.identify())
            .await
            .expect("identify answered within the deadline")
            .unwrap_or_else(|e| panic!("identify failed: {e}"));
        // The other facts are there whatever the evidence.
        assert_eq!(identity.model, "AHU-5");
        assert_eq!(identity.serial.as_deref(), Some("AHU5-ahu-1"));
        identity
    }
}

/// Waits until the link's requests reach the device (a read, not identify: that would count a
/// proof request).
async fn wait_ready(link: &dyn DeviceLink) {
    let mut events = link.events();
    if link.read(&rig::names(&["mode"])).await.is_ok() {
        return;
    }
    let online = async {
        loop {
            match events.recv().await {
                Ok(LinkEvent::Availability {
                    availability: Availability::Online,
                    ..
                }) => return,
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(tokio::sync::broadcast::error::RecvError::Closed) => panic!("the link closed"),
            }
        }
    };
    tokio::time::timeout(rig::DEADLINE, online)
        .await
        .expect("the device came online within the deadline");
}

fn certificate(evidence: &IdentityEvidence) -> &[u8] {
    match evidence {
        IdentityEvidence::Certificate { der } => der,
        other => panic!("expected certificate evidence, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_proving_its_p256_key_should_report_its_leaf_certificate_as_evidence() {
    let credentials = Credentials::p256();
    let rig = ProofRig::start(echoing_profile(), Some(credentials.identity())).await;
    let identity = rig.identify().await;
    assert_eq!(certificate(&identity.evidence), credentials.leaf());
    assert!(identity.evidence.is_cryptographic());
    assert_eq!(rig.device.proof_requests(), 1);
    // Every identify is a new challenge.
    let again = rig.identify().await;
    assert_eq!(certificate(&again.evidence), credentials.leaf());
    assert_eq!(rig.device.proof_requests(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ed25519_device_should_prove_its_certificate_too() {
    let credentials = Credentials::new(&rcgen::PKCS_ED25519);
    let rig = ProofRig::start(echoing_profile(), Some(credentials.identity())).await;
    let identity = rig.identify().await;
    assert_eq!(certificate(&identity.evidence), credentials.leaf());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proof_signed_by_another_key_should_be_no_evidence() {
    let credentials = Credentials::p256();
    let rig = ProofRig::start(echoing_profile(), Some(credentials.identity())).await;
    let thief = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    rig.device.fault_next_proof(ProofFault::SignWith(
        SimKey::from_pkcs8(&thief.serialize_der()).unwrap(),
    ));
    assert_eq!(rig.identify().await.evidence, IdentityEvidence::None);
    assert_eq!(rig.device.proof_requests(), 1);
    // The fault was for one answer: the next proof holds.
    assert_eq!(
        certificate(&rig.identify().await.evidence),
        credentials.leaf()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_with_someone_else_s_key_should_be_no_evidence() {
    // A device holding a copy of another device's certificate but not its key.
    let stolen = Credentials::p256();
    let own = Credentials::p256();
    let identity = SimIdentity::new(stolen.chain.clone(), &own.pkcs8).unwrap();
    let rig = ProofRig::start(echoing_profile(), Some(identity)).await;
    assert_eq!(rig.identify().await.evidence, IdentityEvidence::None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_answer_to_an_older_nonce_should_be_no_evidence() {
    let credentials = Credentials::p256();
    let rig = ProofRig::start(echoing_profile(), Some(credentials.identity())).await;
    assert_eq!(
        certificate(&rig.identify().await.evidence),
        credentials.leaf()
    );
    rig.device.fault_next_proof(ProofFault::Replay);
    assert_eq!(rig.identify().await.evidence, IdentityEvidence::None);

    // Without an echo the replay is caught by the signature, over the old nonce.
    let no_echo = attach(
        &proof_profile("address = \"/address\""),
        rig.broker.v5_addr(),
        MqttVersion::V5,
    )
    .await
    .unwrap();
    wait_ready(&*no_echo).await;
    let fresh = no_echo.identify().await.unwrap();
    assert_eq!(certificate(&fresh.evidence), credentials.leaf());
    rig.device.fault_next_proof(ProofFault::Replay);
    let replayed = no_echo.identify().await.unwrap();
    assert_eq!(replayed.evidence, IdentityEvidence::None);
    assert_eq!(rig.device.proof_requests(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_and_garbage_answers_should_be_no_evidence_and_break_nothing() {
    let credentials = Credentials::p256();
    let rig = ProofRig::start(echoing_profile(), Some(credentials.identity())).await;
    let huge = format!(
        r#"{{"certificate": "{}", "signature": "AAAA"}}"#,
        "A".repeat(40 * 1024)
    );
    let answers: Vec<Vec<u8>> = vec![
        b"\xff\xfe not json".to_vec(),
        b"[]".to_vec(),
        br#"{"certificate": 5, "signature": null}"#.to_vec(),
        br#"{"certificate": "AAAA", "signature": "AAAA"}"#.to_vec(),
        huge.into_bytes(),
        vec![b'{'; 70 * 1024],
    ];
    for answer in answers {
        let shown = String::from_utf8_lossy(&answer[..answer.len().min(40)]).into_owned();
        rig.device.fault_next_proof(ProofFault::Answer(answer));
        assert_eq!(
            rig.identify().await.evidence,
            IdentityEvidence::None,
            "answer {shown:?}"
        );
    }
    // The link and the device are as before.
    assert_eq!(
        certificate(&rig.identify().await.evidence),
        credentials.leaf()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_answer_to_the_proof_should_be_no_evidence_after_the_proof_s_timeout() {
    let credentials = Credentials::p256();
    let rig = ProofRig::start(
        proof_profile("address = \"/address\", timeout = \"2s\""),
        Some(credentials.identity()),
    )
    .await;
    rig.device.fault_next_proof(ProofFault::Silent);
    let started = tokio::time::Instant::now();
    assert_eq!(rig.identify().await.evidence, IdentityEvidence::None);
    // The proof's own timeout (2 s), not the 1 s response timeout, bounded the wait: a
    // timeout never fires early.
    let waited = started.elapsed();
    assert!(waited >= std::time::Duration::from_secs(2), "{waited:?}");
    assert_eq!(rig.device.proof_requests(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_without_an_identity_should_refuse_and_be_no_evidence() {
    let rig = ProofRig::start(echoing_profile(), None).await;
    assert_eq!(rig.identify().await.evidence, IdentityEvidence::None);
    assert_eq!(rig.device.proof_requests(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_profile_without_proof_should_report_no_evidence_and_ask_for_none() {
    let credentials = Credentials::p256();
    let rig = ProofRig::start(quick_profile(), Some(credentials.identity())).await;
    assert_eq!(rig.identify().await.evidence, IdentityEvidence::None);
    assert_eq!(rig.device.proof_requests(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_provisioned_with_its_address_should_prove_only_that_address() {
    let credentials = Credentials::p256();
    // The request carries no address: the device signs the one it was given.
    let profile = proof_profile("echo = \"/nonce\"");
    let right = credentials
        .identity()
        .with_address("mqtt://plant-room/ahu-1");
    let rig = ProofRig::start(Arc::clone(&profile), Some(right)).await;
    assert_eq!(
        certificate(&rig.identify().await.evidence),
        credentials.leaf()
    );
    drop(rig);

    // A device provisioned for another address proves nothing here.
    let wrong = credentials
        .identity()
        .with_address("mqtt://plant-room/ahu-2");
    let rig = ProofRig::start(profile, Some(wrong)).await;
    assert_eq!(rig.identify().await.evidence, IdentityEvidence::None);
}

//! A firmware image's DSSE envelope and the manifest inside it take any bytes without panicking:
//! parsing, the manifest checks, the UTC parsing of the release date and signature checks
//! against a trusted key (which must never accept what the key did not sign).
#![no_main]

use iotmc_gateway::firmware::manifest::Envelope;
use iotmc_gateway::firmware::signing::TrustedKeys;
use libfuzzer_sys::fuzz_target;

/// An Ed25519 public key (RFC 8032 test 1) the fuzzer's envelopes are checked against.
const PUBLIC: &str = "-----BEGIN PUBLIC KEY-----
MCowBQYDK2VwAyEA11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=
-----END PUBLIC KEY-----
";

fuzz_target!(|data: &[u8]| {
    let Ok(envelope) = Envelope::from_json(data) else {
        return;
    };
    if let Ok(manifest) = envelope.unverified_manifest() {
        let _ = manifest.check();
    }
    if let Ok(trust) = TrustedKeys::from_public_pem("fuzz", PUBLIC) {
        // Forging an Ed25519 signature by fuzzing would be a finding of its own.
        assert!(trust.verify(&envelope).is_err());
    }
});

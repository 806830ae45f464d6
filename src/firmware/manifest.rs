//! What a firmware image says about itself, and the signed envelope that carries it.
//!
//! The envelope is DSSE (<https://github.com/secure-systems-lab/dsse>): a JSON object
//! `{"payloadType", "payload", "signatures": [{"keyid", "sig"}]}` whose payload is the manifest's
//! JSON, base64; each signature is Ed25519 over [`pae`]`(payloadType, payload bytes)`. It
//! conventionally sits next to the image as `<image file>.dsse.json` ([`envelope_path_for`]).

use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use serde::{Deserialize, Serialize};

/// DSSE payload type of an iotmc firmware manifest.
pub const PAYLOAD_TYPE: &str = "application/vnd.iotmc.firmware-manifest+json";

/// Largest envelope read, in bytes. A manifest is a few hundred bytes; anything near this is not
/// one.
pub const MAX_ENVELOPE_SIZE: usize = 64 * 1024;

/// Longest version (and hardware / bootloader requirement), in characters.
pub const MAX_VERSION_LEN: usize = 64;

/// The manifest of one image. Signed (inside a [`Envelope`]) by a vendor key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Profile ids (device models) the image is for; at least one.
    pub targets: Vec<String>,
    /// Version the image installs, as the device will report it.
    pub version: String,
    /// Release date, `YYYY-MM-DD`.
    pub release_date: String,
    /// Size of the image in bytes.
    pub size: u64,
    /// SHA-256 of the image, 64 lowercase hex digits.
    pub sha256: String,
    /// A security fix that may use the shorter emergency probation.
    #[serde(default)]
    pub emergency: bool,
    /// Lowest hardware revision the image runs on, if it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_hardware: Option<String>,
    /// Lowest bootloader version the image needs, if it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_bootloader: Option<String>,
}

/// A manifest field whose value makes no sense. Found by [`Manifest::check`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    /// `version`, `min_hardware` or `min_bootloader` is empty, too long, or holds a comma or a
    /// control character.
    #[error(
        "its {field} {value:?} {problem}; a {field} is 1 to {MAX_VERSION_LEN} printable characters without commas"
    )]
    Version {
        /// `version`, `min_hardware` or `min_bootloader`.
        field: &'static str,
        /// The value.
        value: String,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// `release_date` is not a `YYYY-MM-DD` date.
    #[error("its release_date {value:?} is not a real date written YYYY-MM-DD")]
    ReleaseDate {
        /// The value.
        value: String,
    },
    /// `sha256` is not 64 lowercase hex digits.
    #[error("its sha256 {value:?} is not 64 lowercase hex digits")]
    Sha256 {
        /// The value.
        value: String,
    },
    /// `targets` is empty.
    #[error("it names no targets; an image is for at least one device profile id")]
    NoTargets,
    /// A target is not a profile id.
    #[error(
        "its target {value:?} is not a profile id (lowercase letters, digits, `.`, `_` and `-`, starting with a letter or digit, at most 64 characters)"
    )]
    Target {
        /// The value.
        value: String,
    },
    /// `size` is 0.
    #[error("its size is 0; an image has at least one byte")]
    EmptyImage,
}

impl Manifest {
    /// Checks what serde cannot: the version is 1 to 64 printable characters without commas
    /// (it is put into comma-separated event values), the release date is a real `YYYY-MM-DD`
    /// date, the SHA-256 is 64 lowercase hex digits, there is at least one target and each is a
    /// profile id, and the size is not 0.
    pub fn check(&self) -> Result<(), ManifestError> {
        check_version("version", &self.version)?;
        for (field, value) in [
            ("min_hardware", &self.min_hardware),
            ("min_bootloader", &self.min_bootloader),
        ] {
            if let Some(value) = value {
                check_version(field, value)?;
            }
        }
        if !is_date(&self.release_date) {
            return Err(ManifestError::ReleaseDate {
                value: self.release_date.clone(),
            });
        }
        if !(self.sha256.len() == 64
            && self
                .sha256
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
        {
            return Err(ManifestError::Sha256 {
                value: self.sha256.clone(),
            });
        }
        if self.targets.is_empty() {
            return Err(ManifestError::NoTargets);
        }
        if let Some(bad) = self.targets.iter().find(|t| !is_profile_id(t)) {
            return Err(ManifestError::Target { value: bad.clone() });
        }
        if self.size == 0 {
            return Err(ManifestError::EmptyImage);
        }
        Ok(())
    }

    /// The manifest as DSSE payload bytes (compact JSON).
    pub fn to_payload(&self) -> Result<Vec<u8>, serde_json::Error> {
        serde_json::to_vec(self)
    }
}

fn check_version(field: &'static str, value: &str) -> Result<(), ManifestError> {
    let problem = if value.trim().is_empty() {
        "is empty"
    } else if value.chars().count() > MAX_VERSION_LEN {
        "is too long"
    } else if value.contains(',') {
        "holds a comma"
    } else if value.chars().any(char::is_control) {
        "holds a control character"
    } else if value.trim() != value {
        "starts or ends with white space"
    } else {
        return Ok(());
    };
    Err(ManifestError::Version {
        field,
        value: value.to_owned(),
        problem,
    })
}

/// Whether `s` is a real calendar date written `YYYY-MM-DD`.
fn is_date(s: &str) -> bool {
    let b = s.as_bytes();
    let digits = |range: std::ops::Range<usize>| -> Option<u32> {
        let part = b.get(range)?;
        if !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(part).ok()?.parse().ok()
    };
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return false;
    }
    let (Some(year), Some(month), Some(day)) = (digits(0..4), digits(5..7), digits(8..10)) else {
        return false;
    };
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    (1..=days).contains(&day)
}

/// Whether `id` is a profile id (the rule profiles are loaded with).
pub use iotmc_adapter::profile::is_profile_id;

/// A DSSE envelope (<https://github.com/secure-systems-lab/dsse>) around a manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    /// Always [`PAYLOAD_TYPE`].
    #[serde(rename = "payloadType")]
    pub payload_type: String,
    /// The manifest's JSON bytes, base64 (standard alphabet, padded).
    pub payload: String,
    /// Signatures over `PAE(payloadType, payload)`.
    pub signatures: Vec<EnvelopeSignature>,
}

/// One signature of an envelope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvelopeSignature {
    /// The signing key's id: the file stem of its public key in the trust store.
    pub keyid: String,
    /// Ed25519 signature, base64.
    pub sig: String,
}

/// Why an envelope or the manifest inside it cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum EnvelopeError {
    /// Larger than [`MAX_ENVELOPE_SIZE`].
    #[error(
        "it is {size} bytes, more than the {MAX_ENVELOPE_SIZE} a firmware envelope may have; it is not a manifest envelope (made by `iotmc-gateway firmware sign`)"
    )]
    TooLarge {
        /// Its size.
        size: usize,
    },
    /// Not the JSON of a DSSE envelope.
    #[error(
        "it is not a DSSE envelope ({0}); use the .dsse.json made by `iotmc-gateway firmware sign`"
    )]
    Json(serde_json::Error),
    /// The payload type is not [`PAYLOAD_TYPE`].
    #[error("its payloadType is {found:?}, not {PAYLOAD_TYPE:?}; it is not a firmware manifest")]
    PayloadType {
        /// The payload type found.
        found: String,
    },
    /// The payload is not base64.
    #[error("its payload is not base64 ({0})")]
    Base64(base64::DecodeError),
    /// The payload is not a manifest's JSON.
    #[error("its payload is not a firmware manifest ({0})")]
    Manifest(serde_json::Error),
    /// The envelope file cannot be read.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// Base64 as DSSE asks readers to take it: the standard or the URL-safe alphabet, padded or not.
const STANDARD_ANY_PAD: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);
const URL_SAFE_ANY_PAD: GeneralPurpose = GeneralPurpose::new(
    &alphabet::URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Decodes base64 in either DSSE alphabet.
pub(crate) fn decode_base64(text: &str) -> Result<Vec<u8>, base64::DecodeError> {
    STANDARD_ANY_PAD
        .decode(text)
        .or_else(|e| URL_SAFE_ANY_PAD.decode(text).map_err(|_| e))
}

/// Encodes base64 as DSSE writers do: standard alphabet, padded.
pub(crate) fn encode_base64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

impl Envelope {
    /// An unsigned envelope around `manifest`.
    pub fn unsigned(manifest: &Manifest) -> Result<Self, serde_json::Error> {
        Ok(Self {
            payload_type: PAYLOAD_TYPE.to_owned(),
            payload: encode_base64(&manifest.to_payload()?),
            signatures: Vec::new(),
        })
    }

    /// Reads an envelope from its JSON; refuses more than [`MAX_ENVELOPE_SIZE`] bytes.
    pub fn from_json(bytes: &[u8]) -> Result<Self, EnvelopeError> {
        if bytes.len() > MAX_ENVELOPE_SIZE {
            return Err(EnvelopeError::TooLarge { size: bytes.len() });
        }
        serde_json::from_slice(bytes).map_err(EnvelopeError::Json)
    }

    /// Reads an envelope file; refuses one of more than [`MAX_ENVELOPE_SIZE`] bytes without
    /// reading it whole.
    pub fn read_file(path: &Path) -> Result<Self, EnvelopeError> {
        use std::io::Read as _;
        let io = |source| EnvelopeError::Io {
            path: path.to_owned(),
            source,
        };
        let mut bytes = Vec::new();
        std::fs::File::open(path)
            .and_then(|f| f.take(MAX_ENVELOPE_SIZE as u64 + 1).read_to_end(&mut bytes))
            .map_err(io)?;
        Self::from_json(&bytes)
    }

    /// The envelope as indented JSON (no trailing newline).
    pub fn to_json_pretty(&self) -> String {
        let signatures: Vec<serde_json::Value> = self
            .signatures
            .iter()
            .map(|s| serde_json::json!({ "keyid": s.keyid, "sig": s.sig }))
            .collect();
        let value = serde_json::json!({
            "payloadType": self.payload_type,
            "payload": self.payload,
            "signatures": signatures,
        });
        format!("{value:#}")
    }

    /// The payload bytes (what the signatures cover, together with the payload type).
    pub fn payload_bytes(&self) -> Result<Vec<u8>, EnvelopeError> {
        decode_base64(&self.payload).map_err(EnvelopeError::Base64)
    }

    /// The manifest inside, WITHOUT checking any signature: for showing what an envelope says
    /// (`firmware inspect`). Verify with [`TrustedKeys::verify`](super::signing::TrustedKeys::verify)
    /// before trusting it.
    pub fn unverified_manifest(&self) -> Result<Manifest, EnvelopeError> {
        if self.payload_type != PAYLOAD_TYPE {
            return Err(EnvelopeError::PayloadType {
                found: self.payload_type.clone(),
            });
        }
        serde_json::from_slice(&self.payload_bytes()?).map_err(EnvelopeError::Manifest)
    }

    /// The key ids of its signatures, in order.
    pub fn key_ids(&self) -> Vec<String> {
        self.signatures.iter().map(|s| s.keyid.clone()).collect()
    }
}

/// Where the envelope of `image` conventionally sits: `<image file>.dsse.json`.
pub fn envelope_path_for(image: &Path) -> PathBuf {
    let mut name = image.as_os_str().to_owned();
    name.push(".dsse.json");
    PathBuf::from(name)
}

/// DSSE pre-authentication encoding: `DSSEv1 <len> <type> <len> <body>`.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "DSSEv1 {} {} {} ",
        payload_type.len(),
        payload_type,
        payload.len()
    )
    .into_bytes();
    out.extend_from_slice(payload);
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn manifest() -> Manifest {
        Manifest {
            targets: vec!["iotmc-demo-controller".into()],
            version: "1.2.0".into(),
            release_date: "2026-03-01".into(),
            size: 5000,
            sha256: "ab".repeat(32),
            emergency: false,
            min_hardware: None,
            min_bootloader: None,
        }
    }

    #[test]
    fn pae_should_match_the_dsse_specification_example() {
        assert_eq!(
            pae("http://example.com/HelloWorld", b"hello world"),
            b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
        );
    }

    #[test]
    fn a_well_formed_manifest_should_pass_its_check() {
        let mut m = manifest();
        m.min_hardware = Some("rev B".into());
        m.min_bootloader = Some("2.0.1".into());
        m.release_date = "2024-02-29".into();
        assert_eq!(m.check(), Ok(()));
    }

    #[test]
    fn each_nonsensical_field_should_fail_the_check_naming_it() {
        type Spoil = fn(&mut Manifest);
        let cases: Vec<(Spoil, &str)> = vec![
            (|m| m.version = String::new(), "its version \"\" is empty"),
            (|m| m.version = "x".repeat(65), "is too long"),
            (|m| m.version = "1,2".into(), "holds a comma"),
            (|m| m.version = "1.2\n".into(), "holds a control character"),
            (
                |m| m.version = " 1.2".into(),
                "starts or ends with white space",
            ),
            (
                |m| m.min_bootloader = Some("a,b".into()),
                "its min_bootloader \"a,b\" holds a comma",
            ),
            (
                |m| m.release_date = "2026-02-29".into(),
                "release_date \"2026-02-29\" is not a real date",
            ),
            (
                |m| m.release_date = "2026-3-01".into(),
                "is not a real date",
            ),
            (
                |m| m.release_date = "2026-13-01".into(),
                "is not a real date",
            ),
            (
                |m| m.release_date = "2026-04-31".into(),
                "is not a real date",
            ),
            (
                |m| m.release_date = "+026-04-01".into(),
                "is not a real date",
            ),
            (
                |m| m.sha256 = "AB".repeat(32),
                "is not 64 lowercase hex digits",
            ),
            (
                |m| m.sha256 = "ab".repeat(31),
                "is not 64 lowercase hex digits",
            ),
            (|m| m.targets.clear(), "names no targets"),
            (
                |m| m.targets.push("Acme Sensor".into()),
                "target \"Acme Sensor\" is not a profile id",
            ),
            (|m| m.size = 0, "its size is 0"),
        ];
        for (spoil, expected) in cases {
            let mut m = manifest();
            spoil(&mut m);
            let message = m.check().unwrap_err().to_string();
            assert!(message.contains(expected), "{message:?} lacks {expected:?}");
        }
    }

    #[test]
    fn an_envelope_should_survive_its_pretty_json() {
        let mut envelope = Envelope::unsigned(&manifest()).unwrap();
        envelope.signatures.push(EnvelopeSignature {
            keyid: "vendor".into(),
            sig: "c2ln".into(),
        });
        let text = envelope.to_json_pretty();
        assert!(text.contains("\"payloadType\": \"application/vnd.iotmc.firmware-manifest+json\""));
        assert_eq!(Envelope::from_json(text.as_bytes()).unwrap(), envelope);
        assert_eq!(envelope.unverified_manifest().unwrap(), manifest());
    }

    #[test]
    fn an_envelope_over_64_kib_should_be_refused_unread() {
        let big = vec![b' '; MAX_ENVELOPE_SIZE + 1];
        let e = Envelope::from_json(&big).unwrap_err();
        assert!(matches!(e, EnvelopeError::TooLarge { size } if size == MAX_ENVELOPE_SIZE + 1));
        assert!(e.to_string().contains("more than the 65536"), "{e}");
    }

    #[test]
    fn an_envelope_of_another_payload_type_should_not_yield_a_manifest() {
        let mut envelope = Envelope::unsigned(&manifest()).unwrap();
        envelope.payload_type = "application/vnd.in-toto+json".into();
        let e = envelope.unverified_manifest().unwrap_err();
        assert!(
            e.to_string().contains("it is not a firmware manifest"),
            "{e}"
        );
    }

    #[test]
    fn a_manifest_with_an_unknown_field_should_not_be_read() {
        let mut envelope = Envelope::unsigned(&manifest()).unwrap();
        envelope.payload = encode_base64(br#"{"targets":["a"],"version":"1","release_date":"2026-01-01","size":1,"sha256":"","flash_now":true}"#);
        let e = envelope.unverified_manifest().unwrap_err();
        assert!(e.to_string().contains("unknown field `flash_now`"), "{e}");
    }

    #[test]
    fn payloads_should_decode_from_either_base64_alphabet_padded_or_not() {
        assert_eq!(decode_base64("-_8").unwrap(), [0xfb, 0xff]);
        assert_eq!(decode_base64("+/8=").unwrap(), [0xfb, 0xff]);
        assert!(decode_base64("not base64!").is_err());
    }

    #[test]
    fn the_envelope_should_sit_next_to_its_image() {
        assert_eq!(
            envelope_path_for(Path::new("out/fw-1.2.bin")),
            Path::new("out/fw-1.2.bin.dsse.json")
        );
    }
}

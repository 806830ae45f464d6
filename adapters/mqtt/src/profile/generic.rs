//! `[mqtt.generic]`: a device that publishes JSON and answers JSON requests, mapped topic by
//! topic. Topics are templates in which `{device}` stands for the device part of the address
//! (`mqtt://<broker>/<device>`). Requests use MQTT 5 request/response: the gateway sets a
//! response topic and correlation data, the device answers there with the same correlation
//! data. The reference, with the wire protocol of chunked firmware and log fetch, is
//! `device-profiles/mqtt/generic.md`.
//!
//! ```toml
//! [mqtt.generic]
//! availability = { topic = "ahu/{device}/status" }
//! identity = { request = { topic = "ahu/{device}/rpc", payload = { op = "info" } } }
//! # Optional: the device proves it holds its certificate's key (see `codec::proof`).
//! # identity.proof = { request = { topic = "ahu/{device}/rpc", payload = { op = "prove" } } }
//! [mqtt.generic.parameters.setpoint]
//! pointer = "/setpoint"
//! state_topic = "ahu/{device}/state"
//! read = { topic = "ahu/{device}/rpc", payload = { op = "get" } }
//! write = { topic = "ahu/{device}/rpc", payload = { op = "set" }, pointer = "/values/setpoint" }
//! ```

mod check;

use std::collections::BTreeMap;
use std::time::Duration;

use iotmc_adapter::serde_duration;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

/// The firmware method of the generic dialect.
pub const FIRMWARE_CHUNKED: &str = "chunked";
/// Log method: fetched by request.
pub const LOGS_REQUEST: &str = "request";
/// Log method: collected from a topic the device publishes its log lines to.
pub const LOGS_TOPIC: &str = "topic";

/// The `[mqtt.generic]` table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GenericSection {
    /// JSON pointer in every answer at which the device puts its error; an answer with a
    /// value there (other than `null` or `false`) is the device's refusal, reported with its
    /// words. A string, a number, or an object with `code` and `message`. Default `/error`.
    #[serde(default = "default_error_pointer")]
    pub error_pointer: String,
    /// Where the device says whether it is online: a retained topic, usually also its MQTT
    /// will. Needed by firmware and by actions that restart the device.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub availability: Option<AvailabilityMap>,
    /// Where manufacturer, model, serial and versions come from. Without it, manufacturer and
    /// model are the profile's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<IdentityMap>,
    /// Every parameter of the profile, by name.
    #[serde(default)]
    pub parameters: BTreeMap<String, ParameterMap>,
    /// Every action of the profile, by name.
    #[serde(default)]
    pub actions: BTreeMap<String, ActionMap>,
    /// Chunked firmware transfer (with `firmware.method = "chunked"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub firmware: Option<FirmwareMap>,
    /// The device's log (with `logs.method = "request"` or `"topic"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logs: Option<LogMap>,
}

fn default_error_pointer() -> String {
    "/error".to_owned()
}

/// The device's availability topic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AvailabilityMap {
    /// Topic template, e.g. `ahu/{device}/status`; the device publishes it retained and sets
    /// its will to the offline payload.
    pub topic: String,
    /// JSON pointer to the state in a JSON payload (e.g. `/state`); without it the whole
    /// payload is compared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pointer: Option<String>,
    /// What the device says when online (default `online`).
    #[serde(default = "default_online")]
    pub online: String,
    /// What the device (or its will) says when offline (default `offline`).
    #[serde(default = "default_offline")]
    pub offline: String,
}

fn default_online() -> String {
    "online".to_owned()
}

fn default_offline() -> String {
    "offline".to_owned()
}

/// A request to the device: its topic and JSON payload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RequestMap {
    /// Topic template the request is published to, e.g. `ahu/{device}/rpc`.
    pub topic: String,
    /// The JSON payload (a TOML table), e.g. `{ op = "get" }`; values are placed into it at
    /// their pointers. Default `{}`.
    #[serde(default = "empty_object")]
    #[schemars(with = "BTreeMap<String, Json>")]
    pub payload: Json,
    /// JSON pointer of this parameter in the payload (writes) or the answer (reads), when it
    /// differs from the parameter's `pointer`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pointer: Option<String>,
}

fn empty_object() -> Json {
    Json::Object(serde_json::Map::new())
}

/// Where identity facts come from: a request, or a retained info topic, and the pointers of
/// each fact in its JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IdentityMap {
    /// Ask the device (request/response).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<RequestMap>,
    /// Or: topic template of a retained info message the device publishes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
    /// Pointer of the manufacturer (default: the profile's manufacturer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manufacturer: Option<String>,
    /// Pointer of the model (default: the profile's model).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Pointer of the serial number (default `/serial`).
    #[serde(default = "default_serial")]
    pub serial: String,
    /// Pointer of the running firmware version (default `/version`).
    #[serde(default = "default_version")]
    pub firmware_version: String,
    /// Pointer of the hardware revision (default `/hardware`).
    #[serde(default = "default_hardware")]
    pub hardware_version: String,
    /// A proof that the device holds its certificate's private key: only then is the
    /// certificate reported as the device's identity evidence. Without it the evidence is none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proof: Option<ProofMap>,
}

/// `[mqtt.generic.identity.proof]`: the challenge request and where the answer carries the
/// certificate and the signature. The gateway places a fresh 32-byte random nonce (base64) in
/// the payload at `nonce`; the device signs `"iotmc-identity-proof-v1\0" + address + "\0" +
/// nonce bytes` (the address is the binding's, `mqtt://<broker>/<device>`) with its
/// certificate's key (ECDSA P-256 or P-384 with an ASN.1 DER signature, or Ed25519).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProofMap {
    /// The challenge: topic template and JSON payload, e.g. `{ topic = "ahu/{device}/rpc",
    /// payload = { op = "prove" } }`. Its `pointer` is not used: the nonce goes at `nonce`.
    pub request: RequestMap,
    /// JSON pointer in the request payload at which the gateway places the nonce: 32 random
    /// bytes, standard base64 (default `/nonce`).
    #[serde(default = "default_nonce")]
    pub nonce: String,
    /// JSON pointer in the request payload at which the gateway places the address the
    /// signature must cover, for devices that do not know the broker's name in the gateway's
    /// config (such a device must check that the device part is its own). Default: not sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// JSON pointer of the device's certificate in the answer: base64 DER or PEM text, or an
    /// array of them with the leaf first (default `/certificate`). At most 8 KiB of DER.
    #[serde(default = "default_certificate")]
    pub certificate: String,
    /// JSON pointer of the signature in the answer, base64 (default `/signature`).
    #[serde(default = "default_signature")]
    pub signature: String,
    /// JSON pointer at which the answer echoes the nonce, if the device echoes it: an answer
    /// echoing another nonce is refused before its signature is checked. Default: no echo.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub echo: Option<String>,
    /// How long the device may take to sign (default: `[mqtt] response_timeout`).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "serde_duration::option"
    )]
    #[schemars(with = "Option<String>")]
    pub timeout: Option<Duration>,
}

fn default_nonce() -> String {
    "/nonce".to_owned()
}

fn default_certificate() -> String {
    "/certificate".to_owned()
}

fn default_signature() -> String {
    "/signature".to_owned()
}

/// Longest `identity.proof.timeout` accepted.
pub const MAX_PROOF_TIMEOUT: Duration = Duration::from_secs(300);

fn default_serial() -> String {
    "/serial".to_owned()
}

fn default_version() -> String {
    "/version".to_owned()
}

fn default_hardware() -> String {
    "/hardware".to_owned()
}

/// How one parameter is pushed, read and written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ParameterMap {
    /// JSON pointer of the value in the pushed state, the read answer and the write payload,
    /// unless `read.pointer` or `write.pointer` says otherwise; `""` is the whole document.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pointer: Option<String>,
    /// Topic template on which the device pushes its state as JSON; the value at `pointer` is
    /// evented when it changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_topic: Option<String>,
    /// How to read it by request. Parameters read with the same topic and payload are read
    /// with one request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read: Option<RequestMap>,
    /// How to write it by request: the value is placed at the pointer in the payload.
    /// Parameters written together with the same topic and payload go in one request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub write: Option<RequestMap>,
}

impl ParameterMap {
    /// The pointer of the value in read answers and pushed state.
    pub fn read_pointer(&self) -> Option<&str> {
        self.read
            .as_ref()
            .and_then(|r| r.pointer.as_deref())
            .or(self.pointer.as_deref())
    }

    /// The pointer of the value in pushed state.
    pub fn state_pointer(&self) -> Option<&str> {
        self.pointer.as_deref()
    }

    /// The pointer of the value in write payloads.
    pub fn write_pointer(&self) -> Option<&str> {
        self.write
            .as_ref()
            .and_then(|w| w.pointer.as_deref())
            .or(self.pointer.as_deref())
    }
}

/// How one action is requested.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ActionMap {
    /// Topic template the request is published to.
    pub topic: String,
    /// The JSON payload (a TOML table), e.g. `{ op = "reboot" }`. Default `{}`.
    #[serde(default = "empty_object")]
    #[schemars(with = "BTreeMap<String, Json>")]
    pub payload: Json,
    /// Every declared argument's JSON pointer in the payload, by argument name.
    #[serde(default)]
    pub arguments: BTreeMap<String, String>,
    /// The device restarts after answering: the action is reported as accepted and the device
    /// goes offline and comes back (needs `availability`).
    #[serde(default)]
    pub restarts: bool,
    /// Output values reported to the controller, by name: JSON pointers into the answer.
    #[serde(default)]
    pub output: BTreeMap<String, String>,
}

/// Chunked firmware transfer over request/response (see `generic.md`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FirmwareMap {
    /// Topic template the firmware requests go to: JSON operations and binary chunks.
    pub topic: String,
    /// Bytes per chunk (default 4096; 64 ..= 131072).
    #[serde(default = "default_chunk")]
    pub chunk_size: u32,
    /// A test image must be confirmed or the device reverts on its own (default: the
    /// profile's `firmware.dual_bank`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirm_required: Option<bool>,
    /// How long the device may take to compute the image's SHA-256 (default `30s`).
    #[serde(default = "default_verify_timeout", with = "serde_duration")]
    #[schemars(with = "String")]
    pub verify_timeout: Duration,
    /// How long the device may take to restart after activate or revert, from the request to
    /// being online again (default `60s`).
    #[serde(default = "default_restart_timeout", with = "serde_duration")]
    #[schemars(with = "String")]
    pub restart_timeout: Duration,
}

fn default_chunk() -> u32 {
    4096
}

fn default_verify_timeout() -> Duration {
    Duration::from_secs(30)
}

fn default_restart_timeout() -> Duration {
    Duration::from_secs(60)
}

/// Smallest and largest chunk accepted.
pub const CHUNK_SIZES: std::ops::RangeInclusive<u32> = 64..=128 * 1024;

/// The device's log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LogMap {
    /// With `logs.method = "request"`: topic template of the `fetch` and `clear` requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_topic: Option<String>,
    /// With `logs.method = "topic"`: topic template the device publishes its log records to,
    /// one JSON record per message; the gateway keeps the newest 1000.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
    /// Most records asked for in one fetch (default 100; 1 ..= 1000).
    #[serde(default = "default_log_max")]
    pub max: u32,
}

fn default_log_max() -> u32 {
    100
}

impl GenericSection {
    /// Where the profile first uses request/response, as a field path, if it does: such a
    /// device needs an MQTT 5 broker connection.
    pub fn first_request(&self) -> Option<String> {
        if let Some(i) = &self.identity {
            if i.request.is_some() {
                return Some("mqtt.generic.identity.request".into());
            }
            if i.proof.is_some() {
                return Some("mqtt.generic.identity.proof.request".into());
            }
        }
        for (name, p) in &self.parameters {
            if p.read.is_some() {
                return Some(format!("mqtt.generic.parameters.{name}.read"));
            }
            if p.write.is_some() {
                return Some(format!("mqtt.generic.parameters.{name}.write"));
            }
        }
        if let Some(name) = self.actions.keys().next() {
            return Some(format!("mqtt.generic.actions.{name}"));
        }
        if self.firmware.is_some() {
            return Some("mqtt.generic.firmware".into());
        }
        if let Some(logs) = &self.logs
            && logs.request_topic.is_some()
        {
            return Some("mqtt.generic.logs.request_topic".into());
        }
        None
    }
}

/// Expands a topic template for `device`.
pub fn expand(template: &str, device: &str) -> String {
    template.replace("{device}", device)
}

pub(crate) use check::check;
pub use check::check_template;

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;

//! The `[mqtt]` section of a device profile: which dialect the device speaks, and the mapping
//! of the common part (parameters, actions, firmware, logs) onto that dialect's topics.
//!
//! ```toml
//! protocol = "mqtt"
//! [mqtt]
//! dialect = "tasmota"         # or "homie", "generic"
//! [mqtt.tasmota]              # the dialect's own table: [mqtt.tasmota], [mqtt.homie], [mqtt.generic]
//! ...
//! ```
//!
//! Firmware methods (`firmware.method` in the common part): `url-pull` (Tasmota: the device
//! downloads the image from a one-time URL on the gateway) and `chunked` (generic: chunks over
//! MQTT 5 request/response). Log methods (`logs.method`): `topic` (log lines the device
//! publishes are collected: Tasmota `tele/<topic>/LOGGING`, Homie `$log/<level>`, a generic
//! log topic) and `request` (generic: fetched over request/response).

use std::time::Duration;

use iotmc_adapter::{LocatedError, Profile, serde_duration};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub mod generic;
pub mod homie;
pub mod tasmota;

pub use generic::GenericSection;
pub use homie::HomieSection;
pub use tasmota::TasmotaSection;

/// The dialect a device speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Dialect {
    /// Tasmota firmware: `cmnd/`, `stat/`, `tele/` topics.
    Tasmota,
    /// The Homie 5 convention: `homie/5/<device>/...`.
    Homie,
    /// Any device, mapped topic by topic in `[mqtt.generic]`.
    Generic,
}

impl Dialect {
    /// The dialect's name as profiles spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Tasmota => "tasmota",
            Self::Homie => "homie",
            Self::Generic => "generic",
        }
    }
}

/// The `[mqtt]` section of a device profile.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MqttSection {
    /// The dialect the device speaks: `tasmota`, `homie` or `generic`. The table of the same
    /// name below holds its mapping.
    pub dialect: Dialect,
    /// How long to wait for the device's answer to a command or request (default `5s`).
    #[serde(default = "default_response_timeout", with = "serde_duration")]
    #[schemars(with = "String")]
    pub response_timeout: Duration,
    /// Tasmota mapping (with `dialect = "tasmota"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tasmota: Option<TasmotaSection>,
    /// Homie 5 mapping (with `dialect = "homie"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub homie: Option<HomieSection>,
    /// Generic mapping (with `dialect = "generic"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generic: Option<GenericSection>,
}

fn default_response_timeout() -> Duration {
    Duration::from_secs(5)
}

/// Reads and checks the `[mqtt]` section of `profile`. Every error is returned, located at its
/// field.
pub fn load_section(profile: &Profile) -> Result<MqttSection, Vec<LocatedError>> {
    let source = profile.source();
    let section: MqttSection = source.section("mqtt").map_err(|e| vec![e])?;
    let mut errors = Vec::new();
    let mut fail = |field: &str, message: String| errors.push(source.error_at(field, message));
    if section.response_timeout < Duration::from_millis(100)
        || section.response_timeout > Duration::from_secs(300)
    {
        fail(
            "mqtt.response_timeout",
            format!(
                "response_timeout {:?} is outside 100ms..300s",
                section.response_timeout
            ),
        );
    }
    let present = [
        (Dialect::Tasmota, section.tasmota.is_some()),
        (Dialect::Homie, section.homie.is_some()),
        (Dialect::Generic, section.generic.is_some()),
    ];
    for (dialect, is_present) in present {
        let name = dialect.as_str();
        if dialect == section.dialect && !is_present {
            fail(
                "mqtt",
                format!("dialect `{name}` needs its mapping in a `[mqtt.{name}]` table"),
            );
        } else if dialect != section.dialect && is_present {
            fail(
                &format!("mqtt.{name}"),
                format!(
                    "`[mqtt.{name}]` does not apply: the dialect is `{}`; remove the table or change the dialect",
                    section.dialect.as_str()
                ),
            );
        }
    }
    if errors.is_empty() {
        let found = match (&section.tasmota, &section.homie, &section.generic) {
            (Some(t), _, _) if section.dialect == Dialect::Tasmota => tasmota::check(profile, t),
            (_, Some(h), _) if section.dialect == Dialect::Homie => homie::check(profile, h),
            (_, _, Some(g)) if section.dialect == Dialect::Generic => generic::check(profile, g),
            _ => Vec::new(),
        };
        errors.extend(found);
    }
    if errors.is_empty() {
        Ok(section)
    } else {
        Err(errors)
    }
}

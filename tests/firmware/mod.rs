//! What the firmware end-to-end tests share (`tests/firmware_upnp.rs`,
//! `tests/firmware_restart.rs`): signed simulated images imported into the store, a UPnP
//! control point that finds services through the descriptions and calls them over HTTP and
//! HTTPS, a GENA callback server that records every evented value, and a simulated Modbus
//! controller that counts the image bytes it receives.
//!
//! Set-up (keys, signing, import, simulators) uses the library; everything the tests check
//! goes through UPnP actions and events.

#![allow(dead_code)] // each test file uses its own part of this module

pub(crate) mod control;
pub(crate) mod events;
pub(crate) mod images;
#[cfg(feature = "modbus")]
pub(crate) mod modbus;
#[cfg(all(feature = "modbus", feature = "mqtt"))]
pub(crate) mod rig;

use std::path::{Path, PathBuf};
use std::time::Duration;

/// Guards against a hang only: every wait ends on an event long before it.
pub(crate) const GUARD: Duration = Duration::from_secs(60);

/// The gateway's default vendor domain, as it appears in vendor URNs (dots become dashes).
pub(crate) const VENDOR_URN: &str = "iotmc-gateway-local";

/// The vendor `FirmwareUpdate:1` service type.
pub(crate) fn firmware_update_type() -> String {
    format!("urn:{VENDOR_URN}:service:FirmwareUpdate:1")
}

/// The vendor `ManagementController:1` service type of the gateway's root device.
pub(crate) fn management_controller_type() -> String {
    format!("urn:{VENDOR_URN}:service:ManagementController:1")
}

/// The repository's device profiles.
pub(crate) fn profile_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("device-profiles")
}

/// A path as a TOML string.
pub(crate) fn quote(p: &Path) -> String {
    toml::Value::String(p.display().to_string()).to_string()
}

/// `t` as the UPnP dateTime the actions take (`2026-11-24T10:00:00Z`).
pub(crate) fn utc(t: std::time::SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

/// Parses an RFC 3339 UTC time (`Z` or `+00:00`, with or without fractions).
pub(crate) fn parse_utc(text: &str) -> std::time::SystemTime {
    let text = text.trim();
    let text = text.strip_suffix("+00:00").unwrap_or(text);
    humantime::parse_rfc3339_weak(text.trim_end_matches('Z'))
        .unwrap_or_else(|e| panic!("`{text}` is not an RFC 3339 UTC time: {e}"))
}

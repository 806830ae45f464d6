//! What the registry keeps per device.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::lifecycle::LifecycleState;

/// One managed device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceRecord {
    /// Device id from the config.
    pub id: String,
    /// Friendly name, if the config gives one.
    pub name: Option<String>,
    /// Profile id.
    pub profile: String,
    /// Protocol of the profile.
    pub protocol: String,
    /// Protocol address.
    pub address: String,
    /// Management group, if any.
    pub group: Option<String>,
    /// UPnP UDN, stable for this gateway, protocol and address.
    pub udn: Uuid,
    /// Current lifecycle state.
    pub lifecycle: LifecycleState,
    /// When it entered that state, milliseconds since the Unix epoch.
    pub lifecycle_since_ms: u64,
    /// Configuration version: incremented by every configuration change made through the
    /// gateway (ConfigurationManagement `GetCurrentConfigurationVersion`).
    pub config_version: u64,
    /// Whether the current config file declares the device.
    pub in_config: bool,
    /// Whether an operator assigned `group` (approval, AssignGroup): the config's `group` is
    /// then only where the device started, and a restart keeps the operator's choice.
    #[serde(default)]
    pub group_assigned: bool,
}

/// One lifecycle transition, kept for the device's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LifecycleEntry {
    /// Position in the device's history, from 0.
    pub seq: u64,
    /// When, milliseconds since the Unix epoch.
    pub at_ms: u64,
    /// The state before (none for the first entry).
    pub from: Option<LifecycleState>,
    /// The state after.
    pub to: LifecycleState,
    /// Why, in words (`declared in /etc/iotmc-gateway/gateway.toml`, `approved by operator x`).
    pub cause: String,
}

/// The namespace of every UDN one gateway hands out: UUIDv5 of the gateway id.
pub fn gateway_namespace(gateway_id: &str) -> Uuid {
    Uuid::new_v5(
        &Uuid::NAMESPACE_URL,
        format!("urn:iotmc-gateway:{gateway_id}").as_bytes(),
    )
}

/// UDN of a virtual device: UUIDv5(gateway namespace, `protocol:address`). Stable across
/// restarts and independent of the device id, so renaming a device keeps its UDN.
pub fn device_udn(gateway_id: &str, protocol: &str, address: &str) -> Uuid {
    Uuid::new_v5(
        &gateway_namespace(gateway_id),
        format!("{protocol}:{address}").as_bytes(),
    )
}

/// UDN of the gateway's own root device (the management controller).
pub fn gateway_udn(gateway_id: &str) -> Uuid {
    Uuid::new_v5(&gateway_namespace(gateway_id), b"gateway")
}

pub use crate::utc::{from_unix_ms, unix_ms};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn udn_should_be_stable_and_differ_by_gateway_and_address() {
        let a = device_udn("plant-1", "modbus", "tcp://10.0.0.5:502?unit=1");
        assert_eq!(
            a,
            device_udn("plant-1", "modbus", "tcp://10.0.0.5:502?unit=1")
        );
        assert_ne!(
            a,
            device_udn("plant-2", "modbus", "tcp://10.0.0.5:502?unit=1")
        );
        assert_ne!(
            a,
            device_udn("plant-1", "modbus", "tcp://10.0.0.5:502?unit=2")
        );
        assert_eq!(a.get_version_num(), 5);
    }
}

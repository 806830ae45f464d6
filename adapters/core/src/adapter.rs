//! One protocol.

use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;
use tokio::sync::mpsc;

use crate::{DeviceLink, Identity, LinkError, LocatedError, Profile};

/// A configured device, as the core hands it to an adapter to attach.
#[derive(Debug, Clone)]
pub struct DeviceBinding {
    /// The device id from the gateway config.
    pub device_id: String,
    /// The device's profile, already validated by this adapter.
    pub profile: Arc<Profile>,
    /// The protocol address from the gateway config, in the adapter's own syntax.
    pub address: String,
}

/// A resource an adapter takes exclusive hold of for a device (so two devices cannot claim the
/// same serial port with different settings, or two adapters the same port).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Resource {
    /// A serial port by path, e.g. `/dev/ttyUSB0`.
    SerialPort(String),
    /// A radio (e.g. `hci0`).
    Radio(String),
}

/// A device an adapter found on its own (Zigbee join, BLE advertisement, MQTT birth message,
/// Modbus unit-id scan). Never trusted automatically: it goes to the approval queue.
#[derive(Debug, Clone, PartialEq)]
pub struct Discovered {
    /// The protocol address at which it was found, in the adapter's own syntax.
    pub address: String,
    /// What it said about itself, if anything.
    pub identity: Option<Identity>,
    /// A profile id that likely fits, if the adapter can tell.
    pub suggested_profile: Option<String>,
}

/// One protocol adapter.
#[async_trait]
pub trait Adapter: Send + Sync + Debug {
    /// The protocol name profiles use in `protocol = "..."`, e.g. `modbus`.
    fn protocol(&self) -> &'static str;

    /// Checks the protocol section of a profile (and anything protocol-specific in the common
    /// part, such as the firmware and log methods). Returns every error found, each located.
    fn validate_profile(&self, profile: &Profile) -> Result<(), Vec<LocatedError>>;

    /// JSON Schema of this adapter's profile section, for editors.
    fn profile_section_schema(&self) -> schemars::Schema;

    /// Checks a device address from the gateway config; the error says what was expected.
    fn validate_address(&self, address: &str) -> Result<(), String>;

    /// The resources a device at this address would hold.
    fn resources(&self, address: &str) -> Vec<Resource>;

    /// Attaches a device. The returned link is usable at once; the device need not be reachable
    /// yet (availability is reported through [`DeviceLink::events`]).
    async fn attach(&self, binding: &DeviceBinding) -> Result<Arc<dyn DeviceLink>, LinkError>;

    /// Devices found without being configured, if this protocol can find them.
    fn discovered(&self) -> Option<mpsc::Receiver<Discovered>> {
        None
    }
}

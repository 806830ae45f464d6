//! The adapter contract of `iotmc-gateway`.
//!
//! An *adapter* carries management operations to one protocol (Modbus, MQTT, Zigbee, BLE). The
//! gateway core decides what to do and when; adapters only carry it out. The split:
//!
//! - [`Adapter`]: one protocol. Validates its section of device profiles and device addresses,
//!   attaches devices, reports discovered devices and the resources (ports, sockets) it owns.
//! - [`DeviceLink`]: one attached device. Identify, read and write parameters, invoke actions,
//!   events, and optionally a [`FirmwareTarget`] and a [`LogSource`].
//! - [`Profile`]: the declarative description of a device model that an integrator writes, with
//!   a common part parsed here and a protocol section each adapter parses itself.
//!
//! Errors ([`LinkError`]) keep the device's own answer apart from transport failures and from the
//! gateway's own refusals; [`ErrorKind`] is the stable classification the core and the
//! conformance kit rely on.
//!
//! With feature `testkit`, [`testkit`] holds the conformance kit every adapter's tests run
//! against the adapter's simulator.

mod adapter;
mod error;
mod firmware;
mod identity;
mod link;
mod located;
mod logs;
pub mod profile;
pub mod serde_duration;
mod value;

#[cfg(feature = "testkit")]
pub mod testkit;

pub use adapter::{Adapter, DeviceBinding, Discovered, Resource};
pub use error::{ErrorKind, LinkError};
pub use firmware::{
    ActivationMode, BankInfo, FirmwareCapabilities, FirmwareImage, FirmwareTarget, StageOutcome,
    StageProgress,
};
pub use identity::{Identity, IdentityEvidence};
pub use link::{ActionOutcome, ActionRequest, Availability, DeviceLink, LinkEvent, Readings};
pub use located::{LocatedError, TomlSource};
pub use logs::{DeviceLogRecord, LogBatch, LogCursor, LogSource, Severity};
pub use profile::Profile;
pub use value::{Value, ValueType};

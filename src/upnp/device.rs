//! A virtual UPnP device: one managed device as the UPnP face presents it.

use std::sync::{Arc, PoisonError, RwLock};
use std::time::SystemTime;

use iotmc_adapter::{DeviceLink, LinkError, Profile};
use uuid::Uuid;

use crate::registry::DeviceRecord;

/// Whether the device answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Availability {
    /// It answered recently.
    Online,
    /// It stopped answering, or the adapter reported it offline.
    Offline,
    /// Not known yet (no exchange since start), or no link.
    Unknown,
}

impl Availability {
    /// As Lifecycle:1 `Availability` reports it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Online => "Online",
            Self::Offline => "Offline",
            Self::Unknown => "Unknown",
        }
    }
}

/// Facts for the description and `/UPnP/DM/DeviceInfo/`: from the device where it tells them,
/// else from the profile and config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceFacts {
    /// Friendly name: the config's name, else `<model> <id>`.
    pub friendly_name: String,
    /// Manufacturer.
    pub manufacturer: String,
    /// Model name.
    pub model: String,
    /// Model number: the profile id.
    pub model_number: String,
    /// Model description.
    pub description: String,
    /// Serial number, if the device reports one; else the device id.
    pub serial: String,
    /// Running firmware version, if known.
    pub firmware_version: Option<String>,
}

/// What changes while the gateway runs.
#[derive(Debug, Clone)]
pub struct LiveState {
    /// Availability.
    pub availability: Availability,
    /// When availability last changed.
    pub availability_since: SystemTime,
    /// ConfigurationUpdate: `<version>,<changed path>[,<changed path>...]`.
    pub configuration_update: String,
    /// LastError: the last failed operation, or empty.
    pub last_error: String,
    /// The last value known for each parameter (read, written or reported), so that only real
    /// changes are evented.
    pub known: iotmc_adapter::Readings,
}

/// One virtual device.
#[derive(Debug)]
pub struct VirtualDevice {
    /// UDN (without `uuid:`).
    pub udn: Uuid,
    /// Its registry record (lifecycle and configuration version change while running).
    pub record: RwLock<DeviceRecord>,
    /// Its profile.
    pub profile: Arc<Profile>,
    /// Its link, if attached.
    pub link: Option<Arc<dyn DeviceLink>>,
    /// Description facts.
    pub facts: DeviceFacts,
    /// Live state.
    pub live: RwLock<LiveState>,
    /// Held by a lifecycle operation (enrollment, approval, decommissioning) on the device.
    pub lifecycle_lock: tokio::sync::Mutex<()>,
}

impl VirtualDevice {
    /// A snapshot of the record.
    pub fn record(&self) -> DeviceRecord {
        self.record
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// A snapshot of the live state.
    pub fn live(&self) -> LiveState {
        self.live
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Changes the live state.
    pub fn update_live<T>(&self, f: impl FnOnce(&mut LiveState) -> T) -> T {
        f(&mut self.live.write().unwrap_or_else(PoisonError::into_inner))
    }

    /// Changes the record snapshot.
    pub fn update_record(&self, f: impl FnOnce(&mut DeviceRecord)) {
        f(&mut self.record.write().unwrap_or_else(PoisonError::into_inner));
    }

    /// Whether it is still managed (not decommissioned while the gateway runs).
    pub fn is_active(&self) -> bool {
        self.record().lifecycle != crate::lifecycle::LifecycleState::Decommissioned
    }

    /// The link, or the error that explains why there is none.
    pub fn link(&self) -> Result<&Arc<dyn DeviceLink>, LinkError> {
        self.link.as_ref().ok_or(LinkError::Closed)
    }

    /// `device <id> (<model>, <protocol> <address>)`, for error messages.
    pub fn describe(&self) -> String {
        let record = self.record();
        format!(
            "device {} ({}, {} {})",
            record.id, self.facts.model, record.protocol, record.address
        )
    }

    /// DeviceStatus as BasicManagement reports it: `OK`, `Unreachable` or `Detached`, then a
    /// comma and the UTC time of the last availability change.
    pub fn device_status(&self) -> String {
        let live = self.live();
        let status = match (&self.link, live.availability) {
            (None, _) => "Detached",
            (Some(_), Availability::Offline) => "Unreachable",
            (Some(_), _) => "OK",
        };
        format!(
            "{status},{}",
            humantime::format_rfc3339_seconds(live.availability_since)
        )
    }
}

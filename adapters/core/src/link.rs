//! One attached device.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::time::SystemTime;

use async_trait::async_trait;
use tokio::sync::broadcast;

use crate::{FirmwareTarget, Identity, LinkError, LogSource, Value};

/// Parameter values by parameter name, as read from or written to a device.
pub type Readings = BTreeMap<String, Value>;

/// A request to run one of the actions a device profile declares.
#[derive(Debug, Clone, PartialEq)]
pub struct ActionRequest {
    /// The action's name as declared in the profile (`reboot`, `factory_reset`, ...).
    pub name: String,
    /// Arguments by name, checked against the action's declared arguments.
    pub arguments: BTreeMap<String, Value>,
}

impl ActionRequest {
    /// A request for the named action without arguments.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            arguments: BTreeMap::new(),
        }
    }
}

/// How a device took an action.
#[derive(Debug, Clone, PartialEq)]
pub enum ActionOutcome {
    /// The action has finished.
    Done {
        /// Output values the device reported, if any (e.g. a self-test result code).
        output: BTreeMap<String, Value>,
    },
    /// The device accepted the action and is carrying it out (e.g. rebooting); the link
    /// reports [`LinkEvent::Availability`] as the device goes away and comes back.
    Accepted,
}

/// Whether a device can be reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Availability {
    /// The device answers.
    Online,
    /// The device does not answer (or announced it is going away).
    Offline,
}

/// Something a device link observed without being asked.
#[derive(Debug, Clone, PartialEq)]
pub enum LinkEvent {
    /// Parameters changed value (only changed values are reported).
    Changed {
        /// When the change was observed.
        at: SystemTime,
        /// The new values.
        values: Readings,
    },
    /// The device became reachable or unreachable.
    Availability {
        /// When it was observed.
        at: SystemTime,
        /// The new availability.
        availability: Availability,
    },
}

/// One attached device, as an adapter presents it to the core.
///
/// Implementations are cheap handles onto the adapter's driver task for the shared resource (bus,
/// broker connection, radio); every method may be called concurrently. Every value written is
/// checked against the profile (see [`crate::profile::Parameter::check_value`]) before anything
/// is sent, and every failure is a [`LinkError`] of the documented kind.
#[async_trait]
pub trait DeviceLink: Send + Sync + Debug {
    /// Reads identity facts and the identity evidence available.
    async fn identify(&self) -> Result<Identity, LinkError>;

    /// Reads the named parameters. Fails as a whole: a link never returns a partial set.
    async fn read(&self, names: &[String]) -> Result<Readings, LinkError>;

    /// Writes the given values. Every value is checked before any is sent.
    async fn write(&self, values: &Readings) -> Result<(), LinkError>;

    /// Runs a declared action.
    async fn invoke(&self, action: &ActionRequest) -> Result<ActionOutcome, LinkError>;

    /// Subscribes to value changes and availability changes. Receivers that fall behind lose
    /// the oldest events and are told how many ([`broadcast::error::RecvError::Lagged`]).
    fn events(&self) -> broadcast::Receiver<LinkEvent>;

    /// The device's firmware target, if its profile declares a firmware method.
    fn firmware(&self) -> Option<&dyn FirmwareTarget>;

    /// The device's own log, if its profile declares a log method.
    fn logs(&self) -> Option<&dyn LogSource>;
}

//! What the HTTP layer and the device model tell eventing about a service: which service an
//! event URL belongs to, and which of its state variables are evented and how.

use std::time::Duration;

/// One evented service of one (virtual) device: the event URL a SUBSCRIBE arrives at maps to one
/// of these.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServiceKey {
    /// The device's UDN (without the `uuid:` prefix).
    pub device: uuid::Uuid,
    /// The service's `serviceId` from the device description
    /// (`urn:upnp-org:serviceId:ConfigurationManagement`).
    pub service_id: String,
}

/// Event moderation for one state variable (UDA 2.0 §2.5, `<sendEvents>` with `maximumRate` or
/// `minimumDelta` in the service description).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Moderation {
    /// Every change is evented.
    None,
    /// At most one event for this variable per period; a change inside the period is held and
    /// the latest value is evented when the period ends.
    MaximumRate(Duration),
    /// Numeric variables: a change is evented only when it differs from the last evented value
    /// by at least this much. Values that do not parse as numbers are always evented.
    MinimumDelta(f64),
}

/// One evented state variable of a service.
#[derive(Debug, Clone, PartialEq)]
pub struct EventedVariable {
    /// The variable's name as in the service description (`LastError`).
    pub name: String,
    /// How changes to it are moderated.
    pub moderation: Moderation,
}

impl EventedVariable {
    /// A variable whose every change is evented.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            moderation: Moderation::None,
        }
    }
}

/// Whether `name` can be the element name of an `<e:property>` child: ASCII letters, digits,
/// `_`, `-` and `.`, not starting with a digit, `-` or `.` (UPnP variable names are narrower
/// still).
pub(crate) fn is_variable_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        && name.len() <= 64
}

//! Errors a device link reports, classified so the core and controllers can act on them.

use std::time::Duration;

/// A failure of one operation on one device link.
///
/// The variants keep three kinds of failure apart, as controllers must treat them differently:
/// the gateway's own refusal before anything was sent (unknown parameter, value out of range,
/// unsupported operation), the device's own answer (a Modbus exception, a ZCL status, an SMP
/// return code, an MQTT error payload), and transport failure (timeout, corrupted frame,
/// disconnect). The device id and operation are added by the core when it reports the error.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum LinkError {
    /// The profile declares no parameter of this name.
    #[error("unknown parameter `{name}`; the device profile declares no such parameter")]
    UnknownParameter {
        /// The name that was asked for.
        name: String,
    },
    /// The profile declares no action of this name.
    #[error("unknown action `{name}`; the device profile declares no such action")]
    UnknownAction {
        /// The name that was asked for.
        name: String,
    },
    /// The parameter's access does not allow this operation.
    #[error("parameter `{name}` is {access}; {operation} is not allowed")]
    AccessDenied {
        /// The parameter.
        name: String,
        /// Its declared access (`read` or `write`).
        access: &'static str,
        /// What was attempted (`write` or `read`).
        operation: &'static str,
    },
    /// The value has the wrong type for the parameter.
    #[error("parameter `{name}` takes {expected}, got {got}")]
    WrongType {
        /// The parameter or argument.
        name: String,
        /// The declared type.
        expected: String,
        /// What was given.
        got: String,
    },
    /// The value is outside the declared range or set.
    #[error("value {value} for `{name}` is out of range: expected {expected}")]
    OutOfRange {
        /// The parameter or argument.
        name: String,
        /// The rejected value, as text.
        value: String,
        /// What would have been accepted.
        expected: String,
    },
    /// The device or its profile does not support this operation at all.
    #[error("{operation} is not supported by this device: {reason}")]
    Unsupported {
        /// The operation, e.g. `firmware revert`.
        operation: String,
        /// Why, e.g. `the profile declares no banks`.
        reason: String,
    },
    /// The device answered, and refused. `code` is the device's own code in its protocol's
    /// words, e.g. `Modbus exception 0x02 (illegal data address)`.
    #[error("the device refused: {code}{}", detail.as_deref().map(|d| format!(" ({d})")).unwrap_or_default())]
    DeviceRefused {
        /// The protocol's own error code and name.
        code: String,
        /// Anything else the device said.
        detail: Option<String>,
    },
    /// The device did not answer in time, including retries.
    #[error("no answer from the device within {after:?}")]
    Timeout {
        /// How long the gateway waited in total.
        after: Duration,
    },
    /// The transport failed: disconnected, corrupted frames, port unavailable.
    #[error("transport failure: {0}")]
    Transport(String),
    /// The device answered with something the gateway could not make sense of.
    #[error("malformed answer from the device: {0}")]
    Malformed(String),
    /// The link is busy with an operation that excludes this one (e.g. a firmware transfer).
    #[error("the device is busy: {0}")]
    Busy(String),
    /// The link has been closed (the device was detached or the gateway is stopping).
    #[error("the link to the device is closed")]
    Closed,
}

/// The stable classification of a [`LinkError`], for policy decisions and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// See [`LinkError::UnknownParameter`].
    UnknownParameter,
    /// See [`LinkError::UnknownAction`].
    UnknownAction,
    /// See [`LinkError::AccessDenied`].
    AccessDenied,
    /// See [`LinkError::WrongType`].
    WrongType,
    /// See [`LinkError::OutOfRange`].
    OutOfRange,
    /// See [`LinkError::Unsupported`].
    Unsupported,
    /// See [`LinkError::DeviceRefused`].
    DeviceRefused,
    /// See [`LinkError::Timeout`].
    Timeout,
    /// See [`LinkError::Transport`].
    Transport,
    /// See [`LinkError::Malformed`].
    Malformed,
    /// See [`LinkError::Busy`].
    Busy,
    /// See [`LinkError::Closed`].
    Closed,
}

impl LinkError {
    /// Attaching `device_id` failed because its profile's protocol section has `errors` (the
    /// catalog normally catches them before; this is the adapter's own guard).
    pub fn invalid_profile(
        device_id: &str,
        profile_id: &str,
        errors: &[crate::LocatedError],
    ) -> Self {
        Self::Unsupported {
            operation: format!("attaching device `{device_id}`"),
            reason: format!(
                "its profile `{profile_id}` has errors: {}",
                errors
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
        }
    }

    /// The classification of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::UnknownParameter { .. } => ErrorKind::UnknownParameter,
            Self::UnknownAction { .. } => ErrorKind::UnknownAction,
            Self::AccessDenied { .. } => ErrorKind::AccessDenied,
            Self::WrongType { .. } => ErrorKind::WrongType,
            Self::OutOfRange { .. } => ErrorKind::OutOfRange,
            Self::Unsupported { .. } => ErrorKind::Unsupported,
            Self::DeviceRefused { .. } => ErrorKind::DeviceRefused,
            Self::Timeout { .. } => ErrorKind::Timeout,
            Self::Transport(_) => ErrorKind::Transport,
            Self::Malformed(_) => ErrorKind::Malformed,
            Self::Busy(_) => ErrorKind::Busy,
            Self::Closed => ErrorKind::Closed,
        }
    }

    /// Whether trying the same operation again later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(
            self.kind(),
            ErrorKind::Timeout | ErrorKind::Transport | ErrorKind::Busy
        )
    }

    /// What an operator can do about it, in one sentence.
    pub fn hint(&self) -> &'static str {
        match self.kind() {
            ErrorKind::UnknownParameter | ErrorKind::UnknownAction => {
                "check the name against `iotmc-gateway profile show <profile id>`"
            }
            ErrorKind::AccessDenied | ErrorKind::WrongType | ErrorKind::OutOfRange => {
                "check the value against the parameter's declaration in the device profile"
            }
            ErrorKind::Unsupported => "the device profile does not declare this capability",
            ErrorKind::DeviceRefused => {
                "the device rejected the request; see its manual for the code, or check the profile's mapping"
            }
            ErrorKind::Timeout => {
                "check that the device is powered and wired, and its address in the gateway config"
            }
            ErrorKind::Transport => "check the cable, port or network path to the device",
            ErrorKind::Malformed => {
                "the device answered unexpectedly; check that the profile matches this device model"
            }
            ErrorKind::Busy => "retry once the running operation has finished",
            ErrorKind::Closed => "the device is detached; check the gateway log",
        }
    }
}

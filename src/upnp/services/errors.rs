//! The UPnP error codes our services answer, each description naming the device, the operation
//! and what to do. Codes 701–706 follow ConfigurationManagement:2's table; 707–711 are ours
//! (documented in README.md, "UPnP error codes").

use iotmc_adapter::{ErrorKind, LinkError};

use crate::upnp::device::VirtualDevice;
use crate::upnp::soap::UpnpError;

/// 701: an XML argument is malformed.
pub const INVALID_XML_ARGUMENT: u16 = 701;
/// 702: no such parameter path.
pub const NO_SUCH_NAME: u16 = 702;
/// 703: the value has the wrong type.
pub const INVALID_VALUE_TYPE: u16 = 703;
/// 704: the value is out of range or not allowed.
pub const INVALID_VALUE: u16 = 704;
/// 705: the parameter is read-only.
pub const READ_ONLY_VIOLATION: u16 = 705;
/// 706: one SetValues sets the same path twice.
pub const MULTIPLE_SET: u16 = 706;
/// 707: the device does not answer (timeout, transport failure); retry later.
pub const DEVICE_UNREACHABLE: u16 = 707;
/// 708: the device is busy with another operation; retry later.
pub const DEVICE_BUSY: u16 = 708;
/// 709: the device refused the request with its own error.
pub const DEVICE_REFUSED: u16 = 709;
/// 710: the device has no working link (its adapter is not built in, or attaching failed).
pub const DEVICE_DETACHED: u16 = 710;
/// 711: the device answered something the profile does not explain.
pub const DEVICE_MALFORMED: u16 = 711;
/// 720: a BatchSetValues BatchId already used (or in use) for a different request.
pub const BATCH_ID_REUSED: u16 = 720;

/// 701 for argument `argument` of `operation`.
pub fn invalid_xml(
    device: &VirtualDevice,
    operation: &str,
    argument: &str,
    why: &str,
) -> UpnpError {
    UpnpError::new(
        INVALID_XML_ARGUMENT,
        format!(
            "{operation} on {}: argument {argument} is not a valid {argument} document: {why}",
            device.describe()
        ),
    )
}

/// 702 for `path`.
pub fn no_such_name(device: &VirtualDevice, path: &str) -> UpnpError {
    UpnpError::new(
        NO_SUCH_NAME,
        format!(
            "{}: no parameter path `{}`; list the paths with GetSupportedParameters",
            device.describe(),
            path.chars().take(128).collect::<String>()
        ),
    )
}

/// 705 for `path`.
pub fn read_only(device: &VirtualDevice, path: &str) -> UpnpError {
    UpnpError::new(
        READ_ONLY_VIOLATION,
        format!("{}: `{path}` is read-only", device.describe()),
    )
}

/// 706 for `path`.
pub fn multiple_set(device: &VirtualDevice, path: &str) -> UpnpError {
    UpnpError::new(
        MULTIPLE_SET,
        format!(
            "{}: `{path}` appears more than once in one SetValues; send each path once",
            device.describe()
        ),
    )
}

/// The UPnP error for a link error during `operation`.
pub fn link_error(device: &VirtualDevice, operation: &str, error: &LinkError) -> UpnpError {
    let code = match error.kind() {
        ErrorKind::UnknownParameter => NO_SUCH_NAME,
        ErrorKind::UnknownAction | ErrorKind::Unsupported => 602,
        ErrorKind::AccessDenied => READ_ONLY_VIOLATION,
        ErrorKind::WrongType => INVALID_VALUE_TYPE,
        ErrorKind::OutOfRange => INVALID_VALUE,
        ErrorKind::DeviceRefused => DEVICE_REFUSED,
        ErrorKind::Timeout | ErrorKind::Transport => DEVICE_UNREACHABLE,
        ErrorKind::Busy => DEVICE_BUSY,
        ErrorKind::Closed => DEVICE_DETACHED,
        ErrorKind::Malformed => DEVICE_MALFORMED,
    };
    let hint = if code == DEVICE_DETACHED {
        "the gateway has no link to it: check the gateway log for why attaching failed, and that its protocol's adapter is built in"
    } else {
        error.hint()
    };
    UpnpError::new(
        code,
        format!("{operation} on {}: {error}; {hint}", device.describe()),
    )
}

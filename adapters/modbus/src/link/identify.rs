//! Identification: Read Device Identification (FC 0x2B / MEI 0x0E) through the basic, regular
//! and extended streams, following "more follows"; registers the profile declares otherwise.

use std::collections::BTreeMap;

use iotmc_adapter::{Identity, IdentityEvidence, LinkError, ValueType};

use super::Device;
use crate::driver::Priority;
use crate::frame::{DeviceIdCode, ExceptionCode, Request, Response, object_id};

/// Requests one stream may take before the device is considered to loop.
const MAX_REQUESTS_PER_STREAM: usize = 32;

pub(super) async fn identify(device: &Device) -> Result<Identity, LinkError> {
    let profile = &device.profile;
    let map = &device.section.identity;
    let mut objects = BTreeMap::new();
    if map.device_identification {
        let mut streams = vec![DeviceIdCode::Basic, DeviceIdCode::Regular];
        if map.serial_object.is_some() {
            streams.push(DeviceIdCode::Extended);
        }
        for code in streams {
            match read_stream(device, code).await? {
                Some(found) => objects.extend(found),
                // The device does not implement this stream (or the function at all).
                None => break,
            }
        }
    }
    let text = |id: u8| {
        objects
            .get(&id)
            .map(|bytes: &Vec<u8>| printable(bytes))
            .filter(|s| !s.is_empty())
    };
    let mut identity = Identity {
        manufacturer: text(object_id::VENDOR_NAME).unwrap_or_else(|| profile.manufacturer.clone()),
        model: text(object_id::MODEL_NAME)
            .or_else(|| text(object_id::PRODUCT_CODE))
            .unwrap_or_else(|| profile.model.clone()),
        serial: map.serial_object.and_then(text),
        firmware_version: text(object_id::MAJOR_MINOR_REVISION),
        hardware_version: None,
        // A Modbus device proves nothing about itself: its identity is its address and what
        // it says, which is never cryptographic evidence.
        evidence: IdentityEvidence::None,
    };
    for (point, slot, name) in [
        (&map.serial, &mut identity.serial, "serial number"),
        (
            &map.firmware_version,
            &mut identity.firmware_version,
            "firmware version",
        ),
        (
            &map.hardware_version,
            &mut identity.hardware_version,
            "hardware version",
        ),
    ] {
        let Some(point) = point else { continue };
        if slot.is_some() {
            continue;
        }
        let value_type = if point.encoding == Some(crate::profile::Encoding::String) {
            ValueType::String
        } else if point.scale.is_some() {
            ValueType::Float
        } else {
            ValueType::Int
        };
        let value = device
            .read_point(point, value_type, name, Priority::Management)
            .await?;
        *slot = Some(match value {
            iotmc_adapter::Value::Text(s) => s,
            other => other.to_string(),
        });
    }
    Ok(identity)
}

/// Reads one stream to its end; `None` if the device does not implement it.
async fn read_stream(
    device: &Device,
    code: DeviceIdCode,
) -> Result<Option<BTreeMap<u8, Vec<u8>>>, LinkError> {
    let mut objects = BTreeMap::new();
    let mut next = match code {
        DeviceIdCode::Basic => object_id::VENDOR_NAME,
        DeviceIdCode::Regular => object_id::VENDOR_URL,
        DeviceIdCode::Extended | DeviceIdCode::Specific => 0x80,
    };
    for _ in 0..MAX_REQUESTS_PER_STREAM {
        let request = Request::ReadDeviceIdentification {
            code,
            object_id: next,
        };
        let answer = device.call_raw(request, Priority::Management).await?;
        let identification = match answer {
            Ok(Response::ReadDeviceIdentification(identification)) => identification,
            Ok(other) => {
                return Err(LinkError::Malformed(format!(
                    "Read Device Identification answered with {other:?}"
                )));
            }
            // 01: no FC 0x2B at all; 02: no such object / stream. Both mean "not here".
            Err(ExceptionCode::IllegalFunction | ExceptionCode::IllegalDataAddress) => {
                return Ok(if objects.is_empty() {
                    None
                } else {
                    Some(objects)
                });
            }
            Err(code) => {
                return Err(super::ops::refused(
                    code,
                    "reading the device identification (FC 0x2B / MEI 0x0E)",
                ));
            }
        };
        objects.extend(identification.objects);
        if !identification.more_follows {
            return Ok(Some(objects));
        }
        if identification.next_object_id <= next {
            return Err(LinkError::Malformed(format!(
                "Read Device Identification: \"more follows\" points back to object 0x{:02X} after 0x{next:02X}",
                identification.next_object_id
            )));
        }
        next = identification.next_object_id;
    }
    Err(LinkError::Malformed(format!(
        "Read Device Identification did not end after {MAX_REQUESTS_PER_STREAM} requests"
    )))
}

/// Object bytes as text: printable ASCII kept, anything else dropped, trimmed.
fn printable(bytes: &[u8]) -> String {
    let text: String = bytes
        .iter()
        .filter(|b| b.is_ascii_graphic() || **b == b' ')
        .map(|&b| char::from(b))
        .collect();
    text.trim().to_owned()
}

//! Device addresses: `mqtt://<broker>/<device>`.
//!
//! `<broker>` names a `[[mqtt.brokers]]` entry of the gateway config; `<device>` is what the
//! dialect knows the device by: the Tasmota topic (`tasmota_5C2F1A`), the Homie device id
//! (`thermostat-3`), or the generic dialect's `{device}` in the profile's topic templates.

use std::fmt;
use std::str::FromStr;

/// Longest device part accepted, in bytes.
const MAX_DEVICE_LEN: usize = 200;

/// A parsed device address.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Address {
    /// The broker's name in the gateway config.
    pub broker: String,
    /// The device's name on that broker, in its dialect's terms.
    pub device: String,
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "mqtt://{}/{}", self.broker, self.device)
    }
}

impl FromStr for Address {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        const EXPECTED: &str = "expected `mqtt://<broker>/<device>`, where <broker> names a [[mqtt.brokers]] entry and <device> is the device's topic or id, e.g. `mqtt://plant-room/tasmota_5C2F1A`";
        let rest = s
            .strip_prefix("mqtt://")
            .ok_or_else(|| EXPECTED.to_owned())?;
        let (broker, device) = rest.split_once('/').ok_or_else(|| EXPECTED.to_owned())?;
        if broker.is_empty()
            || !broker
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(format!(
                "broker name {broker:?} must be letters, digits, `-` and `_`; {EXPECTED}"
            ));
        }
        if device.is_empty() {
            return Err(format!("the device part is empty; {EXPECTED}"));
        }
        if device.len() > MAX_DEVICE_LEN {
            return Err(format!(
                "the device part is {} bytes; at most {MAX_DEVICE_LEN}; {EXPECTED}",
                device.len()
            ));
        }
        if device.contains(['+', '#', '\0'])
            || device.starts_with('/')
            || device.ends_with('/')
            || device.contains("//")
        {
            return Err(format!(
                "the device part {device:?} cannot hold `+`, `#`, NUL or empty topic levels; {EXPECTED}"
            ));
        }
        Ok(Self {
            broker: broker.to_owned(),
            device: device.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_should_parse_broker_and_device() {
        let a: Address = "mqtt://plant-room/tasmota_5C2F1A".parse().unwrap();
        assert_eq!(a.broker, "plant-room");
        assert_eq!(a.device, "tasmota_5C2F1A");
        assert_eq!(a.to_string(), "mqtt://plant-room/tasmota_5C2F1A");
        let nested: Address = "mqtt://b/floor4/ahu-1".parse().unwrap();
        assert_eq!(nested.device, "floor4/ahu-1");
    }

    #[test]
    fn bad_addresses_should_say_what_was_expected() {
        for bad in [
            "tcp://b/x",
            "mqtt://b",
            "mqtt:///x",
            "mqtt://b/",
            "mqtt://b/x/+",
            "mqtt://b/#",
            "mqtt://b//x",
            "mqtt://b a/x",
        ] {
            let err = bad.parse::<Address>().unwrap_err();
            assert!(err.contains("mqtt://"), "{bad}: {err}");
        }
    }
}

//! The devices SSDP advertises and the advertisements each one makes (UDA 2.0 §1.1.2), and how
//! a search target picks among them (UDA 2.0 §1.3.2, including lower versions).

use std::sync::Arc;

use uuid::Uuid;

/// One root device to advertise: a virtual managed device, or the gateway itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdvertisedDevice {
    /// The device's UDN (stable across restarts, DESIGN.md §4).
    pub udn: Uuid,
    /// Full device type URN with version, e.g.
    /// `urn:schemas-upnp-org:device:ManageableDevice:2`.
    pub device_type: String,
    /// Full service type URNs with version. Duplicates are advertised once.
    pub service_types: Vec<String>,
    /// Path of the device description on the HTTP listener, e.g.
    /// `/upnp/<udn>/description.xml`; LOCATION is `http://<iface addr>:<http_port><path>`.
    pub description_path: String,
    /// The management capabilities the device supports (a subset of `config`, `firmware`,
    /// `diagnostics`, `lifecycle`), sent comma separated in the `MANAGEMENT.<vendor domain>`
    /// header. The header is left out when this is empty.
    pub capabilities: Vec<String>,
}

/// One advertisement: the NT of a NOTIFY (and ST of a search response) and its USN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Advert {
    /// Notification type.
    pub(crate) nt: String,
    /// Unique service name.
    pub(crate) usn: String,
}

/// Why a device cannot be advertised.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum DeviceError {
    /// A type is not of the form `urn:<domain>:device|service:<type>:<version>`.
    #[error("`{0}` is not a `urn:<domain>:<device|service>:<type>:<version>` type")]
    BadType(String),
    /// A value would break the header it goes into.
    #[error("{field} `{value}` contains a space, control character or is empty")]
    BadValue {
        /// Which field.
        field: &'static str,
        /// Its value.
        value: String,
    },
}

/// A device with its advertisements worked out once, shared by the announce scheduler, the
/// search responder and every queued datagram.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct DeviceAdverts {
    /// The device as given.
    pub(crate) device: AdvertisedDevice,
    /// `upnp:rootdevice`, `uuid:<udn>`, the device type, then each distinct service type.
    pub(crate) adverts: Vec<Advert>,
    /// The capabilities, comma separated.
    pub(crate) capabilities: String,
}

/// Index of the `uuid:<udn>` advert in [`DeviceAdverts::adverts`].
const UUID_ADVERT: usize = 1;
/// Index of the device type advert.
const DEVICE_TYPE_ADVERT: usize = 2;

impl DeviceAdverts {
    /// Works out the advertisements of `device`, after checking that every value it puts on
    /// the wire is a single token.
    pub(crate) fn new(device: AdvertisedDevice) -> Result<Arc<Self>, DeviceError> {
        check_type(&device.device_type, "device")?;
        for service in &device.service_types {
            check_type(service, "service")?;
        }
        check_token("description path", &device.description_path)?;
        if !device.description_path.starts_with('/') {
            return Err(DeviceError::BadValue {
                field: "description path",
                value: device.description_path.clone(),
            });
        }
        for capability in &device.capabilities {
            if capability.contains(',') {
                return Err(DeviceError::BadValue {
                    field: "capability",
                    value: capability.clone(),
                });
            }
            check_token("capability", capability)?;
        }
        let uuid = format!("uuid:{}", device.udn.hyphenated());
        let with_usn = |nt: &str| Advert {
            nt: nt.to_owned(),
            usn: format!("{uuid}::{nt}"),
        };
        let mut adverts = vec![
            with_usn("upnp:rootdevice"),
            Advert {
                nt: uuid.clone(),
                usn: uuid.clone(),
            },
            with_usn(&device.device_type),
        ];
        for service in &device.service_types {
            if !adverts.iter().any(|a| &a.nt == service) {
                adverts.push(with_usn(service));
            }
        }
        let capabilities = device.capabilities.join(",");
        Ok(Arc::new(Self {
            device,
            adverts,
            capabilities,
        }))
    }

    /// The device's UDN.
    pub(crate) fn udn(&self) -> Uuid {
        self.device.udn
    }

    /// The answers this device gives to a search for `st`, in advert order.
    pub(crate) fn answers(&self, st: &str) -> Vec<Answer> {
        match st {
            "ssdp:all" => (0..self.adverts.len()).map(Answer::Advert).collect(),
            "upnp:rootdevice" => vec![Answer::Advert(0)],
            _ if st.get(..5).is_some_and(|p| p.eq_ignore_ascii_case("uuid:")) => {
                match st.get(5..).map(Uuid::try_parse) {
                    Some(Ok(uuid)) if uuid == self.udn() => vec![Answer::Advert(UUID_ADVERT)],
                    _ => Vec::new(),
                }
            }
            _ if st.starts_with("urn:") => self
                .adverts
                .iter()
                .enumerate()
                .skip(DEVICE_TYPE_ADVERT)
                .filter_map(|(i, advert)| match version_match(st, &advert.nt)? {
                    Version::Same => Some(Answer::Advert(i)),
                    Version::Lower => Some(Answer::Lower(Arc::from(st))),
                })
                .collect(),
            _ => Vec::new(),
        }
    }
}

/// One answer to a search: an advert as is, or a device or service type at the lower version
/// the search asked for (UDA 2.0 §1.3.3: the response's ST, and so its USN, carry the version
/// of the request).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Answer {
    /// `adverts[i]` of the device.
    Advert(usize),
    /// The searched type, a lower version of one the device offers.
    Lower(Arc<str>),
}

impl Answer {
    /// The ST and USN of the response.
    pub(crate) fn st_usn(&self, device: &DeviceAdverts) -> (String, String) {
        match self {
            Self::Advert(i) => device
                .adverts
                .get(*i)
                .map(|a| (a.nt.clone(), a.usn.clone()))
                .unwrap_or_default(),
            Self::Lower(st) => (
                st.to_string(),
                format!("uuid:{}::{st}", device.udn().hyphenated()),
            ),
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Version {
    Same,
    Lower,
}

/// Whether a search for type URN `searched` is answered by `offered`: the same type (all but
/// the version equal) at the same or a higher version.
fn version_match(searched: &str, offered: &str) -> Option<Version> {
    let (searched_type, searched_version) = split_version(searched)?;
    let (offered_type, offered_version) = split_version(offered)?;
    if searched_type != offered_type || searched_version > offered_version {
        return None;
    }
    Some(if searched_version == offered_version {
        Version::Same
    } else {
        Version::Lower
    })
}

fn split_version(urn: &str) -> Option<(&str, u32)> {
    let (kind, version) = urn.rsplit_once(':')?;
    if version.is_empty() || !version.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let version = version.parse().ok().filter(|v| *v >= 1)?;
    Some((kind, version))
}

fn check_type(urn: &str, kind: &str) -> Result<(), DeviceError> {
    let bad = || DeviceError::BadType(urn.to_owned());
    check_token("type", urn).map_err(|_| bad())?;
    let parts: Vec<_> = urn.split(':').collect();
    match parts.as_slice() {
        ["urn", domain, k, name, _] if !domain.is_empty() && *k == kind && !name.is_empty() => {
            split_version(urn).map(|_| ()).ok_or_else(bad)
        }
        _ => Err(bad()),
    }
}

/// Rejects empty values and values with whitespace or control characters: each one must stay a
/// single token on its header line.
pub(crate) fn check_token(field: &'static str, value: &str) -> Result<(), DeviceError> {
    if value.is_empty() || value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(DeviceError::BadValue {
            field,
            value: value.to_owned(),
        });
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A managed device with BasicManagement:2 and a vendor service.
    pub(crate) fn managed(n: u128) -> AdvertisedDevice {
        let udn = Uuid::from_u128(0x1234_0000_0000_4000_8000_0000_0000_0000 + n);
        AdvertisedDevice {
            udn,
            device_type: "urn:schemas-upnp-org:device:ManageableDevice:2".into(),
            service_types: vec![
                "urn:schemas-upnp-org:service:BasicManagement:2".into(),
                "urn:schemas-upnp-org:service:ConfigurationManagement:2".into(),
                "urn:example-com:service:FirmwareUpdate:1".into(),
            ],
            description_path: format!("/upnp/{udn}/description.xml"),
            capabilities: vec!["config".into(), "firmware".into()],
        }
    }

    fn nts(device: &DeviceAdverts) -> Vec<&str> {
        device.adverts.iter().map(|a| a.nt.as_str()).collect()
    }

    #[test]
    fn adverts_should_be_rootdevice_uuid_device_type_then_each_service_once() {
        let mut device = managed(1);
        device
            .service_types
            .push("urn:schemas-upnp-org:service:BasicManagement:2".into());
        let adverts = DeviceAdverts::new(device).unwrap();
        let uuid = "uuid:12340000-0000-4000-8000-000000000001";
        assert_eq!(
            nts(&adverts),
            [
                "upnp:rootdevice",
                uuid,
                "urn:schemas-upnp-org:device:ManageableDevice:2",
                "urn:schemas-upnp-org:service:BasicManagement:2",
                "urn:schemas-upnp-org:service:ConfigurationManagement:2",
                "urn:example-com:service:FirmwareUpdate:1",
            ]
        );
        assert_eq!(adverts.adverts[0].usn, format!("{uuid}::upnp:rootdevice"));
        assert_eq!(adverts.adverts[1].usn, uuid);
        assert_eq!(
            adverts.adverts[5].usn,
            format!("{uuid}::urn:example-com:service:FirmwareUpdate:1")
        );
        assert_eq!(adverts.capabilities, "config,firmware");
    }

    #[test]
    fn a_device_with_a_header_breaking_value_should_be_refused() {
        let mut crlf = managed(1);
        crlf.description_path = "/d.xml\r\nX-Evil: 1".into();
        assert!(DeviceAdverts::new(crlf).is_err());
        let mut bad_type = managed(1);
        bad_type.service_types = vec!["urn:schemas-upnp-org:device:BasicManagement:2".into()];
        assert!(DeviceAdverts::new(bad_type).is_err());
        let mut no_version = managed(1);
        no_version.device_type = "urn:schemas-upnp-org:device:ManageableDevice:x".into();
        assert!(DeviceAdverts::new(no_version).is_err());
        let mut comma = managed(1);
        comma.capabilities = vec!["config,firmware".into()];
        assert!(DeviceAdverts::new(comma).is_err());
    }

    #[test]
    fn a_lower_version_should_match_and_a_higher_one_should_not() {
        let basic2 = "urn:schemas-upnp-org:service:BasicManagement:2";
        let basic1 = "urn:schemas-upnp-org:service:BasicManagement:1";
        let basic3 = "urn:schemas-upnp-org:service:BasicManagement:3";
        assert_eq!(version_match(basic2, basic2), Some(Version::Same));
        assert_eq!(version_match(basic1, basic2), Some(Version::Lower));
        assert_eq!(version_match(basic3, basic2), None);
        assert_eq!(
            version_match("urn:schemas-upnp-org:service:BasicManagement:0", basic2),
            None
        );
        assert_eq!(
            version_match("urn:schemas-upnp-org:service:Basic:1", basic2),
            None
        );
        assert_eq!(
            version_match("urn:schemas-upnp-org:service:BasicManagement:+1", basic2),
            None
        );
    }
}

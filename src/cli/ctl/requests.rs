//! What each `ctl` command sends: the action, its service and its in arguments, built from the
//! command line. Pure, so tests check every request against the service descriptions.

use std::time::SystemTime;

use uuid::Uuid;

use crate::upnp::scpd::ServiceSpec;
use crate::upnp::services::cms::{CMS_NS, PARAMETERS};
use crate::upnp::services::specs::{
    CONFIGURATION_MANAGEMENT, FIRMWARE_UPDATE, MANAGEMENT_CONTROLLER,
};
use crate::upnp::xml_text::escape;

/// One action call: which service (on the gateway or a device), which action, which arguments.
#[derive(Debug, Clone)]
pub(super) struct Call {
    /// The service.
    pub(super) spec: &'static ServiceSpec,
    /// The action's name.
    pub(super) action: &'static str,
    /// The in arguments, in the order the action declares them.
    pub(super) args: Vec<(&'static str, String)>,
}

impl Call {
    fn new(
        spec: &'static ServiceSpec,
        action: &'static str,
        args: Vec<(&'static str, String)>,
    ) -> Self {
        Self { spec, action, args }
    }
}

/// A UDN as the gateway's actions take it: `uuid:<uuid>`.
pub(super) fn udn_argument(udn: Uuid) -> String {
    format!("uuid:{udn}")
}

/// The UUID in `name` if it is a UDN (`uuid:...` or a bare UUID), not a device id.
pub(super) fn parse_udn(name: &str) -> Option<Uuid> {
    let name = name.trim();
    Uuid::parse_str(name.strip_prefix("uuid:").unwrap_or(name)).ok()
}

/// GetInventory.
pub(super) fn inventory() -> Call {
    Call::new(&MANAGEMENT_CONTROLLER, "GetInventory", Vec::new())
}

/// ApproveEnrollment(DeviceUDN, Group); an empty group lets the gateway's policy choose.
pub(super) fn approve(udn: Uuid, group: Option<&str>) -> Call {
    Call::new(
        &MANAGEMENT_CONTROLLER,
        "ApproveEnrollment",
        vec![
            ("DeviceUDN", udn_argument(udn)),
            ("Group", group.unwrap_or_default().to_owned()),
        ],
    )
}

/// RejectEnrollment(DeviceUDN, Reason).
pub(super) fn reject(udn: Uuid, reason: &str) -> Call {
    Call::new(
        &MANAGEMENT_CONTROLLER,
        "RejectEnrollment",
        vec![
            ("DeviceUDN", udn_argument(udn)),
            ("Reason", reason.to_owned()),
        ],
    )
}

/// AssignGroup(DeviceUDN, Group).
pub(super) fn assign_group(udn: Uuid, group: &str) -> Call {
    Call::new(
        &MANAGEMENT_CONTROLLER,
        "AssignGroup",
        vec![
            ("DeviceUDN", udn_argument(udn)),
            ("Group", group.to_owned()),
        ],
    )
}

/// DecommissionDevice(DeviceUDN, Reason).
pub(super) fn decommission(udn: Uuid, reason: &str) -> Call {
    Call::new(
        &MANAGEMENT_CONTROLLER,
        "DecommissionDevice",
        vec![
            ("DeviceUDN", udn_argument(udn)),
            ("Reason", reason.to_owned()),
        ],
    )
}

/// ConfigurationManagement SetValues of `(path, value)` pairs.
pub(super) fn set_values(values: &[(String, String)]) -> Call {
    Call::new(
        &CONFIGURATION_MANAGEMENT,
        "SetValues",
        vec![("ParameterValueList", parameter_value_list(values))],
    )
}

/// BatchSetValues(BatchId, Targets, ParameterValueList, MaxConcurrent).
pub(super) fn batch_set(
    batch_id: &str,
    targets: &str,
    values: &[(String, String)],
    max_concurrent: u32,
) -> Call {
    Call::new(
        &MANAGEMENT_CONTROLLER,
        "BatchSetValues",
        vec![
            ("BatchId", batch_id.to_owned()),
            ("Targets", targets.to_owned()),
            ("ParameterValueList", parameter_value_list(values)),
            ("MaxConcurrent", max_concurrent.to_string()),
        ],
    )
}

/// FirmwareUpdate ScheduleFirmwareUpdate(StartTime, ImageSha256).
pub(super) fn schedule_firmware(start: &str, image: &str) -> Call {
    Call::new(
        &FIRMWARE_UPDATE,
        "ScheduleFirmwareUpdate",
        vec![
            ("StartTime", start.to_owned()),
            ("ImageSha256", image.to_owned()),
        ],
    )
}

/// FirmwareUpdate GetFirmwareUpdateStatus.
pub(super) fn firmware_status() -> Call {
    Call::new(&FIRMWARE_UPDATE, "GetFirmwareUpdateStatus", Vec::new())
}

/// `NAME=VALUE` arguments as `(path, value)`: a NAME starting with `/` is a whole parameter
/// path, any other is a profile parameter under `/IoTMC/Parameters/`.
pub(super) fn assignments(pairs: &[String]) -> Result<Vec<(String, String)>, String> {
    if pairs.is_empty() {
        return Err("give at least one NAME=VALUE".into());
    }
    pairs
        .iter()
        .map(|pair| {
            let (name, value) = pair
                .split_once('=')
                .ok_or_else(|| format!("`{pair}` is not NAME=VALUE (e.g. setpoint=21.5)"))?;
            let name = name.trim();
            if name.is_empty() {
                return Err(format!("`{pair}` has no parameter name before ="));
            }
            let path = if name.starts_with('/') {
                name.to_owned()
            } else {
                format!("{PARAMETERS}{name}")
            };
            Ok((path, value.to_owned()))
        })
        .collect()
}

/// A ConfigurationManagement `ParameterValueList` setting `values`, text escaped.
pub(super) fn parameter_value_list(values: &[(String, String)]) -> String {
    let items: String = values
        .iter()
        .map(|(path, value)| {
            format!(
                "<Parameter><ParameterPath>{}</ParameterPath><Value>{}</Value></Parameter>",
                escape(path),
                escape(value)
            )
        })
        .collect();
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><cms:ParameterValueList xmlns:cms="{CMS_NS}">{items}</cms:ParameterValueList>"#
    )
}

/// A fresh batch id (a random UUID).
pub(super) fn fresh_batch_id() -> String {
    uuid::Builder::from_random_bytes(rand::random())
        .into_uuid()
        .to_string()
}

/// ScheduleFirmwareUpdate's StartTime: `at` (UTC, RFC 3339) checked and normalised, or `now`.
pub(super) fn start_time(at: Option<&str>, now: SystemTime) -> Result<String, String> {
    let at = match at {
        Some(text) => crate::utc::parse(text).map_err(|why| format!("--at {why}"))?,
        None => now,
    };
    Ok(humantime::format_rfc3339_seconds(at).to_string())
}

/// ScheduleFirmwareUpdate's ImageSha256: 64 hex digits (lower-cased), or empty for the image
/// on offer.
pub(super) fn image_sha256(image: Option<&str>) -> Result<String, String> {
    let Some(image) = image.map(str::trim) else {
        return Ok(String::new());
    };
    if image.len() == 64 && image.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(image.to_ascii_lowercase())
    } else {
        Err(format!(
            "--image `{}` is not a SHA-256 (64 hex digits, as `firmware inspect` prints it)",
            image.chars().take(80).collect::<String>()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The gateway's own argument check, as it would run on the call.
    fn accepted(call: &Call) {
        let action = call.spec.action(call.action).unwrap();
        let given: Vec<(String, String)> = call
            .args
            .iter()
            .map(|(n, v)| ((*n).to_owned(), v.clone()))
            .collect();
        call.spec
            .check_arguments(action, &given)
            .unwrap_or_else(|e| panic!("{}: {e}", call.action));
    }

    #[test]
    fn every_request_should_pass_the_gateways_own_argument_check() {
        let udn = Uuid::from_u128(7);
        let values = vec![("/IoTMC/Parameters/setpoint".to_owned(), "21.5".to_owned())];
        for call in [
            inventory(),
            approve(udn, Some("lights")),
            approve(udn, None),
            reject(udn, "unknown device"),
            assign_group(udn, "hvac"),
            decommission(udn, "replaced"),
            set_values(&values),
            batch_set("b-1", "group:hvac", &values, 4),
            schedule_firmware("2026-11-24T02:30:00Z", ""),
            firmware_status(),
        ] {
            accepted(&call);
        }
    }

    #[test]
    fn enrollment_requests_should_name_the_device_by_its_udn() {
        let udn = Uuid::from_u128(0x1234);
        let call = approve(udn, None);
        assert_eq!(call.args[0], ("DeviceUDN", format!("uuid:{udn}")));
        assert_eq!(call.args[1], ("Group", String::new()));
        assert_eq!(reject(udn, "no").args[1], ("Reason", "no".to_owned()));
    }

    #[test]
    fn a_udn_should_be_told_apart_from_a_device_id() {
        let udn = Uuid::from_u128(42);
        assert_eq!(parse_udn(&format!("uuid:{udn}")), Some(udn));
        assert_eq!(parse_udn(&udn.to_string()), Some(udn));
        assert_eq!(parse_udn("thermostat-1"), None);
    }

    #[test]
    fn assignments_should_map_names_to_parameter_paths_and_keep_values_whole() {
        let pairs = assignments(&[
            "setpoint=21.5".to_owned(),
            "/IoTMC/Parameters/mode=eco".to_owned(),
            "label=a=b ".to_owned(),
            "empty=".to_owned(),
        ])
        .unwrap();
        assert_eq!(
            pairs,
            [
                ("/IoTMC/Parameters/setpoint".to_owned(), "21.5".to_owned()),
                ("/IoTMC/Parameters/mode".to_owned(), "eco".to_owned()),
                ("/IoTMC/Parameters/label".to_owned(), "a=b ".to_owned()),
                ("/IoTMC/Parameters/empty".to_owned(), String::new()),
            ]
        );
        assert!(
            assignments(&["setpoint".to_owned()])
                .unwrap_err()
                .contains("NAME=VALUE")
        );
        assert!(
            assignments(&["=1".to_owned()])
                .unwrap_err()
                .contains("no parameter name")
        );
        assert!(assignments(&[]).is_err());
    }

    #[test]
    fn a_parameter_value_list_should_parse_back_to_the_same_values() {
        let values = vec![
            ("/IoTMC/Parameters/label".to_owned(), "<b>&\"x\"".to_owned()),
            ("/IoTMC/Parameters/setpoint".to_owned(), "22".to_owned()),
        ];
        let list = parameter_value_list(&values);
        let items = crate::upnp::xml_list::parse(&list, "ParameterValueList").unwrap();
        let parsed: Vec<(String, String)> = items
            .iter()
            .map(|i| {
                (
                    i.field("ParameterPath").unwrap().to_owned(),
                    i.field("Value").unwrap().to_owned(),
                )
            })
            .collect();
        assert_eq!(parsed, values);
    }

    #[test]
    fn batch_ids_should_be_fresh_uuids() {
        let (a, b) = (fresh_batch_id(), fresh_batch_id());
        assert_ne!(a, b);
        assert_eq!(Uuid::parse_str(&a).unwrap().get_version_num(), 4);
    }

    #[test]
    fn start_times_should_be_utc_and_default_to_now() {
        let now = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_790_000_000);
        assert_eq!(start_time(None, now).unwrap(), "2026-09-21T14:13:20Z");
        assert_eq!(
            start_time(Some("2026-11-24T02:30:00Z"), now).unwrap(),
            "2026-11-24T02:30:00Z"
        );
        let err = start_time(Some("2026-11-24T02:30:00+01:00"), now).unwrap_err();
        assert!(
            err.starts_with("--at") && err.contains("zone offset"),
            "{err}"
        );
        assert!(start_time(Some("tomorrow"), now).is_err());
    }

    #[test]
    fn an_image_should_be_a_sha256_or_nothing() {
        assert_eq!(image_sha256(None).unwrap(), "");
        let upper = "AB".repeat(32);
        assert_eq!(image_sha256(Some(&upper)).unwrap(), "ab".repeat(32));
        assert!(
            image_sha256(Some("abc"))
                .unwrap_err()
                .contains("64 hex digits")
        );
    }
}

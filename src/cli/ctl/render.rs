//! What `ctl` prints: tables and lines for people, JSON for scripts. Pure: values in, text out.

use serde_json::{Value, json};

use super::records::{BatchResults, FirmwareStatus, InventoryDevice};
use super::session::Target;

/// Rows under a header, each column as wide as its widest cell, two spaces apart.
fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut text = String::new();
        for (i, (cell, width)) in cells.zip(&widths).enumerate() {
            if i > 0 {
                text.push_str("  ");
            }
            text.push_str(cell);
            if i + 1 < widths.len() {
                text.extend(std::iter::repeat_n(
                    ' ',
                    width.saturating_sub(cell.chars().count()),
                ));
            }
        }
        out.push_str(text.trim_end());
        out.push('\n');
    };
    line(&mut header.iter().copied());
    for row in rows {
        line(&mut row.iter().map(String::as_str));
    }
    out
}

fn or_dash(value: Option<&str>) -> String {
    match value {
        Some(v) if !v.trim().is_empty() => v.to_owned(),
        _ => "-".to_owned(),
    }
}

/// The device table of `ctl devices`; ENROLLMENT and EVIDENCE columns when the gateway
/// reports them.
pub(super) fn devices(devices: &[InventoryDevice]) -> String {
    let enrollment = devices.iter().any(|d| d.enrollment.is_some());
    let evidence = devices.iter().any(|d| d.evidence.is_some());
    let mut header = vec![
        "ID",
        "UDN",
        "PROTOCOL",
        "ADDRESS",
        "PROFILE",
        "GROUP",
        "LIFECYCLE",
        "AVAILABILITY",
    ];
    if enrollment {
        header.push("ENROLLMENT");
    }
    if evidence {
        header.push("EVIDENCE");
    }
    let rows: Vec<Vec<String>> = devices
        .iter()
        .map(|d| {
            let mut row = vec![
                d.id.clone(),
                d.udn.clone(),
                d.protocol.clone(),
                d.address.clone(),
                d.profile.clone(),
                or_dash(d.group.as_deref()),
                d.lifecycle_state.clone(),
                d.availability.clone(),
            ];
            if enrollment {
                row.push(or_dash(d.enrollment.as_deref()));
            }
            if evidence {
                row.push(or_dash(d.evidence.as_deref()));
            }
            row
        })
        .collect();
    let mut out = table(&header, &rows);
    out.push_str(&format!("{} device(s)\n", devices.len()));
    out
}

/// The per-device results of `ctl batch-set`.
pub(super) fn batch(results: &BatchResults, batch_id: &str) -> String {
    let failed = results.results.iter().filter(|d| !d.succeeded()).count();
    let mut out = format!(
        "batch {}: {} device(s), {} succeeded, {} failed{}\n",
        results.batch_id.as_deref().unwrap_or(batch_id),
        results.devices.unwrap_or(results.results.len() as u32),
        results
            .succeeded
            .unwrap_or((results.results.len() - failed) as u32),
        results.failed.unwrap_or(failed as u32),
        if results.replayed {
            " (the results of an earlier run of this batch id: nothing was written again)"
        } else {
            ""
        }
    );
    let rows: Vec<Vec<String>> = results
        .results
        .iter()
        .map(|d| {
            vec![
                d.id.clone(),
                d.udn.clone(),
                d.status.clone(),
                or_dash(d.configuration_version.as_deref()),
                match (d.error_code, &d.error_description) {
                    (Some(code), Some(text)) => format!("UPnPError {code}: {text}"),
                    (Some(code), None) => format!("UPnPError {code}"),
                    (None, Some(text)) => text.clone(),
                    (None, None) => "-".to_owned(),
                },
            ]
        })
        .collect();
    out.push_str(&table(
        &["ID", "UDN", "STATUS", "CONFIG-VER", "ERROR"],
        &rows,
    ));
    out
}

/// The JSON of `ctl batch-set`.
pub(super) fn batch_json(results: &BatchResults, batch_id: &str) -> Value {
    let mut value = json!(results);
    if results.batch_id.is_none() {
        value["batch_id"] = json!(batch_id);
    }
    value["ok"] = json!(!results.any_failed());
    value
}

/// One line of firmware progress: `thermostat-1 (uuid:..): Transferring 45% (450/1000 bytes),
/// update u-7: detail`.
pub(super) fn firmware_line(device: &Target, status: &FirmwareStatus) -> String {
    let mut line = format!("{}: {}", device.label(), status.status);
    if let Some(percent) = status.percent() {
        line.push_str(&format!(
            " {percent}% ({}/{} bytes)",
            status.bytes_acknowledged, status.bytes_total
        ));
    }
    if !status.update_id.is_empty() {
        line.push_str(&format!(", update {}", status.update_id));
    }
    if status.result_code != 0 {
        line.push_str(&format!(", result {}", status.result_code));
    }
    if let Some(ends) = &status.probation_ends {
        line.push_str(&format!(", probation ends {ends}"));
    }
    if !status.detail.is_empty() {
        line.push_str(&format!(": {}", status.detail));
    }
    line
}

/// The JSON of a firmware status, with the device and, when following, the time.
pub(super) fn firmware_json(device: &Target, status: &FirmwareStatus, time: Option<&str>) -> Value {
    let mut value = json!(status);
    value["device"] = json!(device.id);
    value["udn"] = json!(format!("uuid:{}", device.udn));
    value["percent"] = json!(status.percent());
    if let Some(time) = time {
        value["time"] = json!(time);
    }
    value
}

/// The JSON of a device action's outcome: the device, the action and its out arguments.
pub(super) fn action_json(device: &Target, action: &str, out: &[(String, String)]) -> Value {
    let mut value = json!({
        "device": device.id,
        "udn": format!("uuid:{}", device.udn),
        "action": action,
    });
    for (name, v) in out {
        value[snake_case(name)] = json!(v);
    }
    value
}

/// DecommissionDevice's `Result` fields in words: `certificate 0a1b revoked, factory reset:
/// done, 12 log records wiped, audit record kept`.
pub(super) fn decommissioned(fields: &[(String, String)]) -> String {
    let get = |name: &str| {
        fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.trim())
            .filter(|v| !v.is_empty())
    };
    let mut parts = Vec::new();
    parts.push(match get("RevokedSerial") {
        Some(serial) => format!("certificate {serial} revoked"),
        None => "no certificate to revoke".to_owned(),
    });
    if let Some(reset) = get("FactoryReset") {
        parts.push(format!("factory reset: {reset}"));
    }
    if let Some(wiped) = get("WipedLogRecords") {
        parts.push(format!("{wiped} log records wiped"));
    }
    if let Some(audit) = get("Audit") {
        parts.push(format!("audit record {audit}"));
    }
    parts.join(", ")
}

/// Fields as a JSON object with snake_case keys.
pub(super) fn fields_json(fields: &[(String, String)]) -> Value {
    let mut value = json!({});
    for (name, v) in fields {
        value[snake_case(name)] = json!(v);
    }
    value
}

/// `LifecycleState` → `lifecycle_state`, `DeviceUDN` → `device_udn`.
pub(super) fn snake_case(name: &str) -> String {
    let chars: Vec<char> = name.chars().collect();
    let mut out = String::with_capacity(name.len() + 4);
    for (i, c) in chars.iter().enumerate() {
        if c.is_ascii_uppercase() {
            let after_lower = i > 0 && chars[i - 1].is_ascii_lowercase();
            let before_lower = i > 0
                && chars[i - 1].is_ascii_uppercase()
                && chars.get(i + 1).is_some_and(|n| n.is_ascii_lowercase());
            if after_lower || before_lower {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(*c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::ctl::records::BatchDevice;
    use uuid::Uuid;

    fn device(id: &str, group: Option<&str>, evidence: Option<&str>) -> InventoryDevice {
        InventoryDevice {
            id: id.into(),
            udn: format!("uuid:{}", Uuid::from_u128(1)),
            protocol: "modbus".into(),
            address: "tcp://10.0.0.5:502?unit=1".into(),
            profile: "acme-meter".into(),
            group: group.map(Into::into),
            lifecycle_state: "Commissioned".into(),
            availability: "Online".into(),
            enrollment: None,
            evidence: evidence.map(Into::into),
            other: Default::default(),
        }
    }

    #[test]
    fn the_device_table_should_align_columns_and_show_evidence_only_when_reported() {
        let text = devices(&[
            device("meter-1", Some("energy"), None),
            device("m2", None, None),
        ]);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4, "{text}");
        assert!(lines[0].starts_with("ID       UDN"), "{text}");
        assert!(!lines[0].contains("EVIDENCE"));
        assert!(lines[1].contains("  energy  "), "{text}");
        assert!(lines[2].contains("  -  "), "{text}");
        // Every row's UDN starts in the same column.
        let at = lines[0].find("UDN").unwrap();
        assert!(
            lines[1..3].iter().all(|l| l[at..].starts_with("uuid:")),
            "{text}"
        );
        assert_eq!(lines[3], "2 device(s)");

        let with = devices(&[device("a", None, Some("install-code"))]);
        assert!(with.lines().next().unwrap().ends_with("EVIDENCE"), "{with}");
        assert!(with.contains("install-code"));
    }

    #[test]
    fn batch_results_should_show_each_device_and_say_when_replayed() {
        let results = BatchResults {
            batch_id: Some("b-1".into()),
            devices: Some(2),
            succeeded: Some(1),
            failed: Some(1),
            replayed: true,
            results: vec![
                BatchDevice {
                    id: "t-1".into(),
                    udn: "uuid:a".into(),
                    status: "ChangesApplied".into(),
                    configuration_version: Some("4".into()),
                    ..BatchDevice::default()
                },
                BatchDevice {
                    id: "r-1".into(),
                    udn: "uuid:b".into(),
                    status: "Failed".into(),
                    error_code: Some(707),
                    error_description: Some("r-1 does not answer".into()),
                    ..BatchDevice::default()
                },
            ],
        };
        let text = batch(&results, "ignored");
        assert!(
            text.starts_with(
                "batch b-1: 2 device(s), 1 succeeded, 1 failed (the results of an earlier run"
            ),
            "{text}"
        );
        assert!(
            text.contains("UPnPError 707: r-1 does not answer"),
            "{text}"
        );
        let json = batch_json(&results, "ignored");
        assert_eq!(json["ok"], false);
        assert_eq!(json["results"][1]["error_code"], 707);
        assert_eq!(json["replayed"], true);
    }

    #[test]
    fn a_firmware_line_should_carry_phase_percent_update_and_detail() {
        let target = Target {
            id: Some("t-1".into()),
            udn: Uuid::from_u128(2),
        };
        let status = FirmwareStatus {
            update_id: "u-7".into(),
            status: "Transferring".into(),
            bytes_acknowledged: 450,
            bytes_total: 1000,
            detail: "chunk 9".into(),
            ..FirmwareStatus::default()
        };
        assert_eq!(
            firmware_line(&target, &status),
            format!(
                "t-1 (uuid:{}): Transferring 45% (450/1000 bytes), update u-7: chunk 9",
                Uuid::from_u128(2)
            )
        );
        let json = firmware_json(&target, &status, Some("2026-01-01T00:00:00Z"));
        assert_eq!(json["percent"], 45);
        assert_eq!(json["device"], "t-1");
        assert_eq!(json["time"], "2026-01-01T00:00:00Z");
    }

    #[test]
    fn a_decommissioning_should_be_told_in_words() {
        let fields: Vec<(String, String)> = [
            ("Id", "t-1"),
            ("RevokedSerial", "0a1b"),
            ("FactoryReset", "done"),
            ("WipedLogRecords", "12"),
            ("Audit", "kept"),
        ]
        .iter()
        .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
        .collect();
        assert_eq!(
            decommissioned(&fields),
            "certificate 0a1b revoked, factory reset: done, 12 log records wiped, audit record kept"
        );
        assert_eq!(decommissioned(&[]), "no certificate to revoke");
        assert_eq!(fields_json(&fields)["wiped_log_records"], "12");
    }

    #[test]
    fn out_argument_names_should_become_snake_case_keys() {
        assert_eq!(snake_case("LifecycleState"), "lifecycle_state");
        assert_eq!(snake_case("DeviceUDN"), "device_udn");
        assert_eq!(snake_case("UpdateId"), "update_id");
        assert_eq!(snake_case("Status"), "status");
        assert_eq!(snake_case("UDNList"), "udn_list");
    }
}

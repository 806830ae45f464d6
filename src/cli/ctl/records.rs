//! The XML documents the gateway's actions answer inside string arguments — GetInventory's
//! `Inventory`, BatchSetValues' `BatchResults` — and GetFirmwareUpdateStatus' out arguments,
//! as typed values. Pure; replies are untrusted: bounded, no DOCTYPE, no entities, no panics.
//!
//! The parsing is tolerant of additions: an element the code does not know is kept (printed
//! under its own name), and a field holding elements instead of text is read as its text.

use std::collections::BTreeMap;

use quick_xml::events::{BytesStart, Event};
use quick_xml::reader::NsReader;
use serde::Serialize;

use crate::upnp::xml_text::{ReferenceError, check_chars, resolve_reference};

/// Deepest nesting read: root, item, field, and a little inside a field.
const MAX_DEPTH: usize = 8;
/// Most items one list may hold.
const MAX_ITEMS: usize = 100_000;

/// A list document: the root's attributes and each item's fields (child element name, text).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct RecordList {
    /// The root element's attributes, in order.
    pub(super) attributes: Vec<(String, String)>,
    /// Each item's fields, in order.
    pub(super) items: Vec<Vec<(String, String)>>,
}

impl RecordList {
    fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Parses `<root a=".."><item><field>text</field>...</item>...</root>`, checking the root's
/// local name. The error says what is wrong.
pub(super) fn parse_records(xml: &str, root: &str) -> Result<RecordList, String> {
    parse_tree(xml, root, true)
}

/// Parses one record, `<root><field>text</field>...</root>`: its fields in order.
pub(super) fn parse_record(xml: &str, root: &str) -> Result<Vec<(String, String)>, String> {
    let mut list = parse_tree(xml, root, false)?;
    Ok(list.items.pop().unwrap_or_default())
}

/// The list (`list`: root, items, fields) or the single record (root, fields) in `xml`.
fn parse_tree(xml: &str, root: &str, list: bool) -> Result<RecordList, String> {
    // Depth of the elements that are fields.
    let field_depth = if list { 3 } else { 2 };
    let mut reader = NsReader::from_str(xml);
    reader.config_mut().check_end_names = true;
    reader.config_mut().expand_empty_elements = true;
    let mut tree = RecordList::default();
    let mut depth = 0usize;
    let mut seen_root = false;
    loop {
        let event = reader
            .read_event()
            .map_err(|e| format!("{root} is not well-formed XML: {e}"))?;
        match event {
            Event::DocType(_) => return Err(format!("{root} holds a DOCTYPE, which is refused")),
            Event::Start(start) => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return Err(format!(
                        "{root} nests elements deeper than {MAX_DEPTH} levels"
                    ));
                }
                let local = start.local_name().into_inner().to_owned();
                if depth == 1 {
                    if local != root || seen_root {
                        return Err(format!(
                            "the document's root is {}, not {root}",
                            local.chars().take(64).collect::<String>()
                        ));
                    }
                    seen_root = true;
                    tree.attributes = attributes(&start, root)?;
                }
                if depth == field_depth - 1 {
                    if tree.items.len() >= MAX_ITEMS {
                        return Err(format!("{root} holds more than {MAX_ITEMS} items"));
                    }
                    tree.items.push(Vec::new());
                } else if depth == field_depth
                    && let Some(item) = tree.items.last_mut()
                {
                    item.push((local, String::new()));
                }
            }
            Event::End(_) => depth = depth.saturating_sub(1),
            Event::Text(text) => {
                push_text(&mut tree, depth >= field_depth, &text.xml10_content(), root)?;
            }
            Event::CData(data) => {
                let data: &str = data.as_ref();
                push_text(&mut tree, depth >= field_depth, data, root)?;
            }
            Event::GeneralRef(reference) => {
                let c = resolve_reference(&reference).map_err(|e| match e {
                    ReferenceError::Undeclared(name) => {
                        format!("{root} uses the undeclared entity &{name};")
                    }
                    ReferenceError::BadCharacter(why) => {
                        format!("{root} has a bad character reference: {why}")
                    }
                })?;
                push_text(
                    &mut tree,
                    depth >= field_depth,
                    c.encode_utf8(&mut [0; 4]),
                    root,
                )?;
            }
            Event::Empty(_) => return Err(format!("{root} is not well-formed XML")),
            Event::Decl(_) | Event::Comment(_) | Event::PI(_) => {}
            Event::Eof => break,
        }
    }
    if !seen_root {
        return Err(format!("no {root} element"));
    }
    if depth != 0 {
        return Err(format!("{root} is incomplete: elements are left open"));
    }
    Ok(tree)
}

fn attributes(start: &BytesStart<'_>, root: &str) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    for attribute in start.attributes().take(32) {
        let attribute = attribute.map_err(|e| format!("{root} has a malformed attribute: {e}"))?;
        let name = attribute.key.local_name().into_inner().to_owned();
        let value = attribute
            .normalized_value(quick_xml::XmlVersion::Implicit1_0)
            .map_err(|e| format!("{root} attribute {name}: {e}"))?
            .into_owned();
        check_chars(&value).map_err(|why| format!("{root} attribute {name}: {why}"))?;
        out.push((name, value));
    }
    Ok(out)
}

/// Adds `text` to the current field when `in_field`; elsewhere only blanks are allowed.
fn push_text(tree: &mut RecordList, in_field: bool, text: &str, root: &str) -> Result<(), String> {
    check_chars(text).map_err(|why| format!("{root}: {why}"))?;
    if in_field {
        if let Some((_, value)) = tree.items.last_mut().and_then(|item| item.last_mut()) {
            value.push_str(text);
        }
        return Ok(());
    }
    if text.trim().is_empty() {
        return Ok(());
    }
    Err(format!("{root} holds text outside its items' fields"))
}

/// One device of GetInventory's `Inventory`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub(super) struct InventoryDevice {
    /// Device id (`Id`).
    pub(super) id: String,
    /// `UDN`, `uuid:...`.
    pub(super) udn: String,
    /// `Protocol`.
    pub(super) protocol: String,
    /// `Address`.
    pub(super) address: String,
    /// `Profile`.
    pub(super) profile: String,
    /// `Group`, when the gateway reports it (empty: none).
    pub(super) group: Option<String>,
    /// `LifecycleState`.
    pub(super) lifecycle_state: String,
    /// `Availability`.
    pub(super) availability: String,
    /// `Enrollment` (`pending`, `approved`, `rejected`; empty before enrolling), when reported.
    pub(super) enrollment: Option<String>,
    /// `Evidence` (the identity evidence behind its enrollment), when reported.
    pub(super) evidence: Option<String>,
    /// Elements this version does not know, by name.
    #[serde(flatten, skip_serializing_if = "BTreeMap::is_empty")]
    pub(super) other: BTreeMap<String, String>,
}

impl InventoryDevice {
    /// Whether `name` (a device id or UDN, with or without `uuid:`) names this device.
    pub(super) fn is_named(&self, name: &str) -> bool {
        self.id == name || bare_udn(&self.udn).eq_ignore_ascii_case(bare_udn(name))
    }
}

/// A UDN without its `uuid:` prefix.
pub(super) fn bare_udn(udn: &str) -> &str {
    udn.strip_prefix("uuid:").unwrap_or(udn)
}

/// Parses GetInventory's `Inventory`.
pub(super) fn parse_inventory(xml: &str) -> Result<Vec<InventoryDevice>, String> {
    let list = parse_records(xml, "Inventory")?;
    Ok(list
        .items
        .into_iter()
        .map(|fields| {
            let mut device = InventoryDevice::default();
            for (name, value) in fields {
                match name.as_str() {
                    "Id" => device.id = value,
                    "UDN" => device.udn = value,
                    "Protocol" => device.protocol = value,
                    "Address" => device.address = value,
                    "Profile" => device.profile = value,
                    "Group" => device.group = Some(value),
                    "LifecycleState" => device.lifecycle_state = value,
                    "Availability" => device.availability = value,
                    "Enrollment" => device.enrollment = Some(value),
                    "Evidence" => device.evidence = Some(value),
                    _ => {
                        device.other.insert(name, value);
                    }
                }
            }
            device
        })
        .collect())
}

/// BatchSetValues' `Results`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub(super) struct BatchResults {
    /// `BatchId`, as the gateway recorded it.
    pub(super) batch_id: Option<String>,
    /// `Devices`, `Succeeded`, `Failed` as the gateway counted them.
    pub(super) devices: Option<u32>,
    /// See `devices`.
    pub(super) succeeded: Option<u32>,
    /// See `devices`.
    pub(super) failed: Option<u32>,
    /// Whether these are the stored results of an earlier run of the same batch.
    pub(super) replayed: bool,
    /// One per target device, in the order of the targets.
    pub(super) results: Vec<BatchDevice>,
}

/// One device's outcome in a batch.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub(super) struct BatchDevice {
    /// `Id`.
    pub(super) id: String,
    /// `UDN`.
    pub(super) udn: String,
    /// `Status`: `ChangesApplied` or `Failed`.
    pub(super) status: String,
    /// `ErrorCode`, when it failed.
    pub(super) error_code: Option<u16>,
    /// `ErrorDescription`, when it failed.
    pub(super) error_description: Option<String>,
    /// `ConfigurationVersion` after the write.
    pub(super) configuration_version: Option<String>,
}

impl BatchDevice {
    /// Whether the values reached the device.
    pub(super) fn succeeded(&self) -> bool {
        matches!(self.status.as_str(), "ChangesApplied" | "ChangesPending")
    }
}

impl BatchResults {
    /// Whether any device failed (by the results, or by the gateway's count).
    pub(super) fn any_failed(&self) -> bool {
        self.failed.is_some_and(|n| n > 0) || self.results.iter().any(|d| !d.succeeded())
    }
}

/// Parses BatchSetValues' `Results`.
pub(super) fn parse_batch_results(xml: &str) -> Result<BatchResults, String> {
    let list = parse_records(xml, "BatchResults")?;
    let count = |name: &str| list.attribute(name).and_then(|v| v.trim().parse().ok());
    let mut results = BatchResults {
        batch_id: list.attribute("BatchId").map(str::to_owned),
        devices: count("Devices"),
        succeeded: count("Succeeded"),
        failed: count("Failed"),
        replayed: matches!(
            list.attribute("Replayed").map(str::trim),
            Some("1" | "true")
        ),
        results: Vec::with_capacity(list.items.len()),
    };
    for fields in list.items {
        let mut device = BatchDevice::default();
        for (name, value) in fields {
            let present = || (!value.trim().is_empty()).then(|| value.clone());
            match name.as_str() {
                "Id" => device.id = value,
                "UDN" => device.udn = value,
                "Status" => device.status = value,
                "ErrorCode" => device.error_code = value.trim().parse().ok(),
                "ErrorDescription" => device.error_description = present(),
                "ConfigurationVersion" => device.configuration_version = present(),
                _ => {}
            }
        }
        results.results.push(device);
    }
    Ok(results)
}

/// GetFirmwareUpdateStatus' out arguments.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub(super) struct FirmwareStatus {
    /// `UpdateId` (empty before the first update).
    pub(super) update_id: String,
    /// `Status`: `Idle` or a phase of the update.
    pub(super) status: String,
    /// `ResultCode` (LwM2M-style; 0 while under way).
    pub(super) result_code: i32,
    /// `BytesAcknowledged`.
    pub(super) bytes_acknowledged: u64,
    /// `BytesTotal`.
    pub(super) bytes_total: u64,
    /// `ProbationEnds` (RFC 3339), when in or past probation.
    pub(super) probation_ends: Option<String>,
    /// `Detail`.
    pub(super) detail: String,
}

/// Statuses after which an update changes no more.
const TERMINAL: [&str; 4] = ["Confirmed", "RolledBack", "Failed", "Cancelled"];

impl FirmwareStatus {
    /// From the out arguments; the error names a missing or malformed one.
    pub(super) fn from_out(out: &[(String, String)]) -> Result<Self, String> {
        let get = |name: &str| {
            out.iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
                .ok_or_else(|| format!("the reply has no {name}"))
        };
        let number = |name: &str| -> Result<u64, String> {
            let text = get(name)?;
            text.trim().parse().map_err(|_| {
                format!(
                    "{name} `{}` is not a number",
                    text.chars().take(32).collect::<String>()
                )
            })
        };
        let result = get("ResultCode")?;
        Ok(Self {
            update_id: get("UpdateId")?.to_owned(),
            status: get("Status")?.to_owned(),
            result_code: result.trim().parse().map_err(|_| {
                format!(
                    "ResultCode `{}` is not a number",
                    result.chars().take(32).collect::<String>()
                )
            })?,
            bytes_acknowledged: number("BytesAcknowledged")?,
            bytes_total: number("BytesTotal")?,
            probation_ends: get("ProbationEnds")
                .ok()
                .filter(|v| !v.trim().is_empty())
                .map(str::to_owned),
            detail: get("Detail").unwrap_or_default().to_owned(),
        })
    }

    /// Whether the update is over (or there is none to follow).
    pub(super) fn is_final(&self) -> bool {
        self.status == "Idle" || TERMINAL.contains(&self.status.as_str())
    }

    /// Whether the update is over and did not end Confirmed (failed, rolled back, cancelled).
    pub(super) fn ended_badly(&self) -> bool {
        self.is_final() && self.status != "Confirmed" && self.status != "Idle"
    }

    /// Transfer progress in whole percent, when a transfer size is known.
    pub(super) fn percent(&self) -> Option<u64> {
        (self.bytes_total > 0)
            .then(|| (self.bytes_acknowledged.min(self.bytes_total) * 100) / self.bytes_total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_inventory_should_yield_every_device_with_group_evidence_and_unknown_fields() {
        let xml = r#"<?xml version="1.0" encoding="UTF-8"?><Inventory><Device><UDN>uuid:11111111-2222-5333-8444-555555555555</UDN><Id>thermostat-1</Id><Protocol>memory</Protocol><Address>memory:a&amp;b</Address><Profile>face-thermostat</Profile><LifecycleState>Commissioned</LifecycleState><Availability>Online</Availability><Group>hall</Group><Enrollment>approved</Enrollment><Evidence>install-code</Evidence><Vlan>20</Vlan></Device><Device><UDN>uuid:x</UDN><Id>relay-1</Id><Protocol>memory</Protocol><Address>memory:relay-1</Address><Profile>face-relay</Profile><LifecycleState>PendingApproval</LifecycleState><Availability>Unknown</Availability></Device></Inventory>"#;
        let devices = parse_inventory(xml).unwrap();
        assert_eq!(devices.len(), 2);
        let t = &devices[0];
        assert_eq!(t.id, "thermostat-1");
        assert_eq!(t.address, "memory:a&b");
        assert_eq!(t.group.as_deref(), Some("hall"));
        assert_eq!(t.evidence.as_deref(), Some("install-code"));
        assert_eq!(t.enrollment.as_deref(), Some("approved"));
        assert_eq!(t.other.get("Vlan").map(String::as_str), Some("20"));
        assert!(t.is_named("thermostat-1"));
        assert!(t.is_named("11111111-2222-5333-8444-555555555555"));
        assert!(t.is_named("uuid:11111111-2222-5333-8444-555555555555"));
        assert!(!t.is_named("relay-1"));
        assert_eq!(devices[1].group, None);
        assert_eq!(devices[1].lifecycle_state, "PendingApproval");
    }

    #[test]
    fn a_single_record_should_yield_its_fields_in_order() {
        let xml = "<Decommissioned><Id>t-1</Id><UDN>uuid:a</UDN><RevokedSerial>0a1b</RevokedSerial><FactoryReset>done</FactoryReset><Audit>kept</Audit></Decommissioned>";
        let fields = parse_record(xml, "Decommissioned").unwrap();
        let names: Vec<&str> = fields.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            ["Id", "UDN", "RevokedSerial", "FactoryReset", "Audit"]
        );
        assert_eq!(fields[2].1, "0a1b");
        assert!(
            parse_record("<Decommissioned>loose</Decommissioned>", "Decommissioned")
                .unwrap_err()
                .contains("outside")
        );
        assert!(parse_record("<Inventory/>", "Decommissioned").is_err());
    }

    #[test]
    fn a_field_holding_elements_should_be_read_as_its_text() {
        let xml = "<Inventory><Device><Id>a</Id><Evidence><Kind>certificate</Kind></Evidence></Device></Inventory>";
        let devices = parse_inventory(xml).unwrap();
        assert_eq!(devices[0].evidence.as_deref(), Some("certificate"));
    }

    #[test]
    fn batch_results_should_yield_counts_and_per_device_outcomes() {
        let xml = r#"<BatchResults BatchId="b-1&amp;2" Devices="2" Succeeded="1" Failed="1" Replayed="1"><Device><Id>t-1</Id><UDN>uuid:a</UDN><Status>ChangesApplied</Status><ErrorCode></ErrorCode><ErrorDescription></ErrorDescription><ConfigurationVersion>4</ConfigurationVersion></Device><Device><Id>r-1</Id><UDN>uuid:b</UDN><Status>Failed</Status><ErrorCode>707</ErrorCode><ErrorDescription>r-1 does not answer</ErrorDescription><ConfigurationVersion/></Device></BatchResults>"#;
        let results = parse_batch_results(xml).unwrap();
        assert_eq!(results.batch_id.as_deref(), Some("b-1&2"));
        assert_eq!(
            (results.devices, results.succeeded, results.failed),
            (Some(2), Some(1), Some(1))
        );
        assert!(results.replayed);
        assert!(results.any_failed());
        assert!(results.results[0].succeeded());
        assert_eq!(
            results.results[0].configuration_version.as_deref(),
            Some("4")
        );
        assert_eq!(results.results[0].error_code, None);
        assert_eq!(results.results[1].error_code, Some(707));
        assert_eq!(results.results[1].configuration_version, None);
    }

    #[test]
    fn a_batch_where_every_device_applied_should_not_count_as_failed() {
        let xml = r#"<BatchResults BatchId="b" Devices="1" Succeeded="1" Failed="0" Replayed="0"><Device><Id>t</Id><UDN>uuid:a</UDN><Status>ChangesApplied</Status></Device></BatchResults>"#;
        let results = parse_batch_results(xml).unwrap();
        assert!(!results.any_failed() && !results.replayed);
        // A gateway count of failures alone is believed, even without a failed row.
        let counted = xml.replace(r#"Failed="0""#, r#"Failed="1""#);
        assert!(parse_batch_results(&counted).unwrap().any_failed());
    }

    #[test]
    fn malformed_documents_should_be_refused_with_a_reason_never_a_panic() {
        for (xml, why) in [
            ("<Other/>", "root is Other"),
            ("<!DOCTYPE x><Inventory/>", "DOCTYPE"),
            ("<Inventory>&xxe;</Inventory>", "undeclared entity"),
            ("<Inventory><Device><Id>a</Id>", "incomplete"),
            ("<Inventory>loose</Inventory>", "outside"),
            ("", "no Inventory"),
            ("<Inventory><a><b>&#1;</b></a></Inventory>", "not allowed"),
            (&format!("<Inventory>{}", "<a>".repeat(20)), "deeper"),
            ("<Inventory x=\"&bogus;\"/>", "attribute"),
        ] {
            let err = parse_inventory(xml).unwrap_err();
            assert!(err.contains(why), "{xml}: {err}");
        }
        let good = r#"<BatchResults BatchId="b"><Device><Id>t</Id><Status>Failed</Status><ErrorCode>7x</ErrorCode></Device></BatchResults>"#;
        for end in 0..good.len() {
            let _ = parse_batch_results(&good[..end]);
        }
        // A code that is not a number is left out rather than guessed.
        assert_eq!(
            parse_batch_results(good).unwrap().results[0].error_code,
            None
        );
    }

    fn out(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn firmware_status_should_read_every_out_argument() {
        let status = FirmwareStatus::from_out(&out(&[
            ("UpdateId", "u-7"),
            ("Status", "Transferring"),
            ("ResultCode", "0"),
            ("BytesAcknowledged", "2500"),
            ("BytesTotal", "10000"),
            ("ProbationEnds", ""),
            ("Detail", "chunk 5 of 20"),
        ]))
        .unwrap();
        assert_eq!(status.update_id, "u-7");
        assert_eq!(status.percent(), Some(25));
        assert_eq!(status.probation_ends, None);
        assert!(!status.is_final());
        let err = FirmwareStatus::from_out(&out(&[("UpdateId", "u")])).unwrap_err();
        assert!(err.contains("no ResultCode"), "{err}");
        let err = FirmwareStatus::from_out(&out(&[
            ("UpdateId", "u"),
            ("Status", "Idle"),
            ("ResultCode", "0"),
            ("BytesAcknowledged", "-1"),
            ("BytesTotal", "0"),
        ]))
        .unwrap_err();
        assert!(err.contains("BytesAcknowledged"), "{err}");
    }

    #[test]
    fn the_final_statuses_should_be_the_firmware_machines_terminal_phases_and_idle() {
        use crate::firmware::machine::Phase;
        use crate::upnp::services::specs::FIRMWARE_STATUSES;
        for name in FIRMWARE_STATUSES {
            let status = FirmwareStatus {
                status: (*name).to_owned(),
                ..FirmwareStatus::default()
            };
            let expected = match serde_json::from_value::<Phase>(serde_json::json!(name)) {
                Ok(phase) => phase.is_terminal(),
                Err(_) => *name == "Idle",
            };
            assert_eq!(status.is_final(), expected, "{name}");
        }
        let confirmed = FirmwareStatus {
            status: "Confirmed".into(),
            ..FirmwareStatus::default()
        };
        let failed = FirmwareStatus {
            status: "RolledBack".into(),
            ..FirmwareStatus::default()
        };
        assert!(!confirmed.ended_badly() && failed.ended_badly());
    }
}

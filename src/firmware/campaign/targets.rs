//! The `Targets` argument of StartFirmwareCampaign: which devices a campaign updates.

use std::collections::{BTreeMap, BTreeSet};

/// Most names an error lists.
const LISTED: usize = 20;

/// The devices `spec` names, in order: comma-separated items, each `group:<name>` (the group's
/// members, in the order given) or a device id. Blank items are skipped; a device named twice
/// is kept where it first appears.
///
/// Refuses an unknown group or device, naming it and listing the known ones (at most 20), and
/// a `spec` that names no device at all.
pub fn parse_targets(
    spec: &str,
    groups: &BTreeMap<String, Vec<String>>,
    devices: &[String],
) -> Result<Vec<String>, String> {
    let mut targets = Vec::new();
    let mut seen = BTreeSet::new();
    let mut empty_groups = Vec::new();
    let items: Vec<&str> = spec
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .collect();
    for item in &items {
        let members: Vec<&str> = match item.strip_prefix("group:") {
            Some(name) => {
                let name = name.trim();
                let Some(members) = groups.get(name) else {
                    return Err(format!(
                        "Targets names group {name:?}, which does not exist; {}",
                        known("groups", groups.keys())
                    ));
                };
                if members.is_empty() {
                    empty_groups.push(name);
                }
                members.iter().map(String::as_str).collect()
            }
            None => {
                if !devices.iter().any(|d| d == item) {
                    return Err(format!(
                        "Targets names device {item:?}, which the gateway does not know; {} \
                         (write group:<name> for a management group)",
                        known("devices", devices)
                    ));
                }
                vec![item]
            }
        };
        for member in members {
            if seen.insert(member) {
                targets.push(member.to_owned());
            }
        }
    }
    if targets.is_empty() {
        return Err(if items.is_empty() {
            "Targets names no device: give device ids and group:<name> items, separated by commas"
                .to_owned()
        } else {
            format!(
                "Targets names no device: group(s) {} have no members; name devices, or add \
                 devices to the group",
                empty_groups.join(", ")
            )
        });
    }
    Ok(targets)
}

/// "known <what>: a, b, c (and N more)", or "no <what> are known".
fn known<'a>(what: &str, names: impl IntoIterator<Item = &'a String>) -> String {
    let names: Vec<&str> = names.into_iter().map(String::as_str).collect();
    if names.is_empty() {
        return format!("there are no {what}");
    }
    let mut text = format!(
        "known {what}: {}",
        names[..names.len().min(LISTED)].join(", ")
    );
    if names.len() > LISTED {
        text.push_str(&format!(" and {} more", names.len() - LISTED));
    }
    text
}

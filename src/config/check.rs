//! The checks of a config that serde cannot make: names, bounds, cross-references.

use std::collections::HashSet;
use std::time::Duration;

use iotmc_adapter::{LocatedError, Value};

use super::{Config, MAX_PROBATION, SchedulePolicy};

impl Config {
    pub(super) fn check_meaning(&self) -> Vec<LocatedError> {
        let source = &self.source;
        let mut errors = Vec::new();
        let mut fail =
            |field: String, message: String| errors.push(source.error_at(&field, message));

        if !is_id(&self.gateway.id) {
            fail(
                "gateway.id".into(),
                format!(
                    "{:?} is not a valid id; expected lowercase letters, digits, `-` and `_`, at most 64 characters",
                    self.gateway.id
                ),
            );
        }
        if self.gateway.name.trim().is_empty() {
            fail(
                "gateway.name".into(),
                "must not be empty; controllers show it to operators".into(),
            );
        }
        let fw = &self.firmware;
        if fw.max_image_size == 0 || fw.max_image_size > 1024 * 1024 * 1024 {
            fail(
                "firmware.max_image_size".into(),
                format!(
                    "{} bytes is outside 1 byte to 1 GiB (default 32 MiB)",
                    fw.max_image_size
                ),
            );
        }
        for (key, value, low) in [
            (
                "firmware.scan_interval",
                fw.scan_interval,
                Duration::from_millis(100),
            ),
            (
                "firmware.check_interval",
                fw.check_interval,
                Duration::from_millis(100),
            ),
        ] {
            if value < low || value > Duration::from_secs(24 * 3600) {
                fail(
                    key.into(),
                    format!(
                        "{} is outside {} to 1day",
                        humantime::format_duration(value),
                        humantime::format_duration(low)
                    ),
                );
            }
        }
        if let Some(floor) = fw.test_probation_floor {
            if !cfg!(debug_assertions) {
                fail(
                    "firmware.test_probation_floor".into(),
                    "only test builds accept this key; a release build keeps probation at 24h (1h for emergency images) or longer: remove it".into(),
                );
            } else if floor.is_zero() {
                fail(
                    "firmware.test_probation_floor".into(),
                    "must be above zero".into(),
                );
            }
        }
        if !is_domain(&self.gateway.vendor_domain) {
            fail(
                "gateway.vendor_domain".into(),
                format!(
                    "{:?} is not a domain name like `example.com`",
                    self.gateway.vendor_domain
                ),
            );
        }
        if self.gateway.shutdown_grace > Duration::from_secs(300) {
            fail(
                "gateway.shutdown_grace".into(),
                "at most 5m; systemd stops waiting long before that".into(),
            );
        }
        for (i, name) in self.listen.interfaces.iter().enumerate() {
            if name.is_empty() || name.len() > 15 || name.contains(['/', ' ']) {
                fail(
                    format!("listen.interfaces[{i}]"),
                    format!("{name:?} is not a network interface name"),
                );
            }
        }
        if self.listen.http.port() != 0
            && self.listen.http.port() == self.listen.https.port()
            && self.listen.http.ip() == self.listen.https.ip()
        {
            fail(
                "listen.https".into(),
                "HTTP and HTTPS cannot share one address and port".into(),
            );
        }

        self.mqtt.check(source, &mut errors);
        self.diagnostics.check(source, &mut errors);
        self.enrollment.check(source, &mut errors);
        for (i, group) in self.groups.iter().enumerate() {
            group
                .zero_touch
                .check(&format!("groups[{i}].zero_touch"), source, &mut errors);
        }
        self.diagnostics
            .export()
            .check("diagnostics", source, &mut errors);
        for (i, group) in self.groups.iter().enumerate() {
            if let Some(export) = &group.diagnostics {
                export.check(&format!("groups[{i}].diagnostics"), source, &mut errors);
            }
        }
        let mut fail =
            |field: String, message: String| errors.push(source.error_at(&field, message));

        let mut group_names = HashSet::new();
        let mut vlans = HashSet::new();
        for (i, group) in self.groups.iter().enumerate() {
            let at = |f: &str| format!("groups[{i}].{f}");
            if !is_id(&group.name) {
                fail(
                    at("name"),
                    format!(
                        "{:?} is not a valid group name; expected lowercase letters, digits, `-` and `_`",
                        group.name
                    ),
                );
            } else if !group_names.insert(group.name.as_str()) {
                fail(
                    at("name"),
                    format!("group `{}` is declared twice", group.name),
                );
            }
            if let Some(vlan) = group.vlan {
                if !(1..=4094).contains(&vlan) {
                    fail(
                        at("vlan"),
                        format!("{vlan} is not a usable VLAN id; expected 1 to 4094"),
                    );
                } else if group.parent_interface.is_none() {
                    fail(
                        at("parent_interface"),
                        format!(
                            "VLAN {vlan} needs the interface to create it on, e.g. parent_interface = \"eth0\""
                        ),
                    );
                } else if !vlans.insert((group.parent_interface.clone(), vlan)) {
                    fail(
                        at("vlan"),
                        format!("VLAN {vlan} on this interface is already used by another group"),
                    );
                }
            }
            for (key, value) in &group.defaults {
                if Value::from_toml(value).is_none() {
                    fail(
                        at(&format!("defaults.{key}")),
                        "a default must be a boolean, integer, float or string".into(),
                    );
                }
            }
            let fw = &group.firmware;
            let (floor, emergency_floor) = self.probation_floors();
            if !(floor..=MAX_PROBATION).contains(&fw.probation) {
                fail(
                    at("firmware.probation"),
                    format!(
                        "{} is outside the allowed {} to 30days; shorter probation is only for emergency updates (emergency_probation)",
                        humantime::format_duration(fw.probation),
                        humantime::format_duration(floor)
                    ),
                );
            }
            // Against a probation that is itself out of bounds the comparison would only repeat
            // that error.
            else if fw.emergency_probation < emergency_floor
                || fw.emergency_probation > fw.probation
            {
                fail(
                    at("firmware.emergency_probation"),
                    format!(
                        "{} is outside the allowed {} up to `probation`",
                        humantime::format_duration(fw.emergency_probation),
                        humantime::format_duration(emergency_floor)
                    ),
                );
            }
            if fw.schedule == SchedulePolicy::MaintenanceWindow
                && group.maintenance_window.is_none()
            {
                fail(
                    at("firmware.schedule"),
                    "`maintenance-window` needs the group's maintenance_window".into(),
                );
            }
            if let Some(window) = &group.maintenance_window {
                if window.start_minute().is_none() {
                    fail(
                        at("maintenance_window.start"),
                        format!(
                            "{:?} is not a time; expected HH:MM in UTC, e.g. \"02:30\"",
                            window.start
                        ),
                    );
                }
                if window.duration.is_zero() || window.duration > Duration::from_secs(7 * 24 * 3600)
                {
                    fail(
                        at("maintenance_window.duration"),
                        "expected a length above zero and at most 7 days".into(),
                    );
                }
                if window.days.is_empty() {
                    fail(
                        at("maintenance_window.days"),
                        "a window needs at least one day; leave `days` out for every day".into(),
                    );
                }
            }
        }

        let mut device_ids = HashSet::new();
        for (i, device) in self.devices.iter().enumerate() {
            let at = |f: &str| format!("devices[{i}].{f}");
            if !is_id(&device.id) {
                fail(
                    at("id"),
                    format!(
                        "{:?} is not a valid device id; expected lowercase letters, digits, `-` and `_`, at most 64 characters",
                        device.id
                    ),
                );
            } else if !device_ids.insert(device.id.as_str()) {
                fail(
                    at("id"),
                    format!("device `{}` is declared twice", device.id),
                );
            }
            if device.address.trim().is_empty() {
                fail(at("address"), "must not be empty".into());
            }
            if let Some(group) = &device.group
                && self.group(group).is_none()
            {
                let known: Vec<_> = self.groups.iter().map(|g| g.name.as_str()).collect();
                fail(
                    at("group"),
                    format!(
                        "no group named `{group}`; declared groups: {}",
                        if known.is_empty() {
                            "none".to_owned()
                        } else {
                            known.join(", ")
                        }
                    ),
                );
            }
        }
        errors
    }
}

fn is_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

fn is_domain(domain: &str) -> bool {
    domain.len() <= 253
        && domain.split('.').count() >= 2
        && domain.split('.').all(|label| {
            (1..=63).contains(&label.len())
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

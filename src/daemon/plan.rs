//! Checking the configured devices against the profile catalog and the built adapters.

use std::collections::BTreeMap;
use std::sync::Arc;

use iotmc_adapter::{LocatedError, Profile, Resource};

use crate::adapters::AdapterSet;
use crate::config::{Config, DeviceConfig};
use crate::profile::Catalog;

/// A configured device whose profile and address have been checked.
#[derive(Debug, Clone)]
pub struct PlannedDevice {
    /// Its config entry.
    pub config: DeviceConfig,
    /// Its profile.
    pub profile: Arc<Profile>,
}

/// Checks every configured device: its profile exists and its adapter is built, its address is
/// valid for that adapter, no resource is claimed by two protocols, and its group's default
/// parameters fit its profile. Every error is returned, located in the config.
pub fn plan_devices(
    config: &Config,
    catalog: &Catalog,
    adapters: &AdapterSet,
) -> Result<Vec<PlannedDevice>, Vec<LocatedError>> {
    let source = &config.source;
    let mut errors = Vec::new();
    let mut planned = Vec::new();
    let mut claims: BTreeMap<Resource, (&str, &str)> = BTreeMap::new();
    let mut addresses: BTreeMap<(&str, &str), &str> = BTreeMap::new();
    for (i, device) in config.devices.iter().enumerate() {
        let at = |f: &str| format!("devices[{i}].{f}");
        let Some(profile) = catalog.get(&device.profile) else {
            let hint = if let Some(file) = catalog.rejected(&device.profile) {
                format!(
                    "{} has errors (listed above); fix them first",
                    file.display()
                )
            } else if catalog.is_empty() {
                format!("no profiles were loaded from {}", dirs(config))
            } else {
                format!(
                    "{} profile(s) are loaded from {}; `iotmc-gateway profile validate` lists them",
                    catalog.len(),
                    dirs(config)
                )
            };
            errors.push(source.error_at(
                &at("profile"),
                format!(
                    "device `{}`: profile `{}` cannot be used: {hint}",
                    device.id, device.profile
                ),
            ));
            continue;
        };
        let Some(adapter) = adapters.get(&profile.protocol) else {
            errors.push(source.error_at(
                &at("profile"),
                format!(
                    "device `{}`: {}",
                    device.id,
                    adapters.missing(&profile.protocol)
                ),
            ));
            continue;
        };
        if let Err(expected) = adapter.validate_address(&device.address) {
            errors.push(source.error_at(
                &at("address"),
                format!(
                    "device `{}`: {:?} is not a {} address: {expected}",
                    device.id, device.address, profile.protocol
                ),
            ));
            continue;
        }
        if let Some(other) = addresses.insert(
            (profile.protocol.as_str(), device.address.as_str()),
            device.id.as_str(),
        ) {
            errors.push(source.error_at(
                &at("address"),
                format!("device `{}` has the same {} address as device `{other}`; one device, one entry", device.id, profile.protocol),
            ));
            continue;
        }
        for resource in adapter.resources(&device.address) {
            match claims.get(&resource) {
                Some((protocol, other)) if *protocol != profile.protocol => errors.push(source.error_at(
                    &at("address"),
                    format!("device `{}`: {resource:?} is already used by {protocol} device `{other}`; one port cannot serve two protocols", device.id),
                )),
                Some(_) => {}
                None => {
                    claims.insert(resource, (profile.protocol.as_str(), device.id.as_str()));
                }
            }
        }
        if let Some(group) = device.group.as_deref().and_then(|g| config.group(g)) {
            for (name, value) in &group.defaults {
                let (Some(parameter), Some(value)) = (
                    profile.parameter(name),
                    iotmc_adapter::Value::from_toml(value),
                ) else {
                    continue;
                };
                let problem = if parameter.access.can_write() {
                    parameter.check_value(&value).err().map(|e| e.to_string())
                } else {
                    Some(format!(
                        "`{name}` is {} in profile `{}`",
                        parameter.access.as_str(),
                        profile.id
                    ))
                };
                if let Some(problem) = problem {
                    let gi = config
                        .groups
                        .iter()
                        .position(|g| g.name == group.name)
                        .unwrap_or_default();
                    errors.push(source.error_at(
                        &format!("groups[{gi}].defaults.{name}"),
                        format!("default for device `{}`: {problem}", device.id),
                    ));
                }
            }
        }
        planned.push(PlannedDevice {
            config: device.clone(),
            profile: Arc::clone(profile),
        });
    }
    if errors.is_empty() {
        Ok(planned)
    } else {
        Err(errors)
    }
}

fn dirs(config: &Config) -> String {
    config
        .gateway
        .profile_dirs
        .iter()
        .map(|d| d.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

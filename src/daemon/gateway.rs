//! The assembled gateway: catalog, registry and attached device links.

use std::sync::Arc;
use std::time::SystemTime;

use iotmc_adapter::{DeviceBinding, DeviceLink, LocatedError, Profile};
use tracing::Instrument as _;

use super::plan::plan_devices;
use crate::adapters::AdapterSet;
use crate::config::Config;
use crate::diagnostics::{self, DiagnosticsEngine, observe};
use crate::firmware::ImageOffers;
use crate::firmware::engine::{DeviceEntry, FirmwareEngine};
use crate::lifecycle::{Identities, LifecycleState};
use crate::profile::{Catalog, Severity};
use crate::registry::{DeviceRecord, Registry, RegistryError, device_udn, unix_ms};

/// Why the gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Profiles or devices in the config have errors.
    #[error("{} error(s) in the profiles or the device list:\n{}", .0.len(), list(.0))]
    Invalid(Vec<LocatedError>),
    /// The registry could not be opened or updated.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// The firmware engine could not start (its store or its persisted updates).
    #[error("the firmware engine could not start: {0}")]
    Firmware(String),
    /// The device identities (issuing CA, keys) could not be loaded.
    #[error("device identities: {0}")]
    Identities(#[from] crate::lifecycle::IdentityError),
}

fn list(errors: &[LocatedError]) -> String {
    errors
        .iter()
        .map(|e| format!("  {e}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// One managed device, as the gateway holds it.
#[derive(Debug, Clone)]
pub struct ManagedDevice {
    /// Its registry record.
    pub record: DeviceRecord,
    /// Its profile.
    pub profile: Arc<Profile>,
    /// Its link; `None` when attaching failed (logged; the next start tries again).
    pub link: Option<Arc<dyn DeviceLink>>,
}

/// A running gateway.
#[derive(Debug)]
pub struct Gateway {
    config: Config,
    registry: Arc<Registry>,
    devices: Vec<ManagedDevice>,
    offers: Arc<ImageOffers>,
    firmware: Arc<FirmwareEngine>,
    diagnostics: DiagnosticsEngine,
    identities: Option<Arc<Identities>>,
}

impl Gateway {
    /// Loads profiles, checks the device list, brings the registry in line with the config and
    /// attaches every device.
    pub async fn start(config: Config, adapters: AdapterSet) -> Result<Self, StartError> {
        let (catalog, findings) = Catalog::load(&config.gateway.profile_dirs, &adapters);
        let mut errors = Vec::new();
        for finding in findings {
            match finding.severity {
                Severity::Warning => tracing::warn!(%finding.error, "profile"),
                Severity::Error => errors.push(finding.error),
            }
        }
        let planned = match plan_devices(&config, &catalog, &adapters) {
            Ok(planned) if errors.is_empty() => planned,
            Ok(_) => return Err(StartError::Invalid(errors)),
            Err(plan_errors) => {
                errors.extend(plan_errors);
                return Err(StartError::Invalid(errors));
            }
        };
        let registry = Registry::open(&config.gateway.state_dir)?;
        let now = SystemTime::now();
        let declared: Vec<DeviceRecord> = planned
            .iter()
            .map(|p| DeviceRecord {
                id: p.config.id.clone(),
                name: p.config.name.clone(),
                profile: p.profile.id.clone(),
                protocol: p.profile.protocol.clone(),
                address: p.config.address.clone(),
                group: p.config.group.clone(),
                udn: device_udn(&config.gateway.id, &p.profile.protocol, &p.config.address),
                lifecycle: LifecycleState::Provisioned,
                lifecycle_since_ms: unix_ms(now),
                config_version: 0,
                in_config: true,
                group_assigned: false,
            })
            .collect();
        let cause = format!("declared in {}", config.source.path().display());
        let reconciled = registry.reconcile(&declared, &cause, now)?;
        for id in &reconciled.decommissioned {
            tracing::warn!(device = %id, "decommissioned: its config entry is ignored; remove it from the config, or give the device a new id to manage it again");
        }
        for id in &reconciled.orphaned {
            tracing::warn!(device = %id, "in the registry but no longer in the config: not attached; decommission it to remove it");
        }
        tracing::info!(
            added = reconciled.added.len(),
            updated = reconciled.updated.len(),
            "registry reconciled with the config"
        );

        let mut devices = Vec::with_capacity(planned.len());
        let mut attach_failures = Vec::new();
        for (plan, record) in planned.into_iter().zip(declared) {
            let record = registry.device(&record.id)?.unwrap_or(record);
            if record.lifecycle == LifecycleState::Decommissioned {
                continue;
            }
            let span = tracing::info_span!("device", id = %record.id, protocol = %record.protocol, address = %record.address);
            let link = match attach(&adapters, &plan.profile, &record)
                .instrument(span)
                .await
            {
                Ok(link) => link,
                Err(failure) => {
                    attach_failures.push((record.id.clone(), failure));
                    None
                }
            };
            devices.push(ManagedDevice {
                record,
                profile: plan.profile,
                link,
            });
        }
        let offers = Arc::new(ImageOffers::default());
        if let Some(base) = &config.listen.image_base_url {
            offers.set_base_url(base);
        }
        let registry = Arc::new(registry);
        let identities = Identities::open(&config, Arc::clone(&registry))?.map(Arc::new);
        let firmware = FirmwareEngine::start(
            &config,
            Arc::clone(&registry),
            Arc::clone(&offers),
            devices
                .iter()
                .map(|d| DeviceEntry {
                    id: d.record.id.clone(),
                    profile: Arc::clone(&d.profile),
                    link: d.link.clone(),
                    // With enrollment on, a device joins its group (policy, campaigns) when it
                    // is commissioned into it.
                    group: if identities.is_none()
                        || matches!(
                            d.record.lifecycle,
                            LifecycleState::Commissioned | LifecycleState::Maintenance
                        ) {
                        d.record.group.clone()
                    } else {
                        None
                    },
                })
                .collect(),
        )
        .map_err(StartError::Firmware)?;
        let firmware = Arc::new(firmware);
        let diagnostics = DiagnosticsEngine::new(
            &config,
            devices
                .iter()
                .map(|d| diagnostics::DeviceEntry {
                    id: d.record.id.clone(),
                    group: d.record.group.clone(),
                    profile: Arc::clone(&d.profile),
                    link: d.link.clone(),
                })
                .collect(),
            unix_ms(now),
        );
        for device in &devices {
            let record = &device.record;
            if reconciled.added.contains(&record.id) {
                diagnostics.record_at(&record.id, now, observe::registry_change(true, &cause));
            } else if reconciled.updated.contains(&record.id) {
                diagnostics.record_at(&record.id, now, observe::registry_change(false, &cause));
            }
            diagnostics.record_at(
                &record.id,
                now,
                observe::managed(
                    record.lifecycle.as_str(),
                    &crate::utc::format_ms(record.lifecycle_since_ms),
                    &format!("gateway {} started", config.gateway.id),
                ),
            );
        }
        for (id, (error, hint)) in attach_failures {
            diagnostics.record_at(&id, now, observe::attach_failed(&error, &hint));
        }
        diagnostics.start_fetching();
        diagnostics::export::start(&diagnostics, &config.gateway.id);
        diagnostics.adopt(tokio::spawn(observe::follow_firmware(
            diagnostics.clone(),
            Arc::clone(&firmware),
        )));
        Ok(Self {
            config,
            registry,
            devices,
            offers,
            firmware,
            diagnostics,
            identities,
        })
    }

    /// Device identities and enrollments, when enrollment is on.
    pub fn identities(&self) -> Option<&Arc<Identities>> {
        self.identities.as_ref()
    }

    /// The managed devices, in config order.
    pub fn devices(&self) -> &[ManagedDevice] {
        &self.devices
    }

    /// The config the gateway runs with.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The registry.
    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    /// One-time download URLs for devices that pull their firmware.
    pub fn image_offers(&self) -> &Arc<ImageOffers> {
        &self.offers
    }

    /// The firmware engine.
    pub fn firmware(&self) -> &Arc<FirmwareEngine> {
        &self.firmware
    }

    /// The diagnostics engine (every device's log).
    pub fn diagnostics(&self) -> &DiagnosticsEngine {
        &self.diagnostics
    }

    /// Stops the firmware engine (updates under way go on at the next start), detaches every
    /// device and closes the registry.
    pub async fn stop(self) {
        let Self {
            devices,
            registry,
            firmware,
            diagnostics,
            config,
            ..
        } = self;
        // Half the grace: the face's byebyes and the links' closing need the rest.
        diagnostics
            .shutdown(config.gateway.shutdown_grace / 2)
            .await;
        firmware.shutdown().await;
        drop(firmware);
        drop(devices);
        drop(registry);
    }
}

/// Attaches the device; `Ok(None)` when no adapter of its protocol is built in, `Err` with the
/// error and its hint when attaching failed (logged here).
async fn attach(
    adapters: &AdapterSet,
    profile: &Arc<Profile>,
    record: &DeviceRecord,
) -> Result<Option<Arc<dyn DeviceLink>>, (String, String)> {
    let Some(adapter) = adapters.get(&profile.protocol) else {
        return Ok(None);
    };
    let binding = DeviceBinding {
        device_id: record.id.clone(),
        profile: Arc::clone(profile),
        address: record.address.clone(),
    };
    match adapter.attach(&binding).await {
        Ok(link) => Ok(Some(link)),
        Err(e) => {
            tracing::error!(error = %e, hint = e.hint(), "cannot attach the device; it stays managed and is retried when the gateway restarts");
            Err((e.to_string(), e.hint().to_string()))
        }
    }
}

//! An in-memory adapter: a device model held in memory, with the same contract a real adapter
//! has. It proves the conformance kit (a correct link passes, deliberately broken ones are
//! caught), and lets the gateway's own tests run the whole daemon without hardware.
//!
//! Profiles use `protocol = "memory"`, addresses `memory:<name>`, and a section
//! `[memory] initial = { parameter = value, ... }` with the starting values.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::SystemTime;

use async_trait::async_trait;
use serde::Deserialize;
use tokio::sync::broadcast;

use super::SimulatedDevice;
use crate::profile::ActionKind;
use crate::{
    ActionOutcome, ActionRequest, ActivationMode, Adapter, BankInfo, DeviceBinding, DeviceLink,
    DeviceLogRecord, FirmwareCapabilities, FirmwareImage, FirmwareTarget, Identity,
    IdentityEvidence, LinkError, LinkEvent, LocatedError, LogBatch, LogCursor, LogSource, Profile,
    Readings, Resource, Severity, StageOutcome, StageProgress, Value,
};

/// The protocol section of the memory adapter.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MemorySection {
    initial: BTreeMap<String, toml::Value>,
}

/// How a link deliberately breaks the contract, to show the kit notices.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Fault {
    /// None: the link honours the contract.
    None,
    /// Acknowledges writes without storing them.
    IgnoresWrites,
    /// Reports a silent device as a transport failure instead of a timeout.
    TransportInsteadOfTimeout,
    /// Sends values without checking them against the profile.
    SkipsRangeCheck,
}

/// The in-memory adapter.
#[derive(Debug)]
pub struct MemoryAdapter {
    fault: Fault,
    /// The simulated devices by address, so tests can reach the simulator behind a link.
    devices: RwLock<BTreeMap<String, Arc<MemoryDevice>>>,
    /// Identity evidence the devices at these addresses will report (e.g. a bonded key).
    evidence: RwLock<BTreeMap<String, IdentityEvidence>>,
}

impl MemoryAdapter {
    /// An adapter whose links have `fault`.
    pub fn new(fault: Fault) -> Self {
        Self {
            fault,
            devices: RwLock::default(),
            evidence: RwLock::default(),
        }
    }

    /// The device attached at `address` from now on reports `evidence` when it identifies
    /// itself (a simulated bonded key or install code); devices already attached are not
    /// changed.
    pub fn set_evidence(&self, address: &str, evidence: IdentityEvidence) {
        self.evidence
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(address.to_owned(), evidence);
    }

    /// The simulated device attached at `address`, for the test to control.
    pub fn device(&self, address: &str) -> Option<Arc<MemoryDevice>> {
        self.devices
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(address)
            .cloned()
    }
}

#[async_trait]
impl Adapter for MemoryAdapter {
    fn protocol(&self) -> &'static str {
        "memory"
    }

    fn validate_profile(&self, profile: &Profile) -> Result<(), Vec<LocatedError>> {
        let section: MemorySection = profile.source().section("memory").map_err(|e| vec![e])?;
        let errors: Vec<_> = section
            .initial
            .keys()
            .filter(|k| profile.parameter(k).is_none())
            .map(|k| {
                profile.source().error_at(
                    &format!("memory.initial.{k}"),
                    format!("no parameter `{k}` is declared"),
                )
            })
            .collect();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }

    fn profile_section_schema(&self) -> schemars::Schema {
        schemars::json_schema!({ "type": "object" })
    }

    fn validate_address(&self, address: &str) -> Result<(), String> {
        address
            .strip_prefix("memory:")
            .map(|_| ())
            .ok_or_else(|| "expected memory:<name>".to_owned())
    }

    fn resources(&self, _address: &str) -> Vec<Resource> {
        Vec::new()
    }

    async fn attach(&self, binding: &DeviceBinding) -> Result<Arc<dyn DeviceLink>, LinkError> {
        let section: MemorySection = binding
            .profile
            .source()
            .section("memory")
            .map_err(|e| LinkError::Malformed(e.to_string()))?;
        let initial: Readings = section
            .initial
            .iter()
            .filter_map(|(k, v)| Some((k.clone(), Value::from_toml(v)?)))
            .collect();
        let link = MemoryLink::new(Arc::clone(&binding.profile), initial, self.fault);
        if let Some(evidence) = self
            .evidence
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&binding.address)
        {
            link.device.with(|s| s.evidence = evidence.clone());
        }
        self.devices
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(binding.address.clone(), Arc::clone(&link.device));
        Ok(Arc::new(link))
    }
}

#[derive(Debug, Default)]
struct DeviceState {
    values: Readings,
    log: Vec<DeviceLogRecord>,
    /// Index of the next log record; never reused, even after a clear, as on a real device.
    next_log_index: u64,
    banks: Vec<BankInfo>,
    staged: Option<String>,
    evidence: IdentityEvidence,
}

/// A simulated device held in memory.
#[derive(Debug)]
pub struct MemoryDevice {
    unresponsive: AtomicBool,
    state: RwLock<DeviceState>,
    events: broadcast::Sender<LinkEvent>,
}

impl MemoryDevice {
    fn with<T>(&self, f: impl FnOnce(&mut DeviceState) -> T) -> T {
        f(&mut self.state.write().unwrap_or_else(PoisonError::into_inner))
    }

    /// Changes values at the device itself (a person at its panel, a new measurement), and
    /// reports the change to the link's subscribers, as a real device's adapter would.
    pub fn change_locally(&self, values: Readings) {
        self.with(|s| s.values.extend(values.clone()));
        let _ = self.events.send(LinkEvent::Changed {
            at: SystemTime::now(),
            values,
        });
    }

    /// The value the device holds for `name`.
    pub fn value(&self, name: &str) -> Option<Value> {
        self.with(|s| s.values.get(name).cloned())
    }
}

impl SimulatedDevice for MemoryDevice {
    fn set_unresponsive(&self, unresponsive: bool) {
        self.unresponsive.store(unresponsive, Ordering::SeqCst);
    }

    fn append_log(&self, severity: Severity, message: &str) {
        self.log(severity, message);
    }
}

impl MemoryDevice {
    /// Appends a record to the device's own log, as its firmware would.
    fn log(&self, severity: Severity, message: &str) {
        self.with(|s| {
            let index = s.next_log_index;
            s.next_log_index += 1;
            s.log.push(DeviceLogRecord {
                index: Some(index),
                timestamp: Some(SystemTime::now()),
                severity,
                message: message.to_owned(),
                fields: BTreeMap::new(),
            });
        });
    }
}

#[derive(Debug)]
struct MemoryLink {
    profile: Arc<Profile>,
    initial: Readings,
    device: Arc<MemoryDevice>,
    fault: Fault,
}

impl MemoryLink {
    fn new(profile: Arc<Profile>, initial: Readings, fault: Fault) -> Self {
        let device = MemoryDevice {
            unresponsive: AtomicBool::new(false),
            state: RwLock::new(DeviceState {
                values: initial.clone(),
                banks: vec![
                    BankInfo {
                        slot: 0,
                        version: Some("1.0.0".into()),
                        active: true,
                        confirmed: true,
                        pending: false,
                    },
                    BankInfo {
                        slot: 1,
                        version: None,
                        active: false,
                        confirmed: false,
                        pending: false,
                    },
                ],
                ..DeviceState::default()
            }),
            events: broadcast::channel(16).0,
        };
        if profile.logs.is_supported() {
            device.log(Severity::Informational, "power on");
        }
        Self {
            profile,
            initial,
            device: Arc::new(device),
            fault,
        }
    }

    /// Logs what the device did, when its profile says it keeps a log (as the device's own
    /// firmware would: writes, restarts, resets).
    fn log_if_kept(&self, severity: Severity, message: &str) {
        if self.profile.logs.is_supported() {
            self.device.log(severity, message);
        }
    }

    /// Every request passes here: an unresponsive device makes the caller wait out the profile's
    /// timeout and retries, as a real bus would.
    async fn exchange(&self) -> Result<(), LinkError> {
        if self.device.unresponsive.load(Ordering::SeqCst) {
            let deadline = self.profile.poll.request_deadline();
            tokio::time::sleep(deadline).await;
            return Err(match self.fault {
                Fault::TransportInsteadOfTimeout => LinkError::Transport("port closed".into()),
                _ => LinkError::Timeout { after: deadline },
            });
        }
        Ok(())
    }
}

#[async_trait]
impl DeviceLink for MemoryLink {
    async fn identify(&self) -> Result<Identity, LinkError> {
        self.exchange().await?;
        let version = self.device.with(|s| {
            s.banks
                .iter()
                .find(|b| b.active)
                .and_then(|b| b.version.clone())
        });
        Ok(Identity {
            manufacturer: self.profile.manufacturer.clone(),
            model: self.profile.model.clone(),
            serial: Some("MEM-0001".into()),
            firmware_version: version,
            evidence: self.device.with(|s| s.evidence.clone()),
            ..Identity::default()
        })
    }

    async fn read(&self, names: &[String]) -> Result<Readings, LinkError> {
        self.profile.check_read(names)?;
        self.exchange().await?;
        self.device.with(|s| {
            names
                .iter()
                .map(|n| {
                    s.values
                        .get(n)
                        .cloned()
                        .map(|v| (n.clone(), v))
                        .ok_or_else(|| LinkError::Malformed(format!("no value for {n}")))
                })
                .collect()
        })
    }

    async fn write(&self, values: &Readings) -> Result<(), LinkError> {
        let checked = if self.fault == Fault::SkipsRangeCheck {
            values.clone()
        } else {
            self.profile.check_write(values)?
        };
        self.exchange().await?;
        if self.fault != Fault::IgnoresWrites {
            self.device.with(|s| s.values.extend(checked.clone()));
        }
        for (name, value) in &checked {
            self.log_if_kept(Severity::Notice, &format!("{name} set to {value}"));
        }
        let _ = self.device.events.send(LinkEvent::Changed {
            at: SystemTime::now(),
            values: checked,
        });
        Ok(())
    }

    async fn invoke(&self, action: &ActionRequest) -> Result<ActionOutcome, LinkError> {
        let spec = self
            .profile
            .action(&action.name)
            .ok_or_else(|| LinkError::UnknownAction {
                name: action.name.clone(),
            })?;
        spec.check_arguments(&action.arguments)?;
        self.exchange().await?;
        match spec.kind {
            ActionKind::Reboot => {
                self.log_if_kept(Severity::Notice, "restart requested");
                Ok(ActionOutcome::Accepted)
            }
            ActionKind::FactoryReset => {
                self.log_if_kept(Severity::Warning, "factory settings restored");
                self.device.with(|s| s.values = self.initial.clone());
                Ok(ActionOutcome::Done {
                    output: BTreeMap::new(),
                })
            }
            _ => Ok(ActionOutcome::Done {
                output: BTreeMap::new(),
            }),
        }
    }

    fn events(&self) -> broadcast::Receiver<LinkEvent> {
        self.device.events.subscribe()
    }

    fn firmware(&self) -> Option<&dyn FirmwareTarget> {
        self.profile
            .firmware
            .is_supported()
            .then_some(self as &dyn FirmwareTarget)
    }

    fn logs(&self) -> Option<&dyn LogSource> {
        self.profile
            .logs
            .is_supported()
            .then_some(self as &dyn LogSource)
    }
}

#[async_trait]
impl FirmwareTarget for MemoryLink {
    fn capabilities(&self) -> FirmwareCapabilities {
        FirmwareCapabilities {
            dual_bank: self.profile.firmware.dual_bank,
            confirm_required: self.profile.firmware.dual_bank,
            resumable: true,
            max_image_size: self.profile.firmware.max_image_size,
            preferred_chunk: 1024,
        }
    }

    async fn banks(&self) -> Result<Vec<BankInfo>, LinkError> {
        self.exchange().await?;
        Ok(self.device.with(|s| {
            if self.profile.firmware.dual_bank {
                s.banks.clone()
            } else {
                s.banks[..1].to_vec()
            }
        }))
    }

    async fn stage(
        &self,
        image: &FirmwareImage,
        from_offset: u64,
        progress: &(dyn Fn(StageProgress) + Send + Sync),
    ) -> Result<StageOutcome, LinkError> {
        let total = image.bytes.len() as u64;
        let mut offset = from_offset;
        while offset < total {
            self.exchange().await?;
            offset = (offset + 1024).min(total);
            progress(StageProgress {
                acknowledged: offset,
                total,
            });
        }
        self.device.with(|s| s.staged = Some(image.version.clone()));
        Ok(StageOutcome {
            transferred: total - from_offset,
            verified_on_device: false,
        })
    }

    async fn activate(&self, mode: ActivationMode) -> Result<(), LinkError> {
        self.exchange().await?;
        self.device.with(|s| {
            let version = s.staged.take().ok_or_else(|| LinkError::DeviceRefused {
                code: "nothing staged".into(),
                detail: None,
            })?;
            if !self.profile.firmware.dual_bank {
                s.banks[0].version = Some(version);
                return Ok(());
            }
            for bank in &mut s.banks {
                if bank.active {
                    bank.active = false;
                } else {
                    bank.active = true;
                    bank.version = Some(version.clone());
                    bank.confirmed = mode == ActivationMode::Permanent;
                }
            }
            Ok(())
        })
    }

    async fn confirm(&self) -> Result<(), LinkError> {
        self.exchange().await?;
        self.device.with(|s| {
            for bank in &mut s.banks {
                bank.confirmed = bank.active;
            }
        });
        Ok(())
    }

    async fn revert(&self) -> Result<(), LinkError> {
        if !self.profile.firmware.dual_bank {
            return Err(LinkError::Unsupported {
                operation: "firmware revert".into(),
                reason: "the device has one bank".into(),
            });
        }
        self.exchange().await?;
        self.device.with(|s| {
            for bank in &mut s.banks {
                bank.active = bank.confirmed;
            }
        });
        Ok(())
    }
}

#[async_trait]
impl LogSource for MemoryLink {
    async fn fetch(&self, since: Option<LogCursor>) -> Result<LogBatch, LinkError> {
        self.exchange().await?;
        let first = match since {
            Some(LogCursor::Index(i)) => i + 1,
            _ => 0,
        };
        Ok(self.device.with(|s| {
            let records: Vec<_> = s
                .log
                .iter()
                .filter(|r| r.index.is_some_and(|i| i >= first))
                .cloned()
                .collect();
            let next = records
                .last()
                .and_then(|r| r.index)
                .map(LogCursor::Index)
                .or(since);
            LogBatch { records, next }
        }))
    }

    async fn clear(&self) -> Result<(), LinkError> {
        self.exchange().await?;
        self.device.with(|s| s.log.clear());
        Ok(())
    }
}

//! Proves the conformance kit with a small in-memory adapter: a correct link passes every check,
//! and links that break the contract in typical ways are caught.

#![allow(missing_docs)]

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::SystemTime;

use async_trait::async_trait;
use iotmc_adapter::testkit::{Conformance, FirmwareFixture, Outcome, SimulatedDevice};
use iotmc_adapter::{
    ActionOutcome, ActionRequest, ActivationMode, Adapter, BankInfo, DeviceBinding, DeviceLink,
    DeviceLogRecord, FirmwareCapabilities, FirmwareImage, FirmwareTarget, Identity, LinkError,
    LinkEvent, LocatedError, LogBatch, LogCursor, LogSource, Profile, Readings, Resource, Severity,
    StageOutcome, StageProgress, Value,
};
use serde::Deserialize;
use tokio::sync::broadcast;

const PROFILE: &str = r#"
id = "memory-thermostat"
manufacturer = "Example Works"
model = "Memory Thermostat"
protocol = "memory"

[[parameters]]
name = "temperature"
type = "float"
unit = "°C"

[[parameters]]
name = "setpoint"
type = "float"
unit = "°C"
access = "read-write"
range = { min = 5, max = 30 }
resolution = 0.5

[[parameters]]
name = "mode"
type = "enum"
access = "read-write"
values = ["off", "heat", "auto"]

[[parameters]]
name = "label"
type = "string"
access = "read-write"
max_length = 16

[[actions]]
name = "reboot"
kind = "reboot"
timeout = "10s"

[[actions]]
name = "factory_reset"
kind = "factory-reset"

[[actions]]
name = "identify_blink"
arguments = [{ name = "seconds", type = "int", range = { min = 1, max = 60 } }]

[firmware]
method = "memory"
dual_bank = true
max_image_size = 65536

[logs]
method = "memory"

[memory]
initial = { temperature = 20.5, setpoint = 21.0, mode = "auto", label = "plant room" }
"#;

/// The protocol section of the memory adapter.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MemorySection {
    initial: BTreeMap<String, toml::Value>,
}

fn to_value(v: &toml::Value) -> Option<Value> {
    match v {
        toml::Value::Boolean(b) => Some(Value::Bool(*b)),
        toml::Value::Integer(i) => Some(Value::Int(*i)),
        toml::Value::Float(f) => Some(Value::Float(*f)),
        toml::Value::String(s) => Some(Value::Text(s.clone())),
        _ => None,
    }
}

/// How a link deliberately breaks the contract, to show the kit notices.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Fault {
    None,
    IgnoresWrites,
    TransportInsteadOfTimeout,
    SkipsRangeCheck,
}

#[derive(Debug)]
struct MemoryAdapter {
    fault: Fault,
    /// The simulated devices by address, so tests can reach the simulator behind a link.
    devices: RwLock<BTreeMap<String, Arc<MemoryDevice>>>,
}

impl MemoryAdapter {
    fn new(fault: Fault) -> Self {
        Self {
            fault,
            devices: RwLock::default(),
        }
    }

    fn device(&self, address: &str) -> Option<Arc<MemoryDevice>> {
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
            .map_err(|e| LinkError::Transport(e.to_string()))?;
        let initial: Readings = section
            .initial
            .iter()
            .filter_map(|(k, v)| Some((k.clone(), to_value(v)?)))
            .collect();
        let link = MemoryLink::new(Arc::clone(&binding.profile), initial, self.fault);
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
    banks: Vec<BankInfo>,
    staged: Option<String>,
}

#[derive(Debug)]
struct MemoryDevice {
    unresponsive: AtomicBool,
    state: RwLock<DeviceState>,
}

impl MemoryDevice {
    fn with<T>(&self, f: impl FnOnce(&mut DeviceState) -> T) -> T {
        f(&mut self.state.write().unwrap_or_else(PoisonError::into_inner))
    }
}

impl SimulatedDevice for MemoryDevice {
    fn set_unresponsive(&self, unresponsive: bool) {
        self.unresponsive.store(unresponsive, Ordering::SeqCst);
    }

    fn append_log(&self, severity: Severity, message: &str) {
        self.with(|s| {
            let index = s.log.len() as u64;
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
    events: broadcast::Sender<LinkEvent>,
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
        };
        Self {
            profile,
            initial,
            device: Arc::new(device),
            events: broadcast::channel(16).0,
            fault,
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
        let _ = self.events.send(LinkEvent::Changed {
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
            iotmc_adapter::profile::ActionKind::Reboot => Ok(ActionOutcome::Accepted),
            iotmc_adapter::profile::ActionKind::FactoryReset => {
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
        self.events.subscribe()
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

fn image(version: &str, len: usize) -> FirmwareImage {
    FirmwareImage {
        bytes: vec![0xA5; len].into(),
        sha256: [0; 32],
        version: version.into(),
        download_url: None,
    }
}

fn fixture() -> FirmwareFixture {
    FirmwareFixture {
        first: image("1.1.0", 5000),
        second: image("1.2.0", 3000),
    }
}

async fn run(profile_text: &str, fault: Fault) -> iotmc_adapter::testkit::Report {
    let profile = Arc::new(
        Profile::from_toml(Path::new("memory.toml"), profile_text)
            .unwrap_or_else(|e| panic!("{e:?}")),
    );
    let adapter = MemoryAdapter::new(fault);
    adapter
        .validate_profile(&profile)
        .unwrap_or_else(|e| panic!("{e:?}"));
    let binding = DeviceBinding {
        device_id: "thermostat-1".into(),
        profile: Arc::clone(&profile),
        address: "memory:one".into(),
    };
    let link = adapter
        .attach(&binding)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let device = adapter
        .device("memory:one")
        .expect("the adapter keeps the device it attached");
    Conformance::new(link, profile, device.as_ref())
        .with_firmware(fixture())
        .run()
        .await
}

fn failed(report: &iotmc_adapter::testkit::Report) -> Vec<&str> {
    report.failures().map(|c| c.name.as_str()).collect()
}

#[tokio::test(start_paused = true)]
async fn correct_dual_bank_link_should_pass_every_check() {
    let report = run(PROFILE, Fault::None).await;
    report.assert_passed();
    assert!(
        report.passed("firmware: revert returns to the confirmed version"),
        "{report}"
    );
    assert!(
        report.passed("read from an unresponsive device is Timeout"),
        "{report}"
    );
    assert!(report.passed("write reads back: setpoint"), "{report}");
    assert!(report.passed("action: identify_blink"), "{report}");
}

#[tokio::test(start_paused = true)]
async fn correct_single_bank_link_without_logs_should_pass_and_skip_what_does_not_apply() {
    let text = PROFILE
        .replace("dual_bank = true", "dual_bank = false")
        .replace("[logs]\nmethod = \"memory\"", "");
    let report = run(&text, Fault::None).await;
    report.assert_passed();
    assert!(
        report.passed("firmware: revert on a single-bank target is Unsupported"),
        "{report}"
    );
    assert!(
        report
            .checks
            .iter()
            .any(|c| c.name == "log fetch" && matches!(c.outcome, Outcome::Skipped(_))),
        "{report}"
    );
}

#[tokio::test(start_paused = true)]
async fn kit_should_catch_a_link_that_ignores_writes() {
    let report = run(PROFILE, Fault::IgnoresWrites).await;
    assert_eq!(
        failed(&report),
        vec![
            "write reads back: setpoint",
            "write reads back: mode",
            "write reads back: label"
        ],
        "{report}"
    );
}

#[tokio::test(start_paused = true)]
async fn kit_should_catch_a_link_that_reports_transport_failure_for_a_silent_device() {
    let report = run(PROFILE, Fault::TransportInsteadOfTimeout).await;
    assert_eq!(
        failed(&report),
        vec!["read from an unresponsive device is Timeout"],
        "{report}"
    );
}

#[tokio::test(start_paused = true)]
async fn kit_should_catch_a_link_that_sends_out_of_range_values() {
    let report = run(PROFILE, Fault::SkipsRangeCheck).await;
    let failures = failed(&report);
    assert!(
        failures.contains(&"write of 31 to `setpoint` is OutOfRange"),
        "{report}"
    );
    assert!(
        failures.contains(&"write of text to numeric `setpoint` is WrongType"),
        "{report}"
    );
}

#[test]
fn adapter_should_locate_errors_in_its_own_section() {
    let text = PROFILE.replace("label = \"plant room\"", "lable = \"plant room\"");
    let profile =
        Profile::from_toml(Path::new("memory.toml"), &text).unwrap_or_else(|e| panic!("{e:?}"));
    let errors = MemoryAdapter::new(Fault::None)
        .validate_profile(&profile)
        .unwrap_err();
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].line, Some(54), "{}", errors[0]);
    assert_eq!(
        errors[0].to_string(),
        "memory.toml:54:73: field `memory.initial.lable`: no parameter `lable` is declared"
    );
}

//! Firmware by file records (FC 0x15), verified by read-back (FC 0x14) or a device-side digest,
//! with bank handling through profile-declared registers.
//!
//! The image is cut into registers (bytes `2i`, `2i + 1`, the last one padded with 0x00);
//! register `i` goes to global record `i`, that is record `i % records_per_file` of file
//! `first_file + i / records_per_file`. A request never crosses a file.

mod boot;
mod image;

use std::collections::BTreeMap;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use iotmc_adapter::profile::ActionKind;
use iotmc_adapter::{
    ActivationMode, BankInfo, FirmwareCapabilities, FirmwareImage, LinkError, StageOutcome,
    StageProgress, Value, ValueType,
};
use tokio::time::{Instant, sleep};

use super::Device;
use super::ops::{describe_range, refused, synthetic};
use crate::driver::Priority;
use crate::encoding::Codec;
use crate::frame::{ExceptionCode, FileRecord, Request, Response, Table};
use crate::profile::{BankMap, Encoding, FirmwareMap, Point, RawValue, Verify, WriteStep};
use image::{capacity_bytes, file_chunks, image_words, registers_for};

/// Registers one Read File Record request asks for during read-back.
const READ_BACK_REGISTERS: u16 = 120;
/// How long to wait before sending again a request the device answered "busy" (06).
const BUSY_WAIT: Duration = Duration::from_millis(200);
/// How many times a request answered "busy" is sent again.
const BUSY_RETRIES: u32 = 10;
/// When to look first whether the device has gone away to restart.
const FIRST_LOOK: Duration = Duration::from_millis(200);
/// Time between polls while the device restarts.
const RESTART_POLL: Duration = Duration::from_millis(500);
/// How long a restart may take when the profile declares no `reboot` action.
const DEFAULT_RESTART_TIMEOUT: Duration = Duration::from_secs(120);
/// How long the device may take to report a confirmed image after `confirm`.
const CONFIRM_TIMEOUT: Duration = Duration::from_secs(30);

/// The firmware target of a device whose profile declares `firmware.method = "file-record"`.
#[derive(Debug)]
pub struct FileRecordFirmware {
    device: Arc<Device>,
    /// Version of the image staged last, to tell a good boot from a failed one.
    staged: RwLock<Option<String>>,
}

impl FileRecordFirmware {
    /// The target, if the profile declares one.
    pub(crate) fn new(device: Arc<Device>) -> Option<Self> {
        device.section.firmware.as_ref()?;
        Some(Self {
            device,
            staged: RwLock::new(None),
        })
    }

    fn map(&self) -> Result<&FirmwareMap, LinkError> {
        self.device
            .section
            .firmware
            .as_ref()
            .ok_or_else(|| LinkError::Unsupported {
                operation: "firmware".to_owned(),
                reason: "the profile's [modbus] section has no firmware map".to_owned(),
            })
    }

    /// The bank map, if the device has two banks.
    fn banks_map(&self) -> Option<&BankMap> {
        let map = self.device.section.firmware.as_ref()?;
        if self.device.profile.firmware.dual_bank {
            map.banks.as_ref()
        } else {
            None
        }
    }

    fn dual_only(&self, operation: &str) -> Result<&BankMap, LinkError> {
        self.banks_map().ok_or_else(|| LinkError::Unsupported {
            operation: format!("firmware {operation}"),
            reason: "the device has a single bank (the profile declares no bank registers)"
                .to_owned(),
        })
    }

    fn staged_version(&self) -> Option<String> {
        self.staged
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn set_staged_version(&self, version: Option<String>) {
        *self.staged.write().unwrap_or_else(PoisonError::into_inner) = version;
    }

    /// How long a restart may take: the `reboot` action's timeout, else two minutes.
    fn restart_timeout(&self) -> Duration {
        self.device
            .profile
            .actions
            .iter()
            .find(|a| a.kind == ActionKind::Reboot)
            .map_or(DEFAULT_RESTART_TIMEOUT, |a| a.timeout)
    }

    /// Sends `request`, again after a pause while the device answers "busy" (06).
    async fn call_patiently(&self, request: Request, what: &str) -> Result<Response, LinkError> {
        let mut busy = 0;
        loop {
            match self
                .device
                .call_raw(request.clone(), Priority::Management)
                .await?
            {
                Ok(response) => return Ok(response),
                Err(ExceptionCode::ServerDeviceBusy) if busy < BUSY_RETRIES => {
                    busy += 1;
                    tracing::debug!(device = %self.device.device_id, what, busy, "device busy; sending again");
                    sleep(BUSY_WAIT).await;
                }
                Err(code) => return Err(refused(code, what)),
            }
        }
    }

    /// Writes raw `value` to an integer point (image size, bank select).
    async fn write_point(&self, point: &Point, value: i64, name: &str) -> Result<(), LinkError> {
        let what = format!(
            "writing the {name} ({value}) to {} {}",
            Table::from(point.table),
            describe_range(point.address, 1)
        );
        let request = if Table::from(point.table).is_bits() {
            Request::WriteSingleCoil {
                address: point.address,
                value: value != 0,
            }
        } else {
            let mut point = point.clone();
            if point.encoding.is_none() && name == "image size" {
                point.encoding = Some(Encoding::U32);
            }
            let codec = Codec::new(&self.device.section, &point);
            let parameter = synthetic(name, ValueType::Int, &point);
            let words = codec.encode_registers(&parameter, &Value::Int(value), None)?;
            self.device.register_write(point.address, words)
        };
        self.call_patiently(request, &what).await.map(|_| ())
    }
}

#[async_trait::async_trait]
impl iotmc_adapter::FirmwareTarget for FileRecordFirmware {
    fn capabilities(&self) -> FirmwareCapabilities {
        let profile_max = self.device.profile.firmware.max_image_size;
        let (chunk, capacity) = match &self.device.section.firmware {
            Some(map) => (map.chunk_registers, capacity_bytes(map)),
            None => (0, 0),
        };
        let dual_bank = self.banks_map().is_some();
        FirmwareCapabilities {
            dual_bank,
            confirm_required: dual_bank,
            resumable: true,
            max_image_size: profile_max.min(capacity),
            preferred_chunk: u32::from(chunk) * 2,
        }
    }

    async fn banks(&self) -> Result<Vec<BankInfo>, LinkError> {
        let map = self.map()?;
        let Some(banks) = self.banks_map() else {
            let version = match &map.running_version {
                Some(point) => self.read_version(point, "running version").await?,
                None => None,
            };
            return Ok(vec![BankInfo {
                slot: 0,
                version,
                active: true,
                confirmed: true,
                pending: false,
            }]);
        };
        let active = self.active_bank(banks).await?;
        let state = self.boot_state(banks).await?;
        let mut out = Vec::with_capacity(2);
        for slot in 0..2u8 {
            let version = self.bank_version(banks, slot).await?;
            let is_active = slot == active;
            out.push(BankInfo {
                slot,
                confirmed: if is_active {
                    state == banks.state.confirmed
                } else {
                    version.is_some()
                },
                version,
                active: is_active,
                pending: false,
            });
        }
        Ok(out)
    }

    async fn stage(
        &self,
        image: &FirmwareImage,
        from_offset: u64,
        progress: &(dyn Fn(StageProgress) + Send + Sync),
    ) -> Result<StageOutcome, LinkError> {
        let map = self.map()?;
        let total = image.bytes.len() as u64;
        let max = self.capabilities().max_image_size;
        if total > max {
            return Err(LinkError::OutOfRange {
                name: "firmware image".to_owned(),
                value: format!("{total} bytes"),
                expected: format!("at most {max} bytes (the profile's max_image_size)"),
            });
        }
        if from_offset > total {
            return Err(LinkError::OutOfRange {
                name: "firmware resume offset".to_owned(),
                value: from_offset.to_string(),
                expected: format!("at most the image size, {total} bytes"),
            });
        }
        if let Some(point) = &map.size {
            self.write_point(
                point,
                i64::try_from(total).unwrap_or(i64::MAX),
                "image size",
            )
            .await?;
        }
        if let Some(banks) = self.banks_map()
            && let Some(select) = &banks.select
        {
            let active = self.active_bank(banks).await?;
            self.write_point(select, i64::from(1 - active), "standby bank")
                .await?;
        }
        let registers = registers_for(total);
        let start = (from_offset / 2).min(registers);
        let mut reported = false;
        for chunk in file_chunks(map, start, registers, map.chunk_registers) {
            let data = image_words(&image.bytes, chunk.first, chunk.count);
            let what = format!("writing firmware {}", chunk.describe());
            let request = Request::WriteFileRecord(vec![FileRecord {
                file: chunk.file,
                record: chunk.record,
                data,
            }]);
            match self.call_patiently(request, &what).await? {
                Response::WriteFileRecord(_) => {}
                other => {
                    return Err(LinkError::Malformed(format!(
                        "{what}: unexpected answer {other:?}"
                    )));
                }
            }
            let acknowledged = ((chunk.first + u64::from(chunk.count)) * 2).min(total);
            progress(StageProgress {
                acknowledged,
                total,
            });
            reported = true;
        }
        if !reported {
            progress(StageProgress {
                acknowledged: total,
                total,
            });
        }
        self.verify(map, image).await?;
        self.set_staged_version(Some(image.version.clone()));
        Ok(StageOutcome {
            transferred: total - from_offset,
            verified_on_device: map.verify != Verify::None,
        })
    }

    async fn activate(&self, mode: ActivationMode) -> Result<(), LinkError> {
        let map = self.map()?;
        let value = match mode {
            ActivationMode::Permanent => map.activate.permanent,
            ActivationMode::Test => {
                self.dual_only("test activation")?;
                map.activate.test.ok_or_else(|| LinkError::Unsupported {
                    operation: "firmware test activation".to_owned(),
                    reason: "the profile's `activate` register declares no `test` value".to_owned(),
                })?
            }
        };
        let before = self.running().await?;
        let staged = self.staged_version();
        let step = WriteStep {
            table: map.activate.table,
            address: map.activate.address,
            value: Some(RawValue::Int(value)),
            argument: None,
            encoding: None,
            scale: None,
            offset: None,
        };
        let what = format!(
            "activating the staged image ({mode:?}) by writing {value} to {} {}",
            Table::from(step.table),
            describe_range(step.address, 1)
        );
        self.write_restarting_step(&step, &what).await?;
        let now = self.wait_for_restart(&before, staged.as_deref()).await?;
        let Some(new) = staged else {
            return Ok(());
        };
        if now.version.as_deref() == Some(new.as_str()) {
            self.set_staged_version(None);
            return Ok(());
        }
        let old = before.version.as_deref().unwrap_or("an unknown version");
        let came_back = now.version.as_deref().unwrap_or("an unknown version");
        Err(LinkError::DeviceRefused {
            code: "boot failed".to_owned(),
            detail: Some(if now.version == before.version {
                format!(
                    "the device came back running {old} instead of {new}; it kept its previous image"
                )
            } else {
                format!("the device came back running {came_back}, expected {new}")
            }),
        })
    }

    async fn confirm(&self) -> Result<(), LinkError> {
        let banks = self.dual_only("confirm")?;
        let what = format!(
            "confirming the running image (write to {} {})",
            Table::from(banks.confirm.table),
            describe_range(banks.confirm.address, 1)
        );
        self.device
            .write_step(&banks.confirm, &BTreeMap::new(), &what)
            .await?;
        let deadline = Instant::now() + CONFIRM_TIMEOUT;
        loop {
            match self.boot_state(banks).await {
                Ok(state) if state == banks.state.confirmed => return Ok(()),
                Ok(state) => {
                    tracing::debug!(device = %self.device.device_id, state, "not confirmed yet");
                }
                Err(e) if e.is_transient() => {}
                Err(e) => return Err(e),
            }
            if Instant::now() + RESTART_POLL > deadline {
                return Err(LinkError::Timeout {
                    after: CONFIRM_TIMEOUT,
                });
            }
            sleep(RESTART_POLL).await;
        }
    }

    async fn revert(&self) -> Result<(), LinkError> {
        let banks = self.dual_only("revert")?;
        let before = self.running().await?;
        let other = before.active.map_or(0, |a| 1 - a);
        let expected = self.bank_version(banks, other).await?;
        let what = format!(
            "reverting to bank {other} (write to {} {})",
            Table::from(banks.revert.table),
            describe_range(banks.revert.address, 1)
        );
        self.write_restarting_step(&banks.revert, &what).await?;
        let now = self.wait_for_restart(&before, expected.as_deref()).await?;
        match expected {
            Some(v) if now.version.as_deref() != Some(v.as_str()) => {
                Err(LinkError::DeviceRefused {
                    code: "revert failed".to_owned(),
                    detail: Some(format!(
                        "the device came back running {}, expected {v} from bank {other}",
                        now.version.as_deref().unwrap_or("an unknown version")
                    )),
                })
            }
            _ => Ok(()),
        }
    }
}

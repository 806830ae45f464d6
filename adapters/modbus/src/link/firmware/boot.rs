//! What the device runs, read from its bank and version registers, and the wait for it to
//! come back after a restart.

use std::collections::BTreeMap;

use iotmc_adapter::{LinkError, Value, ValueType};
use tokio::time::{Instant, sleep, timeout};

use super::{FIRST_LOOK, FileRecordFirmware, RESTART_POLL};
use crate::driver::{Policy, Priority};
use crate::frame::{ExceptionCode, Response, Table};
use crate::link::ops::describe_range;
use crate::profile::{BankMap, Encoding, Point, WriteStep};

/// What the device runs, as far as its profile lets the gateway see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Running {
    /// The bank it runs (two-bank devices).
    pub(super) active: Option<u8>,
    /// The version it runs.
    pub(super) version: Option<String>,
    /// The raw boot state (two-bank devices).
    pub(super) state: Option<i64>,
}

impl FileRecordFirmware {
    /// Reads an integer point (active bank).
    pub(super) async fn read_int(&self, point: &Point, name: &str) -> Result<i64, LinkError> {
        let value_type =
            if Table::from(point.table).is_bits() || point.encoding == Some(Encoding::Bool) {
                ValueType::Bool
            } else {
                ValueType::Int
            };
        let value = self
            .device
            .read_point(point, value_type, name, Priority::Management)
            .await?;
        match value {
            Value::Int(i) => Ok(i),
            Value::Bool(b) => Ok(i64::from(b)),
            other => Err(LinkError::Malformed(format!(
                "the {name} reads {other}, expected an integer"
            ))),
        }
    }

    /// Reads a version point: `None` for an empty string or 0 (an empty bank).
    pub(super) async fn read_version(
        &self,
        point: &Point,
        name: &str,
    ) -> Result<Option<String>, LinkError> {
        let value_type = match point.encoding {
            Some(Encoding::String) => ValueType::String,
            _ if point.scale.is_some() => ValueType::Float,
            _ => ValueType::Int,
        };
        let value = self
            .device
            .read_point(point, value_type, name, Priority::Management)
            .await?;
        Ok(match value {
            Value::Text(s) => {
                Some(s.trim_matches(['\0', ' ']).to_owned()).filter(|s| !s.is_empty())
            }
            Value::Int(0) => None,
            other => Some(other.to_string()),
        })
    }

    /// The active bank (0 or 1).
    pub(super) async fn active_bank(&self, banks: &BankMap) -> Result<u8, LinkError> {
        match self.read_int(&banks.active, "active bank").await? {
            0 => Ok(0),
            1 => Ok(1),
            other => Err(LinkError::Malformed(format!(
                "the active-bank register reads {other}, expected 0 or 1"
            ))),
        }
    }

    pub(super) async fn bank_version(
        &self,
        banks: &BankMap,
        slot: u8,
    ) -> Result<Option<String>, LinkError> {
        let point =
            banks
                .versions
                .get(usize::from(slot))
                .ok_or_else(|| LinkError::Unsupported {
                    operation: format!("reading the version of bank {slot}"),
                    reason: "the profile's `banks.versions` does not list two points".to_owned(),
                })?;
        self.read_version(point, &format!("version of bank {slot}"))
            .await
    }

    /// The raw boot state of a two-bank device.
    pub(super) async fn boot_state(&self, banks: &BankMap) -> Result<i64, LinkError> {
        let table = Table::from(banks.state.table);
        let what = format!(
            "reading the boot state from {table} {}",
            describe_range(banks.state.address, 1)
        );
        let response = self
            .call_patiently(table.read(banks.state.address, 1), &what)
            .await?;
        match response {
            Response::ReadHoldingRegisters(w) | Response::ReadInputRegisters(w) => w
                .first()
                .map(|&w| i64::from(w))
                .ok_or_else(|| LinkError::Malformed(format!("{what}: no register"))),
            Response::ReadCoils(b) | Response::ReadDiscreteInputs(b) => b
                .first()
                .map(|&b| i64::from(b))
                .ok_or_else(|| LinkError::Malformed(format!("{what}: no bit"))),
            other => Err(LinkError::Malformed(format!(
                "{what}: unexpected answer {other:?}"
            ))),
        }
    }

    /// What the device runs now; on a device that declares neither banks nor a running
    /// version, a read of the activate register only shows that it answers.
    pub(super) async fn running(&self) -> Result<Running, LinkError> {
        let map = self.map()?;
        if let Some(banks) = self.banks_map() {
            let active = self.active_bank(banks).await?;
            let state = self.boot_state(banks).await?;
            let version = match &map.running_version {
                Some(point) => self.read_version(point, "running version").await?,
                None => self.bank_version(banks, active).await?,
            };
            return Ok(Running {
                active: Some(active),
                version,
                state: Some(state),
            });
        }
        if let Some(point) = &map.running_version {
            let version = self.read_version(point, "running version").await?;
            return Ok(Running {
                active: None,
                version,
                state: None,
            });
        }
        let table = Table::from(map.activate.table);
        self.device
            .call(
                table.read(map.activate.address, 1),
                Priority::Management,
                "reading the activate register to see the device answers",
            )
            .await?;
        Ok(Running {
            active: None,
            version: None,
            state: None,
        })
    }

    /// Writes a step that makes the device restart. A transport failure may mean it
    /// restarted before it answered, so it counts as sent; the restart wait decides.
    pub(super) async fn write_restarting_step(
        &self,
        step: &WriteStep,
        what: &str,
    ) -> Result<(), LinkError> {
        match self.device.write_step(step, &BTreeMap::new(), what).await {
            Ok(_) => Ok(()),
            Err(e) if e.is_transient() => {
                tracing::debug!(device = %self.device.device_id, what, error = %e, "no answer to a restarting write; waiting for the device");
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// One read of the activate register, sent once (no retries), to see whether the device
    /// is away: a timeout or a transport failure says it is, any answer that it is not.
    async fn answers(&self) -> bool {
        let Ok(map) = self.map() else { return false };
        let table = Table::from(map.activate.table);
        let once = Policy {
            timeout: self.device.policy.timeout,
            retries: 0,
        };
        let answer = self
            .device
            .bus
            .call(
                self.device.unit,
                table.read(map.activate.address, 1),
                Priority::Management,
                once,
            )
            .await;
        match answer {
            Ok(Ok(_)) => true,
            // Busy starting up is still away; any other exception is an answer.
            Ok(Err(code)) => code != ExceptionCode::ServerDeviceBusy,
            Err(_) => false,
        }
    }

    /// Polls until the device answers again after a restart and shows it restarted (it was
    /// away, its state changed, or it runs `expected`). A device that keeps answering
    /// unchanged until the deadline is returned as it is; one that never answers is a timeout.
    pub(super) async fn wait_for_restart(
        &self,
        before: &Running,
        expected: Option<&str>,
    ) -> Result<Running, LinkError> {
        let limit = self.restart_timeout();
        let deadline = Instant::now() + limit;
        let mut went_down = false;
        let mut unchanged = None;
        // A first look soon after the write catches short restarts; then every poll interval.
        let mut pause = FIRST_LOOK;
        loop {
            sleep(pause).await;
            pause = RESTART_POLL;
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            match timeout(left, self.answers()).await {
                Err(_) => break,
                Ok(false) => {
                    went_down = true;
                    continue;
                }
                Ok(true) => {}
            }
            match timeout(left, self.running()).await {
                Err(_) => break,
                Ok(Err(e)) => {
                    tracing::debug!(device = %self.device.device_id, error = %e, "not back yet");
                    went_down = true;
                }
                Ok(Ok(now)) => {
                    let runs_expected = expected.is_some() && now.version.as_deref() == expected;
                    if runs_expected || went_down || now != *before {
                        return Ok(now);
                    }
                    unchanged = Some(now);
                }
            }
        }
        unchanged.ok_or(LinkError::Timeout { after: limit })
    }
}

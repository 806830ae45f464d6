//! Actions: the profile's write steps, then the status register polled until the device says
//! it has finished, failed, or the action's timeout passes. Exception 05 (acknowledge) and 06
//! (busy) to a write mean "accepted, in progress".

use std::collections::BTreeMap;
use std::time::Duration;

use iotmc_adapter::{ActionOutcome, ActionRequest, LinkError, Value, ValueType};
use tokio::time::{Instant, sleep};

use super::Device;
use super::ops::{WriteAck, describe_range, refused};
use crate::driver::Priority;
use crate::frame::{ExceptionCode, Response, Table};
use crate::profile::{Confirm, Encoding};

pub(super) async fn invoke(
    device: &Device,
    request: &ActionRequest,
) -> Result<ActionOutcome, LinkError> {
    let spec = device
        .profile
        .action(&request.name)
        .ok_or_else(|| LinkError::UnknownAction {
            name: request.name.clone(),
        })?;
    let arguments = spec.check_arguments(&request.arguments)?;
    let map = device
        .section
        .actions
        .get(&request.name)
        .ok_or_else(|| LinkError::Unsupported {
            operation: format!("action `{}`", request.name),
            reason: "the profile's [modbus] section does not map it".to_owned(),
        })?;
    let started = Instant::now();
    let mut ack = WriteAck::Done;
    for (i, step) in map.writes.iter().enumerate() {
        let what = format!(
            "action `{}`, step {} (write to {} {})",
            request.name,
            i + 1,
            Table::from(step.table),
            describe_range(step.address, 1)
        );
        ack = device.write_step(step, &arguments, &what).await?;
    }
    if map.restarts {
        tracing::info!(device = %device.device_id, action = %request.name, "the device restarts");
        return Ok(ActionOutcome::Accepted);
    }
    if let Some(confirm) = &map.confirm {
        let left = spec.timeout.saturating_sub(started.elapsed());
        wait_for_status(device, &request.name, confirm, left).await?;
    } else if ack == WriteAck::InProgress {
        return Ok(ActionOutcome::Accepted);
    }
    let mut output = BTreeMap::new();
    for (name, point) in &map.output {
        let value_type = match point.encoding {
            Some(Encoding::String) => ValueType::String,
            Some(Encoding::Bool) => ValueType::Bool,
            Some(Encoding::F32 | Encoding::F64) => ValueType::Float,
            _ if point.scale.is_some() || point.offset.is_some() => ValueType::Float,
            _ => ValueType::Int,
        };
        let value: Value = device
            .read_point(point, value_type, name, Priority::Management)
            .await?;
        output.insert(name.clone(), value);
    }
    Ok(ActionOutcome::Done { output })
}

async fn wait_for_status(
    device: &Device,
    action: &str,
    confirm: &Confirm,
    timeout: Duration,
) -> Result<(), LinkError> {
    let deadline = Instant::now() + timeout;
    let table = Table::from(confirm.table);
    let what = format!(
        "action `{action}`: reading its status from {table} {}",
        describe_range(confirm.address, 1)
    );
    let mut last = None;
    loop {
        let answer = device
            .call_raw(table.read(confirm.address, 1), Priority::Management)
            .await;
        match answer {
            Ok(Ok(Response::ReadHoldingRegisters(words) | Response::ReadInputRegisters(words))) => {
                let word = words.first().copied().unwrap_or_default();
                let raw = i64::from(masked(word, confirm.mask));
                if raw == confirm.done {
                    return Ok(());
                }
                if confirm.failed.contains(&raw) {
                    return Err(LinkError::DeviceRefused {
                        code: format!("status {raw}"),
                        detail: Some(format!(
                            "action `{action}` failed on the device (status register {} reads {raw})",
                            describe_range(confirm.address, 1)
                        )),
                    });
                }
                last = Some(raw);
            }
            Ok(Ok(Response::ReadCoils(bits) | Response::ReadDiscreteInputs(bits))) => {
                let raw = i64::from(bits.first().copied().unwrap_or_default());
                if raw == confirm.done {
                    return Ok(());
                }
                last = Some(raw);
            }
            Ok(Ok(other)) => {
                return Err(LinkError::Malformed(format!(
                    "{what}: unexpected answer {other:?}"
                )));
            }
            // Busy while working on it: keep waiting.
            Ok(Err(ExceptionCode::ServerDeviceBusy | ExceptionCode::Acknowledge)) => {}
            Ok(Err(code)) => return Err(refused(code, &what)),
            // A device busy with a long action may not answer for a while.
            Err(e) if e.is_transient() => {
                tracing::debug!(device = %device.device_id, action, error = %e, "status poll failed; waiting");
            }
            Err(e) => return Err(e),
        }
        if Instant::now() + confirm.interval > deadline {
            tracing::warn!(device = %device.device_id, action, status = ?last, "action did not finish in time");
            return Err(LinkError::Timeout { after: timeout });
        }
        sleep(confirm.interval).await;
    }
}

fn masked(word: u16, mask: Option<u16>) -> u16 {
    match mask {
        Some(mask) if mask != 0 => (word & mask) >> mask.trailing_zeros(),
        _ => word,
    }
}

//! Health samples during probation: is the device reachable, which version does it run, are
//! its profile's health parameters in range, has it logged anything of error severity.

use std::time::SystemTime;

use iotmc_adapter::{DeviceLink, LinkError, LogCursor, Profile, Severity};

use super::super::machine::HealthSample;

/// Most pages of the device's log read per sample.
const MAX_LOG_PAGES: usize = 8;

/// What the probe remembers between samples of one probation.
#[derive(Debug, Default)]
pub(super) struct Probe {
    /// Where the device's log was read up to.
    cursor: Option<LogCursor>,
    /// The log has been read once (the baseline).
    started: bool,
}

/// The version the device runs: its active bank's, else what it reports in its identity.
pub(super) async fn running_version(link: &dyn DeviceLink) -> Result<Option<String>, LinkError> {
    if let Some(version) = active_bank_version(link).await {
        return Ok(Some(version));
    }
    Ok(link.identify().await?.firmware_version)
}

/// The version in the device's active bank, if its firmware target reports banks with versions.
pub(super) async fn active_bank_version(link: &dyn DeviceLink) -> Option<String> {
    let banks = link.firmware()?.banks().await.ok()?;
    banks.into_iter().find(|b| b.active)?.version
}

/// Takes one sample. `since` is when probation began: device log records older than that are
/// not the new image's doing.
pub(super) async fn sample(
    link: &dyn DeviceLink,
    profile: &Profile,
    probe: &mut Probe,
    since: SystemTime,
) -> HealthSample {
    let mut problems = Vec::new();
    let names: Vec<String> = if profile.health.checks.is_empty() {
        profile.readable_parameters().into_iter().take(1).collect()
    } else {
        profile
            .health
            .checks
            .iter()
            .map(|c| c.parameter.clone())
            .collect()
    };
    let reachable = if names.is_empty() {
        link.identify().await.is_ok()
    } else {
        match link.read(&names).await {
            Ok(values) => {
                for check in &profile.health.checks {
                    let Some(value) = values.get(&check.parameter).and_then(|v| v.as_f64()) else {
                        problems.push(format!(
                            "health parameter {} was not reported as a number",
                            check.parameter
                        ));
                        continue;
                    };
                    let low = check.min.is_some_and(|min| value < min);
                    let high = check.max.is_some_and(|max| value > max);
                    if low || high {
                        problems.push(format!(
                            "{} = {value} is outside its healthy range {}..{}",
                            check.parameter,
                            check.min.map_or("".into(), |m| m.to_string()),
                            check.max.map_or("".into(), |m| m.to_string()),
                        ));
                    }
                }
                true
            }
            Err(e) => {
                tracing::info!(device = %profile.id, error = %e, "probation health read failed");
                !is_unreachable(&e)
            }
        }
    };
    let running_version = if reachable {
        running_version(link).await.ok().flatten()
    } else {
        None
    };
    if reachable {
        problems.extend(error_records(link, probe, since).await);
    }
    HealthSample {
        reachable,
        running_version,
        problems,
    }
}

fn is_unreachable(e: &LinkError) -> bool {
    matches!(
        e,
        LinkError::Timeout { .. } | LinkError::Transport(_) | LinkError::Closed
    )
}

/// Error-severity records the device logged since the last sample (since `since` on the first).
async fn error_records(link: &dyn DeviceLink, probe: &mut Probe, since: SystemTime) -> Vec<String> {
    let Some(logs) = link.logs() else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for _ in 0..MAX_LOG_PAGES {
        let batch = match logs.fetch(probe.cursor).await {
            Ok(batch) => batch,
            Err(e) => {
                tracing::info!(error = %e, "probation: the device's log could not be read");
                break;
            }
        };
        let baseline = !probe.started;
        for record in &batch.records {
            let new_enough = record.timestamp.is_none_or(|t| t >= since);
            if record.severity <= Severity::Error && (!baseline || new_enough) {
                if baseline && record.timestamp.is_none() {
                    continue;
                }
                found.push(format!(
                    "the device logged {}: {}",
                    record.severity,
                    record.message.chars().take(200).collect::<String>()
                ));
            }
        }
        let more = batch.next.is_some() && batch.next != probe.cursor && !batch.records.is_empty();
        if batch.next.is_some() {
            probe.cursor = batch.next;
        }
        if !more {
            break;
        }
    }
    probe.started = true;
    found
}

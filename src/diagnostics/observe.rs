//! What the gateway records about every device on its own: lifecycle, availability, the
//! results of controllers' actions, refused callers, firmware steps and southbound errors. One
//! place decides each event's severity and category, so the log reads the same whichever part
//! of the gateway saw it.

use std::collections::BTreeMap;
use std::sync::Arc;

use iotmc_adapter::Severity;
use tokio::sync::broadcast::error::RecvError;

use super::engine::DiagnosticsEngine;
use super::record::{Category, Event};
use crate::firmware::engine::{FirmwareEngine, Notice};
use crate::firmware::machine::{Job, Phase};

/// The gateway started managing the device, in lifecycle `state` since `since`.
pub fn managed(state: &str, since: &str, boot_note: &str) -> Event {
    Event::gateway(
        Severity::Informational,
        Category::StateTransition,
        format!("managed by this gateway ({boot_note}); lifecycle {state} since {since}"),
    )
    .with("lifecycle", state)
}

/// The device moved from lifecycle state `from` to `to` because of `cause` (enrollment,
/// approval, rejection).
pub fn lifecycle(from: &str, to: &str, cause: &str) -> Event {
    Event::gateway(
        Severity::Notice,
        Category::StateTransition,
        format!("lifecycle {from} -> {to}: {cause}"),
    )
    .with("lifecycle", to)
}

/// Something about the device's management changed without a lifecycle move (another group).
pub fn lifecycle_note(text: &str) -> Event {
    Event::gateway(Severity::Notice, Category::StateTransition, text.to_owned())
}

/// The device was added to the registry, or its entry changed, because of `cause`.
pub fn registry_change(added: bool, cause: &str) -> Event {
    let message = if added {
        format!("added to the gateway ({cause}); lifecycle Provisioned")
    } else {
        format!("its configuration entry changed ({cause})")
    };
    Event::gateway(Severity::Notice, Category::StateTransition, message)
}

/// The device could not be attached at start.
pub fn attach_failed(error: &str, hint: &str) -> Event {
    Event::gateway(
        Severity::Error,
        Category::Error,
        format!("the gateway cannot reach the device's adapter: {error}; {hint}; it stays managed and is retried at the next start"),
    )
    .with("operation", "attach")
}

/// Availability changed to `online` (or offline), after `was` of the other state.
pub fn availability(online: bool, previous: &str) -> Event {
    if online {
        Event::gateway(
            Severity::Notice,
            Category::StateTransition,
            format!("the device answers again (was {previous})"),
        )
        .with("availability", "Online")
    } else {
        Event::gateway(
            Severity::Warning,
            Category::StateTransition,
            format!("the device stopped answering (was {previous})"),
        )
        .with("availability", "Offline")
    }
}

/// A state-changing action a controller called on the device succeeded.
pub fn action_done(service: &str, action: &str, operator: Option<&str>) -> Event {
    let mut event = Event::gateway(
        Severity::Notice,
        Category::Operational,
        format!("{action} carried out"),
    )
    .with("service", service)
    .with("action", action);
    if let Some(operator) = operator {
        event = event.with("operator", operator);
    }
    event
}

/// An action on the device failed because of the device or the link to it (the caller's own
/// mistakes are answered to the caller, not logged as device errors).
pub fn action_failed(service: &str, action: &str, code: u16, description: &str) -> Event {
    Event::gateway(
        Severity::Error,
        Category::Error,
        format!("{action} failed: {description}"),
    )
    .with("service", service)
    .with("action", action)
    .with("code", code)
}

/// A caller was refused a state-changing action for want of credentials.
pub fn refused_caller(service: &str, action: &str) -> Event {
    Event::gateway(
        Severity::Warning,
        Category::Security,
        format!("{action} refused: the caller presented no operator certificate"),
    )
    .with("service", service)
    .with("action", action)
}

/// ClearDiagnosticsLog removed `removed` records up to `cursor` (this record itself is kept).
pub fn cleared(removed: usize, cursor: &str, operator: Option<&str>) -> Event {
    let mut event = Event::gateway(
        Severity::Notice,
        Category::Security,
        format!("diagnostics log cleared up to {cursor}: {removed} records removed"),
    )
    .with("cursor", cursor)
    .with("removed", removed);
    if let Some(operator) = operator {
        event = event.with("operator", operator);
    }
    event
}

/// A firmware update reached `job.phase`.
pub fn firmware_step(job: &Job) -> Event {
    let phase = job.phase;
    let severity = match phase {
        Phase::Failed | Phase::RolledBack => Severity::Error,
        Phase::Cancelled => Severity::Warning,
        Phase::Confirmed | Phase::Scheduled => Severity::Notice,
        _ => Severity::Informational,
    };
    let mut message = format!(
        "firmware update {} to {}: {}",
        job.update_id,
        job.image.version,
        phase.as_str()
    );
    if !job.detail.is_empty() {
        message.push_str(&format!(" ({})", job.detail));
    }
    Event::gateway(severity, Category::Firmware, message)
        .with("update", &job.update_id)
        .with("phase", phase.as_str())
        .with("version", &job.image.version)
        .with("result", job.result.code())
}

/// Records every firmware phase change (not the progress ticks in between) until the engine
/// goes away.
pub async fn follow_firmware(diagnostics: DiagnosticsEngine, firmware: Arc<FirmwareEngine>) {
    let mut notices = firmware.subscribe();
    let mut last: BTreeMap<String, (String, Phase)> = BTreeMap::new();
    loop {
        match notices.recv().await {
            Ok(Notice::Status { device, .. }) => {
                let Some(job) = firmware.job(&device) else {
                    continue;
                };
                let key = (job.update_id.clone(), job.phase);
                if last.get(&device) == Some(&key) {
                    continue;
                }
                diagnostics.record(&device, firmware_step(&job));
                last.insert(device, key);
            }
            Ok(_) => {}
            Err(RecvError::Lagged(missed)) => {
                tracing::warn!(
                    missed,
                    "firmware notices lagged; some firmware steps are missing from the diagnostics log"
                );
            }
            Err(RecvError::Closed) => return,
        }
    }
}

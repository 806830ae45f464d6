//! The IO around one device's update: carries out the machine's commands through the device's
//! FirmwareTarget, feeds their outcome back, sleeps until the machine's next timeout, and has
//! every change persisted and evented.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use iotmc_adapter::{
    ActivationMode, DeviceLink, FirmwareImage, FirmwareTarget, LinkError, StageProgress,
};
use tokio::sync::Notify;

use super::super::machine::{Command, ImageRef, Input, Machine, TransferFailure};
use super::health::{self, Probe};
use super::{DeviceEntry, Inner, now_ms, parse_sha256};
use crate::registry::from_unix_ms;

/// Longest a runner sleeps before looking at the wall clock again (it may have been set).
const MAX_SLEEP: Duration = Duration::from_secs(30);
/// How often transfer progress is taken into the machine (and persisted and evented).
const PROGRESS_EVERY: Duration = Duration::from_secs(1);
/// Longest an activation (restart included) may take before it counts as failed.
const ACTIVATE_LIMIT: Duration = Duration::from_secs(15 * 60);
/// Longest any other single command may take.
const COMMAND_LIMIT: Duration = Duration::from_secs(5 * 60);

/// One device's update as the engine holds it.
#[derive(Debug)]
pub(super) struct Slot {
    /// The state machine (never locked across an `.await`).
    pub(super) machine: RwLock<Machine>,
    /// Wakes the runner from its sleep (cancel, shutdown).
    pub(super) wake: Notify,
    /// Drops the command in flight (cancel).
    pub(super) cancel: Notify,
}

impl Slot {
    pub(super) fn new(machine: Machine) -> Self {
        Self {
            machine: RwLock::new(machine),
            wake: Notify::new(),
            cancel: Notify::new(),
        }
    }

    pub(super) fn with<T>(&self, f: impl FnOnce(&mut Machine) -> T) -> T {
        f(&mut self.machine.write().unwrap_or_else(PoisonError::into_inner))
    }
}

/// Runs the update in `slot` until it ends.
pub(super) async fn run(inner: Arc<Inner>, device: Arc<DeviceEntry>, slot: Arc<Slot>) {
    let mut loaded: Option<(String, Arc<[u8]>)> = None;
    let mut probe = Probe::default();
    loop {
        let command = slot.with(Machine::poll_command);
        inner.changed(&device, &slot);
        if let Some(command) = command {
            tracing::debug!(device = %device.id, ?command, "firmware command");
            let work = execute(&inner, &device, &slot, command, &mut loaded, &mut probe);
            let input = tokio::select! {
                input = work => input,
                () = slot.cancel.notified() => {
                    tracing::info!(device = %device.id, "firmware command dropped: the update was cancelled");
                    inner.offers.withdraw(&device.id);
                    continue;
                }
            };
            slot.with(|m| m.handle(input, now_ms()));
            inner.changed(&device, &slot);
            continue;
        }
        let (timeout, terminal) = slot.with(|m| (m.poll_timeout(), m.job().phase.is_terminal()));
        if terminal {
            break;
        }
        let nap = match timeout {
            Some(at) => Duration::from_millis(at.saturating_sub(now_ms())).min(MAX_SLEEP),
            None => MAX_SLEEP,
        };
        tokio::select! {
            () = tokio::time::sleep(nap) => {}
            () = slot.wake.notified() => {}
        }
        slot.with(|m| m.handle_timeout(now_ms()));
        inner.changed(&device, &slot);
    }
    inner.ended(&device, &slot);
}

async fn execute(
    inner: &Inner,
    device: &DeviceEntry,
    slot: &Slot,
    command: Command,
    loaded: &mut Option<(String, Arc<[u8]>)>,
    probe: &mut Probe,
) -> Input {
    let link = device.link.as_deref();
    let target = link.and_then(|l| l.firmware());
    match command {
        Command::LoadImage { image } => match load(inner, &image, loaded) {
            Ok(_) => Input::ImageLoaded,
            Err(e) => Input::ImageUnavailable(e),
        },
        Command::Transfer { image, from_offset } => {
            let Some(target) = target else {
                return Input::TransferFailed {
                    kind: TransferFailure::Transport,
                    detail: detached(device),
                };
            };
            let bytes = match load(inner, &image, loaded) {
                Ok(bytes) => bytes,
                Err(e) => {
                    return Input::TransferFailed {
                        kind: TransferFailure::Refused,
                        detail: e,
                    };
                }
            };
            transfer(inner, device, slot, target, &image, bytes, from_offset).await
        }
        Command::Activate(mode) => {
            let (Some(link), Some(target)) = (link, target) else {
                return Input::ActivateFailed {
                    boot_failed: false,
                    detail: detached(device),
                };
            };
            activate(link, target, mode).await
        }
        Command::CheckHealth => {
            let Some(link) = link else {
                return Input::Health(super::super::machine::HealthSample {
                    reachable: false,
                    running_version: None,
                    problems: vec![detached(device)],
                });
            };
            let since = slot.with(|m| {
                let job = m.job();
                job.probation_until
                    .map(|until| until.saturating_sub(job.probation_ms))
                    .unwrap_or(job.updated_at)
            });
            let sample = tokio::time::timeout(
                COMMAND_LIMIT,
                health::sample(link, &device.profile, probe, from_unix_ms(since)),
            )
            .await;
            Input::Health(sample.unwrap_or(super::super::machine::HealthSample {
                reachable: false,
                running_version: None,
                problems: vec!["the health check did not finish in time".into()],
            }))
        }
        Command::Confirm => match target {
            None => Input::ConfirmFailed(detached(device)),
            Some(target) => match limited(COMMAND_LIMIT, target.confirm()).await {
                Ok(()) => Input::Confirmed,
                Err(e) => Input::ConfirmFailed(e.to_string()),
            },
        },
        Command::Revert => {
            let (Some(link), Some(target)) = (link, target) else {
                return Input::RevertFailed(detached(device));
            };
            match limited(ACTIVATE_LIMIT, target.revert()).await {
                Ok(()) => Input::Reverted {
                    running_version: health::running_version(link).await.ok().flatten(),
                },
                Err(e) => Input::RevertFailed(e.to_string()),
            }
        }
        Command::ReadRunning => match link {
            None => Input::Running(None),
            Some(link) => Input::Running(
                limited(COMMAND_LIMIT, health::running_version(link))
                    .await
                    .ok()
                    .flatten(),
            ),
        },
    }
}

/// The image's bytes, from the store (read and SHA-256 checked once per runner).
fn load(
    inner: &Inner,
    image: &ImageRef,
    loaded: &mut Option<(String, Arc<[u8]>)>,
) -> Result<Arc<[u8]>, String> {
    if let Some((sha, bytes)) = loaded
        && *sha == image.sha256
    {
        return Ok(Arc::clone(bytes));
    }
    let Some(sha) = parse_sha256(&image.sha256) else {
        return Err(format!("`{}` is not a SHA-256", image.sha256));
    };
    let bytes = inner.store.read(&sha).map_err(|e| e.to_string())?;
    *loaded = Some((image.sha256.clone(), Arc::clone(&bytes)));
    Ok(bytes)
}

async fn transfer(
    inner: &Inner,
    device: &DeviceEntry,
    slot: &Slot,
    target: &dyn FirmwareTarget,
    image: &ImageRef,
    bytes: Arc<[u8]>,
    from_offset: u64,
) -> Input {
    let Some(sha256) = parse_sha256(&image.sha256) else {
        return Input::TransferFailed {
            kind: TransferFailure::Refused,
            detail: format!("`{}` is not a SHA-256", image.sha256),
        };
    };
    // Devices that pull their image (Tasmota) get a one-time URL; the others ignore it.
    let download_url = match inner.offers.offer(&device.id, Arc::clone(&bytes)) {
        Ok(url) => Some(url),
        Err(e) => {
            tracing::debug!(device = %device.id, error = %e, "no download URL for the image");
            None
        }
    };
    let firmware = FirmwareImage {
        bytes,
        sha256,
        version: image.version.clone(),
        download_url,
    };
    let acknowledged = Arc::new(AtomicU64::new(from_offset));
    let seen = Arc::clone(&acknowledged);
    let progress = move |p: StageProgress| seen.store(p.acknowledged, Ordering::Relaxed);
    let stage = target.stage(&firmware, from_offset, &progress);
    tokio::pin!(stage);
    let mut tick = tokio::time::interval(PROGRESS_EVERY);
    tick.tick().await;
    let mut last = from_offset;
    let result = loop {
        tokio::select! {
            result = &mut stage => break result,
            _ = tick.tick() => {
                let now = acknowledged.load(Ordering::Relaxed);
                if now != last {
                    last = now;
                    slot.with(|m| m.handle(Input::Progress { acknowledged: now }, now_ms()));
                    inner.changed(device, slot);
                }
            }
        }
    };
    inner.offers.withdraw(&device.id);
    let now = acknowledged.load(Ordering::Relaxed);
    if now != last {
        slot.with(|m| m.handle(Input::Progress { acknowledged: now }, now_ms()));
    }
    match result {
        Ok(outcome) => {
            slot.with(|m| {
                m.handle(
                    Input::Progress {
                        acknowledged: image.size,
                    },
                    now_ms(),
                )
            });
            Input::TransferDone {
                verified_on_device: outcome.verified_on_device,
            }
        }
        Err(e) => Input::TransferFailed {
            kind: classify(&e),
            detail: e.to_string(),
        },
    }
}

/// How a transfer error is handled: transport trouble is retried from the acknowledged offset;
/// the device's own integrity complaints (read-back or hash mismatch, reported as answers the
/// profile does not explain) and refusals end the update.
fn classify(e: &LinkError) -> TransferFailure {
    match e {
        LinkError::Timeout { .. } | LinkError::Transport(_) | LinkError::Busy(_) => {
            TransferFailure::Transport
        }
        LinkError::Closed => TransferFailure::Transport,
        LinkError::Malformed(_) => TransferFailure::Integrity,
        LinkError::OutOfRange { name, .. } if name == "firmware image" => TransferFailure::TooLarge,
        _ => TransferFailure::Refused,
    }
}

async fn activate(
    link: &dyn DeviceLink,
    target: &dyn FirmwareTarget,
    mode: ActivationMode,
) -> Input {
    match limited(ACTIVATE_LIMIT, target.activate(mode)).await {
        Ok(()) => Input::Activated {
            running_version: health::running_version(link).await.ok().flatten(),
        },
        Err(LinkError::DeviceRefused { code, detail }) if code == "boot failed" => {
            Input::ActivateFailed {
                boot_failed: true,
                detail: detail.unwrap_or(code),
            }
        }
        Err(e) => Input::ActivateFailed {
            boot_failed: false,
            detail: e.to_string(),
        },
    }
}

async fn limited<T>(
    limit: Duration,
    work: impl Future<Output = Result<T, LinkError>>,
) -> Result<T, LinkError> {
    tokio::time::timeout(limit, work)
        .await
        .unwrap_or(Err(LinkError::Timeout { after: limit }))
}

fn detached(device: &DeviceEntry) -> String {
    format!(
        "device {} has no working link (attaching failed or its adapter is not built in); see the gateway log",
        device.id
    )
}

/// For logs: a UTC time (never panics, whatever the time).
pub(super) fn utc(ms: u64) -> String {
    super::super::machine::utc(ms)
}

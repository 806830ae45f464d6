//! The firmware update of one device as a sans-IO state machine, modelled on LwM2M Object 5
//! and MCUboot (DESIGN.md §6):
//!
//! ```text
//! Scheduled → [WaitingForWindow] → Downloading → Verified → Transferring → Staged → Rebooting
//!   → Probation → Confirmed | RolledBack | Failed            (and Cancelled before Staged)
//! ```
//!
//! Quinn-style: the machine never reads a clock or touches IO. The runner passes `now` (UTC
//! milliseconds) into [`Machine::handle`] and [`Machine::handle_timeout`], carries out the
//! [`Command`]s from [`Machine::poll_command`] one at a time, feeds their outcome back as an
//! [`Input`], sleeps until [`Machine::poll_timeout`], and persists and events the [`Job`]
//! whenever [`Machine::take_change`] says it changed. Every field needed to go on after a
//! restart is in the `Job`, and [`Machine::restore`] picks up from it.
//!
//! Inputs that do not answer the command in flight (stale, duplicated, after a cancel) are
//! ignored, and nothing read from the device or the store makes it panic. The transitions live
//! in submodules: `transfer` from the start time to the staged image, `probation` from the
//! activation to the end, `restore` the pick-up after a restart, `state` what they share.

use serde::{Deserialize, Serialize};

use super::UnixMs;
use super::window::WindowSpec;
use iotmc_adapter::ActivationMode;

mod probation;
mod restore;
mod state;
mod transfer;

pub(crate) use state::utc;
use state::{ReadReason, Reading, Wake, span};

#[cfg(test)]
mod tests;

/// Where an update is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Phase {
    /// Waiting for its start time.
    Scheduled,
    /// The start time has passed; waiting for the group's maintenance window to open.
    WaitingForWindow,
    /// Reading the image from the store and checking its SHA-256.
    Downloading,
    /// The image is read and checked.
    Verified,
    /// Moving the image to the device (resumable from `Job::acknowledged`).
    Transferring,
    /// The device holds the whole image.
    Staged,
    /// The device was told to boot the new image; waiting for it to come back.
    Rebooting,
    /// The device runs the new image and is watched until `Job::probation_until`.
    Probation,
    /// Probation passed (and the image was confirmed on two-bank devices). Terminal.
    Confirmed,
    /// The device is back on its previous image. Terminal.
    RolledBack,
    /// The update failed; `Job::detail` says what the device runs. Terminal.
    Failed,
    /// Cancelled before the device was told to boot the image. Terminal.
    Cancelled,
}

impl Phase {
    /// The name used in UPnP values and the registry.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Scheduled => "Scheduled",
            Self::WaitingForWindow => "WaitingForWindow",
            Self::Downloading => "Downloading",
            Self::Verified => "Verified",
            Self::Transferring => "Transferring",
            Self::Staged => "Staged",
            Self::Rebooting => "Rebooting",
            Self::Probation => "Probation",
            Self::Confirmed => "Confirmed",
            Self::RolledBack => "RolledBack",
            Self::Failed => "Failed",
            Self::Cancelled => "Cancelled",
        }
    }

    /// Whether the update is over.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            Self::Confirmed | Self::RolledBack | Self::Failed | Self::Cancelled
        )
    }

    /// Whether it can still be cancelled (the device has not been told to boot the image).
    pub fn is_cancellable(self) -> bool {
        matches!(
            self,
            Self::Scheduled
                | Self::WaitingForWindow
                | Self::Downloading
                | Self::Verified
                | Self::Transferring
        )
    }
}

/// Result codes, after LwM2M Object 5 resource 5 "Update Result" (0–9), with ours above 9.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ResultCode {
    /// 0: no result yet.
    Initial,
    /// 1: updated and confirmed.
    Success,
    /// 2: the image does not fit the device.
    NotEnoughFlash,
    /// 4: the link to the device was lost during the transfer, and retries ran out.
    ConnectionLost,
    /// 5: integrity check failed (SHA-256 in the gateway, or the device's own check).
    IntegrityFailure,
    /// 6: the image is not for this device (target, hardware, bootloader).
    UnsupportedPackage,
    /// 8: the device refused or failed the update.
    UpdateFailed,
    /// 10: cancelled by an operator.
    Cancelled,
    /// 11: the new image did not boot; the device is back on the previous one.
    BootFailed,
    /// 12: the new image failed probation; the device was returned to the previous one.
    ProbationFailed,
    /// 13: returning to the previous image failed; the device needs attention.
    RevertFailed,
    /// 14: the image is no longer in the store, or its stored bytes are corrupted.
    ImageUnavailable,
}

impl ResultCode {
    /// The number GetFirmwareUpdateStatus reports.
    pub fn code(self) -> i32 {
        match self {
            Self::Initial => 0,
            Self::Success => 1,
            Self::NotEnoughFlash => 2,
            Self::ConnectionLost => 4,
            Self::IntegrityFailure => 5,
            Self::UnsupportedPackage => 6,
            Self::UpdateFailed => 8,
            Self::Cancelled => 10,
            Self::BootFailed => 11,
            Self::ProbationFailed => 12,
            Self::RevertFailed => 13,
            Self::ImageUnavailable => 14,
        }
    }
}

/// How the device is returned to its previous image if the new one fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Strategy {
    /// Native two banks: activate on test, confirm after probation, revert on failure (or
    /// verify the device's own automatic revert).
    NativeTest,
    /// One bank: activate for good; on failure the gateway re-installs the previous image,
    /// which must be in the store (`Job::previous`).
    Emulated,
}

/// An image as the machine refers to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageRef {
    /// SHA-256, 64 lowercase hex digits (the store's name for it).
    pub sha256: String,
    /// The version it installs.
    pub version: String,
    /// Its size in bytes.
    pub size: u64,
}

/// Everything about one update, persisted after every change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Job {
    /// Unique id (`ScheduleFirmwareUpdate`'s UpdateId).
    pub update_id: String,
    /// Device id.
    pub device: String,
    /// The image being installed.
    pub image: ImageRef,
    /// The version the device ran when the update was scheduled, if known.
    pub previous_version: Option<String>,
    /// The image of the previous version, for [`Strategy::Emulated`] (required there).
    pub previous: Option<ImageRef>,
    /// How a failure is undone.
    pub strategy: Strategy,
    /// When to start (UTC ms). A time in the past starts at once.
    pub start_at: UnixMs,
    /// The group's maintenance window, when policy makes updates wait for it.
    pub window: Option<WindowSpec>,
    /// Probation length, ms (policy has applied the bounds).
    pub probation_ms: u64,
    /// How long the device may be unreachable during probation before probation fails, ms.
    pub offline_grace_ms: u64,
    /// Time between health checks during probation, ms.
    pub check_every_ms: u64,
    /// Where the update is.
    pub phase: Phase,
    /// Result so far.
    pub result: ResultCode,
    /// What happened last, in words (the last error, or what the device runs after a failure).
    pub detail: String,
    /// Bytes of the image being transferred that the device acknowledged.
    pub acknowledged: u64,
    /// Transfer attempts that failed on a transport error (reset when progress is made).
    pub transfer_failures: u32,
    /// When the next transfer attempt starts, after a transport failure.
    pub retry_at: Option<UnixMs>,
    /// When probation ends (absolute, so it survives restarts).
    pub probation_until: Option<UnixMs>,
    /// The last health check during probation that found the device reachable.
    pub last_reachable: Option<UnixMs>,
    /// Re-installing the previous image after a failure ([`Strategy::Emulated`]); the transfer
    /// phases then move `previous`, and the update ends RolledBack (or Failed with
    /// RevertFailed).
    pub reinstalling: bool,
    /// The result the update will end with once the rollback is done.
    pub rollback_reason: Option<ResultCode>,
    /// The campaign this update belongs to, if any.
    pub campaign: Option<String>,
    /// When it was scheduled.
    pub created_at: UnixMs,
    /// When it last changed.
    pub updated_at: UnixMs,
}

/// What the runner is to carry out. One at a time: the next is polled after the outcome of
/// the last was handled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Read `image` from the store and check its SHA-256 → [`Input::ImageLoaded`] or
    /// [`Input::ImageUnavailable`].
    LoadImage {
        /// The image.
        image: ImageRef,
    },
    /// Transfer `image` from `from_offset` through the device's FirmwareTarget →
    /// [`Input::Progress`]…, then [`Input::TransferDone`] or [`Input::TransferFailed`].
    Transfer {
        /// The image.
        image: ImageRef,
        /// Resume offset.
        from_offset: u64,
    },
    /// Activate the staged image (the device restarts; the call returns when it is back) →
    /// [`Input::Activated`] or [`Input::ActivateFailed`].
    Activate(ActivationMode),
    /// Sample the device's health → [`Input::Health`].
    CheckHealth,
    /// Confirm the running test image → [`Input::Confirmed`] or [`Input::ConfirmFailed`].
    Confirm,
    /// Return a two-bank device to its previous image → [`Input::Reverted`] or
    /// [`Input::RevertFailed`].
    Revert,
    /// Read what the device runs now → [`Input::Running`].
    ReadRunning,
}

/// Transfer failure kinds, as the runner classifies the adapter's error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransferFailure {
    /// Timeout, disconnect, busy: worth retrying from the acknowledged offset.
    Transport,
    /// The device's own integrity check (or the read-back hash) disagreed.
    Integrity,
    /// The image is too large for the device.
    TooLarge,
    /// The device refused for another reason.
    Refused,
}

/// The outcome of a [`Command`], or an operator's request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// The image was read and its SHA-256 matches.
    ImageLoaded,
    /// The image is missing from the store or its bytes are corrupted.
    ImageUnavailable(String),
    /// The device acknowledged bytes up to this offset.
    Progress {
        /// Acknowledged offset.
        acknowledged: u64,
    },
    /// The whole image is on the device.
    TransferDone {
        /// The device checked it itself (hash or CRC read-back).
        verified_on_device: bool,
    },
    /// The transfer failed.
    TransferFailed {
        /// Kind.
        kind: TransferFailure,
        /// The adapter's error in words.
        detail: String,
    },
    /// The device restarted and is back.
    Activated {
        /// The version it reports running, if it tells.
        running_version: Option<String>,
    },
    /// Activation failed.
    ActivateFailed {
        /// The device came back on its previous image (the new one did not boot).
        boot_failed: bool,
        /// The adapter's error in words.
        detail: String,
    },
    /// One health sample.
    Health(HealthSample),
    /// The device confirmed the test image.
    Confirmed,
    /// Confirming failed.
    ConfirmFailed(String),
    /// The device is back on its previous image.
    Reverted {
        /// The version it reports running.
        running_version: Option<String>,
    },
    /// Reverting failed.
    RevertFailed(String),
    /// What the device runs ([`Command::ReadRunning`]); `None` when it could not be read.
    Running(Option<String>),
}

/// One health check during probation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthSample {
    /// The device answered.
    pub reachable: bool,
    /// The version it reports running, if it tells.
    pub running_version: Option<String>,
    /// What is wrong, in words: health parameters out of range, error-severity events.
    pub problems: Vec<String>,
}

/// What changed in the job since the last [`Machine::take_change`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Change {
    /// Nothing.
    None,
    /// Only the acknowledged offset moved (the runner may batch these).
    Progress,
    /// Anything else: persist and event at once.
    State,
}

/// Why a cancel was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CancelError {
    /// The device has already been told to boot the image.
    #[error("update {update_id} is {}: the device was already told to boot the new image, so it can no longer be cancelled; it ends in Confirmed or RolledBack after probation", phase.as_str())]
    TooLate {
        /// The update.
        update_id: String,
        /// Its phase.
        phase: Phase,
    },
    /// It is over.
    #[error("update {update_id} is already over ({})", phase.as_str())]
    Finished {
        /// The update.
        update_id: String,
        /// Its phase.
        phase: Phase,
    },
}

/// What [`Machine::schedule`] needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewUpdate {
    /// Unique id.
    pub update_id: String,
    /// Device id.
    pub device: String,
    /// The image.
    pub image: ImageRef,
    /// What the device runs now, if known.
    pub previous_version: Option<String>,
    /// The previous version's image, if in the store.
    pub previous: Option<ImageRef>,
    /// How a failure is undone.
    pub strategy: Strategy,
    /// When to start.
    pub start_at: UnixMs,
    /// Wait for this window.
    pub window: Option<WindowSpec>,
    /// Probation, ms.
    pub probation_ms: u64,
    /// Unreachable grace during probation, ms.
    pub offline_grace_ms: u64,
    /// Health check interval, ms.
    pub check_every_ms: u64,
    /// Campaign, if any.
    pub campaign: Option<String>,
}

/// Transfer attempts in a row that may fail on a transport error (timeout, disconnect, busy)
/// before the update ends Failed with [`ResultCode::ConnectionLost`]. A failure after progress
/// counts as the first again.
pub const MAX_TRANSFER_FAILURES: u32 = 10;

/// Wait before the first transfer retry, ms; it doubles with each failure in a row.
pub const FIRST_RETRY_MS: u64 = 5_000;

/// Longest wait between transfer retries, ms.
pub const MAX_RETRY_MS: u64 = 5 * 60_000;

/// Attempts to confirm a test image after probation passed, before the update ends Failed
/// with [`ResultCode::UpdateFailed`].
pub const MAX_CONFIRM_ATTEMPTS: u32 = 3;

/// Shortest wait between health checks and between retries of reading the running version,
/// ms, whatever `Job::check_every_ms` says: a zero interval would hammer the device.
pub const MIN_CHECK_EVERY_MS: u64 = 1_000;

/// The wait before transfer retry `failures` (1 for the first failure in a row).
pub fn transfer_retry_delay(failures: u32) -> u64 {
    let doublings = failures.saturating_sub(1).min(16);
    FIRST_RETRY_MS
        .saturating_mul(1 << doublings)
        .min(MAX_RETRY_MS)
}

/// The state machine of one update.
#[derive(Debug, Clone)]
pub struct Machine {
    job: Job,
    /// The command [`Machine::poll_command`] hands out next.
    next: Option<Command>,
    /// The command handed out whose outcome is awaited.
    in_flight: Option<Command>,
    /// What [`Machine::handle_timeout`] does, and from when.
    wake: Option<(UnixMs, Wake)>,
    /// Why [`Command::ReadRunning`] was issued.
    reading: Option<Reading>,
    /// Confirm attempts that failed (not persisted: after a restart probation is checked
    /// again and confirming starts over).
    confirm_failures: u32,
    /// Why probation failed, in words, for the final detail (not persisted: after a restart
    /// the detail says only that probation failed).
    failure: Option<String>,
    /// Unreachability during probation counts from here at the earliest: after a restart the
    /// gateway did not look while it was down, so that time is not held against the device.
    watching_since: UnixMs,
    /// `now` of the last call, for the changes [`Machine::poll_command`] makes.
    last_now: UnixMs,
    change: Change,
}

impl Machine {
    /// A new update in [`Phase::Scheduled`].
    pub fn schedule(update: NewUpdate, now: UnixMs) -> Self {
        let job = Job {
            update_id: update.update_id,
            device: update.device,
            image: update.image,
            previous_version: update.previous_version,
            previous: update.previous,
            strategy: update.strategy,
            start_at: update.start_at,
            window: update.window,
            probation_ms: update.probation_ms,
            offline_grace_ms: update.offline_grace_ms,
            check_every_ms: update.check_every_ms,
            phase: Phase::Scheduled,
            result: ResultCode::Initial,
            detail: format!("scheduled for {}", utc(update.start_at)),
            acknowledged: 0,
            transfer_failures: 0,
            retry_at: None,
            probation_until: None,
            last_reachable: None,
            reinstalling: false,
            rollback_reason: None,
            campaign: update.campaign,
            created_at: now,
            updated_at: now,
        };
        let mut machine = Self::from_job(job, now);
        machine.wake = Some((machine.job.start_at, Wake::Start));
        machine.change = Change::State;
        machine
    }

    /// Picks up a persisted job after a restart: the command in flight when the gateway stopped
    /// is issued again (a transfer from `acknowledged`, a wait for the device after a reboot,
    /// the next health check with the persisted probation deadline).
    ///
    /// Scheduled and WaitingForWindow wait for their time again; Downloading and Verified read
    /// the image again; Transferring resumes from `acknowledged` (after `retry_at`, if that is
    /// still ahead); Staged activates; Rebooting reads which image the device runs; Probation
    /// checks health at once and keeps its absolute deadline, and a two-bank device whose
    /// revert was under way has its running version read first. Terminal jobs stay as they are.
    pub fn restore(job: Job, now: UnixMs) -> Self {
        let mut machine = Self::from_job(job, now);
        machine.resume(now);
        machine
    }

    /// The job.
    pub fn job(&self) -> &Job {
        &self.job
    }

    /// Feeds the outcome of the last command. An input that does not answer the command in
    /// flight (stale, duplicated, or after a cancel) is ignored.
    pub fn handle(&mut self, input: Input, now: UnixMs) {
        if self.job.phase.is_terminal() || !self.answers_in_flight(&input) {
            return;
        }
        self.last_now = now;
        if !matches!(input, Input::Progress { .. }) {
            self.in_flight = None;
        }
        match input {
            Input::ImageLoaded => self.on_image_loaded(now),
            Input::ImageUnavailable(detail) => self.on_image_unavailable(&detail, now),
            Input::Progress { acknowledged } => self.on_progress(acknowledged, now),
            Input::TransferDone { verified_on_device } => {
                self.on_transfer_done(verified_on_device, now);
            }
            Input::TransferFailed { kind, detail } => self.on_transfer_failed(kind, &detail, now),
            Input::Activated { running_version } => self.on_activated(running_version, now),
            Input::ActivateFailed {
                boot_failed,
                detail,
            } => self.on_activate_failed(boot_failed, detail, now),
            Input::Health(sample) => self.on_health(sample, now),
            Input::Confirmed => self.on_confirmed(now),
            Input::ConfirmFailed(detail) => self.on_confirm_failed(&detail, now),
            Input::Reverted { running_version } => self.on_reverted(running_version, now),
            Input::RevertFailed(detail) => self.on_revert_failed(&detail, now),
            Input::Running(version) => self.on_running(version, now),
        }
    }

    /// Cancels the update if it is still cancellable: before the device was told to boot the
    /// image, and not while the previous image is being re-installed after a failed probation
    /// (that would leave the device on the image that failed). The command in flight is
    /// forgotten; its outcome, if the runner still feeds it, is ignored.
    pub fn cancel(&mut self, now: UnixMs) -> Result<(), CancelError> {
        let phase = self.job.phase;
        if phase.is_terminal() {
            return Err(CancelError::Finished {
                update_id: self.job.update_id.clone(),
                phase,
            });
        }
        if !phase.is_cancellable() || self.job.reinstalling {
            return Err(CancelError::TooLate {
                update_id: self.job.update_id.clone(),
                phase,
            });
        }
        let partial = if self.job.acknowledged > 0 {
            format!(
                " (its staging area may hold the first {} bytes of the image, which it does not boot)",
                self.job.acknowledged
            )
        } else {
            String::new()
        };
        let detail = format!(
            "cancelled at {} while {}; the device was not told to boot {} and still runs {}{partial}",
            utc(now),
            phase.as_str(),
            self.job.image.version,
            self.previous_words(),
        );
        self.finish(Phase::Cancelled, ResultCode::Cancelled, detail, now);
        Ok(())
    }

    /// When [`Machine::handle_timeout`] is due next, if anything waits for time.
    pub fn poll_timeout(&self) -> Option<UnixMs> {
        self.wake.map(|(at, _)| at)
    }

    /// Acts on time passing (start time, window opening, retry, health check, probation end).
    /// Early calls do nothing.
    pub fn handle_timeout(&mut self, now: UnixMs) {
        let Some((at, wake)) = self.wake else {
            return;
        };
        if now < at || self.job.phase.is_terminal() {
            return;
        }
        self.wake = None;
        self.last_now = now;
        match wake {
            Wake::Start => self.start(now),
            Wake::RetryTransfer => self.retry_transfer(now),
            Wake::CheckHealth => self.next = Some(Command::CheckHealth),
            Wake::RetryConfirm => self.next = Some(Command::Confirm),
            Wake::RetryRead => self.next = Some(Command::ReadRunning),
        }
    }

    /// The next command to carry out, if any. None while a command is in flight.
    ///
    /// Handing out a command may move the phase on, so call [`Machine::take_change`] after it
    /// too: the transfer moves Verified to Transferring, and the activation moves Staged to
    /// Rebooting (so Verified and Staged are each seen once, after the input that led there).
    pub fn poll_command(&mut self) -> Option<Command> {
        if self.in_flight.is_some() || self.job.phase.is_terminal() {
            return None;
        }
        let command = self.next.take()?;
        let now = self.last_now;
        match (&command, self.job.phase) {
            (Command::Transfer { from_offset, .. }, Phase::Verified) => {
                self.job.phase = Phase::Transferring;
                self.job.detail = format!(
                    "transferring {} to the device from byte {from_offset} of {}",
                    self.target_words(),
                    self.installing_size()
                );
                self.touch(now);
            }
            (Command::Activate(mode), Phase::Staged) => {
                self.job.phase = Phase::Rebooting;
                self.job.detail = format!(
                    "told the device to boot {} {}; waiting for it to come back",
                    self.target_words(),
                    match mode {
                        ActivationMode::Test => "on test",
                        ActivationMode::Permanent => "for good",
                    }
                );
                self.touch(now);
            }
            _ => {}
        }
        self.in_flight = Some(command.clone());
        Some(command)
    }

    /// What changed since the last call.
    pub fn take_change(&mut self) -> Change {
        std::mem::replace(&mut self.change, Change::None)
    }
}

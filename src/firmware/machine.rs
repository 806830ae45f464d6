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
//! SKELETON (issue 6): types are the contract; the state-machine work fills in the bodies.

use serde::{Deserialize, Serialize};

use super::UnixMs;
use super::window::WindowSpec;
use iotmc_adapter::ActivationMode;

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

/// The state machine of one update.
#[derive(Debug, Clone)]
pub struct Machine {
    job: Job,
}

impl Machine {
    /// A new update in [`Phase::Scheduled`].
    pub fn schedule(update: NewUpdate, now: UnixMs) -> Self {
        let _ = (update, now);
        todo!("machine")
    }

    /// Picks up a persisted job after a restart: the command in flight when the gateway stopped
    /// is issued again (a transfer from `acknowledged`, a wait for the device after a reboot,
    /// the next health check with the persisted probation deadline).
    pub fn restore(job: Job, now: UnixMs) -> Self {
        let _ = (job, now);
        todo!("machine")
    }

    /// The job.
    pub fn job(&self) -> &Job {
        &self.job
    }

    /// Feeds the outcome of the last command.
    pub fn handle(&mut self, input: Input, now: UnixMs) {
        let _ = (input, now);
        todo!("machine")
    }

    /// Cancels the update if it is still cancellable.
    pub fn cancel(&mut self, now: UnixMs) -> Result<(), CancelError> {
        let _ = now;
        todo!("machine")
    }

    /// When [`Machine::handle_timeout`] is due next, if anything waits for time.
    pub fn poll_timeout(&self) -> Option<UnixMs> {
        todo!("machine")
    }

    /// Acts on time passing (start time, window opening, retry, health check, probation end).
    pub fn handle_timeout(&mut self, now: UnixMs) {
        let _ = now;
        todo!("machine")
    }

    /// The next command to carry out, if any. None while a command is in flight.
    pub fn poll_command(&mut self) -> Option<Command> {
        todo!("machine")
    }

    /// What changed since the last call.
    pub fn take_change(&mut self) -> Change {
        todo!("machine")
    }
}

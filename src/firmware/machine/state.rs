//! The machine's own state beside the job (timeouts, reads of the running version), the
//! mechanics every transition shares, and what the job says in the words details use.

use std::time::Duration;

use super::{
    Change, Command, ImageRef, Input, Job, MIN_CHECK_EVERY_MS, Machine, Phase, ResultCode, UnixMs,
};

/// What a timeout is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Wake {
    /// The start time, or the opening of the maintenance window.
    Start,
    /// The next transfer attempt after a transport failure.
    RetryTransfer,
    /// The next health check during probation.
    CheckHealth,
    /// The next attempt to confirm the test image.
    RetryConfirm,
    /// The next attempt to read the running version.
    RetryRead,
}

/// Why the running version is read, which decides what the answer means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Reading {
    pub(super) reason: ReadReason,
    /// When the first read was issued; unanswered reads are retried until the offline grace
    /// has passed since then.
    pub(super) since: UnixMs,
    /// The error that led here, in words.
    pub(super) cause: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ReadReason {
    /// The adapter says the new image did not boot: is the device back on the previous one?
    BootFailed,
    /// Activating failed otherwise: which image runs?
    ActivateError,
    /// The gateway restarted while the device rebooted.
    Restarted,
    /// The gateway restarted while a two-bank device was being reverted.
    Reverting,
}

impl Machine {
    pub(super) fn from_job(job: Job, now: UnixMs) -> Self {
        Self {
            job,
            next: None,
            in_flight: None,
            wake: None,
            reading: None,
            confirm_failures: 0,
            failure: None,
            watching_since: now,
            last_now: now,
            change: Change::None,
        }
    }

    /// Whether `input` is an outcome of the command in flight.
    pub(super) fn answers_in_flight(&self, input: &Input) -> bool {
        let Some(command) = &self.in_flight else {
            return false;
        };
        match command {
            Command::LoadImage { .. } => {
                matches!(input, Input::ImageLoaded | Input::ImageUnavailable(_))
            }
            Command::Transfer { .. } => matches!(
                input,
                Input::Progress { .. } | Input::TransferDone { .. } | Input::TransferFailed { .. }
            ),
            Command::Activate(_) => {
                matches!(
                    input,
                    Input::Activated { .. } | Input::ActivateFailed { .. }
                )
            }
            Command::CheckHealth => matches!(input, Input::Health(_)),
            Command::Confirm => matches!(input, Input::Confirmed | Input::ConfirmFailed(_)),
            Command::Revert => matches!(input, Input::Reverted { .. } | Input::RevertFailed(_)),
            Command::ReadRunning => matches!(input, Input::Running(_)),
        }
    }

    /// Records a change of the job at `now`.
    pub(super) fn touch(&mut self, now: UnixMs) {
        self.job.updated_at = now;
        self.change = Change::State;
    }

    /// Ends the update: no further commands or timeouts.
    pub(super) fn finish(&mut self, phase: Phase, result: ResultCode, detail: String, now: UnixMs) {
        self.job.phase = phase;
        self.job.result = result;
        self.job.detail = detail;
        self.job.retry_at = None;
        self.next = None;
        self.in_flight = None;
        self.wake = None;
        self.reading = None;
        self.touch(now);
    }

    /// The image the transfer phases move: the new one, or the previous one while
    /// re-installing it.
    pub(super) fn installing(&self) -> Option<&ImageRef> {
        if self.job.reinstalling {
            self.job.previous.as_ref()
        } else {
            Some(&self.job.image)
        }
    }

    pub(super) fn installing_size(&self) -> u64 {
        self.installing().map_or(0, |image| image.size)
    }

    /// The version the device ran before the update, if known.
    pub(super) fn previous_version(&self) -> Option<&str> {
        self.job
            .previous_version
            .as_deref()
            .or_else(|| self.job.previous.as_ref().map(|p| p.version.as_str()))
    }

    /// Whether `version` is the one the device ran before (when that is not known: whether it
    /// is anything but the new one).
    pub(super) fn is_previous(&self, version: &str) -> bool {
        match self.previous_version() {
            Some(previous) => previous == version,
            None => version != self.job.image.version,
        }
    }

    /// "its previous firmware 1.2.0", for details.
    pub(super) fn previous_words(&self) -> String {
        match self.previous_version() {
            Some(version) => format!("its previous firmware {version}"),
            None => "its previous firmware (version not known)".into(),
        }
    }

    /// "1.3.0", or "the previous image 1.2.0" while re-installing it.
    pub(super) fn target_words(&self) -> String {
        match (self.job.reinstalling, self.installing()) {
            (true, Some(previous)) => format!("the previous image {}", previous.version),
            _ => self.job.image.version.clone(),
        }
    }

    /// The check interval, at least [`MIN_CHECK_EVERY_MS`].
    pub(super) fn check_every(&self) -> u64 {
        self.job.check_every_ms.max(MIN_CHECK_EVERY_MS)
    }
}

/// A UTC time for details, `2024-01-01T02:30:00Z`; times past the year 9999 (which RFC 3339
/// cannot write) as milliseconds.
pub(crate) fn utc(ms: UnixMs) -> String {
    crate::utc::format_seconds(ms)
}

/// A length of time for details, `1day 30m`.
pub(super) fn span(ms: u64) -> String {
    humantime::format_duration(Duration::from_secs(ms / 1000)).to_string()
}

//! From the start time to the staged image: the maintenance window, reading the image from the
//! store, the transfer with its retries, and the failures that leave the device on its old
//! firmware.

use super::{
    Change, Command, MAX_TRANSFER_FAILURES, Machine, Phase, ResultCode, Strategy, TransferFailure,
    UnixMs, Wake, transfer_retry_delay, utc,
};
use iotmc_adapter::ActivationMode;

impl Machine {
    /// The start time (or the window's opening) has come: wait for the window, or start.
    pub(super) fn start(&mut self, now: UnixMs) {
        if let Some(window) = &self.job.window {
            let opens = window.open_at_or_after(now);
            if opens == UnixMs::MAX {
                let detail = format!(
                    "the maintenance window (days {:?}, opening at minute {} UTC, {} s long) never opens, so the update cannot start; the device was not touched and still runs {}; fix the group's maintenance_window and schedule the update again",
                    window.days,
                    window.start_minute,
                    window.duration_s,
                    self.previous_words()
                );
                self.finish(Phase::Failed, ResultCode::UpdateFailed, detail, now);
                return;
            }
            if opens > now {
                let detail = format!(
                    "start time passed; waiting for the maintenance window opening at {}",
                    utc(opens)
                );
                if self.job.phase != Phase::WaitingForWindow || self.job.detail != detail {
                    self.job.phase = Phase::WaitingForWindow;
                    self.job.detail = detail;
                    self.touch(now);
                }
                self.wake = Some((opens, Wake::Start));
                return;
            }
        }
        self.begin_download(now);
    }

    /// Reads the image to install (the new one, or the previous one when re-installing it).
    pub(super) fn begin_download(&mut self, now: UnixMs) {
        let Some(image) = self.installing().cloned() else {
            self.previous_image_missing(now);
            return;
        };
        self.job.phase = Phase::Downloading;
        self.job.detail = format!(
            "reading {} ({} bytes, SHA-256 {}) from the image store",
            self.target_words(),
            image.size,
            image.sha256
        );
        self.touch(now);
        self.next = Some(Command::LoadImage { image });
    }

    /// Re-installing was asked for, but the job has no previous image (an edited or damaged
    /// database; probation failure checks for it before re-installing).
    pub(super) fn previous_image_missing(&mut self, now: UnixMs) {
        let detail = format!(
            "{}; the previous image is not known to the gateway, so it cannot be re-installed: the device still runs the new image {} and needs attention (install a working image by hand or schedule an update to one)",
            self.failure_words(),
            self.job.image.version
        );
        self.finish(Phase::Failed, ResultCode::RevertFailed, detail, now);
    }

    pub(super) fn on_image_loaded(&mut self, now: UnixMs) {
        let Some(image) = self.installing().cloned() else {
            self.previous_image_missing(now);
            return;
        };
        self.job.phase = Phase::Verified;
        self.job.detail = format!(
            "read {} from the image store and checked its SHA-256",
            self.target_words()
        );
        self.touch(now);
        let from_offset = self.job.acknowledged.min(image.size);
        self.next = Some(Command::Transfer { image, from_offset });
    }

    pub(super) fn on_image_unavailable(&mut self, why: &str, now: UnixMs) {
        if self.job.reinstalling {
            let previous = self
                .installing()
                .map_or("(version not known)", |p| p.version.as_str());
            let detail = format!(
                "{}; the previous image {previous} could not be read from the image store: {why}; the device runs the NEW image {} and the previous one is gone from the store: import {previous} again and update the device to it",
                self.failure_words(),
                self.job.image.version,
            );
            self.finish(Phase::Failed, ResultCode::RevertFailed, detail, now);
        } else {
            let detail = format!(
                "image {} (SHA-256 {}) could not be read from the image store: {why}; the device was not touched and still runs {}; import the image again and schedule a new update",
                self.job.image.version,
                self.job.image.sha256,
                self.previous_words()
            );
            self.finish(Phase::Failed, ResultCode::ImageUnavailable, detail, now);
        }
    }

    /// The device is the authority on what it holds: the offset may go down (it restarted its
    /// staging); it is only capped at the image size.
    pub(super) fn on_progress(&mut self, acknowledged: u64, now: UnixMs) {
        let size = self.installing_size();
        let acknowledged = acknowledged.min(size);
        if acknowledged == self.job.acknowledged {
            return;
        }
        if acknowledged > self.job.acknowledged {
            self.job.transfer_failures = 0;
        }
        self.job.acknowledged = acknowledged;
        self.job.detail = format!(
            "transferring {}: {acknowledged} of {size} bytes acknowledged by the device",
            self.target_words()
        );
        self.job.updated_at = now;
        self.change = self.change.max(Change::Progress);
    }

    pub(super) fn on_transfer_done(&mut self, verified_on_device: bool, now: UnixMs) {
        let size = self.installing_size();
        self.job.acknowledged = size;
        self.job.transfer_failures = 0;
        self.job.phase = Phase::Staged;
        self.job.detail = format!(
            "{} is staged on the device ({size} bytes; {})",
            self.target_words(),
            if verified_on_device {
                "the device checked it too"
            } else {
                "checked by SHA-256 in the gateway only"
            }
        );
        self.touch(now);
        self.next = Some(Command::Activate(self.activation_mode()));
    }

    /// Two-bank devices boot the new image on test; devices without banks (and the
    /// re-installed previous image) for good.
    pub(super) fn activation_mode(&self) -> ActivationMode {
        match self.job.strategy {
            Strategy::NativeTest if !self.job.reinstalling => ActivationMode::Test,
            _ => ActivationMode::Permanent,
        }
    }

    pub(super) fn on_transfer_failed(&mut self, kind: TransferFailure, why: &str, now: UnixMs) {
        let target = self.target_words();
        let size = self.installing_size();
        let (result, what, advice) = match kind {
            TransferFailure::Transport => {
                self.job.transfer_failures = self.job.transfer_failures.saturating_add(1);
                let failures = self.job.transfer_failures;
                if failures < MAX_TRANSFER_FAILURES {
                    let at = now.saturating_add(transfer_retry_delay(failures));
                    self.job.retry_at = Some(at);
                    self.job.detail = format!(
                        "transferring {target} failed: {why}; retrying from byte {} at {} (failure {failures} of {MAX_TRANSFER_FAILURES} in a row)",
                        self.job.acknowledged,
                        utc(at)
                    );
                    self.touch(now);
                    self.wake = Some((at, Wake::RetryTransfer));
                    return;
                }
                (
                    ResultCode::ConnectionLost,
                    format!(
                        "transferring {target} failed {failures} times in a row without progress, last at byte {}: {why}",
                        self.job.acknowledged
                    ),
                    "check the link to the device and schedule the update again",
                )
            }
            TransferFailure::Integrity => (
                ResultCode::IntegrityFailure,
                format!("the device's integrity check of {target} failed: {why}"),
                "check the link and the image, then schedule the update again",
            ),
            TransferFailure::TooLarge => (
                ResultCode::NotEnoughFlash,
                format!("{target} ({size} bytes) does not fit the device: {why}"),
                "this image cannot be installed on this device",
            ),
            TransferFailure::Refused => (
                ResultCode::UpdateFailed,
                format!("the device refused {target}: {why}"),
                "see the device's and the gateway's logs",
            ),
        };
        if self.job.reinstalling {
            let detail = format!(
                "{}; re-installing failed: {what}; the device still runs the new image {}, which failed probation, and needs attention",
                self.failure_words(),
                self.job.image.version
            );
            self.finish(Phase::Failed, ResultCode::RevertFailed, detail, now);
        } else {
            let detail = format!(
                "{what}; the device did not boot the new image and still runs {}; {advice}",
                self.previous_words()
            );
            self.finish(Phase::Failed, result, detail, now);
        }
    }

    /// The wait after a transport failure is over: transfer again from the acknowledged offset.
    pub(super) fn retry_transfer(&mut self, now: UnixMs) {
        let Some(image) = self.installing().cloned() else {
            self.previous_image_missing(now);
            return;
        };
        let from_offset = self.job.acknowledged.min(image.size);
        self.job.retry_at = None;
        self.job.detail = format!(
            "retrying the transfer of {} from byte {from_offset} of {}",
            self.target_words(),
            image.size
        );
        self.touch(now);
        self.next = Some(Command::Transfer { image, from_offset });
    }
}

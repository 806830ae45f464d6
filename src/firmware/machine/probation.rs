//! From the activation to the end: which image came up, probation with its health checks,
//! confirming, reverting a two-bank device, and re-installing the previous image on a device
//! without banks.

use super::{
    Command, HealthSample, MAX_CONFIRM_ATTEMPTS, Machine, Phase, ReadReason, Reading, ResultCode,
    Strategy, UnixMs, Wake, span, utc,
};

impl Machine {
    pub(super) fn on_activated(&mut self, running: Option<String>, now: UnixMs) {
        if self.job.reinstalling {
            match running {
                Some(version) if !self.is_previous(&version) => {
                    let detail = format!(
                        "{}; the previous image {} was re-installed, but the device reports running {version}; check it",
                        self.failure_words(),
                        self.previous_version().unwrap_or("(version not known)")
                    );
                    self.finish(Phase::Failed, ResultCode::RevertFailed, detail, now);
                }
                _ => self.rolled_back(now),
            }
            return;
        }
        match running {
            Some(version) if version != self.job.image.version => {
                self.came_up_otherwise(&version, "the device came back on another image", now);
            }
            _ => self.enter_probation(now),
        }
    }

    /// The device came up on `version`, not the new image: the new image did not boot.
    fn came_up_otherwise(&mut self, version: &str, cause: &str, now: UnixMs) {
        if self.is_previous(version) {
            self.job.rollback_reason = Some(ResultCode::BootFailed);
            let detail = format!(
                "the new image {} did not boot ({cause}); the device is back on its previous firmware {version}",
                self.job.image.version
            );
            self.finish(Phase::RolledBack, ResultCode::BootFailed, detail, now);
        } else {
            let detail = format!(
                "the new image {} did not boot ({cause}), and the device reports running {version}, which is not {}; check it",
                self.job.image.version,
                self.previous_words()
            );
            self.finish(Phase::Failed, ResultCode::RevertFailed, detail, now);
        }
    }

    pub(super) fn on_activate_failed(&mut self, boot_failed: bool, cause: String, now: UnixMs) {
        let (reason, what) = if boot_failed {
            (ReadReason::BootFailed, "did not boot")
        } else {
            (ReadReason::ActivateError, "could not be activated")
        };
        self.job.detail = format!(
            "{} {what}: {cause}; reading which image the device runs",
            self.target_words()
        );
        self.touch(now);
        self.read_running(reason, cause, now);
    }

    /// Issues [`Command::ReadRunning`] for `reason`.
    pub(super) fn read_running(&mut self, reason: ReadReason, cause: String, now: UnixMs) {
        self.reading = Some(Reading {
            reason,
            since: now,
            cause,
        });
        self.next = Some(Command::ReadRunning);
    }

    pub(super) fn on_running(&mut self, running: Option<String>, now: UnixMs) {
        let Some(reading) = self.reading.clone() else {
            return;
        };
        let Some(version) = running else {
            self.running_unknown(&reading, now);
            return;
        };
        self.reading = None;
        let cause = &reading.cause;
        if self.job.reinstalling {
            self.on_activated(Some(version), now);
            return;
        }
        let target = self.job.image.version.clone();
        match reading.reason {
            ReadReason::Reverting if self.is_previous(&version) || version != target => {
                self.on_reverted(Some(version), now);
            }
            ReadReason::Reverting => {
                self.job.detail = format!(
                    "{}; the device still runs {target} after the gateway restarted: reverting it",
                    self.failure_words()
                );
                self.touch(now);
                self.next = Some(Command::Revert);
            }
            _ if version == target => self.enter_probation(now),
            ReadReason::BootFailed => self.came_up_otherwise(&version, cause, now),
            ReadReason::Restarted
                if self.job.strategy == Strategy::NativeTest && self.is_previous(&version) =>
            {
                let cause = format!(
                    "the device came back on {version} while the gateway was restarting: it reverted on its own"
                );
                self.came_up_otherwise(&version, &cause, now);
            }
            ReadReason::ActivateError | ReadReason::Restarted if self.is_previous(&version) => {
                let detail = format!(
                    "activating {target} failed ({cause}); the device is unchanged and still runs its previous firmware {version}; schedule the update again"
                );
                self.finish(Phase::Failed, ResultCode::UpdateFailed, detail, now);
            }
            ReadReason::ActivateError | ReadReason::Restarted => {
                let detail = format!(
                    "activating {target} failed ({cause}); the device reports running {version}, neither the new image nor {}; check it",
                    self.previous_words()
                );
                self.finish(Phase::Failed, ResultCode::UpdateFailed, detail, now);
            }
        }
    }

    /// The running version could not be read: try again after the check interval until the
    /// offline grace has passed since the first read, then give up.
    fn running_unknown(&mut self, reading: &Reading, now: UnixMs) {
        let waited = now.saturating_sub(reading.since);
        if waited < self.job.offline_grace_ms {
            let at = now.saturating_add(self.check_every());
            self.job.detail = format!(
                "could not read which image the device runs (after: {}); trying again at {}",
                reading.cause,
                utc(at)
            );
            self.touch(now);
            self.wake = Some((at, Wake::RetryRead));
            return;
        }
        let unknown = format!(
            "which image the device runs could not be read for {}",
            span(waited)
        );
        let cause = &reading.cause;
        let context = match reading.reason {
            _ if self.job.reinstalling => {
                format!(
                    "{}; re-installing the previous image: {cause}",
                    self.failure_words()
                )
            }
            ReadReason::BootFailed => format!(
                "the new image {} did not boot ({cause})",
                self.job.image.version
            ),
            ReadReason::Reverting => format!("{}; {cause}", self.failure_words()),
            ReadReason::ActivateError | ReadReason::Restarted => {
                let detail = format!(
                    "activating {} failed ({cause}); {unknown}: state unknown; check the device",
                    self.job.image.version
                );
                self.finish(Phase::Failed, ResultCode::UpdateFailed, detail, now);
                return;
            }
        };
        let detail = format!(
            "{context}; {unknown}, so it is not known whether it is back on {}; it needs attention",
            self.previous_words()
        );
        self.finish(Phase::Failed, ResultCode::RevertFailed, detail, now);
    }

    /// The device runs the new image: watch it until `probation_until` (kept if already set).
    pub(super) fn enter_probation(&mut self, now: UnixMs) {
        self.reading = None;
        let until = *self
            .job
            .probation_until
            .get_or_insert(now.saturating_add(self.job.probation_ms));
        self.job.phase = Phase::Probation;
        self.job.last_reachable = Some(now);
        self.watching_since = now;
        self.job.detail = format!(
            "running {}{}; on probation until {}",
            self.job.image.version,
            match self.job.strategy {
                Strategy::NativeTest => " on test",
                Strategy::Emulated => "",
            },
            utc(until)
        );
        self.touch(now);
        self.wake = Some((self.next_check(now), Wake::CheckHealth));
    }

    /// The next health check: after the check interval, but not after the deadline (so the
    /// sample that passes probation is taken right at it).
    fn next_check(&self, now: UnixMs) -> UnixMs {
        let after = now.saturating_add(self.check_every());
        match self.job.probation_until {
            Some(until) if now < until => after.min(until),
            _ => after,
        }
    }

    pub(super) fn on_health(&mut self, sample: HealthSample, now: UnixMs) {
        let target = self.job.image.version.clone();
        if !sample.reachable {
            self.unreachable(&sample.problems, now);
            return;
        }
        if let Some(version) = sample.running_version.filter(|v| *v != target) {
            self.went_back_on_its_own(&version, now);
            return;
        }
        if !sample.problems.is_empty() {
            let why = format!("the device reported {}", sample.problems.join("; "));
            self.probation_failed(why, now);
            return;
        }
        self.job.last_reachable = Some(now);
        let until = self.job.probation_until.unwrap_or(now);
        if now < until {
            self.job.detail = format!("healthy at {}; on probation until {}", utc(now), utc(until));
            self.touch(now);
            self.wake = Some((self.next_check(now), Wake::CheckHealth));
            return;
        }
        match self.job.strategy {
            Strategy::NativeTest => {
                self.confirm_failures = 0;
                self.job.detail = format!(
                    "{target} passed probation at {}; confirming it on the device",
                    utc(now)
                );
                self.touch(now);
                self.next = Some(Command::Confirm);
            }
            Strategy::Emulated => self.on_confirmed(now),
        }
    }

    /// A reachable device reports a version other than the new one during probation.
    fn went_back_on_its_own(&mut self, version: &str, now: UnixMs) {
        let target = &self.job.image.version;
        if self.is_previous(version) {
            self.job.rollback_reason = Some(ResultCode::ProbationFailed);
            let detail = match self.job.strategy {
                Strategy::NativeTest => format!(
                    "the device reverted on its own to its previous firmware {version} during the probation of {target}"
                ),
                Strategy::Emulated => format!(
                    "during the probation of {target} the device went back on its own: it reports running its previous firmware {version}"
                ),
            };
            self.finish(Phase::RolledBack, ResultCode::ProbationFailed, detail, now);
        } else {
            let detail = format!(
                "during the probation of {target} the device reports running {version}, neither the new image nor {}; check it",
                self.previous_words()
            );
            self.finish(Phase::Failed, ResultCode::RevertFailed, detail, now);
        }
    }

    fn unreachable(&mut self, problems: &[String], now: UnixMs) {
        let since = self
            .job
            .last_reachable
            .unwrap_or(self.watching_since)
            .max(self.watching_since);
        let problems = if problems.is_empty() {
            String::new()
        } else {
            format!(" ({})", problems.join("; "))
        };
        if now.saturating_sub(since) > self.job.offline_grace_ms {
            let why = format!(
                "the device has been unreachable since {}{problems}",
                utc(since)
            );
            self.probation_failed(why, now);
            return;
        }
        self.job.detail = format!(
            "unreachable at {}{problems}; probation fails if it is still unreachable after {}",
            utc(now),
            utc(since.saturating_add(self.job.offline_grace_ms))
        );
        self.touch(now);
        self.wake = Some((self.next_check(now), Wake::CheckHealth));
    }

    /// Probation failed: revert a two-bank device; re-install the previous image on one
    /// without banks.
    fn probation_failed(&mut self, why: String, now: UnixMs) {
        self.job.rollback_reason = Some(ResultCode::ProbationFailed);
        self.failure = Some(why);
        match (self.job.strategy, self.job.previous.clone()) {
            (Strategy::NativeTest, _) => {
                self.job.detail = format!(
                    "{}; reverting the device to {}",
                    self.failure_words(),
                    self.previous_words()
                );
                self.touch(now);
                self.next = Some(Command::Revert);
            }
            (Strategy::Emulated, Some(_)) => {
                self.job.reinstalling = true;
                self.job.acknowledged = 0;
                self.job.transfer_failures = 0;
                self.job.retry_at = None;
                self.begin_download(now);
                self.job.detail = format!(
                    "{}; re-installing the previous image {}",
                    self.failure_words(),
                    self.previous_version().unwrap_or("(version not known)")
                );
            }
            (Strategy::Emulated, None) => self.previous_image_missing(now),
        }
    }

    pub(super) fn on_confirmed(&mut self, now: UnixMs) {
        let detail = format!(
            "running {}, confirmed after {} of probation",
            self.job.image.version,
            span(self.job.probation_ms)
        );
        self.finish(Phase::Confirmed, ResultCode::Success, detail, now);
    }

    pub(super) fn on_confirm_failed(&mut self, why: &str, now: UnixMs) {
        self.confirm_failures = self.confirm_failures.saturating_add(1);
        let target = &self.job.image.version;
        if self.confirm_failures < MAX_CONFIRM_ATTEMPTS {
            let at = now.saturating_add(self.check_every());
            self.job.detail = format!(
                "confirming {target} failed: {why}; trying again at {} (attempt {} of {MAX_CONFIRM_ATTEMPTS} failed)",
                utc(at),
                self.confirm_failures
            );
            self.touch(now);
            self.wake = Some((at, Wake::RetryConfirm));
            return;
        }
        let detail = format!(
            "{target} passed probation, but confirming it failed {MAX_CONFIRM_ATTEMPTS} times, last: {why}; the device runs {target} on test and may revert to {} at its next restart; confirm it on the device or schedule the update again",
            self.previous_words()
        );
        self.finish(Phase::Failed, ResultCode::UpdateFailed, detail, now);
    }

    pub(super) fn on_reverted(&mut self, running: Option<String>, now: UnixMs) {
        match running {
            Some(version) if !self.is_previous(&version) => {
                let detail = format!(
                    "{}; the device was reverted but reports running {version}, not {}; check it",
                    self.failure_words(),
                    self.previous_words()
                );
                self.finish(Phase::Failed, ResultCode::RevertFailed, detail, now);
            }
            _ => self.rolled_back(now),
        }
    }

    pub(super) fn on_revert_failed(&mut self, why: &str, now: UnixMs) {
        let detail = format!(
            "{}; reverting failed: {why}; the device still runs the new image {} on test (it may go back to {} at its next restart) and needs attention",
            self.failure_words(),
            self.job.image.version,
            self.previous_words()
        );
        self.finish(Phase::Failed, ResultCode::RevertFailed, detail, now);
    }

    /// The device is back on its previous image after a failed probation.
    fn rolled_back(&mut self, now: UnixMs) {
        let result = *self
            .job
            .rollback_reason
            .get_or_insert(ResultCode::ProbationFailed);
        let detail = format!(
            "{}; the device runs {} again",
            self.failure_words(),
            self.previous_words()
        );
        self.finish(Phase::RolledBack, result, detail, now);
    }

    /// "probation of 1.3.0 failed: the device reported …", for details after the failure.
    pub(super) fn failure_words(&self) -> String {
        let target = &self.job.image.version;
        match (&self.failure, self.job.rollback_reason) {
            (Some(why), _) => format!("probation of {target} failed: {why}"),
            (None, Some(ResultCode::BootFailed)) => format!("{target} did not boot"),
            (None, _) => format!("probation of {target} failed"),
        }
    }
}

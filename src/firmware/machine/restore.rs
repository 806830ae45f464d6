//! Picking up a persisted job after a restart.

use super::{Command, Machine, Phase, ReadReason, Strategy, UnixMs, Wake};

impl Machine {
    /// Issues again what was under way when the gateway stopped (see [`Machine::restore`]).
    pub(super) fn resume(&mut self, now: UnixMs) {
        match self.job.phase {
            Phase::Confirmed | Phase::RolledBack | Phase::Failed | Phase::Cancelled => {}
            Phase::Scheduled | Phase::WaitingForWindow => {
                self.wake = Some((self.job.start_at.max(now), Wake::Start));
            }
            Phase::Downloading | Phase::Verified => {
                let Some(image) = self.installing().cloned() else {
                    self.previous_image_missing(now);
                    return;
                };
                if self.job.phase == Phase::Verified {
                    self.job.phase = Phase::Downloading;
                    self.touch(now);
                }
                self.next = Some(Command::LoadImage { image });
            }
            Phase::Transferring => {
                let Some(size) = self.installing().map(|image| image.size) else {
                    self.previous_image_missing(now);
                    return;
                };
                if self.job.acknowledged > size {
                    self.job.acknowledged = size;
                    self.touch(now);
                }
                match self.job.retry_at {
                    Some(at) if at > now => self.wake = Some((at, Wake::RetryTransfer)),
                    _ => self.retry_transfer(now),
                }
            }
            Phase::Staged => {
                if self.installing().is_none() {
                    self.previous_image_missing(now);
                    return;
                }
                self.next = Some(Command::Activate(self.activation_mode()));
            }
            Phase::Rebooting => self.read_running(
                ReadReason::Restarted,
                "the gateway restarted while the device rebooted".into(),
                now,
            ),
            Phase::Probation => {
                if self.job.probation_until.is_none() {
                    self.job.probation_until = Some(now.saturating_add(self.job.probation_ms));
                    self.touch(now);
                }
                self.watching_since = now;
                let reverting = self.job.strategy == Strategy::NativeTest
                    && self.job.rollback_reason.is_some()
                    && !self.job.reinstalling;
                if reverting {
                    // Probation had failed and the revert was under way: see where the device
                    // is before reverting again.
                    self.read_running(
                        ReadReason::Reverting,
                        "the gateway restarted while the device was being reverted".into(),
                        now,
                    );
                } else {
                    self.wake = Some((now, Wake::CheckHealth));
                }
            }
        }
    }
}

//! A firmware campaign: one image to many devices, at most `max_concurrent` at a time, paused
//! when `failure_threshold` devices have failed. Sans-IO like [`super::machine`]: the engine
//! asks which devices to start, tells it how each ended, and persists it after every change.
//!
//! ```text
//! Running ⇄ Paused (operator, or failures reaching the threshold)
//!    ↓         ↓
//! Completed (nothing pending, nothing running)     Aborted (operator; pending devices skipped)
//! ```
//!
//! The engine drives it:
//!
//! 1. [`Campaign::due`] with the time now: the devices to start;
//! 2. for each, [`Campaign::started`] with the update id it scheduled, or [`Campaign::refused`]
//!    when the update could not be scheduled;
//! 3. [`Campaign::ended`] when a device's update reaches a terminal phase;
//! 4. [`Campaign::pause`], [`Campaign::resume`], [`Campaign::abort`] for the operator;
//! 5. persist the campaign and event [`Campaign::status_value`] after each of these.
//!
//! Calls that do not fit the slot (an unknown device, a second `ended`, `started` for a device
//! already running) are ignored: they are stale, and a campaign must never panic on them.
//!
//! [`parse_targets`] turns the `Targets` argument of StartFirmwareCampaign into device ids, and
//! [`Campaign::status_xml`] answers GetFirmwareCampaignStatus.

mod status;
mod targets;
#[cfg(test)]
mod tests;

pub use targets::parse_targets;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::UnixMs;
use super::machine::{Phase, ResultCode};

/// Where a campaign is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CampaignState {
    /// Starting devices as slots free up.
    Running,
    /// Starting no new devices; updates under way go on.
    Paused {
        /// Why (operator, or the failure threshold was reached).
        reason: String,
    },
    /// Stopped for good; updates not yet past Staged were cancelled.
    Aborted,
    /// Every device has ended.
    Completed,
}

impl CampaignState {
    /// The name used in UPnP values.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Running => "Running",
            Self::Paused { .. } => "Paused",
            Self::Aborted => "Aborted",
            Self::Completed => "Completed",
        }
    }
}

/// One device of a campaign.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Slot {
    /// Not started yet.
    Pending,
    /// Its update runs.
    Started {
        /// The update id.
        update_id: String,
    },
    /// Its update ended.
    Ended {
        /// The update id.
        update_id: String,
        /// Final phase.
        phase: Phase,
        /// Final result.
        result: ResultCode,
    },
    /// The update could not be scheduled (counts as a failure).
    Refused {
        /// Why, in words.
        reason: String,
    },
    /// Not started because the campaign was aborted.
    Skipped,
}

/// What starting a campaign needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCampaign {
    /// Unique id.
    pub id: String,
    /// SHA-256 hex of the image.
    pub image: String,
    /// Device ids, in order.
    pub devices: Vec<String>,
    /// Most updates running at once (≥ 1).
    pub max_concurrent: u32,
    /// Failures (RolledBack, Failed, Refused) that pause the campaign (≥ 1).
    pub failure_threshold: u32,
    /// Earliest start of the first device.
    pub start_at: UnixMs,
}

/// A campaign, persisted after every change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Campaign {
    /// Unique id.
    pub id: String,
    /// SHA-256 hex of the image.
    pub image: String,
    /// Most updates running at once.
    pub max_concurrent: u32,
    /// Failures that pause the campaign.
    pub failure_threshold: u32,
    /// Earliest start.
    pub start_at: UnixMs,
    /// State.
    pub state: CampaignState,
    /// Devices in order, with their slot.
    pub devices: Vec<(String, Slot)>,
    /// When it was created.
    pub created_at: UnixMs,
    /// When it last changed.
    pub updated_at: UnixMs,
    /// Failures already counted against the threshold when the campaign was last resumed after
    /// reaching it: the threshold applies to failures since then (failures still count in
    /// [`Counts::failed`]).
    #[serde(default)]
    failures_at_resume: u32,
}

/// Counts for the status summary.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Not started.
    pub pending: u32,
    /// Running.
    pub running: u32,
    /// Confirmed.
    pub succeeded: u32,
    /// RolledBack, Failed, Refused.
    pub failed: u32,
    /// Cancelled or skipped.
    pub cancelled: u32,
}

impl Campaign {
    /// A new running campaign, every device pending. Validates nothing: the engine checked the
    /// devices, the image and the bounds.
    pub fn new(new: NewCampaign, now: UnixMs) -> Self {
        Self {
            id: new.id,
            image: new.image,
            max_concurrent: new.max_concurrent,
            failure_threshold: new.failure_threshold,
            start_at: new.start_at,
            state: CampaignState::Running,
            devices: new
                .devices
                .into_iter()
                .map(|device| (device, Slot::Pending))
                .collect(),
            created_at: now,
            updated_at: now,
            failures_at_resume: 0,
        }
    }

    /// Devices to start now (within the cap, when running and `now >= start_at`). The engine
    /// then calls [`Campaign::started`] or [`Campaign::refused`] for each.
    ///
    /// The first pending devices in campaign order, at most `max_concurrent` less the updates
    /// running (a cap of 0 counts as 1, so a campaign cannot stall on it).
    pub fn due(&self, now: UnixMs) -> Vec<String> {
        if self.state != CampaignState::Running || now < self.start_at {
            return Vec::new();
        }
        let free = self
            .max_concurrent
            .max(1)
            .saturating_sub(self.counts().running);
        self.devices
            .iter()
            .filter(|(_, slot)| *slot == Slot::Pending)
            .take(usize::try_from(free).unwrap_or(usize::MAX))
            .map(|(device, _)| device.clone())
            .collect()
    }

    /// The device's update was scheduled.
    ///
    /// Taken for a pending device, and also for one an abort skipped in the meantime: the
    /// update exists, so the campaign tracks it and counts how it ends. An engine that calls
    /// this on an [`CampaignState::Aborted`] campaign should cancel the update, as it did those
    /// [`Campaign::abort`] returned. Ignored otherwise.
    pub fn started(&mut self, device: &str, update_id: &str, now: UnixMs) {
        let Some(slot) =
            self.slot_mut(device, |slot| matches!(slot, Slot::Pending | Slot::Skipped))
        else {
            return;
        };
        *slot = Slot::Started {
            update_id: update_id.to_owned(),
        };
        self.updated_at = now;
    }

    /// The device's update could not be scheduled. Counts as a failure. Ignored unless the
    /// device is pending.
    pub fn refused(&mut self, device: &str, reason: &str, now: UnixMs) {
        let Some(slot) = self.slot_mut(device, |slot| *slot == Slot::Pending) else {
            return;
        };
        *slot = Slot::Refused {
            reason: reason.to_owned(),
        };
        self.updated_at = now;
        self.check_threshold();
        self.check_completed();
    }

    /// The device's update ended (terminal phase). Confirmed is a success; RolledBack and
    /// Failed are failures; Cancelled is neither. Ignored unless the device's update runs and
    /// `phase` is terminal.
    pub fn ended(&mut self, device: &str, phase: Phase, result: ResultCode, now: UnixMs) {
        if !phase.is_terminal() {
            return;
        }
        let Some(slot) = self.slot_mut(device, |slot| matches!(slot, Slot::Started { .. })) else {
            return;
        };
        let Slot::Started { update_id } = slot else {
            return;
        };
        let update_id = std::mem::take(update_id);
        *slot = Slot::Ended {
            update_id,
            phase,
            result,
        };
        self.updated_at = now;
        if is_failure(phase) {
            self.check_threshold();
        }
        self.check_completed();
    }

    /// Pauses (operator): no new device starts; updates under way go on. Only a running
    /// campaign can be paused. An empty `reason` becomes "paused by an operator".
    pub fn pause(&mut self, reason: &str, now: UnixMs) -> Result<(), String> {
        if self.state != CampaignState::Running {
            return Err(self.refusal("paused"));
        }
        let reason = reason.trim();
        self.state = CampaignState::Paused {
            reason: if reason.is_empty() {
                "paused by an operator".to_owned()
            } else {
                reason.to_owned()
            },
        };
        self.updated_at = now;
        Ok(())
    }

    /// Resumes a paused campaign. Resets nothing: failures still count. When the pause came
    /// from the threshold (or failures reached it while paused), resuming accepts those
    /// failures, and the campaign pauses again once `failure_threshold` more devices fail.
    pub fn resume(&mut self, now: UnixMs) -> Result<(), String> {
        if !matches!(self.state, CampaignState::Paused { .. }) {
            return Err(self.refusal("resumed"));
        }
        if self.threshold_reached() {
            self.failures_at_resume = self.counts().failed;
        }
        self.state = CampaignState::Running;
        self.updated_at = now;
        Ok(())
    }

    /// Aborts: pending devices become Skipped; returns the update ids still running (the engine
    /// cancels those it still can, and reports how they end through [`Campaign::ended`]).
    pub fn abort(&mut self, now: UnixMs) -> Result<Vec<String>, String> {
        if !matches!(
            self.state,
            CampaignState::Running | CampaignState::Paused { .. }
        ) {
            return Err(self.refusal("aborted"));
        }
        let mut running = Vec::new();
        for (_, slot) in &mut self.devices {
            match slot {
                Slot::Pending => *slot = Slot::Skipped,
                Slot::Started { update_id } => running.push(update_id.clone()),
                Slot::Ended { .. } | Slot::Refused { .. } | Slot::Skipped => {}
            }
        }
        self.state = CampaignState::Aborted;
        self.updated_at = now;
        Ok(running)
    }

    /// Counts by outcome.
    pub fn counts(&self) -> Counts {
        let mut counts = Counts::default();
        for (_, slot) in &self.devices {
            let count = match slot {
                Slot::Pending => &mut counts.pending,
                Slot::Started { .. } => &mut counts.running,
                Slot::Ended { phase, .. } if *phase == Phase::Confirmed => &mut counts.succeeded,
                Slot::Ended { phase, .. } if is_failure(*phase) => &mut counts.failed,
                Slot::Refused { .. } => &mut counts.failed,
                Slot::Ended { .. } | Slot::Skipped => &mut counts.cancelled,
            };
            *count = count.saturating_add(1);
        }
        counts
    }

    /// The devices by id (for lookups).
    pub fn slots(&self) -> BTreeMap<&str, &Slot> {
        self.devices.iter().map(|(d, s)| (d.as_str(), s)).collect()
    }

    /// The first slot of `device` that `fits`.
    fn slot_mut(&mut self, device: &str, fits: impl Fn(&Slot) -> bool) -> Option<&mut Slot> {
        self.devices
            .iter_mut()
            .find(|(d, slot)| d == device && fits(slot))
            .map(|(_, slot)| slot)
    }

    /// Whether the failures since the last resume reached the threshold (a threshold of 0
    /// counts as 1).
    fn threshold_reached(&self) -> bool {
        let since = self.counts().failed.saturating_sub(self.failures_at_resume);
        since >= self.failure_threshold.max(1)
    }

    /// Pauses a running campaign whose failures reached the threshold.
    fn check_threshold(&mut self) {
        if self.state != CampaignState::Running || !self.threshold_reached() {
            return;
        }
        self.state = CampaignState::Paused {
            reason: format!(
                "paused: {} of {} devices failed (threshold {}); fix the cause, then \
                 ResumeFirmwareCampaign or AbortFirmwareCampaign",
                self.counts().failed,
                self.devices.len(),
                self.failure_threshold
            ),
        };
    }

    /// Completes a running or paused campaign with nothing pending and nothing running.
    fn check_completed(&mut self) {
        let counts = self.counts();
        if matches!(
            self.state,
            CampaignState::Running | CampaignState::Paused { .. }
        ) && counts.pending == 0
            && counts.running == 0
        {
            self.state = CampaignState::Completed;
        }
    }

    /// Why the campaign cannot be `done` (paused, resumed, aborted) in its state, and what to
    /// do instead.
    fn refusal(&self, done: &str) -> String {
        let (now, hint) = match &self.state {
            CampaignState::Running => ("running".to_owned(), "there is nothing to resume"),
            CampaignState::Paused { reason } => (
                format!("paused ({reason})"),
                "ResumeFirmwareCampaign continues it, AbortFirmwareCampaign ends it",
            ),
            CampaignState::Aborted => (
                "aborted".to_owned(),
                "it has ended; start a new campaign for the devices it skipped",
            ),
            CampaignState::Completed => (
                "completed".to_owned(),
                "every device has ended; start a new campaign to update them again",
            ),
        };
        format!(
            "campaign {:?} cannot be {done}: it is {now}; {hint}",
            self.id
        )
    }
}

/// Whether an update that ended in `phase` counts as a failed device.
fn is_failure(phase: Phase) -> bool {
    matches!(phase, Phase::RolledBack | Phase::Failed)
}

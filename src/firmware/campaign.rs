//! A firmware campaign: one image to many devices, at most `max_concurrent` at a time, paused
//! when `failure_threshold` devices have failed. Sans-IO like [`super::machine`]: the engine
//! asks which devices to start, tells it how each ended, and persists it after every change.
//!
//! SKELETON (issue 6): types are the contract; the campaign work fills in the bodies.

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
    /// A new running campaign.
    pub fn new(new: NewCampaign, now: UnixMs) -> Self {
        let _ = (new, now);
        todo!("campaign")
    }

    /// Devices to start now (within the cap, when running and `now >= start_at`). The engine
    /// then calls [`Campaign::started`] or [`Campaign::refused`] for each.
    pub fn due(&self, now: UnixMs) -> Vec<String> {
        let _ = now;
        todo!("campaign")
    }

    /// The device's update was scheduled.
    pub fn started(&mut self, device: &str, update_id: &str, now: UnixMs) {
        let _ = (device, update_id, now);
        todo!("campaign")
    }

    /// The device's update could not be scheduled.
    pub fn refused(&mut self, device: &str, reason: &str, now: UnixMs) {
        let _ = (device, reason, now);
        todo!("campaign")
    }

    /// The device's update ended (terminal phase).
    pub fn ended(&mut self, device: &str, phase: Phase, result: ResultCode, now: UnixMs) {
        let _ = (device, phase, result, now);
        todo!("campaign")
    }

    /// Pauses (operator).
    pub fn pause(&mut self, reason: &str, now: UnixMs) -> Result<(), String> {
        let _ = (reason, now);
        todo!("campaign")
    }

    /// Resumes a paused campaign.
    pub fn resume(&mut self, now: UnixMs) -> Result<(), String> {
        let _ = now;
        todo!("campaign")
    }

    /// Aborts: pending devices become Skipped; returns the update ids still running (the engine
    /// cancels those it still can).
    pub fn abort(&mut self, now: UnixMs) -> Result<Vec<String>, String> {
        let _ = now;
        todo!("campaign")
    }

    /// Counts by outcome.
    pub fn counts(&self) -> Counts {
        todo!("campaign")
    }

    /// The devices by id (for lookups).
    pub fn slots(&self) -> BTreeMap<&str, &Slot> {
        self.devices.iter().map(|(d, s)| (d.as_str(), s)).collect()
    }
}

// SKELETON: helpers the UPnP layer uses (filled in by the campaign work).
impl Campaign {
    /// The evented `FirmwareCampaignStatus`.
    pub fn status_value(&self) -> String {
        todo!("campaign")
    }

    /// GetFirmwareCampaignStatus's XML.
    pub fn status_xml(&self) -> String {
        todo!("campaign")
    }
}

/// Parses campaign targets: `group:<name>` items and device ids, comma-separated.
pub fn parse_targets(
    spec: &str,
    groups: &BTreeMap<String, Vec<String>>,
    devices: &[String],
) -> Result<Vec<String>, String> {
    let _ = (spec, groups, devices);
    todo!("campaign")
}

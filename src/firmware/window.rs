//! Weekly maintenance windows in UTC.
//!
//! SKELETON (issue 6): filled in by the state-machine work.

use serde::{Deserialize, Serialize};

use super::UnixMs;

/// A weekly window, as the state machine keeps it (persisted with the update).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowSpec {
    /// Days it opens on, 0 = Monday … 6 = Sunday.
    pub days: Vec<u8>,
    /// Opening time, minutes after midnight UTC.
    pub start_minute: u16,
    /// How long it stays open, in seconds.
    pub duration_s: u64,
}

impl WindowSpec {
    /// From the config's window (whose `start` the config check has validated).
    pub fn from_config(window: &crate::config::MaintenanceWindow) -> Option<Self> {
        let _ = window;
        todo!("window")
    }

    /// `at` itself when a window is open at `at`, else the next opening after it.
    pub fn open_at_or_after(&self, at: UnixMs) -> UnixMs {
        let _ = at;
        todo!("window")
    }

    /// When the window open at `at` closes, if one is open.
    pub fn closes_after(&self, at: UnixMs) -> Option<UnixMs> {
        let _ = at;
        todo!("window")
    }
}

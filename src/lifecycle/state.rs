//! The lifecycle states and their allowed transitions.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Where a managed device is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LifecycleState {
    /// Known to exist, nothing configured.
    Manufactured,
    /// Declared to the gateway (config or discovery), not yet enrolled.
    Provisioned,
    /// Enrolled, waiting for an operator (or a zero-touch rule) to approve it.
    PendingApproval,
    /// Approved and operating.
    Commissioned,
    /// Temporarily out of service for maintenance (firmware, repair).
    Maintenance,
    /// Retired: its identity is revoked and it can neither call nor be called.
    Decommissioned,
}

/// A refused lifecycle move.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a device cannot move from {from} to {to}; from {from} it can move to {allowed}")]
pub struct TransitionError {
    /// The current state.
    pub from: LifecycleState,
    /// The requested state.
    pub to: LifecycleState,
    /// The states allowed from `from`, as text.
    pub allowed: String,
}

impl LifecycleState {
    /// Every state, in lifecycle order.
    pub const ALL: [Self; 6] = [
        Self::Manufactured,
        Self::Provisioned,
        Self::PendingApproval,
        Self::Commissioned,
        Self::Maintenance,
        Self::Decommissioned,
    ];

    /// The states a device may move to from this one.
    pub fn next_states(self) -> &'static [Self] {
        use LifecycleState::*;
        match self {
            Manufactured => &[Provisioned, Decommissioned],
            Provisioned => &[PendingApproval, Decommissioned],
            PendingApproval => &[Commissioned, Provisioned, Decommissioned],
            // Back to Provisioned: re-provisioned, e.g. replaced by another physical device.
            Commissioned => &[Maintenance, Provisioned, Decommissioned],
            Maintenance => &[Commissioned, Provisioned, Decommissioned],
            Decommissioned => &[],
        }
    }

    /// Checks a move to `to`.
    pub fn check_transition(self, to: Self) -> Result<(), TransitionError> {
        if self.next_states().contains(&to) {
            return Ok(());
        }
        let allowed = match self.next_states() {
            [] => "nowhere (decommissioning is final)".to_owned(),
            states => states
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", "),
        };
        Err(TransitionError {
            from: self,
            to,
            allowed,
        })
    }

    /// The UPnP `LifecycleState` value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Manufactured => "Manufactured",
            Self::Provisioned => "Provisioned",
            Self::PendingApproval => "PendingApproval",
            Self::Commissioned => "Commissioned",
            Self::Maintenance => "Maintenance",
            Self::Decommissioned => "Decommissioned",
        }
    }
}

impl fmt::Display for LifecycleState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::LifecycleState::*;

    #[test]
    fn commissioned_device_should_move_to_maintenance_and_back() {
        assert!(Commissioned.check_transition(Maintenance).is_ok());
        assert!(Maintenance.check_transition(Commissioned).is_ok());
    }

    #[test]
    fn decommissioned_device_should_go_nowhere() {
        for to in super::LifecycleState::ALL {
            let err = Decommissioned.check_transition(to).unwrap_err();
            assert!(
                err.to_string().contains("decommissioning is final"),
                "{err}"
            );
        }
    }

    #[test]
    fn provisioned_device_should_not_skip_approval() {
        let err = Provisioned.check_transition(Commissioned).unwrap_err();
        assert_eq!(
            err.to_string(),
            "a device cannot move from Provisioned to Commissioned; from Provisioned it can move to PendingApproval, Decommissioned"
        );
    }
}

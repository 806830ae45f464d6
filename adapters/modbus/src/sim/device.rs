//! The register model of one simulated device.

/// What the simulated device says it is (to be written).
#[derive(Debug, Clone, Default)]
pub struct SimIdentity {}

/// One simulated device (to be written).
#[derive(Debug, Clone, Default)]
pub struct SimDevice {}

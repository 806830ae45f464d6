//! Faults a test injects into a simulated device.

/// Faults of one simulated device (to be written).
#[derive(Debug, Default)]
pub struct Faults {}

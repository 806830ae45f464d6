//! Device profiles: the declarative description of a device model.
//!
//! A profile is one TOML file per device model. Its common part (identity, parameters, actions,
//! firmware and log methods, health and polling) is parsed here into [`Profile`]; its protocol
//! section (`[modbus]`, `[mqtt]`, ...) is parsed by the adapter named in `protocol`, through
//! [`Profile::section`], so that its errors are located in the file the same way.

mod load;
mod model;

pub use crate::located::{LocatedError, TomlSource};
pub use load::is_profile_id;
pub use model::{
    Access, ActionKind, ActionSpec, ArgumentSpec, FirmwareSpec, HealthCheck, HealthSpec, LogSpec,
    Parameter, PollSpec, Profile, ValueRange,
};

/// Largest profile file the loader reads, in bytes.
pub const MAX_PROFILE_SIZE: usize = 1024 * 1024;

/// Largest firmware image a profile may declare when it does not say otherwise (32 MiB).
pub const DEFAULT_MAX_IMAGE_SIZE: u64 = 32 * 1024 * 1024;

//! Device lifecycle: the states a managed device passes through, which moves are allowed, and
//! the PKI behind device identities.

pub mod pki;
mod state;

pub use state::{LifecycleState, TransitionError};

//! Device lifecycle: the states a managed device passes through, and which moves are allowed.

mod state;

pub use state::{LifecycleState, TransitionError};

//! Device lifecycle: the states a managed device passes through, which moves are allowed, and
//! the PKI behind device identities.

pub mod identities;
pub mod pki;
mod state;

pub use identities::{Enrollment, Identities, IdentityError, IdentityRecord, Outcome};
pub use state::{LifecycleState, TransitionError};

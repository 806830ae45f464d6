//! Firmware: the update engine (DESIGN.md §6).
//!
//! - [`manifest`]: what an image says about itself (target profiles, version, size, SHA-256,
//!   emergency flag), in a signed DSSE envelope.
//! - [`signing`]: Ed25519 vendor keys: the trust store, key generation and signing for the CLI.
//! - [`store`]: the image store, content-addressed by SHA-256 under the state directory; every
//!   refusal (unsigned, mis-signed, wrong target, oversize, corrupted) happens before a byte moves.
//! - [`window`]: weekly maintenance windows in UTC.
//! - [`machine`]: the update of one device as a sans-IO state machine (`now` passed in).
//! - [`campaign`]: an update of many devices with a concurrency cap and a failure threshold,
//!   sans-IO.
//! - [`engine`]: the IO around them: one task per device update, persistence, events.
//! - [`offers`]: one-time download URLs on the gateway's HTTP listener, for devices that pull
//!   their image (Tasmota's `OtaUrl`).

pub mod campaign;
pub mod engine;
pub mod machine;
pub mod manifest;
pub mod offers;
pub mod signing;
pub mod store;
pub mod window;

pub use offers::{ImageOffers, OfferError};

/// Milliseconds since the Unix epoch, UTC: the firmware engine's clock. Wall-clock time (not a
/// monotonic instant) because schedules and probation deadlines are UTC times that must survive
/// a restart.
pub type UnixMs = u64;

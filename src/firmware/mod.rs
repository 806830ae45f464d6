//! Firmware: what the gateway itself does to move images to devices.
//!
//! - [`offers`]: one-time download URLs on the gateway's HTTP listener, for devices that pull
//!   their image (Tasmota's `OtaUrl`).

pub mod offers;

pub use offers::{ImageOffers, OfferError};

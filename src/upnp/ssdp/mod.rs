//! SSDP discovery (UDA 2.0 §1): advertisements, M-SEARCH answers and the multicast sockets.
//!
//! [`Ssdp::start`] runs one driver task (`socket.rs`) around two sans-IO cores: the announce
//! scheduler (`announce.rs`: paced NOTIFY alive/byebye/update, each device on its own random
//! re-announce phase) and the search responder (`search.rs`: ST matching with lower versions, MX
//! delays, served-subnet check and a per-source rate limit). [`parse`] reads incoming datagrams
//! and is the fuzz target's entry point.

mod announce;
mod config;
mod device;
mod limiter;
mod message;
mod render;
mod search;
mod socket;

pub use config::{MIN_MAX_AGE, SsdpConfig, SsdpTuning};
pub use device::AdvertisedDevice;
pub use message::{MAX_DATAGRAM, MAX_HEADERS, MAX_LINE, ParseError, SsdpMessage, StartLine, parse};
pub use socket::{Ssdp, SsdpHandle};

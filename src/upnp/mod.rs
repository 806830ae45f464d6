//! The UPnP face (DESIGN.md §4 and §8): SSDP discovery, device and service descriptions, SOAP
//! control, GENA eventing, and the HTTP and HTTPS listeners that carry them.
//!
//! Every protocol core here (SSDP announce scheduling and search answers, GENA subscriptions,
//! SEQ and moderation) is sans-IO: it takes `now` as an argument and never reads the clock, so
//! tests drive it deterministically. The IO around each core is a thin task.

pub mod client;
pub mod description;
pub mod device;
pub mod enroll_agent;
pub mod face;
pub mod gena;
pub mod http;
pub mod net;
pub mod scpd;
pub mod services;
pub mod soap;
pub mod ssdp;
pub mod tls;
pub mod xml_list;

pub use face::{FaceError, UpnpFace};
pub mod xml_text;

//! GENA eventing (UDA 2.0 §4): subscriptions, SEQ and moderation and NOTIFY delivery.
//!
//! The core (`publisher::Publisher`) is sans-IO: it takes `now` and never reads the clock. One driver
//! task ([`Eventing`]) owns it and runs the NOTIFY deliveries.

mod delivery;
mod driver;
mod error;
mod headers;
mod limits;
mod moderation;
mod propertyset;
mod publisher;
mod response;
mod service;
mod subscription;

pub use driver::Eventing;
pub use error::{CallbackRefusal, GenaError};
pub use headers::{
    CallbackUrl, GenaRequest, MAX_CALLBACK_URL_LEN, MAX_CALLBACKS, RequestedTimeout, Sid,
    parse_request,
};
pub use limits::GenaLimits;
pub use service::{EventedVariable, Moderation, ServiceKey};

#[cfg(test)]
mod driver_tests;

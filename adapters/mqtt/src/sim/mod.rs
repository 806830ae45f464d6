//! Simulated MQTT devices that run against a broker, speaking each dialect as the real devices
//! do, and an embedded broker so the demo and the tests need no external service.
//!
//! - [`broker`]: [`EmbeddedBroker`] (rumqttd) on loopback.
//! - [`tasmota`]: a Tasmota-like plug.
//! - [`homie`]: a Homie 5 thermostat.
//! - [`generic`]: a generic MQTT 5 device with request/response, chunked firmware and logs.
//! - [`http`]: [`http::ImageServer`], firmware images at one-time URLs for devices that pull them.

pub mod broker;
pub mod generic;
pub mod homie;
pub mod http;
pub mod tasmota;

pub use broker::EmbeddedBroker;

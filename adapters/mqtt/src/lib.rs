//! The MQTT adapter of `iotmc-gateway`: relays, plugs, sensors and controllers that talk to a
//! broker, in one of three dialects chosen by their profile's `[mqtt]` section.
//!
//! - **Tasmota**: `cmnd/<topic>/<Command>`, `stat/<topic>/RESULT`, `tele/<topic>/STATE|SENSOR|LWT`.
//! - **Homie 5**: `homie/5/<device>/$state`, `$description`, properties and `/set`, `$log/<level>`.
//! - **Generic**: the profile maps parameters, actions, firmware and logs to topics, JSON
//!   pointers and MQTT 5 request/response.
//!
//! The modules:
//! - [`frame`]: messages as the driver passes them around; [`topic`]: names and filters.
//! - [`codec`]: payload decoding, pure and bounded (JSON, Tasmota, Homie, generic).
//! - [`settings`] and [`address`]: broker connections from the gateway config, and device
//!   addresses (`mqtt://<broker>/<device>`).
//! - [`driver`]: one task per broker connection, shared by every device on that broker:
//!   reconnect with backoff, resubscribe, acknowledged publishes, MQTT 5 request/response.
//! - [`profile`]: the `[mqtt]` profile section, with located checks.
//! - [`link`]: the [`iotmc_adapter::DeviceLink`] of each dialect, with firmware and logs.
//! - `sim` (feature `sim`): simulated devices that run against a broker, and an embedded broker.

mod adapter;
pub mod address;
pub mod codec;
pub mod driver;
pub mod frame;
pub mod link;
pub mod profile;
pub mod settings;
#[cfg(feature = "sim")]
pub mod sim;
pub mod topic;

pub use adapter::MqttAdapter;
pub use settings::{BrokerSettings, MqttVersion};

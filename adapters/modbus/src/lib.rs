//! The Modbus adapter of `iotmc-gateway`: Modbus TCP and Modbus RTU devices described by the
//! `[modbus]` section of their profile.
//!
//! - [`frame`] and [`codec`]: the protocol as types and as bytes, no IO.
//! - [`address`]: device addresses in the gateway config (`tcp://host:port?unit=1`,
//!   `rtu:///dev/ttyUSB0?baud=9600&parity=none&unit=5`).
//! - [`driver`]: one task per bus (serial port or TCP connection) that owns it: one request in
//!   flight, management ahead of polling, fair across devices, timeouts and retries.
//! - [`profile`], [`encoding`], [`plan`]: the register map, value encodings, coalesced reads.
//! - [`link`]: the [`iotmc_adapter::DeviceLink`] of one device, with its polling, actions,
//!   firmware target and log source.
//! - `sim` (feature `sim`): simulated devices and servers.

mod adapter;
pub mod address;
pub mod codec;
pub mod driver;
pub mod encoding;
pub mod frame;
pub mod link;
pub mod plan;
pub mod profile;
#[cfg(feature = "sim")]
pub mod sim;

pub use adapter::ModbusAdapter;
pub use link::ModbusLink;

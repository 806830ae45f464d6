//! `iotmc-gateway`: presents Modbus, MQTT, Zigbee and BLE devices as virtual UPnP managed
//! devices.
//!
//! The daemon is assembled from: the gateway [`config`], the [`profile`] catalog, the protocol
//! [`adapters`] built into this binary, the persistent [`registry`], the device [`lifecycle`],
//! and the [`daemon`] shell that runs it all. The [`cli`] is the command-line front.

pub mod adapters;
pub mod cli;
pub mod config;
pub mod daemon;
pub mod demo;
pub mod diagnostics;
pub mod firmware;
pub mod lifecycle;
pub mod logging;
pub mod profile;
pub mod registry;
pub mod upnp;
pub mod utc;

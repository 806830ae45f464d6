//! Simulated Modbus devices speaking the real wire protocol, for tests, benches and the demo.
//!
//! - [`SimDevice`]: one device whose register map comes from its profile's `[modbus]`
//!   section: parameters, Read Device Identification objects, file records with a two-bank
//!   firmware model that really boots the staged image and rolls back unless it is confirmed,
//!   an event log, and fault injection ([`Faults`]).
//! - [`TcpServer`] and [`RtuServer`]: Modbus TCP on a socket, Modbus RTU on any byte stream
//!   (a pty for serial tests, an in-memory duplex for unit tests), serving any number of unit
//!   ids and carrying out wire faults (delays, corrupted CRCs, dropped replies).

mod device;
mod faults;
#[cfg(unix)]
mod pty;
mod server;

pub use device::{SimDevice, SimIdentity};
pub use faults::Faults;
#[cfg(unix)]
pub use pty::{PtyMaster, open_pty};
pub use server::{RtuServer, TcpServer};

use std::time::Duration;

use crate::frame::{Answer, Request};

/// One unit id on a simulated bus: what the servers ask for each request addressed to it.
pub trait Unit: Send + Sync + 'static {
    /// The unit id (server address) it answers to.
    fn unit(&self) -> u8;

    /// What to do with `request`. Called for broadcasts (unit 0 on RTU) too; the server then
    /// sends nothing whatever the reply.
    fn reply(&self, request: &Request) -> Reply;
}

/// What a simulated device does with one request.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// Answer it.
    Answer(Answer),
    /// Answer it after a delay.
    Delayed(Duration, Answer),
    /// Answer it with a corrupted frame (bad CRC on RTU, a garbled PDU on TCP).
    Corrupted(Answer),
    /// Say nothing (wrong unit, broadcast, dropped reply, unresponsive device).
    Silent,
}

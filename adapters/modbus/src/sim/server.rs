//! Modbus TCP and RTU servers in front of simulated devices.

/// A Modbus TCP server (to be written).
#[derive(Debug)]
pub struct TcpServer {}

/// A Modbus RTU server (to be written).
#[derive(Debug)]
pub struct RtuServer {}

//! The device link of one Modbus device.

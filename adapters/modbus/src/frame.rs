//! Modbus application-layer messages (PDUs) as types, with no bytes and no IO.
//!
//! Function codes and layouts follow the *MODBUS Application Protocol Specification V1.1b3*
//! (modbus.org, 2012); section numbers below refer to it.

use std::fmt;

/// Largest PDU the protocol allows: 256-byte RTU ADU less address and CRC (§4.1).
pub const MAX_PDU: usize = 253;
/// Most registers one read request may ask for (FC 0x03 / 0x04, §6.3–6.4).
pub const MAX_READ_REGISTERS: u16 = 125;
/// Most coils or discrete inputs one read request may ask for (FC 0x01 / 0x02, §6.1–6.2).
pub const MAX_READ_BITS: u16 = 2000;
/// Most registers one FC 0x10 request may write (§6.12).
pub const MAX_WRITE_REGISTERS: u16 = 123;
/// Most coils one FC 0x0F request may write (§6.11).
pub const MAX_WRITE_BITS: u16 = 1968;
/// Most registers one FC 0x15 sub-request may carry when it is alone in the request (§6.15:
/// 253 - function code - byte count - 7-byte sub-request header = 244 bytes).
pub const MAX_FILE_RECORD_REGISTERS: u16 = 122;
/// Highest record number in a file (§6.14: 0x0000 to 0x270F).
pub const MAX_RECORD_NUMBER: u16 = 0x270F;

/// The four data tables of the Modbus data model (§4.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Table {
    /// Single bits, read-write (FC 0x01, 0x05, 0x0F).
    Coil,
    /// Single bits, read-only (FC 0x02).
    DiscreteInput,
    /// 16-bit words, read-only (FC 0x04).
    InputRegister,
    /// 16-bit words, read-write (FC 0x03, 0x06, 0x10).
    HoldingRegister,
}

impl Table {
    /// Whether the table holds bits rather than 16-bit registers.
    pub fn is_bits(self) -> bool {
        matches!(self, Self::Coil | Self::DiscreteInput)
    }

    /// Whether a master may write to the table.
    pub fn is_writable(self) -> bool {
        matches!(self, Self::Coil | Self::HoldingRegister)
    }

    /// Most items one read request may cover.
    pub fn max_read(self) -> u16 {
        if self.is_bits() {
            MAX_READ_BITS
        } else {
            MAX_READ_REGISTERS
        }
    }

    /// The name used in profiles.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Coil => "coil",
            Self::DiscreteInput => "discrete-input",
            Self::InputRegister => "input",
            Self::HoldingRegister => "holding",
        }
    }

    /// The read request for `count` items from `address`.
    pub fn read(self, address: u16, count: u16) -> Request {
        match self {
            Self::Coil => Request::ReadCoils { address, count },
            Self::DiscreteInput => Request::ReadDiscreteInputs { address, count },
            Self::InputRegister => Request::ReadInputRegisters { address, count },
            Self::HoldingRegister => Request::ReadHoldingRegisters { address, count },
        }
    }
}

impl fmt::Display for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One sub-request of Read File Record (FC 0x14): `count` registers from `record` of `file`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileRecordRef {
    /// File number, 1 to 0xFFFF.
    pub file: u16,
    /// Starting record number, 0 to 0x270F.
    pub record: u16,
    /// Number of registers.
    pub count: u16,
}

/// One sub-request of Write File Record (FC 0x15), and one group of its response (an echo).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileRecord {
    /// File number, 1 to 0xFFFF.
    pub file: u16,
    /// Starting record number, 0 to 0x270F.
    pub record: u16,
    /// The registers, one per record.
    pub data: Vec<u16>,
}

/// Which objects a Read Device Identification request asks for (FC 0x2B / MEI 0x0E, §6.21).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeviceIdCode {
    /// Objects 0x00–0x02: vendor name, product code, revision (stream access).
    Basic,
    /// Objects 0x03–0x7F (stream access).
    Regular,
    /// Objects 0x80–0xFF, device-specific (stream access).
    Extended,
    /// One object by id (individual access).
    Specific,
}

impl DeviceIdCode {
    /// The code on the wire (1 to 4).
    pub fn code(self) -> u8 {
        match self {
            Self::Basic => 1,
            Self::Regular => 2,
            Self::Extended => 3,
            Self::Specific => 4,
        }
    }

    /// The code read from the wire.
    pub fn from_code(code: u8) -> Option<Self> {
        match code {
            1 => Some(Self::Basic),
            2 => Some(Self::Regular),
            3 => Some(Self::Extended),
            4 => Some(Self::Specific),
            _ => None,
        }
    }
}

/// Object ids of Read Device Identification (§6.21, table "Device identification objects").
pub mod object_id {
    /// VendorName (basic, mandatory).
    pub const VENDOR_NAME: u8 = 0x00;
    /// ProductCode (basic, mandatory).
    pub const PRODUCT_CODE: u8 = 0x01;
    /// MajorMinorRevision (basic, mandatory).
    pub const MAJOR_MINOR_REVISION: u8 = 0x02;
    /// VendorUrl (regular).
    pub const VENDOR_URL: u8 = 0x03;
    /// ProductName (regular).
    pub const PRODUCT_NAME: u8 = 0x04;
    /// ModelName (regular).
    pub const MODEL_NAME: u8 = 0x05;
    /// UserApplicationName (regular).
    pub const USER_APPLICATION_NAME: u8 = 0x06;
}

/// A Read Device Identification response (FC 0x2B / MEI 0x0E).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceIdentification {
    /// The access code the device answered for.
    pub code: DeviceIdCode,
    /// The device's conformity level byte (0x01–0x03, 0x81–0x83).
    pub conformity: u8,
    /// The device has more objects than fit in this response.
    pub more_follows: bool,
    /// Where the next request should start when `more_follows`.
    pub next_object_id: u8,
    /// Objects as (id, value bytes); values are ASCII strings by the specification, but are
    /// untrusted bytes here.
    pub objects: Vec<(u8, Vec<u8>)>,
}

/// A Get Comm Event Log response (FC 0x0C, §6.9; serial line only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommEventLog {
    /// 0xFFFF while the device is still processing a previous command, else 0.
    pub status: u16,
    /// The device's communication event counter.
    pub event_count: u16,
    /// The device's bus message counter.
    pub message_count: u16,
    /// Up to 64 event bytes, newest first.
    pub events: Vec<u8>,
}

/// Sub-functions of Diagnostics (FC 0x08, §6.8) the gateway uses; all are serial-line only.
pub mod diagnostic {
    /// Return Query Data: the device echoes the data.
    pub const RETURN_QUERY_DATA: u16 = 0x0000;
    /// Clear Counters and Diagnostic Register.
    pub const CLEAR_COUNTERS: u16 = 0x000A;
    /// Return Bus Message Count.
    pub const BUS_MESSAGE_COUNT: u16 = 0x000B;
    /// Return Bus Communication Error Count (CRC errors).
    pub const BUS_COMMUNICATION_ERROR_COUNT: u16 = 0x000C;
    /// Return Bus Exception Error Count.
    pub const BUS_EXCEPTION_ERROR_COUNT: u16 = 0x000D;
    /// Return Server Message Count.
    pub const SERVER_MESSAGE_COUNT: u16 = 0x000E;
    /// Return Server No Response Count.
    pub const SERVER_NO_RESPONSE_COUNT: u16 = 0x000F;
    /// Return Server NAK Count.
    pub const SERVER_NAK_COUNT: u16 = 0x0010;
    /// Return Server Busy Count.
    pub const SERVER_BUSY_COUNT: u16 = 0x0011;
    /// Return Bus Character Overrun Count.
    pub const BUS_CHARACTER_OVERRUN_COUNT: u16 = 0x0012;
}

/// A request PDU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// FC 0x01.
    ReadCoils {
        /// First coil.
        address: u16,
        /// Number of coils, 1 to 2000.
        count: u16,
    },
    /// FC 0x02.
    ReadDiscreteInputs {
        /// First input.
        address: u16,
        /// Number of inputs, 1 to 2000.
        count: u16,
    },
    /// FC 0x03.
    ReadHoldingRegisters {
        /// First register.
        address: u16,
        /// Number of registers, 1 to 125.
        count: u16,
    },
    /// FC 0x04.
    ReadInputRegisters {
        /// First register.
        address: u16,
        /// Number of registers, 1 to 125.
        count: u16,
    },
    /// FC 0x05.
    WriteSingleCoil {
        /// The coil.
        address: u16,
        /// On or off.
        value: bool,
    },
    /// FC 0x06.
    WriteSingleRegister {
        /// The register.
        address: u16,
        /// The value.
        value: u16,
    },
    /// FC 0x08 with a two-byte data field (every sub-function the gateway uses).
    Diagnostics {
        /// The sub-function, see [`diagnostic`].
        sub_function: u16,
        /// The data field (0 for the counter queries).
        data: u16,
    },
    /// FC 0x0C.
    GetCommEventLog,
    /// FC 0x0F.
    WriteMultipleCoils {
        /// First coil.
        address: u16,
        /// Values, 1 to 1968.
        values: Vec<bool>,
    },
    /// FC 0x10.
    WriteMultipleRegisters {
        /// First register.
        address: u16,
        /// Values, 1 to 123.
        values: Vec<u16>,
    },
    /// FC 0x14.
    ReadFileRecord(Vec<FileRecordRef>),
    /// FC 0x15.
    WriteFileRecord(Vec<FileRecord>),
    /// FC 0x2B / MEI 0x0E.
    ReadDeviceIdentification {
        /// Which stream (or one object).
        code: DeviceIdCode,
        /// The object to start at.
        object_id: u8,
    },
}

impl Request {
    /// The function code.
    pub fn function_code(&self) -> u8 {
        match self {
            Self::ReadCoils { .. } => 0x01,
            Self::ReadDiscreteInputs { .. } => 0x02,
            Self::ReadHoldingRegisters { .. } => 0x03,
            Self::ReadInputRegisters { .. } => 0x04,
            Self::WriteSingleCoil { .. } => 0x05,
            Self::WriteSingleRegister { .. } => 0x06,
            Self::Diagnostics { .. } => 0x08,
            Self::GetCommEventLog => 0x0C,
            Self::WriteMultipleCoils { .. } => 0x0F,
            Self::WriteMultipleRegisters { .. } => 0x10,
            Self::ReadFileRecord(_) => 0x14,
            Self::WriteFileRecord(_) => 0x15,
            Self::ReadDeviceIdentification { .. } => 0x2B,
        }
    }

    /// Whether the request changes state on the device (and so must not be retried blindly
    /// after an ambiguous failure by anything but the caller who knows it is idempotent).
    pub fn is_write(&self) -> bool {
        matches!(
            self,
            Self::WriteSingleCoil { .. }
                | Self::WriteSingleRegister { .. }
                | Self::WriteMultipleCoils { .. }
                | Self::WriteMultipleRegisters { .. }
                | Self::WriteFileRecord(_)
        ) || matches!(self, Self::Diagnostics { sub_function, .. } if *sub_function == diagnostic::CLEAR_COUNTERS)
    }
}

/// A normal response PDU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    /// FC 0x01: as many bits as requested (padding dropped).
    ReadCoils(Vec<bool>),
    /// FC 0x02: as many bits as requested (padding dropped).
    ReadDiscreteInputs(Vec<bool>),
    /// FC 0x03.
    ReadHoldingRegisters(Vec<u16>),
    /// FC 0x04.
    ReadInputRegisters(Vec<u16>),
    /// FC 0x05: an echo of the request.
    WriteSingleCoil {
        /// The coil.
        address: u16,
        /// The value written.
        value: bool,
    },
    /// FC 0x06: an echo of the request.
    WriteSingleRegister {
        /// The register.
        address: u16,
        /// The value written.
        value: u16,
    },
    /// FC 0x08: the sub-function and its two-byte data (a counter, or the echo).
    Diagnostics {
        /// The sub-function echoed.
        sub_function: u16,
        /// The data field.
        data: u16,
    },
    /// FC 0x0C.
    GetCommEventLog(CommEventLog),
    /// FC 0x0F.
    WriteMultipleCoils {
        /// First coil.
        address: u16,
        /// Number written.
        count: u16,
    },
    /// FC 0x10.
    WriteMultipleRegisters {
        /// First register.
        address: u16,
        /// Number written.
        count: u16,
    },
    /// FC 0x14: one register block per sub-request, in order.
    ReadFileRecord(Vec<Vec<u16>>),
    /// FC 0x15: an echo of the request.
    WriteFileRecord(Vec<FileRecord>),
    /// FC 0x2B / MEI 0x0E.
    ReadDeviceIdentification(DeviceIdentification),
}

/// A Modbus exception code (§7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExceptionCode {
    /// 0x01.
    IllegalFunction,
    /// 0x02.
    IllegalDataAddress,
    /// 0x03.
    IllegalDataValue,
    /// 0x04.
    ServerDeviceFailure,
    /// 0x05: the request was accepted and will take long; poll for completion.
    Acknowledge,
    /// 0x06: the device is busy with a long command; retry later.
    ServerDeviceBusy,
    /// 0x08.
    MemoryParityError,
    /// 0x0A.
    GatewayPathUnavailable,
    /// 0x0B.
    GatewayTargetFailedToRespond,
    /// Any other code a device sends.
    Other(u8),
}

impl ExceptionCode {
    /// The code on the wire.
    pub fn code(self) -> u8 {
        match self {
            Self::IllegalFunction => 0x01,
            Self::IllegalDataAddress => 0x02,
            Self::IllegalDataValue => 0x03,
            Self::ServerDeviceFailure => 0x04,
            Self::Acknowledge => 0x05,
            Self::ServerDeviceBusy => 0x06,
            Self::MemoryParityError => 0x08,
            Self::GatewayPathUnavailable => 0x0A,
            Self::GatewayTargetFailedToRespond => 0x0B,
            Self::Other(code) => code,
        }
    }

    /// The code read from the wire.
    pub fn from_code(code: u8) -> Self {
        match code {
            0x01 => Self::IllegalFunction,
            0x02 => Self::IllegalDataAddress,
            0x03 => Self::IllegalDataValue,
            0x04 => Self::ServerDeviceFailure,
            0x05 => Self::Acknowledge,
            0x06 => Self::ServerDeviceBusy,
            0x08 => Self::MemoryParityError,
            0x0A => Self::GatewayPathUnavailable,
            0x0B => Self::GatewayTargetFailedToRespond,
            other => Self::Other(other),
        }
    }

    /// The specification's name for the code.
    pub fn name(self) -> &'static str {
        match self {
            Self::IllegalFunction => "illegal function",
            Self::IllegalDataAddress => "illegal data address",
            Self::IllegalDataValue => "illegal data value",
            Self::ServerDeviceFailure => "server device failure",
            Self::Acknowledge => "acknowledge",
            Self::ServerDeviceBusy => "server device busy",
            Self::MemoryParityError => "memory parity error",
            Self::GatewayPathUnavailable => "gateway path unavailable",
            Self::GatewayTargetFailedToRespond => "gateway target device failed to respond",
            Self::Other(_) => "unknown exception",
        }
    }
}

impl fmt::Display for ExceptionCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Modbus exception 0x{:02X} ({})",
            self.code(),
            self.name()
        )
    }
}

/// The device's answer to a request: a normal response or an exception.
pub type Answer = Result<Response, ExceptionCode>;

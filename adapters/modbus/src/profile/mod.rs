//! The `[modbus]` section of a device profile: where each parameter lives in the device's
//! register map, how it is encoded, and how identification, actions, firmware and logs map onto
//! registers and file records.
//!
//! Addresses are PDU addresses, counted from 0, as on the wire. A manufacturer map that says
//! "40001" or "30001" means holding / input register 0 (subtract 40001 / 30001); one that says
//! "register 1" usually means address 0. Hex (`0x0156`) is allowed anywhere a number is.

use std::collections::BTreeMap;
use std::time::Duration;

use iotmc_adapter::serde_duration;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::frame::Table;

mod check;
#[cfg(test)]
pub(crate) mod tests;

/// The `[modbus]` section of a device profile.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ModbusSection {
    /// Byte order inside each register for this device: `big` (default, as the specification
    /// says) or `little`. A point may override it.
    #[serde(default)]
    pub byte_order: Order,
    /// Order of the registers of a value that spans several: `big` (default, most significant
    /// register first) or `little`. A point may override it.
    #[serde(default)]
    pub word_order: Order,
    /// Largest gap, in registers or bits, one coalesced read may span to cover two points of
    /// the same table (default 8). Unmapped registers inside the gap are read and ignored; set 0
    /// for devices that answer exception 02 for unmapped registers.
    #[serde(default = "default_max_gap")]
    pub max_gap: u16,
    /// Most registers one read may ask for (default and maximum 125). Some devices need less.
    #[serde(default = "default_max_read_registers")]
    pub max_read_registers: u16,
    /// Most coils or discrete inputs one read may ask for (default and maximum 2000).
    #[serde(default = "default_max_read_bits")]
    pub max_read_bits: u16,
    /// Which function writes a single holding register: `auto` (default; FC 0x06 for one
    /// register, FC 0x10 for more) or `multiple` (always FC 0x10, for devices such as the
    /// Eastron meters that implement only FC 0x10).
    #[serde(default)]
    pub write_function: WriteFunction,
    /// Where each parameter of the common part lives, by parameter name. Every parameter needs
    /// one.
    #[serde(default)]
    pub parameters: BTreeMap<String, Point>,
    /// How the device says what it is.
    #[serde(default)]
    pub identity: IdentityMap,
    /// How each action of the common part is carried out, by action name. Every action needs
    /// one.
    #[serde(default)]
    pub actions: BTreeMap<String, ActionMap>,
    /// How firmware is transferred (required when the common part's `firmware.method` is
    /// `file-record`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub firmware: Option<FirmwareMap>,
    /// Where the device's own event log is (required when the common part's `logs.method` is
    /// `register-ring` or `file-record`; `serial-diagnostics` needs none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logs: Option<LogMap>,
    /// On Modbus RTU, also read the serial-line diagnostics into the log: the communication
    /// event log (FC 0x0C) and the diagnostic counters (FC 0x08). Default `false`; only for
    /// devices that implement them. Ignored on Modbus TCP.
    #[serde(default)]
    pub serial_diagnostics: bool,
}

fn default_max_gap() -> u16 {
    8
}

fn default_max_read_registers() -> u16 {
    crate::frame::MAX_READ_REGISTERS
}

fn default_max_read_bits() -> u16 {
    crate::frame::MAX_READ_BITS
}

/// A data table, in the words profiles use.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum TableName {
    /// Coils (FC 0x01 read, 0x05 / 0x0F write).
    Coil,
    /// Discrete inputs (FC 0x02).
    DiscreteInput,
    /// Input registers (FC 0x04).
    Input,
    /// Holding registers (FC 0x03 read, 0x06 / 0x10 write).
    Holding,
}

impl From<TableName> for Table {
    fn from(name: TableName) -> Self {
        match name {
            TableName::Coil => Table::Coil,
            TableName::DiscreteInput => Table::DiscreteInput,
            TableName::Input => Table::InputRegister,
            TableName::Holding => Table::HoldingRegister,
        }
    }
}

/// Byte order inside a register, or register order inside a value.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Order {
    /// Most significant first (the specification's order).
    #[default]
    Big,
    /// Least significant first.
    Little,
}

/// Which function writes one holding register.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum WriteFunction {
    /// FC 0x06 for one register, FC 0x10 for several.
    #[default]
    Auto,
    /// Always FC 0x10.
    Multiple,
}

/// How the registers of a point encode its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Encoding {
    /// One bit (coils and discrete inputs; or a register bit with `mask`).
    Bool,
    /// Unsigned 16-bit, one register.
    U16,
    /// Signed 16-bit, one register.
    I16,
    /// Unsigned 32-bit, two registers.
    U32,
    /// Signed 32-bit, two registers.
    I32,
    /// IEEE 754 single precision, two registers.
    F32,
    /// Unsigned 64-bit, four registers.
    U64,
    /// Signed 64-bit, four registers.
    I64,
    /// IEEE 754 double precision, four registers.
    F64,
    /// ASCII text, two characters per register, padded with NUL or space; `count` registers.
    String,
}

impl Encoding {
    /// Registers a value of this encoding takes; `None` for strings (they take `count`) and
    /// `bool` (one bit, or one register with a mask).
    pub fn registers(self) -> Option<u16> {
        match self {
            Self::U16 | Self::I16 => Some(1),
            Self::U32 | Self::I32 | Self::F32 => Some(2),
            Self::U64 | Self::I64 | Self::F64 => Some(4),
            Self::Bool | Self::String => None,
        }
    }
}

/// Where a value lives and how it is encoded: a parameter, an identity field, a status register.
///
/// The value seen by controllers is `raw * scale + offset` (after `mask`, and looked up in
/// `map` for enum parameters); writes apply the inverse and refuse values that do not land on
/// a raw integer within the encoding's range.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Point {
    /// The data table.
    pub table: TableName,
    /// PDU address of the first register or bit, 0 to 65535.
    pub address: u16,
    /// How the value is encoded. Default: `bool` for coils and discrete inputs, `u16` for
    /// registers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoding: Option<Encoding>,
    /// Registers the value takes: required for `string`, otherwise implied by the encoding
    /// (and checked against it when given).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u16>,
    /// Overrides the section's `byte_order` for this point.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub byte_order: Option<Order>,
    /// Overrides the section's `word_order` for this point.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub word_order: Option<Order>,
    /// Multiplier from raw to engineering units (default 1), e.g. `0.1` for tenths.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale: Option<f64>,
    /// Added after scaling (default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<f64>,
    /// Bits of a 16-bit register that hold the value; the masked bits are shifted down to bit
    /// 0. With a one-bit mask the value is a `bool`. Masked points are read-modify-written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mask: Option<u16>,
    /// For `enum` parameters: each member name and the raw value that stands for it.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub map: BTreeMap<String, i64>,
}

impl Point {
    /// The point's data table.
    pub fn table(&self) -> Table {
        self.table.into()
    }

    /// The encoding, with the default filled in: `bool` for coils and discrete inputs, `u16`
    /// for registers.
    pub fn resolved_encoding(&self) -> Encoding {
        self.encoding.unwrap_or(if self.table().is_bits() {
            Encoding::Bool
        } else {
            Encoding::U16
        })
    }

    /// Registers (or bits, for coils and discrete inputs) the value takes: one bit, `count`
    /// registers for a string, one register for a `bool` register, otherwise the encoding's.
    pub fn span(&self) -> u16 {
        if self.table().is_bits() {
            return 1;
        }
        match self.resolved_encoding() {
            Encoding::String => self.count.unwrap_or(1).max(1),
            encoding => encoding.registers().unwrap_or(1),
        }
    }
}

/// How the device says what it is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IdentityMap {
    /// Ask the device with Read Device Identification (FC 0x2B / MEI 0x0E), following every
    /// "more follows" through the basic, regular and extended streams (default `true`). When
    /// the device answers exception 01 the registers below are used.
    #[serde(default = "default_true")]
    pub device_identification: bool,
    /// Extended object id (0x80–0xFF) where the device keeps its serial number, if it does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serial_object: Option<u8>,
    /// Register holding the serial number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serial: Option<Point>,
    /// Register holding the running firmware version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub firmware_version: Option<Point>,
    /// Register holding the hardware revision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hardware_version: Option<Point>,
}

impl Default for IdentityMap {
    fn default() -> Self {
        Self {
            device_identification: true,
            serial_object: None,
            serial: None,
            firmware_version: None,
            hardware_version: None,
        }
    }
}

fn default_true() -> bool {
    true
}

/// One write of an action or of a firmware step: a fixed value, or an action argument.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WriteStep {
    /// `coil` or `holding`.
    pub table: TableName,
    /// PDU address.
    pub address: u16,
    /// The raw value to write: a bool for coils, an integer (`u16` unless `encoding` says
    /// otherwise) for registers. Exactly one of `value` and `argument`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<RawValue>,
    /// The name of an action argument whose value is written (encoded by `encoding`, `scale`
    /// and `offset`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub argument: Option<String>,
    /// How the value is encoded (default `bool` for coils, `u16` for registers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoding: Option<Encoding>,
    /// Multiplier from raw to the argument's units (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale: Option<f64>,
    /// Added after scaling (default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<f64>,
}

/// A raw value in a profile: a coil state or a register integer.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum RawValue {
    /// A coil state.
    Bool(bool),
    /// A register value.
    Int(i64),
}

/// How one action of the common part is carried out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ActionMap {
    /// Writes carried out in order. Exception 05 (acknowledge) or 06 (busy) to the last write
    /// means "accepted, in progress": the link then polls `confirm` until the action's timeout.
    pub writes: Vec<WriteStep>,
    /// After the writes, poll this register until it shows `done` (or one of `failed`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirm: Option<Confirm>,
    /// The device restarts (reboot, factory reset): the action is reported accepted once the
    /// writes are, and the link reports the device going offline and coming back.
    #[serde(default)]
    pub restarts: bool,
    /// Values read after the action finished and returned as its output, by name (e.g. a
    /// self-test result code).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub output: BTreeMap<String, Point>,
}

/// A status register polled until an action has finished.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Confirm {
    /// The data table.
    pub table: TableName,
    /// PDU address.
    pub address: u16,
    /// Bits of the register that hold the status (default all).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mask: Option<u16>,
    /// The raw (masked) value that means "finished, succeeded".
    pub done: i64,
    /// Raw values that mean "finished, failed".
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failed: Vec<i64>,
    /// Time between polls (default `500ms`).
    #[serde(default = "default_confirm_interval", with = "serde_duration")]
    #[schemars(with = "String")]
    pub interval: Duration,
}

fn default_confirm_interval() -> Duration {
    Duration::from_millis(500)
}

/// How firmware moves to the device by file records (FC 0x15, read back with FC 0x14).
///
/// The image is cut into registers (big-endian byte pairs, the last one padded with 0x00) and
/// written as consecutive records starting at record 0 of `first_file`; after
/// `records_per_file` records the next file number continues.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FirmwareMap {
    /// File number where the image starts (default 1).
    #[serde(default = "default_first_file")]
    pub first_file: u16,
    /// Records per file (default and maximum 10000, record numbers 0 to 9999).
    #[serde(default = "default_records_per_file")]
    pub records_per_file: u16,
    /// Registers per Write File Record sub-request (default and maximum 122).
    #[serde(default = "default_chunk_registers")]
    pub chunk_registers: u16,
    /// Written before the transfer with the image size in bytes (a `u32` point).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<Point>,
    /// How the device's copy is checked after the transfer: `read-back` (FC 0x14 of every
    /// record), `crc32` (the device's CRC-32/ISO-HDLC of the image in the `digest` point, two
    /// registers), `sha256` (the device's SHA-256 in the `digest` point, 16 registers) or
    /// `none` (the gateway's own SHA-256 check of the image only).
    #[serde(default)]
    pub verify: Verify,
    /// Where the device reports its digest of the received image (for `crc32` and `sha256`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<Point>,
    /// Where the running firmware version is read (a `string`, or an integer shown as is).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub running_version: Option<Point>,
    /// The register that activates the transferred image: `test` boots it once (two-bank
    /// devices revert unless it is confirmed), `permanent` installs it for good.
    pub activate: Activate,
    /// The bank registers of a two-bank device; leave out for a device without banks (and set
    /// the common part's `firmware.dual_bank` to match).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub banks: Option<BankMap>,
}

fn default_first_file() -> u16 {
    1
}

fn default_records_per_file() -> u16 {
    crate::frame::MAX_RECORD_NUMBER + 1
}

fn default_chunk_registers() -> u16 {
    crate::frame::MAX_FILE_RECORD_REGISTERS
}

/// How the device's copy of an image is checked.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Verify {
    /// Read every record back with FC 0x14 and compare.
    #[default]
    ReadBack,
    /// The device's CRC-32 of the image.
    Crc32,
    /// The device's SHA-256 of the image.
    Sha256,
    /// No device-side check.
    None,
}

/// The register that activates a transferred image.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Activate {
    /// `holding` or `coil`.
    pub table: TableName,
    /// PDU address.
    pub address: u16,
    /// Raw value for "boot the new image once, in test mode" (two-bank devices).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test: Option<i64>,
    /// Raw value for "install the new image for good".
    pub permanent: i64,
}

/// The bank registers of a two-bank device.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BankMap {
    /// The bank the device runs now (raw 0 or 1).
    pub active: Point,
    /// Written with the standby bank number (0 or 1) before a transfer, for devices that are
    /// told which bank to receive into; leave out when the device picks its standby bank.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub select: Option<Point>,
    /// The version held in bank 0 and bank 1, in that order (two points).
    pub versions: Vec<Point>,
    /// The boot state: raw `confirmed` when the running image is kept, `testing` while it runs
    /// on probation and will be reverted unless confirmed.
    pub state: BankState,
    /// Confirms the running test image.
    pub confirm: WriteStep,
    /// Returns to the other bank's image (the device restarts).
    pub revert: WriteStep,
}

/// The boot-state register of a two-bank device.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BankState {
    /// The data table.
    pub table: TableName,
    /// PDU address.
    pub address: u16,
    /// Raw value: the running image is confirmed (default 0).
    #[serde(default)]
    pub confirmed: i64,
    /// Raw value: the running image is on test and reverts unless confirmed (default 1).
    #[serde(default = "default_testing")]
    pub testing: i64,
}

fn default_testing() -> i64 {
    1
}

/// Where the device keeps its event log: a ring of registers (common part `logs.method =
/// "register-ring"`, with `table` and `address`) or consecutive file records (`logs.method =
/// "file-record"`, with `file`).
///
/// Every entry has the same layout, `entry_registers` long: registers 0–1 the entry's
/// sequence number (u32, counting up by one per entry, never 0 for a written entry), 2–3 its
/// time (u32 seconds since 1970 UTC, 0 when the device keeps no clock), 4 an event code (u16),
/// 5 a severity (u16, syslog 0–7; larger values read as `informational`). Registers from 6 on,
/// if any, hold ASCII text, two characters per register (high byte first), NUL-padded; the
/// record's message is the code's text from `codes` (or `event <code>`) followed by that text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LogMap {
    /// `input` or `holding` (register ring).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table: Option<TableName>,
    /// First register of entry 0 (register ring).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<u16>,
    /// File number holding the entries from record 0 (file records).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<u16>,
    /// Entries the device keeps; entry `n` of the sequence is at slot `n % entries`.
    pub entries: u16,
    /// Registers per entry (at least 6).
    #[serde(default = "default_entry_registers")]
    pub entry_registers: u16,
    /// The sequence number of the newest entry (a `u16` or `u32` point; 0 = empty log).
    pub newest: Point,
    /// Written to clear the log, if the device allows it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clear: Option<WriteStep>,
    /// Text for event codes, e.g. `{ "17" = "supply fan failure" }`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub codes: BTreeMap<String, String>,
}

fn default_entry_registers() -> u16 {
    6
}

/// Firmware methods of the common part this adapter carries out.
pub const FIRMWARE_METHODS: [&str; 1] = ["file-record"];
/// Log methods of the common part this adapter carries out.
pub const LOG_METHODS: [&str; 3] = ["register-ring", "file-record", "serial-diagnostics"];

/// A profile's `[modbus]` section, checked against its common part.
///
/// Checks (every error listed, each located at its field): every parameter, action and health
/// check has a mapping and every mapping a declaration; addresses and counts stay inside the
/// 16-bit address space; the encoding fits the register count and the parameter's type (`bool`
/// only for bool parameters or one-bit masks, `string` only for string parameters, enum maps
/// covering every member); writable parameters live in writable tables; writable ranges do not
/// overlap each other; scale is finite and not 0; action writes go to writable tables with
/// exactly one of `value` and `argument` (and the argument is declared); firmware and log maps
/// are present exactly when the common part's method needs them and fit the limits (122
/// registers per record write, 10000 records per file); bank maps match `firmware.dual_bank`.
pub fn load_section(
    profile: &iotmc_adapter::Profile,
) -> Result<ModbusSection, Vec<iotmc_adapter::LocatedError>> {
    check::load_section(profile)
}

impl WriteStep {
    /// The point the step writes to, encoded by the step's encoding, scale and offset.
    pub fn point(&self) -> Point {
        Point {
            table: self.table,
            address: self.address,
            encoding: self.encoding,
            count: None,
            byte_order: None,
            word_order: None,
            scale: self.scale,
            offset: self.offset,
            mask: None,
            map: BTreeMap::new(),
        }
    }
}

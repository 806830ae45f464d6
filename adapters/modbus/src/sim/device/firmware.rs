//! The simulated device's firmware: a staging buffer filled by Write File Record, a digest of
//! it, and one or two banks that really boot the staged image, fail to boot a bad one, and
//! roll back a test image that is not confirmed in time.
//!
//! A simulated image starts with the ASCII header `SIMFW:<version>\n`, or
//! `SIMFW:<version>;unhealthy\n` for an image that boots but makes the profile's first health
//! check fail while it runs.

use std::time::Duration;

use iotmc_adapter::{Value, ValueType};
use sha2::{Digest, Sha256};
use tokio::time::Instant;

use super::tables::Tables;
use crate::encoding::internal_parameter;
use crate::frame::{ExceptionCode, FileRecord, FileRecordRef, Table};
use crate::profile::{Encoding, FirmwareMap, ModbusSection, Point, RawValue, Verify, WriteStep};

/// How long the device takes for things, set by the test.
#[derive(Debug, Clone, Copy)]
pub(super) struct Timing {
    pub(super) reboot: Duration,
    pub(super) action: Duration,
    pub(super) confirm_window: Duration,
}

#[derive(Debug, Clone, PartialEq)]
struct Installed {
    version: String,
    healthy: bool,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum BootState {
    Confirmed,
    /// On probation until the instant; reverted unless confirmed before.
    Testing(Instant),
}

/// A boot under way: at `at` the device comes back running `bank`.
#[derive(Debug, Clone)]
struct Boot {
    at: Instant,
    bank: usize,
    testing: bool,
    install: Option<Installed>,
}

#[derive(Debug)]
pub(super) struct Firmware {
    map: FirmwareMap,
    dual_bank: bool,
    max_image_size: u64,
    staging: Vec<u8>,
    /// The size the master declared through the `size` point, if it did.
    size: Option<u64>,
    /// The end of the furthest record written since the staging buffer was cleared.
    received: u64,
    digest: Option<Vec<u16>>,
    banks: [Option<Installed>; 2],
    active: usize,
    state: BootState,
    selected: Option<usize>,
    boot: Option<Boot>,
}

impl Firmware {
    pub(super) fn new(
        map: FirmwareMap,
        dual_bank: bool,
        max_image_size: u64,
        version: String,
        tables: &mut Tables,
    ) -> Self {
        let firmware = Self {
            dual_bank,
            max_image_size,
            staging: Vec::new(),
            size: None,
            received: 0,
            digest: None,
            banks: [
                Some(Installed {
                    version,
                    healthy: true,
                }),
                None,
            ],
            active: 0,
            state: BootState::Confirmed,
            selected: None,
            boot: None,
            map,
        };
        for point in firmware.points() {
            tables.map(point.table(), point.address, point.span());
        }
        if let Some((digest, registers)) = firmware
            .map
            .digest
            .as_ref()
            .zip(firmware.map.digest_registers())
        {
            tables.map(digest.table(), digest.address, registers);
        }
        let activate = &firmware.map.activate;
        tables.map(activate.table.into(), activate.address, 1);
        if let Some(banks) = &firmware.map.banks {
            tables.map(banks.state.table.into(), banks.state.address, 1);
            for step in [&banks.confirm, &banks.revert] {
                tables.map(step.table.into(), step.address, step_span(step));
            }
        }
        firmware
    }

    fn points(&self) -> Vec<&Point> {
        let mut points: Vec<&Point> = [&self.map.size, &self.map.running_version]
            .into_iter()
            .flatten()
            .collect();
        if let Some(banks) = &self.map.banks {
            points.push(&banks.active);
            points.extend(&banks.select);
            points.extend(&banks.versions);
        }
        points
    }

    /// The addresses a master may write: size, bank select, activate, confirm and revert.
    pub(super) fn writable(&self) -> Vec<(Table, u16, u16)> {
        let mut out = Vec::new();
        if let Some(size) = &self.map.size {
            out.push((size.table(), size.address, size.span()));
        }
        out.push((self.map.activate.table.into(), self.map.activate.address, 1));
        if let Some(banks) = &self.map.banks {
            if let Some(select) = &banks.select {
                out.push((select.table(), select.address, select.span()));
            }
            for step in [&banks.confirm, &banks.revert] {
                out.push((step.table.into(), step.address, step_span(step)));
            }
        }
        out
    }

    pub(super) fn running_version(&self) -> String {
        self.banks[self.active]
            .as_ref()
            .map(|i| i.version.clone())
            .unwrap_or_default()
    }

    pub(super) fn active_bank(&self) -> u8 {
        u8::from(self.active == 1)
    }

    pub(super) fn running_unhealthy(&self) -> bool {
        self.banks[self.active].as_ref().is_some_and(|i| !i.healthy)
    }

    /// Where the staging buffer holds record `record` of `file`, in bytes.
    fn offset(&self, file: u16, record: u16) -> Result<u64, ExceptionCode> {
        if file < self.map.first_file || record >= self.map.records_per_file {
            return Err(ExceptionCode::IllegalDataAddress);
        }
        let index = u64::from(file - self.map.first_file) * u64::from(self.map.records_per_file)
            + u64::from(record);
        Ok(index * 2)
    }

    pub(super) fn write_records(&mut self, records: &[FileRecord]) -> Result<(), ExceptionCode> {
        let mut placed = Vec::new();
        for record in records {
            let start = self.offset(record.file, record.record)?;
            let end = start + 2 * record.data.len() as u64;
            if end > self.max_image_size {
                return Err(ExceptionCode::IllegalDataAddress);
            }
            placed.push((start, end, record));
        }
        for (start, end, record) in placed {
            let (start, end) = (
                usize::try_from(start).unwrap_or(usize::MAX),
                usize::try_from(end).unwrap_or(usize::MAX),
            );
            if self.staging.len() < end {
                self.staging.resize(end, 0);
            }
            let bytes: Vec<u8> = record.data.iter().flat_map(|w| w.to_be_bytes()).collect();
            if let Some(place) = self.staging.get_mut(start..end) {
                place.copy_from_slice(&bytes);
            }
            self.received = self.received.max(end as u64);
        }
        self.digest = None;
        Ok(())
    }

    pub(super) fn read_records(
        &self,
        reference: &FileRecordRef,
    ) -> Result<Vec<u16>, ExceptionCode> {
        let start = self.offset(reference.file, reference.record)?;
        let end = start + 2 * u64::from(reference.count);
        if end > self.max_image_size {
            return Err(ExceptionCode::IllegalDataAddress);
        }
        Ok((start..end)
            .step_by(2)
            .map(|at| {
                let byte = |i: u64| {
                    usize::try_from(i)
                        .ok()
                        .and_then(|i| self.staging.get(i))
                        .copied()
                        .unwrap_or(0)
                };
                u16::from_be_bytes([byte(at), byte(at + 1)])
            })
            .collect())
    }

    fn image_size(&self) -> u64 {
        self.size.unwrap_or(self.received)
    }

    /// The staged image, if it is complete and starts with a valid header.
    fn staged_image(&self) -> Option<Installed> {
        let size = usize::try_from(self.image_size()).ok()?;
        if size == 0 || self.received < self.image_size() {
            return None;
        }
        let image = self.staging.get(..size)?;
        let header = image.strip_prefix(b"SIMFW:")?;
        let line = header
            .split(|b| *b == b'\n')
            .next()
            .filter(|_| header.contains(&b'\n'))?;
        let line = std::str::from_utf8(line).ok()?;
        let (version, healthy) = match line.strip_suffix(";unhealthy") {
            Some(version) => (version, false),
            None => (line, true),
        };
        let valid = !version.is_empty()
            && version.len() <= 32
            && version.bytes().all(|b| b.is_ascii_graphic());
        valid.then(|| Installed {
            version: version.to_owned(),
            healthy,
        })
    }

    /// Handles a master's write that covered `address .. address + count` of `table`, after
    /// it was stored in `tables`. Returns when the device comes back if it restarts.
    pub(super) fn on_write(
        &mut self,
        section: &ModbusSection,
        tables: &Tables,
        (table, address, count): (Table, u16, u16),
        now: Instant,
        timing: Timing,
    ) -> Result<Option<Instant>, ExceptionCode> {
        let covers = |t: Table, a: u16, n: u16| {
            t == table
                && u32::from(a) < u32::from(address) + u32::from(count)
                && u32::from(address) < u32::from(a) + u32::from(n)
        };
        if let Some(size) = &self.map.size
            && covers(size.table(), size.address, size.span())
        {
            let value = tables
                .get_value(
                    section,
                    size,
                    &internal_parameter("firmware.size", ValueType::Int),
                )
                .map_err(|_| ExceptionCode::IllegalDataValue)?;
            let size = match value {
                Value::Int(n) => u64::try_from(n).map_err(|_| ExceptionCode::IllegalDataValue)?,
                _ => return Err(ExceptionCode::IllegalDataValue),
            };
            if size > self.max_image_size {
                return Err(ExceptionCode::IllegalDataValue);
            }
            if self.size != Some(size) {
                self.staging = vec![0; usize::try_from(size).unwrap_or(0)];
                self.received = 0;
                self.size = Some(size);
                self.digest = None;
            }
        }
        let standby = 1 - self.active;
        if let Some(banks) = self.map.banks.clone() {
            if let Some(select) = &banks.select
                && covers(select.table(), select.address, select.span())
            {
                let value = tables.get_value(
                    section,
                    select,
                    &internal_parameter("banks.select", ValueType::Int),
                );
                if value != Ok(Value::Int(i64::from(u8::from(standby == 1)))) {
                    return Err(ExceptionCode::IllegalDataValue);
                }
                self.selected = Some(standby);
            }
            if step_written(section, tables, &banks.confirm, covers)
                && let BootState::Testing(_) = self.state
            {
                self.state = BootState::Confirmed;
            }
            if step_written(section, tables, &banks.revert, covers) {
                if self.banks[standby].is_none() {
                    return Err(ExceptionCode::IllegalDataValue);
                }
                return Ok(Some(self.start_boot(now, timing, standby, false, None)));
            }
        }
        let activate = self.map.activate.clone();
        let activate_table = Table::from(activate.table);
        if covers(activate_table, activate.address, 1) {
            let raw = if activate_table.is_bits() {
                i64::from(tables.bit(activate_table, activate.address))
            } else {
                i64::from(tables.words(activate_table, activate.address, 1)[0])
            };
            let testing = if activate.test == Some(raw) && self.dual_bank {
                true
            } else if raw == activate.permanent {
                false
            } else {
                return Err(ExceptionCode::IllegalDataValue);
            };
            let bank = if self.dual_bank { standby } else { self.active };
            return Ok(Some(match self.staged_image() {
                Some(image) => self.start_boot(now, timing, bank, testing, Some(image)),
                // The new image fails to boot: the device comes back on the bank it ran.
                None => self.start_boot(now, timing, self.active, false, None),
            }));
        }
        Ok(None)
    }

    fn start_boot(
        &mut self,
        now: Instant,
        timing: Timing,
        bank: usize,
        testing: bool,
        install: Option<Installed>,
    ) -> Instant {
        let at = now + timing.reboot;
        self.boot = Some(Boot {
            at,
            bank,
            testing,
            install,
        });
        at
    }

    /// The device restarts for another reason (a reboot action): a test image is reverted.
    pub(super) fn on_restart(&mut self, now: Instant, timing: Timing) {
        if let BootState::Testing(_) = self.state {
            let other = 1 - self.active;
            self.start_boot(now, timing, other, false, None);
        }
    }

    /// Carries out what time has brought: a boot finishing, a test image reverting. Returns
    /// until when the device is away, if it is.
    pub(super) fn tick(&mut self, now: Instant, timing: Timing) -> Option<Instant> {
        loop {
            if let Some(boot) = self.boot.take_if(|b| b.at <= now) {
                if let Some(image) = boot.install {
                    self.banks[boot.bank] = Some(image);
                }
                self.active = boot.bank;
                self.selected = None;
                self.state = if boot.testing {
                    BootState::Testing(boot.at + timing.confirm_window)
                } else {
                    BootState::Confirmed
                };
                continue;
            }
            if let BootState::Testing(until) = self.state
                && until <= now
                && self.boot.is_none()
            {
                let other = 1 - self.active;
                self.state = BootState::Confirmed;
                self.start_boot(until, timing, other, false, None);
                continue;
            }
            return self.boot.as_ref().map(|b| b.at);
        }
    }

    /// Writes what the master reads (versions, active bank, state, size) into the tables.
    pub(super) fn publish(&self, section: &ModbusSection, tables: &mut Tables) {
        let version = |bank: usize| {
            self.banks[bank]
                .as_ref()
                .map(|i| i.version.clone())
                .unwrap_or_default()
        };
        if let Some(point) = &self.map.running_version {
            put_text(section, tables, point, &version(self.active));
        }
        if let Some(point) = &self.map.size {
            let size = i64::try_from(self.image_size()).unwrap_or(0);
            let _ = tables.put_value(
                section,
                point,
                &internal_parameter("firmware.size", ValueType::Int),
                &Value::Int(size),
            );
        }
        if let Some(banks) = &self.map.banks {
            let int = internal_parameter("banks", ValueType::Int);
            let active = i64::from(self.active_bank());
            let _ = tables.put_value(section, &banks.active, &int, &Value::Int(active));
            if let Some(select) = &banks.select {
                let selected = self.selected.unwrap_or(1 - self.active);
                let _ =
                    tables.put_value(section, select, &int, &Value::Int(i64::from(selected == 1)));
            }
            for (bank, point) in banks.versions.iter().enumerate().take(2) {
                put_text(section, tables, point, &version(bank));
            }
            let raw = match self.state {
                BootState::Confirmed => banks.state.confirmed,
                BootState::Testing(_) => banks.state.testing,
            };
            let table = Table::from(banks.state.table);
            if table.is_bits() {
                tables.put_bit(table, banks.state.address, raw != 0);
            } else {
                tables.put_words(
                    table,
                    banks.state.address,
                    &[u16::try_from(raw).unwrap_or(0)],
                );
            }
        }
    }

    /// The digest registers, computed when first read after the staging buffer changed.
    pub(super) fn digest_words(&mut self) -> Option<(Table, u16, Vec<u16>)> {
        let point = self.map.digest.as_ref()?;
        let (table, address) = (point.table(), point.address);
        if self.digest.is_none() {
            let size = usize::try_from(self.image_size()).unwrap_or(usize::MAX);
            let data = self.staging.get(..size).unwrap_or(&self.staging);
            self.digest = match self.map.verify {
                Verify::Crc32 => {
                    let crc = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC).checksum(data);
                    Some(vec![(crc >> 16) as u16, crc as u16])
                }
                Verify::Sha256 => Some(
                    Sha256::digest(data)
                        .chunks_exact(2)
                        .map(|pair| u16::from_be_bytes([pair[0], pair[1]]))
                        .collect(),
                ),
                Verify::ReadBack | Verify::None => None,
            };
        }
        self.digest.clone().map(|words| (table, address, words))
    }
}

/// Writes text into a point: as text for a `string` point, else the number its digits make
/// ("SIM-0042" → 42, "2.0.1" → 201), as a device that keeps it as a number would.
pub(super) fn put_text(section: &ModbusSection, tables: &mut Tables, point: &Point, text: &str) {
    let value = if point.resolved_encoding() == Encoding::String {
        (ValueType::String, Value::Text(text.to_owned()))
    } else {
        let digits: String = text.chars().filter(char::is_ascii_digit).collect();
        (ValueType::Int, Value::Int(digits.parse().unwrap_or(0)))
    };
    let parameter = internal_parameter("text", value.0);
    // Text too long for its point is not shown; the point keeps what it held.
    let _ = tables.put_value(section, point, &parameter, &value.1);
}

pub(super) fn step_span(step: &WriteStep) -> u16 {
    if Table::from(step.table).is_bits() {
        1
    } else {
        step.encoding.and_then(Encoding::registers).unwrap_or(1)
    }
}

/// Whether the write covered `step` and left the step's fixed value there (any value, for a
/// step that writes an argument).
pub(super) fn step_written(
    section: &ModbusSection,
    tables: &Tables,
    step: &WriteStep,
    covers: impl Fn(Table, u16, u16) -> bool,
) -> bool {
    let table = Table::from(step.table);
    if !covers(table, step.address, step_span(step)) {
        return false;
    }
    match step.value {
        None => true,
        Some(RawValue::Bool(b)) if table.is_bits() => tables.bit(table, step.address) == b,
        Some(RawValue::Int(i)) if table.is_bits() => tables.bit(table, step.address) == (i != 0),
        Some(raw) => {
            // Encoded as the link encodes it: the step's encoding, scale and the section's orders.
            let point = step.point();
            let (value, value_type) = match raw {
                RawValue::Bool(b) => (Value::Bool(b), ValueType::Bool),
                RawValue::Int(i) => (Value::Int(i), ValueType::Int),
            };
            crate::encoding::Codec::new(section, &point)
                .encode_registers(&internal_parameter("step", value_type), &value, None)
                .is_ok_and(|expected| {
                    tables.words(table, step.address, step_span(step)) == expected
                })
        }
    }
}

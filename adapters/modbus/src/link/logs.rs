//! The device's own event log (a register ring or file records), and on RTU the serial-line
//! diagnostics (FC 0x0C comm event log, FC 0x08 counters), as log records.
//!
//! Entry `n` of the sequence is in slot `n % entries` (see [`crate::profile::LogMap`]). A
//! fetch reads the `newest` sequence number, then every entry after the cursor the ring still
//! holds, and checks each entry's own sequence number: one that does not match was
//! overwritten while the gateway read, and is counted as lost with those the ring had already
//! dropped.

mod entry;
mod serial;

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use iotmc_adapter::{
    DeviceLogRecord, LinkError, LogBatch, LogCursor, LogSource, Severity, Value, ValueType,
};

use super::Device;
use super::ops::describe_range;
use crate::address::BusKey;
use crate::driver::Priority;
use crate::frame::{FileRecordRef, MAX_RECORD_NUMBER, Request, Response, Table};
use crate::profile::LogMap;
use entry::{Entry, FIXED_REGISTERS, Window};
use serial::SerialState;

/// Registers one Read File Record request asks for (one sub-request; the answer carries 124
/// at most).
const FILE_READ_REGISTERS: u16 = 120;

/// The log source of a device whose profile declares a log method.
#[derive(Debug)]
pub struct DeviceLog {
    device: Arc<Device>,
    serial: RwLock<SerialState>,
}

/// Where the entries are.
#[derive(Debug, Clone, Copy)]
enum Storage {
    Registers { table: Table, address: u16 },
    File { file: u16 },
}

impl DeviceLog {
    /// The log source, if the profile declares one.
    pub(crate) fn new(device: Arc<Device>) -> Option<Self> {
        device.profile.logs.is_supported().then_some(Self {
            device,
            serial: RwLock::new(SerialState::default()),
        })
    }

    fn diagnostics_only(&self) -> bool {
        self.device.profile.logs.method == "serial-diagnostics"
    }

    /// Whether to add the serial-line diagnostics to a ring fetch.
    fn with_diagnostics(&self) -> bool {
        self.device.section.serial_diagnostics && matches!(self.device.bus.bus(), BusKey::Serial(_))
    }

    fn ring_map(&self) -> Result<(&LogMap, Storage), LinkError> {
        let unsupported = |reason: &str| LinkError::Unsupported {
            operation: "reading the device log".to_owned(),
            reason: reason.to_owned(),
        };
        let map = self
            .device
            .section
            .logs
            .as_ref()
            .ok_or_else(|| unsupported("the profile's [modbus] section has no `logs` map"))?;
        let storage = match (self.device.profile.logs.method.as_str(), map) {
            (
                "file-record",
                LogMap {
                    file: Some(file), ..
                },
            ) => Storage::File { file: *file },
            (
                "register-ring",
                LogMap {
                    table: Some(table),
                    address: Some(address),
                    ..
                },
            ) => Storage::Registers {
                table: (*table).into(),
                address: *address,
            },
            (method, _) => {
                return Err(unsupported(&format!(
                    "the `logs` map does not give what method `{method}` needs"
                )));
            }
        };
        if map.entry_registers < FIXED_REGISTERS || map.entries == 0 {
            return Err(unsupported(
                "the `logs` map declares no entries or entries shorter than 6 registers",
            ));
        }
        Ok((map, storage))
    }

    /// The ring's records after `after` (all it holds for `None`), and the newest sequence.
    async fn ring(&self, after: Option<u64>) -> Result<(Vec<DeviceLogRecord>, u64), LinkError> {
        let (map, storage) = self.ring_map()?;
        let newest = match self
            .device
            .read_point(
                &map.newest,
                ValueType::Int,
                "newest log entry",
                Priority::Management,
            )
            .await?
        {
            Value::Int(n) if n >= 0 => n.unsigned_abs(),
            other => {
                return Err(LinkError::Malformed(format!(
                    "the newest-entry register reads {other}, expected a sequence number"
                )));
            }
        };
        let entries = u64::from(map.entries);
        let window = entry::window(newest, after, entries);
        let size = usize::from(map.entry_registers);
        let mut records: Vec<DeviceLogRecord> = Vec::new();
        // Entries between the cursor and the window count as lost only if the ring holds the
        // window's oldest entry: an empty slot there means the log was cleared meanwhile.
        let mut lost_before = window.lost;
        let mut lost_during = 0;
        // Entries overwritten since the last one read, while the gateway was reading.
        let mut gap = 0;
        for run in entry::runs(window, entries) {
            let mut words = Vec::with_capacity(usize::try_from(run.count).unwrap_or(0) * size);
            for (offset, count) in entry::requests(run, map.entry_registers, self.limit(storage)) {
                words.extend(self.read_words(storage, offset, count).await?);
            }
            for (i, chunk) in words.chunks(size).enumerate() {
                let expected = run.sequence + i as u64;
                match Entry::decode(chunk) {
                    Some(entry) if u64::from(entry.sequence) == expected => {
                        let mut record = entry.record(&map.codes);
                        if gap > 0 {
                            record.fields.insert("lost".to_owned(), gap.to_string());
                            gap = 0;
                        }
                        records.push(record);
                    }
                    // A slot not written since the log was cleared: nothing was lost.
                    Some(entry) if entry.sequence == 0 => {
                        if expected == window.first {
                            lost_before = 0;
                        }
                    }
                    other => {
                        tracing::debug!(
                            device = %self.device.device_id,
                            expected,
                            found = ?other.map(|e| e.sequence),
                            "log entry overwritten while it was read"
                        );
                        lost_during += 1;
                        gap += 1;
                    }
                }
            }
        }
        if lost_during > 0 {
            records.push(lost_record(lost_during, None));
        }
        if lost_before > 0 {
            if let Some(first) = records.first_mut() {
                let lost = first.fields.get("lost").and_then(|l| l.parse::<u64>().ok());
                let lost = lost.unwrap_or(0) + lost_before;
                first.fields.insert("lost".to_owned(), lost.to_string());
            }
            records.insert(0, lost_record(lost_before, Some(window)));
        }
        Ok((records, newest))
    }

    fn limit(&self, storage: Storage) -> u16 {
        match storage {
            Storage::Registers { .. } => self
                .device
                .section
                .max_read_registers
                .clamp(1, crate::frame::MAX_READ_REGISTERS),
            Storage::File { .. } => FILE_READ_REGISTERS,
        }
    }

    /// `count` registers from `offset` registers into the log.
    async fn read_words(
        &self,
        storage: Storage,
        offset: u64,
        count: u16,
    ) -> Result<Vec<u16>, LinkError> {
        let outside = |what: String| {
            LinkError::Malformed(format!(
                "{what}: the log as the profile declares it does not fit the device's address space"
            ))
        };
        let (request, what) = match storage {
            Storage::Registers { table, address } => {
                let start = u64::from(address) + offset;
                let what = format!(
                    "reading log entries from {table} {}",
                    describe_range(u16::try_from(start).unwrap_or(u16::MAX), count)
                );
                if start + u64::from(count) > 0x1_0000 {
                    return Err(outside(what));
                }
                (table.read(start as u16, count), what)
            }
            Storage::File { file } => {
                let what = format!(
                    "reading log entries from file {file} record {offset}..{}",
                    offset + u64::from(count)
                );
                if offset + u64::from(count) > u64::from(MAX_RECORD_NUMBER) + 1 {
                    return Err(outside(what));
                }
                let request = Request::ReadFileRecord(vec![FileRecordRef {
                    file,
                    record: offset as u16,
                    count,
                }]);
                (request, what)
            }
        };
        let words = match self
            .device
            .call(request, Priority::Management, &what)
            .await?
        {
            Response::ReadHoldingRegisters(w) | Response::ReadInputRegisters(w) => w,
            Response::ReadFileRecord(mut groups) if groups.len() == 1 => groups.remove(0),
            other => {
                return Err(LinkError::Malformed(format!(
                    "{what}: unexpected answer {other:?}"
                )));
            }
        };
        if words.len() != usize::from(count) {
            return Err(LinkError::Malformed(format!(
                "{what}: {} registers came back, {count} were asked for",
                words.len()
            )));
        }
        Ok(words)
    }
}

/// The record that says entries were overwritten before the gateway read them.
fn lost_record(count: u64, window: Option<Window>) -> DeviceLogRecord {
    let mut fields = BTreeMap::from([("lost".to_owned(), count.to_string())]);
    if let Some(w) = window {
        fields.insert("first_lost".to_owned(), (w.first - count).to_string());
        fields.insert("last_lost".to_owned(), (w.first - 1).to_string());
    }
    DeviceLogRecord {
        index: None,
        timestamp: None,
        severity: Severity::Warning,
        message: format!("{count} entries were overwritten before they were read"),
        fields,
    }
}

#[async_trait::async_trait]
impl LogSource for DeviceLog {
    async fn fetch(&self, since: Option<LogCursor>) -> Result<LogBatch, LinkError> {
        let mut records = Vec::new();
        let mut next = None;
        if !self.diagnostics_only() {
            let after = match since {
                Some(LogCursor::Index(i)) => Some(i),
                _ => None,
            };
            let (ring, newest) = self.ring(after).await?;
            records = ring;
            if let Some(LogCursor::Time(t)) = since {
                // Unstamped entries cannot be placed after `t`: only stamped ones are kept.
                records.retain(|r| r.timestamp.is_some_and(|at| at > t));
            }
            next = Some(LogCursor::Index(newest));
        }
        if self.diagnostics_only() || self.with_diagnostics() {
            let (diagnostics, count) =
                serial::fetch(&self.device, &self.serial, since.is_none()).await?;
            records.extend(diagnostics);
            if self.diagnostics_only() {
                next = Some(LogCursor::Index(u64::from(count.unwrap_or(0))));
            }
        }
        Ok(LogBatch { records, next })
    }

    async fn clear(&self) -> Result<(), LinkError> {
        let step = self
            .device
            .section
            .logs
            .as_ref()
            .and_then(|m| m.clear.as_ref())
            .ok_or_else(|| LinkError::Unsupported {
                operation: "clearing the device log".to_owned(),
                reason: "the profile declares no clear register (`logs.clear`)".to_owned(),
            })?;
        let what = format!(
            "clearing the device log (write to {} {})",
            Table::from(step.table),
            describe_range(step.address, 1)
        );
        self.device
            .write_step(step, &BTreeMap::new(), &what)
            .await
            .map(|_| ())
    }
}

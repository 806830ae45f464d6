//! The simulated device's own event log: a ring of fixed-size entries in registers or in file
//! records, laid out as [`crate::profile::LogMap`] documents.

use std::time::SystemTime;

use iotmc_adapter::{Severity, Value, ValueType};

use super::tables::Tables;
use crate::encoding::internal_parameter;
use crate::frame::{ExceptionCode, FileRecordRef, Table};
use crate::profile::{LogMap, ModbusSection};

#[derive(Debug)]
pub(super) struct EventLog {
    map: LogMap,
    /// Entries in file records (`logs.method = "file-record"`) rather than registers.
    in_files: bool,
    /// Every slot's registers, slot after slot.
    ring: Vec<u16>,
    /// Sequence number of the newest entry; 0 when empty.
    newest: u32,
    /// The sequence number the next entry gets; never reused, even after a clear.
    next: u32,
}

impl EventLog {
    pub(super) fn new(map: LogMap, in_files: bool, tables: &mut Tables) -> Self {
        let len = usize::from(map.entries) * usize::from(map.entry_registers);
        let log = Self {
            in_files,
            ring: vec![0; len],
            newest: 0,
            next: 1,
            map,
        };
        tables.map(
            log.map.newest.table(),
            log.map.newest.address,
            log.map.newest.span(),
        );
        if let (false, Some(table), Some(address)) = (in_files, log.map.table, log.map.address) {
            tables.map(
                table.into(),
                address,
                u16::try_from(len).unwrap_or(u16::MAX),
            );
        }
        log
    }

    /// The file holding the entries, when they are in file records.
    pub(super) fn file(&self) -> Option<u16> {
        self.in_files.then_some(self.map.file).flatten()
    }

    /// The step that clears the log, if the device has one.
    pub(super) fn clear_step(&self) -> Option<&crate::profile::WriteStep> {
        self.map.clear.as_ref()
    }

    pub(super) fn append(&mut self, severity: Severity, code: u16, text: &str) {
        let seq = self.next;
        self.next = self.next.wrapping_add(1).max(1);
        self.newest = seq;
        let time = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| u32::try_from(d.as_secs()).unwrap_or(u32::MAX));
        let width = usize::from(self.map.entry_registers);
        let mut entry = vec![
            (seq >> 16) as u16,
            seq as u16,
            (time >> 16) as u16,
            time as u16,
            code,
            u16::from(severity.code()),
        ];
        let mut bytes: Vec<u8> = text
            .chars()
            .map(|c| {
                if c.is_ascii_graphic() || c == ' ' {
                    c as u8
                } else {
                    b'?'
                }
            })
            .collect();
        bytes.resize(width.saturating_sub(6) * 2, 0);
        entry.extend(
            bytes
                .chunks_exact(2)
                .map(|pair| u16::from_be_bytes([pair[0], pair[1]])),
        );
        let slot = usize::try_from(seq % u32::from(self.map.entries.max(1))).unwrap_or(0);
        if let Some(place) = self.ring.get_mut(slot * width..(slot + 1) * width) {
            place.copy_from_slice(&entry);
        }
    }

    pub(super) fn clear(&mut self) {
        self.ring.fill(0);
        self.newest = 0;
    }

    /// Writes the ring (for a register ring) and the newest pointer into the tables.
    pub(super) fn publish(&self, section: &ModbusSection, tables: &mut Tables) {
        if let (false, Some(table), Some(address)) =
            (self.in_files, self.map.table, self.map.address)
        {
            tables.put_words(Table::from(table), address, &self.ring);
        }
        let newest = match self.map.newest.resolved_encoding() {
            crate::profile::Encoding::U16 => i64::from(self.newest as u16),
            _ => i64::from(self.newest),
        };
        let parameter = internal_parameter("logs.newest", ValueType::Int);
        // The pointer's encoding was checked to hold a u32 (or a u16, truncated above).
        let _ = tables.put_value(section, &self.map.newest, &parameter, &Value::Int(newest));
    }

    /// One Read File Record sub-request of the log file.
    pub(super) fn read_records(
        &self,
        reference: &FileRecordRef,
    ) -> Result<Vec<u16>, ExceptionCode> {
        let start = usize::from(reference.record);
        self.ring
            .get(start..start + usize::from(reference.count))
            .map(<[u16]>::to_vec)
            .ok_or(ExceptionCode::IllegalDataAddress)
    }
}

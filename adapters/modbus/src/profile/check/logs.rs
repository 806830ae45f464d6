//! Checks of the event-log map against the common part's log declaration.

use super::{Checker, RECORDS_PER_FILE};
use crate::frame::MAX_FILE_RECORD_REGISTERS;
use crate::profile::{Encoding, LOG_METHODS, LogMap, TableName};

impl Checker<'_> {
    pub(super) fn logs(&mut self) {
        let method = self.profile.logs.method.clone();
        let supported = self.profile.logs.is_supported();
        if supported && !LOG_METHODS.contains(&method.as_str()) {
            self.fail(
                "logs.method",
                format!(
                    "`{method}` is not a log method of the Modbus adapter; use one of {}, or `none`",
                    LOG_METHODS.join(", ")
                ),
            );
        }
        let needs_map = matches!(method.as_str(), "register-ring" | "file-record");
        match &self.section.logs {
            None if needs_map => self.fail(
                "modbus.logs",
                format!(
                    "`logs.method = \"{method}\"` needs a `[modbus.logs]` table saying where the entries are"
                ),
            ),
            Some(_) if !needs_map => self.fail(
                "modbus.logs",
                format!(
                    "with `logs.method = \"{method}\"` this table is never read; set `logs.method` to `register-ring` or `file-record`, or remove the table"
                ),
            ),
            Some(map) => self.log_map(map, method == "file-record"),
            None => {}
        }
    }

    fn log_map(&mut self, map: &LogMap, in_files: bool) {
        let at = "modbus.logs";
        if map.entries == 0 {
            self.fail(
                &format!("{at}.entries"),
                "a log of 0 entries holds nothing; give the number of entries the device keeps",
            );
        }
        if map.entry_registers < 6 {
            self.fail(
                &format!("{at}.entry_registers"),
                format!(
                    "an entry has at least 6 registers (sequence 2, time 2, code, severity), not {}",
                    map.entry_registers
                ),
            );
        }
        let total = u32::from(map.entries) * u32::from(map.entry_registers);
        if in_files {
            for (field, given) in [
                ("table", map.table.is_some()),
                ("address", map.address.is_some()),
            ] {
                if given {
                    self.fail(
                        &format!("{at}.{field}"),
                        "entries in file records are found by `file`; `table` and `address` are for `logs.method = \"register-ring\"`",
                    );
                }
            }
            match map.file {
                None | Some(0) => self.fail(
                    &format!("{at}.file"),
                    "`logs.method = \"file-record\"` needs `file`, the file number (1 to 65535) holding the entries",
                ),
                Some(_) => {}
            }
            if map.entry_registers > MAX_FILE_RECORD_REGISTERS {
                self.fail(
                    &format!("{at}.entry_registers"),
                    format!(
                        "an entry is read in one Read File Record request, at most {MAX_FILE_RECORD_REGISTERS} registers"
                    ),
                );
            }
            if total > RECORDS_PER_FILE {
                self.fail(
                    &format!("{at}.entries"),
                    format!(
                        "{} entries of {} registers take {total} records, but a file holds {RECORDS_PER_FILE}",
                        map.entries, map.entry_registers
                    ),
                );
            }
        } else {
            if map.file.is_some() {
                self.fail(
                    &format!("{at}.file"),
                    "`file` is for `logs.method = \"file-record\"`; a register ring has `table` and `address`",
                );
            }
            match map.table {
                None => self.fail(
                    &format!("{at}.table"),
                    "a register ring needs `table` (`input` or `holding`) and `address`",
                ),
                Some(TableName::Coil | TableName::DiscreteInput) => self.fail(
                    &format!("{at}.table"),
                    "log entries are registers: `input` or `holding`",
                ),
                Some(_) => {}
            }
            match map.address {
                None => self.fail(
                    &format!("{at}.address"),
                    "a register ring needs `address`, the first register of entry 0",
                ),
                Some(address) if u32::from(address) + total > 65536 => self.fail(
                    &format!("{at}.entries"),
                    format!(
                        "{} entries of {} registers from address {address} run past the last address, 65535",
                        map.entries, map.entry_registers
                    ),
                ),
                Some(_) => {}
            }
            if map.entry_registers > self.section.max_read_registers {
                self.fail(
                    &format!("{at}.entry_registers"),
                    format!(
                        "an entry is read in one request of at most {} registers (`max_read_registers`)",
                        self.section.max_read_registers
                    ),
                );
            }
        }
        let newest = format!("{at}.newest");
        self.point(&newest, &map.newest);
        if map.newest.table().is_bits()
            || !matches!(
                map.newest.resolved_encoding(),
                Encoding::U16 | Encoding::U32
            )
            || map.newest.mask.is_some()
        {
            self.fail(
                &format!("{newest}.encoding"),
                "the newest sequence number is a `u16` or `u32` register point, without mask",
            );
        }
        if let Some(clear) = &map.clear {
            self.step(&format!("{at}.clear"), clear, None);
        }
        for code in map.codes.keys() {
            if code.parse::<u16>().is_err() {
                self.fail(
                    &format!("{at}.codes.{code}"),
                    format!("event codes are numbers 0 to 65535, as the device writes them; `{code}` is not one"),
                );
            }
        }
    }
}

//! Checks of the firmware map against the common part's firmware declaration.

use super::{Checker, RECORDS_PER_FILE, verify_name};
use crate::frame::{MAX_FILE_RECORD_REGISTERS, Table};
use crate::profile::{Encoding, FIRMWARE_METHODS, FirmwareMap, Point, Verify};

impl Checker<'_> {
    pub(super) fn firmware(&mut self) {
        let method = self.profile.firmware.method.clone();
        let supported = self.profile.firmware.is_supported();
        if supported && !FIRMWARE_METHODS.contains(&method.as_str()) {
            self.fail(
                "firmware.method",
                format!(
                    "`{method}` is not a firmware method of the Modbus adapter; use `file-record` (Write File Record, FC 0x15) or `none`"
                ),
            );
        }
        match &self.section.firmware {
            None if method == "file-record" => self.fail(
                "modbus.firmware",
                "`firmware.method = \"file-record\"` needs a `[modbus.firmware]` table saying where the image goes and how it is activated",
            ),
            Some(_) if !supported => self.fail(
                "modbus.firmware",
                "the profile's `firmware.method` is `none`, so this table is never used; set `firmware.method = \"file-record\"`, or remove the table",
            ),
            Some(map) if method == "file-record" => self.firmware_map(map),
            _ => {}
        }
    }

    fn firmware_map(&mut self, map: &FirmwareMap) {
        let at = "modbus.firmware";
        let dual_bank = self.profile.firmware.dual_bank;
        let max_image_size = self.profile.firmware.max_image_size;
        if map.first_file == 0 {
            self.fail(&format!("{at}.first_file"), "file numbers start at 1");
        }
        if map.records_per_file == 0 || u32::from(map.records_per_file) > RECORDS_PER_FILE {
            self.fail(
                &format!("{at}.records_per_file"),
                format!(
                    "{} is outside 1 ..= {RECORDS_PER_FILE}; a file holds record numbers 0 to 9999",
                    map.records_per_file
                ),
            );
        }
        if map.chunk_registers == 0 || map.chunk_registers > MAX_FILE_RECORD_REGISTERS {
            self.fail(
                &format!("{at}.chunk_registers"),
                format!(
                    "{} is outside 1 ..= {MAX_FILE_RECORD_REGISTERS}, the most registers one Write File Record request carries",
                    map.chunk_registers
                ),
            );
        }
        let files = 65536 - u64::from(map.first_file.max(1));
        let capacity = files * u64::from(map.records_per_file) * 2;
        if map.first_file != 0 && map.records_per_file != 0 && capacity < max_image_size {
            self.fail(
                &format!("{at}.records_per_file"),
                format!(
                    "files {} to 65535 of {} records hold {capacity} bytes, less than `firmware.max_image_size` ({max_image_size}); start at a lower file or use more records per file",
                    map.first_file, map.records_per_file
                ),
            );
        }
        if let Some(size) = &map.size {
            let field = format!("{at}.size");
            self.point(&field, size);
            self.writable(&field, size);
            match size.raw_bounds() {
                Some((_, hi)) if !size.table().is_bits() && hi >= i128::from(max_image_size) => {}
                _ => self.fail(
                    &format!("{field}.encoding"),
                    format!(
                        "the image size (up to {max_image_size} bytes) is written as a whole number; use `u32`"
                    ),
                ),
            }
        }
        let digest_registers = map.digest_registers();
        match (&map.digest, digest_registers) {
            (None, Some(_)) => self.fail(
                &format!("{at}.digest"),
                format!(
                    "`verify = \"{}\"` reads the device's digest of the image; give its `digest` point, or use `verify = \"read-back\"`",
                    verify_name(map.verify)
                ),
            ),
            (Some(_), None) => self.fail(
                &format!("{at}.digest"),
                format!(
                    "the digest is only read with `verify = \"crc32\"` or `\"sha256\"`, not `\"{}\"`; remove it or change `verify`",
                    verify_name(map.verify)
                ),
            ),
            (Some(digest), Some(registers)) => {
                let field = format!("{at}.digest");
                if digest.table().is_bits() {
                    self.fail(
                        &format!("{field}.table"),
                        "a digest is read from `input` or `holding` registers",
                    );
                }
                if digest.count.is_some_and(|c| c != registers) {
                    self.fail(
                        &format!("{field}.count"),
                        format!(
                            "a {} digest takes {registers} registers; remove `count`",
                            verify_name(map.verify)
                        ),
                    );
                }
                // Raw words either way; `string` is accepted because it is the encoding that
                // takes a `count`.
                let allowed = match map.verify {
                    Verify::Crc32 => matches!(
                        digest.encoding,
                        None | Some(Encoding::U32 | Encoding::String)
                    ),
                    _ => matches!(digest.encoding, None | Some(Encoding::String)),
                };
                if !allowed {
                    self.fail(
                        &format!("{field}.encoding"),
                        "the digest is read as raw registers, big-endian; leave `encoding` out (or give `string`, or `u32` for a CRC-32)",
                    );
                }
                self.address_space(&field, digest.table(), digest.address, registers);
            }
            (None, None) => {}
        }
        if let Some(point) = &map.running_version {
            let field = format!("{at}.running_version");
            self.point(&field, point);
            self.text_or_number(&field, point);
        }
        self.activate(map, dual_bank);
        match (&map.banks, dual_bank) {
            (None, true) => self.fail(
                &format!("{at}.banks"),
                "`firmware.dual_bank = true` needs `[modbus.firmware.banks]` with the `active`, `versions`, `state`, `confirm` and `revert` registers",
            ),
            (Some(_), false) => self.fail(
                &format!("{at}.banks"),
                "bank registers are for two-bank devices; set `firmware.dual_bank = true`, or remove `banks`",
            ),
            (Some(banks), true) => {
                let at = format!("{at}.banks");
                self.point(&format!("{at}.active"), &banks.active);
                if let Some(select) = &banks.select {
                    self.point(&format!("{at}.select"), select);
                    self.writable(&format!("{at}.select"), select);
                }
                if banks.versions.len() == 2 {
                    for (i, point) in banks.versions.iter().enumerate() {
                        let field = format!("{at}.versions[{i}]");
                        self.point(&field, point);
                        self.text_or_number(&field, point);
                    }
                } else {
                    self.fail(
                        &format!("{at}.versions"),
                        format!(
                            "give exactly two points, bank 0's version then bank 1's, not {}",
                            banks.versions.len()
                        ),
                    );
                }
                if banks.state.confirmed == banks.state.testing {
                    self.fail(
                        &format!("{at}.state.testing"),
                        format!(
                            "`confirmed` and `testing` are both {}; they must differ to tell the states apart",
                            banks.state.testing
                        ),
                    );
                }
                self.address_space(
                    &format!("{at}.state"),
                    banks.state.table.into(),
                    banks.state.address,
                    1,
                );
                self.step(&format!("{at}.confirm"), &banks.confirm, None);
                self.step(&format!("{at}.revert"), &banks.revert, None);
            }
            (None, false) => {}
        }
    }

    fn activate(&mut self, map: &FirmwareMap, dual_bank: bool) {
        let at = "modbus.firmware.activate";
        let activate = &map.activate;
        let table = Table::from(activate.table);
        if !table.is_writable() {
            self.fail(
                &format!("{at}.table"),
                format!("activation is a write, to `coil` or `holding`, not `{table}`"),
            );
        }
        self.address_space(at, table, activate.address, 1);
        let max = if table.is_bits() {
            1
        } else {
            i64::from(u16::MAX)
        };
        for (what, raw) in [
            ("permanent", Some(activate.permanent)),
            ("test", activate.test),
        ] {
            if let Some(raw) = raw
                && !(0..=max).contains(&raw)
            {
                self.fail(
                    &format!("{at}.{what}"),
                    format!("{raw} does not fit the {table} (0 ..= {max})"),
                );
            }
        }
        match (activate.test, dual_bank) {
            (None, true) => self.fail(
                &format!("{at}.test"),
                "a two-bank device boots a new image in test mode before keeping it; give the raw value that does that",
            ),
            (Some(_), false) => self.fail(
                &format!("{at}.test"),
                "a single-bank device cannot test an image and fall back; remove `test`, or declare `firmware.dual_bank = true` with `[modbus.firmware.banks]`",
            ),
            (Some(test), true) if test == activate.permanent => self.fail(
                &format!("{at}.test"),
                format!("`test` and `permanent` are both {test}; they must differ"),
            ),
            _ => {}
        }
    }

    fn writable(&mut self, at: &str, point: &Point) {
        let table = point.table();
        if !table.is_writable() {
            self.fail(
                &format!("{at}.table"),
                format!(
                    "this point is written, so it lives in `holding` (or `coil`), not `{table}`"
                ),
            );
        }
    }
}

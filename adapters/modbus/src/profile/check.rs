//! The checks of a `[modbus]` section against its profile's common part: what serde cannot see.
//!
//! Every error is collected (an integrator fixes a profile in one pass, not one error per run)
//! and located at the field it is about, by its path in the file (`modbus.parameters.x.mask`).

use iotmc_adapter::profile::Parameter;
use iotmc_adapter::{LocatedError, Profile, ValueType};

use super::{Encoding, FirmwareMap, ModbusSection, Point, Verify};
use crate::frame::{MAX_READ_BITS, MAX_READ_REGISTERS, Table};

mod actions;
mod firmware;
mod logs;

/// Records per file (record numbers 0 to 9999).
const RECORDS_PER_FILE: u32 = crate::frame::MAX_RECORD_NUMBER as u32 + 1;

pub(super) fn load_section(profile: &Profile) -> Result<ModbusSection, Vec<LocatedError>> {
    let section: ModbusSection = profile.source().section("modbus").map_err(|e| vec![e])?;
    let mut check = Checker {
        profile,
        section: &section,
        errors: Vec::new(),
    };
    check.section();
    check.parameters();
    check.identity();
    check.actions();
    check.firmware();
    check.logs();
    if check.errors.is_empty() {
        Ok(section)
    } else {
        Err(check.errors)
    }
}

struct Checker<'a> {
    profile: &'a Profile,
    section: &'a ModbusSection,
    errors: Vec<LocatedError>,
}

/// The raw whole numbers an encoding holds (a mask narrows it further).
fn raw_bounds(encoding: Encoding) -> Option<(i128, i128)> {
    match encoding {
        Encoding::Bool => Some((0, 1)),
        Encoding::U16 => Some((0, i128::from(u16::MAX))),
        Encoding::I16 => Some((i128::from(i16::MIN), i128::from(i16::MAX))),
        Encoding::U32 => Some((0, i128::from(u32::MAX))),
        Encoding::I32 => Some((i128::from(i32::MIN), i128::from(i32::MAX))),
        Encoding::U64 => Some((0, i128::from(u64::MAX))),
        Encoding::I64 => Some((i128::from(i64::MIN), i128::from(i64::MAX))),
        Encoding::F32 | Encoding::F64 | Encoding::String => None,
    }
}

fn encoding_name(encoding: Encoding) -> &'static str {
    match encoding {
        Encoding::Bool => "bool",
        Encoding::U16 => "u16",
        Encoding::I16 => "i16",
        Encoding::U32 => "u32",
        Encoding::I32 => "i32",
        Encoding::F32 => "f32",
        Encoding::U64 => "u64",
        Encoding::I64 => "i64",
        Encoding::F64 => "f64",
        Encoding::String => "string",
    }
}

impl Point {
    /// The raw whole numbers the point holds, after its mask; `None` for floats and text.
    fn raw_bounds(&self) -> Option<(i128, i128)> {
        match self.mask {
            Some(mask) if mask != 0 && !self.table().is_bits() => {
                Some((0, i128::from(mask >> mask.trailing_zeros())))
            }
            _ => raw_bounds(self.resolved_encoding()),
        }
    }
}

impl Checker<'_> {
    fn fail(&mut self, field: &str, message: impl Into<String>) {
        let error = self.profile.source().error_at(field, message);
        self.errors.push(error);
    }

    fn section(&mut self) {
        let s = self.section;
        if self.profile.protocol != "modbus" {
            self.fail(
                "protocol",
                format!(
                    "the profile is for protocol `{}`, but the Modbus adapter was asked to check it; set `protocol = \"modbus\"` or remove the `[modbus]` section",
                    self.profile.protocol
                ),
            );
        }
        if !(1..=MAX_READ_REGISTERS).contains(&s.max_read_registers) {
            self.fail(
                "modbus.max_read_registers",
                format!(
                    "{} is outside 1 ..= {MAX_READ_REGISTERS}, the most registers one read (FC 0x03 / 0x04) may ask for; give the device manual's limit, or leave it out for {MAX_READ_REGISTERS}",
                    s.max_read_registers
                ),
            );
        }
        if !(1..=MAX_READ_BITS).contains(&s.max_read_bits) {
            self.fail(
                "modbus.max_read_bits",
                format!(
                    "{} is outside 1 ..= {MAX_READ_BITS}, the most coils or inputs one read (FC 0x01 / 0x02) may ask for; give the device manual's limit, or leave it out for {MAX_READ_BITS}",
                    s.max_read_bits
                ),
            );
        }
    }

    /// Checks that hold for every point: encoding against table and count, mask, scale, and
    /// the address space.
    fn point(&mut self, at: &str, point: &Point) {
        let table = point.table();
        let encoding = point.resolved_encoding();
        let name = encoding_name(encoding);
        if table.is_bits() {
            if encoding != Encoding::Bool {
                self.fail(
                    &format!("{at}.encoding"),
                    format!(
                        "a {table} holds one bit, so its encoding is `bool` (or leave `encoding` out), not `{name}`; numbers live in `holding` or `input` registers"
                    ),
                );
            }
            if point.count.is_some_and(|c| c != 1) {
                self.fail(
                    &format!("{at}.count"),
                    format!("a {table} point is one bit; remove `count`"),
                );
            }
            if point.mask.is_some() {
                self.fail(
                    &format!("{at}.mask"),
                    format!("a {table} is a single bit already; masks select bits of a register"),
                );
            }
        } else {
            match (encoding, point.count, encoding.registers()) {
                (Encoding::String, None, _) => self.fail(
                    &format!("{at}.count"),
                    "a `string` point needs `count`, the registers it takes (two characters each), e.g. count = 8 for 16 characters",
                ),
                (Encoding::String, Some(0), _) => self.fail(
                    &format!("{at}.count"),
                    "a `string` of 0 registers holds nothing; give the registers it takes (two characters each)",
                ),
                (_, Some(count), Some(registers)) if count != registers => self.fail(
                    &format!("{at}.count"),
                    format!(
                        "`{name}` takes {registers} register(s), not {count}; remove `count` or fix `encoding`"
                    ),
                ),
                (Encoding::Bool, Some(count), _) if count != 1 => self.fail(
                    &format!("{at}.count"),
                    "a `bool` register point is one register; remove `count`",
                ),
                _ => {}
            }
            match point.mask {
                Some(0) => self.fail(
                    &format!("{at}.mask"),
                    "a mask of 0 selects no bits; give the bits that hold the value, e.g. 0x0010",
                ),
                Some(_) if !matches!(encoding, Encoding::U16 | Encoding::Bool) => self.fail(
                    &format!("{at}.mask"),
                    format!(
                        "a mask selects bits of one 16-bit register (`u16` or `bool`); this point is `{name}`: remove the mask or the encoding"
                    ),
                ),
                Some(mask) if encoding == Encoding::Bool && mask.count_ones() != 1 => self.fail(
                    &format!("{at}.mask"),
                    format!(
                        "`bool` takes a one-bit mask, e.g. 0x0004; 0x{mask:04X} has {} bits",
                        mask.count_ones()
                    ),
                ),
                _ => {}
            }
        }
        if let Some(scale) = point.scale
            && (!scale.is_finite() || scale == 0.0)
        {
            self.fail(
                &format!("{at}.scale"),
                format!(
                    "scale must be a finite number other than 0 (e.g. 0.1 for a value kept in tenths), not {scale}"
                ),
            );
        }
        if let Some(offset) = point.offset
            && !offset.is_finite()
        {
            self.fail(
                &format!("{at}.offset"),
                format!("offset must be a finite number, not {offset}"),
            );
        }
        if (point.scale.is_some() || point.offset.is_some())
            && matches!(encoding, Encoding::Bool | Encoding::String)
        {
            self.fail(
                &format!("{at}.scale"),
                format!("a `{name}` value is not scaled; remove `scale` and `offset`"),
            );
        }
        self.address_space(at, table, point.address, point.span());
        let limit = if table.is_bits() {
            self.section.max_read_bits
        } else {
            self.section.max_read_registers
        };
        if point.span() > limit {
            self.fail(
                &format!("{at}.count"),
                format!(
                    "{} registers do not fit one read of at most {limit} (`max_read_registers`); shorten the point",
                    point.span()
                ),
            );
        }
    }

    fn address_space(&mut self, at: &str, table: Table, address: u16, span: u16) {
        if u32::from(address) + u32::from(span) > 65536 {
            let what = if table.is_bits() { "bits" } else { "registers" };
            self.fail(
                &format!("{at}.address"),
                format!(
                    "{span} {what} from address {address} run past the last address, 65535; check the address (PDU addresses count from 0: \"40001\" is holding register 0)"
                ),
            );
        }
    }

    fn parameters(&mut self) {
        let section = self.section;
        for parameter in &self.profile.parameters {
            if !section.parameters.contains_key(&parameter.name) {
                let name = &parameter.name;
                self.fail(
                    &format!("modbus.parameters.{name}"),
                    format!(
                        "parameter `{name}` has no register mapping; add `{name} = {{ table = \"holding\", address = ... }}` under `[modbus.parameters]`"
                    ),
                );
            }
        }
        for (name, point) in &section.parameters {
            let at = format!("modbus.parameters.{name}");
            match self.profile.parameter(name) {
                None => self.fail(
                    &at,
                    format!(
                        "no parameter `{name}` is declared in the profile's [[parameters]]; declare it there, or remove this mapping"
                    ),
                ),
                Some(parameter) => {
                    self.point(&at, point);
                    self.parameter_fit(&at, point, parameter);
                }
            }
        }
        self.overlaps();
    }

    /// The encoding fits the parameter's type, its members and its range.
    fn parameter_fit(&mut self, at: &str, point: &Point, parameter: &Parameter) {
        let table = point.table();
        let encoding = point.resolved_encoding();
        let enc = encoding_name(encoding);
        let name = &parameter.name;
        let value_type = parameter.value_type;
        match value_type {
            ValueType::Bool => {
                if matches!(encoding, Encoding::F32 | Encoding::F64 | Encoding::String) {
                    self.fail(
                        &format!("{at}.encoding"),
                        format!(
                            "`{name}` is a `bool`: a coil, a discrete input, or a register (`bool`, or one bit with `mask`), not `{enc}`"
                        ),
                    );
                }
                if let Some(mask) = point.mask
                    && mask.count_ones() > 1
                {
                    self.fail(
                        &format!("{at}.mask"),
                        format!(
                            "`{name}` is a `bool`, so its mask selects one bit, e.g. 0x0004; 0x{mask:04X} selects {}",
                            mask.count_ones()
                        ),
                    );
                }
            }
            ValueType::Int | ValueType::Float => {
                if table.is_bits() {
                    self.fail(
                        &format!("{at}.table"),
                        format!(
                            "`{name}` is a number, but a {table} holds one bit; numbers live in `holding` or `input` registers"
                        ),
                    );
                } else if matches!(encoding, Encoding::Bool | Encoding::String) {
                    self.fail(
                        &format!("{at}.encoding"),
                        format!(
                            "`{name}` is an `{value_type}`, which needs a numeric encoding (u16, i16, u32, i32, u64, i64, f32, f64), not `{enc}`"
                        ),
                    );
                } else {
                    self.range_fits(at, point, parameter);
                }
            }
            ValueType::String => {
                if encoding != Encoding::String {
                    self.fail(
                        &format!("{at}.encoding"),
                        format!(
                            "`{name}` is a `string`; give `encoding = \"string\"` and `count` (two characters per register), not `{enc}`"
                        ),
                    );
                } else if let (Some(max), Some(count)) = (parameter.max_length, point.count)
                    && max > u32::from(count) * 2
                {
                    self.fail(
                        &format!("{at}.count"),
                        format!(
                            "{count} registers hold {} characters, but `{name}` declares max_length = {max}; raise `count` to {} or lower max_length",
                            u32::from(count) * 2,
                            max.div_ceil(2)
                        ),
                    );
                }
            }
            ValueType::Enum => {
                if encoding == Encoding::String {
                    self.fail(
                        &format!("{at}.encoding"),
                        format!(
                            "`{name}` is an `enum`, stored as a number looked up in `map`; `{enc}` cannot hold it"
                        ),
                    );
                }
                self.enum_map(at, point, parameter);
            }
        }
        if value_type != ValueType::Enum && !point.map.is_empty() {
            self.fail(
                &format!("{at}.map"),
                format!("only `enum` parameters take a `map`; `{name}` is a `{value_type}`"),
            );
        }
        if parameter.access.can_write() && !table.is_writable() {
            self.fail(
                &format!("{at}.table"),
                format!(
                    "`{name}` is {}, but {table} registers cannot be written; use `holding` (or `coil`), or make the parameter `read`",
                    parameter.access.as_str()
                ),
            );
        }
    }

    fn range_fits(&mut self, at: &str, point: &Point, parameter: &Parameter) {
        let (Some(range), Some((lo, hi))) = (parameter.range, point.raw_bounds()) else {
            return;
        };
        let scale = point.scale.unwrap_or(1.0);
        let offset = point.offset.unwrap_or(0.0);
        if !scale.is_finite() || scale == 0.0 {
            return;
        }
        let (a, b) = (lo as f64 * scale + offset, hi as f64 * scale + offset);
        let (lo, hi) = (a.min(b), a.max(b));
        let slack = scale.abs() * 1e-6;
        if range.min.is_some_and(|min| min < lo - slack)
            || range.max.is_some_and(|max| max > hi + slack)
        {
            self.fail(
                &format!("{at}.encoding"),
                format!(
                    "`{}` declares range {} ..= {}, but `{}` with scale {scale} and offset {offset} holds only {lo} ..= {hi}; choose a wider or signed encoding, or fix the range",
                    parameter.name,
                    range.min.map_or("any".to_owned(), |x| x.to_string()),
                    range.max.map_or("any".to_owned(), |x| x.to_string()),
                    encoding_name(point.resolved_encoding()),
                ),
            );
        }
    }

    fn enum_map(&mut self, at: &str, point: &Point, parameter: &Parameter) {
        let name = &parameter.name;
        let field = format!("{at}.map");
        for member in &parameter.values {
            if !point.map.contains_key(member) {
                self.fail(
                    &field,
                    format!(
                        "enum member `{member}` of `{name}` has no raw value; add `{member} = <raw value>` to `map`"
                    ),
                );
            }
        }
        let bounds = point.raw_bounds();
        let mut seen: Vec<(&String, i64)> = Vec::new();
        for (member, raw) in &point.map {
            if !parameter.values.contains(member) {
                self.fail(
                    &field,
                    format!(
                        "`{member}` is not a member of `{name}` (members: {}); fix the name or declare the member",
                        parameter.values.join(", ")
                    ),
                );
            }
            if let Some((other, _)) = seen.iter().find(|(_, r)| r == raw) {
                self.fail(
                    &field,
                    format!(
                        "`{other}` and `{member}` both stand for raw value {raw}; each member needs its own"
                    ),
                );
            }
            seen.push((member, *raw));
            if let Some((lo, hi)) = bounds
                && !(lo..=hi).contains(&i128::from(*raw))
            {
                self.fail(
                    &field,
                    format!(
                        "raw value {raw} of `{member}` does not fit the point, which holds {lo} ..= {hi}"
                    ),
                );
            }
        }
    }

    /// Writable parameters must not share registers, unless they are disjoint bits of one.
    fn overlaps(&mut self) {
        let mut writable: Vec<(&String, &Point)> = self
            .section
            .parameters
            .iter()
            .filter(|(name, _)| {
                self.profile
                    .parameter(name)
                    .is_some_and(|p| p.access.can_write())
            })
            .collect();
        writable.sort_by_key(|(_, p)| (p.table, p.address));
        let mut found = Vec::new();
        for (i, (name, point)) in writable.iter().enumerate() {
            let start = u32::from(point.address);
            let end = start + u32::from(point.span());
            for (other, earlier) in &writable[..i] {
                let other_end = u32::from(earlier.address) + u32::from(earlier.span());
                let disjoint_bits = matches!((point.mask, earlier.mask), (Some(a), Some(b)) if a & b == 0)
                    && point.address == earlier.address;
                if earlier.table == point.table
                    && start < other_end
                    && u32::from(earlier.address) < end
                    && !disjoint_bits
                {
                    found.push((
                        format!("modbus.parameters.{name}.address"),
                        format!(
                            "{} {} of `{name}` overlaps `{other}`; a write to one would change the other. Give each its own registers, or disjoint `mask`s on one register",
                            Table::from(point.table),
                            describe(point.address, point.span())
                        ),
                    ));
                }
            }
        }
        for (field, message) in found {
            self.fail(&field, message);
        }
    }

    fn identity(&mut self) {
        let identity = &self.section.identity;
        if let Some(id) = identity.serial_object
            && id < 0x80
        {
            self.fail(
                "modbus.identity.serial_object",
                format!(
                    "0x{id:02X} is not an extended object id; the device's own objects are 0x80 to 0xFF"
                ),
            );
        }
        for (field, point) in [
            ("serial", &identity.serial),
            ("firmware_version", &identity.firmware_version),
            ("hardware_version", &identity.hardware_version),
        ] {
            if let Some(point) = point {
                let at = format!("modbus.identity.{field}");
                self.point(&at, point);
                self.text_or_number(&at, point);
            }
        }
    }

    /// Identity and version points are text (`string`) or a whole number shown as is.
    fn text_or_number(&mut self, at: &str, point: &Point) {
        let encoding = point.resolved_encoding();
        if point.table().is_bits()
            || matches!(encoding, Encoding::Bool | Encoding::F32 | Encoding::F64)
        {
            self.fail(
                &format!("{at}.encoding"),
                format!(
                    "this is read as text (`string` with `count`) or a whole number shown as is, not `{}`",
                    encoding_name(encoding)
                ),
            );
        }
    }
}

impl FirmwareMap {
    /// Registers of the device's digest: 2 for `crc32`, 16 for `sha256`, `None` when the
    /// profile verifies otherwise.
    pub fn digest_registers(&self) -> Option<u16> {
        match self.verify {
            Verify::Crc32 => Some(2),
            Verify::Sha256 => Some(16),
            Verify::ReadBack | Verify::None => None,
        }
    }
}

fn verify_name(verify: Verify) -> &'static str {
    match verify {
        Verify::ReadBack => "read-back",
        Verify::Crc32 => "crc32",
        Verify::Sha256 => "sha256",
        Verify::None => "none",
    }
}

fn describe(address: u16, span: u16) -> String {
    if span <= 1 {
        format!("address {address}")
    } else {
        format!(
            "addresses {address}..={}",
            u32::from(address) + u32::from(span) - 1
        )
    }
}

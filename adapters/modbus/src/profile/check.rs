//! The checks of a `[modbus]` section against its profile's common part: what serde cannot see.
//!
//! Every error is collected (an integrator fixes a profile in one pass, not one error per run)
//! and located at the field it is about, by its path in the file (`modbus.parameters.x.mask`).

use iotmc_adapter::profile::{ActionSpec, Parameter};
use iotmc_adapter::{LocatedError, Profile, ValueType};

use super::{
    Encoding, FIRMWARE_METHODS, FirmwareMap, LOG_METHODS, LogMap, ModbusSection, Point, RawValue,
    TableName, Verify, WriteStep,
};
use crate::frame::{MAX_FILE_RECORD_REGISTERS, MAX_READ_BITS, MAX_READ_REGISTERS, Table};

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
                if matches!(encoding, Encoding::F32 | Encoding::F64 | Encoding::String) {
                    self.fail(
                        &format!("{at}.encoding"),
                        format!(
                            "`{name}` is an `enum`, stored as a whole number; `{enc}` cannot hold it"
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

    /// A write of an action, firmware step or log clear.
    fn step(&mut self, at: &str, step: &WriteStep, action: Option<&ActionSpec>) {
        let table = Table::from(step.table);
        if !table.is_writable() {
            self.fail(
                &format!("{at}.table"),
                format!("writes go to `coil` or `holding`, not `{table}`"),
            );
        }
        let encoding = step.encoding.unwrap_or(if table.is_bits() {
            Encoding::Bool
        } else {
            Encoding::U16
        });
        if table.is_bits() && encoding != Encoding::Bool {
            self.fail(
                &format!("{at}.encoding"),
                format!(
                    "a coil is one bit; its encoding is `bool` (or leave it out), not `{}`",
                    encoding_name(encoding)
                ),
            );
        }
        if let Some(scale) = step.scale
            && (!scale.is_finite() || scale == 0.0)
        {
            self.fail(
                &format!("{at}.scale"),
                format!("scale must be a finite number other than 0, not {scale}"),
            );
        }
        if step.offset.is_some_and(|o| !o.is_finite()) {
            self.fail(&format!("{at}.offset"), "offset must be a finite number");
        }
        let span = if table.is_bits() {
            1
        } else {
            encoding.registers().unwrap_or(1)
        };
        self.address_space(at, table, step.address, span);
        match (&step.value, &step.argument) {
            (Some(_), Some(_)) => self.fail(
                at,
                "give either `value` (a fixed raw value) or `argument` (an action argument), not both",
            ),
            (None, None) => self.fail(
                at,
                "a write needs `value` (a fixed raw value) or `argument` (the name of an action argument)",
            ),
            (None, Some(argument)) => match action {
                None => self.fail(
                    &format!("{at}.argument"),
                    "this write takes no argument; give a fixed `value`",
                ),
                Some(spec) if !spec.arguments.iter().any(|a| &a.name == argument) => self.fail(
                    &format!("{at}.argument"),
                    format!(
                        "action `{}` declares no argument `{argument}`; declare it in the action's `arguments` or fix the name",
                        spec.name
                    ),
                ),
                Some(_) => {}
            },
            (Some(value), None) => match (table.is_bits(), value) {
                (true, RawValue::Bool(_) | RawValue::Int(0 | 1)) => {}
                (true, RawValue::Int(raw)) => self.fail(
                    &format!("{at}.value"),
                    format!("a coil takes true or false, not {raw}"),
                ),
                (false, RawValue::Bool(b)) => self.fail(
                    &format!("{at}.value"),
                    format!(
                        "a holding register takes a whole number, not {b}; write {} instead",
                        u8::from(*b)
                    ),
                ),
                (false, RawValue::Int(raw)) => {
                    if let Some((lo, hi)) = raw_bounds(encoding)
                        && !(lo..=hi).contains(&i128::from(*raw))
                    {
                        self.fail(
                            &format!("{at}.value"),
                            format!(
                                "{raw} does not fit `{}` ({lo} ..= {hi})",
                                encoding_name(encoding)
                            ),
                        );
                    }
                }
            },
        }
    }

    fn actions(&mut self) {
        let section = self.section;
        for action in &self.profile.actions {
            if !section.actions.contains_key(&action.name) {
                let name = &action.name;
                self.fail(
                    &format!("modbus.actions.{name}"),
                    format!(
                        "action `{name}` has no mapping; add `[modbus.actions.{name}]` with the `writes` that carry it out"
                    ),
                );
            }
        }
        for (name, map) in &section.actions {
            let at = format!("modbus.actions.{name}");
            let Some(spec) = self.profile.action(name) else {
                self.fail(
                    &at,
                    format!(
                        "no action `{name}` is declared in the profile's [[actions]]; declare it there, or remove this mapping"
                    ),
                );
                continue;
            };
            if map.writes.is_empty() {
                self.fail(
                    &format!("{at}.writes"),
                    "an action needs at least one write, e.g. writes = [{ table = \"holding\", address = 100, value = 1 }]",
                );
            }
            for (i, step) in map.writes.iter().enumerate() {
                self.step(&format!("{at}.writes[{i}]"), step, Some(spec));
            }
            for argument in &spec.arguments {
                if !map
                    .writes
                    .iter()
                    .any(|s| s.argument.as_ref() == Some(&argument.name))
                {
                    self.fail(
                        &format!("{at}.writes"),
                        format!(
                            "argument `{}` of action `{name}` is written by no step; add a write with `argument = \"{}\"`",
                            argument.name, argument.name
                        ),
                    );
                }
            }
            if let Some(confirm) = &map.confirm {
                let field = format!("{at}.confirm");
                let table = Table::from(confirm.table);
                if map.restarts {
                    self.fail(
                        &field,
                        "an action that restarts the device is reported accepted once written, so its status is never polled; remove `confirm` or `restarts`",
                    );
                }
                match confirm.mask {
                    Some(_) if table.is_bits() => self.fail(
                        &format!("{field}.mask"),
                        format!("a {table} is one bit; remove the mask"),
                    ),
                    Some(0) => self.fail(
                        &format!("{field}.mask"),
                        "a mask of 0 selects no bits; give the bits that hold the status",
                    ),
                    _ => {}
                }
                let max = match confirm.mask {
                    _ if table.is_bits() => 1,
                    Some(mask) if mask != 0 => i64::from(mask >> mask.trailing_zeros()),
                    _ => i64::from(u16::MAX),
                };
                for (what, raw) in std::iter::once(("done", confirm.done))
                    .chain(confirm.failed.iter().map(|f| ("failed", *f)))
                {
                    if !(0..=max).contains(&raw) {
                        self.fail(
                            &format!("{field}.{what}"),
                            format!(
                                "{raw} cannot be read from the status {}, which holds 0 ..= {max}",
                                if table.is_bits() { "bit" } else { "register" }
                            ),
                        );
                    }
                }
                if confirm.failed.contains(&confirm.done) {
                    self.fail(
                        &format!("{field}.failed"),
                        format!("{} means done, so it cannot also mean failed", confirm.done),
                    );
                }
                if confirm.interval.is_zero() {
                    self.fail(&format!("{field}.interval"), "must be longer than zero");
                }
                self.address_space(&field, table, confirm.address, 1);
            }
            for (output, point) in &map.output {
                self.point(&format!("{at}.output.{output}"), point);
            }
        }
    }

    fn firmware(&mut self) {
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
                let allowed = match map.verify {
                    Verify::Crc32 => matches!(digest.encoding, None | Some(Encoding::U32)),
                    _ => digest.encoding.is_none(),
                };
                if !allowed {
                    self.fail(
                        &format!("{field}.encoding"),
                        "the digest is read as raw registers, big-endian; leave `encoding` out (or `u32` for a CRC-32)",
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

    fn logs(&mut self) {
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

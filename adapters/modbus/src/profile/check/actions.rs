//! Checks of action mappings and of the write steps actions, firmware and logs share.

use iotmc_adapter::profile::ActionSpec;

use super::{Checker, encoding_name, raw_bounds};
use crate::frame::Table;
use crate::profile::{Encoding, RawValue, WriteStep};

impl Checker<'_> {
    /// A write of an action, firmware step or log clear.
    pub(super) fn step(&mut self, at: &str, step: &WriteStep, action: Option<&ActionSpec>) {
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

    pub(super) fn actions(&mut self) {
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
}

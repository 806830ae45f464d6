//! Reading a profile file: TOML syntax, the common part's shape, then its meaning.

use std::collections::HashSet;
use std::path::Path;

use serde::Deserialize;
use toml::de::DeTable;

use super::{
    ActionKind, DEFAULT_MAX_IMAGE_SIZE, LocatedError, MAX_PROFILE_SIZE, Profile, TomlSource,
};
use crate::ValueType;

impl Profile {
    /// Reads and checks the common part of the profile file at `path`.
    ///
    /// The protocol section is left to the adapter ([`crate::Adapter::validate_profile`]).
    pub fn load(path: &Path) -> Result<Self, Vec<LocatedError>> {
        let source =
            TomlSource::read(path, MAX_PROFILE_SIZE as u64, "profile").map_err(|e| vec![e])?;
        Self::from_toml(path, source.text())
    }

    /// Parses and checks the common part of a profile from text; `path` names it in errors.
    pub fn from_toml(path: &Path, text: &str) -> Result<Self, Vec<LocatedError>> {
        let source = TomlSource::new(path, text);
        let mut root = DeTable::parse(text).map_err(|e| vec![source.error_from_toml(&e)])?;
        // The protocol section belongs to the adapter: take it out before the common part is
        // checked for unknown fields.
        if let Some(protocol) = root
            .get_ref()
            .get("protocol")
            .and_then(|v| v.get_ref().as_str())
            .map(str::to_owned)
        {
            root.get_mut().remove(protocol.as_str());
        }
        let mut profile = Profile::deserialize(toml::de::Deserializer::from(root))
            .map_err(|e| vec![source.error_from_toml(&e)])?;
        profile.source = source;
        let errors = profile.check_meaning();
        if errors.is_empty() {
            Ok(profile)
        } else {
            Err(errors)
        }
    }

    /// Checks what serde cannot: names, cross-references, and consistency of declarations.
    fn check_meaning(&self) -> Vec<LocatedError> {
        let source = &self.source;
        let mut errors = Vec::new();
        let mut fail =
            |field: String, message: String| errors.push(source.error_at(&field, message));

        if !is_profile_id(&self.id) {
            fail(
                "id".into(),
                format!(
                    "{:?} is not a valid profile id; expected lowercase letters, digits, `.`, `_` and `-`, starting with a letter or digit, at most 64 characters",
                    self.id
                ),
            );
        }
        for (field, text) in [("manufacturer", &self.manufacturer), ("model", &self.model)] {
            if text.trim().is_empty() {
                fail(
                    field.into(),
                    "must not be empty; controllers show it to operators".into(),
                );
            }
        }
        if !is_name(&self.protocol) {
            fail(
                "protocol".into(),
                format!(
                    "{:?} is not a protocol name; expected one of modbus, mqtt, zigbee, ble",
                    self.protocol
                ),
            );
        }

        let mut names = HashSet::new();
        for (i, p) in self.parameters.iter().enumerate() {
            let at = |f: &str| format!("parameters[{i}].{f}");
            if !is_name(&p.name) {
                fail(
                    at("name"),
                    format!(
                        "{:?} is not a valid parameter name; expected a letter, then letters, digits or `_`, at most 64 characters",
                        p.name
                    ),
                );
            } else if !names.insert(p.name.as_str()) {
                fail(
                    at("name"),
                    format!("parameter `{}` is declared twice", p.name),
                );
            }
            check_declaration(
                &mut fail,
                &at,
                p.value_type,
                p.range.as_ref(),
                &p.values,
                p.max_length,
            );
            if let Some(resolution) = p.resolution
                && !(p.value_type.is_numeric() && resolution.is_finite() && resolution > 0.0)
            {
                fail(at("resolution"), "only `int` and `float` parameters have a resolution, and it must be a positive number".into());
            }
        }

        let mut action_names = HashSet::new();
        let mut kinds = HashSet::new();
        for (i, a) in self.actions.iter().enumerate() {
            let at = |f: &str| format!("actions[{i}].{f}");
            if !is_name(&a.name) {
                fail(
                    at("name"),
                    format!(
                        "{:?} is not a valid action name; expected a letter, then letters, digits or `_`",
                        a.name
                    ),
                );
            } else if !action_names.insert(a.name.as_str()) {
                fail(at("name"), format!("action `{}` is declared twice", a.name));
            }
            if a.kind != ActionKind::Custom && !kinds.insert(a.kind) {
                fail(
                    at("kind"),
                    format!("only one action may be of kind {:?}", a.kind),
                );
            }
            if a.timeout.is_zero() {
                fail(at("timeout"), "must be longer than zero".into());
            }
            let mut arg_names = HashSet::new();
            for (j, arg) in a.arguments.iter().enumerate() {
                let at = |f: &str| format!("actions[{i}].arguments[{j}].{f}");
                if !is_name(&arg.name) || !arg_names.insert(arg.name.as_str()) {
                    fail(
                        at("name"),
                        format!(
                            "{:?} must be a unique name: a letter, then letters, digits or `_`",
                            arg.name
                        ),
                    );
                }
                check_declaration(
                    &mut fail,
                    &at,
                    arg.value_type,
                    arg.range.as_ref(),
                    &arg.values,
                    arg.max_length,
                );
            }
        }

        if self.firmware.max_image_size == 0
            || self.firmware.max_image_size > DEFAULT_MAX_IMAGE_SIZE
        {
            fail(
                "firmware.max_image_size".into(),
                format!(
                    "{} bytes is outside 1 ..= {DEFAULT_MAX_IMAGE_SIZE} (32 MiB)",
                    self.firmware.max_image_size
                ),
            );
        }
        if self.firmware.dual_bank && !self.firmware.is_supported() {
            fail(
                "firmware.dual_bank".into(),
                "a device with `method = \"none\"` cannot have banks; declare its firmware method"
                    .into(),
            );
        }
        if self.logs.fetch_interval.is_some() && !self.logs.is_supported() {
            fail("logs.fetch_interval".into(), "there is nothing to fetch with `method = \"none\"`; declare the log method or remove the interval".into());
        }

        for (i, check) in self.health.checks.iter().enumerate() {
            let at = |f: &str| format!("health.checks[{i}].{f}");
            match self.parameter(&check.parameter) {
                None => fail(
                    at("parameter"),
                    format!("no parameter named `{}` is declared", check.parameter),
                ),
                Some(p) if !p.value_type.is_numeric() || !p.access.can_read() => fail(
                    at("parameter"),
                    format!(
                        "`{}` must be a readable `int` or `float` parameter to be checked",
                        check.parameter
                    ),
                ),
                Some(_) => {}
            }
            if [check.min, check.max]
                .into_iter()
                .flatten()
                .any(|x| !x.is_finite())
            {
                fail(
                    at("min"),
                    "bounds must be finite numbers (not nan or inf); leave a bound out for none"
                        .into(),
                );
            } else if let (Some(min), Some(max)) = (check.min, check.max)
                && min > max
            {
                fail(at("min"), format!("min {min} is above max {max}"));
            }
            if check.min.is_none() && check.max.is_none() {
                fail(
                    at("parameter"),
                    "a health check needs `min`, `max` or both".into(),
                );
            }
        }

        if self.poll.interval.is_zero() {
            fail("poll.interval".into(), "must be longer than zero".into());
        }
        if self.poll.timeout.is_zero() {
            fail("poll.timeout".into(), "must be longer than zero".into());
        }
        if self.poll.retries > 10 {
            fail(
                "poll.retries".into(),
                format!(
                    "{} retries would hold the bus too long; at most 10",
                    self.poll.retries
                ),
            );
        }
        errors
    }
}

fn check_declaration(
    fail: &mut impl FnMut(String, String),
    at: &impl Fn(&str) -> String,
    value_type: ValueType,
    range: Option<&super::ValueRange>,
    values: &[String],
    max_length: Option<u32>,
) {
    if let Some(range) = range {
        if !value_type.is_numeric() {
            fail(
                at("range"),
                format!("a `{value_type}` has no range; only `int` and `float` do"),
            );
        } else if [range.min, range.max]
            .into_iter()
            .flatten()
            .any(|x| !x.is_finite())
        {
            fail(
                at("range"),
                "bounds must be finite numbers (not nan or inf); leave a bound out for none".into(),
            );
        } else if let (Some(min), Some(max)) = (range.min, range.max)
            && min > max
        {
            fail(at("range"), format!("min {min} is above max {max}"));
        }
    }
    match (value_type, values.is_empty()) {
        (ValueType::Enum, true) => fail(
            at("values"),
            "an `enum` needs its members, e.g. values = [\"auto\", \"heat\"]".into(),
        ),
        (ValueType::Enum, false) => {
            let unique: HashSet<_> = values.iter().collect();
            if unique.len() != values.len() {
                fail(at("values"), "members must be unique".into());
            }
        }
        (_, false) => fail(
            at("values"),
            format!("only an `enum` has members; this is `{value_type}`"),
        ),
        (_, true) => {}
    }
    if max_length.is_some() && value_type != ValueType::String {
        fail(
            at("max_length"),
            format!("only a `string` has a maximum length; this is `{value_type}`"),
        );
    }
}

/// Whether `id` is a profile id: lowercase letters, digits, `.`, `_` and `-`, starting with a
/// letter or digit, at most 64 characters.
pub fn is_profile_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && id.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
        })
}

/// A parameter, action or argument name: usable as a UPnP path segment and an XML name.
pub(crate) fn is_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name.bytes().next().is_some_and(|b| b.is_ascii_alphabetic())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
id = "acme-thermostat"
manufacturer = "Acme"
model = "T-100"
protocol = "test"

[[parameters]]
name = "setpoint"
type = "float"
unit = "°C"
access = "read-write"
range = { min = 5, max = 30 }

[[parameters]]
name = "mode"
type = "enum"
access = "read-write"
values = ["auto", "heat"]

[[actions]]
name = "reboot"
kind = "reboot"

[health]
checks = [{ parameter = "setpoint", min = 5 }]

[poll]
interval = "30s"

[test]
anything = "belongs to the adapter"
"#;

    fn load(text: &str) -> Result<Profile, Vec<LocatedError>> {
        Profile::from_toml(Path::new("acme.toml"), text)
    }

    #[test]
    fn good_profile_should_load_with_defaults_filled_in() {
        let profile = load(GOOD).unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(profile.parameters.len(), 2);
        assert_eq!(profile.poll.interval, std::time::Duration::from_secs(30));
        assert_eq!(profile.poll.retries, 2);
        assert!(!profile.firmware.is_supported());
        assert_eq!(profile.actions[0].kind, ActionKind::Reboot);
    }

    #[test]
    fn protocol_section_should_be_readable_by_the_adapter() {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Section {
            anything: String,
        }
        let profile = load(GOOD).unwrap_or_else(|e| panic!("{e:?}"));
        let section: Section = profile
            .source()
            .section("test")
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(section.anything, "belongs to the adapter");
    }

    #[test]
    fn protocol_section_error_should_name_line_and_field() {
        #[derive(Debug, Deserialize)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct Section {
            anything: u16,
        }
        let profile = load(GOOD).unwrap_or_else(|e| panic!("{e:?}"));
        let err = profile.source().section::<Section>("test").unwrap_err();
        assert_eq!(err.line, Some(31), "{err}");
        assert_eq!(err.field.as_deref(), Some("test.anything"), "{err}");
        assert!(err.message.contains("u16"), "{err}");
    }

    #[test]
    fn unknown_field_should_be_named_with_its_line() {
        let text = GOOD.replace("unit = \"°C\"", "units = \"°C\"");
        let errors = load(&text).unwrap_err();
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].line, Some(10), "{}", errors[0]);
        assert!(
            errors[0].message.contains("unknown field `units`"),
            "{}",
            errors[0]
        );
        assert!(
            errors[0].message.contains("expected one of"),
            "{}",
            errors[0]
        );
    }

    #[test]
    fn wrong_type_should_name_the_field() {
        let text = GOOD.replace("interval = \"30s\"", "interval = 30");
        let errors = load(&text).unwrap_err();
        assert_eq!(
            errors[0].field.as_deref(),
            Some("poll.interval"),
            "{}",
            errors[0]
        );
        assert_eq!(errors[0].line, Some(28), "{}", errors[0]);
    }

    #[test]
    fn bad_duration_should_say_what_is_expected() {
        let text = GOOD.replace("\"30s\"", "\"thirty\"");
        let errors = load(&text).unwrap_err();
        assert!(
            errors[0].message.contains("expected a number with a unit"),
            "{}",
            errors[0]
        );
    }

    #[test]
    fn every_meaning_error_should_be_listed_with_its_line() {
        let text = GOOD
            .replace("min = 5, max = 30", "min = 30, max = 5")
            .replace("name = \"mode\"", "name = \"setpoint\"")
            .replace("parameter = \"setpoint\"", "parameter = \"humidity\"");
        let errors = load(&text).unwrap_err();
        let lines: Vec<_> = errors
            .iter()
            .map(|e| (e.field.clone().unwrap_or_default(), e.line))
            .collect();
        assert_eq!(
            lines,
            vec![
                ("parameters[0].range".to_owned(), Some(12)),
                ("parameters[1].name".to_owned(), Some(15)),
                ("health.checks[0].parameter".to_owned(), Some(25)),
            ],
            "{errors:#?}"
        );
    }

    #[test]
    fn non_finite_bounds_should_be_refused() {
        let text = GOOD
            .replace("min = 5, max = 30", "min = nan, max = 30")
            .replace(
                "parameter = \"setpoint\", min = 5",
                "parameter = \"setpoint\", min = -inf",
            );
        let errors = load(&text).unwrap_err();
        let fields: Vec<_> = errors
            .iter()
            .map(|e| e.field.clone().unwrap_or_default())
            .collect();
        assert_eq!(
            fields,
            vec!["parameters[0].range", "health.checks[0].min"],
            "{errors:#?}"
        );
        assert!(errors[0].message.contains("finite"), "{}", errors[0]);
    }

    #[test]
    fn syntax_error_should_be_located() {
        let errors = load("id = \"x\"\nmodel = \n").unwrap_err();
        assert_eq!(errors[0].line, Some(2), "{}", errors[0]);
    }

    #[test]
    fn missing_protocol_section_should_say_which_section() {
        let text = GOOD.replace("[test]\nanything = \"belongs to the adapter\"\n", "");
        let profile = load(&text).unwrap_or_else(|e| panic!("{e:?}"));
        let err = profile.source().section::<toml::Table>("test").unwrap_err();
        assert!(err.message.contains("missing section `[test]`"), "{err}");
    }
}

use std::path::Path;

use iotmc_adapter::{LocatedError, Profile};

use super::{ModbusSection, load_section};

/// A profile using every part of the section; the simulator's tests use it too.
pub(crate) const DEMO: &str = r#"
id = "acme-heat-pump"
manufacturer = "Acme"
model = "HP-9"
protocol = "modbus"

[[parameters]]
name = "supply_temperature"
type = "float"
unit = "°C"
range = { min = -40, max = 120 }

[[parameters]]
name = "setpoint"
type = "float"
access = "read-write"
range = { min = 5, max = 30 }
resolution = 0.1

[[parameters]]
name = "mode"
type = "enum"
access = "read-write"
values = ["auto", "heat", "cool"]

[[parameters]]
name = "pump_on"
type = "bool"
access = "read-write"

[[parameters]]
name = "alarm"
type = "bool"

[[parameters]]
name = "energy"
type = "int"
unit = "Wh"

[[parameters]]
name = "label"
type = "string"
access = "read-write"
max_length = 8

[[actions]]
name = "reboot"
kind = "reboot"

[[actions]]
name = "factory_reset"
kind = "factory-reset"

[[actions]]
name = "self_test"
kind = "self-test"

[[actions]]
name = "set_clock"
arguments = [{ name = "epoch", type = "int" }]

[firmware]
method = "file-record"
dual_bank = true
max_image_size = 65536

[logs]
method = "register-ring"

[health]
checks = [{ parameter = "supply_temperature", min = -20, max = 90 }]

[modbus]
max_gap = 4

[modbus.parameters]
supply_temperature = { table = "input", address = 0, encoding = "i16", scale = 0.1 }
energy = { table = "input", address = 2, encoding = "u32" }
setpoint = { table = "holding", address = 100, scale = 0.1 }
mode = { table = "holding", address = 101, map = { auto = 0, heat = 1, cool = 2 } }
alarm = { table = "holding", address = 102, mask = 0x0001 }
label = { table = "holding", address = 110, encoding = "string", count = 4 }
pump_on = { table = "coil", address = 0 }

[modbus.identity]
serial_object = 0x80

[modbus.actions.reboot]
writes = [{ table = "holding", address = 200, value = 0xA5A5 }]
restarts = true

[modbus.actions.factory_reset]
writes = [{ table = "holding", address = 201, value = 0x5A5A }]
restarts = true

[modbus.actions.self_test]
writes = [{ table = "coil", address = 10, value = true }]
confirm = { table = "input", address = 20, done = 2, failed = [3] }
output = { result = { table = "input", address = 21 } }

[modbus.actions.set_clock]
writes = [{ table = "holding", address = 210, argument = "epoch", encoding = "u32" }]

[modbus.firmware]
size = { table = "holding", address = 300, encoding = "u32" }
verify = "crc32"
digest = { table = "input", address = 300 }
running_version = { table = "input", address = 310, encoding = "string", count = 8 }
activate = { table = "holding", address = 302, test = 1, permanent = 2 }

[modbus.firmware.banks]
active = { table = "input", address = 320 }
select = { table = "holding", address = 303 }
versions = [
    { table = "input", address = 330, encoding = "string", count = 8 },
    { table = "input", address = 338, encoding = "string", count = 8 },
]
state = { table = "input", address = 321 }
confirm = { table = "holding", address = 304, value = 1 }
revert = { table = "holding", address = 305, value = 1 }

[modbus.logs]
table = "input"
address = 1000
entries = 4
entry_registers = 10
newest = { table = "input", address = 996, encoding = "u32" }
clear = { table = "holding", address = 998, value = 1 }
codes = { "17" = "supply fan failure" }
"#;

mod actions_firmware_logs;

pub(crate) fn demo_profile() -> Profile {
    Profile::from_toml(Path::new("demo.toml"), DEMO).unwrap_or_else(|e| panic!("{e:#?}"))
}

fn load(text: &str) -> Result<ModbusSection, Vec<LocatedError>> {
    let profile = Profile::from_toml(Path::new("x.toml"), text)
        .unwrap_or_else(|e| panic!("common part: {e:#?}"));
    load_section(&profile)
}

/// Loads `DEMO` with one replacement and returns the errors, which must be there.
fn errors_with(from: &str, to: &str) -> Vec<LocatedError> {
    assert!(DEMO.contains(from), "the demo profile has no {from:?}");
    load(&DEMO.replacen(from, to, 1)).expect_err("the changed profile should be refused")
}

/// Asserts exactly one error, at `field`, whose message contains every one of `words`.
#[track_caller]
fn assert_one(errors: &[LocatedError], field: &str, words: &[&str]) {
    assert_eq!(errors.len(), 1, "{errors:#?}");
    let error = &errors[0];
    assert_eq!(error.field.as_deref(), Some(field), "{error}");
    for word in words {
        assert!(error.message.contains(word), "{word:?} not in: {error}");
    }
}

#[test]
fn demo_profile_should_load_with_defaults_filled_in() {
    let section = load_section(&demo_profile()).unwrap_or_else(|e| panic!("{e:#?}"));
    assert_eq!(section.max_gap, 4);
    assert_eq!(section.max_read_registers, 125);
    assert_eq!(section.parameters.len(), 7);
    let firmware = section.firmware.as_ref().unwrap();
    assert_eq!(firmware.first_file, 1);
    assert_eq!(firmware.records_per_file, 10000);
    assert_eq!(firmware.chunk_registers, 122);
    assert_eq!(firmware.digest_registers(), Some(2));
    assert!(section.identity.device_identification);
}

#[test]
fn missing_section_should_say_which_section() {
    let text = DEMO.split("[modbus]").next().unwrap();
    let errors = load(text).unwrap_err();
    assert_one(&errors, "modbus", &["missing section `[modbus]`"]);
}

#[test]
fn unknown_field_should_be_located_by_serde() {
    let errors = errors_with("max_gap = 4", "max_gaps = 4");
    assert_one(&errors, "modbus.max_gaps", &["unknown field `max_gaps`"]);
    assert_eq!(errors[0].line, Some(74), "{}", errors[0]);
}

#[test]
fn unmapped_parameter_should_say_how_to_map_it() {
    let errors = errors_with(
        "energy = { table = \"input\", address = 2, encoding = \"u32\" }\n",
        "",
    );
    assert_one(
        &errors,
        "modbus.parameters.energy",
        &["`energy` has no register mapping", "[modbus.parameters]"],
    );
}

#[test]
fn mapping_without_declaration_should_be_refused() {
    let errors = errors_with(
        "[modbus.parameters]\n",
        "[modbus.parameters]\nhumidity = { table = \"input\", address = 50 }\n",
    );
    assert_one(
        &errors,
        "modbus.parameters.humidity",
        &["no parameter `humidity` is declared", "remove this mapping"],
    );
}

#[test]
fn every_error_should_be_listed_at_once() {
    let text = DEMO
        .replacen("address = 100, scale = 0.1", "address = 100, scale = 0", 1)
        .replacen("address = 102, mask = 0x0001", "address = 102, mask = 0", 1)
        .replacen("max_gap = 4", "max_gap = 4\nmax_read_registers = 200", 1);
    let errors = load(&text).unwrap_err();
    let fields: Vec<_> = errors.iter().filter_map(|e| e.field.clone()).collect();
    assert_eq!(
        fields,
        [
            "modbus.max_read_registers",
            "modbus.parameters.alarm.mask",
            "modbus.parameters.setpoint.scale",
        ],
        "{errors:#?}"
    );
    assert!(
        errors[0].message.contains("outside 1 ..= 125"),
        "{}",
        errors[0]
    );
}

#[test]
fn point_past_the_address_space_should_be_refused() {
    let errors = errors_with(
        "address = 2, encoding = \"u32\"",
        "address = 65535, encoding = \"u32\"",
    );
    assert_one(
        &errors,
        "modbus.parameters.energy.address",
        &["2 registers from address 65535", "past the last address"],
    );
}

#[test]
fn count_that_disagrees_with_the_encoding_should_be_refused() {
    let errors = errors_with("encoding = \"u32\" }", "encoding = \"u32\", count = 4 }");
    assert_one(
        &errors,
        "modbus.parameters.energy.count",
        &["`u32` takes 2 register(s), not 4"],
    );
}

#[test]
fn string_without_count_should_be_refused() {
    let errors = errors_with(
        "encoding = \"string\", count = 4 }",
        "encoding = \"string\" }",
    );
    assert_one(&errors, "modbus.parameters.label.count", &["needs `count`"]);
}

#[test]
fn string_shorter_than_max_length_should_be_refused() {
    let errors = errors_with(
        "encoding = \"string\", count = 4 }",
        "encoding = \"string\", count = 3 }",
    );
    assert_one(
        &errors,
        "modbus.parameters.label.count",
        &[
            "3 registers hold 6 characters",
            "max_length = 8",
            "raise `count` to 4",
        ],
    );
}

#[test]
fn string_encoding_for_a_number_should_be_refused() {
    let errors = errors_with(
        "address = 2, encoding = \"u32\"",
        "address = 2, encoding = \"string\", count = 2",
    );
    assert_one(
        &errors,
        "modbus.parameters.energy.encoding",
        &["needs a numeric encoding", "not `string`"],
    );
}

#[test]
fn number_on_a_coil_should_be_refused() {
    let errors = errors_with(
        "energy = { table = \"input\", address = 2, encoding = \"u32\" }",
        "energy = { table = \"discrete-input\", address = 2 }",
    );
    assert_one(
        &errors,
        "modbus.parameters.energy.table",
        &["holds one bit", "`holding` or `input`"],
    );
}

#[test]
fn bool_with_a_wide_mask_should_be_refused() {
    let errors = errors_with("mask = 0x0001", "mask = 0x0003");
    assert_one(
        &errors,
        "modbus.parameters.alarm.mask",
        &["selects one bit", "0x0003 selects 2"],
    );
}

#[test]
fn mask_on_a_32_bit_value_should_be_refused() {
    let errors = errors_with("encoding = \"u32\" }", "encoding = \"u32\", mask = 1 }");
    assert_one(
        &errors,
        "modbus.parameters.energy.mask",
        &["one 16-bit register", "this point is `u32`"],
    );
}

#[test]
fn non_finite_scale_should_be_refused() {
    let errors = errors_with("address = 100, scale = 0.1", "address = 100, scale = nan");
    assert_one(
        &errors,
        "modbus.parameters.setpoint.scale",
        &["finite number other than 0"],
    );
}

#[test]
fn range_beyond_the_encoding_should_be_refused() {
    // -40 °C cannot be stored in an unsigned register.
    let errors = errors_with(
        "address = 0, encoding = \"i16\"",
        "address = 0, encoding = \"u16\"",
    );
    assert_one(
        &errors,
        "modbus.parameters.supply_temperature.encoding",
        &["range -40 ..= 120", "holds only 0 ..= 6553.5"],
    );
}

#[test]
fn enum_map_should_cover_every_member() {
    let errors = errors_with(
        "map = { auto = 0, heat = 1, cool = 2 }",
        "map = { auto = 0, heat = 1 }",
    );
    assert_one(
        &errors,
        "modbus.parameters.mode.map",
        &[
            "member `cool` of `mode` has no raw value",
            "add `cool = <raw value>`",
        ],
    );
}

#[test]
fn enum_map_should_not_name_strangers_or_share_raw_values() {
    let errors = errors_with(
        "map = { auto = 0, heat = 1, cool = 2 }",
        "map = { auto = 0, heat = 1, cool = 1, dry = 3 }",
    );
    let messages: Vec<_> = errors.iter().map(|e| e.message.as_str()).collect();
    assert_eq!(errors.len(), 2, "{messages:#?}");
    assert!(
        messages
            .iter()
            .any(|m| m.contains("`dry` is not a member of `mode`"))
    );
    assert!(
        messages
            .iter()
            .any(|m| m.contains("both stand for raw value 1"))
    );
}

#[test]
fn map_on_a_non_enum_should_be_refused() {
    let errors = errors_with(
        "encoding = \"u32\" }",
        "encoding = \"u32\", map = { a = 1 } }",
    );
    assert_one(
        &errors,
        "modbus.parameters.energy.map",
        &["only `enum` parameters take a `map`"],
    );
}

#[test]
fn writable_parameter_in_input_registers_should_be_refused() {
    let errors = errors_with(
        "setpoint = { table = \"holding\"",
        "setpoint = { table = \"input\"",
    );
    assert_one(
        &errors,
        "modbus.parameters.setpoint.table",
        &["`setpoint` is read-write", "cannot be written"],
    );
}

#[test]
fn overlapping_writable_parameters_should_be_refused() {
    let errors = errors_with(
        "mode = { table = \"holding\", address = 101",
        "mode = { table = \"holding\", address = 100",
    );
    assert_eq!(errors.len(), 1, "{errors:#?}");
    let field = errors[0].field.as_deref().unwrap();
    assert!(
        field == "modbus.parameters.setpoint.address" || field == "modbus.parameters.mode.address",
        "{field}"
    );
    assert!(errors[0].message.contains("overlaps"), "{}", errors[0]);
}

#[test]
fn disjoint_masks_on_one_register_should_share_it() {
    let text = DEMO
        .replace(
            "[[parameters]]\nname = \"alarm\"\ntype = \"bool\"\n",
            "[[parameters]]\nname = \"alarm\"\ntype = \"bool\"\naccess = \"read-write\"\n\n[[parameters]]\nname = \"heater\"\ntype = \"bool\"\naccess = \"read-write\"\n",
        )
        .replace(
            "alarm = { table = \"holding\", address = 102, mask = 0x0001 }",
            "alarm = { table = \"holding\", address = 102, mask = 0x0001 }\nheater = { table = \"holding\", address = 102, mask = 0x0002 }",
        );
    load(&text).unwrap_or_else(|e| panic!("{e:#?}"));
    let overlapping = text.replace("mask = 0x0002", "mask = 0x0001");
    let errors = load(&overlapping).unwrap_err();
    assert!(
        errors[0].message.contains("disjoint `mask`s"),
        "{}",
        errors[0]
    );
}

#[test]
fn every_modbus_profile_in_the_repository_should_pass_the_checks() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../device-profiles/modbus");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "toml") {
            continue;
        }
        let profile = Profile::load(&path).unwrap_or_else(|e| panic!("{}: {e:#?}", path.display()));
        if let Err(errors) = load_section(&profile) {
            let listed: Vec<String> = errors.iter().map(ToString::to_string).collect();
            panic!("{}:\n{}", path.display(), listed.join("\n"));
        }
        checked += 1;
    }
    assert!(checked > 0, "no profiles in {}", dir.display());
}

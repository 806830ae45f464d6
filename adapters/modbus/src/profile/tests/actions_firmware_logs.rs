//! Checks of action, identity, firmware and log mappings.

use super::{DEMO, assert_one, errors_with, load};

#[test]
fn unmapped_action_should_say_how_to_map_it() {
    let errors = errors_with(
        "[modbus.actions.set_clock]\nwrites = [{ table = \"holding\", address = 210, argument = \"epoch\", encoding = \"u32\" }]\n",
        "",
    );
    assert_one(
        &errors,
        "modbus.actions.set_clock",
        &["action `set_clock` has no mapping", "`writes`"],
    );
}

#[test]
fn action_write_to_an_input_register_should_be_refused() {
    let errors = errors_with(
        "writes = [{ table = \"holding\", address = 200",
        "writes = [{ table = \"input\", address = 200",
    );
    assert_one(
        &errors,
        "modbus.actions.reboot.writes[0].table",
        &["writes go to `coil` or `holding`, not `input`"],
    );
}

#[test]
fn action_write_needs_exactly_one_of_value_and_argument() {
    let errors = errors_with("address = 200, value = 0xA5A5 }", "address = 200 }");
    assert_one(
        &errors,
        "modbus.actions.reboot.writes[0]",
        &["needs `value`", "or `argument`"],
    );
    let errors = errors_with(
        "address = 200, value = 0xA5A5 }",
        "address = 200, value = 1, argument = \"x\" }",
    );
    assert_one(&errors, "modbus.actions.reboot.writes[0]", &["not both"]);
}

#[test]
fn action_write_of_an_undeclared_argument_should_be_refused() {
    let errors = errors_with("argument = \"epoch\"", "argument = \"time\"");
    let fields: Vec<_> = errors.iter().filter_map(|e| e.field.as_deref()).collect();
    assert_eq!(
        fields,
        [
            "modbus.actions.set_clock.writes[0].argument",
            "modbus.actions.set_clock.writes",
        ],
        "{errors:#?}"
    );
    assert!(errors[0].message.contains("declares no argument `time`"));
    assert!(
        errors[1]
            .message
            .contains("argument `epoch` of action `set_clock` is written by no step")
    );
}

#[test]
fn action_value_beyond_the_register_should_be_refused() {
    let errors = errors_with("value = 0xA5A5", "value = 70000");
    assert_one(
        &errors,
        "modbus.actions.reboot.writes[0].value",
        &["70000 does not fit `u16` (0 ..= 65535)"],
    );
}

#[test]
fn coil_write_of_a_number_should_be_refused() {
    let errors = errors_with("address = 10, value = true", "address = 10, value = 2");
    assert_one(
        &errors,
        "modbus.actions.self_test.writes[0].value",
        &["a coil takes true or false, not 2"],
    );
}

#[test]
fn confirm_done_also_failed_should_be_refused() {
    let errors = errors_with("done = 2, failed = [3]", "done = 2, failed = [2]");
    assert_one(
        &errors,
        "modbus.actions.self_test.confirm.failed",
        &["2 means done"],
    );
}

#[test]
fn restarting_action_with_confirm_should_be_refused() {
    let errors = errors_with(
        "value = 0xA5A5 }]\nrestarts = true",
        "value = 0xA5A5 }]\nrestarts = true\nconfirm = { table = \"input\", address = 20, done = 2 }",
    );
    assert_one(&errors, "modbus.actions.reboot.confirm", &["never polled"]);
}

#[test]
fn serial_object_outside_the_extended_range_should_be_refused() {
    let errors = errors_with("serial_object = 0x80", "serial_object = 0x05");
    assert_one(
        &errors,
        "modbus.identity.serial_object",
        &["0x05 is not an extended object id", "0x80 to 0xFF"],
    );
}

#[test]
fn unknown_firmware_method_should_be_refused() {
    let errors = errors_with("method = \"file-record\"", "method = \"xmodem\"");
    let fields: Vec<_> = errors.iter().filter_map(|e| e.field.as_deref()).collect();
    assert_eq!(fields, ["firmware.method"], "{errors:#?}");
    assert!(
        errors[0]
            .message
            .contains("`xmodem` is not a firmware method")
    );
}

#[test]
fn file_record_firmware_without_a_map_should_be_refused() {
    let start = DEMO.find("[modbus.firmware]").unwrap();
    let end = DEMO.find("[modbus.logs]").unwrap();
    let text = format!("{}{}", &DEMO[..start], &DEMO[end..]);
    let errors = load(&text).unwrap_err();
    assert_one(
        &errors,
        "modbus.firmware",
        &["needs a `[modbus.firmware]` table"],
    );
}

#[test]
fn firmware_map_without_a_method_should_be_refused() {
    let errors = errors_with(
        "method = \"file-record\"\ndual_bank = true\n",
        "method = \"none\"\n",
    );
    assert_one(&errors, "modbus.firmware", &["`firmware.method` is `none`"]);
}

#[test]
fn firmware_limits_should_be_kept() {
    let errors = errors_with(
        "[modbus.firmware]\n",
        "[modbus.firmware]\nchunk_registers = 123\nrecords_per_file = 10001\n",
    );
    let fields: Vec<_> = errors.iter().filter_map(|e| e.field.as_deref()).collect();
    assert_eq!(
        fields,
        [
            "modbus.firmware.records_per_file",
            "modbus.firmware.chunk_registers",
        ],
        "{errors:#?}"
    );
    assert!(errors[1].message.contains("outside 1 ..= 122"));
}

#[test]
fn firmware_files_too_small_for_the_image_should_be_refused() {
    let errors = errors_with(
        "[modbus.firmware]\n",
        "[modbus.firmware]\nfirst_file = 65535\nrecords_per_file = 100\n",
    );
    assert_one(
        &errors,
        "modbus.firmware.records_per_file",
        &[
            "hold 200 bytes",
            "less than `firmware.max_image_size` (65536)",
        ],
    );
}

#[test]
fn crc32_verify_without_digest_should_be_refused() {
    let errors = errors_with("digest = { table = \"input\", address = 300 }\n", "");
    assert_one(
        &errors,
        "modbus.firmware.digest",
        &["`verify = \"crc32\"`", "give its `digest` point"],
    );
}

#[test]
fn sha256_digest_should_take_16_registers() {
    let errors = errors_with(
        "verify = \"crc32\"\ndigest = { table = \"input\", address = 300 }",
        "verify = \"sha256\"\ndigest = { table = \"input\", address = 300, count = 2 }",
    );
    assert_one(
        &errors,
        "modbus.firmware.digest.count",
        &["a sha256 digest takes 16 registers"],
    );
}

#[test]
fn dual_bank_without_test_value_should_be_refused() {
    let errors = errors_with("test = 1, permanent = 2", "permanent = 2");
    assert_one(
        &errors,
        "modbus.firmware.activate.test",
        &["two-bank device", "test mode"],
    );
}

#[test]
fn banks_should_match_dual_bank() {
    let start = DEMO.find("[modbus.firmware.banks]").unwrap();
    let end = DEMO.find("[modbus.logs]").unwrap();
    let text = format!("{}{}", &DEMO[..start], &DEMO[end..]);
    let errors = load(&text).unwrap_err();
    assert_one(
        &errors,
        "modbus.firmware.banks",
        &["`firmware.dual_bank = true` needs"],
    );

    let single = DEMO
        .replace("dual_bank = true\n", "")
        .replace("test = 1, permanent = 2", "permanent = 2");
    let errors = load(&single).unwrap_err();
    assert_one(&errors, "modbus.firmware.banks", &["two-bank devices"]);
}

#[test]
fn banks_need_two_versions_and_distinct_states() {
    let errors = errors_with(
        "state = { table = \"input\", address = 321 }",
        "state = { table = \"input\", address = 321, confirmed = 1 }",
    );
    assert_one(&errors, "modbus.firmware.banks.state.testing", &["both 1"]);
    let errors = errors_with(
        "    { table = \"input\", address = 338, encoding = \"string\", count = 8 },\n",
        "",
    );
    assert_one(
        &errors,
        "modbus.firmware.banks.versions",
        &["exactly two points", "not 1"],
    );
}

#[test]
fn register_ring_without_a_map_should_be_refused() {
    let start = DEMO.find("[modbus.logs]").unwrap();
    let errors = load(&DEMO[..start]).unwrap_err();
    assert_one(
        &errors,
        "modbus.logs",
        &["`logs.method = \"register-ring\"` needs a `[modbus.logs]` table"],
    );
}

#[test]
fn unknown_log_method_should_be_refused() {
    let errors = errors_with("method = \"register-ring\"", "method = \"syslog\"");
    assert_eq!(
        errors[0].field.as_deref(),
        Some("logs.method"),
        "{errors:#?}"
    );
    assert!(
        errors[0]
            .message
            .contains("register-ring, file-record, serial-diagnostics")
    );
}

#[test]
fn log_ring_past_the_address_space_should_be_refused() {
    let errors = errors_with(
        "address = 1000\nentries = 4",
        "address = 65530\nentries = 4",
    );
    assert_one(
        &errors,
        "modbus.logs.entries",
        &["4 entries of 10 registers from address 65530"],
    );
}

#[test]
fn log_in_files_should_use_file_not_table() {
    let errors = errors_with("method = \"register-ring\"", "method = \"file-record\"");
    let fields: Vec<_> = errors.iter().filter_map(|e| e.field.as_deref()).collect();
    assert_eq!(
        fields,
        [
            "modbus.logs.table",
            "modbus.logs.address",
            "modbus.logs.file"
        ],
        "{errors:#?}"
    );
}

#[test]
fn short_log_entries_and_bad_codes_should_be_refused() {
    let errors = errors_with(
        "entries = 4\nentry_registers = 10",
        "entries = 4\nentry_registers = 5",
    );
    assert_one(
        &errors,
        "modbus.logs.entry_registers",
        &["at least 6 registers"],
    );
    let errors = errors_with("codes = { \"17\"", "codes = { \"fan\"");
    assert_one(&errors, "modbus.logs.codes.fan", &["numbers 0 to 65535"]);
}

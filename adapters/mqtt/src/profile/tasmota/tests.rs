use std::path::{Path, PathBuf};

use iotmc_adapter::{LocatedError, Profile};

use crate::profile::{Dialect, load_section};

/// A plug with one writable and one read-only parameter and a reboot action, followed by the
/// `[mqtt.tasmota]` tables under test.
fn profile_with(tables: &str) -> Profile {
    let text = format!(
        r#"
id = "plug"
manufacturer = "m"
model = "m"
protocol = "mqtt"
[[parameters]]
name = "power"
type = "bool"
access = "read-write"
[[parameters]]
name = "watts"
type = "float"
[[actions]]
name = "reboot"
kind = "reboot"
[[actions]]
name = "blink"
[[actions.arguments]]
name = "count"
type = "int"
[firmware]
method = "url-pull"
[logs]
method = "topic"
[mqtt]
dialect = "tasmota"
[mqtt.tasmota]
{tables}
"#
    );
    Profile::from_toml(Path::new("plug.toml"), &text).unwrap()
}

const GOOD: &str = r#"
[mqtt.tasmota.parameters.power]
command = "Power1"
pointer = "/POWER"
map = { ON = true, OFF = false }
tele = { topic = "STATE", pointer = "/POWER" }
[mqtt.tasmota.parameters.watts]
status = 8
pointer = "/StatusSNS/ENERGY/Power"
[mqtt.tasmota.actions.reboot]
command = "Restart"
payload = "1"
restarts = true
[mqtt.tasmota.actions.blink]
command = "Power1"
payload = "BLINK {count}"
"#;

fn check_errors(tables: &str) -> Vec<LocatedError> {
    load_section(&profile_with(tables)).unwrap_err()
}

/// Asserts one error is located at `field` and says `words`.
#[track_caller]
fn assert_error(errors: &[LocatedError], field: &str, words: &str) {
    assert!(
        errors
            .iter()
            .any(|e| e.field.as_deref() == Some(field) && e.message.contains(words)),
        "no error at `{field}` saying {words:?}; got:\n{}",
        errors
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn the_shipped_tasmota_plug_profile_should_load_and_validate() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../device-profiles/mqtt/tasmota-plug.toml");
    let profile = Profile::load(&path).unwrap_or_else(|e| panic!("{e:?}"));
    let section = load_section(&profile).unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(section.dialect, Dialect::Tasmota);
    let tasmota = section.tasmota.unwrap();
    assert_eq!(
        tasmota.actions["factory_reset"].payload, "6",
        "the shipped plug must keep Wi-Fi and MQTT on a factory reset"
    );
    assert_eq!(tasmota.parameters.len(), profile.parameters.len());
}

#[test]
fn a_complete_mapping_should_validate() {
    let section = load_section(&profile_with(GOOD)).unwrap_or_else(|e| panic!("{e:?}"));
    let tasmota = section.tasmota.unwrap();
    assert_eq!(tasmota.full_topic, "%prefix%/%topic%/");
    assert_eq!(tasmota.identity.firmware_version, "/StatusFWR/Version");
    assert_eq!(tasmota.upgrade_timeout, std::time::Duration::from_secs(300));
}

#[test]
fn a_parameter_without_mapping_should_be_named() {
    let tables = GOOD.replace(
        "[mqtt.tasmota.parameters.watts]\nstatus = 8\npointer = \"/StatusSNS/ENERGY/Power\"\n",
        "",
    );
    assert_error(
        &check_errors(&tables),
        "mqtt.tasmota.parameters",
        "parameter `watts` has no mapping",
    );
}

#[test]
fn a_mapping_for_an_undeclared_parameter_or_action_should_be_refused() {
    let tables = format!(
        "{GOOD}\n[mqtt.tasmota.parameters.volts]\nstatus = 8\npointer = \"/x\"\n[mqtt.tasmota.actions.dance]\ncommand = \"Dance\"\n"
    );
    let errors = check_errors(&tables);
    assert_error(
        &errors,
        "mqtt.tasmota.parameters.volts",
        "no parameter `volts`",
    );
    assert_error(&errors, "mqtt.tasmota.actions.dance", "no action `dance`");
}

#[test]
fn a_parameter_read_two_ways_or_none_should_be_refused() {
    let both = GOOD.replace("status = 8", "status = 8\ncommand = \"Status\"");
    assert_error(
        &check_errors(&both),
        "mqtt.tasmota.parameters.watts",
        "not both",
    );
    let neither = GOOD.replace("status = 8\n", "");
    assert_error(
        &check_errors(&neither),
        "mqtt.tasmota.parameters.watts",
        "needs `command`",
    );
}

#[test]
fn a_writable_parameter_read_by_status_should_be_refused() {
    let tables = GOOD.replace(
        "command = \"Power1\"\npointer = \"/POWER\"",
        "status = 11\npointer = \"/StatusSTS/POWER\"",
    );
    assert_error(
        &check_errors(&tables),
        "mqtt.tasmota.parameters.power.status",
        "needs the `command` that sets it",
    );
}

#[test]
fn bad_commands_statuses_and_pointers_should_be_located() {
    let errors = check_errors(
        &GOOD
            .replace(
                "command = \"Power1\"\npointer = \"/POWER\"",
                "command = \"Power 1\"\npointer = \"POWER\"",
            )
            .replace("status = 8", "status = 14")
            .replace("pointer = \"/POWER\" }", "pointer = \"/a~2\" }"),
    );
    assert_error(
        &errors,
        "mqtt.tasmota.parameters.power.command",
        "not a Tasmota command name",
    );
    assert_error(
        &errors,
        "mqtt.tasmota.parameters.power.pointer",
        "must be empty or start with `/`",
    );
    assert_error(&errors, "mqtt.tasmota.parameters.power.tele.pointer", "`~`");
    assert_error(
        &errors,
        "mqtt.tasmota.parameters.watts.status",
        "Status 14 does not exist",
    );
}

#[test]
fn value_maps_should_fit_the_parameter_and_cover_every_written_value() {
    let wrong_type = GOOD.replace(
        "map = { ON = true, OFF = false }",
        "map = { ON = true, OFF = \"off\" }",
    );
    assert_error(
        &check_errors(&wrong_type),
        "mqtt.tasmota.parameters.power.map",
        "OFF",
    );
    let incomplete = GOOD.replace("map = { ON = true, OFF = false }", "map = { ON = true }");
    assert_error(
        &check_errors(&incomplete),
        "mqtt.tasmota.parameters.power.map",
        "no device word for false",
    );
    let twice = GOOD.replace(
        "map = { ON = true, OFF = false }",
        "map = { ON = true, \"1\" = true, OFF = false }",
    );
    assert_error(
        &check_errors(&twice),
        "mqtt.tasmota.parameters.power.map",
        "two device words",
    );
}

#[test]
fn action_payloads_should_use_exactly_the_declared_arguments() {
    let unknown = GOOD.replace("BLINK {count}", "BLINK {times}");
    let errors = check_errors(&unknown);
    assert_error(
        &errors,
        "mqtt.tasmota.actions.blink.payload",
        "`{times}` names no argument",
    );
    assert_error(
        &errors,
        "mqtt.tasmota.actions.blink.payload",
        "argument `count` is not used",
    );
    let broken = GOOD.replace("BLINK {count}", "BLINK {count");
    assert_error(
        &check_errors(&broken),
        "mqtt.tasmota.actions.blink.payload",
        "without `}`",
    );
}

#[test]
fn a_reboot_that_does_not_restart_should_be_refused() {
    let tables = GOOD.replace("restarts = true", "");
    assert_error(
        &check_errors(&tables),
        "mqtt.tasmota.actions.reboot.restarts",
        "set `restarts = true`",
    );
}

#[test]
fn section_wide_settings_should_be_checked() {
    let tables = format!(
        "full_topic = \"%prefix%/plug/\"\nmqtt_log_level = 5\nupgrade_timeout = \"2s\"\n{GOOD}"
    );
    let errors = check_errors(&tables);
    assert_error(&errors, "mqtt.tasmota.full_topic", "%topic%");
    assert_error(&errors, "mqtt.tasmota.mqtt_log_level", "0 (off) to 4");
    assert_error(&errors, "mqtt.tasmota.upgrade_timeout", "outside 10s..1h");
    let wildcard = format!("full_topic = \"%prefix%/+/%topic%/\"\n{GOOD}");
    assert_error(
        &check_errors(&wildcard),
        "mqtt.tasmota.full_topic",
        "wildcard",
    );
}

#[test]
fn firmware_and_log_methods_should_be_tasmotas() {
    let profile_text = |firmware: &str, logs: &str, dual: bool| {
        let base = profile_with(GOOD);
        let text = base
            .source()
            .text()
            .replace(
                "[firmware]\nmethod = \"url-pull\"",
                &format!("[firmware]\nmethod = \"{firmware}\"\ndual_bank = {dual}"),
            )
            .replace(
                "[logs]\nmethod = \"topic\"",
                &format!("[logs]\nmethod = \"{logs}\""),
            );
        Profile::from_toml(Path::new("plug.toml"), &text).unwrap()
    };
    let errors = load_section(&profile_text("chunked", "request", false)).unwrap_err();
    assert_error(&errors, "firmware.method", "url-pull");
    assert_error(&errors, "logs.method", "topic");
    let errors = load_section(&profile_text("url-pull", "topic", true)).unwrap_err();
    assert_error(&errors, "firmware.dual_bank", "one firmware bank");
}

#[test]
fn unknown_fields_should_be_refused() {
    let tables = GOOD.replace("restarts = true", "restarts = true\nreboots = true");
    let errors = check_errors(&tables);
    assert!(
        errors.iter().any(|e| e.message.contains("reboots")),
        "{errors:?}"
    );
}

#[test]
fn schema_should_document_the_tasmota_table() {
    let schema =
        serde_json::to_string(&schemars::schema_for!(crate::profile::MqttSection)).unwrap();
    for words in [
        "full_topic",
        "mqtt_log_level",
        "upgrade_timeout",
        "restarts",
        "SENSOR",
        "/StatusFWR/Version",
        "value map",
    ] {
        assert!(schema.contains(words), "{words} missing from the schema");
    }
}

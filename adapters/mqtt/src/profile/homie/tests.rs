use std::path::Path;

use iotmc_adapter::{LocatedError, Profile};

use crate::profile::load_section;

use super::*;

const COMMON: &str = r#"
id = "t"
manufacturer = "m"
model = "m"
protocol = "mqtt"
[[parameters]]
name = "temperature"
type = "float"
[[parameters]]
name = "setpoint"
type = "float"
access = "read-write"
range = { min = 5, max = 30 }
[[actions]]
name = "reboot"
kind = "reboot"
[[actions]]
name = "boost"
[[actions.arguments]]
name = "minutes"
type = "int"
"#;

const GOOD: &str = r#"
[mqtt]
dialect = "homie"
[mqtt.homie.parameters]
temperature = "thermostat/temperature"
setpoint = "thermostat/setpoint"
[mqtt.homie.actions.reboot]
property = "system/reboot"
payload = "true"
confirm = "restart"
[mqtt.homie.actions.boost]
property = "thermostat/boost"
argument = "minutes"
confirm = "value"
[mqtt.homie.identity]
serial = { property = "system/serial" }
firmware_version = { property = "system/firmware" }
hardware_version = { description = "type" }
"#;

fn load(text: &str) -> Result<crate::profile::MqttSection, Vec<LocatedError>> {
    let profile = Profile::from_toml(Path::new("homie-test.toml"), text)
        .unwrap_or_else(|e| panic!("common part: {e:?}"));
    load_section(&profile)
}

fn errors(text: &str) -> Vec<LocatedError> {
    match load(text) {
        Ok(_) => panic!("expected errors for:\n{text}"),
        Err(errors) => errors,
    }
}

/// Asserts one error is at `field` (on the line holding `line_text` when given) and says
/// `expected`.
fn assert_error(errors: &[LocatedError], field: &str, expected: &str) {
    assert!(
        errors.iter().any(|e| e.field.as_deref() == Some(field)
            && e.message.contains(expected)
            && e.line.is_some()),
        "no located error at `{field}` saying {expected:?} in:\n{}",
        errors
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn a_complete_mapping_should_load_with_its_defaults() {
    let section = load(&format!("{COMMON}{GOOD}")).unwrap();
    let homie = section.homie.unwrap();
    assert_eq!(homie.domain, "homie");
    assert_eq!(
        homie.parameter_path("setpoint").unwrap().to_string(),
        "thermostat/setpoint"
    );
    assert_eq!(homie.actions["reboot"].confirm, ActionConfirm::Restart);
    assert_eq!(
        homie.identity.hardware_version,
        Some(IdentitySource::Description(DescriptionField::Type))
    );
}

#[test]
fn unmapped_and_undeclared_parameters_should_be_located() {
    let text = format!("{COMMON}{GOOD}").replace(
        "temperature = \"thermostat/temperature\"\n",
        "humidity = \"thermostat/humidity\"\n",
    );
    let errors = errors(&text);
    assert_error(
        &errors,
        "mqtt.homie.parameters",
        "parameter `temperature` has no property",
    );
    assert_error(
        &errors,
        "mqtt.homie.parameters.humidity",
        "declares no parameter `humidity`",
    );
}

#[test]
fn property_paths_should_be_two_homie_ids_used_once() {
    let text = format!("{COMMON}{GOOD}")
        .replace("\"thermostat/temperature\"", "\"Thermostat/temperature\"")
        .replace("\"system/serial\"", "\"serial\"");
    let found = errors(&text);
    assert_error(&found, "mqtt.homie.parameters.temperature", "two Homie IDs");
    assert_error(
        &found,
        "mqtt.homie.identity.serial.property",
        "<node>/<property>",
    );
    let text =
        format!("{COMMON}{GOOD}").replace("\"thermostat/setpoint\"", "\"thermostat/temperature\"");
    assert_error(
        &errors(&text),
        "mqtt.homie.parameters.setpoint",
        "already carries parameter `temperature`",
    );
}

#[test]
fn actions_should_be_mapped_with_one_payload_source() {
    let text = format!("{COMMON}{GOOD}").replace("argument = \"minutes\"\n", "");
    assert_error(
        &errors(&text),
        "mqtt.homie.actions.boost",
        "exactly one of `payload`",
    );
    let text = format!("{COMMON}{GOOD}").replace("argument = \"minutes\"", "payload = \"30\"");
    assert_error(&errors(&text), "mqtt.homie.actions.boost", "leaves unused");
    let text = format!("{COMMON}{GOOD}").replace("argument = \"minutes\"", "argument = \"hours\"");
    assert_error(
        &errors(&text),
        "mqtt.homie.actions.boost.argument",
        "no argument `hours`",
    );
    let text = format!("{COMMON}{GOOD}").replace("payload = \"true\"", "payload = \"\"");
    assert_error(
        &errors(&text),
        "mqtt.homie.actions.reboot.payload",
        "empty payload",
    );
    let text = format!("{COMMON}{GOOD}").replace(
        "[mqtt.homie.actions.reboot]\nproperty = \"system/reboot\"\npayload = \"true\"\nconfirm = \"restart\"\n",
        "[mqtt.homie.actions.restart]\nproperty = \"system/reboot\"\npayload = \"true\"\nconfirm = \"restart\"\n",
    );
    let errors = errors(&text);
    assert_error(
        &errors,
        "mqtt.homie.actions",
        "action `reboot` has no mapping",
    );
    assert_error(
        &errors,
        "mqtt.homie.actions.restart",
        "declares no action `restart`",
    );
}

#[test]
fn an_action_without_a_confirmation_should_be_refused_by_the_schema() {
    let text = format!("{COMMON}{GOOD}").replace("confirm = \"restart\"\n", "");
    assert_error(&errors(&text), "mqtt.homie.actions.reboot", "confirm");
    let text = format!("{COMMON}{GOOD}").replace("confirm = \"restart\"", "confirm = \"reboot\"");
    assert_error(
        &errors(&text),
        "mqtt.homie.actions.reboot.confirm",
        "restart",
    );
}

#[test]
fn firmware_methods_should_be_refused_for_homie_and_log_methods_checked() {
    let text =
        format!("{COMMON}[firmware]\nmethod = \"url-pull\"\n[logs]\nmethod = \"request\"\n{GOOD}");
    let errors = errors(&text);
    assert_error(
        &errors,
        "firmware.method",
        "the Homie convention defines no firmware update",
    );
    assert_error(&errors, "logs.method", "use `topic`");
    let text = format!("{COMMON}[logs]\nmethod = \"topic\"\n{GOOD}");
    assert!(load(&text).is_ok());
}

#[test]
fn the_domain_should_be_one_homie_id() {
    let text = format!("{COMMON}{GOOD}").replace(
        "dialect = \"homie\"\n",
        "dialect = \"homie\"\n[mqtt.homie]\ndomain = \"my/homie\"\n",
    );
    assert_error(&errors(&text), "mqtt.homie.domain", "one Homie ID");
}

#[test]
fn unknown_fields_should_be_refused() {
    let text =
        format!("{COMMON}{GOOD}").replace("confirm = \"value\"", "confirm = \"value\"\nqos = 2");
    assert_error(
        &errors(&text),
        "mqtt.homie.actions.boost.qos",
        "unknown field",
    );
}

use std::path::{Path, PathBuf};

use iotmc_adapter::{LocatedError, Profile};

use super::*;
use crate::profile::load_section;

fn shipped_text() -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../device-profiles/mqtt/iotmc-mqtt5-controller.toml");
    std::fs::read_to_string(path).unwrap()
}

fn load(text: &str) -> Result<GenericSection, Vec<LocatedError>> {
    let profile =
        Profile::from_toml(Path::new("ahu.toml"), text).unwrap_or_else(|e| panic!("{e:?}"));
    load_section(&profile).map(|s| s.generic.unwrap())
}

/// The fields of the errors of `text`, with each message, for assertions.
fn errors(text: &str) -> Vec<(String, String)> {
    load(text)
        .err()
        .unwrap_or_else(|| panic!("the profile loaded without errors"))
        .into_iter()
        .map(|e| (e.field.clone().unwrap_or_default(), e.to_string()))
        .collect()
}

fn has(errors: &[(String, String)], field: &str, words: &str) -> bool {
    errors
        .iter()
        .any(|(f, message)| f == field && message.contains(words))
}

#[test]
fn shipped_controller_profile_should_load() {
    let section = load(&shipped_text()).unwrap_or_else(|e| panic!("{e:#?}"));
    assert_eq!(section.parameters.len(), 7);
    assert_eq!(section.actions.len(), 4);
    assert_eq!(section.error_pointer, "/error");
    let setpoint = &section.parameters["setpoint"];
    assert_eq!(setpoint.read_pointer(), Some("/setpoint"));
    assert_eq!(setpoint.write_pointer(), Some("/values/setpoint"));
    assert_eq!(
        setpoint.read.as_ref().map(|r| r.payload.clone()),
        Some(serde_json::json!({"op": "get"}))
    );
    assert_eq!(section.firmware.as_ref().map(|f| f.chunk_size), Some(4096));
    assert_eq!(
        section.first_request().as_deref(),
        Some("mqtt.generic.identity.request")
    );
}

#[test]
fn every_parameter_and_action_should_need_a_mapping() {
    let text = shipped_text()
        .replace(
            "[mqtt.generic.parameters.alarm]",
            "[mqtt.generic.parameters.alarms]",
        )
        .replace(
            "[mqtt.generic.actions.boost]",
            "[mqtt.generic.actions.boosts]",
        );
    let found = errors(&text);
    assert!(
        has(
            &found,
            "mqtt.generic.parameters",
            "parameter `alarm` has no mapping"
        ),
        "{found:#?}"
    );
    assert!(
        has(
            &found,
            "mqtt.generic.parameters.alarms",
            "declares no parameter `alarms`"
        ),
        "{found:#?}"
    );
    assert!(
        has(
            &found,
            "mqtt.generic.actions",
            "action `boost` has no mapping"
        ),
        "{found:#?}"
    );
    assert!(
        has(
            &found,
            "mqtt.generic.actions.boosts",
            "declares no action `boosts`"
        ),
        "{found:#?}"
    );
    // Located at their lines, not just named.
    let located = load(&text).unwrap_err();
    assert!(located.iter().all(|e| e.line.is_some()), "{located:#?}");
}

#[test]
fn access_should_agree_with_the_mapping() {
    let text = shipped_text()
        .replace(
            "pointer = \"/alarm\"\nstate_topic = \"iotmc/ahu/{device}/state\"\nread = { topic = \"iotmc/ahu/{device}/rpc\", payload = { op = \"get\" } }",
            "pointer = \"/alarm\"\nwrite = { topic = \"iotmc/ahu/{device}/rpc\" }",
        )
        .replace(
            "write = { topic = \"iotmc/ahu/{device}/rpc\", payload = { op = \"set\" }, pointer = \"/values/mode\" }",
            "",
        );
    let found = errors(&text);
    assert!(
        has(&found, "mqtt.generic.parameters.alarm", "is readable"),
        "{found:#?}"
    );
    assert!(
        has(
            &found,
            "mqtt.generic.parameters.alarm.write",
            "is read-only"
        ),
        "{found:#?}"
    );
    assert!(
        has(&found, "mqtt.generic.parameters.mode", "is writable"),
        "{found:#?}"
    );
}

#[test]
fn pointers_and_topics_should_be_checked() {
    let text = shipped_text()
        .replace("pointer = \"/supply/temperature\"", "pointer = \"supply.temperature\"")
        .replace(
            "[mqtt.generic.parameters.extract_temperature]\npointer = \"/extract/temperature\"\nstate_topic = \"iotmc/ahu/{device}/state\"",
            "[mqtt.generic.parameters.extract_temperature]\npointer = \"/extract/temperature\"\nstate_topic = \"iotmc/ahu/+/state\"",
        )
        .replace("topic = \"iotmc/ahu/{device}/firmware\"", "topic = \"iotmc/ahu/{id}/firmware\"")
        .replace("error_pointer = \"/error\"", "error_pointer = \"/err~\"");
    let found = errors(&text);
    assert!(
        has(
            &found,
            "mqtt.generic.parameters.supply_temperature.pointer",
            "must be empty or start with `/`"
        ),
        "{found:#?}"
    );
    assert!(
        has(
            &found,
            "mqtt.generic.parameters.extract_temperature.state_topic",
            "wildcard"
        ),
        "{found:#?}"
    );
    assert!(
        has(
            &found,
            "mqtt.generic.firmware.topic",
            "placeholder other than `{device}`"
        ),
        "{found:#?}"
    );
    assert!(
        has(&found, "mqtt.generic.error_pointer", "`~`"),
        "{found:#?}"
    );
}

#[test]
fn write_pointers_should_fit_the_payload_template() {
    let text = shipped_text().replace(
        "payload = { op = \"set\" }, pointer = \"/values/fan\"",
        "payload = { op = \"set\", values = [1] }, pointer = \"/values/fan\"",
    );
    let found = errors(&text);
    assert!(
        has(
            &found,
            "mqtt.generic.parameters.supply_fan_speed.write.pointer",
            "not a JSON object"
        ),
        "{found:#?}"
    );
}

#[test]
fn action_arguments_should_be_mapped_exactly() {
    let text = shipped_text().replace(
        "arguments = { minutes = \"/minutes\" }",
        "arguments = { hours = \"/hours\" }",
    );
    let found = errors(&text);
    assert!(
        has(
            &found,
            "mqtt.generic.actions.boost.arguments",
            "argument `minutes` needs the JSON pointer"
        ),
        "{found:#?}"
    );
    assert!(
        has(
            &found,
            "mqtt.generic.actions.boost.arguments.hours",
            "declares no argument `hours`"
        ),
        "{found:#?}"
    );
}

#[test]
fn restarts_and_firmware_should_need_availability() {
    let text = shipped_text().replace(
        "availability = { topic = \"iotmc/ahu/{device}/status\" }\n",
        "",
    );
    let found = errors(&text);
    assert!(
        has(
            &found,
            "mqtt.generic.actions.reboot.restarts",
            "needs `availability`"
        ),
        "{found:#?}"
    );
    assert!(
        has(&found, "mqtt.generic.firmware", "give `availability`"),
        "{found:#?}"
    );
}

#[test]
fn firmware_and_log_methods_should_be_the_dialect_s() {
    let text = shipped_text()
        .replace("method = \"chunked\"", "method = \"url-pull\"")
        .replace("[logs]\nmethod = \"request\"", "[logs]\nmethod = \"topic\"");
    let found = errors(&text);
    assert!(
        has(
            &found,
            "mqtt.generic.firmware",
            "method \"chunked\", not \"url-pull\""
        ),
        "{found:#?}"
    );
    assert!(
        has(&found, "mqtt.generic.logs.topic", "needs `topic`"),
        "{found:#?}"
    );
    assert!(
        has(
            &found,
            "mqtt.generic.logs.request_topic",
            "is for `logs.method = \"request\"`"
        ),
        "{found:#?}"
    );
}

#[test]
fn chunk_size_should_be_bounded() {
    let text = shipped_text().replace("chunk_size = 4096", "chunk_size = 16");
    let found = errors(&text);
    assert!(
        has(&found, "mqtt.generic.firmware.chunk_size", "outside 64"),
        "{found:#?}"
    );
}

#[test]
fn identity_should_come_from_one_place() {
    let text = shipped_text().replace(
        "identity = { request = { topic = \"iotmc/ahu/{device}/rpc\", payload = { op = \"info\" } } }",
        "identity = { request = { topic = \"iotmc/ahu/{device}/rpc\" }, topic = \"iotmc/ahu/{device}/info\" }",
    );
    let found = errors(&text);
    assert!(
        has(&found, "mqtt.generic.identity", "either `request`"),
        "{found:#?}"
    );
    let retained = shipped_text().replace(
        "identity = { request = { topic = \"iotmc/ahu/{device}/rpc\", payload = { op = \"info\" } } }",
        "identity = { topic = \"iotmc/ahu/{device}/info\", serial = \"/sn\" }",
    );
    let section = load(&retained).unwrap_or_else(|e| panic!("{e:#?}"));
    assert_eq!(section.identity.map(|i| i.serial), Some("/sn".to_owned()));
}

#[test]
fn unknown_fields_should_be_refused_with_their_line() {
    let text = shipped_text().replace("restarts = true", "restart = true");
    let profile = Profile::from_toml(Path::new("ahu.toml"), &text).unwrap();
    let err = load_section(&profile).unwrap_err();
    assert!(
        err[0].message.contains("unknown field `restart`"),
        "{err:#?}"
    );
    assert!(err[0].line.is_some(), "{err:#?}");
}

#[test]
fn templates_should_expand_the_device() {
    assert_eq!(expand("a/{device}/b/{device}", "x/y"), "a/x/y/b/x/y");
    assert!(check_template("a/{device}/b").is_ok());
    assert!(check_template("a/{dev}/b").is_err());
    assert!(check_template("").is_err());
    assert!(check_template("a/#").is_err());
}

#[test]
fn schema_should_document_the_generic_table() {
    let schema =
        serde_json::to_string(&schemars::schema_for!(crate::profile::MqttSection)).unwrap();
    for words in [
        "error_pointer",
        "state_topic",
        "chunk_size",
        "request_topic",
        "{device}",
    ] {
        assert!(schema.contains(words), "{words} missing from the schema");
    }
}

const SHIPPED_IDENTITY: &str =
    "identity = { request = { topic = \"iotmc/ahu/{device}/rpc\", payload = { op = \"info\" } } }";

/// The shipped profile with `identity` replaced by a table and the given proof table appended.
fn with_proof(proof: &str) -> String {
    let shipped = shipped_text();
    assert!(shipped.contains(SHIPPED_IDENTITY));
    format!(
        "{}\n[mqtt.generic.identity]\nrequest = {{ topic = \"iotmc/ahu/{{device}}/rpc\", payload = {{ op = \"info\" }} }}\n\n[mqtt.generic.identity.proof]\n{proof}\n",
        shipped.replace(SHIPPED_IDENTITY, "")
    )
}

#[test]
fn a_proof_section_should_load_with_its_defaults() {
    let section = load(&with_proof(
        "request = { topic = \"iotmc/ahu/{device}/rpc\", payload = { op = \"prove\" } }\necho = \"/nonce\"\ntimeout = \"10s\"",
    ))
    .unwrap_or_else(|e| panic!("{e:#?}"));
    let proof = section.identity.and_then(|i| i.proof).unwrap();
    assert_eq!(proof.request.payload, serde_json::json!({"op": "prove"}));
    assert_eq!(proof.nonce, "/nonce");
    assert_eq!(proof.certificate, "/certificate");
    assert_eq!(proof.signature, "/signature");
    assert_eq!(proof.echo.as_deref(), Some("/nonce"));
    assert_eq!(proof.address, None);
    assert_eq!(proof.timeout, Some(std::time::Duration::from_secs(10)));
    // The shipped profile declares no proof.
    let shipped = load(&shipped_text()).unwrap();
    assert_eq!(shipped.identity.and_then(|i| i.proof), None);
}

#[test]
fn a_bad_proof_section_should_be_refused_with_located_errors() {
    let text = with_proof(
        "request = { topic = \"iotmc/ahu/{dev}/rpc\", payload = { op = \"prove\", nonce = \"fixed\" }, pointer = \"/x\" }\nnonce = \"/nonce/value\"\naddress = \"nonce\"\ncertificate = \"\"\nsignature = \"/sig~2\"\ntimeout = \"0s\"",
    );
    let found = errors(&text);
    for (field, words) in [
        ("mqtt.generic.identity.proof.request.topic", "{device}"),
        (
            "mqtt.generic.identity.proof.request.pointer",
            "remove `pointer`",
        ),
        ("mqtt.generic.identity.proof.nonce", "not a JSON object"),
        ("mqtt.generic.identity.proof.address", "start with `/`"),
        ("mqtt.generic.identity.proof.certificate", "whole answer"),
        ("mqtt.generic.identity.proof.signature", "~"),
        ("mqtt.generic.identity.proof.timeout", "outside"),
    ] {
        assert!(
            has(&found, field, words),
            "{field}: {words:?} in {found:#?}"
        );
    }
    let errors = load(&text).unwrap_err();
    assert!(
        errors.iter().all(|e| e.to_string().contains("ahu.toml")),
        "{errors:#?}"
    );
}

#[test]
fn the_proof_s_pointers_should_not_collide() {
    let found = errors(&with_proof(
        "request = { topic = \"iotmc/ahu/{device}/rpc\" }\naddress = \"/nonce\"\ncertificate = \"/proof\"\nsignature = \"/proof\"",
    ));
    assert!(
        has(
            &found,
            "mqtt.generic.identity.proof.address",
            "different pointers"
        ),
        "{found:#?}"
    );
    assert!(
        has(
            &found,
            "mqtt.generic.identity.proof.signature",
            "different pointers"
        ),
        "{found:#?}"
    );
}

#[test]
fn unknown_proof_fields_should_be_refused() {
    let text = with_proof("request = { topic = \"iotmc/ahu/{device}/rpc\" }\nkey = \"/key\"");
    let profile = Profile::from_toml(Path::new("ahu.toml"), &text).unwrap();
    let err = load_section(&profile).unwrap_err();
    assert!(err[0].message.contains("unknown field `key`"), "{err:#?}");
}

#[test]
fn a_proof_request_should_need_mqtt_5_even_with_a_retained_info_topic() {
    let text = shipped_text().replace(
        SHIPPED_IDENTITY,
        "identity = { topic = \"iotmc/ahu/{device}/info\", proof = { request = { topic = \"iotmc/ahu/{device}/rpc\" } } }",
    );
    let loaded = load(&text).unwrap_or_else(|e| panic!("{e:#?}"));
    // Only identity left: the proof is the first request.
    let section = GenericSection {
        parameters: BTreeMap::new(),
        actions: BTreeMap::new(),
        firmware: None,
        logs: None,
        ..loaded
    };
    assert_eq!(
        section.first_request().as_deref(),
        Some("mqtt.generic.identity.proof.request")
    );
}

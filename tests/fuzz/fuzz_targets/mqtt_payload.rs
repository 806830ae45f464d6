//! Every MQTT payload decoder takes any topic and payload without panicking: JSON with its
//! bounds and pointers, Tasmota answers, telemetry, last wills and log lines, Homie `$state`,
//! values, `$description` and log lines, the generic dialect's answers (values, firmware, banks,
//! log records), and discovery announcements. The first byte picks the decoder, the next byte
//! how much of the rest is the topic.
#![no_main]

use std::path::Path;
use std::sync::OnceLock;

use iotmc_adapter::Profile;
use iotmc_adapter_mqtt::codec::{discovery, generic, homie, json, tasmota};
use libfuzzer_sys::fuzz_target;

fn profile() -> &'static Profile {
    static PROFILE: OnceLock<Profile> = OnceLock::new();
    PROFILE.get_or_init(|| {
        Profile::from_toml(
            Path::new("fuzz.toml"),
            r#"
id = "fuzz"
manufacturer = "fuzz"
model = "fuzz"
protocol = "mqtt"
[[parameters]]
name = "power"
type = "bool"
[[parameters]]
name = "count"
type = "int"
range = { min = -5, max = 5000 }
[[parameters]]
name = "temperature"
type = "float"
[[parameters]]
name = "mode"
type = "enum"
values = ["off", "heat", "cool"]
[[parameters]]
name = "label"
type = "string"
max_length = 16
"#,
        )
        .expect("the fuzz profile is valid")
    })
}

fuzz_target!(|data: &[u8]| {
    let [selector, split, rest @ ..] = data else {
        return;
    };
    let cut = usize::from(*split).min(rest.len());
    let (topic, payload) = rest.split_at(cut);
    let topic = String::from_utf8_lossy(topic);
    let parameters = &profile().parameters;
    let parameter = &parameters[usize::from(*selector >> 4) % parameters.len()];
    match selector % 12 {
        0 => {
            if let Ok(value) = json::parse(&topic, payload) {
                let _ = json::to_value(parameter, &value);
                let _ = json::check_pointer(&topic);
                let _ = value.pointer(&topic);
            }
        }
        1 => {
            let _ = homie::decode_state(&topic, payload);
        }
        2 => {
            if let Ok(value) = homie::decode_value(&topic, parameter, payload) {
                let _ = homie::encode_value(&value, None);
            }
        }
        3 => {
            let _ = homie::decode_description(&topic, payload);
        }
        4 => {
            let _ = homie::decode_log_line(&topic, payload);
            let _ = homie::DeviceTopic::classify(&topic);
        }
        5 => {
            if let Ok(Ok(answer)) = generic::answer(&topic, payload, "/error") {
                let _ = generic::value_at(&topic, &answer, "/value", parameter);
                let _ = generic::text_at(&topic, &answer, "/version");
                let _ = generic::begin_offset(&topic, &answer, 1 << 20);
                let _ = generic::acknowledged(&topic, &answer, 1 << 20);
                let _ = generic::sha256(&topic, &answer);
            }
        }
        6 => {
            if let Ok(Ok(answer)) = generic::answer(&topic, payload, "/error") {
                let _ = generic::banks(&topic, &answer);
                let _ = generic::log_answer(&topic, &answer);
            }
        }
        7 => {
            let _ = discovery::announcement(&topic, payload);
        }
        _ => tasmota_payloads(&topic, payload, parameter),
    }
});

fn tasmota_payloads(topic: &str, payload: &[u8], parameter: &iotmc_adapter::profile::Parameter) {
    let suffix = topic.rsplit('/').next().unwrap_or_default();
    let _ = tasmota::decode_stat(topic, suffix, payload);
    let _ = tasmota::decode_lwt(payload);
    let _ = tasmota::decode_log_line(topic, payload);
    if let Ok(object) = tasmota::object(topic, payload) {
        let _ = tasmota::upgrade_started(&object);
        let json = serde_json::Value::Object(object);
        let found = tasmota::lookup(&json, suffix).unwrap_or(&json);
        let map = [
            ("ON".to_owned(), iotmc_adapter::Value::Bool(true)),
            ("OFF".to_owned(), iotmc_adapter::Value::Bool(false)),
        ];
        for map in [&map[..], &[]] {
            if let Ok(value) = tasmota::decode_value(parameter, map, found) {
                let _ = tasmota::encode_value(parameter, map, &value);
            }
        }
    }
    if let Ok(text) = std::str::from_utf8(payload) {
        let _ = tasmota::same_version(text, topic);
        let _ = tasmota::core_version(text);
    }
}

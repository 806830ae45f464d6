use std::path::Path;

use iotmc_adapter::Profile;

use super::*;

fn profile() -> Profile {
    Profile::from_toml(
        Path::new("t.toml"),
        r#"
id = "t"
manufacturer = "m"
model = "m"
protocol = "mqtt"
[[parameters]]
name = "heating"
type = "bool"
[[parameters]]
name = "uptime"
type = "int"
[[parameters]]
name = "temperature"
type = "float"
[[parameters]]
name = "mode"
type = "enum"
values = ["off", "heat"]
[[parameters]]
name = "label"
type = "string"
"#,
    )
    .unwrap()
}

fn decode(name: &str, payload: &[u8]) -> Result<Value, PayloadError> {
    let profile = profile();
    decode_value("homie/5/d/n/p", profile.parameter(name).unwrap(), payload)
}

#[test]
fn homie_payloads_should_decode_into_the_parameter_types() {
    assert_eq!(decode("heating", b"true"), Ok(Value::Bool(true)));
    assert_eq!(decode("heating", b"false"), Ok(Value::Bool(false)));
    assert_eq!(decode("uptime", b"-42"), Ok(Value::Int(-42)));
    assert_eq!(decode("temperature", b"21.5"), Ok(Value::Float(21.5)));
    assert_eq!(decode("temperature", b"21"), Ok(Value::Float(21.0)));
    assert_eq!(decode("temperature", b"-2.5e1"), Ok(Value::Float(-25.0)));
    assert_eq!(decode("mode", b"heat"), Ok(Value::Text("heat".into())));
    assert_eq!(decode("label", b"hall"), Ok(Value::Text("hall".into())));
    // The empty string travels as one NUL byte.
    assert_eq!(decode("label", b"\0"), Ok(Value::Text(String::new())));
}

#[test]
fn payloads_outside_homie_rules_should_be_refused_naming_topic_and_expectation() {
    for (name, payload, expected) in [
        ("heating", &b"TRUE"[..], "boolean"),
        ("heating", b"1", "boolean"),
        ("heating", b"ON", "boolean"),
        ("uptime", b"4.0", "integer"),
        ("uptime", b" 4", "integer"),
        ("uptime", b"-", "integer"),
        ("uptime", b"", "integer"),
        ("uptime", b"99999999999999999999", "integer"),
        ("temperature", b"NaN", "float"),
        ("temperature", b"Infinity", "float"),
        ("temperature", b"21,5", "float"),
        ("temperature", b"1.2.3", "float"),
        ("temperature", b"\"21.5\"", "float"),
        ("mode", b"Heat", "off, heat"),
        ("mode", b" heat", "off, heat"),
    ] {
        let err = decode(name, payload).unwrap_err().to_string();
        assert!(
            err.contains("homie/5/d/n/p") && err.contains(expected),
            "{name} {payload:?}: {err}"
        );
    }
    assert!(matches!(
        decode("label", &[0xff, 0xfe]),
        Err(PayloadError::NotText { .. })
    ));
    assert!(matches!(
        decode("label", &vec![b'x'; MAX_VALUE_PAYLOAD + 1]),
        Err(PayloadError::TooLarge { .. })
    ));
}

#[test]
fn values_should_encode_as_homie_text() {
    assert_eq!(encode_value(&Value::Bool(true), None).unwrap(), "true");
    assert_eq!(encode_value(&Value::Int(-7), None).unwrap(), "-7");
    assert_eq!(encode_value(&Value::Float(21.5), None).unwrap(), "21.5");
    assert_eq!(
        encode_value(&Value::Float(0.1 + 0.2), None).unwrap(),
        "0.30000000000000004"
    );
    assert_eq!(
        encode_value(&Value::Float(1e21), None).unwrap(),
        "1000000000000000000000"
    );
    assert_eq!(
        encode_value(&Value::Float(22.0), Some(Datatype::Integer)).unwrap(),
        "22"
    );
    assert!(encode_value(&Value::Float(22.5), Some(Datatype::Integer)).is_err());
    assert_eq!(
        encode_value(&Value::Text(String::new()), None).unwrap(),
        "\0"
    );
    // Every float we write reads back as a Homie float.
    for f in [21.5, -0.001, 1e-7, 123_456_789.125] {
        let text = encode_value(&Value::Float(f), Some(Datatype::Float)).unwrap();
        assert_eq!(parse_float(&text), Some(f), "{text}");
    }
}

#[test]
fn states_should_decode_and_an_empty_state_should_mean_removed() {
    assert_eq!(decode_state("t", b"ready"), Ok(Some(DeviceState::Ready)));
    assert_eq!(decode_state("t", b"lost"), Ok(Some(DeviceState::Lost)));
    assert_eq!(decode_state("t", b""), Ok(None));
    let err = decode_state("homie/5/x/$state", b"alert").unwrap_err();
    assert!(err.to_string().contains("homie/5/x/$state"), "{err}");
    assert!(err.to_string().contains("init, ready"), "{err}");
    assert!(decode_state("t", &[b'r'; 100]).is_err());
}

#[test]
fn topics_below_a_device_should_be_classified() {
    let path = |n: &str, p: &str| PropertyPath {
        node: n.into(),
        property: p.into(),
    };
    assert_eq!(DeviceTopic::classify("$state"), DeviceTopic::State);
    assert_eq!(
        DeviceTopic::classify("$description"),
        DeviceTopic::Description
    );
    assert_eq!(DeviceTopic::classify("$log/warn"), DeviceTopic::Log("warn"));
    assert_eq!(
        DeviceTopic::classify("$alert/battery"),
        DeviceTopic::Alert("battery")
    );
    assert_eq!(
        DeviceTopic::classify("thermostat/setpoint"),
        DeviceTopic::Value(path("thermostat", "setpoint"))
    );
    assert_eq!(
        DeviceTopic::classify("thermostat/setpoint/$target"),
        DeviceTopic::Target(path("thermostat", "setpoint"))
    );
    assert_eq!(
        DeviceTopic::classify("thermostat/setpoint/set"),
        DeviceTopic::Set(path("thermostat", "setpoint"))
    );
    for other in [
        "$log",
        "$log/",
        "$log/warn/extra",
        "$name",
        "Thermostat/setpoint",
        "thermostat/setpoint/get",
        "thermostat/setpoint/set/x",
        "thermostat",
        "a/b/c/d/e",
        "",
    ] {
        assert_eq!(DeviceTopic::classify(other), DeviceTopic::Other, "{other}");
    }
}

#[test]
fn property_paths_should_be_two_homie_ids() {
    let path: PropertyPath = "thermostat/set-point".parse().unwrap();
    assert_eq!(path.to_string(), "thermostat/set-point");
    for bad in ["thermostat", "a/b/c", "Node/p", "n/$p", "/p", "n/", "n p/x"] {
        let err = bad.parse::<PropertyPath>().unwrap_err();
        assert!(err.contains("<node>/<property>"), "{bad}: {err}");
    }
}

#[test]
fn every_homie_log_level_should_map_to_a_severity_and_back() {
    for level in ["debug", "info", "warn", "error", "fatal"] {
        let severity = log_severity(level).unwrap();
        assert_eq!(log_level(severity), level);
    }
    assert_eq!(log_severity("fatal"), Some(Severity::Critical));
    assert_eq!(log_severity("trace"), None);
    assert_eq!(log_level(Severity::Emergency), "fatal");
    assert_eq!(log_level(Severity::Notice), "info");
}

#[test]
fn long_log_lines_should_be_cut_at_a_character_boundary_and_say_so() {
    let line = "é".repeat(MAX_LOG_LINE); // two bytes each
    let kept = decode_log_line("t", line.as_bytes()).unwrap();
    assert!(kept.len() < line.len());
    assert!(
        kept.contains("more bytes cut"),
        "{}",
        &kept[kept.len() - 50..]
    );
    assert_eq!(decode_log_line("t", b"battery low").unwrap(), "battery low");
    assert!(decode_log_line("t", &[0xc3]).is_err());
}

const THERMOSTAT: &str = r#"{
  "homie": "5.0",
  "version": 7,
  "name": "Hall thermostat",
  "type": "org.example.thermostat",
  "extensions": ["org.example.future"],
  "nodes": {
    "thermostat": {
      "name": "Thermostat",
      "properties": {
        "temperature": {"datatype": "float", "unit": "°C", "format": "-40:125"},
        "setpoint": {"datatype": "float", "format": "5:30:0.5", "settable": true, "unit": "°C"},
        "mode": {"datatype": "enum", "format": "off,heat,cool,auto", "settable": true},
        "heating": {"datatype": "boolean", "format": "idle,heating"},
        "colour": {"datatype": "color", "format": "rgb,hsv"},
        "future": {"datatype": "integer", "something-new": 1}
      }
    },
    "system": {
      "properties": {
        "reboot": {"datatype": "boolean", "settable": true, "retained": false},
        "uptime": {"datatype": "integer", "format": "0:"}
      }
    }
  }
}"#;

#[test]
fn a_thermostat_description_should_decode_with_defaults_and_formats() {
    let d = decode_description("homie/5/t/$description", THERMOSTAT.as_bytes()).unwrap();
    assert_eq!(d.homie, "5.0");
    assert_eq!(d.version, 7);
    assert_eq!(d.name.as_deref(), Some("Hall thermostat"));
    assert_eq!(d.device_type.as_deref(), Some("org.example.thermostat"));
    assert!(d.skipped.is_empty(), "{:?}", d.skipped);
    let setpoint = d.property("thermostat", "setpoint").unwrap();
    assert_eq!(setpoint.datatype, Datatype::Float);
    assert!(setpoint.settable && setpoint.retained);
    assert_eq!(
        setpoint.format,
        Format::Range {
            min: Some(5.0),
            max: Some(30.0),
            step: Some(0.5)
        }
    );
    let temperature = d.property("thermostat", "temperature").unwrap();
    assert!(!temperature.settable, "settable defaults to false");
    assert_eq!(temperature.unit.as_deref(), Some("°C"));
    assert_eq!(
        d.property("thermostat", "mode").unwrap().format,
        Format::Members(vec![
            "off".into(),
            "heat".into(),
            "cool".into(),
            "auto".into()
        ])
    );
    assert_eq!(
        d.property("thermostat", "heating").unwrap().format,
        Format::Labels("idle".into(), "heating".into())
    );
    let reboot = d.property("system", "reboot").unwrap();
    assert!(reboot.settable && !reboot.retained);
    assert_eq!(
        d.property("system", "uptime").unwrap().format,
        Format::Range {
            min: Some(0.0),
            max: None,
            step: None
        }
    );
    assert!(
        d.property("thermostat", "future").is_some(),
        "unknown fields are ignored"
    );
}

#[test]
fn illegal_nodes_and_properties_should_be_left_out_and_said_why() {
    let text = r#"{"homie": "5.1", "version": 1, "nodes": {
        "Bad-Node": {"properties": {}},
        "n": {"properties": {
            "no-type": {"name": "x"},
            "odd-type": {"datatype": "decimal"},
            "enum-without-members": {"datatype": "enum"},
            "enum-with-duplicates": {"datatype": "enum", "format": "a,b,a"},
            "bad-range": {"datatype": "integer", "format": "10:5"},
            "float-range-in-integer": {"datatype": "integer", "format": "0:1.5"},
            "settable-as-text": {"datatype": "string", "settable": "yes"},
            "good": {"datatype": "string"}
        }},
        "m": {"properties": []}
    }}"#;
    let d = decode_description("t", text.as_bytes()).unwrap();
    assert_eq!(d.nodes.keys().collect::<Vec<_>>(), ["n"], "{:?}", d.skipped);
    assert_eq!(d.nodes["n"].properties.keys().collect::<Vec<_>>(), ["good"]);
    assert_eq!(d.skipped.len(), 9, "{:#?}", d.skipped);
    let said = d.skipped.join("\n");
    for why in [
        "node `Bad-Node`",
        "n/no-type` left out: no `datatype`",
        "unknown datatype \"decimal\"",
        "needs a `format`",
        "repeats a member",
        "minimum above its maximum",
        "\"1.5\" where a number belongs",
        "`settable` is a string",
        "node `m` left out: `properties` is an array",
    ] {
        assert!(said.contains(why), "missing {why:?} in:\n{said}");
    }
}

#[test]
fn descriptions_the_device_level_gets_wrong_should_be_refused_clearly() {
    for (text, expected) in [
        ("[]", "must be a JSON object"),
        (r#"{"version": 1}"#, "no `homie` field"),
        (r#"{"homie": "4.0", "version": 1}"#, "expected \"5.x\""),
        (r#"{"homie": "5.0"}"#, "no `version`"),
        (r#"{"homie": "5.0", "version": 1.5}"#, "expected an integer"),
        (
            r#"{"homie": "5.0", "version": 1, "name": 3}"#,
            "`name` is a number",
        ),
        (
            r#"{"homie": "5.0", "version": 1, "nodes": []}"#,
            "expected an object of nodes",
        ),
        ("{\"homie\": \"5.0\", ", "not JSON"),
    ] {
        let err = decode_description("homie/5/t/$description", text.as_bytes())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("homie/5/t/$description") && err.contains(expected),
            "{text}: {err}"
        );
    }
}

#[test]
fn a_description_above_the_bound_should_be_refused_before_parsing() {
    let mut big = String::from(r#"{"homie": "5.0", "version": 1, "name": ""#);
    big.push_str(&"x".repeat(70 * 1024));
    big.push_str("\"}");
    let err = decode_description("homie/5/t/$description", big.as_bytes()).unwrap_err();
    assert!(
        matches!(err, PayloadError::TooLarge { limit, .. } if limit == MAX_DESCRIPTION),
        "{err}"
    );
}

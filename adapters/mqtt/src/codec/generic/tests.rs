use std::path::Path;

use iotmc_adapter::Profile;
use serde_json::json;

use super::*;

const TOPIC: &str = "ahu/ahu-1/rpc";

fn parameter(kind: &str) -> Parameter {
    let profile = Profile::from_toml(
        Path::new("t.toml"),
        &format!(
            "id = \"t\"\nmanufacturer = \"m\"\nmodel = \"m\"\nprotocol = \"mqtt\"\n[[parameters]]\nname = \"p\"\ntype = \"{kind}\"\n"
        ),
    )
    .unwrap();
    profile.parameters[0].clone()
}

#[test]
fn answer_without_error_should_be_returned_as_json() {
    let got = answer(TOPIC, br#"{"setpoint": 21.5}"#, "/error").unwrap();
    assert_eq!(got, Ok(json!({"setpoint": 21.5})));
    // null and false at the error pointer are no error.
    assert!(
        answer(TOPIC, br#"{"error": null}"#, "/error")
            .unwrap()
            .is_ok()
    );
    assert!(
        answer(TOPIC, br#"{"error": false}"#, "/error")
            .unwrap()
            .is_ok()
    );
}

#[test]
fn device_error_should_keep_the_device_s_words() {
    let got = answer(
        TOPIC,
        br#"{"error": "busy: transfer in progress"}"#,
        "/error",
    )
    .unwrap();
    assert_eq!(
        got,
        Err(Refusal {
            code: "busy: transfer in progress".into(),
            message: None
        })
    );
    let got = answer(
        TOPIC,
        br#"{"result": {"err": {"code": "E_RANGE", "message": "setpoint above 30"}}}"#,
        "/result/err",
    )
    .unwrap();
    assert_eq!(
        got,
        Err(Refusal {
            code: "E_RANGE".into(),
            message: Some("setpoint above 30".into())
        })
    );
    let got = answer(TOPIC, br#"{"error": 17}"#, "/error").unwrap();
    assert_eq!(got.unwrap_err().code, "17");
}

#[test]
fn answers_that_are_not_json_should_name_the_topic() {
    let err = answer(TOPIC, b"OK", "/error").unwrap_err();
    assert!(matches!(err, PayloadError::NotJson { .. }), "{err}");
    assert!(err.to_string().contains(TOPIC), "{err}");
    let huge = vec![b'1'; json::MAX_JSON_PAYLOAD + 1];
    assert!(matches!(
        answer(TOPIC, &huge, "/error"),
        Err(PayloadError::TooLarge { .. })
    ));
}

#[test]
fn values_should_be_found_at_their_pointer_and_typed() {
    let doc = json!({"supply": {"temperature": "19.5"}, "fan": 40});
    assert_eq!(
        value_at(TOPIC, &doc, "/supply/temperature", &parameter("float")),
        Ok(Value::Float(19.5))
    );
    let err = value_at(TOPIC, &doc, "/supply/humidity", &parameter("float")).unwrap_err();
    assert!(
        err.to_string().contains("/supply/humidity") && err.to_string().contains(TOPIC),
        "{err}"
    );
    let err = value_at(TOPIC, &doc, "/supply", &parameter("int")).unwrap_err();
    assert!(err.to_string().contains("expected int"), "{err}");
}

#[test]
fn place_should_build_the_objects_on_the_way() {
    let mut payload = json!({"op": "set"});
    place(&mut payload, "/values/setpoint", json!(21.5)).unwrap();
    place(&mut payload, "/values/mode", json!("heat")).unwrap();
    place(&mut payload, "/a~1b", json!(1)).unwrap();
    assert_eq!(
        payload,
        json!({"op": "set", "values": {"setpoint": 21.5, "mode": "heat"}, "a/b": 1})
    );
    let mut whole = json!({});
    place(&mut whole, "", json!(3)).unwrap();
    assert_eq!(whole, json!(3));
}

#[test]
fn place_should_refuse_to_go_through_a_non_object() {
    let mut payload = json!({"op": "set", "values": [1, 2]});
    let err = place(&mut payload, "/values/setpoint", json!(1)).unwrap_err();
    assert!(
        err.contains("/values") && err.contains("not a JSON object"),
        "{err}"
    );
    let mut payload = json!({"op": "set"});
    let err = place(&mut payload, "/op/x", json!(1)).unwrap_err();
    assert!(err.contains("/op"), "{err}");
}

#[test]
fn availability_should_compare_the_payload_or_the_pointed_string() {
    assert_eq!(
        availability(b"online", None, "online", "offline"),
        Some(Availability::Online)
    );
    assert_eq!(
        availability(b" offline\n", None, "online", "offline"),
        Some(Availability::Offline)
    );
    assert_eq!(availability(b"rebooting", None, "online", "offline"), None);
    assert_eq!(
        availability(br#"{"state": "up"}"#, Some("/state"), "up", "down"),
        Some(Availability::Online)
    );
    assert_eq!(
        availability(
            br#"{"connected": false}"#,
            Some("/connected"),
            "true",
            "false"
        ),
        Some(Availability::Offline)
    );
    assert_eq!(
        availability(b"not json", Some("/state"), "up", "down"),
        None
    );
    assert_eq!(availability(&[0xff, 0xfe], None, "online", "offline"), None);
}

#[test]
fn firmware_answers_should_be_checked_against_the_transfer() {
    assert_eq!(
        begin_offset(TOPIC, &json!({"offset": 4096}), 10_000),
        Ok(4096)
    );
    let err = begin_offset(TOPIC, &json!({"offset": 20_000}), 10_000).unwrap_err();
    assert!(err.to_string().contains("past the end"), "{err}");
    let err = begin_offset(TOPIC, &json!({"offset": -1}), 10_000).unwrap_err();
    assert!(err.to_string().contains("whole number"), "{err}");
    let err = begin_offset(TOPIC, &json!({"ok": true}), 10_000).unwrap_err();
    assert!(err.to_string().contains("\"offset\""), "{err}");
    assert_eq!(
        acknowledged(TOPIC, &json!({"acknowledged": 8192}), 8192),
        Ok(8192)
    );
    assert!(acknowledged(TOPIC, &json!({"acknowledged": 8193}), 8192).is_err());
    assert!(acknowledged(TOPIC, &json!({"acknowledged": "8192"}), 8192).is_err());
}

#[test]
fn sha256_should_be_64_hex_digits() {
    let hash = "00ff".repeat(16);
    let got = sha256(TOPIC, &json!({ "sha256": hash })).unwrap();
    assert_eq!(got[0], 0x00);
    assert_eq!(got[1], 0xff);
    assert_eq!(hex(&got), hash);
    assert_eq!(
        sha256(TOPIC, &json!({ "sha256": "00FF".repeat(16) })).unwrap(),
        got
    );
    for bad in [
        json!({"sha256": "abc"}),
        json!({"sha256": "zz".repeat(32)}),
        json!({"sha256": 5}),
        json!({}),
    ] {
        let err = sha256(TOPIC, &bad).unwrap_err();
        assert!(err.to_string().contains("sha256"), "{err}");
    }
    // A multi-byte character must not panic the hex parser.
    assert!(sha256(TOPIC, &json!({"sha256": format!("é{}", "0".repeat(62))})).is_err());
}

#[test]
fn banks_should_be_read_from_an_array() {
    let got = banks(
        TOPIC,
        &json!([
            {"slot": 0, "version": "1.0.0", "active": true, "confirmed": true, "pending": false},
            {"slot": 1, "version": null, "active": false}
        ]),
    )
    .unwrap();
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].version.as_deref(), Some("1.0.0"));
    assert!(got[0].active && got[0].confirmed && !got[0].pending);
    assert_eq!(got[1].slot, 1);
    assert_eq!(got[1].version, None);
    let wrapped = banks(TOPIC, &json!({"banks": [{"slot": 3, "active": true}]})).unwrap();
    assert_eq!(wrapped[0].slot, 3);
    for bad in [
        json!([]),
        json!({"slots": []}),
        json!([{"slot": 300}]),
        json!([{"slot": 0, "active": "yes"}]),
        json!("banks"),
    ] {
        assert!(banks(TOPIC, &bad).is_err(), "{bad}");
    }
}

#[test]
fn log_answers_should_map_time_severity_and_fields() {
    let got = log_answer(
        TOPIC,
        &json!({
            "records": [
                {"index": 7, "time": "2026-11-24T08:19:42Z", "severity": "err", "message": "fan stalled", "fields": {"fan": 2}},
                {"index": 8, "time": 1_790_000_000, "severity": 4, "message": "filter dirty"},
                {"message": "no index, no time"}
            ],
            "next": 8
        }),
    )
    .unwrap();
    assert_eq!(got.next, Some(8));
    assert_eq!(got.records.len(), 3);
    let first = &got.records[0];
    assert_eq!(first.index, Some(7));
    assert_eq!(first.severity, Severity::Error);
    assert_eq!(first.fields.get("fan").map(String::as_str), Some("2"));
    assert_eq!(
        first.timestamp,
        Some(SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_508_382))
    );
    assert_eq!(got.records[1].severity, Severity::Warning);
    assert_eq!(got.records[2].severity, Severity::Informational);
    assert_eq!(got.records[2].timestamp, None);
}

#[test]
fn log_answers_without_next_should_continue_after_the_highest_index() {
    let got = log_answer(
        TOPIC,
        &json!({"records": [{"index": 3, "message": "a"}, {"index": 4, "message": "b"}]}),
    )
    .unwrap();
    assert_eq!(got.next, Some(4));
    assert_eq!(
        log_answer(TOPIC, &json!({"records": []})).unwrap().next,
        None
    );
}

#[test]
fn bad_log_records_should_say_which_and_why() {
    for (bad, expected) in [
        (
            json!({"records": [{"message": 5}]}),
            "record 0: `message` must be text",
        ),
        (
            json!({"records": [{"message": "a", "time": "yesterday"}]}),
            "not RFC 3339",
        ),
        (
            json!({"records": [{"message": "a", "severity": "loud"}]}),
            "not a syslog severity",
        ),
        (
            json!({"records": [{"message": "a", "severity": 9}]}),
            "not a syslog severity",
        ),
        (
            json!({"records": [{"message": "a", "index": -2}]}),
            "`index`",
        ),
        (json!({"records": "none"}), "expected `{\"records\""),
        (json!({"records": [], "next": "x"}), "`next`"),
    ] {
        let err = log_answer(TOPIC, &bad).unwrap_err().to_string();
        assert!(
            err.contains(expected) && err.contains(TOPIC),
            "{bad}: {err}"
        );
    }
    let many: Vec<_> = (0..=MAX_LOG_RECORDS)
        .map(|i| json!({"message": i.to_string()}))
        .collect();
    assert!(log_answer(TOPIC, &json!({ "records": many })).is_err());
}

#[test]
fn long_log_messages_should_be_cut_at_a_character_boundary() {
    let long = "é".repeat(MAX_LOG_MESSAGE);
    let record = log_record(&json!({ "message": long })).unwrap();
    assert!(record.message.len() <= MAX_LOG_MESSAGE + '…'.len_utf8());
    assert!(record.message.ends_with('…'));
}

#[test]
fn rfc3339_should_accept_offsets_and_fractions() {
    let base = SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_508_382);
    assert_eq!(parse_rfc3339("2026-11-24T08:19:42Z"), Some(base));
    assert_eq!(parse_rfc3339("2026-11-24T09:19:42+01:00"), Some(base));
    assert_eq!(parse_rfc3339("2026-11-24T07:49:42-00:30"), Some(base));
    assert_eq!(
        parse_rfc3339("2026-11-24T08:19:42.25Z"),
        Some(base + Duration::from_millis(250))
    );
    assert_eq!(
        parse_rfc3339("1970-01-01T00:00:00Z"),
        Some(SystemTime::UNIX_EPOCH)
    );
    assert_eq!(
        parse_rfc3339("2000-03-01T00:00:00Z"),
        Some(SystemTime::UNIX_EPOCH + Duration::from_secs(951_868_800))
    );
    for bad in [
        "2026-11-24",
        "2026-13-24T08:19:42Z",
        "2026-11-24T08:19:42",
        "2026-11-24T08:19:42+0100",
        "1969-12-31T23:59:59Z",
        "2026-11-24T08:19:42.Z",
        "２026-11-24T08:19:42Z",
    ] {
        assert_eq!(parse_rfc3339(bad), None, "{bad}");
    }
}

#[test]
fn severities_should_accept_syslog_names_and_numbers() {
    assert_eq!(severity(&json!("warning")), Ok(Severity::Warning));
    assert_eq!(severity(&json!("CRIT")), Ok(Severity::Critical));
    assert_eq!(severity(&json!(0)), Ok(Severity::Emergency));
    assert_eq!(severity(&json!("7")), Ok(Severity::Debug));
    assert!(severity(&json!(true)).is_err());
}

#[test]
fn output_values_should_keep_the_json_type() {
    assert_eq!(output_value(&json!(3)), Value::Int(3));
    assert_eq!(output_value(&json!(2.5)), Value::Float(2.5));
    assert_eq!(output_value(&json!(true)), Value::Bool(true));
    assert_eq!(output_value(&json!("ok")), Value::Text("ok".into()));
    assert_eq!(output_value(&json!([1])), Value::Text("[1]".into()));
}

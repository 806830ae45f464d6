use super::*;
use iotmc_adapter::Profile;
use std::path::Path;

fn profile() -> Profile {
    Profile::from_toml(
        Path::new("t.toml"),
        r#"
id = "t"
manufacturer = "m"
model = "m"
protocol = "mqtt"
[[parameters]]
name = "power"
type = "bool"
[[parameters]]
name = "state"
type = "enum"
values = ["off", "on", "last"]
[[parameters]]
name = "watts"
type = "float"
resolution = 0.1
"#,
    )
    .unwrap()
}

#[test]
fn topics_should_follow_the_full_topic() {
    let t = Topics::new("%prefix%/%topic%/", "plug");
    assert_eq!(t.command("Power1"), "cmnd/plug/Power1");
    assert_eq!(t.filter(Prefix::Stat), "stat/plug/#");
    assert_eq!(t.classify("tele/plug/LWT"), Some((Prefix::Tele, "LWT")));
    assert_eq!(t.classify("stat/other/RESULT"), None);
    let custom = Topics::new("home/%topic%/%prefix%", "plug");
    assert_eq!(custom.command("Status0"), "home/plug/cmnd/Status0");
    assert_eq!(
        custom.classify("home/plug/stat/STATUS0"),
        Some((Prefix::Stat, "STATUS0"))
    );
}

#[test]
fn an_indexed_command_should_be_answered_by_its_unindexed_key() {
    assert!(answers_command("Power1", "POWER"));
    assert!(answers_command("Power", "POWER1"));
    assert!(answers_command("TelePeriod", "TelePeriod"));
    assert!(answers_command("PulseTime1", "PulseTime1"));
    assert!(!answers_command("Power2", "POWER1"));
    assert!(!answers_command("Power", "PowerOnState"));
    assert!(!answers_command("TelePeriod", "POWER"));
}

fn result(text: &str) -> StatMessage {
    decode_stat("stat/plug/RESULT", "RESULT", text.as_bytes()).unwrap()
}

#[test]
fn answers_should_be_told_apart_from_other_results() {
    let expect = Expect::Result("Power1".into());
    assert!(matches!(
        expect.answer(&result(r#"{"POWER":"ON"}"#)),
        Some(Answer::Value(_))
    ));
    assert_eq!(expect.answer(&result(r#"{"TelePeriod":300}"#)), None);
    assert_eq!(
        expect.answer(&result(r#"{"Command":"Unknown"}"#)),
        Some(Answer::Refused {
            code: "Command Unknown".into()
        })
    );
    assert_eq!(
        Expect::Result("OtaUrl".into()).answer(&result(r#"{"OtaUrl":"Error"}"#)),
        Some(Answer::Refused {
            code: "OtaUrl Error".into()
        })
    );
}

#[test]
fn status_answers_should_come_on_their_own_topic() {
    let status8 = decode_stat(
        "stat/plug/STATUS8",
        "STATUS8",
        br#"{"StatusSNS":{"ENERGY":{"Power":45}}}"#,
    )
    .unwrap();
    assert!(matches!(
        Expect::Status(8).answer(&status8),
        Some(Answer::Value(_))
    ));
    assert_eq!(Expect::Status(2).answer(&status8), None);
    assert!(matches!(
        Expect::Status(2).answer(&result(r#"{"Command":"Error"}"#)),
        Some(Answer::Refused { .. })
    ));
    assert_eq!(
        decode_stat("stat/plug/POWER", "POWER", b"ON").unwrap(),
        StatMessage::Other
    );
}

#[test]
fn malformed_results_should_name_the_topic_and_what_was_expected() {
    let err = decode_stat("stat/plug/RESULT", "RESULT", b"ON").unwrap_err();
    assert!(err.to_string().contains("stat/plug/RESULT"), "{err}");
    let err = decode_stat("stat/plug/RESULT", "RESULT", b"[1,2]").unwrap_err();
    assert!(err.to_string().contains("JSON object"), "{err}");
    let big = vec![b' '; 70 * 1024];
    assert!(matches!(
        decode_stat("stat/plug/RESULT", "RESULT", &big),
        Err(PayloadError::TooLarge { .. })
    ));
    let err = decode_stat("stat/plug/UPGRADE", "UPGRADE", br#"{"Upgrade":7}"#).unwrap_err();
    assert!(err.to_string().contains("Upgrade"), "{err}");
}

#[test]
fn value_maps_should_convert_both_ways() {
    let p = profile();
    let state = p.parameter("state").unwrap();
    let map = vec![
        ("0".to_owned(), Value::from("off")),
        ("1".to_owned(), Value::from("on")),
        ("3".to_owned(), Value::from("last")),
    ];
    assert_eq!(
        decode_value(state, &map, &Json::from(3)),
        Ok(Value::from("last"))
    );
    assert_eq!(
        encode_value(state, &map, &Value::from("on")),
        Ok("1".into())
    );
    let err = decode_value(state, &map, &Json::from(5)).unwrap_err();
    assert!(err.contains("0, 1, 3") && err.contains('5'), "{err}");
    let power = p.parameter("power").unwrap();
    let onoff = vec![
        ("ON".to_owned(), Value::Bool(true)),
        ("OFF".to_owned(), Value::Bool(false)),
    ];
    assert_eq!(
        decode_value(power, &onoff, &Json::from("on")),
        Ok(Value::Bool(true))
    );
    assert_eq!(
        encode_value(power, &[], &Value::Bool(false)),
        Ok("0".into())
    );
    let watts = p.parameter("watts").unwrap();
    assert_eq!(
        decode_value(watts, &[], &Json::from(45.2)),
        Ok(Value::Float(45.2))
    );
    assert!(same_value(watts, &Value::Float(45.2), &Value::Float(45.24)));
    assert!(!same_value(watts, &Value::Float(45.2), &Value::Float(45.3)));
}

#[test]
fn pointers_should_fall_back_to_any_capitalisation() {
    let answer: Json =
        serde_json::from_str(r#"{"Power":"ON","StatusSNS":{"ENERGY":{"Power":5}}}"#).unwrap();
    assert_eq!(lookup(&answer, "/POWER"), Some(&Json::from("ON")));
    assert_eq!(
        lookup(&answer, "/StatusSNS/energy/power"),
        Some(&Json::from(5))
    );
    assert_eq!(lookup(&answer, "/StatusSNS/ENERGY/Voltage"), None);
}

#[test]
fn lwt_should_say_online_or_offline() {
    assert_eq!(decode_lwt(b"Online"), Some(Availability::Online));
    assert_eq!(decode_lwt(b"Offline\n"), Some(Availability::Offline));
    assert_eq!(decode_lwt(b"{\"state\":1}"), None);
    assert_eq!(decode_lwt(&[0xff, 0xfe]), None);
}

#[test]
fn upgrade_reports_should_keep_the_devices_words() {
    let outcome =
        |text: &str| match decode_stat("stat/plug/UPGRADE", "UPGRADE", text.as_bytes()).unwrap() {
            StatMessage::Upgrade(o) => o,
            other => panic!("{other:?}"),
        };
    assert_eq!(
        outcome(r#"{"Upgrade":"Successful. Restarting"}"#),
        UpgradeOutcome::Successful
    );
    assert_eq!(
        outcome(r#"{"Upgrade":"Failed Verify Bin Header Failed"}"#),
        UpgradeOutcome::Failed("Verify Bin Header Failed".into())
    );
    let started = serde_json::json!({"Upgrade": "Version 13.1.0 from http://gw/fw/abc"});
    assert!(upgrade_started(started.as_object().unwrap()).is_ok());
    let refused = serde_json::json!({"Upgrade": "1 or >13.1.0 to upgrade"});
    assert!(upgrade_started(refused.as_object().unwrap()).is_err());
}

#[test]
fn versions_should_compare_as_the_image_declares_them() {
    assert_eq!(core_version("13.1.0(tasmota)"), "13.1.0");
    assert_eq!(core_version(" 14.2.0.3(release-tasmota32) "), "14.2.0.3");
    assert_eq!(core_version("v13.1.0"), "13.1.0");
    assert!(same_version("13.1.0(tasmota)", "13.1.0"));
    assert!(!same_version("13.1.0(tasmota)", "13.2.0"));
    assert_eq!(core_version("(tasmota)"), "");
}

#[test]
fn log_lines_should_split_time_tag_and_message() {
    let line = decode_log_line(
        "stat/plug/LOGGING",
        b"12:34:56.789 MQT: stat/plug/RESULT = {\"POWER\":\"ON\"}",
    )
    .unwrap();
    assert_eq!(line.device_time.as_deref(), Some("12:34:56.789"));
    assert_eq!(line.tag.as_deref(), Some("MQT"));
    assert_eq!(line.message, "MQT: stat/plug/RESULT = {\"POWER\":\"ON\"}");
    assert_eq!(line.severity, Severity::Informational);
    let bare = decode_log_line("t", b"no time here").unwrap();
    assert_eq!((bare.device_time, bare.tag), (None, None));
    assert!(decode_log_line("t", &[0xff]).is_err());
    assert!(decode_log_line("t", &vec![b'a'; MAX_LOG_LINE + 1]).is_err());
}

#[test]
fn severity_should_only_rise_on_words_of_trouble() {
    assert_eq!(
        infer_severity("UPL: Upload error: Verify Bin Header Failed"),
        Severity::Error
    );
    assert_eq!(
        infer_severity("MQT: Connect failed to 10.0.0.2:1883, rc -2. Retry in 10 sec"),
        Severity::Error
    );
    assert_eq!(infer_severity("WIF: Connect retry"), Severity::Warning);
    assert_eq!(infer_severity("APP: Restarting"), Severity::Informational);
}

#[test]
fn an_echoed_mqtt_message_should_be_judged_by_its_values_not_its_keys() {
    let status = decode_log_line(
        "stat/plug/LOGGING",
        br#"12:00:00.000 MQT: stat/plug/STATUS6 = {"StatusMQT":{"MqttHost":"10.0.0.2","SOCKET_TIMEOUT":4,"KEEPALIVE":30}}"#,
    )
    .unwrap();
    assert_eq!(status.severity, Severity::Informational);
    let failed = decode_log_line(
        "stat/plug/LOGGING",
        br#"12:00:00.000 MQT: stat/plug/UPGRADE = {"Upgrade":"Failed Verify Bin Header Failed"}"#,
    )
    .unwrap();
    assert_eq!(
        failed.severity,
        Severity::Error,
        "a value speaking of failure still counts"
    );
    let text = decode_log_line(
        "stat/plug/LOGGING",
        b"MQT: stat/plug/RESULT = connect retry",
    )
    .unwrap();
    assert_eq!(text.severity, Severity::Warning);
    let own = decode_log_line(
        "stat/plug/LOGGING",
        b"MQT: Connect failed to 10.0.0.2:1883, rc -2",
    )
    .unwrap();
    assert_eq!(
        own.severity,
        Severity::Error,
        "the device's own words are judged whole"
    );
}

/// A cheap stand-in for the fuzz target until one is added under tests/fuzz: real payloads,
/// cut and with bytes flipped, and random bytes, through every decoder.
#[test]
fn decoders_should_never_panic_on_mangled_payloads() {
    let seeds: [&[u8]; 6] = [
        br#"{"POWER":"ON"}"#,
        br#"{"StatusSNS":{"ENERGY":{"Power":45,"Voltage":231}}}"#,
        br#"{"Upgrade":"Failed Verify Bin Header Failed"}"#,
        b"12:34:56.789 MQT: stat/plug/RESULT = {\"POWER\":\"ON\"}",
        br#"{"PulseTime1":{"Set":0,"Remaining":0}}"#,
        b"Online",
    ];
    let p = profile();
    let power = p.parameter("power").unwrap();
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for round in 0..20_000 {
        let seed = seeds[round % seeds.len()];
        let mut bytes = seed.to_vec();
        let cut = usize::try_from(next() % (bytes.len() as u64 + 1)).unwrap();
        bytes.truncate(cut.max(1));
        for _ in 0..next() % 4 {
            let at = usize::try_from(next() % bytes.len() as u64).unwrap();
            bytes[at] = u8::try_from(next() % 256).unwrap();
        }
        if round % 7 == 0 {
            bytes = (0..next() % 64)
                .map(|_| u8::try_from(next() % 256).unwrap())
                .collect();
        }
        for suffix in [
            "RESULT", "STATUS8", "STATUS0", "UPGRADE", "LOGGING", "POWER",
        ] {
            if let Ok(StatMessage::Result(object) | StatMessage::Status(_, object)) =
                decode_stat("stat/plug/x", suffix, &bytes)
            {
                let json = Json::Object(object);
                let _ = Expect::Result("Power1".into()).answer(&StatMessage::Result(
                    json.as_object().cloned().unwrap_or_default(),
                ));
                if let Some(found) = lookup(&json, "/StatusSNS/ENERGY/Power") {
                    let _ = decode_value(power, &[], found);
                }
            }
        }
        let _ = decode_lwt(&bytes);
        let _ = decode_log_line("stat/plug/LOGGING", &bytes);
        if let Ok(text) = std::str::from_utf8(&bytes) {
            let _ = core_version(text);
            let _ = lookup(&Json::Null, text);
            let _ = answers_command(text, "POWER");
            let _ = is_command_name(text);
        }
    }
}

#[test]
fn command_names_should_be_letters_digits_and_underscores() {
    assert!(is_command_name("Power1"));
    assert!(is_command_name("Status"));
    assert!(!is_command_name("1Power"));
    assert!(!is_command_name("Power 1"));
    assert!(!is_command_name("a/b"));
    assert!(!is_command_name(""));
}

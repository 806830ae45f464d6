use super::*;

fn plug() -> Plug {
    Plug::new("plug", "5C:CF:7F:12:34:56", "13.1.0", "Athom Plug V2")
}

fn results(effects: &[Effect]) -> Vec<(String, String)> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Publish {
                prefix: Prefix::Stat,
                suffix,
                payload,
                ..
            } => Some((suffix.clone(), payload.clone())),
            _ => None,
        })
        .collect()
}

#[test]
fn power1_on_a_one_relay_plug_should_be_answered_by_power() {
    let mut p = plug();
    let out = results(&p.command("Power1", "OFF"));
    assert_eq!(
        out,
        vec![
            ("RESULT".into(), r#"{"POWER":"OFF"}"#.into()),
            ("POWER".into(), "OFF".into())
        ]
    );
    assert!(!p.power);
    let out = results(&p.command("POWER2", ""));
    assert_eq!(
        out,
        vec![("RESULT".into(), r#"{"Command":"Error"}"#.into())]
    );
}

#[test]
fn settings_should_echo_as_tasmota_does() {
    let mut p = plug();
    assert_eq!(
        results(&p.command("TelePeriod", "5"))[0].1,
        r#"{"TelePeriod":10}"#
    );
    assert_eq!(
        results(&p.command("teleperiod", ""))[0].1,
        r#"{"TelePeriod":10}"#
    );
    assert_eq!(
        results(&p.command("PulseTime1", "150"))[0].1,
        r#"{"PulseTime1":{"Remaining":0,"Set":150}}"#
    );
    assert_eq!(
        results(&p.command("Bogus", "1"))[0].1,
        r#"{"Command":"Unknown"}"#
    );
}

#[test]
fn status0_should_hold_every_section_in_one_message() {
    let mut p = plug();
    let out = results(&p.command("Status0", ""));
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].0, "STATUS0");
    let all: Json = serde_json::from_str(&out[0].1).unwrap();
    assert_eq!(
        all.pointer("/StatusFWR/Version"),
        Some(&json!("13.1.0(tasmota)"))
    );
    assert_eq!(
        all.pointer("/StatusNET/Mac"),
        Some(&json!("5C:CF:7F:12:34:56"))
    );
    let out = results(&p.command("Status", "8"));
    assert_eq!(out[0].0, "STATUS8");
    assert!(out[0].1.contains("\"ENERGY\""));
    assert_eq!(
        results(&p.command("Status", "12"))[0].1,
        r#"{"Command":"Error"}"#
    );
}

#[test]
fn restart_reset_and_upgrade_should_answer_first_then_act() {
    let mut p = plug();
    let effects = p.command("Restart", "1");
    assert_eq!(effects.last(), Some(&Effect::Restart));
    let effects = p.command("Reset", "6");
    assert_eq!(effects.last(), Some(&Effect::Reset { level: 6 }));
    assert!(
        results(&effects)[0]
            .1
            .contains("Erase, Reset and Restarting")
    );
    p.command("OtaUrl", "http://gw/fw/x.bin");
    let effects = p.command("Upgrade", "1");
    assert_eq!(
        effects.last(),
        Some(&Effect::Upgrade {
            url: "http://gw/fw/x.bin".into()
        })
    );
    assert!(
        results(&p.command("Upgrade", "2"))[0]
            .1
            .contains("1 or >13.1.0 to upgrade")
    );
}

#[test]
fn times_should_print_as_tasmota_prints_them() {
    let at = UNIX_EPOCH + Duration::from_millis(1_718_712_345_678);
    assert_eq!(iso_time(at), "2024-06-18T12:05:45");
    assert_eq!(log_time(at), "12:05:45.678");
}

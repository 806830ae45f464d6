use std::path::Path;

use iotmc_adapter::{Availability, Profile, Severity, Value};

use super::*;
use crate::profile::load_section;

const PROFILE: &str = r#"
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
resolution = 0.5
[[parameters]]
name = "mode"
type = "enum"
access = "read-write"
values = ["off", "heat"]
[[parameters]]
name = "heating"
type = "bool"
[mqtt]
dialect = "homie"
[mqtt.homie.parameters]
temperature = "thermostat/temperature"
setpoint = "thermostat/setpoint"
mode = "thermostat/mode"
heating = "thermostat/heating"
[mqtt.homie.identity]
firmware_version = { property = "system/firmware" }
"#;

const DESCRIPTION: &str = r#"{"homie": "5.0", "version": 3, "nodes": {
  "thermostat": {"properties": {
    "temperature": {"datatype": "float"},
    "setpoint": {"datatype": "float", "settable": true, "format": "5:30:0.5"},
    "mode": {"datatype": "enum", "settable": true, "format": "off,heat,cool"},
    "heating": {"datatype": "boolean"}
  }},
  "system": {"properties": {"firmware": {"datatype": "string"}}}
}}"#;

struct Device {
    profile: Profile,
    mapping: Mapping,
    view: DeviceView,
}

impl Device {
    fn new() -> Self {
        let profile = Profile::from_toml(Path::new("t.toml"), PROFILE).unwrap();
        let section = load_section(&profile).unwrap();
        let mapping = Mapping::new(&profile, section.homie.as_ref().unwrap());
        Self {
            profile,
            mapping,
            view: DeviceView::default(),
        }
    }

    fn take(&mut self, rest: &str, payload: &str) -> Vec<Effect> {
        let topic = format!("homie/5/dev/{rest}");
        self.view.handle(
            &self.profile,
            &self.mapping,
            &topic,
            rest,
            payload.as_bytes(),
        )
    }

    fn ready(mut self) -> Self {
        self.take("$description", DESCRIPTION);
        self.take("thermostat/setpoint", "21");
        self.take("$state", "ready");
        self
    }
}

fn warnings(effects: &[Effect]) -> Vec<&str> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Warn(w) => Some(w.as_str()),
            _ => None,
        })
        .collect()
}

fn path(text: &str) -> PropertyPath {
    text.parse().unwrap()
}

#[test]
fn states_should_set_availability_and_init_keep_it() {
    let mut d = Device::new();
    assert_eq!(d.take("$state", "init"), vec![]);
    assert_eq!(
        d.take("$state", "ready"),
        vec![Effect::Availability(Availability::Online)]
    );
    assert!(d.view.values_current());
    assert_eq!(d.take("$state", "init"), vec![]);
    for gone in ["lost", "disconnected", "sleeping"] {
        assert_eq!(
            d.take("$state", gone),
            vec![Effect::Availability(Availability::Offline)],
            "{gone}"
        );
    }
    assert!(
        d.view.values_current(),
        "a sleeping device's values still read"
    );
    let removed = d.take("$state", "");
    assert!(removed.contains(&Effect::Availability(Availability::Offline)));
    assert!(warnings(&removed)[0].contains("removed"));
    assert_eq!(d.view.state(), None);
    let bad = d.take("$state", "alert");
    assert!(warnings(&bad)[0].contains("homie/5/dev/$state"), "{bad:?}");
}

#[test]
fn values_should_be_reported_in_the_parameter_types_and_bad_ones_warned_about() {
    let mut d = Device::new();
    assert_eq!(
        d.take("thermostat/temperature", "21.5"),
        vec![Effect::Readings(Readings::from([(
            "temperature".to_owned(),
            Value::Float(21.5)
        )]))]
    );
    let bad = d.take("thermostat/heating", "ON");
    assert!(
        warnings(&bad)[0].contains("homie/5/dev/thermostat/heating")
            && warnings(&bad)[0].contains("`true` or `false`"),
        "{bad:?}"
    );
    assert!(d.view.reported(&path("thermostat/heating")).is_none());
    d.take("thermostat/temperature", "NaN");
    assert_eq!(
        d.view
            .reported(&path("thermostat/temperature"))
            .unwrap()
            .value,
        Some(Value::Float(21.5)),
        "a bad value keeps the last one"
    );
    assert_eq!(
        d.take("system/firmware", "1.2.3"),
        vec![],
        "identity facts are kept"
    );
    assert_eq!(
        d.view.reported(&path("system/firmware")).unwrap().text,
        "1.2.3"
    );
    assert!(matches!(
        d.take("system/uptime", "12").as_slice(),
        [Effect::Ignored(_)]
    ));
    assert!(matches!(
        d.take("thermostat/setpoint/get", "x").as_slice(),
        [Effect::Ignored(_)]
    ));
    assert_eq!(d.take("thermostat/setpoint/set", "22"), vec![]);
}

#[test]
fn a_description_that_contradicts_the_profile_should_warn_naming_both_and_refuse_writes() {
    let mut d = Device::new();
    let description = DESCRIPTION
        .replace(
            r#""setpoint": {"datatype": "float", "settable": true, "format": "5:30:0.5"}"#,
            r#""setpoint": {"datatype": "float", "format": "10:25"}"#,
        )
        .replace(r#""datatype": "boolean""#, r#""datatype": "string""#)
        .replace(
            r#""mode": {"datatype": "enum", "settable": true, "format": "off,heat,cool"}"#,
            r#""fan": {"datatype": "integer"}"#,
        );
    let effects = d.take("$description", &description);
    let said = warnings(&effects).join("\n");
    for expected in [
        "parameter `setpoint` is read-write in the profile, but the device's $description says property `thermostat/setpoint` is not settable; writes to it are refused",
        "parameter `setpoint` accepts `5:30`, wider than property `thermostat/setpoint`'s format `10:25`",
        "parameter `heating` is bool in the profile, but property `thermostat/heating` is a Homie string",
        "parameter `mode` is on property `thermostat/mode`, which the device's $description (version 3) does not describe; writes to it are refused",
    ] {
        assert!(said.contains(expected), "missing {expected:?} in:\n{said}");
    }
    assert!(d.view.refusal("setpoint").unwrap().contains("not settable"));
    assert!(d.view.refusal("mode").is_some());
    assert!(
        d.view.refusal("heating").is_none(),
        "read-only: not written"
    );
    assert!(d.view.refusal("temperature").is_none());
}

#[test]
fn a_matching_description_should_say_nothing() {
    let mut d = Device::new();
    let effects = d.take("$description", DESCRIPTION);
    assert_eq!(effects, vec![], "{effects:?}");
    assert_eq!(d.view.description().unwrap().version, 3);
}

#[test]
fn a_malformed_description_should_be_warned_about_and_the_previous_kept() {
    let mut d = Device::new();
    d.take("$description", DESCRIPTION);
    let effects = d.take("$description", "{\"homie\": \"5.0\", \"version\": ");
    let said = warnings(&effects).join("\n");
    assert!(
        said.contains("homie/5/dev/$description") && said.contains("not JSON"),
        "{said}"
    );
    assert!(said.contains("version 3 is kept"), "{said}");
    assert_eq!(d.view.description().unwrap().version, 3);
    let huge = format!(
        "{{\"homie\": \"5.0\", \"version\": 4, \"name\": \"{}\"}}",
        "x".repeat(70 * 1024)
    );
    let effects = d.take("$description", &huge);
    assert!(
        warnings(&effects)[0].contains("at most 65536"),
        "{effects:?}"
    );
}

#[test]
fn a_write_should_be_confirmed_by_the_value_within_its_resolution() {
    let mut d = Device::new().ready();
    let setpoint = d.profile.parameter("setpoint").unwrap().clone();
    let id = d.view.expect(Expectation::Echo {
        path: path("thermostat/setpoint"),
        payload: "22.3".into(),
        value: Some(Written::new(&setpoint, Value::Float(22.3))),
    });
    assert_eq!(d.view.outcome(id), Outcome::Waiting);
    d.take("thermostat/setpoint", "21.5");
    assert_eq!(d.view.outcome(id), Outcome::Waiting);
    d.take("thermostat/setpoint", "22.5");
    assert_eq!(d.view.outcome(id), Outcome::Met);
    d.view.forget(id);
    assert_eq!(
        d.view.outcome(id),
        Outcome::Met,
        "a forgotten id waits for nothing"
    );
}

#[test]
fn a_write_should_be_confirmed_by_the_exact_target() {
    let mut d = Device::new().ready();
    let mode = d.profile.parameter("mode").unwrap().clone();
    let id = d.view.expect(Expectation::Echo {
        path: path("thermostat/mode"),
        payload: "heat".into(),
        value: Some(Written::new(&mode, Value::Text("heat".into()))),
    });
    d.take("thermostat/mode/$target", "Heat");
    assert_eq!(d.view.outcome(id), Outcome::Waiting);
    d.take("thermostat/mode/$target", "heat");
    assert_eq!(d.view.outcome(id), Outcome::Met);
}

#[test]
fn a_write_should_fail_when_the_device_goes_lost_or_the_broker_down() {
    let mut d = Device::new().ready();
    let echo = || Expectation::Echo {
        path: path("thermostat/setpoint"),
        payload: "25".into(),
        value: None,
    };
    let lost = d.view.expect(echo());
    d.take("$state", "lost");
    assert_eq!(d.view.outcome(lost), Outcome::Gone(Some(DeviceState::Lost)));
    d.take("$state", "ready");
    let cut = d.view.expect(echo());
    d.view.broker_down();
    assert_eq!(d.view.outcome(cut), Outcome::BrokerDown);
    assert_eq!(d.view.state(), None);
}

#[test]
fn a_restart_should_be_seen_even_when_the_device_is_back_before_anyone_looks() {
    let mut d = Device::new().ready();
    let since = d.view.times_left_ready();
    let id = d.view.expect(Expectation::LeavesReady { since });
    d.take("$state", "ready");
    assert_eq!(d.view.outcome(id), Outcome::Waiting);
    d.take("$state", "disconnected");
    d.take("$state", "init");
    d.take("$state", "ready");
    assert_eq!(d.view.outcome(id), Outcome::Met);
}

#[test]
fn setting_what_the_device_already_reports_should_need_no_echo() {
    let mut d = Device::new().ready();
    let setpoint = d.profile.parameter("setpoint").unwrap().clone();
    let id = d.view.expect(Expectation::Echo {
        path: path("thermostat/setpoint"),
        payload: "21".into(),
        value: Some(Written::new(&setpoint, Value::Float(21.0))),
    });
    assert_eq!(d.view.outcome(id), Outcome::Met);
}

#[test]
fn log_lines_and_alerts_should_become_records_with_their_severity() {
    let mut d = Device::new();
    assert_eq!(
        d.take("$log/fatal", "sensor gone"),
        vec![Effect::Log {
            severity: Severity::Critical,
            message: "sensor gone".into(),
            fields: BTreeMap::from([("level".into(), "fatal".into())]),
        }]
    );
    let odd = d.take("$log/trace", "x");
    assert!(warnings(&odd)[0].contains("not a Homie level"), "{odd:?}");
    assert!(matches!(
        odd.last(),
        Some(Effect::Log {
            severity: Severity::Notice,
            ..
        })
    ));
    assert!(matches!(
        d.take("$alert/battery", "Battery low, 8%").as_slice(),
        [Effect::Log { severity: Severity::Warning, fields, .. }] if fields["alert"] == "battery"
    ));
    assert!(matches!(
        d.take("$log/info", "\u{fffd}").as_slice(),
        [Effect::Log { .. }]
    ));
}

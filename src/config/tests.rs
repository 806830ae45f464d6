use super::*;

const GOOD: &str = r#"
[gateway]
id = "plant-room-1"
name = "Plant room gateway"
state_dir = "state"

[[groups]]
name = "hvac"
vlan = 20
parent_interface = "eth0"
defaults = { reporting_interval = 60 }
maintenance_window = { days = ["sat", "sun"], start = "02:00", duration = "3h" }
firmware = { schedule = "maintenance-window", probation = "48h" }

[[devices]]
id = "ahu-1"
profile = "acme-ahu"
address = "tcp://127.0.0.1:502?unit=1"
group = "hvac"
"#;

fn load(text: &str) -> Result<Config, Vec<LocatedError>> {
    Config::from_toml(Path::new("/etc/iotmc-gateway/gateway.toml"), text)
}

#[test]
fn good_config_should_load_with_defaults_and_resolved_paths() {
    let config = load(GOOD).unwrap();
    assert_eq!(
        config.gateway.state_dir,
        PathBuf::from("/etc/iotmc-gateway/state")
    );
    assert_eq!(config.gateway.vendor_domain, "iotmc-gateway.local");
    assert_eq!(config.listen.http.port(), 49152);
    let group = config.group("hvac").unwrap();
    assert_eq!(group.firmware.probation, Duration::from_secs(48 * 3600));
    assert_eq!(
        group.firmware.emergency_probation,
        Duration::from_secs(4 * 3600)
    );
    assert_eq!(
        group
            .maintenance_window
            .as_ref()
            .and_then(MaintenanceWindow::start_minute),
        Some(120)
    );
}

#[test]
fn unknown_key_should_be_an_error_with_its_line() {
    let errors = load(&GOOD.replace("vlan = 20", "vlan_id = 20")).unwrap_err();
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].line, Some(9), "{}", errors[0]);
    assert!(
        errors[0].message.contains("unknown field `vlan_id`"),
        "{}",
        errors[0]
    );
}

#[test]
fn every_meaning_error_should_be_listed_with_field_and_line() {
    let text = GOOD
        .replace("vlan = 20", "vlan = 5000")
        .replace("group = \"hvac\"", "group = \"lighting\"")
        .replace("probation = \"48h\"", "probation = \"2h\"")
        .replace("\"02:00\"", "\"2am\"");
    let errors = load(&text).unwrap_err();
    let found: Vec<_> = errors
        .iter()
        .map(|e| (e.field.clone().unwrap_or_default(), e.line))
        .collect();
    assert_eq!(
        found,
        vec![
            ("groups[0].vlan".to_owned(), Some(9)),
            ("groups[0].firmware.probation".to_owned(), Some(13)),
            ("groups[0].maintenance_window.start".to_owned(), Some(12)),
            ("devices[0].group".to_owned(), Some(19)),
        ],
        "{errors:#?}"
    );
    assert!(
        errors[3].message.contains("declared groups: hvac"),
        "{}",
        errors[3]
    );
}

#[test]
fn duplicate_device_ids_should_be_refused() {
    let text = format!("{GOOD}\n[[devices]]\nid = \"ahu-1\"\nprofile = \"x\"\naddress = \"y\"\n");
    let errors = load(&text).unwrap_err();
    assert_eq!(errors.len(), 1);
    assert!(
        errors[0].message.contains("declared twice"),
        "{}",
        errors[0]
    );
    assert_eq!(errors[0].line, Some(22), "{}", errors[0]);
}

#[test]
fn emergency_probation_below_an_hour_should_be_refused() {
    let errors = load(&GOOD.replace(
        "probation = \"48h\"",
        "probation = \"48h\", emergency_probation = \"30m\"",
    ))
    .unwrap_err();
    assert_eq!(
        errors[0].field.as_deref(),
        Some("groups[0].firmware.emergency_probation"),
        "{}",
        errors[0]
    );
}

const BROKERS: &str = r#"
[[mqtt.brokers]]
name = "plant-room"
host = "127.0.0.1"
username = "gateway"
password_file = "secrets/mqtt-password"
tls = { ca = "pki/broker-ca.pem", certificate = "pki/gw.pem", key = "pki/gw.key" }

[[mqtt.brokers]]
name = "legacy"
host = "10.0.0.5"
version = "3.1.1"
keep_alive = "60s"
"#;

#[test]
fn mqtt_brokers_should_load_with_defaults_and_resolved_paths() {
    let config = load(&format!("{GOOD}{BROKERS}")).unwrap();
    let [tls, plain] = &config.mqtt.brokers[..] else {
        panic!("two brokers expected")
    };
    assert_eq!(tls.port(), 8883);
    assert_eq!(plain.port(), 1883);
    assert_eq!(tls.version, VersionConfig::V5);
    assert_eq!(plain.version, VersionConfig::V311);
    assert_eq!(plain.keep_alive, Duration::from_secs(60));
    assert_eq!(tls.client_id("plant-room-1"), "iotmc-plant-room-1");
    assert_eq!(
        tls.tls.as_ref().unwrap().ca,
        PathBuf::from("/etc/iotmc-gateway/pki/broker-ca.pem")
    );
    assert_eq!(
        tls.password_file.as_deref(),
        Some(Path::new("/etc/iotmc-gateway/secrets/mqtt-password"))
    );
}

#[test]
fn bad_mqtt_brokers_should_each_be_an_error_at_their_field() {
    let text = format!(
        "{GOOD}{}",
        BROKERS
            .replace("name = \"legacy\"", "name = \"plant-room\"")
            .replace("keep_alive = \"60s\"", "keep_alive = \"2s\"")
            .replace("username = \"gateway\"\n", "")
            .replace(", key = \"pki/gw.key\"", "")
    );
    let errors = load(&text).unwrap_err();
    let fields: Vec<_> = errors.iter().filter_map(|e| e.field.clone()).collect();
    for expected in [
        "mqtt.brokers[1].name",
        "mqtt.brokers[1].keep_alive",
        "mqtt.brokers[0].password_file",
        "mqtt.brokers[0].tls",
    ] {
        assert!(
            fields.iter().any(|f| f == expected),
            "{expected} missing from {errors:?}"
        );
    }
    assert!(errors.iter().any(|e| e.message.contains("declared twice")));
}

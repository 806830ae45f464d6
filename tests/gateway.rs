//! The assembled gateway with the in-memory adapter: config → profiles → plan → registry →
//! attached links, and the errors an integrator sees when the pieces do not fit.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed set-up step is a failed test

use std::path::Path;
use std::sync::Arc;

use iotmc_adapter::Value;
use iotmc_adapter::testkit::memory::{Fault, MemoryAdapter};
use iotmc_gateway::adapters::AdapterSet;
use iotmc_gateway::config::Config;
use iotmc_gateway::daemon::{Gateway, StartError};
use iotmc_gateway::lifecycle::LifecycleState;

const PROFILE: &str = r#"
id = "memory-thermostat"
manufacturer = "Example Works"
model = "Memory Thermostat"
protocol = "memory"

[[parameters]]
name = "setpoint"
type = "float"
access = "read-write"
range = { min = 5, max = 30 }

[memory]
initial = { setpoint = 21.0 }
"#;

fn config(dir: &Path, extra: &str) -> Config {
    let profiles = dir.join("profiles");
    std::fs::create_dir_all(&profiles).unwrap();
    std::fs::write(profiles.join("thermostat.toml"), PROFILE).unwrap();
    let text = format!(
        r#"
[gateway]
id = "test-gw"
name = "Test gateway"
state_dir = "state"
profile_dirs = ["profiles"]

[[groups]]
name = "hvac"
defaults = {{ setpoint = 19.5 }}

[[devices]]
id = "thermostat-1"
profile = "memory-thermostat"
address = "memory:one"
group = "hvac"
{extra}"#
    );
    let path = dir.join("gateway.toml");
    std::fs::write(&path, &text).unwrap();
    Config::load(&path).unwrap_or_else(|e| panic!("{e:?}"))
}

fn adapters() -> AdapterSet {
    AdapterSet::built().with(Arc::new(MemoryAdapter::new(Fault::None)))
}

fn invalid(result: Result<Gateway, StartError>) -> Vec<String> {
    match result {
        Err(StartError::Invalid(errors)) => errors.iter().map(ToString::to_string).collect(),
        other => panic!("expected located errors, got {other:?}"),
    }
}

#[tokio::test]
async fn start_should_attach_devices_and_register_them_as_provisioned() {
    let dir = tempfile::tempdir().unwrap();
    let gateway = Gateway::start(config(dir.path(), ""), adapters())
        .await
        .unwrap();
    let [device] = gateway.devices() else {
        panic!("one device expected")
    };
    assert_eq!(device.record.lifecycle, LifecycleState::Provisioned);
    assert_eq!(device.record.group.as_deref(), Some("hvac"));
    let link = device.link.as_ref().expect("attached");
    let values = link.read(&["setpoint".to_owned()]).await.unwrap();
    assert_eq!(values.get("setpoint"), Some(&Value::Float(21.0)));
    let history = gateway.registry().history("thermostat-1").unwrap();
    assert_eq!(history.len(), 1);
    assert!(
        history[0].cause.starts_with("declared in "),
        "{}",
        history[0].cause
    );
}

#[tokio::test]
async fn restart_should_keep_udn_lifecycle_and_history() {
    let dir = tempfile::tempdir().unwrap();
    let gateway = Gateway::start(config(dir.path(), ""), adapters())
        .await
        .unwrap();
    let udn = gateway.devices()[0].record.udn;
    gateway
        .registry()
        .transition(
            "thermostat-1",
            LifecycleState::PendingApproval,
            "enrolled",
            std::time::SystemTime::now(),
        )
        .unwrap();
    gateway.stop().await;

    let gateway = Gateway::start(config(dir.path(), ""), adapters())
        .await
        .unwrap();
    let record = &gateway.devices()[0].record;
    assert_eq!(record.udn, udn);
    assert_eq!(record.lifecycle, LifecycleState::PendingApproval);
    assert_eq!(gateway.registry().history("thermostat-1").unwrap().len(), 2);
}

#[tokio::test]
async fn unknown_profile_should_name_the_device_and_the_config_line() {
    let dir = tempfile::tempdir().unwrap();
    let extra = "\n[[devices]]\nid = \"thermostat-2\"\nprofile = \"memory-thermostat-v2\"\naddress = \"memory:two\"\n";
    let errors = invalid(Gateway::start(config(dir.path(), extra), adapters()).await);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].contains("gateway.toml:20:11: field `devices[1].profile`: device `thermostat-2`: profile `memory-thermostat-v2` cannot be used: 1 profile(s) are loaded"), "{errors:?}");
    assert!(
        !dir.path().join("state/registry.redb").exists(),
        "nothing is written when the config is refused"
    );
}

#[tokio::test]
async fn address_the_adapter_refuses_should_say_what_it_expected() {
    let dir = tempfile::tempdir().unwrap();
    let extra = "\n[[devices]]\nid = \"thermostat-2\"\nprofile = \"memory-thermostat\"\naddress = \"tcp://10.0.0.1\"\n";
    let errors = invalid(Gateway::start(config(dir.path(), extra), adapters()).await);
    assert!(errors[0].contains("field `devices[1].address`: device `thermostat-2`: \"tcp://10.0.0.1\" is not a memory address: expected memory:<name>"), "{errors:?}");
}

#[tokio::test]
async fn group_default_outside_the_profile_range_should_be_refused() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), "");
    let text = std::fs::read_to_string(cfg.source.path())
        .unwrap()
        .replace("setpoint = 19.5", "setpoint = 45.0");
    std::fs::write(cfg.source.path(), text).unwrap();
    let cfg = Config::load(cfg.source.path()).unwrap();
    let errors = invalid(Gateway::start(cfg, adapters()).await);
    assert!(errors[0].contains("field `groups[0].defaults.setpoint`: default for device `thermostat-1`: value 45 for `setpoint` is out of range: expected 5 ..= 30"), "{errors:?}");
}

#[tokio::test]
async fn profile_error_in_the_adapter_section_should_stop_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), "");
    std::fs::write(
        dir.path().join("profiles/thermostat.toml"),
        PROFILE.replace("initial = { setpoint", "initial = { set_point"),
    )
    .unwrap();
    let errors = invalid(Gateway::start(cfg, adapters()).await);
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(errors[0].contains("thermostat.toml:14:25: field `memory.initial.set_point`: no parameter `set_point` is declared"), "{errors:?}");
    assert!(
        errors[1].contains("device `thermostat-1`: profile `memory-thermostat` cannot be used:"),
        "{errors:?}"
    );
    assert!(
        errors[1].ends_with("thermostat.toml has errors (listed above); fix them first"),
        "{errors:?}"
    );
}

#[tokio::test]
async fn two_devices_at_one_address_should_be_refused() {
    let dir = tempfile::tempdir().unwrap();
    let extra = "\n[[devices]]\nid = \"thermostat-2\"\nprofile = \"memory-thermostat\"\naddress = \"memory:one\"\n";
    let errors = invalid(Gateway::start(config(dir.path(), extra), adapters()).await);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].contains("gateway.toml:21:11: field `devices[1].address`: device `thermostat-2` has the same memory address as device `thermostat-1`"),
        "{errors:?}"
    );
}

#[tokio::test]
async fn decommissioned_device_should_not_be_attached_again() {
    let dir = tempfile::tempdir().unwrap();
    let gateway = Gateway::start(config(dir.path(), ""), adapters())
        .await
        .unwrap();
    gateway
        .registry()
        .transition(
            "thermostat-1",
            LifecycleState::Decommissioned,
            "retired",
            std::time::SystemTime::now(),
        )
        .unwrap();
    gateway.stop().await;

    let gateway = Gateway::start(config(dir.path(), ""), adapters())
        .await
        .unwrap();
    assert!(gateway.devices().is_empty(), "{:?}", gateway.devices());
    let record = gateway.registry().device("thermostat-1").unwrap().unwrap();
    assert_eq!(record.lifecycle, LifecycleState::Decommissioned);
}

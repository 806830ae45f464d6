//! Proves the conformance kit with the in-memory adapter: a correct link passes every check, and
//! links that break the contract in typical ways are caught.

#![allow(missing_docs)]

use std::path::Path;
use std::sync::Arc;

use iotmc_adapter::testkit::memory::{Fault, MemoryAdapter};
use iotmc_adapter::testkit::{Conformance, FirmwareFixture, Outcome};
use iotmc_adapter::{Adapter, DeviceBinding, FirmwareImage, Profile};

const PROFILE: &str = r#"
id = "memory-thermostat"
manufacturer = "Example Works"
model = "Memory Thermostat"
protocol = "memory"

[[parameters]]
name = "temperature"
type = "float"
unit = "°C"

[[parameters]]
name = "setpoint"
type = "float"
unit = "°C"
access = "read-write"
range = { min = 5, max = 30 }
resolution = 0.5

[[parameters]]
name = "mode"
type = "enum"
access = "read-write"
values = ["off", "heat", "auto"]

[[parameters]]
name = "label"
type = "string"
access = "read-write"
max_length = 16

[[actions]]
name = "reboot"
kind = "reboot"
timeout = "10s"

[[actions]]
name = "factory_reset"
kind = "factory-reset"

[[actions]]
name = "identify_blink"
arguments = [{ name = "seconds", type = "int", range = { min = 1, max = 60 } }]

[firmware]
method = "memory"
dual_bank = true
max_image_size = 65536

[logs]
method = "memory"

[memory]
initial = { temperature = 20.5, setpoint = 21.0, mode = "auto", label = "plant room" }
"#;

fn image(version: &str, len: usize) -> FirmwareImage {
    FirmwareImage {
        bytes: vec![0xA5; len].into(),
        sha256: [0; 32],
        version: version.into(),
        download_url: None,
    }
}

fn fixture() -> FirmwareFixture {
    FirmwareFixture {
        first: image("1.1.0", 5000),
        second: image("1.2.0", 3000),
    }
}

async fn run(profile_text: &str, fault: Fault) -> iotmc_adapter::testkit::Report {
    let profile = Arc::new(
        Profile::from_toml(Path::new("memory.toml"), profile_text)
            .unwrap_or_else(|e| panic!("{e:?}")),
    );
    let adapter = MemoryAdapter::new(fault);
    adapter
        .validate_profile(&profile)
        .unwrap_or_else(|e| panic!("{e:?}"));
    let binding = DeviceBinding {
        device_id: "thermostat-1".into(),
        profile: Arc::clone(&profile),
        address: "memory:one".into(),
    };
    let link = adapter
        .attach(&binding)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let device = adapter
        .device("memory:one")
        .expect("the adapter keeps the device it attached");
    Conformance::new(link, profile, device.as_ref())
        .with_firmware(fixture())
        .run()
        .await
}

fn failed(report: &iotmc_adapter::testkit::Report) -> Vec<&str> {
    report.failures().map(|c| c.name.as_str()).collect()
}

#[tokio::test(start_paused = true)]
async fn correct_dual_bank_link_should_pass_every_check() {
    let report = run(PROFILE, Fault::None).await;
    report.assert_passed();
    assert!(
        report.passed("firmware: revert returns to the confirmed version"),
        "{report}"
    );
    assert!(
        report.passed("read from an unresponsive device is Timeout"),
        "{report}"
    );
    assert!(report.passed("write reads back: setpoint"), "{report}");
    assert!(report.passed("action: identify_blink"), "{report}");
}

#[tokio::test(start_paused = true)]
async fn correct_single_bank_link_without_logs_should_pass_and_skip_what_does_not_apply() {
    let text = PROFILE
        .replace("dual_bank = true", "dual_bank = false")
        .replace("[logs]\nmethod = \"memory\"", "");
    let report = run(&text, Fault::None).await;
    report.assert_passed();
    assert!(
        report.passed("firmware: revert on a single-bank target is Unsupported"),
        "{report}"
    );
    assert!(
        report
            .checks
            .iter()
            .any(|c| c.name == "log fetch" && matches!(c.outcome, Outcome::Skipped(_))),
        "{report}"
    );
}

#[tokio::test(start_paused = true)]
async fn kit_should_catch_a_link_that_ignores_writes() {
    let report = run(PROFILE, Fault::IgnoresWrites).await;
    assert_eq!(
        failed(&report),
        vec![
            "write reads back: setpoint",
            "write reads back: mode",
            "write reads back: label"
        ],
        "{report}"
    );
}

#[tokio::test(start_paused = true)]
async fn kit_should_catch_a_link_that_reports_transport_failure_for_a_silent_device() {
    let report = run(PROFILE, Fault::TransportInsteadOfTimeout).await;
    assert_eq!(
        failed(&report),
        vec!["read from an unresponsive device is Timeout"],
        "{report}"
    );
}

#[tokio::test(start_paused = true)]
async fn kit_should_catch_a_link_that_sends_out_of_range_values() {
    let report = run(PROFILE, Fault::SkipsRangeCheck).await;
    let failures = failed(&report);
    assert!(
        failures.contains(&"write of 31 to `setpoint` is OutOfRange"),
        "{report}"
    );
    assert!(
        failures.contains(&"write of text to numeric `setpoint` is WrongType"),
        "{report}"
    );
}

#[test]
fn adapter_should_locate_errors_in_its_own_section() {
    let text = PROFILE.replace("label = \"plant room\"", "lable = \"plant room\"");
    let profile =
        Profile::from_toml(Path::new("memory.toml"), &text).unwrap_or_else(|e| panic!("{e:?}"));
    let errors = MemoryAdapter::new(Fault::None)
        .validate_profile(&profile)
        .unwrap_err();
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].line, Some(54), "{}", errors[0]);
    assert_eq!(
        errors[0].to_string(),
        "memory.toml:54:73: field `memory.initial.lable`: no parameter `lable` is declared"
    );
}

//! The command line as an integrator uses it.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed set-up step is a failed test

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::SystemTime;

use iotmc_gateway::adapters::AdapterSet;
use iotmc_gateway::lifecycle::LifecycleState;
use iotmc_gateway::registry::{DeviceRecord, Registry, device_udn, unix_ms};

fn gateway(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_iotmc-gateway"))
        .args(args)
        .output()
        .unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

const GOOD_PROFILE: &str = r#"
id = "acme-sensor"
manufacturer = "Acme"
model = "S-1"
protocol = "zigbee"

[[parameters]]
name = "temperature"
type = "float"
"#;

#[test]
fn committed_schema_should_match_the_code() {
    let committed =
        std::fs::read_to_string(repo("device-profiles/schema/device-profile.schema.json")).unwrap();
    let current = iotmc_gateway::profile::schema_document(&AdapterSet::built());
    assert!(
        committed == current,
        "device-profiles/schema/device-profile.schema.json is stale; regenerate it with\n  cargo run -- profile schema > device-profiles/schema/device-profile.schema.json"
    );
    let output = gateway(&["profile", "schema"]);
    assert_eq!(stdout(&output), current);
}

#[test]
fn repository_profiles_should_validate() {
    let output = gateway(&[
        "profile",
        "validate",
        repo("device-profiles").to_str().unwrap(),
    ]);
    assert!(output.status.success(), "{}", stdout(&output));
    assert!(
        stdout(&output).contains(" 0 error(s)"),
        "{}",
        stdout(&output)
    );
}

#[test]
fn validate_should_list_every_error_with_file_and_line_and_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a-good.toml"), GOOD_PROFILE).unwrap();
    std::fs::write(
        dir.path().join("b-typo.toml"),
        GOOD_PROFILE.replace("type = \"float\"", "typ = \"float\""),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("c-meaning.toml"),
        GOOD_PROFILE
            .replace("acme-sensor", "Acme Sensor")
            .replace("\"float\"", "\"float\"\nvalues = [\"a\"]"),
    )
    .unwrap();
    std::fs::write(dir.path().join("d-duplicate.toml"), GOOD_PROFILE).unwrap();

    let output = gateway(&["profile", "validate", dir.path().to_str().unwrap()]);
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(
        text.contains(
            "b-typo.toml:9:1: field `parameters[0].typ`: unknown field `typ`, expected one of"
        ),
        "{text}"
    );
    assert!(
        text.contains("c-meaning.toml:2:6: field `id`: \"Acme Sensor\" is not a valid profile id"),
        "{text}"
    );
    assert!(
        text.contains(
            "c-meaning.toml:10:10: field `parameters[0].values`: only an `enum` has members"
        ),
        "{text}"
    );
    assert!(
        text.contains(
            "d-duplicate.toml:2:6: field `id`: profile id `acme-sensor` is already used by"
        ),
        "{text}"
    );
    assert!(text.contains("1 valid profile(s), 4 error(s)"), "{text}");
}

#[test]
fn validate_of_a_missing_path_should_say_so_and_exit_1() {
    let output = gateway(&["profile", "validate", "/nonexistent/profiles"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stdout(&output).contains("/nonexistent/profiles: cannot read: No such file or directory"),
        "{}",
        stdout(&output)
    );
}

#[test]
fn show_should_print_the_profile_and_name_known_ids_when_missing() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("s.toml"), GOOD_PROFILE).unwrap();
    let d = dir.path().to_str().unwrap();
    let output = gateway(&["profile", "show", "acme-sensor", "--profile-dir", d]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stdout(&output).starts_with("acme-sensor — Acme S-1 (zigbee)"),
        "{}",
        stdout(&output)
    );

    let output = gateway(&[
        "profile",
        "show",
        "acme-sensr",
        "--profile-dir",
        d,
        "--json",
    ]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("no profile `acme-sensr`"),
        "{}",
        stderr(&output)
    );
    assert!(
        stderr(&output).contains("known: acme-sensor"),
        "{}",
        stderr(&output)
    );

    let output = gateway(&[
        "profile",
        "show",
        "acme-sensor",
        "--profile-dir",
        d,
        "--json",
    ]);
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(json["parameters"][0]["name"], "temperature");
}

#[test]
fn config_check_should_locate_errors_and_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gateway.toml");
    std::fs::write(
        &path,
        "[gateway]\nid = \"gw\"\nname = \"Gateway\"\nstate_dir = \"s\"\ncolour = \"blue\"\n",
    )
    .unwrap();
    let output = gateway(&["config", "check", path.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output)
            .contains("gateway.toml:5:1: field `gateway.colour`: unknown field `colour`"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn config_check_should_refuse_a_device_whose_adapter_is_not_built() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("s.toml"), GOOD_PROFILE).unwrap();
    let path = dir.path().join("gateway.toml");
    std::fs::write(
        &path,
        "[gateway]\nid = \"gw\"\nname = \"Gateway\"\nstate_dir = \"s\"\nprofile_dirs = [\".\"]\n\n[[devices]]\nid = \"t1\"\nprofile = \"acme-sensor\"\naddress = \"00:12:4b:00:01:02:03:04\"\n",
    )
    .unwrap();
    let output = gateway(&["config", "check", path.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1), "{}", stdout(&output));
    assert!(
        stdout(&output).contains(
            "gateway.toml:9:11: field `devices[0].profile`: device `t1`: the `zigbee` adapter"
        ),
        "{}",
        stdout(&output)
    );
}

fn seeded_registry(dir: &Path) {
    let registry = Registry::open(dir).unwrap();
    for (id, unit) in [("meter-1", 1), ("meter-2", 2)] {
        let address = format!("tcp://127.0.0.1:502?unit={unit}");
        let record = DeviceRecord {
            id: id.into(),
            name: None,
            profile: "eastron-sdm120".into(),
            protocol: "modbus".into(),
            udn: device_udn("gw", "modbus", &address),
            address,
            group: Some("hvac".into()),
            lifecycle: LifecycleState::Provisioned,
            lifecycle_since_ms: unix_ms(SystemTime::now()),
            config_version: 0,
            in_config: true,
            group_assigned: false,
        };
        registry
            .insert_device(&record, "test", SystemTime::now())
            .unwrap();
    }
    registry
        .transition(
            "meter-2",
            LifecycleState::PendingApproval,
            "enrolled",
            SystemTime::now(),
        )
        .unwrap();
}

#[test]
fn devices_list_should_show_the_registry_as_a_table_and_as_json() {
    let dir = tempfile::tempdir().unwrap();
    seeded_registry(dir.path());
    let d = dir.path().to_str().unwrap();

    let output = gateway(&["devices", "list", "--state-dir", d]);
    let text = stdout(&output);
    assert!(output.status.success(), "{}", stderr(&output));
    let rows: Vec<&str> = text.lines().collect();
    assert!(rows[0].starts_with("ID "), "{text}");
    assert!(
        rows[1].starts_with("meter-1") && rows[1].contains("Provisioned"),
        "{text}"
    );
    assert!(
        rows[2].starts_with("meter-2") && rows[2].contains("PendingApproval"),
        "{text}"
    );
    assert!(rows[3].starts_with("2 device(s) in "), "{text}");

    let output = gateway(&["devices", "list", "--state-dir", d, "--json"]);
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(json.as_array().map(Vec::len), Some(2));
    assert_eq!(json[1]["lifecycle"], "pending-approval");
    assert_eq!(json[0]["group"], "hvac");
}

#[test]
fn devices_list_without_a_registry_should_say_the_gateway_has_not_run() {
    let dir = tempfile::tempdir().unwrap();
    let output = gateway(&[
        "devices",
        "list",
        "--state-dir",
        dir.path().to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("has not run with this state directory"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn devices_list_while_the_gateway_holds_the_registry_should_say_so() {
    let dir = tempfile::tempdir().unwrap();
    seeded_registry(dir.path());
    let _running = Registry::open(dir.path()).unwrap();
    let output = gateway(&[
        "devices",
        "list",
        "--state-dir",
        dir.path().to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("is held by a running iotmc-gateway"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn version_should_name_the_package_version() {
    let output = gateway(&["--version"]);
    assert_eq!(
        stdout(&output).trim(),
        format!("iotmc-gateway {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn deploy_example_config_should_load() {
    let config = iotmc_gateway::config::Config::load(&repo("deploy/gateway.example.toml"))
        .unwrap_or_else(|errors| {
            panic!(
                "{}",
                errors
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("\n")
            )
        });
    assert_eq!(
        config.gateway.state_dir,
        Path::new("/var/lib/iotmc-gateway")
    );
    assert!(!config.groups.is_empty(), "the example documents groups");
}

#[test]
fn validate_should_follow_linked_directories_and_go_on_past_a_broken_entry() {
    let dir = tempfile::tempdir().unwrap();
    let real = dir.path().join("real");
    std::fs::create_dir(&real).unwrap();
    std::fs::write(real.join("sensor.toml"), GOOD_PROFILE).unwrap();
    let tree = dir.path().join("tree");
    std::fs::create_dir(&tree).unwrap();
    std::os::unix::fs::symlink(&real, tree.join("linked")).unwrap();
    std::os::unix::fs::symlink(dir.path().join("gone.toml"), tree.join("a-broken.toml")).unwrap();

    let output = gateway(&["profile", "validate", tree.to_str().unwrap()]);
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(
        text.contains("a-broken.toml: cannot read: No such file or directory"),
        "{text}"
    );
    assert!(text.contains("1 valid profile(s), 1 error(s)"), "{text}");
}

//! `ctl`'s commands on the gateway's own root device, end to end: enrollment decisions on
//! devices that enrolled by themselves, decommissioning, and batch configuration.

use std::path::Path;

use iotmc_adapter::Value;

use super::common::{Extra, Harness};
use super::firmware::events::Listener;
use super::{Operator, stderr, stdout};

const GROUPS: &str = r#"
[enrollment]
lab_pki = true

[[groups]]
name = "hvac"
approval = "manual"
defaults = { setpoint = 19.5, mode = "eco" }

[[groups]]
name = "relays"
approval = "manual"
defaults = { on = true }
"#;

/// The harness with enrollment on: both devices wait for an operator after enrolling.
async fn start(dir: &Path) -> Harness {
    let extra = Extra {
        toml: GROUPS,
        thermostat_group: Some("hvac"),
        relay_group: Some("relays"),
    };
    Harness::start_with(dir, true, &extra, |_| {}).await
}

/// Waits until device `id` is evented in lifecycle state `state`.
async fn until_state(h: &Harness, listener: &mut Listener, id: &str, state: &str) {
    listener
        .subscribe(
            h.face.http_addr(),
            &format!("/upnp/{}/Lifecycle/event", h.udn(id)),
            &format!("/{id}"),
        )
        .await;
    listener
        .until(&format!("/{id}"), "LifecycleState", state, |v| v == state)
        .await;
}

#[tokio::test]
async fn ctl_should_approve_a_waiting_device_then_decommission_it_only_when_confirmed() {
    let dir = tempfile::tempdir().unwrap();
    let h = start(dir.path()).await;
    let operator = Operator::of(&h);
    let mut listener = Listener::start().await;
    until_state(&h, &mut listener, "thermostat-1", "PendingApproval").await;

    let output = operator.ctl(&["devices", "--json"]).await;
    assert!(output.status.success(), "{}", stderr(&output));
    let devices: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let thermostat = devices
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["id"] == "thermostat-1")
        .unwrap();
    assert_eq!(
        thermostat["lifecycle_state"], "PendingApproval",
        "{devices}"
    );
    assert_eq!(thermostat["group"], "hvac", "{devices}");
    assert_eq!(thermostat["evidence"], "none", "{devices}");

    let output = operator.ctl(&["approve", "thermostat-1"]).await;
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stdout(&output).contains("approved; lifecycle state Commissioned"),
        "{}",
        stdout(&output)
    );
    // The group's initial configuration reached the simulated device.
    assert_eq!(h.setpoint(), Value::Float(19.5));
    assert_eq!(
        h.simulated("thermostat-1").value("mode"),
        Some(Value::Text("eco".into()))
    );

    // Approving it again: the gateway's refusal, naming device, action and code.
    let output = operator.ctl(&["approve", "thermostat-1"]).await;
    assert_eq!(output.status.code(), Some(1));
    let error = stderr(&output);
    assert!(
        error.contains(&format!(
            "ApproveEnrollment for thermostat-1 (uuid:{}): UPnPError 718",
            h.udn("thermostat-1")
        )),
        "{error}"
    );

    // Without --yes and without a terminal: refused, nothing done.
    let output = operator
        .ctl(&["decommission", "thermostat-1", "--reason", "replaced"])
        .await;
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("add --yes"), "{}", stderr(&output));
    let lifecycle = |h: &Harness| {
        h.gateway
            .registry()
            .device("thermostat-1")
            .unwrap()
            .unwrap()
            .lifecycle
            .as_str()
            .to_owned()
    };
    assert_eq!(lifecycle(&h), "Commissioned");

    let output = operator
        .ctl(&[
            "decommission",
            "thermostat-1",
            "--reason",
            "replaced",
            "--yes",
            "--json",
        ])
        .await;
    assert!(output.status.success(), "{}", stderr(&output));
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(json["action"], "DecommissionDevice");
    assert_eq!(json["decommissioned"]["id"], "thermostat-1", "{json}");
    assert_eq!(json["decommissioned"]["audit"], "kept", "{json}");
    assert!(
        !json["decommissioned"]["revoked_serial"]
            .as_str()
            .unwrap()
            .is_empty(),
        "{json}"
    );
    assert_eq!(lifecycle(&h), "Decommissioned");

    // Gone from the inventory; naming it now lists the devices there are.
    let output = operator.ctl(&["devices"]).await;
    assert!(
        !stdout(&output).contains("thermostat-1"),
        "{}",
        stdout(&output)
    );
    let output = operator.ctl(&["set", "thermostat-1", "setpoint=20"]).await;
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("no device `thermostat-1`"),
        "{}",
        stderr(&output)
    );
    h.stop().await;
}

#[tokio::test]
async fn ctl_should_reject_an_enrollment_and_move_an_approved_device_to_another_group() {
    let dir = tempfile::tempdir().unwrap();
    let h = start(dir.path()).await;
    let operator = Operator::of(&h);
    let mut listener = Listener::start().await;
    until_state(&h, &mut listener, "relay-1", "PendingApproval").await;

    let output = operator
        .ctl(&["reject", "relay-1", "--reason", "not ours"])
        .await;
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stdout(&output).contains("enrollment rejected"),
        "{}",
        stdout(&output)
    );
    listener
        .until("/relay-1", "LifecycleState", "Provisioned", |v| {
            v == "Provisioned"
        })
        .await;

    // A rejected device can still be approved; here named by its UDN, its group given.
    let udn = format!("uuid:{}", h.udn("relay-1"));
    let output = operator
        .ctl(&["approve", &udn, "--group", "relays", "--json"])
        .await;
    assert!(output.status.success(), "{}", stderr(&output));
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(json["lifecycle_state"], "Commissioned", "{json}");
    assert_eq!(h.simulated("relay-1").value("on"), Some(Value::Bool(true)));

    let output = operator.ctl(&["assign-group", "relay-1", "hvac"]).await;
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stdout(&output).contains("assigned to group hvac"),
        "{}",
        stdout(&output)
    );
    let group = h
        .gateway
        .registry()
        .device("relay-1")
        .unwrap()
        .unwrap()
        .group;
    assert_eq!(group.as_deref(), Some("hvac"));
    h.stop().await;
}

#[tokio::test]
async fn ctl_batch_set_should_report_each_device_and_a_retry_should_write_nothing_twice() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::start(dir.path(), true).await;
    let operator = Operator::of(&h);
    let version = h.config_version("thermostat-1");

    // The relay has no setpoint: it fails, the thermostat applies.
    let args = [
        "batch-set",
        "--targets",
        "thermostat-1,relay-1",
        "setpoint=24",
        "--batch-id",
        "ctl-test-1",
    ];
    let output = operator.ctl(&args).await;
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(
        text.starts_with("batch ctl-test-1: 2 device(s), 1 succeeded, 1 failed\n"),
        "{text}"
    );
    let relay = text
        .lines()
        .find(|l| l.starts_with("relay-1 "))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        relay.contains("Failed") && relay.contains("UPnPError 702"),
        "{text}"
    );
    assert_eq!(h.setpoint(), Value::Float(24.0));
    assert_eq!(h.config_version("thermostat-1"), version + 1);

    // The same batch again: the gateway answers the stored results (its own tests show nothing
    // is written); ctl says so.
    let mut json_args = args.to_vec();
    json_args.push("--json");
    let output = operator.ctl(&json_args).await;
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(json["replayed"], true, "{json}");
    assert_eq!(json["ok"], false, "{json}");
    assert_eq!(json["results"][0]["status"], "ChangesApplied", "{json}");
    assert_eq!(json["results"][1]["error_code"], 702, "{json}");
    assert_eq!(h.config_version("thermostat-1"), version + 1);
    let output = operator.ctl(&args).await;
    assert!(
        stdout(&output).contains(
            "(the results of an earlier run of this batch id: nothing was written again)"
        ),
        "{}",
        stdout(&output)
    );

    // Without --batch-id a fresh one is made and told, so the operator can retry with it.
    let output = operator
        .ctl(&["batch-set", "--targets", "thermostat-1", "setpoint=22"])
        .await;
    assert!(output.status.success(), "{}", stderr(&output));
    let told = stderr(&output);
    let id = told
        .split("--batch-id ")
        .nth(1)
        .unwrap_or_else(|| panic!("{told}"))
        .trim();
    assert!(
        stdout(&output).starts_with(&format!("batch {id}: 1 device(s), 1 succeeded, 0 failed")),
        "{}",
        stdout(&output)
    );
    assert_eq!(h.setpoint(), Value::Float(22.0));
    h.stop().await;
}

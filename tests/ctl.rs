//! `iotmc-gateway ctl` and the SOAP client it is built on, against a running gateway with the
//! demo PKI: the built binary as an operator runs it, over mutual TLS.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed set-up step is a failed test

mod common;
mod firmware;
#[path = "ctl/gateway_actions.rs"]
mod gateway_actions;

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use common::{HANG_GUARD, Harness};
use iotmc_adapter::Value;
use iotmc_gateway::upnp::client::{ClientError, SoapClient, TlsFailure};
use iotmc_gateway::upnp::services::specs::MANAGEMENT_CONTROLLER;

/// The gateway's ManagementController service type and control path.
fn controller(h: &Harness) -> (String, String) {
    let state = h.face.state();
    (
        MANAGEMENT_CONTROLLER.service_type(&state.vendor_domain),
        format!(
            "/upnp/{}/{}/control",
            state.gateway.udn, MANAGEMENT_CONTROLLER.path
        ),
    )
}

fn https_base(h: &Harness) -> String {
    format!("https://{}", h.face.https_addr().unwrap())
}

#[tokio::test]
async fn the_soap_client_should_read_the_inventory_over_mutual_tls() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::start(dir.path(), true).await;
    let pki = h.pki.clone().unwrap();
    let client = SoapClient::from_pem_files(
        &https_base(&h),
        Some(&pki.ca),
        Some(&pki.operator_certificate),
        Some(&pki.operator_key),
        HANG_GUARD,
    )
    .unwrap();
    let (service, control) = controller(&h);
    let out = client
        .call(&control, &service, "GetInventory", &[])
        .await
        .unwrap();
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!(out[0].0, "Inventory");
    let ids = common::texts(&out[0].1, "Id");
    assert_eq!(ids.len(), 2, "{}", out[0].1);
    assert!(ids.contains(&"thermostat-1".to_owned()) && ids.contains(&"relay-1".to_owned()));
    assert!(
        out[0]
            .1
            .contains(&format!("uuid:{}", h.udn("thermostat-1")))
    );

    // A state-changing action still under construction answers its UPnP error, typed.
    let err = client
        .call(
            &control,
            &service,
            "RejectEnrollment",
            &[
                ("DeviceUDN", "uuid:00000000-0000-0000-0000-000000000000"),
                ("Reason", "test"),
            ],
        )
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::Upnp { .. }), "{err}");
    h.stop().await;
}

#[tokio::test]
async fn the_soap_client_should_type_a_refused_certificate_and_an_untrusted_gateway() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::start(dir.path(), true).await;
    let pki = h.pki.clone().unwrap();
    let (service, control) = controller(&h);
    let timeout = Duration::from_secs(60);

    // The gateway completes the handshake with a certificate of a CA it does not trust and
    // classifies the caller: reads are answered, changes refused with 606 saying why.
    let (cert, key) = common::stranger_identity(dir.path());
    let stranger = SoapClient::from_pem_files(
        &https_base(&h),
        Some(&pki.ca),
        Some(&cert),
        Some(&key),
        timeout,
    )
    .unwrap();
    let err = stranger
        .call(
            &format!(
                "/upnp/{}/ConfigurationManagement/control",
                h.udn("thermostat-1")
            ),
            common::CMS,
            "SetValues",
            &[(
                "ParameterValueList",
                &common::parameter_values(&[("/IoTMC/Parameters/setpoint", "25")]),
            )],
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ClientError::Upnp { code: 606, description } if description.contains("not accepted")),
        "{err}"
    );
    assert_eq!(h.setpoint(), Value::Float(21.0));

    // Trusting another CA than the gateway's: the gateway's certificate is not trusted.
    let foreign = common::foreign_pki(dir.path());
    let wrong_ca =
        SoapClient::from_pem_files(&https_base(&h), Some(&foreign.ca), None, None, timeout)
            .unwrap();
    let err = wrong_ca
        .call(&control, &service, "GetInventory", &[])
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            ClientError::Tls {
                failure: TlsFailure::ServerNotTrusted,
                ..
            }
        ),
        "{err}"
    );
    h.stop().await;
}

/// How the operator reaches the harness' gateway: the connection flags.
struct Operator {
    gateway: String,
    ca: String,
    identity: Option<(String, String)>,
}

impl Operator {
    /// The demo PKI's operator.
    fn of(h: &Harness) -> Self {
        let pki = h.pki.as_ref().unwrap();
        Self {
            gateway: https_base(h),
            ca: path(&pki.ca),
            identity: Some((path(&pki.operator_certificate), path(&pki.operator_key))),
        }
    }

    /// No client certificate.
    fn anonymous(h: &Harness) -> Self {
        Self {
            identity: None,
            ..Self::of(h)
        }
    }

    /// Runs `iotmc-gateway ctl <args>` with these flags (and none from the environment).
    async fn ctl(&self, args: &[&str]) -> Output {
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_iotmc-gateway"));
        command
            .arg("ctl")
            .args([
                "--gateway",
                &self.gateway,
                "--ca",
                &self.ca,
                "--gateway-id",
                "face-test",
            ])
            .args(["--timeout", "60s"]);
        if let Some((cert, key)) = &self.identity {
            command.args(["--cert", cert, "--key", key]);
        }
        for (name, _) in std::env::vars() {
            if name.starts_with("IOTMC_CTL_") {
                command.env_remove(name);
            }
        }
        command.args(args).stdin(std::process::Stdio::null());
        tokio::time::timeout(HANG_GUARD, command.output())
            .await
            .expect("ctl ends")
            .unwrap()
    }
}

fn path(p: &Path) -> String {
    p.to_str().unwrap().to_owned()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[tokio::test]
async fn ctl_devices_should_list_the_inventory_as_a_table_and_as_json() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::start(dir.path(), true).await;
    let operator = Operator::of(&h);

    let output = operator.ctl(&["devices"]).await;
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[0].starts_with("ID") && lines[0].contains("LIFECYCLE"),
        "{text}"
    );
    let thermostat = lines
        .iter()
        .find(|l| l.starts_with("thermostat-1 "))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        thermostat.contains(&format!("uuid:{}", h.udn("thermostat-1"))),
        "{text}"
    );
    assert!(thermostat.contains("memory:thermostat-1"), "{text}");
    assert_eq!(lines.last(), Some(&"2 device(s)"), "{text}");

    let output = operator.ctl(&["devices", "--json"]).await;
    assert!(output.status.success(), "{}", stderr(&output));
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let devices = json.as_array().unwrap();
    assert_eq!(devices.len(), 2);
    let relay = devices.iter().find(|d| d["id"] == "relay-1").unwrap();
    assert_eq!(relay["udn"], format!("uuid:{}", h.udn("relay-1")));
    assert_eq!(relay["profile"], "face-relay");
    assert_eq!(relay["protocol"], "memory");
    h.stop().await;
}

#[tokio::test]
async fn ctl_set_should_reach_the_simulated_device_and_name_the_device_on_failure() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::start(dir.path(), true).await;
    let operator = Operator::of(&h);
    let version = h.config_version("thermostat-1");

    let output = operator
        .ctl(&["set", "thermostat-1", "setpoint=22.5", "mode=eco"])
        .await;
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stdout(&output).contains("ChangesApplied"),
        "{}",
        stdout(&output)
    );
    assert_eq!(h.setpoint(), Value::Float(22.5));
    assert_eq!(
        h.simulated("thermostat-1").value("mode"),
        Some(Value::Text("eco".into()))
    );
    assert_eq!(h.config_version("thermostat-1"), version + 1);

    // By UDN, with --json.
    let udn = format!("uuid:{}", h.udn("thermostat-1"));
    let output = operator.ctl(&["set", &udn, "setpoint=23", "--json"]).await;
    assert!(output.status.success(), "{}", stderr(&output));
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(json["status"], "ChangesApplied");
    assert_eq!(json["values"]["/IoTMC/Parameters/setpoint"], "23");
    assert_eq!(h.setpoint(), Value::Float(23.0));

    // Out of range: exit 1, naming the device, the action and the UPnP error.
    let output = operator.ctl(&["set", "thermostat-1", "setpoint=99"]).await;
    assert_eq!(output.status.code(), Some(1));
    let error = stderr(&output);
    assert!(
        error.contains(&format!(
            "SetValues on thermostat-1 (uuid:{}): UPnPError 704",
            h.udn("thermostat-1")
        )),
        "{error}"
    );
    assert_eq!(h.setpoint(), Value::Float(23.0));

    // An unknown device: the known ones are listed.
    let output = operator
        .ctl(&["set", "boiler-9", "setpoint=20", "--json"])
        .await;
    assert_eq!(output.status.code(), Some(1));
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(json["error"]["kind"], "not-found");
    let message = json["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("boiler-9") && message.contains("relay-1"),
        "{message}"
    );
    h.stop().await;
}

#[tokio::test]
async fn ctl_firmware_status_should_show_an_idle_device() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::start(dir.path(), true).await;
    let operator = Operator::of(&h);

    let output = operator.ctl(&["firmware", "status", "relay-1"]).await;
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(
        text.starts_with(&format!("relay-1 (uuid:{}): Idle", h.udn("relay-1"))),
        "{text}"
    );
    assert!(
        text.contains("no firmware update has been scheduled"),
        "{text}"
    );

    // Following an idle device ends at once, with one JSON line.
    let output = operator
        .ctl(&["firmware", "status", "relay-1", "--follow", "--json"])
        .await;
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    assert_eq!(text.lines().count(), 1, "{text}");
    let json: serde_json::Value = serde_json::from_str(text.trim()).unwrap();
    assert_eq!(json["status"], "Idle");
    assert_eq!(json["device"], "relay-1");
    assert!(json["time"].is_string(), "{json}");
    h.stop().await;
}

#[tokio::test]
async fn ctl_with_a_stranger_certificate_should_say_the_gateway_refused_it() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::start(dir.path(), true).await;
    let (cert, key) = common::stranger_identity(dir.path());
    let stranger = Operator {
        identity: Some((path(&cert), path(&key))),
        ..Operator::of(&h)
    };
    let output = stranger.ctl(&["set", "thermostat-1", "setpoint=25"]).await;
    assert_eq!(output.status.code(), Some(1));
    let error = stderr(&output);
    assert!(
        error.contains(&format!(
            "the gateway refused the client certificate: check --cert ({})",
            cert.display()
        )),
        "{error}"
    );
    assert!(error.contains("[trust] operator_ca"), "{error}");
    assert_eq!(h.setpoint(), Value::Float(21.0));
    h.stop().await;
}

#[tokio::test]
async fn ctl_set_without_a_certificate_should_relay_the_606_and_say_what_to_add() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::start(dir.path(), true).await;
    let anonymous = Operator::anonymous(&h);

    // Reading is fine anonymously.
    let output = anonymous.ctl(&["devices"]).await;
    assert!(output.status.success(), "{}", stderr(&output));

    let output = anonymous
        .ctl(&["set", "thermostat-1", "setpoint=25", "--json"])
        .await;
    assert_eq!(output.status.code(), Some(1));
    let error = stderr(&output);
    assert!(error.contains("SetValues on thermostat-1"), "{error}");
    assert!(error.contains("UPnPError 606"), "{error}");
    assert!(error.contains("--cert FILE --key FILE"), "{error}");
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(json["error"]["upnp_error_code"], 606);
    assert_eq!(json["error"]["action"], "SetValues");
    assert_eq!(h.setpoint(), Value::Float(21.0));
    h.stop().await;
}

#[tokio::test]
async fn ctl_without_a_gateway_should_say_which_flag_to_give() {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_iotmc-gateway"))
        .args(["ctl", "devices"])
        .env_remove("IOTMC_CTL_GATEWAY")
        .output()
        .await
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("give --gateway https://HOST:PORT (or set IOTMC_CTL_GATEWAY)"),
        "{}",
        stderr(&output)
    );
}

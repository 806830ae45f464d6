//! Enrollment end to end, over UPnP with mutual TLS only: declared devices get identity
//! certificates from the gateway's issuing CA and enroll with its management controller; an
//! operator approves one (manual group), a zero-touch group approves the other (cryptographic
//! evidence matching its rule); the group's initial configuration reaches the simulators; the
//! operator decommissions a device: certificate revoked (the CRL at its URL lists it), factory
//! reset, gone from the network face, its old certificate refused. Refusals of enrollment
//! (no, untrusted, expired, revoked and operator certificates) each say why.

#![cfg(all(feature = "modbus", feature = "mqtt"))]
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed set-up step is a failed test

mod common;
mod firmware;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use hyper::StatusCode;
use iotmc_adapter::{IdentityEvidence, Value};
use iotmc_gateway::lifecycle::pki::{DeviceSubject, FileKey, IssuingCa, SigningKeyHandle};

use common::{Extra, Harness, Reply, envelope, get, request, soap_action, tls_client};
use firmware::events::Listener;
use firmware::management_controller_type;

const GROUPS: &str = r#"
[enrollment]
lab_pki = true

[[groups]]
name = "hvac"
approval = "manual"
defaults = { setpoint = 19.5, mode = "eco" }

[[groups]]
name = "relays"
approval = "zero-touch"
zero_touch = { addresses = ["memory:relay-*"], evidence = ["bonded-key"] }
defaults = { on = true }
"#;

fn extra() -> Extra<'static> {
    Extra {
        toml: GROUPS,
        thermostat_group: Some("hvac"),
        relay_group: Some("relays"),
    }
}

/// Starts the harness; the relay proves a (simulated) BLE bond when `bonded`.
async fn start(dir: &Path, bonded: bool) -> Harness {
    Harness::start_with(dir, true, &extra(), |memory| {
        if bonded {
            memory.set_evidence(
                "memory:relay-1",
                IdentityEvidence::BondedKey {
                    fingerprint: [7; 32],
                },
            );
        }
    })
    .await
}

fn controller() -> String {
    let udn = iotmc_gateway::registry::gateway_udn("face-test");
    format!("/upnp/{udn}/ManagementController/control")
}

/// Calls a ManagementController action over HTTPS presenting `identity` (none: anonymous).
async fn manage(
    h: &Harness,
    identity: Option<(&Path, &Path)>,
    action: &str,
    args: &[(&str, &str)],
) -> Reply {
    let pki = h.pki.as_ref().unwrap();
    let client = tls_client(&pki.ca, identity);
    let service = management_controller_type();
    let addr = h.face.https_addr().unwrap();
    common::https(
        &client,
        addr,
        request(
            "POST",
            addr,
            &controller(),
            &[("SOAPACTION", &soap_action(&service, action))],
            envelope(&service, action, args),
        ),
    )
    .await
    .unwrap()
}

/// As the operator of the demo PKI.
async fn operator(h: &Harness, action: &str, args: &[(&str, &str)]) -> Reply {
    let pki = h.pki.as_ref().unwrap();
    manage(
        h,
        Some((&pki.operator_certificate, &pki.operator_key)),
        action,
        args,
    )
    .await
}

/// Subscribes to device `id`'s Lifecycle events at callback path `/<id>`.
async fn follow(h: &Harness, listener: &Listener, id: &str) {
    let udn = h.udn(id);
    listener
        .subscribe(
            h.face.http_addr(),
            &format!("/upnp/{udn}/Lifecycle/event"),
            &format!("/{id}"),
        )
        .await;
}

async fn until_state(listener: &mut Listener, id: &str, state: &str) {
    listener
        .until(&format!("/{id}"), "LifecycleState", state, |v| v == state)
        .await;
}

/// The device's current identity certificate and a copy of its key, in `dir`.
fn identity_copy(h: &Harness, id: &str, dir: &Path) -> (PathBuf, PathBuf) {
    let record = h
        .gateway
        .identities()
        .unwrap()
        .get(id)
        .unwrap()
        .expect("an identity was issued");
    let cert = dir.join(format!("{id}.pem"));
    let key = dir.join(format!("{id}.key"));
    std::fs::write(&cert, &record.certificate_pem).unwrap();
    std::fs::copy(&record.key, &key).unwrap();
    (cert, key)
}

/// A certificate of `ca` naming the thermostat, valid one day from `issued_at`, with a new
/// key: `(<name>.pem, <name>.key)` in `dir`.
fn thermostat_certificate(
    ca: &IssuingCa,
    dir: &Path,
    name: &str,
    issued_at: SystemTime,
) -> (PathBuf, PathBuf) {
    let key_path = dir.join(format!("{name}.key"));
    let key = FileKey::generate(&key_path).unwrap();
    let issued = ca
        .issue(
            &DeviceSubject {
                gateway_id: "face-test",
                device_id: "thermostat-1",
                protocol: "memory",
                address: "memory:thermostat-1",
            },
            &key,
            Duration::from_secs(24 * 3600),
            issued_at,
            None,
        )
        .unwrap();
    let pem = dir.join(format!("{name}.pem"));
    std::fs::write(&pem, &issued.pem).unwrap();
    (pem, key_path)
}

fn inventory_field(inventory: &str, id: &str, field: &str) -> String {
    let device = inventory
        .split("<Device>")
        .find(|d| d.contains(&format!("<Id>{id}</Id>")))
        .unwrap_or_else(|| panic!("{id} not in {inventory}"));
    let device = &device[..device.find("</Device>").unwrap()];
    common::texts(&format!("<Device>{device}</Device>"), field)
        .first()
        .cloned()
        .unwrap_or_default()
}

#[tokio::test]
async fn a_device_should_be_commissioned_by_an_operator_or_zero_touch_and_then_decommissioned() {
    let dir = tempfile::tempdir().unwrap();
    let h = start(dir.path(), true).await;
    let mut listener = Listener::start().await;
    follow(&h, &listener, "thermostat-1").await;
    follow(&h, &listener, "relay-1").await;

    // The manual group's device enrolled on its own and waits for an operator.
    until_state(&mut listener, "thermostat-1", "PendingApproval").await;
    let inventory = operator(&h, "GetInventory", &[])
        .await
        .argument("Inventory");
    assert_eq!(
        inventory_field(&inventory, "thermostat-1", "Enrollment"),
        "pending"
    );
    assert_eq!(
        inventory_field(&inventory, "thermostat-1", "Evidence"),
        "none"
    );
    assert_eq!(
        h.simulated("thermostat-1").value("setpoint"),
        Some(Value::Float(21.0))
    );

    // The zero-touch group's device proved a bond matching the rule: commissioned without an
    // operator, its group's initial configuration on the simulator.
    until_state(&mut listener, "relay-1", "Commissioned").await;
    assert_eq!(h.simulated("relay-1").value("on"), Some(Value::Bool(true)));
    let inventory = operator(&h, "GetInventory", &[])
        .await
        .argument("Inventory");
    assert_eq!(
        inventory_field(&inventory, "relay-1", "Evidence"),
        "bonded-key"
    );
    assert_eq!(inventory_field(&inventory, "relay-1", "Group"), "relays");

    // Approval needs an operator.
    let thermostat = format!("uuid:{}", h.udn("thermostat-1"));
    let (code, _) = manage(
        &h,
        None,
        "ApproveEnrollment",
        &[("DeviceUDN", &thermostat), ("Group", "")],
    )
    .await
    .upnp_error();
    assert_eq!(code, 606);
    let approved = operator(
        &h,
        "ApproveEnrollment",
        &[("DeviceUDN", &thermostat), ("Group", "")],
    )
    .await;
    assert_eq!(approved.argument("LifecycleState"), "Commissioned");
    until_state(&mut listener, "thermostat-1", "Commissioned").await;
    // The initial configuration really reached the device.
    let simulated = h.simulated("thermostat-1");
    assert_eq!(simulated.value("setpoint"), Some(Value::Float(19.5)));
    assert_eq!(simulated.value("mode"), Some(Value::Text("eco".into())));
    // Approving again is refused: it is no longer waiting.
    let (code, description) = operator(
        &h,
        "ApproveEnrollment",
        &[("DeviceUDN", &thermostat), ("Group", "")],
    )
    .await
    .upnp_error();
    assert_eq!(code, 718, "{description}");
    assert!(
        description.contains("while it is Commissioned"),
        "{description}"
    );

    // Decommissioning: certificate revoked, factory reset, data wiped but an audit kept.
    let keys = tempfile::tempdir().unwrap();
    let (old_cert, old_key) = identity_copy(&h, "thermostat-1", keys.path());
    let serial = h
        .gateway
        .identities()
        .unwrap()
        .get("thermostat-1")
        .unwrap()
        .unwrap()
        .serial;
    let result = operator(
        &h,
        "DecommissionDevice",
        &[
            ("DeviceUDN", &thermostat),
            ("Reason", "replaced by a new unit"),
        ],
    )
    .await
    .argument("Result");
    assert!(
        result.contains(&format!("<RevokedSerial>{serial}</RevokedSerial>")),
        "{result}"
    );
    assert!(
        result.contains("<FactoryReset>done</FactoryReset>"),
        "{result}"
    );
    until_state(&mut listener, "thermostat-1", "Decommissioned").await;
    assert_eq!(
        simulated.value("setpoint"),
        Some(Value::Float(21.0)),
        "factory settings"
    );

    // Neither called ...
    let description = get(
        h.face.http_addr(),
        &format!("/upnp/{}/description.xml", h.udn("thermostat-1")),
    )
    .await;
    assert_eq!(description.status, StatusCode::NOT_FOUND);
    assert!(
        description.body.contains("decommissioned"),
        "{}",
        description.body
    );
    let inventory = operator(&h, "GetInventory", &[])
        .await
        .argument("Inventory");
    assert!(!inventory.contains("thermostat-1"), "{inventory}");
    // ... nor calling: its certificate is on the CRL and refused.
    let crl = get(h.face.http_addr(), "/pki/crl.pem").await;
    assert_eq!(crl.status, StatusCode::OK);
    let (_, pem) = x509_parser::pem::parse_x509_pem(crl.body.as_bytes()).unwrap();
    let (_, crl) = x509_parser::parse_x509_crl(&pem.contents).unwrap();
    let listed: Vec<String> = crl
        .iter_revoked_certificates()
        .map(|r| r.raw_serial().iter().map(|b| format!("{b:02x}")).collect())
        .collect();
    assert_eq!(listed, vec![serial.clone()]);
    let (code, description) = manage(
        &h,
        Some((&old_cert, &old_key)),
        "Enroll",
        &[("DeviceDescriptionURL", "")],
    )
    .await
    .upnp_error();
    assert_eq!(code, 606, "{description}");
    assert!(description.contains("revoked"), "{description}");

    // Wiped: history reduced to the decommissioning, no identity; the audit record kept.
    let registry = h.gateway.registry();
    let history = registry.history("thermostat-1").unwrap();
    assert_eq!(history.len(), 1, "{history:?}");
    assert!(history[0].cause.contains("replaced by a new unit"));
    assert!(
        h.gateway
            .identities()
            .unwrap()
            .get("thermostat-1")
            .unwrap()
            .is_none()
    );
    let audit: Option<serde_json::Value> = registry
        .get_record(iotmc_gateway::registry::RecordTable::Audit, "thermostat-1")
        .unwrap();
    let audit = audit.expect("an audit record");
    assert_eq!(audit["revoked_serial"], serial.as_str());
    assert_eq!(audit["factory_reset"], "done");
    h.stop().await;
}

#[tokio::test]
async fn enrollment_should_refuse_missing_untrusted_expired_and_operator_certificates_saying_why() {
    let dir = tempfile::tempdir().unwrap();
    let h = start(dir.path(), false).await;
    let args = [("DeviceDescriptionURL", "")];

    let (code, description) = manage(&h, None, "Enroll", &args).await.upnp_error();
    assert_eq!(code, 606);
    assert!(description.contains("needs mutual TLS"), "{description}");

    let (cert, key) = common::stranger_identity(dir.path());
    let (code, description) = manage(&h, Some((&cert, &key)), "Enroll", &args)
        .await
        .upnp_error();
    assert_eq!(code, 606);
    assert!(description.contains("does not trust"), "{description}");

    // A certificate of the right CA for the right device, but expired.
    let pki = dir.path().join("state/pki");
    let ca_key: Arc<dyn SigningKeyHandle> =
        Arc::new(FileKey::load(&pki.join("issuing-ca.key")).unwrap());
    let ca = IssuingCa::load(&pki.join("issuing-ca.pem"), ca_key).unwrap();
    let (expired, expired_key) = thermostat_certificate(
        &ca,
        dir.path(),
        "expired",
        SystemTime::now() - Duration::from_secs(3 * 24 * 3600),
    );
    let (code, description) = manage(&h, Some((&expired, &expired_key)), "Enroll", &args)
        .await
        .upnp_error();
    assert_eq!(code, 606);
    assert!(description.contains("expired"), "{description}");

    // A valid certificate of the CA that is not the device's current identity.
    let (stale_pem, stale_key) =
        thermostat_certificate(&ca, dir.path(), "stale", SystemTime::now());
    let (code, description) = manage(&h, Some((&stale_pem, &stale_key)), "Enroll", &args)
        .await
        .upnp_error();
    assert_eq!(code, 606);
    assert!(
        description.contains("not its current identity"),
        "{description}"
    );

    let pki = h.pki.as_ref().unwrap();
    let (code, description) = manage(
        &h,
        Some((&pki.operator_certificate, &pki.operator_key)),
        "Enroll",
        &args,
    )
    .await
    .upnp_error();
    assert_eq!(code, 606);
    assert!(
        description.contains("operator certificate"),
        "{description}"
    );
    h.stop().await;
}

#[tokio::test]
async fn a_device_without_cryptographic_evidence_should_wait_and_a_rejection_should_hold_until_approved()
 {
    let dir = tempfile::tempdir().unwrap();
    // The relay's group is zero-touch, but the relay proves nothing.
    let h = start(dir.path(), false).await;
    let mut listener = Listener::start().await;
    follow(&h, &listener, "relay-1").await;
    until_state(&mut listener, "relay-1", "PendingApproval").await;
    let keys = tempfile::tempdir().unwrap();
    let (cert, key) = identity_copy(&h, "relay-1", keys.path());
    let again = manage(
        &h,
        Some((&cert, &key)),
        "Enroll",
        &[("DeviceDescriptionURL", "")],
    )
    .await;
    assert_eq!(again.argument("EnrollmentState"), "pending");
    assert!(
        again
            .argument("Detail")
            .contains("never enough for zero-touch"),
        "{}",
        again.argument("Detail")
    );
    assert_eq!(h.simulated("relay-1").value("on"), Some(Value::Bool(false)));

    let relay = format!("uuid:{}", h.udn("relay-1"));
    let rejected = operator(
        &h,
        "RejectEnrollment",
        &[("DeviceUDN", &relay), ("Reason", "unknown unit on the bus")],
    )
    .await;
    assert_eq!(rejected.status, StatusCode::OK, "{rejected:?}");
    until_state(&mut listener, "relay-1", "Provisioned").await;
    let again = manage(
        &h,
        Some((&cert, &key)),
        "Enroll",
        &[("DeviceDescriptionURL", "")],
    )
    .await;
    assert_eq!(again.argument("EnrollmentState"), "rejected");
    assert!(again.argument("Detail").contains("unknown unit on the bus"));

    // An operator may still approve it, into another group than the config's.
    let (code, description) = operator(
        &h,
        "ApproveEnrollment",
        &[("DeviceUDN", &relay), ("Group", "no-such-group")],
    )
    .await
    .upnp_error();
    assert_eq!(code, 600, "{description}");
    assert!(
        description.contains("declared groups: hvac, relays"),
        "{description}"
    );
    let approved = operator(
        &h,
        "ApproveEnrollment",
        &[("DeviceUDN", &relay), ("Group", "relays")],
    )
    .await;
    assert_eq!(approved.argument("LifecycleState"), "Commissioned");
    assert_eq!(h.simulated("relay-1").value("on"), Some(Value::Bool(true)));
    let history: Vec<String> = h
        .gateway
        .registry()
        .history("relay-1")
        .unwrap()
        .iter()
        .map(|e| e.to.as_str().to_owned())
        .collect();
    assert_eq!(
        history,
        [
            "Provisioned",
            "PendingApproval",
            "Provisioned",
            "PendingApproval",
            "Commissioned"
        ]
    );
    h.stop().await;
}

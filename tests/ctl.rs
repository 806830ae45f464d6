//! `iotmc-gateway ctl` and the SOAP client it is built on, against a running gateway with the
//! demo PKI: the built binary as an operator runs it, over mutual TLS.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed set-up step is a failed test

mod common;

use std::time::Duration;

use common::{HANG_GUARD, Harness};
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
async fn the_soap_client_should_say_whose_certificate_tls_refused() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::start(dir.path(), true).await;
    let pki = h.pki.clone().unwrap();
    let (service, control) = controller(&h);
    let timeout = Duration::from_secs(60);

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
        .call(&control, &service, "GetInventory", &[])
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            ClientError::Tls {
                failure: TlsFailure::ClientRefused,
                ..
            }
        ),
        "{err}"
    );

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

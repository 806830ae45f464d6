//! The UPnP face over loopback: descriptions and SCPDs, SOAP control over HTTP, the refusals a
//! control point sees (each leaving the device untouched), and state-changing actions over
//! mutual TLS.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed set-up step is a failed test

mod common;

use std::collections::BTreeMap;

use common::{
    CMS, Harness, call, content_paths, envelope, get, https, parameter_pairs, parameter_values,
    post_soap, request, soap_action, texts, texts_at, tls_client,
};
use hyper::StatusCode;
use iotmc_adapter::Value;
use iotmc_gateway::registry::gateway_udn;
use iotmc_gateway::upnp::services::specs::{DEVICE_SERVICES, GATEWAY_SERVICES};

/// `(serviceType, SCPDURL, controlURL, eventSubURL)` of each service in a description.
fn services(description: &str) -> Vec<(String, String, String, String)> {
    let types = texts_at(description, &["service", "serviceType"]);
    let scpd = texts_at(description, &["service", "SCPDURL"]);
    let control = texts_at(description, &["service", "controlURL"]);
    let event = texts_at(description, &["service", "eventSubURL"]);
    assert!(
        [scpd.len(), control.len(), event.len()] == [types.len(); 3],
        "{description}"
    );
    (0..types.len())
        .map(|i| {
            (
                types[i].clone(),
                scpd[i].clone(),
                control[i].clone(),
                event[i].clone(),
            )
        })
        .collect()
}

/// The one value of device-level element `name` in a description.
fn field(description: &str, name: &str) -> String {
    let values = texts_at(description, &["root", "device", name]);
    assert_eq!(values.len(), 1, "one {name} in {description}");
    values[0].clone()
}

/// The service type device `id`'s description gives the service served under `path`.
async fn service_type(h: &Harness, id: &str, path: &str) -> String {
    let description = get(
        h.face.http_addr(),
        &format!("/upnp/{}/description.xml", h.udn(id)),
    )
    .await
    .body;
    services(&description)
        .into_iter()
        .find(|(_, scpd, _, _)| scpd.contains(&format!("/{path}/")))
        .unwrap_or_else(|| panic!("no {path} in {description}"))
        .0
}

fn readings(pairs: &[(&str, Value)]) -> iotmc_adapter::Readings {
    pairs
        .iter()
        .map(|(n, v)| ((*n).to_owned(), v.clone()))
        .collect()
}

#[tokio::test]
async fn descriptions_should_describe_every_device_with_services_whose_urls_resolve() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::start(dir.path(), false).await;
    let addr = h.face.http_addr();

    // The gateway's own root device.
    let gateway = gateway_udn("face-test");
    assert_eq!(h.face.state().gateway.udn, gateway);
    let url = h.face.description_url(gateway);
    assert_eq!(url, format!("http://{addr}/upnp/{gateway}/description.xml"));
    let reply = get(addr, &format!("/upnp/{gateway}/description.xml")).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(
        reply
            .header("content-type")
            .unwrap()
            .starts_with("text/xml")
    );
    let desc = reply.body;
    assert!(
        field(&desc, "deviceType").ends_with(":device:ManagementController:1"),
        "{desc}"
    );
    assert_eq!(field(&desc, "friendlyName"), "Face test gateway");
    assert_eq!(field(&desc, "UDN"), format!("uuid:{gateway}"));
    let gateway_services = services(&desc);
    assert_eq!(gateway_services.len(), GATEWAY_SERVICES.len(), "{desc}");
    assert!(
        gateway_services[0]
            .0
            .ends_with(":service:ManagementController:1")
    );

    // Every virtual device.
    let expected: BTreeMap<&str, (&str, &str, &str)> = [
        (
            "thermostat-1",
            ("Hall thermostat", "Face thermostat", "face-thermostat"),
        ),
        (
            "relay-1",
            ("Face relay relay-1", "Face relay", "face-relay"),
        ),
    ]
    .into_iter()
    .collect();
    assert_eq!(h.gateway.devices().len(), expected.len());
    for (id, (friendly, model, model_number)) in &expected {
        let udn = h.udn(id);
        let reply = get(addr, &format!("/upnp/{udn}/description.xml")).await;
        assert_eq!(reply.status, StatusCode::OK, "{id}");
        let desc = reply.body;
        assert_eq!(
            field(&desc, "deviceType"),
            "urn:schemas-upnp-org:device:ManageableDevice:2"
        );
        assert_eq!(field(&desc, "friendlyName"), *friendly);
        assert_eq!(field(&desc, "manufacturer"), "Face Works");
        assert_eq!(field(&desc, "modelName"), *model);
        assert_eq!(field(&desc, "modelNumber"), *model_number);
        assert!(!field(&desc, "serialNumber").is_empty(), "{desc}");
        assert_eq!(field(&desc, "UDN"), format!("uuid:{udn}"));
        let presentation = field(&desc, "presentationURL");
        assert_eq!(presentation, format!("/upnp/{udn}/"));
        let page = get(addr, &presentation).await;
        assert_eq!(page.status, StatusCode::OK);
        assert!(page.body.contains(id), "{}", page.body);

        let listed = services(&desc);
        let names: Vec<&str> = listed
            .iter()
            .map(|(t, _, _, _)| t.rsplit(':').nth(1).unwrap())
            .collect();
        assert_eq!(
            names,
            [
                "BasicManagement",
                "ConfigurationManagement",
                "FirmwareUpdate",
                "Diagnostics",
                "Lifecycle"
            ],
            "{desc}"
        );
        for ((service_type, scpd_url, control_url, event_url), spec) in
            listed.iter().zip(DEVICE_SERVICES)
        {
            let scpd = get(addr, scpd_url).await;
            assert_eq!(scpd.status, StatusCode::OK, "{scpd_url}");
            let actions = texts_at(&scpd.body, &["actionList", "action", "name"]);
            let declared: Vec<&str> = spec.actions.iter().map(|a| a.name).collect();
            assert_eq!(actions, declared, "{service_type}: {}", scpd.body);
            // Control and event URLs exist: the wrong method is 405 naming the right one,
            // where an unknown URL would be 404.
            let control = get(addr, control_url).await;
            assert_eq!(
                control.status,
                StatusCode::METHOD_NOT_ALLOWED,
                "{control_url}"
            );
            assert_eq!(control.header("allow"), Some("POST"));
            assert!(!event_url.is_empty(), "{service_type} is evented");
            let event = get(addr, event_url).await;
            assert_eq!(event.status, StatusCode::METHOD_NOT_ALLOWED, "{event_url}");
            assert_eq!(event.header("allow"), Some("SUBSCRIBE, UNSUBSCRIBE"));
        }
    }
    // The standard actions a ManageableDevice control point relies on are there.
    let cms_scpd = get(
        addr,
        &format!(
            "/upnp/{}/ConfigurationManagement/scpd.xml",
            h.udn("thermostat-1")
        ),
    )
    .await;
    let actions = texts_at(&cms_scpd.body, &["action", "name"]);
    for action in ["GetValues", "SetValues", "GetSupportedParameters"] {
        assert!(actions.iter().any(|a| a == action), "{actions:?}");
    }
    h.stop().await;
}

#[tokio::test]
async fn an_unknown_path_should_be_404_saying_where_descriptions_are() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::start(dir.path(), false).await;
    let addr = h.face.http_addr();
    let udn = h.udn("thermostat-1");
    for path in [
        "/nothing-here".to_owned(),
        format!("/upnp/{}/description.xml", uuid::Uuid::nil()),
        format!("/upnp/{udn}/NoSuchService/scpd.xml"),
        format!("/upnp/{udn}/BasicManagement/nonsense"),
    ] {
        let reply = get(addr, &path).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{path}");
        assert!(
            reply.body.contains(&format!("nothing at `{path}`")),
            "{}",
            reply.body
        );
        assert!(
            reply.body.contains("/upnp/<udn>/description.xml"),
            "{}",
            reply.body
        );
    }
    h.stop().await;
}

#[tokio::test]
async fn a_firmware_image_on_offer_should_be_served_once_on_the_http_listener() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::start(dir.path(), false).await;
    let addr = h.face.http_addr();
    let offers = &h.face.state().offers;
    let image: std::sync::Arc<[u8]> = std::sync::Arc::from(&b"SIMFW:2.0.0\nimage body"[..]);
    let url = offers.offer("relay-1", image).unwrap();
    let base = offers.base_url().unwrap();
    assert!(
        base.ends_with(&format!(":{}", addr.port())),
        "{base} is not on the HTTP listener {addr}"
    );
    let path = url.strip_prefix(&base).unwrap().to_owned();
    assert!(path.starts_with("/firmware/"), "{url}");

    let first = get(addr, &path).await;
    assert_eq!(first.status, StatusCode::OK);
    assert_eq!(
        first.header("content-type"),
        Some("application/octet-stream")
    );
    assert_eq!(first.body, "SIMFW:2.0.0\nimage body");

    let again = get(addr, &path).await;
    assert_eq!(
        again.status,
        StatusCode::NOT_FOUND,
        "a second download was served"
    );
    assert!(again.body.contains("one download"), "{}", again.body);
    let guessed = get(addr, "/firmware/00000000000000000000000000000000").await;
    assert_eq!(guessed.status, StatusCode::NOT_FOUND);
    h.stop().await;
}

#[tokio::test]
async fn get_values_of_a_parameter_should_return_the_simulated_devices_value() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::start(dir.path(), false).await;
    // A value only the simulated device knows: the answer must come through the link.
    h.simulated("thermostat-1")
        .change_locally(readings(&[("setpoint", Value::Float(24.5))]));
    let reply = h
        .get_values("thermostat-1", &["/IoTMC/Parameters/setpoint"])
        .await;
    let list = reply.argument("ParameterValueList");
    assert_eq!(
        parameter_pairs(&list),
        [("/IoTMC/Parameters/setpoint".to_owned(), "24.5".to_owned())]
    );
    h.stop().await;
}

#[tokio::test]
async fn get_values_of_the_iotmc_node_should_return_every_fact_and_parameter_below_it() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::start(dir.path(), false).await;
    let reply = h.get_values("thermostat-1", &["/IoTMC/"]).await;
    let mut values: BTreeMap<String, String> =
        parameter_pairs(&reply.argument("ParameterValueList"))
            .into_iter()
            .collect();
    // Text values are checked in get_values_should_give_text_values_as_set_values_takes_them.
    assert!(
        values.remove("/IoTMC/Parameters/mode").is_some(),
        "{values:?}"
    );
    let expected: BTreeMap<String, String> = [
        ("/IoTMC/Device/Id", "thermostat-1"),
        ("/IoTMC/Device/Protocol", "memory"),
        ("/IoTMC/Device/Address", "memory:thermostat-1"),
        ("/IoTMC/Device/Profile", "face-thermostat"),
        ("/IoTMC/Device/Group", ""),
        ("/IoTMC/Device/LifecycleState", "Provisioned"),
        ("/IoTMC/Device/Availability", "Online"),
        ("/IoTMC/Parameters/setpoint", "21"),
        ("/IoTMC/Parameters/temperature", "20"),
    ]
    .into_iter()
    .map(|(p, v)| (p.to_owned(), v.to_owned()))
    .collect();
    // Floats may be written 21 or 21.0; compare them as numbers.
    assert_eq!(
        values.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>()
    );
    for (path, want) in &expected {
        let got = &values[path];
        match (want.parse::<f64>(), got.parse::<f64>()) {
            (Ok(w), Ok(g)) => assert!((w - g).abs() < 1e-9, "{path}: {got}"),
            _ => assert_eq!(got, want, "{path}"),
        }
    }
    h.stop().await;
}

#[tokio::test]
async fn get_values_should_give_text_values_as_set_values_takes_them() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::start(dir.path(), false).await;
    let reply = h
        .get_values("thermostat-1", &["/IoTMC/Parameters/mode"])
        .await;
    assert_eq!(
        parameter_pairs(&reply.argument("ParameterValueList")),
        [("/IoTMC/Parameters/mode".to_owned(), "heat".to_owned())]
    );
    h.stop().await;
}

#[tokio::test]
async fn read_only_actions_should_answer_status_parameters_lifecycle_and_version() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::start(dir.path(), false).await;
    let addr = h.face.http_addr();

    let status = h.device_status("thermostat-1").await;
    assert!(status.starts_with("OK,"), "{status}");
    let since = status.trim_start_matches("OK,");
    humantime::parse_rfc3339(since).unwrap_or_else(|e| panic!("{since}: {e}"));

    let supported = call(
        addr,
        &h.control("thermostat-1", "ConfigurationManagement"),
        CMS,
        "GetSupportedParameters",
        &[("StartingNode", "/IoTMC/Parameters/"), ("SearchDepth", "0")],
    )
    .await
    .argument("Result");
    assert_eq!(
        texts(&supported, "StructurePath"),
        [
            "/IoTMC/Parameters/setpoint",
            "/IoTMC/Parameters/temperature",
            "/IoTMC/Parameters/mode"
        ]
    );

    let lifecycle_type = service_type(&h, "thermostat-1", "Lifecycle").await;
    let lifecycle = call(
        addr,
        &h.control("thermostat-1", "Lifecycle"),
        &lifecycle_type,
        "GetLifecycleState",
        &[],
    )
    .await;
    assert_eq!(lifecycle.argument("LifecycleState"), "Provisioned");
    assert_eq!(lifecycle.argument("Availability"), "Online");
    humantime::parse_rfc3339(&lifecycle.argument("Since")).unwrap();

    let version = call(
        addr,
        &h.control("thermostat-1", "ConfigurationManagement"),
        CMS,
        "GetCurrentConfigurationVersion",
        &[],
    )
    .await
    .argument("CurrentConfigurationVersion");
    assert_eq!(version, h.config_version("thermostat-1").to_string());
    h.stop().await;
}

#[tokio::test]
async fn a_lower_service_version_in_the_soapaction_should_be_served() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::start(dir.path(), false).await;
    let v1 = "urn:schemas-upnp-org:service:ConfigurationManagement:1";
    let reply = call(
        h.face.http_addr(),
        &h.control("relay-1", "ConfigurationManagement"),
        v1,
        "GetValues",
        &[("Parameters", &content_paths(&["/IoTMC/Parameters/on"]))],
    )
    .await;
    assert_eq!(
        parameter_pairs(&reply.argument("ParameterValueList")),
        [("/IoTMC/Parameters/on".to_owned(), "false".to_owned())]
    );
    // Answered in the version it was called with.
    assert!(
        reply.body.contains(&format!("xmlns:u=\"{v1}\"")),
        "{}",
        reply.body
    );
    // A higher version than served is not this service.
    let v3 = "urn:schemas-upnp-org:service:ConfigurationManagement:3";
    let (code, description) = call(
        h.face.http_addr(),
        &h.control("relay-1", "ConfigurationManagement"),
        v3,
        "GetValues",
        &[("Parameters", &content_paths(&["/IoTMC/Parameters/on"]))],
    )
    .await
    .upnp_error();
    assert_eq!(code, 401, "{description}");
    h.stop().await;
}

#[tokio::test]
async fn anonymous_set_values_should_be_refused_with_606_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::start(dir.path(), false).await;
    let version = h.config_version("thermostat-1");
    let reply = post_soap(
        h.face.http_addr(),
        &h.control("thermostat-1", "ConfigurationManagement"),
        &soap_action(CMS, "SetValues"),
        iotmc_gateway::demo::set_setpoint_envelope(22.5),
    )
    .await;
    let (code, description) = reply.upnp_error();
    assert_eq!(code, 606, "{description}");
    assert!(
        description.contains("SetValues changes device state"),
        "{description}"
    );
    assert!(description.contains("HTTPS"), "{description}");
    assert!(
        description.contains("set [trust] gateway_certificate, gateway_key and operator_ca"),
        "this gateway has no HTTPS, and says how to turn it on: {description}"
    );
    assert_eq!(h.setpoint(), Value::Float(21.0));
    assert_eq!(h.config_version("thermostat-1"), version);
    h.stop().await;
}

#[tokio::test]
async fn malformed_calls_should_be_401_or_402_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::start(dir.path(), false).await;
    let addr = h.face.http_addr();
    let control = h.control("thermostat-1", "ConfigurationManagement");

    // Unknown action: 401, listing what the service has.
    let (code, description) = call(addr, &control, CMS, "SetTheWorldOnFire", &[])
        .await
        .upnp_error();
    assert_eq!(code, 401, "{description}");
    assert!(
        description.contains("ConfigurationManagement has no action SetTheWorldOnFire"),
        "{description}"
    );
    assert!(description.contains("GetValues"), "{description}");

    // Missing argument: 402 naming the expected ones.
    let (code, description) = call(addr, &control, CMS, "GetValues", &[])
        .await
        .upnp_error();
    assert_eq!(code, 402, "{description}");
    assert!(description.contains("[Parameters]"), "{description}");

    // SOAPACTION names one action, the body calls another.
    let (code, description) = post_soap(
        addr,
        &control,
        &soap_action(CMS, "GetValues"),
        envelope(CMS, "GetCurrentConfigurationVersion", &[]),
    )
    .await
    .upnp_error();
    assert!(code == 401 || code == 402, "{code}: {description}");
    assert!(description.contains("GetValues"), "{description}");
    assert!(
        description.contains("GetCurrentConfigurationVersion"),
        "{description}"
    );

    // Unknown parameter path: 702, naming it.
    let (code, description) = call(
        addr,
        &control,
        CMS,
        "GetValues",
        &[(
            "Parameters",
            &content_paths(&["/IoTMC/Parameters/humidity"]),
        )],
    )
    .await
    .upnp_error();
    assert_eq!(code, 702, "{description}");
    assert!(
        description.contains("/IoTMC/Parameters/humidity"),
        "{description}"
    );
    assert!(description.contains("thermostat-1"), "{description}");

    assert_eq!(h.setpoint(), Value::Float(21.0));
    h.stop().await;
}

/// Calls `action` on the thermostat's ConfigurationManagement over HTTPS as the operator.
async fn operator_call(h: &Harness, action: &str, args: &[(&str, &str)]) -> common::Reply {
    let pki = h.pki.as_ref().unwrap();
    let connector = tls_client(
        &pki.ca,
        Some((&pki.operator_certificate, &pki.operator_key)),
    );
    let addr = h.face.https_addr().unwrap();
    https(
        &connector,
        addr,
        request(
            "POST",
            addr,
            &h.control("thermostat-1", "ConfigurationManagement"),
            &[
                ("CONTENT-TYPE", "text/xml; charset=\"utf-8\""),
                ("SOAPACTION", &soap_action(CMS, action)),
            ],
            envelope(CMS, action, args),
        ),
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn the_operator_over_mutual_tls_should_set_a_value_and_bump_the_configuration_version() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::start(dir.path(), true).await;
    let before = h.config_version("thermostat-1");
    let reply = operator_call(
        &h,
        "SetValues",
        &[(
            "ParameterValueList",
            &parameter_values(&[("/IoTMC/Parameters/setpoint", "22.5")]),
        )],
    )
    .await;
    assert_eq!(reply.argument("Status"), "ChangesApplied");
    assert_eq!(h.setpoint(), Value::Float(22.5));
    assert_eq!(h.config_version("thermostat-1"), before + 1);
    let version = operator_call(&h, "GetCurrentConfigurationVersion", &[])
        .await
        .argument("CurrentConfigurationVersion");
    assert_eq!(version, (before + 1).to_string());
    h.stop().await;
}

#[tokio::test]
async fn the_demo_set_setpoint_envelope_should_work_over_mutual_tls() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::start(dir.path(), true).await;
    let pki = h.pki.as_ref().unwrap();
    let connector = tls_client(
        &pki.ca,
        Some((&pki.operator_certificate, &pki.operator_key)),
    );
    let addr = h.face.https_addr().unwrap();
    let reply = https(
        &connector,
        addr,
        request(
            "POST",
            addr,
            &h.control("thermostat-1", "ConfigurationManagement"),
            &[("SOAPACTION", &soap_action(CMS, "SetValues"))],
            iotmc_gateway::demo::set_setpoint_envelope(22.5),
        ),
    )
    .await
    .unwrap();
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(h.setpoint(), Value::Float(22.5));
    h.stop().await;
}

#[tokio::test]
async fn operator_set_values_that_cannot_apply_should_be_refused_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::start(dir.path(), true).await;
    let version = h.config_version("thermostat-1");
    let set = |path: &'static str, value: &'static str| parameter_values(&[(path, value)]);
    let cases = [
        (
            set("/IoTMC/Parameters/humidity", "40"),
            702,
            "/IoTMC/Parameters/humidity",
        ),
        (set("/IoTMC/Parameters/temperature", "25"), 705, "read-only"),
        (
            set("/UPnP/DM/DeviceInfo/SerialNumber", "X"),
            705,
            "read-only",
        ),
        (set("/IoTMC/Parameters/setpoint", "45"), 704, "setpoint"),
        (set("/IoTMC/Parameters/setpoint", "warm"), 703, "setpoint"),
        (
            parameter_values(&[
                ("/IoTMC/Parameters/setpoint", "22"),
                ("/IoTMC/Parameters/setpoint", "23"),
            ]),
            706,
            "more than once",
        ),
    ];
    for (list, want, mentions) in cases {
        let reply = operator_call(&h, "SetValues", &[("ParameterValueList", &list)]).await;
        let (code, description) = reply.upnp_error();
        assert_eq!(code, want, "{list}: {description}");
        assert!(description.contains(mentions), "{list}: {description}");
        assert!(
            description.contains("thermostat-1"),
            "{list}: {description}"
        );
    }
    assert_eq!(h.setpoint(), Value::Float(21.0));
    assert_eq!(h.config_version("thermostat-1"), version);
    h.stop().await;
}

#[tokio::test]
async fn https_without_a_client_certificate_should_read_but_get_606_for_set_values() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::start(dir.path(), true).await;
    let pki = h.pki.as_ref().unwrap();
    let anonymous = tls_client(&pki.ca, None);
    let addr = h.face.https_addr().unwrap();
    let control = h.control("thermostat-1", "ConfigurationManagement");
    let post = |action: &str, body: String| {
        request(
            "POST",
            addr,
            &control,
            &[("SOAPACTION", &soap_action(CMS, action))],
            body,
        )
    };
    let read = https(
        &anonymous,
        addr,
        post(
            "GetValues",
            envelope(
                CMS,
                "GetValues",
                &[(
                    "Parameters",
                    &content_paths(&["/IoTMC/Parameters/setpoint"]),
                )],
            ),
        ),
    )
    .await
    .unwrap();
    assert_eq!(read.status, StatusCode::OK, "{}", read.body);

    let reply = https(
        &anonymous,
        addr,
        post(
            "SetValues",
            iotmc_gateway::demo::set_setpoint_envelope(22.5),
        ),
    )
    .await
    .unwrap();
    let (code, description) = reply.upnp_error();
    assert_eq!(code, 606, "{description}");
    assert!(
        description.contains(&format!("(port {})", addr.port())),
        "names the HTTPS port: {description}"
    );
    assert_eq!(h.setpoint(), Value::Float(21.0));
    h.stop().await;
}

#[tokio::test]
async fn a_client_certificate_from_another_ca_should_be_refused_saying_why() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::start(dir.path(), true).await;
    let pki = h.pki.as_ref().unwrap();
    let addr = h.face.https_addr().unwrap();
    let set = || {
        request(
            "POST",
            addr,
            &h.control("thermostat-1", "ConfigurationManagement"),
            &[("SOAPACTION", &soap_action(CMS, "SetValues"))],
            iotmc_gateway::demo::set_setpoint_envelope(22.5),
        )
    };

    // A CA the gateway has never heard of: the session is that of an anonymous caller, and
    // the refusal names the certificate and why it is not accepted.
    let (cert, key) = common::stranger_identity(dir.path());
    let stranger = tls_client(&pki.ca, Some((&cert, &key)));
    let (code, description) = https(&stranger, addr, set()).await.unwrap().upnp_error();
    assert_eq!(code, 606, "{description}");
    assert!(description.contains("is not accepted"), "{description}");
    assert!(
        description.contains("a CA this gateway does not trust"),
        "{description}"
    );

    // A CA with the trusted CA's name but another key: refused too (the signature fails).
    let foreign = common::foreign_pki(dir.path());
    let impostor = tls_client(
        &pki.ca,
        Some((&foreign.operator_certificate, &foreign.operator_key)),
    );
    let (code, description) = https(&impostor, addr, set()).await.unwrap().upnp_error();
    assert_eq!(code, 606, "{description}");
    assert!(description.contains("is not accepted"), "{description}");

    assert_eq!(h.setpoint(), Value::Float(21.0));
    h.stop().await;
}

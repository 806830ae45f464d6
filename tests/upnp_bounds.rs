//! The bounds of the UPnP face's listeners, each answered clearly: oversized bodies, hostile
//! XML, clients that never finish their headers, silent devices and requests that outlast the
//! request timeout.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed set-up step is a failed test

mod common;

use std::time::Duration;

use common::{CMS, HANG_GUARD, Harness, envelope, post_soap, soap_action};
use hyper::StatusCode;
use iotmc_adapter::testkit::SimulatedDevice as _;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::time::Instant;

/// Reads from `stream` until the server closes it (EOF or error); what was received.
async fn read_until_closed(stream: &mut TcpStream) -> Vec<u8> {
    let mut received = Vec::new();
    let mut buf = [0_u8; 4096];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return received,
            Ok(n) => received.extend_from_slice(&buf[..n]),
        }
    }
}

#[tokio::test]
async fn a_body_over_64_kib_should_be_refused_with_413_whether_declared_or_chunked() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::start(dir.path(), false).await;
    let addr = h.face.http_addr();
    let control = h.control("thermostat-1", "ConfigurationManagement");
    let padding = "x".repeat(64 * 1024);
    let body = envelope(CMS, "GetValues", &[("Parameters", &padding)]);
    assert!(body.len() > 64 * 1024);

    // Declared with Content-Length.
    let reply = post_soap(addr, &control, &soap_action(CMS, "GetValues"), body.clone()).await;
    assert_eq!(
        reply.status,
        StatusCode::PAYLOAD_TOO_LARGE,
        "{}",
        reply.body
    );
    assert!(
        reply.body.contains("limited to 65536 bytes"),
        "{}",
        reply.body
    );

    // Chunked, so only counting the body finds out.
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST {control} HTTP/1.1\r\nHost: {addr}\r\nSOAPACTION: {}\r\nTransfer-Encoding: chunked\r\n\r\n",
        soap_action(CMS, "GetValues")
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    for chunk in body.as_bytes().chunks(8192) {
        let framed = [format!("{:x}\r\n", chunk.len()).as_bytes(), chunk, b"\r\n"].concat();
        if stream.write_all(&framed).await.is_err() {
            break; // the server may answer and close before the rest arrives
        }
    }
    let _ = stream.write_all(b"0\r\n\r\n").await;
    let received = tokio::time::timeout(HANG_GUARD, read_until_closed(&mut stream))
        .await
        .expect("the server answers and closes");
    let text = String::from_utf8_lossy(&received);
    assert!(text.starts_with("HTTP/1.1 413"), "{text}");
    h.stop().await;
}

#[tokio::test]
async fn a_doctype_with_entities_should_be_refused_without_expanding_them() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::start(dir.path(), false).await;
    let body = format!(
        r#"<?xml version="1.0"?><!DOCTYPE s:Envelope [<!ENTITY a "EXPANDED"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><u:GetValues xmlns:u="{CMS}"><Parameters>&c;</Parameters></u:GetValues></s:Body></s:Envelope>"#
    );
    let reply = post_soap(
        h.face.http_addr(),
        &h.control("thermostat-1", "ConfigurationManagement"),
        &soap_action(CMS, "GetValues"),
        body,
    )
    .await;
    let (code, description) = reply.upnp_error();
    assert_eq!(code, 402, "{description}");
    assert!(
        description.contains("DOCTYPE and entity declarations are refused"),
        "{description}"
    );
    assert!(!reply.body.contains("EXPANDED"), "{}", reply.body);
    h.stop().await;
}

#[tokio::test]
async fn elements_nested_40_deep_should_be_refused_with_a_fault() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::start(dir.path(), false).await;
    let addr = h.face.http_addr();
    let control = h.control("thermostat-1", "ConfigurationManagement");
    let deep = format!("{}{}", "<h>".repeat(40), "</h>".repeat(40));

    // In the header, where any element is allowed: the depth limit itself.
    let in_header = format!(
        r#"<?xml version="1.0"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Header>{deep}</s:Header><s:Body><u:GetValues xmlns:u="{CMS}"><Parameters></Parameters></u:GetValues></s:Body></s:Envelope>"#
    );
    let (code, description) = post_soap(addr, &control, &soap_action(CMS, "GetValues"), in_header)
        .await
        .upnp_error();
    assert_eq!(code, 402, "{description}");
    assert!(
        description.contains("nested deeper than 16 levels"),
        "{description}"
    );

    // In an argument: refused as soon as the argument holds an element.
    let in_argument = format!(
        r#"<?xml version="1.0"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><u:GetValues xmlns:u="{CMS}"><Parameters>{deep}</Parameters></u:GetValues></s:Body></s:Envelope>"#
    );
    let (code, description) =
        post_soap(addr, &control, &soap_action(CMS, "GetValues"), in_argument)
            .await
            .upnp_error();
    assert_eq!(code, 402, "{description}");
    assert!(
        description.contains("argument `Parameters` holds XML elements"),
        "{description}"
    );
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_client_that_never_finishes_its_headers_should_be_cut_off_after_the_header_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::start(dir.path(), false).await;
    let mut stream = TcpStream::connect(h.face.http_addr()).await.unwrap();
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    // Paused time: the guard costs nothing, and fails the test if the server never closes.
    let received = tokio::time::timeout(Duration::from_secs(120), read_until_closed(&mut stream))
        .await
        .expect("the server closes a connection whose headers never end");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_secs(10) && waited < Duration::from_secs(30),
        "cut off by the 10 s header timeout, not the request timeout: {waited:?}"
    );
    let text = String::from_utf8_lossy(&received);
    assert!(
        text.is_empty() || text.starts_with("HTTP/1.1 408"),
        "{text}"
    );
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn an_unresponsive_device_should_make_get_values_answer_707_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::start(dir.path(), false).await;
    let _addr = h.face.http_addr();
    h.simulated("thermostat-1").set_unresponsive(true);
    let (code, description) = h
        .get_values("thermostat-1", &["/IoTMC/Parameters/setpoint"])
        .await
        .upnp_error();
    assert_eq!(code, 707, "{description}");
    assert!(
        description.starts_with("GetValues on device thermostat-1 "),
        "{description}"
    );
    // The face now reports the device unreachable.
    let status = h.device_status("thermostat-1").await;
    assert!(status.starts_with("Unreachable,"), "{status}");
    let last_error = || {
        h.face
            .state()
            .devices
            .values()
            .find(|d| d.record().id == "thermostat-1")
            .unwrap()
            .live()
            .last_error
    };
    let device_error = last_error();
    assert!(device_error.contains(" 707: "), "{device_error}");

    // Requests that never reach the device say nothing about it: facts only, a bad path, a
    // path asked 1000 times. It stays Unreachable and its last error stays the device's own.
    let facts = h
        .get_values("thermostat-1", &["/UPnP/DM/DeviceInfo/"])
        .await;
    assert!(facts.argument("ParameterValueList").contains("ModelName"));
    let (code, _) = h
        .get_values("thermostat-1", &["/IoTMC/Nonsense"])
        .await
        .upnp_error();
    assert_eq!(code, 702);
    let status = h.device_status("thermostat-1").await;
    assert!(status.starts_with("Unreachable,"), "{status}");
    assert_eq!(last_error(), device_error);
    h.stop().await;
}

#[tokio::test]
async fn a_path_asked_for_many_times_should_be_answered_once() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::start(dir.path(), false).await;
    let paths = vec!["/IoTMC/"; 1000];
    let list = h
        .get_values("thermostat-1", &paths)
        .await
        .argument("ParameterValueList");
    assert_eq!(
        list.matches("<ParameterPath>/IoTMC/Parameters/setpoint</ParameterPath>")
            .count(),
        1,
        "{list}"
    );
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_request_that_outlasts_the_request_timeout_should_be_answered_503() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::start(dir.path(), false).await;
    // The relay's profile waits 20 s per try, three tries: longer than the face's 30 s.
    h.simulated("relay-1").set_unresponsive(true);
    let started = Instant::now();
    let reply = h.get_values("relay-1", &["/IoTMC/Parameters/on"]).await;
    let waited = started.elapsed();
    assert_eq!(
        reply.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        reply.body
    );
    assert!(reply.body.contains("longer than 30 s"), "{}", reply.body);
    assert!(
        waited >= Duration::from_secs(30) && waited < Duration::from_secs(60),
        "{waited:?}"
    );
    h.stop().await;
}

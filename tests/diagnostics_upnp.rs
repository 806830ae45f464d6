//! The diagnostics log end to end, through UPnP only: a simulated Modbus controller logs
//! errors of its own and has faults injected (exceptions, silence); GetDiagnosticsLog returns
//! its own records and the gateway's, filtered by severity and time, paged by cursor without a
//! repeat; ClearDiagnosticsLog keeps what arrived after the cursor; the HTTP log of GetLogURIs
//! takes the same filters. Set-up (simulators, faults) uses the library; every check goes
//! through UPnP.

#![cfg(all(feature = "modbus", feature = "mqtt"))]
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed set-up step is a failed test

mod common;
mod firmware;

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use hyper::StatusCode;
use iotmc_adapter::Severity;
use iotmc_adapter_modbus::frame::ExceptionCode;

use common::get;
use firmware::control::{Service, elements};
use firmware::rig::{MODBUS_DEVICE, Rig};
use firmware::{VENDOR_URN, utc};

fn diagnostics_type() -> String {
    format!("urn:{VENDOR_URN}:service:Diagnostics:1")
}

const BASIC_MANAGEMENT: &str = "urn:schemas-upnp-org:service:BasicManagement:2";
const CONFIGURATION: &str = "urn:schemas-upnp-org:service:ConfigurationManagement:2";

/// One record of a `Log` answer: its attributes, its message and its fields.
#[derive(Debug, Clone)]
struct Record {
    seq: u64,
    severity: String,
    source: String,
    category: String,
    message: String,
    fields: BTreeMap<String, String>,
}

fn records(log: &str) -> Vec<Record> {
    // Each `<Record ...>...</Record>` is a well-formed element of its own (text is escaped, so
    // the markers cannot occur inside a message).
    log.split("<Record ")
        .skip(1)
        .map(|piece| {
            let end = piece.find("</Record>").unwrap() + "</Record>".len();
            let element = format!("<Record {}", &piece[..end]);
            let attributes = elements(&element, "Record").remove(0);
            let names = elements(&element, "Field");
            let values = common::texts(&element, "Field");
            Record {
                seq: attributes["seq"].parse().unwrap(),
                severity: attributes["severity"].clone(),
                source: attributes["source"].clone(),
                category: attributes["category"].clone(),
                message: common::texts(&element, "Message").remove(0),
                fields: names
                    .into_iter()
                    .map(|n| n["name"].clone())
                    .zip(values)
                    .collect(),
            }
        })
        .collect()
}

fn severity(name: &str) -> Severity {
    iotmc_gateway::diagnostics::record::parse_severity(name)
        .unwrap_or_else(|| panic!("`{name}` is not a severity"))
}

struct Log {
    records: Vec<Record>,
    next: String,
    root: BTreeMap<String, String>,
}

async fn service(rig: &Rig, service_type: &str) -> Service {
    rig.face
        .service(rig.udn(MODBUS_DEVICE).await, service_type)
        .await
}

/// GetDiagnosticsLog(MinimumSeverity, StartTime, EndTime, MaximumRecords, Cursor), anonymously.
async fn call_get_log(rig: &Rig, args: [&str; 5]) -> common::Reply {
    let diagnostics = service(rig, &diagnostics_type()).await;
    let names = [
        "MinimumSeverity",
        "StartTime",
        "EndTime",
        "MaximumRecords",
        "Cursor",
    ];
    let args: Vec<(&str, &str)> = names.into_iter().zip(args).collect();
    rig.face
        .read(&diagnostics, "GetDiagnosticsLog", &args)
        .await
}

async fn get_log(rig: &Rig, args: [&str; 5]) -> Log {
    let reply = call_get_log(rig, args).await;
    let log = reply.argument("Log");
    Log {
        records: records(&log),
        next: reply.argument("NextCursor"),
        root: elements(&log, "DiagnosticsLog").remove(0),
    }
}

/// GetValues of the setpoint, anonymously; returns the UPnP error code if it failed.
async fn read_setpoint(rig: &Rig) -> Option<u16> {
    let cms = service(rig, CONFIGURATION).await;
    let reply = rig
        .face
        .read(
            &cms,
            "GetValues",
            &[(
                "Parameters",
                &common::content_paths(&["/IoTMC/Parameters/setpoint"]),
            )],
        )
        .await;
    (reply.status != StatusCode::OK).then(|| reply.upnp_error().0)
}

#[tokio::test]
async fn injected_errors_should_come_back_filtered_with_the_devices_own_records() {
    let rig = Rig::start().await;
    let sim = rig.modbus.sim();
    let before = SystemTime::now() - Duration::from_secs(1);
    sim.append_log(Severity::Error, 31, "supply fan failure");
    sim.append_log(Severity::Informational, 10, "setpoint changed");

    // The device refuses (exception 04), then falls silent, then answers again.
    sim.faults()
        .fail_next(ExceptionCode::ServerDeviceFailure, 1000);
    let refused = read_setpoint(&rig).await;
    assert!(refused.is_some(), "GetValues should fail on exception 04");
    sim.faults()
        .fail_next(ExceptionCode::ServerDeviceFailure, 0);
    sim.faults().set_unresponsive(true);
    let silent = read_setpoint(&rig).await;
    assert!(silent.is_some(), "GetValues should fail on a silent device");
    sim.faults().set_unresponsive(false);
    assert_eq!(read_setpoint(&rig).await, None);

    let all = get_log(&rig, ["debug", "", "", "0", ""]).await;
    let sources: Vec<&str> = all.records.iter().map(|r| r.source.as_str()).collect();
    assert!(sources.contains(&"device"), "{:?}", all.records);
    assert!(sources.contains(&"gateway"), "{:?}", all.records);
    assert!(
        all.records
            .iter()
            .any(|r| r.source == "device" && r.message.contains("setpoint changed")),
        "{:?}",
        all.records
    );
    assert!(
        all.records.iter().any(|r| r.category == "state-transition"
            && r.fields.get("availability").map(String::as_str) == Some("Offline")),
        "the silence is recorded as an availability change: {:?}",
        all.records
    );
    assert_eq!(all.root["device"], MODBUS_DEVICE);

    let errors = get_log(&rig, ["error", &utc(before), "", "0", ""]).await;
    assert!(
        errors
            .records
            .iter()
            .all(|r| severity(&r.severity) <= Severity::Error),
        "{:?}",
        errors.records
    );
    assert!(
        errors
            .records
            .iter()
            .any(|r| r.source == "device" && r.message.contains("supply fan failure")),
        "the device's own error: {:?}",
        errors.records
    );
    let failed_reads: Vec<&Record> = errors
        .records
        .iter()
        .filter(|r| {
            r.source == "gateway"
                && r.category == "error"
                && r.fields.get("action").map(String::as_str) == Some("GetValues")
        })
        .collect();
    assert_eq!(
        failed_reads.len(),
        2,
        "the refused and the unanswered read: {:?}",
        errors.records
    );
    assert!(
        !errors
            .records
            .iter()
            .any(|r| r.message.contains("setpoint changed")),
        "informational records are filtered out"
    );

    // A time window after everything: nothing.
    let later = utc(SystemTime::now() + Duration::from_secs(3600));
    let none = get_log(&rig, ["debug", &later, "", "0", ""]).await;
    assert!(none.records.is_empty(), "{:?}", none.records);
    rig.stop().await;
}

#[tokio::test]
async fn paging_by_cursor_should_never_skip_or_repeat_while_records_arrive() {
    let rig = Rig::start().await;
    let sim = rig.modbus.sim();
    for i in 0..5 {
        sim.append_log(Severity::Warning, 30, &format!("out of range {i}"));
    }
    let mut seen = Vec::new();
    let mut cursor = String::new();
    for page in 0..100 {
        if page == 3 {
            // A record arrives while the controller pages: an anonymous Reboot, refused.
            let basic = service(&rig, BASIC_MANAGEMENT).await;
            let refused = rig.face.read(&basic, "Reboot", &[]).await;
            assert_eq!(refused.upnp_error().0, 606);
        }
        let log = get_log(&rig, ["debug", "", "", "2", &cursor]).await;
        assert!(log.records.len() <= 2);
        seen.extend(log.records.iter().map(|r| r.seq));
        cursor = log.next.clone();
        if log.root["more"] == "0" && page > 3 {
            break;
        }
    }
    let mut sorted = seen.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(seen, sorted, "in order, no repeat");
    let everything = get_log(&rig, ["debug", "", "", "0", ""]).await;
    let all: Vec<u64> = everything.records.iter().map(|r| r.seq).collect();
    assert!(
        all.iter()
            .take_while(|s| **s <= *seen.last().unwrap())
            .eq(seen.iter()),
        "no skip: paged {seen:?}, held {all:?}"
    );
    assert!(
        everything
            .records
            .iter()
            .any(|r| r.message.starts_with("Reboot refused"))
    );
    rig.stop().await;
}

#[tokio::test]
async fn clearing_up_to_a_cursor_should_keep_what_arrived_after_it_and_need_an_operator() {
    let rig = Rig::start().await;
    let sim = rig.modbus.sim();
    sim.append_log(Severity::Error, 31, "before the read");
    let read = get_log(&rig, ["debug", "", "", "0", ""]).await;
    assert!(!read.records.is_empty());
    let diagnostics = service(&rig, &diagnostics_type()).await;

    let anonymous = rig
        .face
        .read(
            &diagnostics,
            "ClearDiagnosticsLog",
            &[("UpToCursor", &read.next)],
        )
        .await;
    assert_eq!(anonymous.upnp_error().0, 606);
    let garbage = rig
        .face
        .change(&diagnostics, "ClearDiagnosticsLog", &[("UpToCursor", "zz")])
        .await;
    let (code, description) = garbage.upnp_error();
    assert_eq!(code, 600, "{description}");
    assert!(description.contains("UpToCursor"), "{description}");
    let future = format!("{}-999999", read.next.split_once('-').unwrap().0);
    let (code, description) = rig
        .face
        .change(
            &diagnostics,
            "ClearDiagnosticsLog",
            &[("UpToCursor", &future)],
        )
        .await
        .upnp_error();
    assert_eq!(code, 600, "{description}");
    let untouched = get_log(&rig, ["debug", "", "", "0", ""]).await;
    assert_eq!(
        untouched.records.first().map(|r| r.seq),
        read.records.first().map(|r| r.seq),
        "refused clears removed nothing"
    );

    let cleared = rig
        .face
        .change(
            &diagnostics,
            "ClearDiagnosticsLog",
            &[("UpToCursor", &read.next)],
        )
        .await;
    assert_eq!(cleared.status, StatusCode::OK, "{cleared:?}");
    let after = get_log(&rig, ["debug", "", "", "0", ""]).await;
    let last_read = read.records.last().unwrap().seq;
    assert!(
        after.records.iter().all(|r| r.seq > last_read),
        "{:?}",
        after.records
    );
    assert!(
        after
            .records
            .iter()
            .any(|r| r.message.starts_with("ClearDiagnosticsLog refused")),
        "the refusal that arrived after the read is kept: {:?}",
        after.records
    );
    assert!(
        after.records.iter().any(|r| r.category == "security"
            && r.message.contains("cleared")
            && r.fields.contains_key("operator")),
        "{:?}",
        after.records
    );
    rig.stop().await;
}

#[tokio::test]
async fn the_http_log_should_take_the_same_filters_as_the_action() {
    let rig = Rig::start().await;
    let sim = rig.modbus.sim();
    sim.append_log(Severity::Critical, 31, "fan seized");
    sim.append_log(Severity::Debug, 10, "chatter");
    let basic = service(&rig, BASIC_MANAGEMENT).await;
    let uris = rig
        .face
        .read(&basic, "GetLogURIs", &[])
        .await
        .argument("LogURIs");
    let uris: Vec<&str> = uris.split(',').collect();
    assert_eq!(uris.len(), 2, "{uris:?}");
    let path = |uri: &str| {
        let rest = uri.strip_prefix("http://").unwrap();
        let (host, path) = rest.split_once('/').unwrap();
        assert_eq!(
            host,
            rig.face.http.to_string(),
            "the URL reaches this listener"
        );
        format!("/{path}")
    };
    let jsonl = get(rig.face.http, &format!("{}?severity=error", path(uris[0]))).await;
    assert_eq!(jsonl.status, StatusCode::OK, "{jsonl:?}");
    assert!(jsonl.header("x-next-cursor").is_some());
    let lines: Vec<serde_json::Value> = jsonl
        .body
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(
        lines
            .iter()
            .any(|l| l["message"].as_str().unwrap().contains("fan seized")),
        "{lines:?}"
    );
    assert!(
        lines
            .iter()
            .all(|l| severity(l["severity"].as_str().unwrap()) <= Severity::Error),
        "{lines:?}"
    );
    let text = get(rig.face.http, &format!("{}?max=1000", path(uris[1]))).await;
    assert!(
        text.body.lines().any(|l| l.contains("chatter")),
        "{}",
        text.body
    );
    let bad = get(rig.face.http, &format!("{}?severity=loud", path(uris[1]))).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.body.contains("MinimumSeverity"), "{}", bad.body);
    let unknown = get(rig.face.http, &format!("{}?level=3", path(uris[1]))).await;
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST);
    assert!(unknown.body.contains("level"), "{}", unknown.body);

    let info = rig
        .face
        .read(&basic, "GetLogInfo", &[])
        .await
        .argument("LogInfo");
    assert!(info.contains("<Capacity>65536</Capacity>"), "{info}");
    assert!(info.contains(r#"method="register-ring""#), "{info}");
    rig.stop().await;
}

#[tokio::test]
async fn bad_arguments_should_be_refused_naming_them() {
    let rig = Rig::start().await;
    for (args, named) in [
        (["loud", "", "", "0", ""], "MinimumSeverity"),
        (["", "", "", "0", ""], "MinimumSeverity"),
        (["debug", "yesterday", "", "0", ""], "StartTime"),
        (["debug", "", "", "0", "not-a-cursor"], "Cursor"),
    ] {
        let (code, description) = call_get_log(&rig, args).await.upnp_error();
        assert!(code == 600 || code == 402, "{code} {description}");
        assert!(description.contains(named), "{description}");
        assert!(description.contains(MODBUS_DEVICE), "{description}");
    }
    rig.stop().await;
}

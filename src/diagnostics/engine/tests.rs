//! The engine with an in-memory device that keeps a log of its own, under paused time.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use iotmc_adapter::testkit::SimulatedDevice as _;
use iotmc_adapter::testkit::memory::{Fault, MemoryAdapter, MemoryDevice};
use iotmc_adapter::{Adapter as _, DeviceBinding, Profile};

use super::*;
use crate::diagnostics::query::{LogRequest, RequestText};
use crate::diagnostics::record::Source;

const PROFILE: &str = r#"
id = "logging-thermostat"
manufacturer = "Test"
model = "Thermostat with a log"
protocol = "memory"

[[parameters]]
name = "setpoint"
type = "float"
access = "read-write"

[logs]
method = "device"

[poll]
timeout = "2s"
retries = 0

[memory]
initial = { setpoint = 21.0 }
"#;

struct Rig {
    engine: DiagnosticsEngine,
    device: Arc<MemoryDevice>,
}

async fn rig() -> Rig {
    let profile = Arc::new(Profile::from_toml(Path::new("t.toml"), PROFILE).unwrap());
    let adapter = MemoryAdapter::new(Fault::None);
    let link = adapter
        .attach(&DeviceBinding {
            device_id: "t1".into(),
            profile: Arc::clone(&profile),
            address: "memory:t1".into(),
        })
        .await
        .unwrap();
    let device = adapter.device("memory:t1").unwrap();
    let config = Config::from_toml(
        Path::new("/etc/iotmc-gateway/gateway.toml"),
        "[gateway]\nid = \"gw\"\nname = \"Test\"\nstate_dir = \"state\"\n\n[diagnostics]\nfetch_timeout = \"5s\"\n",
    )
    .unwrap();
    let engine = DiagnosticsEngine::new(
        &config,
        vec![DeviceEntry {
            id: "t1".into(),
            group: None,
            profile,
            link: Some(link),
        }],
        7,
    );
    Rig { engine, device }
}

fn everything() -> LogRequest {
    LogRequest::parse(
        &RequestText {
            min_severity: "debug",
            ..RequestText::default()
        },
        500,
    )
    .unwrap()
}

fn messages(page: &LogPage) -> Vec<&str> {
    page.records.iter().map(|r| r.message.as_str()).collect()
}

#[tokio::test(start_paused = true)]
async fn a_read_should_bring_the_devices_new_records_once() {
    let rig = rig().await;
    let first = rig.engine.read_log("t1", &everything()).await.unwrap();
    assert_eq!(messages(&first), ["power on"]);
    assert_eq!(
        first.native,
        NativeStatus::Read {
            at_ms: first.native_read_at()
        }
    );
    rig.device.append_log(Severity::Error, "fan stalled");
    let request = LogRequest {
        cursor: Some(first.next),
        ..everything()
    };
    let second = rig.engine.read_log("t1", &request).await.unwrap();
    assert_eq!(messages(&second), ["fan stalled"]);
    assert_eq!(second.records[0].source, Source::Device);
}

#[tokio::test(start_paused = true)]
async fn a_read_right_after_a_background_fetch_should_still_fetch() {
    let rig = rig().await;
    rig.engine.refresh("t1").await.unwrap();
    rig.device.append_log(Severity::Error, "fan stalled");
    let page = rig.engine.read_log("t1", &everything()).await.unwrap();
    assert!(
        messages(&page).contains(&"fan stalled"),
        "{:?}",
        messages(&page)
    );
}

#[tokio::test(start_paused = true)]
async fn a_silent_device_should_be_retried_no_more_than_every_thirty_seconds() {
    let rig = rig().await;
    let _ = rig.engine.read_log("t1", &everything()).await.unwrap();
    rig.device.set_unresponsive(true);
    let started = tokio::time::Instant::now();
    let failing = rig.engine.read_log("t1", &everything()).await.unwrap();
    assert!(
        matches!(failing.native, NativeStatus::Failing(_)),
        "{:?}",
        failing.native
    );
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "the first read waited for the device"
    );
    let again = tokio::time::Instant::now();
    let held = rig.engine.read_log("t1", &everything()).await.unwrap();
    assert_eq!(
        again.elapsed(),
        Duration::ZERO,
        "answered from what is held, at once"
    );
    let warnings = held
        .records
        .iter()
        .filter(|r| r.message.starts_with("cannot read the device's own log"))
        .count();
    assert_eq!(warnings, 1, "the failure is recorded once");
    rig.device.set_unresponsive(false);
    tokio::time::advance(RETRY_FAILING).await;
    let back = rig.engine.read_log("t1", &everything()).await.unwrap();
    assert_eq!(
        back.native,
        NativeStatus::Read {
            at_ms: back.native_read_at()
        }
    );
    assert!(messages(&back).contains(&"the device's own log can be read again"));
}

#[tokio::test(start_paused = true)]
async fn a_cursor_of_an_earlier_run_should_read_from_the_start_and_not_clear() {
    let rig = rig().await;
    rig.engine.record(
        "t1",
        Event::gateway(Severity::Notice, Category::Operational, "kept"),
    );
    let old = Cursor { epoch: 6, seq: 1 };
    let request = LogRequest {
        cursor: Some(old),
        ..everything()
    };
    let page = rig.engine.read_log("t1", &request).await.unwrap();
    assert_eq!(page.records.first().map(|r| r.seq), Some(1));
    let refused = rig.engine.clear("t1", &old.to_string()).unwrap_err();
    assert!(refused.to_string().contains("earlier run"), "{refused}");
    assert_eq!(
        rig.engine.records("t1", &Filter::all(10)).len(),
        page.records.len()
    );
}

#[tokio::test(start_paused = true)]
async fn a_repeated_refusal_should_not_overwrite_the_devices_history() {
    let rig = rig().await;
    rig.engine.record(
        "t1",
        Event::gateway(Severity::Warning, Category::StateTransition, "went offline"),
    );
    let refusal = || Event::gateway(Severity::Warning, Category::Security, "Reboot refused");
    for _ in 0..10_000 {
        rig.engine.record_limited("t1", "refused Reboot", refusal());
    }
    let held = rig.engine.records("t1", &Filter::all(10_000));
    assert!(
        held.iter().any(|r| r.message == "went offline"),
        "the history survived"
    );
    let refusals = held
        .iter()
        .filter(|r| r.message.starts_with("Reboot refused"))
        .count();
    assert_eq!(refusals, LIMITED_PER_WINDOW as usize);
    tokio::time::advance(LIMIT_WINDOW).await;
    rig.engine.record_limited("t1", "refused Reboot", refusal());
    let held = rig.engine.records("t1", &Filter::all(10_000));
    let summary = held.last().unwrap();
    assert_eq!(summary.field("suppressed"), Some("9995"));
    assert!(
        summary.message.contains("9995 more like it"),
        "{}",
        summary.message
    );
    // Another kind has its own allowance.
    rig.engine
        .record_limited("t1", "refused SetValues", refusal());
    assert_eq!(
        rig.engine.records("t1", &Filter::all(10_000)).len(),
        held.len() + 1
    );
}

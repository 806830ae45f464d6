//! The device link against the simulator, for what the conformance kit does not look at: the
//! device's exceptions in errors, recovery from corrupted and lost frames on RTU, polling with
//! change detection and availability, actions acknowledged with exception 05, identification.
#![cfg(feature = "sim")]

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use iotmc_adapter::{
    ActionOutcome, ActionRequest, Adapter, Availability, DeviceBinding, DeviceLink, ErrorKind,
    LinkEvent, Profile, Readings, Value,
};
use iotmc_adapter_modbus::ModbusAdapter;
use iotmc_adapter_modbus::frame::ExceptionCode;
use iotmc_adapter_modbus::profile::load_section;
use iotmc_adapter_modbus::sim::{RtuServer, SimDevice, SimIdentity, TcpServer, Unit, open_pty};
use tokio::sync::broadcast;

/// A small controller polled every 100 ms, offline after 400 ms without an answer.
const PROFILE: &str = r#"
id = "test-controller"
manufacturer = "Acme"
model = "TC-1"
protocol = "modbus"

[[parameters]]
name = "temperature"
type = "float"
unit = "°C"
resolution = 0.1

[[parameters]]
name = "setpoint"
type = "float"
access = "read-write"
range = { min = 5, max = 30 }

[[parameters]]
name = "mode"
type = "enum"
access = "read-write"
values = ["off", "heat"]

[[actions]]
name = "calibrate"
timeout = "5s"

[health]
offline_after = "400ms"

[poll]
interval = "100ms"
timeout = "100ms"
retries = 1

[modbus.parameters.temperature]
table = "input"
address = 0
encoding = "i16"
scale = 0.1

[modbus.parameters.setpoint]
table = "holding"
address = 0x10
encoding = "i16"
scale = 0.1

[modbus.parameters.mode]
table = "holding"
address = 0x11
map = { off = 0, heat = 1 }

[modbus.actions.calibrate]
writes = [{ table = "holding", address = 0x20, value = 1 }]
confirm = { table = "holding", address = 0x21, done = 2, failed = [3], interval = "50ms" }
"#;

/// The test profile, polled every `interval`. Tests that inject faults poll once an hour, so
/// that background polls cannot take the faults meant for their own requests.
fn profile_polled_every(interval: &str) -> Arc<Profile> {
    let text = PROFILE.replace(
        "interval = \"100ms\"",
        &format!("interval = \"{interval}\""),
    );
    Arc::new(Profile::from_toml(Path::new("test.toml"), &text).unwrap_or_else(|e| panic!("{e:?}")))
}

fn profile() -> Arc<Profile> {
    profile_polled_every("1h")
}
fn simulate(profile: &Arc<Profile>, unit: u8) -> SimDevice {
    let section = load_section(profile).unwrap_or_else(|e| panic!("{e:?}"));
    SimDevice::new(
        Arc::clone(profile),
        section,
        unit,
        SimIdentity {
            vendor: "Acme".into(),
            product_code: "TC".into(),
            revision: "4.2".into(),
            model_name: "TC-1 plus".into(),
            serial: None,
        },
    )
    .with_action_time(Duration::from_millis(200))
}

async fn attach(profile: &Arc<Profile>, address: String) -> Arc<dyn DeviceLink> {
    ModbusAdapter::new()
        .attach(&DeviceBinding {
            device_id: "tc-1".into(),
            profile: Arc::clone(profile),
            address,
        })
        .await
        .unwrap_or_else(|e| panic!("attach: {e}"))
}

async fn over_tcp() -> (SimDevice, Arc<dyn DeviceLink>, TcpServer) {
    over_tcp_polled_every("1h").await
}

async fn over_tcp_polled_every(interval: &str) -> (SimDevice, Arc<dyn DeviceLink>, TcpServer) {
    let profile = profile_polled_every(interval);
    let device = simulate(&profile, 1);
    let server = TcpServer::bind(
        "127.0.0.1:0".parse().expect("address"),
        vec![Arc::new(device.clone()) as Arc<dyn Unit>],
    )
    .expect("server");
    let link = attach(&profile, format!("tcp://{}?unit=1", server.local_addr())).await;
    // The first poll runs at attach (its task cannot run before this subscription on the
    // test's single thread); let it finish before a test injects faults.
    let mut events = link.events();
    next_event(&mut events, |e| matches!(e, LinkEvent::Availability { .. })).await;
    (device, link, server)
}

fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

/// The next event matching `want`, within 5 s.
async fn next_event(
    events: &mut broadcast::Receiver<LinkEvent>,
    want: impl Fn(&LinkEvent) -> bool,
) -> LinkEvent {
    tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match events.recv().await {
                Ok(event) if want(&event) => return event,
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => panic!("events closed"),
            }
        }
    })
    .await
    .expect("the event came within 5 s")
}

#[tokio::test]
async fn device_exception_should_name_the_code_and_what_was_asked() {
    let (device, link, _server) = over_tcp().await;
    device
        .faults()
        .fail_next(ExceptionCode::IllegalDataAddress, 1);
    let err = link.read(&names(&["setpoint", "mode"])).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::DeviceRefused);
    let text = err.to_string();
    assert!(
        text.contains("Modbus exception 0x02 (illegal data address)"),
        "{text}"
    );
    assert!(text.contains("holding 0x0010..=0x0011"), "{text}");
    assert!(
        text.contains("`setpoint`") && text.contains("`mode`"),
        "{text}"
    );
}

#[tokio::test]
async fn refused_write_should_leave_every_value_as_it_was() {
    let (device, link, _server) = over_tcp().await;
    let before = (device.value("setpoint"), device.value("mode"));
    let values: Readings = [
        ("mode".to_owned(), Value::from("heat")),
        ("setpoint".to_owned(), Value::Float(35.0)),
    ]
    .into_iter()
    .collect();
    let err = link.write(&values).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::OutOfRange, "{err}");
    assert_eq!((device.value("setpoint"), device.value("mode")), before);
}

#[tokio::test]
async fn value_between_raw_steps_should_be_refused_with_the_step() {
    let (device, link, _server) = over_tcp().await;
    let before = (device.value("mode"), device.value("setpoint"));
    assert_eq!(before.0, Some(Value::from("off")));
    // `mode` sorts first and is valid: it must not be written when `setpoint` cannot be.
    let values: Readings = [
        ("mode".to_owned(), Value::from("heat")),
        ("setpoint".to_owned(), Value::Float(21.05)),
    ]
    .into_iter()
    .collect();
    let err = link.write(&values).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::OutOfRange, "{err}");
    assert_eq!((device.value("mode"), device.value("setpoint")), before);
}

#[tokio::test]
async fn write_should_reach_the_registers_and_read_back() {
    let (device, link, _server) = over_tcp().await;
    let values: Readings = [
        ("setpoint".to_owned(), Value::Float(22.5)),
        ("mode".to_owned(), Value::from("heat")),
    ]
    .into_iter()
    .collect();
    link.write(&values).await.expect("write");
    assert_eq!(device.value("setpoint"), Some(Value::Float(22.5)));
    assert_eq!(device.value("mode"), Some(Value::from("heat")));
    let read = link
        .read(&names(&["setpoint", "mode"]))
        .await
        .expect("read");
    assert_eq!(read, values);
}

#[tokio::test]
async fn identify_should_follow_the_identification_streams() {
    let (_device, link, _server) = over_tcp().await;
    let identity = link.identify().await.expect("identify");
    assert_eq!(identity.manufacturer, "Acme");
    assert_eq!(identity.model, "TC-1 plus");
    assert_eq!(identity.firmware_version.as_deref(), Some("4.2"));
    assert!(!identity.evidence.is_cryptographic());
}

#[tokio::test]
async fn polling_should_event_only_changed_values_and_availability() {
    let (device, link, _server) = over_tcp_polled_every("100ms").await;
    let mut events = link.events();
    device
        .set_value("temperature", Value::Float(27.3))
        .expect("the simulator takes the value");
    let LinkEvent::Changed { values, .. } = next_event(&mut events, |e| {
        matches!(e, LinkEvent::Changed { values, .. } if values.get("temperature") == Some(&Value::Float(27.3)))
    })
    .await
    else {
        unreachable!()
    };
    assert_eq!(
        values.len(),
        1,
        "only the changed value is evented: {values:?}"
    );

    device.faults().set_unresponsive(true);
    next_event(&mut events, |e| {
        matches!(
            e,
            LinkEvent::Availability {
                availability: Availability::Offline,
                ..
            }
        )
    })
    .await;
    device.faults().set_unresponsive(false);
    next_event(&mut events, |e| {
        matches!(
            e,
            LinkEvent::Availability {
                availability: Availability::Online,
                ..
            }
        )
    })
    .await;
}

#[tokio::test]
async fn acknowledged_action_should_wait_for_the_status_register() {
    let (device, link, _server) = over_tcp().await;
    device.faults().acknowledge_actions(true);
    let outcome = link
        .invoke(&ActionRequest::new("calibrate"))
        .await
        .expect("the action finishes");
    assert!(matches!(outcome, ActionOutcome::Done { .. }), "{outcome:?}");
}

#[tokio::test]
async fn rtu_should_recover_from_a_corrupted_and_a_lost_answer() {
    let profile = profile();
    let device = simulate(&profile, 9);
    let (master, path) = open_pty().expect("pty");
    let _server = RtuServer::spawn(
        master,
        vec![Arc::new(device.clone()) as Arc<dyn Unit>],
        Duration::from_micros(1750),
    );
    let link = attach(&profile, format!("rtu://{path}?baud=19200&unit=9")).await;
    let mut events = link.events();
    // The first poll runs at attach; let it finish before injecting faults.
    next_event(&mut events, |e| matches!(e, LinkEvent::Changed { .. })).await;
    device.faults().corrupt_next(1);
    let read = link
        .read(&names(&["setpoint"]))
        .await
        .expect("retried after a bad CRC");
    assert_eq!(read.get("setpoint"), device.value("setpoint").as_ref());
    device.faults().drop_next(1);
    let read = link
        .read(&names(&["setpoint"]))
        .await
        .expect("retried after a lost answer");
    assert_eq!(read.get("setpoint"), device.value("setpoint").as_ref());
    device.faults().drop_next(2);
    let err = link.read(&names(&["setpoint"])).await.unwrap_err();
    assert_eq!(
        err.kind(),
        ErrorKind::Timeout,
        "two losses exhaust one retry: {err}"
    );
}

#[tokio::test]
async fn second_device_with_other_line_settings_should_be_refused_naming_the_first() {
    let profile = profile();
    let adapter = ModbusAdapter::new();
    let bind = |id: &str, address: &str| DeviceBinding {
        device_id: id.to_owned(),
        profile: Arc::clone(&profile),
        address: address.to_owned(),
    };
    let _first = adapter
        .attach(&bind("a", "rtu:///dev/does-not-exist?baud=9600&unit=1"))
        .await
        .expect("attaching needs no open port");
    let err = adapter
        .attach(&bind("b", "rtu:///dev/does-not-exist?baud=19200&unit=2"))
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("device `a`") && text.contains("same line settings"),
        "{text}"
    );
    adapter
        .attach(&bind("c", "rtu:///dev/does-not-exist?baud=9600&unit=3"))
        .await
        .expect("same settings share the bus");
}

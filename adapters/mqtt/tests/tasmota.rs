//! The Tasmota dialect end to end: the embedded broker, a simulated plug (MQTT 3.1.1, as Tasmota
//! speaks it), the gateway's MQTT adapter on MQTT 5 with the shipped Athom Plug V2 profile, and
//! an image server for URL-pull firmware.
#![cfg(feature = "sim")]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use iotmc_adapter::testkit::{Conformance, FirmwareFixture, SimulatedDevice};
use iotmc_adapter::{
    ActionOutcome, ActionRequest, ActivationMode, Adapter, Availability, DeviceBinding, DeviceLink,
    ErrorKind, FirmwareImage, LinkError, LinkEvent, LogCursor, Profile, Readings, Severity, Value,
};
use iotmc_adapter_mqtt::codec::tasmota::Prefix;
use iotmc_adapter_mqtt::profile::load_section;
use iotmc_adapter_mqtt::sim::EmbeddedBroker;
use iotmc_adapter_mqtt::sim::http::ImageServer;
use iotmc_adapter_mqtt::sim::tasmota::{PlugOptions, TasmotaPlug};
use iotmc_adapter_mqtt::{BrokerSettings, MqttAdapter};
use sha2::{Digest, Sha256};
use tokio::sync::broadcast;
use tokio::time::{Instant, timeout};

/// Longest any step may take; they take milliseconds to a second when they pass.
const DEADLINE: Duration = Duration::from_secs(15);

fn shipped_profile_text() -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../device-profiles/mqtt/tasmota-plug.toml");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn profile(text: &str) -> Arc<Profile> {
    Arc::new(
        Profile::from_toml(&PathBuf::from("tasmota-plug.toml"), text)
            .unwrap_or_else(|e| panic!("{e:?}")),
    )
}

/// A broker, a plug, and the gateway's link to it.
struct Rig {
    _broker: EmbeddedBroker,
    _adapter: MqttAdapter,
    plug: TasmotaPlug,
    link: Arc<dyn DeviceLink>,
    profile: Arc<Profile>,
    events: broadcast::Receiver<LinkEvent>,
}

async fn rig(topic: &str, text: &str, tele_interval: Duration) -> Rig {
    let broker = EmbeddedBroker::start().expect("embedded broker");
    let mut options = PlugOptions::new(topic);
    options.tele_interval = tele_interval;
    let plug = TasmotaPlug::start(broker.v311_addr(), options);
    assert!(plug.wait_online(DEADLINE).await, "the plug did not connect");
    let profile = profile(text);
    let adapter = MqttAdapter::new(vec![BrokerSettings::plain(
        "plant",
        "127.0.0.1",
        broker.v5_addr().port(),
        &format!("gateway-{topic}"),
    )]);
    let link = adapter
        .attach(&DeviceBinding {
            device_id: format!("dev-{topic}"),
            profile: Arc::clone(&profile),
            address: format!("mqtt://plant/{topic}"),
        })
        .await
        .unwrap_or_else(|e| panic!("attach: {e}"));
    let events = link.events();
    let rig = Rig {
        _broker: broker,
        _adapter: adapter,
        plug,
        link,
        profile,
        events,
    };
    rig.until_answering().await;
    rig.until_mqttlog_set().await;
    rig
}

impl Rig {
    /// Waits until the plug answers through the link.
    async fn until_answering(&self) {
        let answering = async {
            while self.link.identify().await.is_err() {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        };
        timeout(DEADLINE, answering)
            .await
            .expect("the plug never answered through the link");
    }

    /// Waits until the plug's MqttLog is the level the profile opts in to, if any.
    async fn until_mqttlog_set(&self) {
        let section = load_section(&self.profile).unwrap_or_else(|e| panic!("{e:?}"));
        let Some(level) = section.tasmota.and_then(|t| t.mqtt_log_level) else {
            return;
        };
        let set = async {
            while self.plug.mqtt_log_level() != level {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        };
        timeout(DEADLINE, set)
            .await
            .expect("the link sets MqttLog when the plug comes online");
    }

    /// Waits for an event that `pick` accepts.
    async fn event<T>(&mut self, what: &str, pick: impl Fn(&LinkEvent) -> Option<T>) -> T {
        let wait = async {
            loop {
                match self.events.recv().await {
                    Ok(event) => {
                        if let Some(found) = pick(&event) {
                            return found;
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => panic!("the link's events closed"),
                }
            }
        };
        timeout(DEADLINE, wait)
            .await
            .unwrap_or_else(|_| panic!("no event: {what}"))
    }

    async fn availability(&mut self, wanted: Availability) {
        self.event(&format!("availability {wanted:?}"), |e| match e {
            LinkEvent::Availability { availability, .. } if *availability == wanted => Some(()),
            _ => None,
        })
        .await;
    }
}

fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

/// A simulated image of `version` offered at a one-time URL (or without one).
fn image(server: Option<&ImageServer>, header: &str, version: &str) -> FirmwareImage {
    let mut bytes = header.as_bytes().to_vec();
    bytes.extend((0..4000u32).map(|i| (i % 251) as u8));
    let sha256: [u8; 32] = Sha256::digest(&bytes).into();
    let bytes: Arc<[u8]> = bytes.into();
    FirmwareImage {
        download_url: server.map(|s| s.offer(Bytes::copy_from_slice(&bytes))),
        bytes,
        sha256,
        version: version.to_owned(),
    }
}

fn expect_kind<T: std::fmt::Debug>(result: Result<T, LinkError>, kind: ErrorKind) -> LinkError {
    match result {
        Err(e) if e.kind() == kind => e,
        other => panic!("expected a {kind:?} error, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasmota_plug_should_pass_the_conformance_kit() {
    let rig = rig(
        "conformance",
        &shipped_profile_text(),
        Duration::from_secs(1),
    )
    .await;
    let server = ImageServer::start().await.expect("image server");
    let report = Conformance::new(Arc::clone(&rig.link), Arc::clone(&rig.profile), &rig.plug)
        .with_firmware(FirmwareFixture {
            first: image(Some(&server), "SIMFW:13.2.0\n", "13.2.0"),
            second: image(Some(&server), "SIMFW:13.3.0\n", "13.3.0"),
        })
        .run()
        .await;
    println!("{report}");
    report.assert_passed();
    assert_eq!(rig.plug.firmware_version(), "13.2.0");
    assert_eq!(
        server.completed_downloads(),
        1,
        "the plug downloads the image once, at activation"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasmota_plug_should_refuse_an_unknown_command() {
    let text = format!(
        "{}\n[[actions]]\nname = \"frobnicate\"\n[mqtt.tasmota.actions.frobnicate]\ncommand = \"Frobnicate\"\npayload = \"1\"\n",
        shipped_profile_text()
    );
    let rig = rig("unknown", &text, Duration::from_secs(5)).await;
    let error = expect_kind(
        rig.link.invoke(&ActionRequest::new("frobnicate")).await,
        ErrorKind::DeviceRefused,
    );
    let text = error.to_string();
    assert!(
        text.contains("Command Unknown")
            && text.contains("`Frobnicate 1`")
            && text.contains("dev-unknown"),
        "{text}"
    );
    // The link keeps working.
    rig.link
        .read(&names(&["power"]))
        .await
        .expect("read after a refusal");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasmota_plug_that_stops_answering_should_time_out_and_recover() {
    let text =
        shipped_profile_text().replace("response_timeout = \"5s\"", "response_timeout = \"400ms\"");
    let rig = rig("silent", &text, Duration::from_secs(5)).await;
    rig.plug.set_unresponsive(true);
    let started = Instant::now();
    let error = expect_kind(
        rig.link.read(&names(&["tele_period"])).await,
        ErrorKind::Timeout,
    );
    assert!(started.elapsed() >= Duration::from_millis(400), "{error}");
    assert_eq!(
        error,
        LinkError::Timeout {
            after: Duration::from_millis(400)
        }
    );
    rig.plug.set_unresponsive(false);
    rig.link
        .read(&names(&["tele_period"]))
        .await
        .expect("read after recovery");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasmota_plug_write_should_be_confirmed_by_its_echo() {
    let text = shipped_profile_text().replace(
        "range = { min = 10, max = 3600 }",
        "range = { min = 1, max = 3600 }",
    );
    let mut rig = rig("echo", &text, Duration::from_secs(5)).await;
    let values = Readings::from([
        ("tele_period".to_owned(), Value::Int(120)),
        ("power_on_state".to_owned(), Value::from("off")),
        ("power".to_owned(), Value::Bool(false)),
    ]);
    rig.link.write(&values).await.expect("write");
    assert_eq!(rig.plug.tele_period(), 120);
    assert!(!rig.plug.power());
    let read = rig
        .link
        .read(&names(&["power_on_state", "power", "pulse_time"]))
        .await
        .expect("read");
    assert_eq!(read["power_on_state"], Value::from("off"));
    assert_eq!(read["power"], Value::Bool(false));
    rig.event("power changed to off", |e| match e {
        LinkEvent::Changed { values, .. } if values.get("power") == Some(&Value::Bool(false)) => {
            Some(())
        }
        _ => None,
    })
    .await;
    // Tasmota keeps TelePeriod at 10 s at least: the echo says so, and the write fails naming both.
    let error = expect_kind(
        rig.link
            .write(&Readings::from([("tele_period".to_owned(), Value::Int(5))]))
            .await,
        ErrorKind::DeviceRefused,
    );
    let text = error.to_string();
    assert!(
        text.contains("TelePeriod kept 10") && text.contains("`TelePeriod 5`"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasmota_plug_should_refuse_a_bad_write_before_sending_anything() {
    let rig = rig("refuse", &shipped_profile_text(), Duration::from_secs(5)).await;
    let values = Readings::from([
        ("tele_period".to_owned(), Value::Int(120)),
        ("pulse_time".to_owned(), Value::Int(99_999)),
    ]);
    expect_kind(rig.link.write(&values).await, ErrorKind::OutOfRange);
    assert_eq!(
        rig.plug.tele_period(),
        300,
        "nothing may be sent when one value is refused"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tele_sensor_push_should_be_evented_as_a_change() {
    let mut rig = rig("tele", &shipped_profile_text(), Duration::from_millis(200)).await;
    let power = rig
        .event("a Changed event with active_power", |e| match e {
            LinkEvent::Changed { values, .. } => values.get("active_power").cloned(),
            _ => None,
        })
        .await;
    assert!(matches!(power, Value::Float(w) if w > 0.0), "{power:?}");
    rig.plug.press_button();
    rig.event("power toggled by the button", |e| match e {
        LinkEvent::Changed { values, .. } if values.get("power") == Some(&Value::Bool(false)) => {
            Some(())
        }
        _ => None,
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lwt_offline_should_be_evented_and_refuse_commands_at_once() {
    let mut rig = rig("lwt", &shipped_profile_text(), Duration::from_secs(5)).await;
    rig.plug.cut_power(Duration::from_secs(2));
    rig.availability(Availability::Offline).await;
    let started = Instant::now();
    let error = expect_kind(
        rig.link.read(&names(&["power"])).await,
        ErrorKind::Transport,
    );
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "an offline device is not waited for"
    );
    assert!(error.to_string().contains("tele/lwt/LWT"), "{error}");
    rig.availability(Availability::Online).await;
    rig.until_answering().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reboot_should_be_accepted_and_the_plug_should_come_back() {
    let mut rig = rig("reboot", &shipped_profile_text(), Duration::from_secs(5)).await;
    let boots = rig.plug.boot_count();
    let outcome = rig
        .link
        .invoke(&ActionRequest::new("reboot"))
        .await
        .expect("reboot");
    assert_eq!(outcome, ActionOutcome::Accepted);
    rig.availability(Availability::Offline).await;
    rig.availability(Availability::Online).await;
    rig.until_answering().await;
    assert_eq!(rig.plug.boot_count(), boots + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn factory_reset_should_keep_the_plug_on_the_broker_and_mqttlog_should_be_set_again() {
    let mut rig = rig("reset", &shipped_profile_text(), Duration::from_secs(5)).await;
    assert_eq!(
        rig.plug.mqtt_log_level(),
        2,
        "the profile opts in to MqttLog 2"
    );
    let outcome = rig
        .link
        .invoke(&ActionRequest::new("factory_reset"))
        .await
        .expect("reset");
    assert_eq!(outcome, ActionOutcome::Accepted);
    rig.availability(Availability::Offline).await;
    rig.availability(Availability::Online).await;
    rig.until_answering().await;
    assert!(!rig.plug.is_gone());
    rig.until_mqttlog_set().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upgrade_to_a_bad_image_should_fail_clearly_and_the_old_version_should_run() {
    let rig = rig("badimage", &shipped_profile_text(), Duration::from_secs(5)).await;
    let server = ImageServer::start().await.expect("image server");
    let firmware = rig.link.firmware().expect("firmware target");
    let bad = image(Some(&server), "\u{e9}not a simulated image\n", "13.2.0");
    firmware.stage(&bad, 0, &|_| {}).await.expect("stage");
    let error = expect_kind(
        firmware.activate(ActivationMode::Permanent).await,
        ErrorKind::DeviceRefused,
    );
    let text = error.to_string();
    assert!(
        text.contains("Upgrade failed") && text.contains("Verify Bin Header Failed"),
        "{text}"
    );
    let banks = firmware.banks().await.expect("banks");
    assert_eq!(banks[0].version.as_deref(), Some("13.1.0"));
    assert_eq!(rig.plug.firmware_version(), "13.1.0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn firmware_without_a_download_url_or_on_trial_should_be_unsupported() {
    let rig = rig("nourl", &shipped_profile_text(), Duration::from_secs(5)).await;
    let firmware = rig.link.firmware().expect("firmware target");
    let error = expect_kind(
        firmware
            .stage(&image(None, "SIMFW:13.2.0\n", "13.2.0"), 0, &|_| {})
            .await,
        ErrorKind::Unsupported,
    );
    assert!(
        error
            .to_string()
            .contains("image endpoint must be configured"),
        "{error}"
    );
    expect_kind(
        firmware.activate(ActivationMode::Test).await,
        ErrorKind::Unsupported,
    );
    expect_kind(firmware.confirm().await, ErrorKind::Unsupported);
    let caps = firmware.capabilities();
    assert!(!caps.dual_bank && !caps.resumable && !caps.confirm_required);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_payloads_should_be_ignored_and_the_link_should_keep_working() {
    let mut rig = rig(
        "garbage",
        &shipped_profile_text(),
        Duration::from_millis(300),
    )
    .await;
    let huge = vec![b'{'; 70 * 1024];
    for (prefix, suffix, payload) in [
        (Prefix::Stat, "RESULT", b"not json".to_vec()),
        (Prefix::Stat, "RESULT", huge.clone()),
        (Prefix::Stat, "RESULT", br#"{"POWER":7}"#.to_vec()),
        (Prefix::Stat, "RESULT", b"[1,2,3]".to_vec()),
        (Prefix::Stat, "STATUS8", b"\xff\xfe".to_vec()),
        (Prefix::Stat, "LOGGING", vec![0xff; 10]),
        (Prefix::Stat, "WHATEVER", b"x".to_vec()),
        (Prefix::Tele, "SENSOR", b"garbage".to_vec()),
        (Prefix::Tele, "SENSOR", huge),
        (
            Prefix::Tele,
            "SENSOR",
            br#"{"ENERGY":{"Power":"lots","Voltage":[1]}}"#.to_vec(),
        ),
        (Prefix::Tele, "STATE", br#"{"POWER":{"x":1}}"#.to_vec()),
        (Prefix::Tele, "LWT", b"maybe".to_vec()),
        (Prefix::Tele, "NOVEL", b"{}".to_vec()),
    ] {
        rig.plug.publish_raw(prefix, suffix, payload);
    }
    // Markers behind the garbage on both subscriptions: once their values are evented, the
    // link has been through all of it.
    rig.plug
        .publish_raw(Prefix::Stat, "RESULT", r#"{"TelePeriod":777}"#);
    rig.plug
        .publish_raw(Prefix::Tele, "SENSOR", r#"{"ENERGY":{"Power":1234}}"#);
    let mut seen = (false, false);
    while seen != (true, true) {
        let (period, power) = rig
            .event("the markers", |e| match e {
                LinkEvent::Changed { values, .. } => Some((
                    values.get("tele_period") == Some(&Value::Int(777)),
                    values.get("active_power") == Some(&Value::Float(1234.0)),
                )),
                _ => None,
            })
            .await;
        seen = (seen.0 || period, seen.1 || power);
    }
    let read = rig
        .link
        .read(&names(&["power", "active_power", "tele_period"]))
        .await
        .expect("read after garbage");
    assert!(matches!(read["active_power"], Value::Float(_)));
    rig.link
        .write(&Readings::from([(
            "tele_period".to_owned(),
            Value::Int(60),
        )]))
        .await
        .expect("write after garbage");
    // Telemetry still reaches the event hub.
    rig.event("telemetry after garbage", |e| match e {
        LinkEvent::Changed { values, .. } if values.contains_key("active_power") => Some(()),
        _ => None,
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_answer_should_be_a_clear_error_naming_the_topic() {
    let text =
        shipped_profile_text().replace("response_timeout = \"5s\"", "response_timeout = \"2s\"");
    let rig = rig("malformed", &text, Duration::from_secs(5)).await;
    rig.plug.set_unresponsive(true);
    let mut received = rig.plug.commands_received();
    let before = *received.borrow_and_update();
    let link = Arc::clone(&rig.link);
    let read = tokio::spawn(async move { link.read(&names(&["voltage"])).await });
    // Once the plug has the command, the read waits for STATUS8: what comes there can only be
    // its answer.
    timeout(DEADLINE, received.wait_for(|n| *n > before))
        .await
        .expect("the command reaches the plug")
        .expect("plug");
    rig.plug
        .publish_raw(Prefix::Stat, "STATUS8", b"{\"StatusSNS\":");
    let error = expect_kind(read.await.expect("read task"), ErrorKind::Malformed);
    let text = error.to_string();
    assert!(
        text.contains("stat/malformed/STATUS8") && text.contains("`Status 8`"),
        "{text}"
    );
    rig.plug.set_unresponsive(false);
    rig.link
        .read(&names(&["voltage"]))
        .await
        .expect("read after the malformed answer");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_lines_should_be_collected_with_an_inferred_severity() {
    let rig = rig("logs", &shipped_profile_text(), Duration::from_secs(5)).await;
    let logs = rig.link.logs().expect("log source");
    logs.clear().await.expect("clear");
    let start = logs.fetch(None).await.expect("fetch").next;
    rig.plug
        .append_log(Severity::Error, "Upload error: Verify Bin Header Failed");
    rig.plug.append_log(Severity::Informational, "all is well");
    let collected = async {
        loop {
            let batch = logs.fetch(start).await.expect("fetch");
            if batch
                .records
                .iter()
                .filter(|r| r.fields.get("tag").map(String::as_str) == Some("APP"))
                .count()
                >= 2
            {
                return batch;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    let batch = timeout(DEADLINE, collected)
        .await
        .expect("the lines arrive");
    let failed = batch
        .records
        .iter()
        .find(|r| r.message.contains("Verify Bin Header Failed"))
        .expect("error line");
    assert_eq!(failed.severity, Severity::Error);
    assert!(failed.fields.contains_key("device_time"));
    let fine = batch
        .records
        .iter()
        .find(|r| r.message.contains("all is well"))
        .expect("info line");
    assert_eq!(fine.severity, Severity::Informational);
    assert!(fine.index > failed.index);
    assert!(matches!(batch.next, Some(LogCursor::Index(_))));
}

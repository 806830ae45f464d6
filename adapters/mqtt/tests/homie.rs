//! The Homie 5 dialect end to end: the embedded broker (rumqttd on loopback), the simulated
//! thermostat (MQTT 3.1.1) or a hand-driven fake device, and the adapter's link (MQTT 5).
#![cfg(feature = "sim")]
// Test helpers outside #[test] functions unwrap too: a failed step fails the test.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use iotmc_adapter::testkit::{Conformance, SimulatedDevice};
use iotmc_adapter::{
    ActionRequest, Adapter, Availability, DeviceBinding, DeviceLink, ErrorKind, LinkError,
    LinkEvent, LogCursor, Profile, Readings, Severity, Value,
};
use iotmc_adapter_mqtt::driver::{BrokerHandle, ConnectionState, Subscription};
use iotmc_adapter_mqtt::frame::Outgoing;
use iotmc_adapter_mqtt::sim::EmbeddedBroker;
use iotmc_adapter_mqtt::sim::homie::{FIRMWARE_VERSION, HomieThermostat, ThermostatOptions};
use iotmc_adapter_mqtt::{BrokerSettings, MqttAdapter};
use tokio::sync::{broadcast, watch};
use tokio::time::timeout;

/// Longest any step may take; they take milliseconds when they pass.
const DEADLINE: Duration = Duration::from_secs(10);

fn profile_text() -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../device-profiles/mqtt/homie-thermostat.toml");
    std::fs::read_to_string(path).unwrap()
}

/// The shipped profile, with its response timeout replaced by `response_timeout`.
fn profile(response_timeout: &str) -> Arc<Profile> {
    let text = profile_text().replace(
        "response_timeout = \"3s\"",
        &format!("response_timeout = \"{response_timeout}\""),
    );
    Arc::new(Profile::from_toml(&PathBuf::from("homie-thermostat.toml"), &text).unwrap())
}

async fn attach(
    broker: &EmbeddedBroker,
    profile: &Arc<Profile>,
    device: &str,
) -> Arc<dyn DeviceLink> {
    let port = broker.v5_addr().port();
    let adapter = MqttAdapter::new(vec![BrokerSettings::plain(
        "plant",
        "127.0.0.1",
        port,
        &format!("gateway-{device}"),
    )]);
    adapter.validate_profile(profile).unwrap();
    adapter
        .attach(&DeviceBinding {
            device_id: format!("dut-{device}"),
            profile: Arc::clone(profile),
            address: format!("mqtt://plant/{device}"),
        })
        .await
        .unwrap_or_else(|e| panic!("attach: {e}"))
}

fn thermostat(broker: &EmbeddedBroker, device: &str) -> HomieThermostat {
    let mut options = ThermostatOptions::new(broker.v311_addr(), device);
    options.tick = Duration::from_millis(200);
    options.reboot_time = Duration::from_millis(300);
    HomieThermostat::with_options(options)
}

/// The simulator as the kit sees it. Homie learns that a device stopped answering from its
/// will, which the broker publishes once it notices the dropped connection: so after
/// `set_unresponsive(true)` this waits until the link reports the device offline, as any
/// controller would have to, before the kit reads.
struct Unplugged<'a> {
    device: &'a HomieThermostat,
    offline: watch::Receiver<u64>,
}

impl<'a> Unplugged<'a> {
    fn new(device: &'a HomieThermostat, link: &Arc<dyn DeviceLink>) -> Self {
        let (count, offline) = watch::channel(0u64);
        let mut events = link.events();
        tokio::spawn(async move {
            loop {
                match events.recv().await {
                    Ok(LinkEvent::Availability {
                        availability: Availability::Offline,
                        ..
                    }) => count.send_modify(|n| *n += 1),
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => return,
                }
            }
        });
        Self { device, offline }
    }
}

impl SimulatedDevice for Unplugged<'_> {
    fn set_unresponsive(&self, unresponsive: bool) {
        let before = *self.offline.borrow();
        self.device.set_unresponsive(unresponsive);
        if unresponsive {
            let mut offline = self.offline.clone();
            tokio::task::block_in_place(|| {
                tokio::runtime::Handle::current().block_on(async {
                    timeout(DEADLINE, offline.wait_for(|n| *n > before))
                        .await
                        .expect("the link did not report the device offline after its will")
                        .expect("the event forwarder stopped");
                });
            });
        }
    }

    fn append_log(&self, severity: Severity, message: &str) {
        self.device.append_log(severity, message);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_homie_thermostat_should_pass_the_conformance_kit() {
    let broker = EmbeddedBroker::start().unwrap();
    let profile = profile("3s");
    let device = thermostat(&broker, "hall-thermostat");
    let link = attach(&broker, &profile, "hall-thermostat").await;
    let unplugged = Unplugged::new(&device, &link);
    let report = Conformance::new(Arc::clone(&link), Arc::clone(&profile), &unplugged)
        .run()
        .await;
    println!("{report}");
    report.assert_passed();
    let identity = link.identify().await.unwrap();
    assert_eq!(identity.firmware_version.as_deref(), Some(FIRMWARE_VERSION));
    assert_eq!(identity.serial.as_deref(), Some("TH-hall-thermostat"));
}

#[test]
fn the_shipped_homie_profile_should_validate() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../device-profiles/mqtt/homie-thermostat.toml");
    let profile = Profile::load(&path).unwrap_or_else(|e| panic!("{e:?}"));
    MqttAdapter::new(Vec::new())
        .validate_profile(&profile)
        .unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(profile.readable_parameters().len(), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_state_should_be_an_offline_event_and_ready_an_online_one() {
    let broker = EmbeddedBroker::start().unwrap();
    let profile = profile("3s");
    let device = thermostat(&broker, "lobby");
    let link = attach(&broker, &profile, "lobby").await;
    // Ready (and so online) before the events are followed: the next one is the change.
    link.identify().await.unwrap();
    let mut events = link.events();
    device.set_unresponsive(true);
    next_availability(&mut events, Availability::Offline).await;
    let err = link
        .read(&["temperature".to_owned()])
        .await
        .expect_err("a lost device's values are not current");
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    device.set_unresponsive(false);
    next_availability(&mut events, Availability::Online).await;
    link.read(&["temperature".to_owned()]).await.unwrap();
}

async fn next_availability(events: &mut broadcast::Receiver<LinkEvent>, wanted: Availability) {
    let wait = async {
        loop {
            if let LinkEvent::Availability { availability, .. } = events.recv().await.unwrap()
                && availability == wanted
            {
                return;
            }
        }
    };
    timeout(DEADLINE, wait)
        .await
        .unwrap_or_else(|_| panic!("no {wanted:?} event within {DEADLINE:?}"));
}

fn one(name: &str, value: Value) -> Readings {
    Readings::from([(name.to_owned(), value)])
}

/// A device driven by hand: whatever the test publishes below `homie/5/<device>/`.
struct FakeDevice {
    handle: BrokerHandle,
    base: String,
}

impl FakeDevice {
    async fn start(broker: &EmbeddedBroker, device: &str) -> Self {
        let port = broker.v311_addr().port();
        let mut settings =
            BrokerSettings::plain("fake", "127.0.0.1", port, &format!("fake-{device}"));
        settings.version = iotmc_adapter_mqtt::MqttVersion::V311;
        let handle = BrokerHandle::spawn(settings);
        let mut state = handle.state();
        timeout(
            DEADLINE,
            state.wait_for(|s| *s == ConnectionState::Connected),
        )
        .await
        .unwrap()
        .unwrap();
        Self {
            handle,
            base: format!("homie/5/{device}"),
        }
    }

    async fn retain(&self, below: &str, payload: impl Into<bytes::Bytes>) {
        let topic = format!("{}/{below}", self.base);
        self.handle
            .publish(Outgoing::new(topic, payload).retained())
            .await
            .unwrap();
    }

    async fn send(&self, below: &str, payload: impl Into<bytes::Bytes>) {
        let topic = format!("{}/{below}", self.base);
        self.handle
            .publish(Outgoing::new(topic, payload))
            .await
            .unwrap();
    }

    /// The `/set` commands the device receives.
    async fn sets(&self) -> Subscription {
        let mut sets = self
            .handle
            .subscribe(&format!("{}/+/+/set", self.base))
            .await
            .unwrap();
        timeout(DEADLINE, sets.ready()).await.unwrap().unwrap();
        sets
    }

    /// Describes itself as `description`, publishes the thermostat's values, and goes ready.
    async fn come_up(&self, description: &str) {
        self.retain("$state", "init").await;
        self.retain("$description", description.to_owned()).await;
        for (property, value) in [
            ("thermostat/temperature", "20.5"),
            ("thermostat/setpoint", "21"),
            ("thermostat/mode", "heat"),
            ("thermostat/heating", "true"),
            ("system/uptime", "60"),
            ("system/firmware", "9.9.9"),
            ("system/serial", "FAKE-1"),
        ] {
            self.retain(property, value).await;
        }
        self.retain("$state", "ready").await;
    }
}

/// The simulated thermostat's description, optionally edited.
fn description(edit: impl Fn(String) -> String) -> String {
    edit(iotmc_adapter_mqtt::sim::homie::Thermostat::new("FAKE-1").description())
}

async fn next_set(sets: &mut Subscription) -> (String, String) {
    let message = timeout(DEADLINE, sets.recv()).await.unwrap().unwrap();
    (
        message.topic.clone(),
        message.text().unwrap_or_default().to_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_the_device_cannot_take_should_be_refused_before_anything_is_sent() {
    let broker = EmbeddedBroker::start().unwrap();
    let fake = FakeDevice::start(&broker, "no-setpoint").await;
    let mut sets = fake.sets().await;
    // The device says its setpoint is not settable: the profile writes it.
    fake.come_up(&description(|d| {
        d.replace(r#""settable":true,"unit":"°C""#, r#""unit":"°C""#)
    }))
    .await;
    let link = attach(&broker, &profile("3s"), "no-setpoint").await;
    link.read(&["setpoint".to_owned()]).await.unwrap();

    let err = link
        .write(&one("setpoint", Value::Float(22.0)))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unsupported, "{err}");
    let said = err.to_string();
    assert!(
        said.contains("`setpoint`") && said.contains("`thermostat/setpoint` is not settable"),
        "{said}"
    );
    let err = link
        .write(&one("temperature", Value::Float(22.0)))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AccessDenied, "{err}");

    // The first `/set` the device ever sees is the one for a write it can take.
    let values = one("mode", Value::Text("cool".into()));
    let write = link.write(&values);
    let device = async {
        let (topic, payload) = next_set(&mut sets).await;
        assert_eq!(
            (topic.as_str(), payload.as_str()),
            ("homie/5/no-setpoint/thermostat/mode/set", "cool")
        );
        fake.retain("thermostat/mode", "cool").await;
    };
    let (written, ()) = tokio::join!(write, device);
    written.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_should_be_confirmed_by_the_target_alone() {
    let broker = EmbeddedBroker::start().unwrap();
    let fake = FakeDevice::start(&broker, "slow-valve").await;
    let mut sets = fake.sets().await;
    fake.come_up(&description(|d| d)).await;
    let link = attach(&broker, &profile("3s"), "slow-valve").await;
    let values = one("setpoint", Value::Float(24.5));
    let write = link.write(&values);
    let device = async {
        let (_, payload) = next_set(&mut sets).await;
        assert_eq!(payload, "24.5", "a Homie float, not JSON");
        fake.retain("thermostat/setpoint/$target", payload).await;
    };
    let (written, ()) = tokio::join!(write, device);
    written.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_the_device_does_not_confirm_should_time_out() {
    let broker = EmbeddedBroker::start().unwrap();
    let fake = FakeDevice::start(&broker, "deaf").await;
    fake.come_up(&description(|d| d)).await;
    let link = attach(&broker, &profile("500ms"), "deaf").await;
    let err = link
        .write(&one("setpoint", Value::Float(25.0)))
        .await
        .unwrap_err();
    assert_eq!(
        err,
        LinkError::Timeout {
            after: Duration::from_millis(500)
        }
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_lost_during_a_write_should_fail_it_at_once() {
    let broker = EmbeddedBroker::start().unwrap();
    let fake = FakeDevice::start(&broker, "flaky").await;
    let mut sets = fake.sets().await;
    fake.come_up(&description(|d| d)).await;
    // A long timeout: the failure must come from the lost state, not from waiting.
    let link = attach(&broker, &profile("60s"), "flaky").await;
    let started = tokio::time::Instant::now();
    let values = one("setpoint", Value::Float(26.0));
    let write = link.write(&values);
    let device = async {
        next_set(&mut sets).await;
        fake.retain("$state", "lost").await;
    };
    let (written, ()) = tokio::join!(write, device);
    let err = written.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Transport, "{err}");
    assert!(err.to_string().contains("went `lost`"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_payloads_should_be_ignored_and_the_link_keep_working() {
    let broker = EmbeddedBroker::start().unwrap();
    let fake = FakeDevice::start(&broker, "garbled").await;
    let good = description(|d| d);
    fake.come_up(&good).await;
    let link = attach(&broker, &profile("3s"), "garbled").await;
    let names = ["temperature", "heating", "mode"].map(str::to_owned);
    let before = link.read(&names).await.unwrap();

    fake.retain("$description", "{\"homie\": \"5.0\", \"nodes\": [")
        .await;
    let mut huge = good.clone();
    huge.insert_str(1, &format!("\"padding\": \"{}\", ", "x".repeat(70 * 1024)));
    fake.retain("$description", huge).await;
    fake.retain("$state", vec![0xff, 0x00, 0xfe]).await;
    fake.retain("$state", "rebooting").await;
    fake.send("thermostat/temperature", "NaN").await;
    fake.send("thermostat/heating", "ON").await;
    fake.send("thermostat/mode", "HEAT").await;
    fake.send("thermostat/setpoint", vec![0xc3, 0x28]).await;
    fake.send("thermostat/setpoint", "x".repeat(100 * 1024))
        .await;
    fake.send("thermostat", "no property level").await;
    fake.send("$weird/a/b/c", "x").await;
    fake.send("thermostat/setpoint/$target/extra", "x").await;
    fake.send("$log/error", vec![0xff; 10]).await;
    // Sent last by the same client: once the link has it, it has taken everything above.
    fake.send("$log/warn", "still here").await;
    let logs = link.logs().unwrap();
    let found = timeout(DEADLINE, async {
        loop {
            let batch = logs.fetch(None).await.unwrap();
            if let Some(record) = batch.records.iter().find(|r| r.message == "still here") {
                return record.clone();
            }
            // Polling a push-fed ring for a line on its way.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .unwrap();
    assert_eq!(found.severity, Severity::Warning);
    assert_eq!(found.fields["level"], "warn");
    assert_eq!(
        logs.fetch(None).await.unwrap().records.len(),
        1,
        "the line that was not UTF-8 was dropped"
    );

    assert_eq!(
        link.read(&names).await.unwrap(),
        before,
        "bad values change nothing"
    );
    let identity = link.identify().await.unwrap();
    assert_eq!(identity.firmware_version.as_deref(), Some("9.9.9"));
    fake.retain("thermostat/temperature", "21.5").await;
    let values = one("mode", Value::Text("auto".into()));
    let write = link.write(&values);
    let mut sets = fake.sets().await;
    let device = async {
        let (_, payload) = next_set(&mut sets).await;
        fake.retain("thermostat/mode", payload).await;
    };
    let (written, ()) = tokio::join!(write, device);
    written.unwrap();
    let after = link.read(&names).await.unwrap();
    assert_eq!(after["temperature"], Value::Float(21.5));
    assert_eq!(after["mode"], Value::Text("auto".into()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_lines_should_be_kept_in_order_with_their_severity_and_clear_should_empty_them() {
    let broker = EmbeddedBroker::start().unwrap();
    let device = thermostat(&broker, "logger");
    let link = attach(&broker, &profile("3s"), "logger").await;
    link.identify().await.unwrap();
    let logs = link.logs().unwrap();
    for (severity, line) in [
        (Severity::Critical, "one"),
        (Severity::Debug, "two"),
        (Severity::Notice, "three"),
    ] {
        device.append_log(severity, line);
    }
    let records = timeout(DEADLINE, async {
        loop {
            let batch = logs.fetch(None).await.unwrap();
            let ours: Vec<_> = batch
                .records
                .into_iter()
                .filter(|r| ["one", "two", "three"].contains(&r.message.as_str()))
                .collect();
            if ours.len() == 3 {
                return ours;
            }
            // Polling a push-fed ring for lines on their way.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .unwrap();
    let seen: Vec<(Severity, &str)> = records
        .iter()
        .map(|r| (r.severity, r.message.as_str()))
        .collect();
    assert_eq!(
        seen,
        [
            (Severity::Critical, "one"),
            (Severity::Debug, "two"),
            (Severity::Informational, "three")
        ]
    );
    assert!(records.windows(2).all(|w| w[0].index < w[1].index));
    logs.clear().await.unwrap();
    let after = logs.fetch(None).await.unwrap();
    assert!(after.records.is_empty());
    let cursor = records.last().and_then(|r| r.index).map(LogCursor::Index);
    assert!(logs.fetch(cursor).await.unwrap().records.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reboot_should_be_accepted_once_the_device_leaves_ready_and_it_should_come_back() {
    let broker = EmbeddedBroker::start().unwrap();
    let device = thermostat(&broker, "rebooter");
    let link = attach(&broker, &profile("3s"), "rebooter").await;
    let mut events = link.events();
    link.identify().await.unwrap();
    let outcome = link.invoke(&ActionRequest::new("reboot")).await.unwrap();
    assert_eq!(outcome, iotmc_adapter::ActionOutcome::Accepted);
    next_availability(&mut events, Availability::Offline).await;
    next_availability(&mut events, Availability::Online).await;
    let uptime = link.read(&["uptime".to_owned()]).await.unwrap();
    assert!(
        matches!(uptime["uptime"], Value::Int(s) if s < 5),
        "{uptime:?}"
    );
    drop(device);
}

/// A TCP proxy on loopback in front of the broker, whose connections can be cut.
struct Proxy {
    addr: std::net::SocketAddr,
    cut: watch::Sender<u64>,
}

impl Proxy {
    async fn start(upstream: std::net::SocketAddr) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (cut, cuts) = watch::channel(0u64);
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let mut cuts = cuts.clone();
                cuts.borrow_and_update();
                tokio::spawn(async move {
                    let Ok(mut outbound) = tokio::net::TcpStream::connect(upstream).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = cuts.changed() => {}
                    }
                });
            }
        });
        Self { addr, cut }
    }

    fn cut(&self) {
        self.cut.send_modify(|n| *n += 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_connection_lost_during_a_write_should_fail_it_at_once_and_the_link_recover() {
    let broker = EmbeddedBroker::start().unwrap();
    let proxy = Proxy::start(broker.v5_addr()).await;
    let fake = FakeDevice::start(&broker, "far-away").await;
    let mut sets = fake.sets().await;
    fake.come_up(&description(|d| d)).await;
    let adapter = MqttAdapter::new(vec![BrokerSettings::plain(
        "plant",
        "127.0.0.1",
        proxy.addr.port(),
        "gateway-far-away",
    )]);
    // A long timeout: the failure must come from the dropped connection, not from waiting.
    let profile = profile("60s");
    let link = adapter
        .attach(&DeviceBinding {
            device_id: "dut-far-away".into(),
            profile: Arc::clone(&profile),
            address: "mqtt://plant/far-away".into(),
        })
        .await
        .unwrap();
    link.identify().await.unwrap();
    let mut events = link.events();

    let values = one("setpoint", Value::Float(23.0));
    let write = link.write(&values);
    let cut = async {
        next_set(&mut sets).await;
        proxy.cut();
    };
    let (written, ()) = timeout(DEADLINE, async { tokio::join!(write, cut) })
        .await
        .expect("the write hung after the broker connection dropped");
    let err = written.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Transport, "{err}");
    assert!(err.to_string().contains("broker `plant`"), "{err}");
    next_availability(&mut events, Availability::Offline).await;

    // The driver reconnects and resubscribes; the retained state and values come again.
    next_availability(&mut events, Availability::Online).await;
    let readings = link.read(&["setpoint".to_owned()]).await.unwrap();
    assert_eq!(readings["setpoint"], Value::Float(21.0));
}

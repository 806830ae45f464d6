//! The simulated thermostat against the embedded broker, watched by a plain MQTT client.

use std::time::Duration;

use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use tokio::sync::mpsc;

use super::*;
use crate::codec::homie::decode_description;
use crate::sim::EmbeddedBroker;

/// A plain MQTT 3.1.1 client that sees everything below `homie/5/<device>/` and can publish.
struct Observer {
    client: AsyncClient,
    base: String,
    seen: mpsc::UnboundedReceiver<(String, String)>,
    _task: Pump,
}

impl Observer {
    async fn start(broker: &EmbeddedBroker, device: &str) -> Self {
        let addr = broker.v311_addr();
        let options = MqttOptions::new(
            format!("observer-{device}"),
            addr.ip().to_string(),
            addr.port(),
        );
        let (client, mut eventloop) = AsyncClient::new(options, 64);
        let base = format!("homie/5/{device}");
        client
            .subscribe(format!("{base}/#"), QoS::AtLeastOnce)
            .await
            .unwrap();
        let (tx, seen) = mpsc::unbounded_channel();
        let prefix = format!("{base}/");
        let task = tokio::spawn(async move {
            loop {
                match eventloop.poll().await {
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        let below = p.topic.strip_prefix(&prefix).unwrap_or(&p.topic).to_owned();
                        let payload = String::from_utf8_lossy(&p.payload).into_owned();
                        if tx.send((below, payload)).is_err() {
                            return;
                        }
                    }
                    Ok(_) => {}
                    Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                }
            }
        });
        Self {
            client,
            base,
            seen,
            _task: Pump(task),
        }
    }

    /// Waits (at most 10 s) for a message on `below` whose payload satisfies `wanted`.
    async fn expect(&mut self, below: &str, wanted: impl Fn(&str) -> bool) -> String {
        let wait = async {
            while let Some((topic, payload)) = self.seen.recv().await {
                if topic == below && wanted(&payload) {
                    return payload;
                }
            }
            panic!("the observer stopped");
        };
        tokio::time::timeout(Duration::from_secs(10), wait)
            .await
            .unwrap_or_else(|_| panic!("nothing matching arrived on {below} within 10 s"))
    }

    async fn set(&self, property: &str, payload: &str) {
        self.client
            .publish(
                format!("{}/{property}/set", self.base),
                QoS::AtLeastOnce,
                false,
                payload.to_owned(),
            )
            .await
            .unwrap();
    }
}

fn thermostat(broker: &EmbeddedBroker, id: &str) -> HomieThermostat {
    let mut options = ThermostatOptions::new(broker.v311_addr(), id);
    options.tick = Duration::from_millis(100);
    options.reboot_time = Duration::from_millis(200);
    HomieThermostat::with_options(options)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_thermostat_should_describe_itself_and_go_ready() {
    let broker = EmbeddedBroker::start().unwrap();
    let mut observer = Observer::start(&broker, "th-ready").await;
    let _device = thermostat(&broker, "th-ready");
    observer.expect("$state", |s| s == "init").await;
    let description = observer.expect("$description", |_| true).await;
    let description = decode_description("t", description.as_bytes()).unwrap();
    assert_eq!(description.nodes.len(), 2);
    observer.expect("thermostat/setpoint", |v| v == "21").await;
    observer
        .expect("system/firmware", |v| v == FIRMWARE_VERSION)
        .await;
    observer.expect("$state", |s| s == "ready").await;
    observer
        .expect("thermostat/temperature", |v| v == "19.1")
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_thermostat_should_take_valid_sets_and_ignore_others_with_a_warning() {
    let broker = EmbeddedBroker::start().unwrap();
    let mut observer = Observer::start(&broker, "th-set").await;
    let device = thermostat(&broker, "th-set");
    observer.expect("$state", |s| s == "ready").await;
    observer.set("thermostat/setpoint", "22.3").await;
    observer
        .expect("thermostat/setpoint", |v| v == "22.5")
        .await;
    observer.set("thermostat/setpoint", "31").await;
    let warning = observer.expect("$log/warn", |_| true).await;
    assert!(warning.contains("outside"), "{warning}");
    assert_eq!(device.snapshot().setpoint, 22.5);
    observer.set("thermostat/mode", "cool").await;
    observer.expect("thermostat/mode", |v| v == "cool").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unresponsive_thermostat_should_be_lost_by_its_will_and_come_back_ready() {
    let broker = EmbeddedBroker::start().unwrap();
    let mut observer = Observer::start(&broker, "th-lost").await;
    let device = thermostat(&broker, "th-lost");
    observer.expect("$state", |s| s == "ready").await;
    device.set_unresponsive(true);
    observer.expect("$state", |s| s == "lost").await;
    device.append_log(Severity::Error, "logged while away");
    device.set_unresponsive(false);
    observer.expect("$state", |s| s == "init").await;
    observer.expect("$state", |s| s == "ready").await;
    observer
        .expect("$log/error", |line| line == "logged while away")
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reboot_should_disconnect_cleanly_and_restart_the_uptime() {
    let broker = EmbeddedBroker::start().unwrap();
    let mut observer = Observer::start(&broker, "th-reboot").await;
    let device = thermostat(&broker, "th-reboot");
    observer.expect("$state", |s| s == "ready").await;
    observer.expect("system/uptime", |v| v == "3").await;
    observer.set("system/reboot", "true").await;
    observer.expect("$state", |s| s == "disconnected").await;
    observer.expect("$state", |s| s == "ready").await;
    assert!(device.snapshot().uptime < 3);
    // A clean disconnect discards the will: no `lost` follows.
    device.append_log(Severity::Debug, "after reboot");
    let seen_lost = async {
        loop {
            let (topic, payload) = observer.seen.recv().await.unwrap();
            if topic == "$state" && payload == "lost" {
                return true;
            }
            if topic == "$log/debug" && payload == "after reboot" {
                return false;
            }
        }
    };
    assert!(
        !tokio::time::timeout(Duration::from_secs(10), seen_lost)
            .await
            .unwrap()
    );
}

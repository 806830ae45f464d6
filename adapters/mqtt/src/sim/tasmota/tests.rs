//! The simulated plug against the embedded broker, watched by a plain MQTT client.

use std::time::Duration;

use bytes::Bytes;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use tokio::sync::mpsc;

use super::{PlugOptions, TasmotaPlug};
use crate::sim::EmbeddedBroker;
use crate::sim::http::ImageServer;
use iotmc_adapter::Severity;
use iotmc_adapter::testkit::SimulatedDevice;

const WAIT: Duration = Duration::from_secs(10);

/// A client that sees everything the plug publishes and can send it commands.
struct Observer {
    client: AsyncClient,
    messages: mpsc::UnboundedReceiver<(String, Bytes, bool)>,
    topic: String,
}

impl Observer {
    async fn start(broker: &EmbeddedBroker, topic: &str) -> Self {
        Self::watching(
            broker,
            topic,
            &[format!("stat/{topic}/#"), format!("tele/{topic}/#")],
        )
        .await
    }

    async fn watching(broker: &EmbeddedBroker, topic: &str, filters: &[String]) -> Self {
        let addr = broker.v311_addr();
        // A client id of its own: a second connection with the same id would take the
        // session over.
        let id = format!("observer-{topic}-{:08x}", rand::random::<u32>());
        let mut options = MqttOptions::new(id, addr.ip().to_string(), addr.port());
        options.set_keep_alive(Duration::from_secs(30));
        let (client, mut eventloop) = AsyncClient::new(options, 64);
        let (tx, messages) = mpsc::unbounded_channel();
        let (ready_tx, ready) = tokio::sync::oneshot::channel();
        let mut ready_tx = Some(ready_tx);
        tokio::spawn(async move {
            loop {
                match eventloop.poll().await {
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        let _ = tx.send((p.topic.clone(), p.payload.clone(), p.retain));
                    }
                    Ok(Event::Incoming(Packet::SubAck(_))) => {
                        if let Some(r) = ready_tx.take() {
                            let _ = r.send(());
                        }
                    }
                    Ok(_) => {}
                    Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                }
            }
        });
        client
            .subscribe_many(
                filters
                    .iter()
                    .map(|f| rumqttc::SubscribeFilter::new(f.clone(), QoS::AtLeastOnce)),
            )
            .await
            .unwrap();
        tokio::time::timeout(WAIT, ready).await.unwrap().unwrap();
        Self {
            client,
            messages,
            topic: topic.to_owned(),
        }
    }

    async fn command(&self, command: &str, payload: &str) {
        self.client
            .publish(
                format!("cmnd/{}/{command}", self.topic),
                QoS::AtLeastOnce,
                false,
                payload,
            )
            .await
            .unwrap();
    }

    /// The next message on `stat|tele/<topic>/<suffix>` whose payload contains `text`.
    async fn expect(&mut self, suffix: &str, text: &str) -> (String, bool) {
        let wanted = [
            format!("stat/{}/{suffix}", self.topic),
            format!("tele/{}/{suffix}", self.topic),
        ];
        let found = async {
            loop {
                let (topic, payload, retain) =
                    self.messages.recv().await.expect("observer stopped");
                let payload = String::from_utf8_lossy(&payload).into_owned();
                if wanted.contains(&topic) && payload.contains(text) {
                    return (payload, retain);
                }
            }
        };
        tokio::time::timeout(WAIT, found).await.unwrap_or_else(|_| {
            panic!("no message on {suffix} containing {text:?} within {WAIT:?}")
        })
    }
}

fn image(version: &str) -> Bytes {
    let mut bytes = format!("SIMFW:{version}\n").into_bytes();
    bytes.extend((0..3000u32).map(|i| (i % 251) as u8));
    bytes.into()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plug_should_announce_itself_and_answer_like_tasmota() {
    let broker = EmbeddedBroker::start().unwrap();
    let plug = TasmotaPlug::start(broker.v311_addr(), PlugOptions::new("sim_a"));
    let mut observer = Observer::start(&broker, "sim_a").await;
    assert!(plug.wait_online(WAIT).await);
    observer.expect("LWT", "Online").await;
    // Whoever subscribes later gets it from the broker's retained store.
    let mut late = Observer::watching(&broker, "sim_a", &["tele/sim_a/LWT".to_owned()]).await;
    let (_, retained) = late.expect("LWT", "Online").await;
    assert!(retained, "the LWT must be retained");
    observer.command("Power1", "OFF").await;
    observer.expect("RESULT", r#"{"POWER":"OFF"}"#).await;
    assert!(!plug.power());
    observer.command("Status0", "").await;
    observer
        .expect("STATUS0", r#""Version":"13.1.0(tasmota)""#)
        .await;
    observer.command("Frobnicate", "1").await;
    observer.expect("RESULT", r#"{"Command":"Unknown"}"#).await;
    observer.expect("SENSOR", r#""ENERGY""#).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plug_should_go_offline_and_come_back_on_restart() {
    let broker = EmbeddedBroker::start().unwrap();
    let plug = TasmotaPlug::start(broker.v311_addr(), PlugOptions::new("sim_b"));
    let mut observer = Observer::start(&broker, "sim_b").await;
    observer.expect("LWT", "Online").await;
    let boots = plug.boot_count();
    observer.command("Restart", "1").await;
    observer
        .expect("RESULT", r#"{"Restart":"Restarting"}"#)
        .await;
    observer.expect("LWT", "Offline").await;
    observer.expect("LWT", "Online").await;
    assert_eq!(plug.boot_count(), boots + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_should_publish_the_will_when_the_power_is_cut() {
    let broker = EmbeddedBroker::start().unwrap();
    let plug = TasmotaPlug::start(broker.v311_addr(), PlugOptions::new("sim_c"));
    let mut observer = Observer::start(&broker, "sim_c").await;
    observer.expect("LWT", "Online").await;
    plug.cut_power(Duration::from_millis(300));
    observer.expect("LWT", "Offline").await;
    observer.expect("LWT", "Online").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plug_should_install_a_good_image_and_refuse_a_bad_one() {
    let broker = EmbeddedBroker::start().unwrap();
    let server = ImageServer::start().await.unwrap();
    let plug = TasmotaPlug::start(broker.v311_addr(), PlugOptions::new("sim_d"));
    let mut observer = Observer::start(&broker, "sim_d").await;
    observer.expect("LWT", "Online").await;

    let bad = server.offer(Bytes::from_static(b"\xe9not a simulated image"));
    observer.command("OtaUrl", &bad).await;
    observer.expect("RESULT", &bad).await;
    observer.command("Upgrade", "1").await;
    observer.expect("RESULT", "Version 13.1.0 from").await;
    observer
        .expect("UPGRADE", "Failed Verify Bin Header Failed")
        .await;
    assert_eq!(plug.firmware_version(), "13.1.0");

    let good = server.offer(image("13.2.0"));
    observer.command("OtaUrl", &good).await;
    observer.command("Upgrade", "1").await;
    observer.expect("UPGRADE", "Successful. Restarting").await;
    observer.expect("LWT", "Offline").await;
    observer.expect("LWT", "Online").await;
    assert_eq!(plug.firmware_version(), "13.2.0");
    observer.command("Upgrade", "1").await;
    observer
        .expect("UPGRADE", "Failed File Not Found (404)")
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_1_should_lose_the_plug_and_reset_6_should_keep_it() {
    let broker = EmbeddedBroker::start().unwrap();
    let plug = TasmotaPlug::start(broker.v311_addr(), PlugOptions::new("sim_e"));
    let mut observer = Observer::start(&broker, "sim_e").await;
    observer.expect("LWT", "Online").await;
    observer.command("TelePeriod", "60").await;
    observer.expect("RESULT", r#"{"TelePeriod":60}"#).await;
    observer.command("Reset", "6").await;
    observer
        .expect("RESULT", "Erase, Reset and Restarting")
        .await;
    observer.expect("LWT", "Online").await;
    assert_eq!(
        plug.tele_period(),
        300,
        "Reset 6 returns settings to defaults"
    );
    observer.command("Reset", "1").await;
    observer.expect("LWT", "Offline").await;
    tokio::time::timeout(WAIT, async {
        while !plug.is_gone() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_lines_should_follow_the_mqttlog_level() {
    let broker = EmbeddedBroker::start().unwrap();
    let plug = TasmotaPlug::start(broker.v311_addr(), PlugOptions::new("sim_f"));
    let mut observer = Observer::start(&broker, "sim_f").await;
    observer.expect("LWT", "Online").await;
    observer.command("MqttLog", "1").await;
    observer.expect("RESULT", r#"{"MqttLog":1}"#).await;
    plug.append_log(Severity::Informational, "below the level");
    plug.append_log(Severity::Error, "at the level");
    let (line, _) = observer.expect("LOGGING", "APP:").await;
    assert!(line.ends_with("APP: at the level"), "{line}");
}

//! The plug's life on the broker: connect with its LWT as will, announce itself, answer
//! commands, send telemetry, restart, upgrade, and vanish for good after a reset that forgot
//! its settings. MQTT 3.1.1 over rumqttc v4, as Tasmota's PubSubClient speaks it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};

use rumqttc::{AsyncClient, Event, LastWill, MqttOptions, Outgoing, Packet, QoS};
use tokio::sync::mpsc;
use tokio::time::{MissedTickBehavior, interval_at};

use super::plug::{Effect, Settings, log_time};
use super::{Control, PlugOptions, Shared, ota};
use crate::codec::tasmota::{Prefix, Topics};

/// Why a session ended.
enum Down {
    /// The plug restarts and comes back after the restart delay.
    Restart(&'static str),
    /// Power is cut for this long; the broker publishes the will.
    PowerCut(Duration),
    /// The plug forgot its Wi-Fi or broker: it never comes back.
    Gone,
    /// The simulator was dropped.
    Closed,
}

/// Runs the plug until its handle is dropped.
pub(super) async fn run(
    broker: SocketAddr,
    options: PlugOptions,
    shared: Arc<Shared>,
    mut control: mpsc::UnboundedReceiver<Control>,
) {
    let topics = Topics::new("%prefix%/%topic%/", &options.topic);
    loop {
        match session(broker, &options, &topics, &shared, &mut control).await {
            Down::Restart(reason) => {
                tokio::time::sleep(options.restart_delay).await;
                shared.plug().boot(reason);
            }
            Down::PowerCut(off) => {
                tokio::time::sleep(off).await;
                shared.plug().boot("Power On");
            }
            Down::Gone => {
                shared.gone.store(true, Ordering::SeqCst);
                // Still obey the handle, but never connect again.
                while control.recv().await.is_some() {}
                return;
            }
            Down::Closed => return,
        }
    }
}

async fn session(
    broker: SocketAddr,
    options: &PlugOptions,
    topics: &Topics,
    shared: &Arc<Shared>,
    control: &mut mpsc::UnboundedReceiver<Control>,
) -> Down {
    let lwt = topics.topic(Prefix::Tele, "LWT");
    let mut mqtt = MqttOptions::new(options.client_id(), broker.ip().to_string(), broker.port());
    mqtt.set_keep_alive(Duration::from_secs(30));
    mqtt.set_clean_session(true);
    // Room for what a test injects (a 70 KB payload); Tasmota itself stays under 1.2 KB.
    mqtt.set_max_packet_size(512 * 1024, 512 * 1024);
    mqtt.set_last_will(LastWill::new(&lwt, "Offline", QoS::AtMostOnce, true));
    let (client, mut eventloop) = AsyncClient::new(mqtt, 512);
    // A device answers at once; Nagle would hold each answer for the broker's delayed ACK.
    eventloop.network_options.set_tcp_nodelay(true);
    let device = Device {
        client: &client,
        topics,
        shared,
    };
    let (upgrades_tx, mut upgrades) = mpsc::unbounded_channel();
    let start = tokio::time::Instant::now() + options.tele_interval;
    let mut tele = interval_at(start, options.tele_interval);
    tele.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut last_tele = tokio::time::Instant::now();
    loop {
        tokio::select! {
            event = eventloop.poll() => match event {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    shared.online.send_replace(true);
                    if let Err(e) = client.try_subscribe(topics.topic(Prefix::Cmnd, "#"), QoS::AtMostOnce) {
                        tracing::warn!(error = %e, "simulated plug could not subscribe");
                    }
                    let effects = shared.plug().on_connect();
                    device.apply(effects, &upgrades_tx);
                }
                Ok(Event::Incoming(Packet::Publish(publish))) => {
                    let Some((Prefix::Cmnd, command)) = topics.classify(&publish.topic) else {
                        continue;
                    };
                    shared.received.send_modify(|n| *n += 1);
                    if shared.unresponsive.load(Ordering::SeqCst) {
                        continue;
                    }
                    let payload = String::from_utf8_lossy(&publish.payload).into_owned();
                    let effects = shared.plug().command(command, &payload);
                    if let Some(down) = device.apply(effects, &upgrades_tx) {
                        return device.go_down(down, &lwt, &mut eventloop).await;
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    shared.online.send_replace(false);
                    tracing::debug!(error = %e, "simulated plug lost the broker; reconnecting");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            },
            _ = tele.tick() => {
                let now = tokio::time::Instant::now();
                let step = (rand::random::<f64>() - 0.5) * 6.0;
                let effects = {
                    let mut plug = shared.plug();
                    plug.drift(now - last_tele, step);
                    if plug.settings.tele_period == 0 {
                        Vec::new()
                    } else {
                        vec![
                            tele_effect("STATE", plug.state().to_string()),
                            tele_effect("SENSOR", plug.sensor(true).to_string()),
                        ]
                    }
                };
                last_tele = now;
                device.apply(effects, &upgrades_tx);
            }
            message = control.recv() => {
                let effects = match message {
                    None => {
                        let _ = client.try_disconnect();
                        return Down::Closed;
                    }
                    Some(Control::Log { level, text }) => vec![Effect::Log { level, text }],
                    Some(Control::Button) => {
                        let mut plug = shared.plug();
                        plug.power = !plug.power;
                        plug.power_report()
                    }
                    Some(Control::Inject { suffix, prefix, payload, retain }) => {
                        device.publish_raw(&topics.topic(prefix, &suffix), payload, retain);
                        Vec::new()
                    }
                    Some(Control::PowerCut(off)) => {
                        shared.online.send_replace(false);
                        // Dropping the connection without DISCONNECT: the broker publishes the will.
                        return Down::PowerCut(off);
                    }
                };
                device.apply(effects, &upgrades_tx);
            }
            Some(outcome) = upgrades.recv() => {
                let effects = upgrade_outcome(shared, outcome);
                if let Some(down) = device.apply(effects, &upgrades_tx) {
                    return device.go_down(down, &lwt, &mut eventloop).await;
                }
            }
        }
    }
}

fn tele_effect(suffix: &str, payload: String) -> Effect {
    Effect::Publish {
        prefix: Prefix::Tele,
        suffix: suffix.to_owned(),
        payload,
        retain: false,
    }
}

/// What the plug does when its download ended: install and restart, or report why not.
fn upgrade_outcome(shared: &Shared, outcome: Result<String, String>) -> Vec<Effect> {
    let report = |text: String| Effect::Publish {
        prefix: Prefix::Stat,
        suffix: "UPGRADE".into(),
        payload: serde_json::json!({ "Upgrade": text }).to_string(),
        retain: false,
    };
    match outcome {
        Ok(version) => {
            shared.plug().version = version;
            vec![
                Effect::Log {
                    level: 2,
                    text: "UPL: Successful. Restarting".into(),
                },
                report("Successful. Restarting".into()),
                Effect::Restart,
            ]
        }
        Err(why) => vec![
            Effect::Log {
                level: 1,
                text: format!("UPL: Upload error: {why}"),
            },
            report(format!("Failed {why}")),
        ],
    }
}

/// The plug's side of one connection.
struct Device<'a> {
    client: &'a AsyncClient,
    topics: &'a Topics,
    shared: &'a Arc<Shared>,
}

impl Device<'_> {
    /// Carries out effects; returns how the session ends if one of them ends it.
    fn apply(
        &self,
        effects: Vec<Effect>,
        upgrades: &mpsc::UnboundedSender<Result<String, String>>,
    ) -> Option<Down> {
        for effect in effects {
            match effect {
                Effect::Publish {
                    prefix,
                    suffix,
                    payload,
                    retain,
                } => {
                    let topic = self.topics.topic(prefix, &suffix);
                    let retained = if retain { " (retained)" } else { "" };
                    self.log(2, &format!("MQT: {topic} = {payload}{retained}"));
                    self.publish_raw(&topic, payload.into_bytes(), retain);
                }
                Effect::Log { level, text } => self.log(level, &text),
                Effect::Restart => {
                    self.log(2, "APP: Restarting");
                    return Some(Down::Restart("Software/System restart"));
                }
                Effect::Reset { level } => {
                    let mut plug = self.shared.plug();
                    plug.settings = Settings {
                        device_name: Settings::default().device_name,
                        ..Settings::default()
                    };
                    drop(plug);
                    self.log(2, "APP: Restarting");
                    // Only Reset 6 keeps the MQTT host, port, user, password and topic (and the
                    // Wi-Fi); with any other level the plug comes back as an access point.
                    return Some(if level == 6 {
                        Down::Restart("Software/System restart")
                    } else {
                        Down::Gone
                    });
                }
                Effect::Upgrade { url } => {
                    let (mac, version) = {
                        let plug = self.shared.plug();
                        (plug.mac.clone(), plug.full_version())
                    };
                    self.log(3, &format!("UPL: {url} {version}"));
                    let upgrades = upgrades.clone();
                    tokio::spawn(async move {
                        let _ = upgrades.send(ota::download(&url, &mac).await);
                    });
                }
            }
        }
        None
    }

    /// A log line, published on `stat/<topic>/LOGGING` if MqttLog lets it through.
    fn log(&self, level: u8, text: &str) {
        if level > self.shared.plug().settings.mqtt_log_level {
            return;
        }
        let line = format!("{} {text}", log_time(SystemTime::now()));
        let topic = self.topics.topic(Prefix::Stat, "LOGGING");
        self.publish_raw(&topic, line.into_bytes(), false);
    }

    fn publish_raw(&self, topic: &str, payload: Vec<u8>, retain: bool) {
        if let Err(e) = self
            .client
            .try_publish(topic, QoS::AtMostOnce, retain, payload)
        {
            tracing::warn!(error = %e, topic, "simulated plug dropped a message");
        }
    }

    /// Ends the session: the LWT says Offline (as the broker would from the will when the
    /// plug drops off), then a clean disconnect.
    async fn go_down(&self, down: Down, lwt: &str, eventloop: &mut rumqttc::EventLoop) -> Down {
        self.shared.online.send_replace(false);
        self.publish_raw(lwt, b"Offline".to_vec(), true);
        let _ = self.client.try_disconnect();
        let flush = async {
            loop {
                match eventloop.poll().await {
                    Ok(Event::Outgoing(Outgoing::Disconnect)) | Err(_) => return,
                    Ok(_) => {}
                }
            }
        };
        let _ = tokio::time::timeout(Duration::from_secs(2), flush).await;
        down
    }
}

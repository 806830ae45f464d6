//! A simulated Homie 5 thermostat that runs against a broker the way a real device does, over
//! MQTT 3.1.1 (as ESP-class Homie devices commonly connect) with rumqttc.
//!
//! On every connection it sets its will to a retained `$state` `lost`, then publishes
//! `$state` `init`, its `$description`, subscribes to its settable properties' `/set` topics,
//! publishes every retained value and `$state` `ready`. The room temperature drifts once per
//! tick; setpoint and mode take `/set` with validation (an out-of-range or malformed value is
//! ignored and logged at `warn`, the value unchanged); `system/reboot` set to `true` restarts
//! it: `$state` `disconnected`, a clean disconnect, and back after the reboot time.
//!
//! As a [`SimulatedDevice`]: `set_unresponsive(true)` drops the connection without DISCONNECT,
//! so the broker publishes the will (`lost`); `false` reconnects and goes `ready` again.
//! `append_log` publishes the line on `$log/<level>` (buffered while disconnected, as a device
//! would).

mod thermostat;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use iotmc_adapter::Severity;
use iotmc_adapter::testkit::SimulatedDevice;
use rumqttc::{AsyncClient, Event, EventLoop, LastWill, MqttOptions, Outgoing, Packet, QoS};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;

pub use thermostat::{FIRMWARE_VERSION, MODES, Thermostat};
use thermostat::{SETTABLE, SetOutcome};

use crate::codec::homie::log_level;

/// Log lines kept while disconnected.
const LOG_BUFFER: usize = 64;

/// How the thermostat is set up.
#[derive(Debug, Clone)]
pub struct ThermostatOptions {
    /// The broker's MQTT 3.1.1 listener.
    pub broker: SocketAddr,
    /// The Homie device ID (lowercase a-z, 0-9 and `-`).
    pub device_id: String,
    /// The Homie domain (default `homie`).
    pub domain: String,
    /// Time between temperature updates (default 1 s).
    pub tick: Duration,
    /// How long a reboot keeps it away (default 1 s).
    pub reboot_time: Duration,
    /// Its serial number.
    pub serial: String,
}

impl ThermostatOptions {
    /// The defaults for a thermostat `device_id` on the broker at `broker` (MQTT 3.1.1).
    pub fn new(broker: SocketAddr, device_id: &str) -> Self {
        Self {
            broker,
            device_id: device_id.to_owned(),
            domain: "homie".to_owned(),
            tick: Duration::from_secs(1),
            reboot_time: Duration::from_secs(1),
            serial: format!("TH-{device_id}"),
        }
    }
}

#[derive(Debug)]
enum Control {
    Unresponsive(bool),
    Log(Severity, String),
}

/// A running simulated thermostat; it stops when dropped.
#[derive(Debug)]
pub struct HomieThermostat {
    device_id: String,
    model: Arc<RwLock<Thermostat>>,
    control: mpsc::UnboundedSender<Control>,
    task: JoinHandle<()>,
}

impl HomieThermostat {
    /// Starts a thermostat with the default options (inside a tokio runtime).
    pub fn start(broker: SocketAddr, device_id: &str) -> Self {
        Self::with_options(ThermostatOptions::new(broker, device_id))
    }

    /// Starts a thermostat (inside a tokio runtime). It connects at once and keeps
    /// reconnecting while the broker is away.
    pub fn with_options(options: ThermostatOptions) -> Self {
        let model = Arc::new(RwLock::new(Thermostat::new(&options.serial)));
        let (control, commands) = mpsc::unbounded_channel();
        let device_id = options.device_id.clone();
        let task = tokio::spawn(run(options, Arc::clone(&model), commands));
        Self {
            device_id,
            model,
            control,
            task,
        }
    }

    /// The Homie device ID.
    pub fn device_id(&self) -> &str {
        &self.device_id
    }

    /// The thermostat's state now.
    pub fn snapshot(&self) -> Thermostat {
        self.model
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl Drop for HomieThermostat {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl SimulatedDevice for HomieThermostat {
    fn set_unresponsive(&self, unresponsive: bool) {
        let _ = self.control.send(Control::Unresponsive(unresponsive));
    }

    fn append_log(&self, severity: Severity, message: &str) {
        let _ = self
            .control
            .send(Control::Log(severity, message.to_owned()));
    }
}

/// Why a session ended.
enum End {
    Unresponsive,
    Reboot,
    Stopped,
}

async fn run(
    options: ThermostatOptions,
    model: Arc<RwLock<Thermostat>>,
    mut control: mpsc::UnboundedReceiver<Control>,
) {
    let mut logs = VecDeque::new();
    let mut unresponsive = false;
    loop {
        if unresponsive {
            match control.recv().await {
                Some(Control::Unresponsive(u)) => unresponsive = u,
                Some(Control::Log(severity, line)) => buffer(&mut logs, severity, line),
                None => return,
            }
            continue;
        }
        match session(&options, &model, &mut control, &mut logs).await {
            End::Unresponsive => unresponsive = true,
            End::Stopped => return,
            End::Reboot => {
                // Powered down for the reboot time; the test may still talk to it meanwhile.
                let off = tokio::time::sleep(options.reboot_time);
                tokio::pin!(off);
                loop {
                    tokio::select! {
                        () = &mut off => break,
                        command = control.recv() => match command {
                            Some(Control::Unresponsive(u)) => unresponsive = u,
                            Some(Control::Log(severity, line)) => buffer(&mut logs, severity, line),
                            None => return,
                        },
                    }
                }
                let mut model = model.write().unwrap_or_else(PoisonError::into_inner);
                model.uptime = 0;
                model.heating = false;
            }
        }
    }
}

fn buffer(logs: &mut VecDeque<(Severity, String)>, severity: Severity, line: String) {
    if logs.len() == LOG_BUFFER {
        logs.pop_front();
    }
    logs.push_back((severity, line));
}

/// What the connection task saw.
enum Link {
    Connected,
    Set(String, String),
    Closed,
}

/// One connection, from CONNECT to its end.
async fn session(
    options: &ThermostatOptions,
    model: &Arc<RwLock<Thermostat>>,
    control: &mut mpsc::UnboundedReceiver<Control>,
    logs: &mut VecDeque<(Severity, String)>,
) -> End {
    let base = format!("{}/5/{}", options.domain, options.device_id);
    let mut mqtt = MqttOptions::new(
        format!("homie-sim-{}", options.device_id),
        options.broker.ip().to_string(),
        options.broker.port(),
    );
    mqtt.set_keep_alive(Duration::from_secs(5))
        .set_clean_session(true)
        .set_last_will(LastWill::new(
            format!("{base}/$state"),
            "lost",
            QoS::AtLeastOnce,
            true,
        ));
    let (client, mut eventloop) = AsyncClient::new(mqtt, 256);
    // A device answers at once; Nagle would hold each answer for the broker's delayed ACK.
    eventloop.network_options.set_tcp_nodelay(true);
    let (links, mut link) = mpsc::channel(64);
    let pump = Pump(tokio::spawn(pump(eventloop, links)));
    let device = Device {
        client,
        base,
        model: Arc::clone(model),
    };
    let mut ticker = tokio::time::interval(options.tick);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    ticker.tick().await;
    let mut ready = false;
    loop {
        tokio::select! {
            event = link.recv() => match event {
                Some(Link::Connected) => {
                    device.announce().await;
                    ready = true;
                    while let Some((severity, line)) = logs.pop_front() {
                        device.log(severity, &line).await;
                    }
                }
                Some(Link::Set(topic, payload)) => {
                    if device.take_set(&topic, &payload).await {
                        device.restart(&mut link).await;
                        return End::Reboot;
                    }
                }
                Some(Link::Closed) | None => return End::Stopped,
            },
            _ = ticker.tick(), if ready => {
                let changed = device.model().tick(options.tick);
                for (property, payload) in changed {
                    device.publish(property, payload, true).await;
                }
            }
            command = control.recv() => match command {
                Some(Control::Unresponsive(true)) => {
                    // Dropping the event loop closes the socket without DISCONNECT: the broker
                    // publishes the will.
                    drop(pump);
                    return End::Unresponsive;
                }
                Some(Control::Unresponsive(false)) => {}
                Some(Control::Log(severity, line)) if ready => device.log(severity, &line).await,
                Some(Control::Log(severity, line)) => buffer(logs, severity, line),
                None => return End::Stopped,
            },
        }
    }
}

/// The connection task: polls the event loop, reconnecting after errors, and passes on what
/// the device acts on.
async fn pump(mut eventloop: EventLoop, link: mpsc::Sender<Link>) {
    loop {
        let seen = match eventloop.poll().await {
            Ok(Event::Incoming(Packet::ConnAck(_))) => Link::Connected,
            Ok(Event::Incoming(Packet::Publish(publish))) => Link::Set(
                publish.topic.clone(),
                String::from_utf8_lossy(&publish.payload).into_owned(),
            ),
            Ok(Event::Outgoing(Outgoing::Disconnect)) => {
                let _ = link.send(Link::Closed).await;
                return;
            }
            Ok(_) => continue,
            Err(e) => {
                tracing::debug!(error = %e, "simulated Homie thermostat: connection failed; retrying");
                // A device's reconnect delay, not synchronisation.
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        if link.send(seen).await.is_err() {
            return;
        }
    }
}

/// Aborts the connection task when dropped.
struct Pump(JoinHandle<()>);

impl Drop for Pump {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The device side of one connection.
struct Device {
    client: AsyncClient,
    base: String,
    model: Arc<RwLock<Thermostat>>,
}

impl Device {
    fn model(&self) -> std::sync::RwLockWriteGuard<'_, Thermostat> {
        self.model.write().unwrap_or_else(PoisonError::into_inner)
    }

    async fn publish(&self, below: &str, payload: String, retain: bool) {
        let topic = format!("{}/{below}", self.base);
        if let Err(e) = self
            .client
            .publish(topic, QoS::AtLeastOnce, retain, payload)
            .await
        {
            tracing::debug!(error = %e, "simulated Homie thermostat: publish dropped");
        }
    }

    async fn log(&self, severity: Severity, line: &str) {
        let below = format!("$log/{}", log_level(severity));
        self.publish(&below, line.to_owned(), false).await;
    }

    /// `init`, description, subscriptions, values, `ready`.
    async fn announce(&self) {
        let (description, values) = {
            let model = self.model();
            (model.description(), model.retained())
        };
        self.publish("$state", "init".to_owned(), true).await;
        self.publish("$description", description, true).await;
        for property in SETTABLE {
            let topic = format!("{}/{property}/set", self.base);
            if let Err(e) = self.client.subscribe(topic, QoS::AtLeastOnce).await {
                tracing::debug!(error = %e, "simulated Homie thermostat: subscribe dropped");
            }
        }
        for (property, payload) in values {
            self.publish(property, payload, true).await;
        }
        self.publish("$state", "ready".to_owned(), true).await;
        self.log(
            Severity::Informational,
            &format!("started, firmware {FIRMWARE_VERSION}"),
        )
        .await;
    }

    /// Takes a `/set`; true when it asks for a reboot.
    async fn take_set(&self, topic: &str, payload: &str) -> bool {
        let Some(property) = topic
            .strip_prefix(self.base.as_str())
            .and_then(|rest| rest.strip_prefix('/'))
            .and_then(|rest| rest.strip_suffix("/set"))
        else {
            return false;
        };
        let outcome = self.model().set(property, payload);
        match outcome {
            SetOutcome::Publish(values) => {
                for (property, payload) in values {
                    self.publish(property, payload, true).await;
                }
                false
            }
            SetOutcome::Ignored(line) => {
                self.log(Severity::Warning, &line).await;
                false
            }
            SetOutcome::Reboot => true,
        }
    }

    /// Announces the restart and disconnects cleanly (the broker then drops the will).
    async fn restart(&self, link: &mut mpsc::Receiver<Link>) {
        self.log(Severity::Notice, "rebooting on request").await;
        self.publish("$state", "disconnected".to_owned(), true)
            .await;
        if self.client.disconnect().await.is_ok() {
            // Bounded: the connection task reports the DISCONNECT once it is written.
            let closed = async {
                while let Some(event) = link.recv().await {
                    if matches!(event, Link::Closed) {
                        return;
                    }
                }
            };
            let _ = tokio::time::timeout(Duration::from_secs(5), closed).await;
        }
    }
}

#[cfg(test)]
mod tests;

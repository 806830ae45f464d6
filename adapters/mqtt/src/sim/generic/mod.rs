//! A simulated generic MQTT 5 device: the iotmc AHU-5 air-handling unit controller that
//! `device-profiles/mqtt/iotmc-mqtt5-controller.toml` describes. It speaks MQTT 5 through
//! rumqttc directly (not the gateway's driver), as a real device would:
//!
//! - `iotmc/ahu/<device>/status`: retained `online` after every boot, `offline` before a
//!   restart and as its will;
//! - `iotmc/ahu/<device>/state`: the JSON state, pushed every state interval (measurements
//!   drift) and after every change;
//! - `iotmc/ahu/<device>/rpc`, `.../firmware`, `.../log`: requests, answered on the request's
//!   response topic with its correlation data (a request without a response topic is ignored).
//!
//! Firmware has two banks; images must start with `SIMFW:<version>\n` or their test boot fails
//! and the device keeps the running image; an unconfirmed test image reverts after the confirm
//! window. An image whose header is `SIMFW:<version>;unhealthy\n` boots and reports its
//! version, but while it runs the device reports a `filter_pressure` of 400 Pa, outside the
//! shipped profile's health range (at most 250), so the gateway's probation fails it. Faults for tests: [`GenericDevice::set_unresponsive`](SimulatedDevice), the next
//! answer an error ([`GenericDevice::fail_next`]) or raw bytes ([`GenericDevice::answer_next_with`]),
//! firmware busy, a corrupted chunk.
//!
//! Started with [`GenericDevice::start_with_identity`], it has a certificate and key of its
//! own and answers the identity proof request (`{"op": "prove", ...}` on `.../rpc`, see
//! [`SimIdentity`]); [`GenericDevice::fault_next_proof`] spoils the next proof.

mod firmware;
mod identity;
mod model;

use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use bytes::Bytes;
use iotmc_adapter::Severity;
use iotmc_adapter::testkit::SimulatedDevice;
use rumqttc::Outgoing as Sent;
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::mqttbytes::v5::{LastWill, Packet, Publish, PublishProperties};
use rumqttc::v5::{AsyncClient, Event, MqttOptions};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use firmware::After;
pub use identity::{ProofFault, SimIdentity, SimKey};
use model::{Endpoint, Model};

/// How long the simulated device takes for things.
#[derive(Debug, Clone, Copy)]
pub struct SimTiming {
    /// From the restart request to being online again (default 300 ms).
    pub reboot: Duration,
    /// How long a test image may run unconfirmed before the device reverts (default 60 s).
    /// May be long (minutes, hours) so that the gateway's probation, not the device, decides;
    /// a window past the clock's range (`Duration::MAX`) never runs out.
    pub confirm_window: Duration,
    /// Time between state pushes (default 1 s).
    pub state_interval: Duration,
}

impl Default for SimTiming {
    fn default() -> Self {
        Self {
            reboot: Duration::from_millis(300),
            confirm_window: Duration::from_secs(60),
            state_interval: Duration::from_secs(1),
        }
    }
}

/// How long [`GenericDevice::start`] waits for the device to be online.
const START_DEADLINE: Duration = Duration::from_secs(10);

/// The firmware version a new simulated device runs.
pub const INITIAL_VERSION: &str = "1.0.0";

/// Largest image the simulated device takes (the shipped profile's `max_image_size`).
pub const MAX_IMAGE_SIZE: u64 = 1024 * 1024;

#[derive(Debug)]
struct Shared {
    model: RwLock<Model>,
    online: watch::Sender<bool>,
}

impl Shared {
    fn model(&self) -> std::sync::RwLockWriteGuard<'_, Model> {
        self.model.write().unwrap_or_else(PoisonError::into_inner)
    }
}

#[derive(Debug, Clone, Copy)]
enum Command {
    /// Lose the connection without a word (the broker publishes the will).
    Drop,
}

/// A running simulated AHU-5 controller. Stops when dropped.
#[derive(Debug)]
pub struct GenericDevice {
    device: String,
    shared: Arc<Shared>,
    commands: mpsc::UnboundedSender<Command>,
    task: JoinHandle<()>,
}

impl Drop for GenericDevice {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl GenericDevice {
    /// Starts a device named `device` (the `{device}` of its topics) on the MQTT 5 broker at
    /// `broker`, with the default timing, and waits until it is online.
    pub async fn start(broker: SocketAddr, device: &str) -> io::Result<Self> {
        Self::start_with(broker, device, SimTiming::default()).await
    }

    /// Like [`GenericDevice::start`], with the given timing.
    pub async fn start_with(
        broker: SocketAddr,
        device: &str,
        timing: SimTiming,
    ) -> io::Result<Self> {
        Self::start_as(broker, device, timing, None).await
    }

    /// Like [`GenericDevice::start_with`], with a certificate and key of its own: it answers
    /// identity proof requests (see [`SimIdentity`]).
    pub async fn start_with_identity(
        broker: SocketAddr,
        device: &str,
        timing: SimTiming,
        identity: SimIdentity,
    ) -> io::Result<Self> {
        Self::start_as(broker, device, timing, Some(identity)).await
    }

    async fn start_as(
        broker: SocketAddr,
        device: &str,
        timing: SimTiming,
        identity: Option<SimIdentity>,
    ) -> io::Result<Self> {
        let mut model = Model::new(device, INITIAL_VERSION, MAX_IMAGE_SIZE);
        model.prover.identity = identity;
        let shared = Arc::new(Shared {
            model: RwLock::new(model),
            online: watch::channel(false).0,
        });
        shared
            .model()
            .log(6, format!("booted firmware {INITIAL_VERSION}"));
        let (commands, receiver) = mpsc::unbounded_channel();
        let task = tokio::spawn(run(
            Arc::clone(&shared),
            broker,
            device.to_owned(),
            timing,
            receiver,
        ));
        let this = Self {
            device: device.to_owned(),
            shared,
            commands,
            task,
        };
        this.wait_online(START_DEADLINE).await?;
        Ok(this)
    }

    /// The device part of its topics.
    pub fn device(&self) -> &str {
        &self.device
    }

    /// Waits until the device is connected, subscribed and has said it is online.
    pub async fn wait_online(&self, deadline: Duration) -> io::Result<()> {
        let mut online = self.shared.online.subscribe();
        tokio::time::timeout(deadline, online.wait_for(|up| *up))
            .await
            .map_err(|_| {
                io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "simulated device `{}` was not online within {deadline:?}",
                        self.device
                    ),
                )
            })?
            .map(|_| ())
            .map_err(|_| io::Error::other("the simulated device stopped"))
    }

    /// Whether the device is online now.
    pub fn is_online(&self) -> bool {
        *self.shared.online.borrow()
    }

    /// Answers the next request with `{"error": {"code", "message"}}`.
    pub fn fail_next(&self, code: &str, message: &str) {
        self.shared.model().faults.fail_next = Some((code.to_owned(), message.to_owned()));
    }

    /// Answers the next request with these bytes, whatever they are.
    pub fn answer_next_with(&self, payload: impl Into<Vec<u8>>) {
        self.shared.model().faults.raw_next = Some(payload.into());
    }

    /// Spoils the answer to the next identity proof request.
    pub fn fault_next_proof(&self, fault: ProofFault) {
        self.shared.model().prover.fault = Some(fault);
    }

    /// How many identity proof requests it received.
    pub fn proof_requests(&self) -> u64 {
        self.shared.model().prover.requests
    }

    /// Answers every firmware request with `busy` while set.
    pub fn set_firmware_busy(&self, busy: bool) {
        self.shared.model().firmware.busy = busy;
    }

    /// Damages the next firmware chunk received (its last byte).
    pub fn corrupt_next_chunk(&self) {
        self.shared.model().firmware.corrupt_next_chunk = true;
    }

    /// Drops the connection without a word; the broker publishes the will and the device
    /// reconnects at once.
    pub fn drop_connection(&self) {
        let _ = self.commands.send(Command::Drop);
    }

    /// A value by the shipped profile's parameter name, as the device holds it.
    pub fn value(&self, name: &str) -> Option<serde_json::Value> {
        self.shared.model().value(name)
    }

    /// The firmware version it runs.
    pub fn running_version(&self) -> String {
        self.shared.model().firmware.running()
    }

    /// How many requests it received.
    pub fn requests(&self) -> u64 {
        self.shared.model().requests
    }
}

impl SimulatedDevice for GenericDevice {
    fn set_unresponsive(&self, unresponsive: bool) {
        self.shared.model().faults.unresponsive = unresponsive;
    }

    fn append_log(&self, severity: Severity, message: &str) {
        self.shared.model().log(severity.code(), message);
    }
}

/// What the connection task tells the session.
#[derive(Debug)]
enum Incoming {
    Connected,
    Subscribed,
    Publish(Box<Publish>),
    Lost,
    Disconnected,
}

struct Topics {
    status: String,
    state: String,
    rpc: String,
    firmware: String,
    log: String,
}

impl Topics {
    fn new(device: &str) -> Self {
        let at = |leaf: &str| format!("iotmc/ahu/{device}/{leaf}");
        Self {
            status: at("status"),
            state: at("state"),
            rpc: at("rpc"),
            firmware: at("firmware"),
            log: at("log"),
        }
    }

    fn endpoint(&self, topic: &str) -> Option<Endpoint> {
        if topic == self.rpc {
            Some(Endpoint::Rpc)
        } else if topic == self.firmware {
            Some(Endpoint::Firmware)
        } else if topic == self.log {
            Some(Endpoint::Log)
        } else {
            None
        }
    }
}

/// Why a session ended.
enum End {
    Restart,
    Drop,
}

async fn run(
    shared: Arc<Shared>,
    broker: SocketAddr,
    device: String,
    timing: SimTiming,
    mut commands: mpsc::UnboundedReceiver<Command>,
) {
    let topics = Topics::new(&device);
    let mut session_number = 0u32;
    loop {
        session_number += 1;
        let mut options = MqttOptions::new(
            format!("sim-ahu-{}-{session_number}", device.replace('/', "-")),
            broker.ip().to_string(),
            broker.port(),
        );
        options
            .set_keep_alive(Duration::from_secs(5))
            .set_clean_start(true)
            .set_max_packet_size(Some(1024 * 1024))
            .set_last_will(LastWill::new(
                topics.status.clone(),
                "offline",
                QoS::AtLeastOnce,
                true,
                None,
            ));
        // A device answers at once; Nagle would hold each answer for the broker's delayed ACK.
        let mut network = options.network_options();
        network.set_tcp_nodelay(true);
        options.set_network_options(network);
        let (client, mut eventloop) = AsyncClient::new(options, 64);
        let (tx, mut rx) = mpsc::channel(256);
        let poller = tokio::spawn(async move {
            loop {
                let incoming = match eventloop.poll().await {
                    Ok(Event::Incoming(Packet::ConnAck(_))) => Incoming::Connected,
                    Ok(Event::Incoming(Packet::SubAck(_))) => Incoming::Subscribed,
                    Ok(Event::Incoming(Packet::Publish(p))) => Incoming::Publish(Box::new(p)),
                    Ok(Event::Outgoing(Sent::Disconnect)) => {
                        let _ = tx.send(Incoming::Disconnected).await;
                        return;
                    }
                    Ok(_) => continue,
                    Err(_) => {
                        if tx.send(Incoming::Lost).await.is_err() {
                            return;
                        }
                        // rumqttc reconnects on the next poll; pace the attempts.
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                if tx.send(incoming).await.is_err() {
                    return;
                }
            }
        });
        let end = session(&shared, &client, &topics, timing, &mut rx, &mut commands).await;
        shared.online.send_replace(false);
        match end {
            End::Restart => {
                let _ = client
                    .publish(topics.status.clone(), QoS::AtLeastOnce, true, "offline")
                    .await;
                let _ = client.disconnect().await;
                let flushed = async {
                    while let Some(event) = rx.recv().await {
                        if matches!(event, Incoming::Disconnected) {
                            break;
                        }
                    }
                };
                let _ = tokio::time::timeout(Duration::from_secs(1), flushed).await;
                poller.abort();
                tokio::time::sleep(timing.reboot).await;
                shared
                    .model()
                    .restart(Instant::now(), timing.confirm_window);
            }
            End::Drop => {
                poller.abort();
            }
        }
    }
}

async fn session(
    shared: &Shared,
    client: &AsyncClient,
    topics: &Topics,
    timing: SimTiming,
    rx: &mut mpsc::Receiver<Incoming>,
    commands: &mut mpsc::UnboundedReceiver<Command>,
) -> End {
    let mut ticks = tokio::time::interval(timing.state_interval);
    let mut pending_subacks = 0usize;
    loop {
        let probation = shared.model().firmware.probation_until();
        let probation_over = async {
            match probation {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            incoming = rx.recv() => {
                let Some(incoming) = incoming else { return End::Drop };
                match incoming {
                    Incoming::Connected => {
                        pending_subacks = 3;
                        for filter in [&topics.rpc, &topics.firmware, &topics.log] {
                            let _ = client.subscribe(filter.clone(), QoS::AtLeastOnce).await;
                        }
                    }
                    Incoming::Subscribed => {
                        pending_subacks = pending_subacks.saturating_sub(1);
                        if pending_subacks == 0 {
                            let _ = client
                                .publish(topics.status.clone(), QoS::AtLeastOnce, true, "online")
                                .await;
                            publish_state(shared, client, topics).await;
                            shared.online.send_replace(true);
                        }
                    }
                    Incoming::Publish(publish) => {
                        if answer(shared, client, topics, &publish).await == After::Restart {
                            return End::Restart;
                        }
                    }
                    Incoming::Lost | Incoming::Disconnected => {
                        shared.online.send_replace(false);
                    }
                }
            }
            _ = ticks.tick() => {
                let unresponsive = {
                    let mut model = shared.model();
                    model.drift();
                    model.faults.unresponsive
                };
                if !unresponsive && *shared.online.borrow() {
                    publish_state(shared, client, topics).await;
                }
            }
            () = probation_over => {
                shared.model().firmware.probation_expired();
                return End::Restart;
            }
            command = commands.recv() => match command {
                Some(Command::Drop) | None => return End::Drop,
            },
        }
    }
}

async fn publish_state(shared: &Shared, client: &AsyncClient, topics: &Topics) {
    let state = shared.model().state().to_string();
    let _ = client
        .publish(topics.state.clone(), QoS::AtMostOnce, false, state)
        .await;
}

/// Answers one request; returns whether the device restarts now.
async fn answer(
    shared: &Shared,
    client: &AsyncClient,
    topics: &Topics,
    publish: &Publish,
) -> After {
    let Some(endpoint) = std::str::from_utf8(&publish.topic)
        .ok()
        .and_then(|t| topics.endpoint(t))
    else {
        return After::Stay;
    };
    let properties = publish.properties.clone().unwrap_or_default();
    let handled = shared
        .model()
        .handle(endpoint, &publish.payload, &properties.user_properties);
    let (Some(answer), Some(response_topic)) = (handled.answer, properties.response_topic) else {
        return After::Stay;
    };
    let reply = PublishProperties {
        correlation_data: properties.correlation_data.clone(),
        content_type: Some("application/json".to_owned()),
        ..PublishProperties::default()
    };
    let _ = client
        .publish_with_properties(
            response_topic,
            QoS::AtLeastOnce,
            false,
            Bytes::from(answer),
            reply,
        )
        .await;
    if handled.state_changed {
        publish_state(shared, client, topics).await;
    }
    handled.after
}

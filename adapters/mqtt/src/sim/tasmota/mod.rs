//! A simulated Tasmota plug (an Athom Plug V2 running Tasmota 13/14) on a broker, speaking
//! MQTT 3.1.1 through rumqttc v4 as Tasmota's PubSubClient does: connect with the retained LWT
//! `Offline` as will and publish `Online`, answer commands on `stat/<topic>/RESULT` and
//! `STATUS<n>` the way Tasmota does, send `tele/<topic>/STATE` and `SENSOR` every
//! [`PlugOptions::tele_interval`] with drifting readings, restart (`Restart 1`), reset
//! (`Reset <n>`: only `Reset 6` keeps Wi-Fi and MQTT, after any other level the plug never
//! comes back to the broker), upgrade (`OtaUrl` + `Upgrade 1`: a real HTTP download of a
//! `SIMFW:<version>\n` image, see [`crate::sim::http::ImageServer`]), and publish its log lines
//! on `stat/<topic>/LOGGING` at the `MqttLog` level.
//!
//! Differences from a real plug, on purpose: telemetry comes every `tele_interval` rather than
//! every `TelePeriod` seconds (the setting is kept and reported), a failed download is not
//! retried, and the restart takes [`PlugOptions::restart_delay`].

mod ota;
mod plug;
mod session;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, PoisonError, RwLock, RwLockWriteGuard};
use std::time::{Duration, SystemTime};

use iotmc_adapter::Severity;
use iotmc_adapter::testkit::SimulatedDevice;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::codec::tasmota::Prefix;
use plug::Plug;

/// How a simulated plug is set up.
#[derive(Debug, Clone)]
pub struct PlugOptions {
    /// Its MQTT topic (Tasmota's `Topic`, the device part of its address).
    pub topic: String,
    /// Its Wi-Fi MAC, e.g. `5C:CF:7F:12:34:56` (also the end of its client id).
    pub mac: String,
    /// The firmware version it runs, as an image declares it (`13.1.0`); it prints it as
    /// `13.1.0(tasmota)`.
    pub firmware_version: String,
    /// Its DeviceName.
    pub device_name: String,
    /// Time between telemetry messages.
    pub tele_interval: Duration,
    /// How long a restart keeps it off the broker.
    pub restart_delay: Duration,
}

impl PlugOptions {
    /// A plug on `topic`, with a MAC derived from the topic, version 13.1.0, telemetry every
    /// second and restarts of 300 ms.
    pub fn new(topic: &str) -> Self {
        let hash = topic.bytes().fold(0x811c_9dc5_u32, |h, b| {
            (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
        });
        let [a, b, c, _] = hash.to_be_bytes();
        Self {
            topic: topic.to_owned(),
            mac: format!("5C:CF:7F:{a:02X}:{b:02X}:{c:02X}"),
            firmware_version: "13.1.0".to_owned(),
            device_name: "Athom Plug V2".to_owned(),
            tele_interval: Duration::from_secs(1),
            restart_delay: Duration::from_millis(300),
        }
    }

    fn client_id(&self) -> String {
        format!(
            "DVES_{}",
            self.mac.replace(':', "").get(6..).unwrap_or("000000")
        )
    }
}

/// What the plug's handle asks of its session.
#[derive(Debug)]
enum Control {
    Log {
        level: u8,
        text: String,
    },
    Button,
    Inject {
        prefix: Prefix,
        suffix: String,
        payload: Vec<u8>,
        retain: bool,
    },
    PowerCut(Duration),
}

/// State shared by the handle and the session.
#[derive(Debug)]
struct Shared {
    plug: RwLock<Plug>,
    unresponsive: AtomicBool,
    gone: AtomicBool,
    online: watch::Sender<bool>,
    /// Commands received, answered or not.
    received: watch::Sender<u64>,
}

impl Shared {
    fn plug(&self) -> RwLockWriteGuard<'_, Plug> {
        self.plug.write().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A simulated Tasmota plug. Runs until dropped.
#[derive(Debug)]
pub struct TasmotaPlug {
    shared: Arc<Shared>,
    control: mpsc::UnboundedSender<Control>,
    task: JoinHandle<()>,
}

impl TasmotaPlug {
    /// Starts a plug that connects to the MQTT 3.1.1 listener at `broker` (e.g.
    /// [`crate::sim::EmbeddedBroker::v311_addr`]).
    pub fn start(broker: SocketAddr, options: PlugOptions) -> Self {
        let plug = Plug::new(
            &options.topic,
            &options.mac,
            &options.firmware_version,
            &options.device_name,
        );
        let shared = Arc::new(Shared {
            plug: RwLock::new(plug),
            unresponsive: AtomicBool::new(false),
            gone: AtomicBool::new(false),
            online: watch::channel(false).0,
            received: watch::channel(0).0,
        });
        let (control, commands) = mpsc::unbounded_channel();
        let task = tokio::spawn(session::run(broker, options, Arc::clone(&shared), commands));
        Self {
            shared,
            control,
            task,
        }
    }

    /// Whether it is connected to the broker, watchable.
    pub fn online(&self) -> watch::Receiver<bool> {
        self.shared.online.subscribe()
    }

    /// Waits until it is connected to the broker, at most `within`.
    pub async fn wait_online(&self, within: Duration) -> bool {
        let mut online = self.online();
        tokio::time::timeout(within, online.wait_for(|on| *on))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// How many commands reached it (also while it does not answer), watchable.
    pub fn commands_received(&self) -> watch::Receiver<u64> {
        self.shared.received.subscribe()
    }

    /// Whether a reset made it forget its Wi-Fi or broker, so that it will never come back.
    pub fn is_gone(&self) -> bool {
        self.shared.gone.load(Ordering::SeqCst)
    }

    /// The firmware version it runs (`13.1.0`).
    pub fn firmware_version(&self) -> String {
        self.shared.plug().version.clone()
    }

    /// The relay state.
    pub fn power(&self) -> bool {
        self.shared.plug().power
    }

    /// Its current `MqttLog` level.
    pub fn mqtt_log_level(&self) -> u8 {
        self.shared.plug().settings.mqtt_log_level
    }

    /// Its current `TelePeriod`.
    pub fn tele_period(&self) -> u32 {
        self.shared.plug().settings.tele_period
    }

    /// How many times it booted.
    pub fn boot_count(&self) -> u32 {
        self.shared.plug().boot_count
    }

    /// Someone pressed its button: the relay toggles and the plug reports it.
    pub fn press_button(&self) {
        let _ = self.control.send(Control::Button);
    }

    /// Publishes `payload` on `<prefix>/<topic>/<suffix>` from the plug's own connection, in
    /// order with what it publishes itself (to inject what a misbehaving device would send).
    pub fn publish_raw(&self, prefix: Prefix, suffix: &str, payload: impl Into<Vec<u8>>) {
        let _ = self.control.send(Control::Inject {
            prefix,
            suffix: suffix.to_owned(),
            payload: payload.into(),
            retain: false,
        });
    }

    /// Cuts its power for `off`: the connection drops without a DISCONNECT, so the broker
    /// publishes its will (`Offline`); then it boots again.
    pub fn cut_power(&self, off: Duration) {
        let _ = self.control.send(Control::PowerCut(off));
    }
}

impl Drop for TasmotaPlug {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl SimulatedDevice for TasmotaPlug {
    fn set_unresponsive(&self, unresponsive: bool) {
        self.shared
            .unresponsive
            .store(unresponsive, Ordering::SeqCst);
    }

    /// Tasmota logs at levels 1 (error), 2 (info) and 3 (debug) and publishes a line only when
    /// `MqttLog` is at least its level.
    fn append_log(&self, severity: Severity, message: &str) {
        let level = match severity {
            Severity::Emergency | Severity::Alert | Severity::Critical | Severity::Error => 1,
            Severity::Warning | Severity::Notice | Severity::Informational => 2,
            Severity::Debug => 3,
        };
        let _ = self.control.send(Control::Log {
            level,
            text: format!("APP: {message}"),
        });
        tracing::trace!(at = ?SystemTime::now(), message, "simulated plug logs");
    }
}

#[cfg(test)]
mod tests;

//! The Tasmota dialect's [`DeviceLink`]: commands on `cmnd/<topic>/<Command>`, answers on
//! `stat/<topic>/RESULT` and `STATUS<n>`, values also pushed by `tele/<topic>/STATE` and
//! `SENSOR`, availability from `tele/<topic>/LWT`, firmware by URL pull and logs from
//! `stat/<topic>/LOGGING`. The profile's `[mqtt.tasmota]` section maps the common part onto
//! them (see `device-profiles/mqtt/tasmota.md`).
//!
//! - `device`: the device, its mappings and the command machinery (one command outstanding,
//!   answers told apart by topic and key, the response timeout).
//! - `router`: everything the device publishes, dispatched.
//! - `params`: reads, writes and actions.
//! - `firmware`, `logs`: the firmware target and the log source.

mod device;
mod firmware;
mod logs;
mod params;
mod router;

use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use iotmc_adapter::{
    ActionOutcome, ActionRequest, DeviceLink, FirmwareTarget, Identity, IdentityEvidence,
    LinkError, LinkEvent, LogSource, Readings,
};
use serde_json::Value as Json;
use tokio::sync::{broadcast, mpsc};

use super::{CollectedLog, LinkContext, TaskGuard, watch_broker};
use crate::codec::tasmota::{Expect, Prefix, lookup};
use device::Device;
pub use firmware::UrlPullFirmware;

/// A Tasmota device.
#[derive(Debug)]
pub struct TasmotaLink {
    device: Arc<Device>,
    firmware: Option<UrlPullFirmware>,
    logs: Option<CollectedLog>,
    _tasks: Vec<TaskGuard>,
}

impl TasmotaLink {
    /// Attaches the device: subscribes to `stat/<topic>/#` and `tele/<topic>/#` (waiting for
    /// the broker's acknowledgement while it is connected), and starts routing. The device
    /// need not be online.
    pub async fn attach(context: LinkContext) -> Result<Arc<dyn DeviceLink>, LinkError> {
        let section = context
            .section
            .tasmota
            .clone()
            .ok_or_else(|| LinkError::Unsupported {
                operation: format!("attaching device `{}`", context.device_id),
                reason: "its profile has no [mqtt.tasmota] table".to_owned(),
            })?;
        let device = Arc::new(Device::new(
            context.device_id,
            context.profile,
            section,
            context.broker,
            &context.device,
            context.section.response_timeout,
        ));
        let mut stat = device
            .broker
            .subscribe(&device.topics.filter(Prefix::Stat))
            .await?;
        let mut tele = device
            .broker
            .subscribe(&device.topics.filter(Prefix::Tele))
            .await?;
        for subscription in [&mut stat, &mut tele] {
            if let Err(e) = subscription.ready().await {
                match e {
                    LinkError::Transport(reason) => tracing::warn!(
                        device = %device.id,
                        %reason,
                        "subscribed while the broker is down; the driver subscribes again when it is back"
                    ),
                    refused => return Err(refused),
                }
            }
        }
        let (online_tx, online) = mpsc::unbounded_channel();
        let tasks = vec![
            TaskGuard::spawn(router::route(Arc::clone(&device), stat, tele, online_tx)),
            watch_broker(&device.broker, Arc::clone(&device.hub)),
            TaskGuard::spawn(on_online(Arc::clone(&device), online)),
        ];
        let firmware = (device.profile.firmware.method == "url-pull").then(|| UrlPullFirmware {
            device: Arc::clone(&device),
            staged: RwLock::new(None),
            busy: tokio::sync::Mutex::new(()),
        });
        let logs = (device.profile.logs.method == "topic")
            .then(|| CollectedLog::new(Arc::clone(&device.log)));
        Ok(Arc::new(Self {
            device,
            firmware,
            logs,
            _tasks: tasks,
        }))
    }
}

/// Each time the device comes online: sets its `MqttLog` level if the profile opts in (a
/// restart or reset may have changed it).
async fn on_online(device: Arc<Device>, mut online: mpsc::UnboundedReceiver<()>) {
    let Some(level) = device.section.mqtt_log_level else {
        return;
    };
    while online.recv().await.is_some() {
        let level = level.to_string();
        if let Err(e) = device
            .command("MqttLog", &level, Expect::Result("MqttLog".to_owned()))
            .await
        {
            tracing::warn!(device = %device.id, error = %e, "could not set MqttLog {level}; its log lines may not reach the gateway");
        }
    }
}

#[async_trait]
impl DeviceLink for TasmotaLink {
    /// `Status0`: every status section in one answer, read by the profile's identity pointers.
    async fn identify(&self) -> Result<Identity, LinkError> {
        let device = &self.device;
        let answer = device.command("Status0", "", Expect::Status(0)).await?;
        let json = Json::Object(answer);
        let text = |pointer: &str| {
            lookup(&json, pointer).and_then(|v| match v {
                Json::String(s) if !s.is_empty() => Some(s.clone()),
                Json::Number(n) => Some(n.to_string()),
                _ => None,
            })
        };
        let identity = &device.section.identity;
        Ok(Identity {
            manufacturer: device.profile.manufacturer.clone(),
            model: identity
                .model
                .as_deref()
                .and_then(text)
                .unwrap_or_else(|| device.profile.model.clone()),
            serial: text(&identity.serial),
            firmware_version: text(&identity.firmware_version),
            hardware_version: text(&identity.hardware_version),
            evidence: IdentityEvidence::None,
        })
    }

    async fn read(&self, names: &[String]) -> Result<Readings, LinkError> {
        self.device.read(names).await
    }

    async fn write(&self, values: &Readings) -> Result<(), LinkError> {
        self.device.write(values).await
    }

    async fn invoke(&self, action: &ActionRequest) -> Result<ActionOutcome, LinkError> {
        self.device.invoke(action).await
    }

    fn events(&self) -> broadcast::Receiver<LinkEvent> {
        self.device.hub.subscribe()
    }

    fn firmware(&self) -> Option<&dyn FirmwareTarget> {
        self.firmware.as_ref().map(|f| f as &dyn FirmwareTarget)
    }

    fn logs(&self) -> Option<&dyn LogSource> {
        self.logs.as_ref().map(|l| l as &dyn LogSource)
    }
}

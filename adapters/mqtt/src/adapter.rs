//! The MQTT [`Adapter`]: checks profiles and addresses, and attaches devices to the driver of
//! their broker, started with the first device on it and shared by all. Discovery listens for
//! Tasmota last wills and Homie 5 states on every configured broker.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use async_trait::async_trait;
use iotmc_adapter::{
    Adapter, DeviceBinding, DeviceLink, Discovered, LinkError, LocatedError, Profile, Resource,
};
use tokio::sync::mpsc;

use crate::address::Address;
use crate::codec::discovery::{self, Announcement};
use crate::driver::BrokerHandle;
use crate::link::{self, LinkContext};
use crate::profile::{MqttSection, load_section};
use crate::settings::BrokerSettings;

/// The MQTT adapter.
#[derive(Debug, Default)]
pub struct MqttAdapter {
    brokers: BTreeMap<String, BrokerSettings>,
    running: RwLock<BTreeMap<String, BrokerHandle>>,
    /// Addresses of attached devices (as [`Address`] prints them), which discovery skips.
    attached: Arc<RwLock<BTreeSet<String>>>,
    /// Discovery was started (it is handed out once).
    discovering: AtomicBool,
}

/// Discovered devices not yet taken by the core.
const DISCOVERY_QUEUE: usize = 64;

impl MqttAdapter {
    /// An adapter for the given broker connections (none are opened until a device needs one).
    pub fn new(brokers: Vec<BrokerSettings>) -> Self {
        Self {
            brokers: brokers.into_iter().map(|b| (b.name.clone(), b)).collect(),
            running: RwLock::new(BTreeMap::new()),
            attached: Arc::default(),
            discovering: AtomicBool::new(false),
        }
    }

    /// The driver of broker `name`: the running one, or a new one.
    fn broker(&self, device_id: &str, name: &str) -> Result<BrokerHandle, LinkError> {
        let Some(settings) = self.brokers.get(name) else {
            return Err(LinkError::Unsupported {
                operation: format!("attaching device `{device_id}`"),
                reason: self.unknown_broker(name),
            });
        };
        let mut running = self.running.write().unwrap_or_else(PoisonError::into_inner);
        Ok(running
            .entry(name.to_owned())
            .or_insert_with(|| BrokerHandle::spawn(settings.clone()))
            .clone())
    }

    fn unknown_broker(&self, name: &str) -> String {
        if self.brokers.is_empty() {
            format!(
                "no broker `{name}`: the gateway config has no [[mqtt.brokers]]; add one named `{name}`"
            )
        } else {
            format!(
                "no broker `{name}` in the gateway config; [[mqtt.brokers]] names {}",
                self.brokers.keys().cloned().collect::<Vec<_>>().join(", ")
            )
        }
    }
}

#[async_trait]
impl Adapter for MqttAdapter {
    fn protocol(&self) -> &'static str {
        "mqtt"
    }

    fn validate_profile(&self, profile: &Profile) -> Result<(), Vec<LocatedError>> {
        load_section(profile).map(|_| ())
    }

    fn profile_section_schema(&self) -> schemars::Schema {
        schemars::schema_for!(MqttSection)
    }

    fn validate_address(&self, address: &str) -> Result<(), String> {
        let address: Address = address.parse()?;
        if self.brokers.contains_key(&address.broker) {
            Ok(())
        } else {
            Err(self.unknown_broker(&address.broker))
        }
    }

    fn resources(&self, _address: &str) -> Vec<Resource> {
        Vec::new()
    }

    async fn attach(&self, binding: &DeviceBinding) -> Result<Arc<dyn DeviceLink>, LinkError> {
        let operation = || format!("attaching device `{}`", binding.device_id);
        let address: Address =
            binding
                .address
                .parse()
                .map_err(|reason| LinkError::Unsupported {
                    operation: operation(),
                    reason,
                })?;
        let section = load_section(&binding.profile).map_err(|errors| {
            LinkError::invalid_profile(&binding.device_id, &binding.profile.id, &errors)
        })?;
        let broker = self.broker(&binding.device_id, &address.broker)?;
        let link = link::attach(LinkContext {
            device_id: binding.device_id.clone(),
            profile: Arc::clone(&binding.profile),
            section: Arc::new(section),
            broker,
            device: address.device.clone(),
        })
        .await?;
        self.attached
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(address.to_string());
        Ok(link)
    }

    /// On the first call, starts the driver of every configured broker and listens there for
    /// Tasmota last wills (`tele/+/LWT`, `Online`) and Homie 5 states (`homie/5/+/$state`,
    /// any but `lost` and `disconnected`), reporting each device once, unless it is attached.
    /// Later calls return `None`. Must be called inside a tokio runtime.
    fn discovered(&self) -> Option<mpsc::Receiver<Discovered>> {
        if self.discovering.swap(true, Ordering::SeqCst) {
            return None;
        }
        let (found, receiver) = mpsc::channel(DISCOVERY_QUEUE);
        for name in self.brokers.keys() {
            match self.broker("discovery", name) {
                Ok(broker) => {
                    tokio::spawn(discover(broker, Arc::clone(&self.attached), found.clone()));
                }
                Err(e) => tracing::warn!(broker = %name, error = %e, "no discovery"),
            }
        }
        Some(receiver)
    }
}

/// Listens for announcements on one broker until the receiver of `found` is dropped or the
/// driver stops.
async fn discover(
    broker: BrokerHandle,
    attached: Arc<RwLock<BTreeSet<String>>>,
    found: mpsc::Sender<Discovered>,
) {
    let subscribe = |filter| {
        let broker = broker.clone();
        async move {
            broker
                .subscribe(filter)
                .await
                .inspect_err(
                    |e| tracing::warn!(broker = %broker.name(), error = %e, "no discovery"),
                )
                .ok()
        }
    };
    let (Some(mut tasmota), Some(mut homie)) = (
        subscribe(discovery::TASMOTA_LWT).await,
        subscribe(discovery::HOMIE_STATE).await,
    ) else {
        return;
    };
    let mut reported = BTreeSet::new();
    loop {
        let message = tokio::select! {
            () = found.closed() => return,
            message = tasmota.recv() => message,
            message = homie.recv() => message,
        };
        let Some(message) = message else { return };
        let device = match discovery::announcement(&message.topic, &message.payload) {
            Ok(Some(Announcement::Present(device))) => device,
            Ok(Some(Announcement::Gone(_)) | None) => continue,
            Err(e) => {
                tracing::debug!(broker = %broker.name(), error = %e, "not an announcement");
                continue;
            }
        };
        let address = format!("mqtt://{}/{device}", broker.name());
        let Ok(address) = address.parse::<Address>() else {
            tracing::debug!(%address, "an announced device whose name is no address");
            continue;
        };
        let address = address.to_string();
        let is_attached = attached
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(&address);
        if is_attached || !reported.insert(address.clone()) {
            continue;
        }
        tracing::info!(%address, "discovered");
        let discovered = Discovered {
            address,
            identity: None,
            suggested_profile: None,
        };
        if found.send(discovered).await.is_err() {
            return;
        }
    }
}

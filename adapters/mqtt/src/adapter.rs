//! The MQTT [`Adapter`]: checks profiles and addresses, and attaches devices to the driver of
//! their broker, started with the first device on it and shared by all.

use std::collections::BTreeMap;
use std::sync::{Arc, PoisonError, RwLock};

use async_trait::async_trait;
use iotmc_adapter::{
    Adapter, DeviceBinding, DeviceLink, LinkError, LocatedError, Profile, Resource,
};

use crate::address::Address;
use crate::driver::BrokerHandle;
use crate::link::{self, LinkContext};
use crate::profile::{MqttSection, load_section};
use crate::settings::BrokerSettings;

/// The MQTT adapter.
#[derive(Debug, Default)]
pub struct MqttAdapter {
    brokers: BTreeMap<String, BrokerSettings>,
    running: RwLock<BTreeMap<String, BrokerHandle>>,
}

impl MqttAdapter {
    /// An adapter for the given broker connections (none are opened until a device needs one).
    pub fn new(brokers: Vec<BrokerSettings>) -> Self {
        Self {
            brokers: brokers.into_iter().map(|b| (b.name.clone(), b)).collect(),
            running: RwLock::new(BTreeMap::new()),
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
        let section = load_section(&binding.profile).map_err(|errors| LinkError::Unsupported {
            operation: operation(),
            reason: format!(
                "its profile `{}` has errors: {}",
                binding.profile.id,
                errors
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
        })?;
        let broker = self.broker(&binding.device_id, &address.broker)?;
        link::attach(LinkContext {
            device_id: binding.device_id.clone(),
            profile: Arc::clone(&binding.profile),
            section: Arc::new(section),
            broker,
            device: address.device,
        })
        .await
    }
}

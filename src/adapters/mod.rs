//! The protocol adapters built into this binary, one cargo feature each.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use iotmc_adapter::{Adapter, LocatedError};

use crate::config::Config;

#[cfg(feature = "mqtt")]
mod mqtt;

/// Every protocol the product serves, whether its adapter is built in or not.
pub const KNOWN_PROTOCOLS: [&str; 4] = ["modbus", "mqtt", "zigbee", "ble"];

/// The protocols whose adapter crates exist in this source tree (each behind a cargo feature of
/// its name). An adapter crate adds itself here and to [`AdapterSet::built`] when it lands.
pub const ADAPTER_CRATES: [&str; 2] = ["modbus", "mqtt"];

/// The adapters available to this gateway, by protocol name.
#[derive(Clone, Default)]
pub struct AdapterSet {
    adapters: BTreeMap<&'static str, Arc<dyn Adapter>>,
}

impl fmt::Debug for AdapterSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.adapters.keys()).finish()
    }
}

impl AdapterSet {
    /// The adapters compiled into this binary. Each adapter crate adds itself here behind its
    /// feature when it lands.
    pub fn built() -> Self {
        #[allow(unused_mut)]
        let mut set = Self::default();
        #[cfg(feature = "modbus")]
        {
            set = set.with(Arc::new(iotmc_adapter_modbus::ModbusAdapter::new()));
        }
        #[cfg(feature = "mqtt")]
        {
            set = set.with(Arc::new(iotmc_adapter_mqtt::MqttAdapter::new(Vec::new())));
        }
        set
    }

    /// The adapters compiled into this binary, set up from `config` (MQTT broker connections,
    /// with their certificates and passwords read). Every problem is returned, located in the
    /// config.
    pub fn for_config(config: &Config) -> Result<Self, Vec<LocatedError>> {
        #[allow(unused_mut)]
        let mut set = Self::built();
        #[cfg(feature = "mqtt")]
        {
            let brokers = mqtt::brokers(config)?;
            set = set.with(Arc::new(iotmc_adapter_mqtt::MqttAdapter::new(brokers)));
        }
        #[cfg(not(feature = "mqtt"))]
        if !config.mqtt.brokers.is_empty() {
            tracing::warn!(
                "[[mqtt.brokers]] is configured but the mqtt adapter is not built into this binary"
            );
        }
        Ok(set)
    }

    /// This set with `adapter` added (tests use it to bring their own).
    pub fn with(mut self, adapter: Arc<dyn Adapter>) -> Self {
        self.adapters.insert(adapter.protocol(), adapter);
        self
    }

    /// The adapter for `protocol`, if built.
    pub fn get(&self, protocol: &str) -> Option<&Arc<dyn Adapter>> {
        self.adapters.get(protocol)
    }

    /// The built adapters.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<dyn Adapter>> {
        self.adapters.values()
    }

    /// Names of the built protocols, for messages.
    pub fn names(&self) -> String {
        if self.adapters.is_empty() {
            "none".to_owned()
        } else {
            self.adapters.keys().copied().collect::<Vec<_>>().join(", ")
        }
    }

    /// Why `protocol` cannot be served by this binary, in words an integrator can act on.
    pub fn missing(&self, protocol: &str) -> String {
        if ADAPTER_CRATES.contains(&protocol) {
            format!(
                "the `{protocol}` adapter is not built into this binary (built: {}); build with `--features {protocol}`",
                self.names()
            )
        } else if KNOWN_PROTOCOLS.contains(&protocol) {
            format!(
                "the `{protocol}` adapter is not part of this release yet (built: {})",
                self.names()
            )
        } else {
            format!(
                "unknown protocol `{protocol}`; expected one of {}",
                KNOWN_PROTOCOLS.join(", ")
            )
        }
    }
}

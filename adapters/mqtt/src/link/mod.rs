//! The [`DeviceLink`] of each dialect, and what they share: the context a link is built from,
//! its event hub (changed values and availability, evented only on change), and background
//! tasks that stop with the link.

use std::collections::BTreeMap;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::SystemTime;

use iotmc_adapter::{Availability, DeviceLink, LinkError, LinkEvent, Profile, Readings, Value};
use tokio::sync::broadcast;
use tokio::task::JoinHandle;

use crate::driver::{BrokerHandle, ConnectionState};
use crate::profile::{Dialect, MqttSection};

pub mod generic;
pub mod homie;
mod log_ring;
pub mod tasmota;

pub use log_ring::{CollectedLog, LOG_RING_CAPACITY, LogRing};

/// Events a link keeps for receivers that fall behind.
const EVENT_CAPACITY: usize = 256;

/// What every dialect's link is built from.
#[derive(Debug, Clone)]
pub struct LinkContext {
    /// The device id from the gateway config.
    pub device_id: String,
    /// The device's profile.
    pub profile: Arc<Profile>,
    /// Its `[mqtt]` section, checked.
    pub section: Arc<MqttSection>,
    /// The broker connection the device is on.
    pub broker: BrokerHandle,
    /// The device part of its address: Tasmota topic, Homie device id, or generic `{device}`.
    pub device: String,
}

/// Attaches a device in its profile's dialect.
pub async fn attach(context: LinkContext) -> Result<Arc<dyn DeviceLink>, LinkError> {
    match context.section.dialect {
        Dialect::Tasmota => tasmota::TasmotaLink::attach(context).await,
        Dialect::Homie => homie::HomieLink::attach(context).await,
        Dialect::Generic => generic::GenericLink::attach(context).await,
    }
}

/// Changed values and availability of one device, evented only on change.
#[derive(Debug)]
pub struct EventHub {
    profile: Arc<Profile>,
    events: broadcast::Sender<LinkEvent>,
    state: RwLock<HubState>,
}

#[derive(Debug, Default)]
struct HubState {
    availability: Option<Availability>,
    values: Readings,
}

impl EventHub {
    /// A hub for a device of `profile`.
    pub fn new(profile: Arc<Profile>) -> Self {
        Self {
            profile,
            events: broadcast::channel(EVENT_CAPACITY).0,
            state: RwLock::new(HubState::default()),
        }
    }

    /// A new receiver of this device's events.
    pub fn subscribe(&self) -> broadcast::Receiver<LinkEvent> {
        self.events.subscribe()
    }

    /// Records the device's availability; events it when it changed.
    pub fn set_availability(&self, availability: Availability) {
        let mut state = self.state.write().unwrap_or_else(PoisonError::into_inner);
        if state.availability != Some(availability) {
            state.availability = Some(availability);
            let _ = self.events.send(LinkEvent::Availability {
                at: SystemTime::now(),
                availability,
            });
        }
    }

    /// The last availability recorded, if any.
    pub fn availability(&self) -> Option<Availability> {
        self.state
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .availability
    }

    /// Records values the device reported; events those that changed by at least their
    /// parameter's resolution (or at all, without one). Unknown names are ignored.
    pub fn report(&self, values: Readings) {
        let mut state = self.state.write().unwrap_or_else(PoisonError::into_inner);
        let mut changed = BTreeMap::new();
        for (name, value) in values {
            let Some(parameter) = self.profile.parameter(&name) else {
                continue;
            };
            let differs = match state.values.get(&name) {
                None => true,
                Some(old) => differs(old, &value, parameter.resolution),
            };
            if differs {
                state.values.insert(name.clone(), value.clone());
                if parameter.evented {
                    changed.insert(name, value);
                }
            }
        }
        if !changed.is_empty() {
            let _ = self.events.send(LinkEvent::Changed {
                at: SystemTime::now(),
                values: changed,
            });
        }
    }

    /// The last value reported for `name`, if any.
    pub fn last(&self, name: &str) -> Option<Value> {
        self.state
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .values
            .get(name)
            .cloned()
    }
}

fn differs(old: &Value, new: &Value, resolution: Option<f64>) -> bool {
    match (old.as_f64(), new.as_f64(), resolution) {
        (Some(a), Some(b), Some(step)) => (a - b).abs() >= step * 0.999,
        _ => old != new,
    }
}

/// A background task of a link, aborted when the link is dropped.
#[derive(Debug)]
pub struct TaskGuard(JoinHandle<()>);

impl TaskGuard {
    /// Spawns `task` on the current runtime.
    pub fn spawn(task: impl Future<Output = ()> + Send + 'static) -> Self {
        Self(tokio::spawn(task))
    }
}

impl Drop for TaskGuard {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Marks the device offline whenever its broker connection is not up. (Coming back online is the
/// dialect's to say, from the device's LWT or `$state`, which the broker delivers again after
/// the driver resubscribes.)
pub fn watch_broker(broker: &BrokerHandle, hub: Arc<EventHub>) -> TaskGuard {
    let mut state = broker.state();
    TaskGuard::spawn(async move {
        loop {
            if *state.borrow_and_update() != ConnectionState::Connected {
                hub.set_availability(Availability::Offline);
            }
            if state.changed().await.is_err() {
                hub.set_availability(Availability::Offline);
                return;
            }
        }
    })
}

/// The error for an operation while the device's broker connection is down.
pub fn broker_down(broker: &BrokerHandle, operation: &str) -> LinkError {
    LinkError::Transport(format!(
        "{operation}: the connection to broker `{}` is {}",
        broker.name(),
        *broker.state().borrow()
    ))
}

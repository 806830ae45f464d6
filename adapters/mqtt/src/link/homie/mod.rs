//! The link of a Homie 5 device (<https://homieiot.github.io/specification/spec-core-v5_0_0/>).
//!
//! It subscribes to `<domain>/5/<device>/#` and keeps the device's `$state`, its
//! `$description` (checked against the profile when it arrives: a mapped property missing, of
//! an incompatible datatype, or not settable where the profile writes it is a warning naming
//! both, and writes to it are refused), and the latest value of every mapped property, evented
//! as it changes.
//!
//! - **Availability** from `$state`: `ready` is online; `lost`, `disconnected`, `sleeping` and
//!   a removed device (empty `$state`) are offline; `init` keeps what it was (a device
//!   connecting stays offline until `ready`, one reconfiguring stays online). The broker
//!   connection going down makes it offline too.
//! - **Reads** return the latest values while the device is `ready` or `sleeping` (a sleeping
//!   device's retained values are the last it reported). Otherwise, or while a value has not
//!   arrived, they wait up to `[mqtt].response_timeout`, then fail with `Timeout` (the log says
//!   which device and property).
//! - **Writes** wait (within the same timeout) until the device is `ready`, publish
//!   `<property>/set` (QoS 1, not retained) and wait until the property, or its `$target`,
//!   reports the value; else `Timeout` (the device did not confirm). The device going `lost`,
//!   `disconnected` or `sleeping` meanwhile fails the write at once (`Transport`).
//! - **Actions** set their property (QoS 0 for a non-retained property, as Homie asks for
//!   momentary commands) and wait as their profile says: for the device to leave `ready`
//!   (`restart`), for the value (`value`), or not at all (`none`).
//! - **Logs** (`logs.method = "topic"`): `$log/<level>` lines and `$alert/<id>` messages,
//!   collected in a ring as they arrive. Homie defines no firmware update.

mod check;
mod follow;
mod view;

use std::collections::BTreeMap;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use iotmc_adapter::profile::Parameter;
use iotmc_adapter::{
    ActionOutcome, ActionRequest, DeviceLink, FirmwareTarget, Identity, IdentityEvidence,
    LinkError, LinkEvent, LogSource, Profile, Readings, Value,
};
use tokio::sync::{broadcast, watch};
use tokio::time::Instant;

use super::{CollectedLog, EventHub, LinkContext, LogRing, TaskGuard, broker_down, watch_broker};
use crate::codec::homie::{PropertyPath, encode_value, is_id};
use crate::driver::{BrokerHandle, ConnectionState};
use crate::frame::{Outgoing, QoS};
use crate::profile::HomieSection;
use crate::profile::homie::{ActionConfirm, DescriptionField, IdentitySource};
use follow::{Followed, follow};
use view::{DeviceView, Expectation, Mapping, Outcome, Written};

/// The device view, and a counter bumped on every change so waiters wake.
#[derive(Debug)]
struct Shared {
    view: RwLock<DeviceView>,
    changed: watch::Sender<u64>,
}

impl Shared {
    fn update<T>(&self, change: impl FnOnce(&mut DeviceView) -> T) -> T {
        let result = change(&mut self.view.write().unwrap_or_else(PoisonError::into_inner));
        self.changed.send_modify(|n| *n = n.wrapping_add(1));
        result
    }

    fn look<T>(&self, look: impl FnOnce(&DeviceView) -> T) -> T {
        look(&self.view.read().unwrap_or_else(PoisonError::into_inner))
    }
}

/// A device speaking Homie 5.
#[derive(Debug)]
pub struct HomieLink {
    device_id: String,
    /// The Homie device ID.
    device: String,
    /// `<domain>/5/<device>`.
    base: String,
    profile: Arc<Profile>,
    homie: HomieSection,
    mapping: Arc<Mapping>,
    timeout: Duration,
    broker: BrokerHandle,
    shared: Arc<Shared>,
    hub: Arc<EventHub>,
    logs: Option<CollectedLog>,
    _tasks: [TaskGuard; 2],
}

impl HomieLink {
    /// Attaches the device: subscribes to its topics and starts following them. The device
    /// need not be there yet.
    pub async fn attach(context: LinkContext) -> Result<Arc<dyn DeviceLink>, LinkError> {
        let operation = || format!("attaching Homie device `{}`", context.device_id);
        let Some(homie) = context.section.homie.clone() else {
            return Err(LinkError::Unsupported {
                operation: operation(),
                reason: "its profile has no [mqtt.homie] table".to_owned(),
            });
        };
        if !is_id(&context.device) {
            return Err(LinkError::Unsupported {
                operation: operation(),
                reason: format!(
                    "{:?} is not a Homie device ID (one topic level of lowercase a-z, 0-9 and `-`); the address is `mqtt://<broker>/<device id>`",
                    context.device
                ),
            });
        }
        let base = format!("{}/5/{}", homie.domain, context.device);
        let subscription = context.broker.subscribe(&format!("{base}/#")).await?;
        let mapping = Arc::new(Mapping::new(&context.profile, &homie));
        let shared = Arc::new(Shared {
            view: RwLock::new(DeviceView::default()),
            changed: watch::Sender::new(0),
        });
        let hub = Arc::new(EventHub::new(Arc::clone(&context.profile)));
        let ring = (context.profile.logs.method == "topic").then(|| Arc::new(LogRing::default()));
        let followed = Followed {
            device_id: context.device_id.clone(),
            prefix: format!("{base}/"),
            profile: Arc::clone(&context.profile),
            mapping: Arc::clone(&mapping),
            shared: Arc::clone(&shared),
            hub: Arc::clone(&hub),
            ring: ring.clone(),
        };
        let task = TaskGuard::spawn(follow(followed, subscription, context.broker.state()));
        let watcher = watch_broker(&context.broker, Arc::clone(&hub));
        Ok(Arc::new(Self {
            device_id: context.device_id,
            device: context.device,
            base,
            profile: context.profile,
            homie,
            mapping,
            timeout: context.section.response_timeout,
            broker: context.broker,
            shared,
            hub,
            logs: ring.map(CollectedLog::new),
            _tasks: [task, watcher],
        }))
    }

    /// Fails at once while the broker connection is down (not while it is connecting).
    fn broker_usable(&self, operation: &str) -> Result<(), LinkError> {
        match *self.broker.state().borrow() {
            ConnectionState::Down { .. } | ConnectionState::Closed => {
                Err(broker_down(&self.broker, operation))
            }
            ConnectionState::Connecting | ConnectionState::Connected => Ok(()),
        }
    }

    /// Waits until `ready` finds what it looks for in the device view, or `deadline`.
    async fn wait_until<T>(
        &self,
        deadline: Instant,
        mut ready: impl FnMut(&DeviceView) -> Option<T>,
    ) -> Option<T> {
        let mut changed = self.shared.changed.subscribe();
        loop {
            if let Some(found) = self.shared.look(&mut ready) {
                return Some(found);
            }
            match tokio::time::timeout_at(deadline, changed.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) | Err(_) => return None,
            }
        }
    }

    /// The error after waiting `self.timeout` in vain for `waited_for`; logs which device and
    /// what it was, since `Timeout` carries only the time.
    fn timed_out(&self, operation: &str, waited_for: &str, after: Duration) -> LinkError {
        if self.broker_usable(operation).is_err() {
            return broker_down(&self.broker, operation);
        }
        let state = self
            .shared
            .look(|view| view.state().map_or("unknown".to_owned(), |s| s.to_string()));
        tracing::warn!(
            device = %self.device_id,
            homie_device = %self.base,
            state = %state,
            "{operation}: {waited_for} within {after:?}; the device's state is {state}"
        );
        LinkError::Timeout { after }
    }

    /// Waits until the device takes commands: `ready` with its description.
    async fn until_ready(&self, deadline: Instant, operation: &str) -> Result<(), LinkError> {
        match self
            .wait_until(deadline, |view| view.takes_commands().then_some(()))
            .await
        {
            Some(()) => Ok(()),
            None => Err(self.timed_out(
                operation,
                "the device was not `ready` (with its $description); nothing was sent",
                self.timeout,
            )),
        }
    }

    /// Waits for every expectation in `pending`, until `deadline`.
    async fn confirmed(
        &self,
        pending: &Pending<'_>,
        (deadline, after): (Instant, Duration),
        operation: &str,
        waited_for: &str,
    ) -> Result<(), LinkError> {
        let settled = self
            .wait_until(deadline, |view| {
                let outcomes: Vec<Outcome> = pending.ids.iter().map(|id| view.outcome(*id)).collect();
                if let Some(Outcome::Gone(state)) =
                    outcomes.iter().find(|o| matches!(o, Outcome::Gone(_)))
                {
                    let state = state.map_or("removed".to_owned(), |s| format!("`{s}`"));
                    return Some(Err(LinkError::Transport(format!(
                        "{operation}: device `{}` went {state} before it confirmed; what was set may or may not have been taken",
                        self.device_id
                    ))));
                }
                if outcomes.contains(&Outcome::BrokerDown) {
                    return Some(Err(broker_down(&self.broker, operation)));
                }
                outcomes.iter().all(|o| *o == Outcome::Met).then_some(Ok(()))
            })
            .await;
        settled.unwrap_or_else(|| Err(self.timed_out(operation, waited_for, after)))
    }

    /// Refuses a write the device's description rules out.
    fn refused(&self, view: &DeviceView, parameter: &str) -> Result<(), LinkError> {
        match view.refusal(parameter) {
            Some(reason) => Err(LinkError::Unsupported {
                operation: format!("writing `{parameter}` of Homie device `{}`", self.device_id),
                reason: reason.to_owned(),
            }),
            None => Ok(()),
        }
    }

    /// The Homie payload of `value` for the property carrying `parameter`.
    fn payload(
        &self,
        view: &DeviceView,
        parameter: &Parameter,
        path: &PropertyPath,
        value: &Value,
    ) -> Result<String, LinkError> {
        let datatype = view
            .description()
            .and_then(|d| d.property(&path.node, &path.property))
            .map(|p| p.datatype);
        encode_value(value, datatype).map_err(|why| LinkError::OutOfRange {
            name: parameter.name.clone(),
            value: value.to_string(),
            expected: why,
        })
    }

    async fn set(&self, path: &PropertyPath, payload: String, qos: QoS) -> Result<(), LinkError> {
        let topic = format!("{}/{path}/set", self.base);
        self.broker
            .publish(Outgoing::new(topic, payload).with_qos(qos))
            .await
    }

    fn identity_fact(
        &self,
        view: &DeviceView,
        source: Option<&IdentitySource>,
    ) -> Option<Option<String>> {
        let Some(source) = source else {
            return Some(None);
        };
        let description = view.description()?;
        let fact = match source {
            IdentitySource::Property(path) => {
                let path: PropertyPath = path.parse().ok()?;
                view.reported(&path)?.text.clone()
            }
            IdentitySource::Description(DescriptionField::Name) => description
                .name
                .clone()
                .unwrap_or_else(|| self.device.clone()),
            IdentitySource::Description(DescriptionField::Type) => {
                description.device_type.clone()?
            }
            IdentitySource::Description(DescriptionField::Version) => {
                description.version.to_string()
            }
        };
        Some(Some(fact))
    }
}

/// Expectations a write or action waits for; forgotten when dropped (also when the caller
/// gives up).
struct Pending<'a> {
    shared: &'a Shared,
    ids: Vec<u64>,
}

impl<'a> Pending<'a> {
    fn expect(shared: &'a Shared, expectations: Vec<Expectation>) -> Self {
        let ids = shared.update(|view| expectations.into_iter().map(|e| view.expect(e)).collect());
        Self { shared, ids }
    }
}

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        self.shared.update(|view| {
            for id in &self.ids {
                view.forget(*id);
            }
        });
    }
}

#[async_trait]
impl DeviceLink for HomieLink {
    async fn identify(&self) -> Result<Identity, LinkError> {
        let operation = format!("identifying Homie device `{}`", self.device_id);
        self.broker_usable(&operation)?;
        let deadline = Instant::now() + self.timeout;
        let sources = self.homie.identity_sources();
        let identity = self
            .wait_until(deadline, |view| {
                if !view.values_current() {
                    return None;
                }
                let [model, serial, firmware, hardware] =
                    sources.map(|(_, source)| self.identity_fact(view, source));
                Some(Identity {
                    manufacturer: self.profile.manufacturer.clone(),
                    model: model?.unwrap_or_else(|| self.profile.model.clone()),
                    serial: serial?,
                    firmware_version: firmware?,
                    hardware_version: hardware?,
                    evidence: IdentityEvidence::None,
                })
            })
            .await;
        identity.ok_or_else(|| {
            self.timed_out(
                &operation,
                "the device was not `ready` with its $description and identity properties",
                self.timeout,
            )
        })
    }

    async fn read(&self, names: &[String]) -> Result<Readings, LinkError> {
        self.profile.check_read(names)?;
        let operation = format!(
            "reading {} of Homie device `{}`",
            names.join(", "),
            self.device_id
        );
        self.broker_usable(&operation)?;
        let wanted: Vec<(&String, &PropertyPath)> = names
            .iter()
            .filter_map(|name| self.mapping.path(name).map(|path| (name, path)))
            .collect();
        let deadline = Instant::now() + self.timeout;
        let readings = self
            .wait_until(deadline, |view| {
                if !view.values_current() {
                    return None;
                }
                wanted
                    .iter()
                    .map(|(name, path)| {
                        let value = view.reported(path)?.value.clone()?;
                        Some(((*name).clone(), value))
                    })
                    .collect::<Option<Readings>>()
            })
            .await;
        readings.ok_or_else(|| {
            let missing: Vec<String> = self.shared.look(|view| {
                wanted
                    .iter()
                    .filter(|(_, path)| view.reported(path).is_none())
                    .map(|(name, path)| format!("`{name}` ({}/{path})", self.base))
                    .collect()
            });
            let waited_for = if missing.is_empty() {
                "the device was not `ready`".to_owned()
            } else {
                format!("no value arrived for {}", missing.join(", "))
            };
            self.timed_out(&operation, &waited_for, self.timeout)
        })
    }

    async fn write(&self, values: &Readings) -> Result<(), LinkError> {
        let checked = self.profile.check_write(values)?;
        let operation = format!(
            "writing {} of Homie device `{}`",
            checked.keys().cloned().collect::<Vec<_>>().join(", "),
            self.device_id
        );
        let refuse =
            |view: &DeviceView| checked.keys().try_for_each(|name| self.refused(view, name));
        self.shared.look(refuse)?;
        self.broker_usable(&operation)?;
        let deadline = Instant::now() + self.timeout;
        self.until_ready(deadline, &operation).await?;
        let mut sets = Vec::new();
        self.shared.look(|view| {
            refuse(view)?;
            for (name, value) in &checked {
                let (Some(parameter), Some(path)) =
                    (self.profile.parameter(name), self.mapping.path(name))
                else {
                    continue;
                };
                let payload = self.payload(view, parameter, path, value)?;
                sets.push((parameter.clone(), path.clone(), payload, value.clone()));
            }
            Ok::<(), LinkError>(())
        })?;
        let pending = Pending::expect(
            &self.shared,
            sets.iter()
                .map(|(parameter, path, payload, value)| Expectation::Echo {
                    path: path.clone(),
                    payload: payload.clone(),
                    value: Some(Written::new(parameter, value.clone())),
                })
                .collect(),
        );
        for (_, path, payload, _) in sets {
            self.set(&path, payload, QoS::AtLeastOnce).await?;
        }
        self.confirmed(
            &pending,
            (deadline, self.timeout),
            &operation,
            "the device did not confirm the new value (neither the property nor its $target reported it)",
        )
        .await
    }

    async fn invoke(&self, request: &ActionRequest) -> Result<ActionOutcome, LinkError> {
        let action =
            self.profile
                .action(&request.name)
                .ok_or_else(|| LinkError::UnknownAction {
                    name: request.name.clone(),
                })?;
        let arguments = action.check_arguments(&request.arguments)?;
        let operation = format!(
            "action `{}` of Homie device `{}`",
            action.name, self.device_id
        );
        let unsupported = |reason: String| LinkError::Unsupported {
            operation: operation.clone(),
            reason,
        };
        let mapping = self
            .homie
            .actions
            .get(&action.name)
            .ok_or_else(|| unsupported("[mqtt.homie.actions] does not map it".to_owned()))?;
        let path: PropertyPath = mapping.property.parse().map_err(unsupported)?;
        self.broker_usable(&operation)?;
        let deadline = Instant::now() + self.timeout;
        self.until_ready(deadline, &operation).await?;
        let (payload, retained, since) = self.shared.look(|view| {
            let property = view
                .description()
                .and_then(|d| d.property(&path.node, &path.property));
            let property = match property {
                Some(p) if p.settable => p,
                Some(_) => {
                    return Err(unsupported(format!(
                        "the device's $description says property `{path}` is not settable"
                    )));
                }
                None => {
                    return Err(unsupported(format!(
                        "the device's $description has no property `{path}`"
                    )));
                }
            };
            let payload = match (&mapping.payload, &mapping.argument) {
                (Some(payload), _) => payload.clone(),
                (None, Some(argument)) => {
                    let value = arguments.get(argument).ok_or_else(|| {
                        unsupported(format!("argument `{argument}` was not given"))
                    })?;
                    encode_value(value, Some(property.datatype)).map_err(|why| {
                        LinkError::OutOfRange {
                            name: format!("{}.{argument}", action.name),
                            value: value.to_string(),
                            expected: why,
                        }
                    })?
                }
                (None, None) => return Err(unsupported("no payload is mapped".to_owned())),
            };
            Ok((payload, property.retained, view.times_left_ready()))
        })?;
        // Homie § QoS: sets of non-retained properties go at most once, so a momentary command
        // never arrives late or twice.
        let qos = if retained {
            QoS::AtLeastOnce
        } else {
            QoS::AtMostOnce
        };
        let done = ActionOutcome::Done {
            output: BTreeMap::new(),
        };
        match mapping.confirm {
            ActionConfirm::None => {
                self.set(&path, payload, qos).await?;
                Ok(done)
            }
            ActionConfirm::Restart => {
                let pending =
                    Pending::expect(&self.shared, vec![Expectation::LeavesReady { since }]);
                self.set(&path, payload, qos).await?;
                self.confirmed(
                    &pending,
                    (deadline, self.timeout),
                    &operation,
                    "the device did not leave `ready` (it did not restart)",
                )
                .await?;
                Ok(ActionOutcome::Accepted)
            }
            ActionConfirm::Value => {
                let pending = Pending::expect(
                    &self.shared,
                    vec![Expectation::Echo {
                        path: path.clone(),
                        payload: payload.clone(),
                        value: None,
                    }],
                );
                self.set(&path, payload, qos).await?;
                let after = action.timeout.max(self.timeout);
                self.confirmed(
                    &pending,
                    (Instant::now() + after, after),
                    &operation,
                    "the device did not confirm the value set",
                )
                .await?;
                Ok(done)
            }
        }
    }

    fn events(&self) -> broadcast::Receiver<LinkEvent> {
        self.hub.subscribe()
    }

    fn firmware(&self) -> Option<&dyn FirmwareTarget> {
        None
    }

    fn logs(&self) -> Option<&dyn LogSource> {
        self.logs.as_ref().map(|logs| logs as &dyn LogSource)
    }
}

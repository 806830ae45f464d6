//! The generic link: a device mapped topic by topic in `[mqtt.generic]`. Values it pushes are
//! evented; reads, writes, actions, identity, firmware and logs go over MQTT 5
//! request/response, each answer read at the profile's JSON pointers.
//!
//! - Reads fail as a whole: one request per distinct read request (topic and payload), every
//!   value found and typed, or an error.
//! - Writes check every value and build every payload before the first request goes out;
//!   values with the same write request go in one payload.
//! - The device's own error (at the error pointer) is `DeviceRefused` with its words; an
//!   answer the gateway cannot read is `Malformed`; no answer is `Timeout`.
//! - Identity evidence is the device's certificate only when it proves it holds the key
//!   (`identity.proof`, [`crate::codec::proof`]); otherwise none.

mod firmware;
mod logs;
mod proof;
mod request;
mod watch;

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use iotmc_adapter::{
    ActionOutcome, ActionRequest, Availability, DeviceLink, FirmwareTarget, Identity,
    IdentityEvidence, LinkError, LinkEvent, LogSource, Readings,
};
use serde_json::Value as Json;
use tokio::sync::broadcast;

use super::{EventHub, LinkContext, TaskGuard, watch_broker};
use crate::address::Address;
use crate::codec::generic::{output_value, place, text_at, value_at};
use crate::codec::json::from_value;
use crate::profile::generic::{GenericSection, expand};
use crate::settings::MqttVersion;
use firmware::ChunkedFirmware;
use logs::{RequestLog, follow_topic};
use request::{Ask, Requester};

/// A device speaking the generic dialect.
#[derive(Debug)]
pub struct GenericLink {
    context: LinkContext,
    /// Its address, `mqtt://<broker>/<device>`: what an identity proof signs.
    address: String,
    section: GenericSection,
    requester: Requester,
    hub: Arc<EventHub>,
    /// Bumped after every pushed state message.
    state_seen: Arc<tokio::sync::watch::Sender<u64>>,
    /// The last retained info document, with `identity.topic`.
    info: Arc<tokio::sync::watch::Sender<Option<Json>>>,
    firmware: Option<ChunkedFirmware>,
    logs: Option<Box<dyn LogSource>>,
    _tasks: Vec<TaskGuard>,
}

impl GenericLink {
    /// Attaches the device: subscribes to its availability, state and info topics. Refuses an
    /// MQTT 3.1.1 broker when the profile needs request/response.
    pub async fn attach(context: LinkContext) -> Result<Arc<dyn DeviceLink>, LinkError> {
        let section = context
            .section
            .generic
            .clone()
            .ok_or_else(|| LinkError::Unsupported {
                operation: format!("attaching device `{}`", context.device_id),
                reason: format!(
                    "its profile `{}` has no [mqtt.generic] table",
                    context.profile.id
                ),
            })?;
        if context.broker.version() == MqttVersion::V311
            && let Some(field) = section.first_request()
        {
            return Err(LinkError::Unsupported {
                operation: format!("attaching device `{}`", context.device_id),
                reason: format!(
                    "its profile `{}` uses MQTT 5 request/response (`{field}`), but broker `{}` is connected with MQTT 3.1.1; set the protocol version of [[mqtt.brokers]] `{}` in the gateway config to MQTT 5 (the broker must support it)",
                    context.profile.id,
                    context.broker.name(),
                    context.broker.name()
                ),
            });
        }
        let hub = Arc::new(EventHub::new(Arc::clone(&context.profile)));
        let requester = Requester {
            broker: context.broker.clone(),
            device_id: context.device_id.clone(),
            error_pointer: section.error_pointer.clone(),
            timeout: context.section.response_timeout,
        };
        let state_seen = Arc::new(tokio::sync::watch::channel(0).0);
        let info = Arc::new(tokio::sync::watch::channel(None).0);
        let device = context.device.clone();
        let mut tasks = vec![watch_broker(&context.broker, Arc::clone(&hub))];
        tasks.push(
            watch::availability_task(
                &context.broker,
                section.availability.as_ref(),
                &device,
                &context.device_id,
                Arc::clone(&hub),
            )
            .await?,
        );
        tasks.extend(
            watch::state_tasks(
                &context.broker,
                &context.profile,
                &section,
                &device,
                &context.device_id,
                &hub,
                &state_seen,
            )
            .await?,
        );
        if let Some(topic) = section.identity.as_ref().and_then(|i| i.topic.as_ref()) {
            tasks.push(
                watch::info_task(
                    &context.broker,
                    &expand(topic, &device),
                    &context.device_id,
                    Arc::clone(&info),
                )
                .await?,
            );
        }
        let firmware = section.firmware.as_ref().map(|map| {
            ChunkedFirmware::new(
                requester.clone(),
                map,
                &context.profile.firmware,
                &device,
                Arc::clone(&hub),
            )
        });
        let logs: Option<Box<dyn LogSource>> = match &section.logs {
            Some(map) if map.request_topic.is_some() => {
                Some(Box::new(RequestLog::new(requester.clone(), map, &device)))
            }
            Some(map) => match &map.topic {
                Some(topic) => {
                    let (log, task) =
                        follow_topic(&context.broker, &expand(topic, &device), &context.device_id)
                            .await?;
                    tasks.push(task);
                    Some(Box::new(log))
                }
                None => None,
            },
            None => None,
        };
        let address = Address {
            broker: context.broker.name().to_owned(),
            device: device.clone(),
        }
        .to_string();
        Ok(Arc::new(Self {
            context,
            address,
            section,
            requester,
            hub,
            state_seen,
            info,
            firmware,
            logs,
            _tasks: tasks,
        }))
    }

    fn topic(&self, template: &str) -> String {
        expand(template, &self.context.device)
    }

    fn offline(&self, operation: &str) -> LinkError {
        LinkError::Transport(format!(
            "{operation}: device `{}` is offline (its availability topic says so); wait for it to come back",
            self.context.device_id
        ))
    }

    /// Pushed-only parameters: the last value pushed, waiting up to the response timeout for
    /// the first state message.
    async fn pushed(&self, name: &str) -> Result<Json, LinkError> {
        if self.hub.availability() == Some(Availability::Offline) {
            return Err(self.offline(&format!("reading `{name}`")));
        }
        let mut seen = self.state_seen.subscribe();
        let timeout = self.requester.timeout;
        let wait = async {
            loop {
                if let Some(value) = self.hub.last(name) {
                    return Ok(value);
                }
                if seen.changed().await.is_err() {
                    return Err(LinkError::Closed);
                }
            }
        };
        let value = tokio::time::timeout(timeout, wait)
            .await
            .map_err(|_| LinkError::Timeout { after: timeout })??;
        Ok(from_value(&value))
    }
}

#[async_trait]
impl DeviceLink for GenericLink {
    async fn identify(&self) -> Result<Identity, LinkError> {
        let profile = &self.context.profile;
        let mut identity = Identity {
            manufacturer: profile.manufacturer.clone(),
            model: profile.model.clone(),
            evidence: IdentityEvidence::None,
            ..Identity::default()
        };
        let Some(map) = &self.section.identity else {
            return Ok(identity);
        };
        let (topic, document) = if let Some(request) = &map.request {
            let topic = self.topic(&request.topic);
            let document = self
                .requester
                .ask(Ask::json("identify", &topic, &request.payload))
                .await?;
            (topic, document)
        } else {
            if self.hub.availability() == Some(Availability::Offline) {
                return Err(self.offline("identify"));
            }
            let topic = map
                .topic
                .as_deref()
                .map(|t| self.topic(t))
                .unwrap_or_default();
            let mut info = self.info.subscribe();
            let timeout = self.requester.timeout;
            let document = tokio::time::timeout(timeout, info.wait_for(Option::is_some))
                .await
                .map_err(|_| LinkError::Timeout { after: timeout })?
                .map_err(|_| LinkError::Closed)?
                .clone()
                .unwrap_or(Json::Null);
            (topic, document)
        };
        let text = |pointer: &str| {
            text_at(&topic, &document, pointer)
                .map_err(|e| self.requester.malformed("identify", &e.to_string()))
        };
        if let Some(p) = &map.manufacturer
            && let Some(found) = text(p)?
        {
            identity.manufacturer = found;
        }
        if let Some(p) = &map.model
            && let Some(found) = text(p)?
        {
            identity.model = found;
        }
        identity.serial = text(&map.serial)?;
        identity.firmware_version = text(&map.firmware_version)?;
        identity.hardware_version = text(&map.hardware_version)?;
        if let Some(map) = &map.proof {
            let topic = self.topic(&map.request.topic);
            identity.evidence = proof::evidence(&self.requester, map, &topic, &self.address).await;
        }
        Ok(identity)
    }

    async fn read(&self, names: &[String]) -> Result<Readings, LinkError> {
        self.context.profile.check_read(names)?;
        // One request per distinct (topic, payload); pushed-only parameters from the state.
        let mut requests: BTreeMap<(String, String), Vec<&str>> = BTreeMap::new();
        let mut values = Readings::new();
        for name in names {
            let map = self
                .section
                .parameters
                .get(name)
                .ok_or_else(|| LinkError::UnknownParameter { name: name.clone() })?;
            match &map.read {
                Some(read) => requests
                    .entry((self.topic(&read.topic), read.payload.to_string()))
                    .or_default()
                    .push(name),
                None => {
                    let json = self.pushed(name).await?;
                    let parameter = self
                        .context
                        .profile
                        .parameter(name)
                        .ok_or_else(|| LinkError::UnknownParameter { name: name.clone() })?;
                    let value = value_at("", &json, "", parameter)
                        .map_err(|e| self.requester.malformed("read", &e.to_string()))?;
                    values.insert(name.clone(), value);
                }
            }
        }
        for ((topic, _), group) in &requests {
            let Some(read) = self.section.parameters[group[0]].read.as_ref() else {
                continue;
            };
            let answer = self
                .requester
                .ask(Ask::json("read", topic, &read.payload))
                .await?;
            for name in group {
                let map = &self.section.parameters[*name];
                let (Some(pointer), Some(parameter)) =
                    (map.read_pointer(), self.context.profile.parameter(name))
                else {
                    continue;
                };
                let value = value_at(topic, &answer, pointer, parameter)
                    .map_err(|e| self.requester.malformed("read", &e.to_string()))?;
                values.insert((*name).to_owned(), value);
            }
        }
        self.hub.report(values.clone());
        Ok(values)
    }

    async fn write(&self, values: &Readings) -> Result<(), LinkError> {
        let checked = self.context.profile.check_write(values)?;
        // Every payload is built before the first request goes out.
        let mut payloads: BTreeMap<(String, String), Json> = BTreeMap::new();
        for (name, value) in &checked {
            let map = self
                .section
                .parameters
                .get(name)
                .ok_or_else(|| LinkError::UnknownParameter { name: name.clone() })?;
            let (Some(write), Some(pointer)) = (&map.write, map.write_pointer()) else {
                return Err(LinkError::Unsupported {
                    operation: format!("writing `{name}`"),
                    reason: "the profile maps no `write` request for it".into(),
                });
            };
            let key = (self.topic(&write.topic), write.payload.to_string());
            let payload = payloads.entry(key).or_insert_with(|| write.payload.clone());
            place(payload, pointer, from_value(value)).map_err(|why| LinkError::Unsupported {
                operation: format!("writing `{name}`"),
                reason: why,
            })?;
        }
        for ((topic, _), payload) in &payloads {
            self.requester
                .ask(Ask::json("write", topic, payload))
                .await?;
        }
        self.hub.report(checked);
        Ok(())
    }

    async fn invoke(&self, action: &ActionRequest) -> Result<ActionOutcome, LinkError> {
        let spec =
            self.context
                .profile
                .action(&action.name)
                .ok_or_else(|| LinkError::UnknownAction {
                    name: action.name.clone(),
                })?;
        let arguments = spec.check_arguments(&action.arguments)?;
        let map =
            self.section
                .actions
                .get(&action.name)
                .ok_or_else(|| LinkError::UnknownAction {
                    name: action.name.clone(),
                })?;
        let mut payload = map.payload.clone();
        for (name, value) in &arguments {
            if let Some(pointer) = map.arguments.get(name) {
                place(&mut payload, pointer, from_value(value)).map_err(|why| {
                    LinkError::Unsupported {
                        operation: format!("action `{}`", action.name),
                        reason: why,
                    }
                })?;
            }
        }
        let topic = self.topic(&map.topic);
        let operation = format!("action `{}`", action.name);
        let answer = self
            .requester
            .ask(Ask::json(&operation, &topic, &payload).within(spec.timeout))
            .await?;
        let mut output = BTreeMap::new();
        for (name, pointer) in &map.output {
            let found = answer.pointer(pointer).ok_or_else(|| {
                self.requester.malformed(
                    &operation,
                    &format!("the answer on `{topic}` has no output `{name}` at `{pointer}`"),
                )
            })?;
            output.insert(name.clone(), output_value(found));
        }
        if map.restarts {
            Ok(ActionOutcome::Accepted)
        } else {
            Ok(ActionOutcome::Done { output })
        }
    }

    fn events(&self) -> broadcast::Receiver<LinkEvent> {
        self.hub.subscribe()
    }

    fn firmware(&self) -> Option<&dyn FirmwareTarget> {
        self.firmware.as_ref().map(|f| f as &dyn FirmwareTarget)
    }

    fn logs(&self) -> Option<&dyn LogSource> {
        self.logs.as_deref()
    }
}

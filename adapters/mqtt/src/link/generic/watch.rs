//! What the device publishes without being asked: its availability, its pushed state and its
//! retained info, each followed by a task that stops with the link.

use std::collections::BTreeMap;
use std::sync::Arc;

use iotmc_adapter::{Availability, LinkError, Profile, Readings};
use serde_json::Value as Json;
use tokio::sync::watch;

use crate::codec::generic::{availability, value_at};
use crate::codec::json;
use crate::driver::{BrokerHandle, ConnectionState, Subscription};
use crate::link::{EventHub, TaskGuard};
use crate::profile::generic::{AvailabilityMap, GenericSection, expand};

/// Subscribes to the availability topic and marks the device online and offline from what it
/// says. Without one, the device counts as online while its broker connection is up.
pub(super) async fn availability_task(
    broker: &BrokerHandle,
    map: Option<&AvailabilityMap>,
    device: &str,
    device_id: &str,
    hub: Arc<EventHub>,
) -> Result<TaskGuard, LinkError> {
    let Some(map) = map.cloned() else {
        let mut state = broker.state();
        return Ok(TaskGuard::spawn(async move {
            loop {
                if *state.borrow_and_update() == ConnectionState::Connected {
                    hub.set_availability(Availability::Online);
                }
                if state.changed().await.is_err() {
                    return;
                }
            }
        }));
    };
    let topic = expand(&map.topic, device);
    let mut subscription = broker.subscribe(&topic).await?;
    let device_id = device_id.to_owned();
    Ok(TaskGuard::spawn(async move {
        while let Some(message) = subscription.recv().await {
            match availability(
                &message.payload,
                map.pointer.as_deref(),
                &map.online,
                &map.offline,
            ) {
                Some(now) => hub.set_availability(now),
                None => tracing::warn!(
                    device = %device_id,
                    topic = %message.topic,
                    payload = %String::from_utf8_lossy(&message.payload[..message.payload.len().min(80)]),
                    expected_online = %map.online,
                    expected_offline = %map.offline,
                    "availability message is neither the online nor the offline payload; ignored"
                ),
            }
        }
    }))
}

/// Subscribes to each state topic and reports the values found at their pointers. Bumps
/// `seen` after every state message, for reads of pushed-only parameters.
pub(super) async fn state_tasks(
    broker: &BrokerHandle,
    profile: &Arc<Profile>,
    section: &GenericSection,
    device: &str,
    device_id: &str,
    hub: &Arc<EventHub>,
    seen: &Arc<watch::Sender<u64>>,
) -> Result<Vec<TaskGuard>, LinkError> {
    let mut by_topic: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    for (name, map) in &section.parameters {
        if let (Some(topic), Some(pointer)) = (&map.state_topic, map.state_pointer()) {
            by_topic
                .entry(expand(topic, device))
                .or_default()
                .push((name.clone(), pointer.to_owned()));
        }
    }
    let mut tasks = Vec::new();
    for (topic, parameters) in by_topic {
        let subscription = broker.subscribe(&topic).await?;
        tasks.push(TaskGuard::spawn(follow_state(
            subscription,
            parameters,
            Arc::clone(profile),
            device_id.to_owned(),
            Arc::clone(hub),
            Arc::clone(seen),
        )));
    }
    Ok(tasks)
}

async fn follow_state(
    mut subscription: Subscription,
    parameters: Vec<(String, String)>,
    profile: Arc<Profile>,
    device_id: String,
    hub: Arc<EventHub>,
    seen: Arc<watch::Sender<u64>>,
) {
    while let Some(message) = subscription.recv().await {
        let document = match json::parse(&message.topic, &message.payload) {
            Ok(document) => document,
            Err(e) => {
                tracing::warn!(device = %device_id, error = %e, "pushed state ignored");
                continue;
            }
        };
        hub.report(values_in(
            &profile,
            &parameters,
            &message.topic,
            &document,
            &device_id,
        ));
        seen.send_modify(|n| *n += 1);
    }
}

/// The values of `parameters` (name, pointer) found in a state document. Parameters the
/// document does not hold are left out (devices push partial state); wrong types are logged.
fn values_in(
    profile: &Profile,
    parameters: &[(String, String)],
    topic: &str,
    document: &Json,
    device_id: &str,
) -> Readings {
    let mut values = Readings::new();
    for (name, pointer) in parameters {
        let Some(parameter) = profile.parameter(name) else {
            continue;
        };
        if document.pointer(pointer).is_none() {
            continue;
        }
        match value_at(topic, document, pointer, parameter) {
            Ok(value) => {
                values.insert(name.clone(), value);
            }
            Err(e) => tracing::warn!(device = %device_id, error = %e, "pushed value ignored"),
        }
    }
    values
}

/// Follows a retained info topic, keeping its last JSON document.
pub(super) async fn info_task(
    broker: &BrokerHandle,
    topic: &str,
    device_id: &str,
    info: Arc<watch::Sender<Option<Json>>>,
) -> Result<TaskGuard, LinkError> {
    let mut subscription = broker.subscribe(topic).await?;
    let device_id = device_id.to_owned();
    Ok(TaskGuard::spawn(async move {
        while let Some(message) = subscription.recv().await {
            match json::parse(&message.topic, &message.payload) {
                Ok(document) => {
                    info.send_replace(Some(document));
                }
                Err(e) => tracing::warn!(device = %device_id, error = %e, "info message ignored"),
            }
        }
    }))
}

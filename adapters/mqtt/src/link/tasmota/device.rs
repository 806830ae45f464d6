//! One Tasmota device as the link sees it: its topics and mappings, and the command machinery.
//!
//! Tasmota has no correlation id, so a command's answer is told apart from the rest of
//! `stat/<topic>/...` by where it comes and how it is keyed ([`Expect`]), and a device has at
//! most one command outstanding at a time (its `turn`). A waiter is registered before the
//! command is published, so an answer that comes back at once is not missed.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use iotmc_adapter::profile::Parameter;
use iotmc_adapter::{Availability, LinkError, Profile, Value};
use serde_json::{Map, Value as Json};
use tokio::sync::oneshot;

use crate::codec::tasmota::{Answer, Expect, Prefix, StatMessage, Topics};
use crate::driver::{BrokerHandle, ConnectionState};
use crate::frame::Outgoing;
use crate::link::LogRing;
use crate::link::{EventHub, broker_down};
use crate::profile::tasmota::{ParameterMap, TasmotaSection};

/// A parameter with its mapping, and its value map normalised to the parameter's type.
#[derive(Debug, Clone)]
pub(super) struct Mapping {
    pub(super) parameter: Parameter,
    pub(super) map: ParameterMap,
    pub(super) values: Vec<(String, Value)>,
}

/// What the router hands a waiter: the answer, or why the message that must have been the
/// answer could not be read.
type Delivery = Result<Answer, String>;

#[derive(Debug)]
struct Waiter {
    id: u64,
    expect: Expect,
    deliver: oneshot::Sender<Delivery>,
}

/// The commands waiting for their answers.
#[derive(Debug, Default)]
pub(super) struct Waiters {
    next: AtomicU64,
    list: RwLock<Vec<Waiter>>,
}

/// Withdraws a waiter when dropped (answered, timed out or cancelled).
pub(super) struct Registration<'a> {
    waiters: &'a Waiters,
    id: u64,
    answer: oneshot::Receiver<Delivery>,
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        self.waiters
            .list
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|w| w.id != self.id);
    }
}

impl Waiters {
    pub(super) fn register(&self, expect: Expect) -> Registration<'_> {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let (deliver, answer) = oneshot::channel();
        self.list
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Waiter {
                id,
                expect,
                deliver,
            });
        Registration {
            waiters: self,
            id,
            answer,
        }
    }

    /// Hands `message` to the first waiter it answers; `false` if it answers none.
    pub(super) fn offer(&self, message: &StatMessage) -> bool {
        let mut list = self.list.write().unwrap_or_else(PoisonError::into_inner);
        let Some((at, answer)) = list
            .iter()
            .enumerate()
            .find_map(|(i, w)| w.expect.answer(message).map(|a| (i, a)))
        else {
            return false;
        };
        let _ = list.remove(at).deliver.send(Ok(answer));
        true
    }

    /// Hands a decoding error to the waiter that owns topic `suffix` (`STATUS<n>`, `UPGRADE`):
    /// a malformed message there can only be its answer. `false` if none owns it.
    pub(super) fn offer_error(&self, suffix: &str, error: &str) -> bool {
        let mut list = self.list.write().unwrap_or_else(PoisonError::into_inner);
        let owner = list.iter().position(|w| match &w.expect {
            Expect::Status(n) => suffix == format!("STATUS{n}"),
            Expect::Upgrade => suffix == "UPGRADE",
            Expect::Result(_) => false,
        });
        match owner {
            Some(at) => {
                let _ = list.remove(at).deliver.send(Err(error.to_owned()));
                true
            }
            None => false,
        }
    }
}

impl Registration<'_> {
    /// The answer, within `after`.
    pub(super) async fn answer(&mut self, after: Duration) -> Option<Result<Delivery, ()>> {
        tokio::time::timeout(after, &mut self.answer)
            .await
            .ok()
            .map(|r| r.map_err(|_| ()))
    }

    /// The answer, as a future to select on.
    pub(super) fn receiver(&mut self) -> &mut oneshot::Receiver<Delivery> {
        &mut self.answer
    }
}

/// One attached Tasmota device.
#[derive(Debug)]
pub(super) struct Device {
    pub(super) id: String,
    pub(super) profile: Arc<Profile>,
    pub(super) section: TasmotaSection,
    pub(super) broker: BrokerHandle,
    pub(super) topics: Topics,
    pub(super) timeout: Duration,
    pub(super) hub: Arc<EventHub>,
    pub(super) mappings: BTreeMap<String, Mapping>,
    pub(super) log: Arc<LogRing>,
    pub(super) waiters: Waiters,
    /// What the device's LWT last said.
    pub(super) lwt: RwLock<Option<Availability>>,
    /// One command outstanding at a time.
    turn: tokio::sync::Mutex<()>,
}

impl Device {
    pub(super) fn new(
        id: String,
        profile: Arc<Profile>,
        section: TasmotaSection,
        broker: BrokerHandle,
        topic: &str,
        timeout: Duration,
    ) -> Self {
        let mappings = profile
            .parameters
            .iter()
            .filter_map(|parameter| {
                let map = section.parameters.get(&parameter.name)?.clone();
                let values = map.value_map(parameter);
                Some((
                    parameter.name.clone(),
                    Mapping {
                        parameter: parameter.clone(),
                        map,
                        values,
                    },
                ))
            })
            .collect();
        let topics = Topics::new(&section.full_topic, topic);
        Self {
            id,
            hub: Arc::new(EventHub::new(Arc::clone(&profile))),
            profile,
            section,
            broker,
            topics,
            timeout,
            mappings,
            log: Arc::new(LogRing::default()),
            waiters: Waiters::default(),
            lwt: RwLock::new(None),
            turn: tokio::sync::Mutex::new(()),
        }
    }

    /// What the device's LWT last said.
    pub(super) fn lwt(&self) -> Option<Availability> {
        *self.lwt.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// Refuses at once what cannot reach the device: the broker is down, or the device said
    /// it went offline.
    pub(super) fn reachable(&self, what: &str) -> Result<(), LinkError> {
        if *self.broker.state().borrow() != ConnectionState::Connected {
            return Err(broker_down(
                &self.broker,
                &format!("{what} (device `{}`)", self.id),
            ));
        }
        if self.lwt() == Some(Availability::Offline) {
            return Err(LinkError::Transport(format!(
                "{what}: device `{}` is offline (its LWT `{}` says Offline); it is restarting, unplugged or off the network, and nothing was sent",
                self.id,
                self.topics.topic(Prefix::Tele, "LWT")
            )));
        }
        Ok(())
    }

    /// Sends `command` with `payload` and waits for its answer (as `expect` describes it), at
    /// most the profile's response timeout. The device's refusal is `DeviceRefused`.
    pub(super) async fn command(
        &self,
        command: &str,
        payload: &str,
        expect: Expect,
    ) -> Result<Map<String, Json>, LinkError> {
        let what = describe(command, payload);
        self.reachable(&what)?;
        let _turn = self.turn.lock().await;
        let mut registration = self.waiters.register(expect);
        match self.send(command, payload, &mut registration).await? {
            Answer::Value(answer) => Ok(answer),
            Answer::Refused { code } => Err(self.refused(command, payload, code)),
            Answer::Upgrade(_) => Err(LinkError::Malformed(format!(
                "{what} to device `{}` was answered with an upgrade report",
                self.id
            ))),
        }
    }

    /// Publishes the command and waits for the registered answer.
    pub(super) async fn send(
        &self,
        command: &str,
        payload: &str,
        registration: &mut Registration<'_>,
    ) -> Result<Answer, LinkError> {
        let what = describe(command, payload);
        let topic = self.topics.command(command);
        self.broker
            .publish(Outgoing::new(topic.clone(), payload.to_owned()))
            .await?;
        match registration.answer(self.timeout).await {
            Some(Ok(Ok(answer))) => Ok(answer),
            Some(Ok(Err(malformed))) => Err(LinkError::Malformed(format!(
                "{what} to device `{}`: {malformed}",
                self.id
            ))),
            Some(Err(())) => Err(LinkError::Closed),
            None => {
                if *self.broker.state().borrow() != ConnectionState::Connected {
                    return Err(broker_down(
                        &self.broker,
                        &format!("{what} (device `{}`) got no answer", self.id),
                    ));
                }
                tracing::warn!(
                    device = %self.id,
                    command = %what,
                    topic = %topic,
                    after = ?self.timeout,
                    "no answer from the Tasmota device; check that it is powered and on the network"
                );
                Err(LinkError::Timeout {
                    after: self.timeout,
                })
            }
        }
    }

    fn refused(&self, command: &str, payload: &str, code: String) -> LinkError {
        let what = describe(command, payload);
        let hint = if code.ends_with("Unknown") {
            "Tasmota does not know this command: check the command name in the profile's [mqtt.tasmota] mapping and that the device's firmware build includes it"
        } else {
            "Tasmota could not carry it out: check the payload against the command's range in the Tasmota documentation"
        };
        LinkError::DeviceRefused {
            code,
            detail: Some(format!(
                "device `{}` answered {what} on {}; {hint}",
                self.id,
                self.topics.topic(Prefix::Stat, "RESULT")
            )),
        }
    }
}

/// `Power1 ON`, `Status0`, as a person would type the command.
pub(super) fn describe(command: &str, payload: &str) -> String {
    if payload.is_empty() {
        format!("`{command}`")
    } else {
        format!("`{command} {payload}`")
    }
}

//! What the link knows of its Homie device, updated message by message, without IO and without
//! reading the clock: its `$state`, its `$description` (checked against the profile), the
//! latest value of every mapped property, and the confirmations writes and actions wait for.
//! The link's task feeds it messages ([`DeviceView::handle`]) and acts on the [`Effect`]s it
//! returns; readers and writers look at it under a short lock.

use std::collections::{BTreeMap, BTreeSet};

use iotmc_adapter::profile::Parameter;
use iotmc_adapter::{Availability, Profile, Readings, Severity, Value, ValueType};

use crate::codec::homie::{
    Description, DeviceState, DeviceTopic, EMPTY_STRING, PropertyPath, decode_description,
    decode_log_line, decode_state, decode_value, log_severity, quote,
};
use crate::profile::HomieSection;
use crate::profile::homie::IdentitySource;

use super::check::{Mismatches, check_description};

/// Which properties the link follows, from the profile's `[mqtt.homie]`.
#[derive(Debug, Clone, Default)]
pub(crate) struct Mapping {
    /// Parameter name by property.
    parameters: BTreeMap<PropertyPath, String>,
    /// Property by parameter name.
    paths: BTreeMap<String, PropertyPath>,
    /// Properties whose text is an identity fact.
    identity: BTreeSet<PropertyPath>,
}

impl Mapping {
    /// The mapping of a checked section.
    pub(crate) fn new(profile: &Profile, section: &HomieSection) -> Self {
        let mut mapping = Self::default();
        for parameter in &profile.parameters {
            if let Some(path) = section.parameter_path(&parameter.name) {
                mapping
                    .parameters
                    .insert(path.clone(), parameter.name.clone());
                mapping.paths.insert(parameter.name.clone(), path);
            }
        }
        for (_, source) in section.identity_sources() {
            if let Some(IdentitySource::Property(path)) = source
                && let Ok(path) = path.parse()
            {
                mapping.identity.insert(path);
            }
        }
        mapping
    }

    /// The property carrying `parameter`.
    pub(crate) fn path(&self, parameter: &str) -> Option<&PropertyPath> {
        self.paths.get(parameter)
    }

    /// Every parameter with its property.
    pub(crate) fn parameters(&self) -> impl Iterator<Item = (&String, &PropertyPath)> {
        self.paths.iter()
    }
}

/// The latest value of a property.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Reported {
    /// The payload as text (an empty string for Homie's NUL).
    pub(crate) text: String,
    /// Decoded into its parameter's type, for mapped parameters.
    pub(crate) value: Option<Value>,
}

/// Something the link does after a message.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Effect {
    /// The device's availability is now this.
    Availability(Availability),
    /// Parameters reported these values.
    Readings(Readings),
    /// A log line of the device, for the log ring.
    Log {
        /// Mapped from the Homie level.
        severity: Severity,
        /// The line.
        message: String,
        /// `level` (the Homie level as sent), `alert` (an alert's ID).
        fields: BTreeMap<String, String>,
    },
    /// Something the operator should know (malformed payload, description mismatch).
    Warn(String),
    /// Something ignored on purpose (an unmapped property, an unknown topic).
    Ignored(String),
}

/// What a write or action waits for.
#[derive(Debug, Clone)]
pub(crate) enum Expectation {
    /// The property (or its `$target`) reports what was set.
    Echo {
        /// The property set.
        path: PropertyPath,
        /// The payload sent; a `$target` must repeat it byte for byte, a value may.
        payload: String,
        /// The value written, to compare a reported one within its parameter's resolution.
        value: Option<Written>,
    },
    /// The device's `$state` leaves `ready` (it restarts).
    LeavesReady {
        /// [`DeviceView::times_left_ready`] when the action was sent.
        since: u64,
    },
}

/// A value written to a parameter, with what comparing it needs.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Written {
    /// The value.
    pub(crate) value: Value,
    /// The parameter's type.
    pub(crate) value_type: ValueType,
    /// The parameter's resolution.
    pub(crate) resolution: Option<f64>,
}

impl Written {
    /// `value` written to `parameter`.
    pub(crate) fn new(parameter: &Parameter, value: Value) -> Self {
        Self {
            value,
            value_type: parameter.value_type,
            resolution: parameter.resolution,
        }
    }

    /// Whether the device reporting `reported` took this value, within the resolution.
    pub(crate) fn matches(&self, reported: &Value) -> bool {
        match (self.value_type, reported.as_f64(), self.value.as_f64()) {
            (ValueType::Float, Some(a), Some(b)) => {
                let tolerance = self.resolution.map_or(1e-9 * a.abs().max(1.0), |r| r / 2.0);
                (a - b).abs() <= tolerance
            }
            _ => *reported == self.value,
        }
    }
}

/// Where an expectation stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Not yet.
    Waiting,
    /// It happened.
    Met,
    /// The device went away first (`lost`, `disconnected`, `sleeping`, or removed: `None`).
    Gone(Option<DeviceState>),
    /// The broker connection dropped first.
    BrokerDown,
}

#[derive(Debug)]
struct Pending {
    expectation: Expectation,
    outcome: Outcome,
}

/// The device as the link knows it.
#[derive(Debug, Default)]
pub(crate) struct DeviceView {
    state: Option<DeviceState>,
    description: Option<Description>,
    mismatches: Mismatches,
    values: BTreeMap<PropertyPath, Reported>,
    left_ready: u64,
    pending: BTreeMap<u64, Pending>,
    next_pending: u64,
}

impl DeviceView {
    /// The device's `$state`; `None` until one arrived, after the device was removed, and
    /// while the broker connection is down.
    pub(crate) fn state(&self) -> Option<DeviceState> {
        self.state
    }

    /// The device's `$description`, once one arrived.
    pub(crate) fn description(&self) -> Option<&Description> {
        self.description.as_ref()
    }

    /// Why writes to `parameter` are refused, if its description says so.
    pub(crate) fn refusal(&self, parameter: &str) -> Option<&str> {
        self.mismatches.refusal(parameter)
    }

    /// The latest value of `path`.
    pub(crate) fn reported(&self, path: &PropertyPath) -> Option<&Reported> {
        self.values.get(path)
    }

    /// How many times the device's state has left `ready`.
    pub(crate) fn times_left_ready(&self) -> u64 {
        self.left_ready
    }

    /// Whether the latest values can be read: the device is `ready`, or `sleeping` (its
    /// retained values are the last it reported before it slept).
    pub(crate) fn values_current(&self) -> bool {
        matches!(self.state, Some(DeviceState::Ready | DeviceState::Sleeping))
    }

    /// Whether the device takes commands now: `ready`, with its description known.
    pub(crate) fn takes_commands(&self) -> bool {
        self.state == Some(DeviceState::Ready) && self.description.is_some()
    }

    /// Starts waiting for `expectation`; returns its id.
    pub(crate) fn expect(&mut self, expectation: Expectation) -> u64 {
        let id = self.next_pending;
        self.next_pending += 1;
        let outcome = match &expectation {
            Expectation::Echo {
                path,
                value: Some(written),
                ..
            } if self
                .values
                .get(path)
                .and_then(|r| r.value.as_ref())
                .is_some_and(|now| written.matches(now)) =>
            {
                // Setting what the device already reports: nothing to wait for.
                Outcome::Met
            }
            _ => Outcome::Waiting,
        };
        self.pending.insert(
            id,
            Pending {
                expectation,
                outcome,
            },
        );
        id
    }

    /// Where expectation `id` stands (`Met` once forgotten: nothing to wait for).
    pub(crate) fn outcome(&self, id: u64) -> Outcome {
        self.pending.get(&id).map_or(Outcome::Met, |p| p.outcome)
    }

    /// Stops tracking expectation `id`.
    pub(crate) fn forget(&mut self, id: u64) {
        self.pending.remove(&id);
    }

    /// The broker connection dropped: the device's state is unknown until the retained
    /// `$state` arrives again, and whatever waited for the device fails.
    pub(crate) fn broker_down(&mut self) {
        self.state = None;
        for pending in self.pending.values_mut() {
            if pending.outcome == Outcome::Waiting {
                pending.outcome = Outcome::BrokerDown;
            }
        }
    }

    /// Takes one message below the device: `topic` is the whole topic, `rest` the part after
    /// `<domain>/5/<device>/`.
    pub(crate) fn handle(
        &mut self,
        profile: &Profile,
        mapping: &Mapping,
        topic: &str,
        rest: &str,
        payload: &[u8],
    ) -> Vec<Effect> {
        match DeviceTopic::classify(rest) {
            DeviceTopic::State => self.take_state(topic, payload),
            DeviceTopic::Description => self.take_description(profile, mapping, topic, payload),
            DeviceTopic::Value(path) => self.take_value(profile, mapping, topic, path, payload),
            DeviceTopic::Target(path) => self.take_target(topic, path, payload),
            DeviceTopic::Log(level) => take_log(topic, level, payload),
            DeviceTopic::Alert(id) => take_alert(topic, id, payload),
            DeviceTopic::Set(_) => Vec::new(),
            DeviceTopic::Other => vec![Effect::Ignored(format!(
                "`{topic}` is no Homie 5 topic this link follows; ignored"
            ))],
        }
    }

    fn take_state(&mut self, topic: &str, payload: &[u8]) -> Vec<Effect> {
        let state = match decode_state(topic, payload) {
            Ok(state) => state,
            Err(e) => return vec![Effect::Warn(format!("{e}; the state stays as it was"))],
        };
        if self.state == Some(DeviceState::Ready) && state != Some(DeviceState::Ready) {
            self.left_ready += 1;
        }
        self.state = state;
        let gone = matches!(
            state,
            None | Some(DeviceState::Lost | DeviceState::Disconnected | DeviceState::Sleeping)
        );
        for pending in self.pending.values_mut() {
            if pending.outcome != Outcome::Waiting {
                continue;
            }
            pending.outcome = match pending.expectation {
                Expectation::LeavesReady { since } if self.left_ready > since => Outcome::Met,
                Expectation::Echo { .. } if gone => Outcome::Gone(state),
                _ => Outcome::Waiting,
            };
        }
        let mut effects = Vec::new();
        match state {
            Some(DeviceState::Ready) => effects.push(Effect::Availability(Availability::Online)),
            // `init` is the device connecting or reconfiguring: it keeps whatever availability
            // it had until it is `ready` (or gone).
            Some(DeviceState::Init) => {}
            Some(DeviceState::Lost | DeviceState::Disconnected | DeviceState::Sleeping) => {
                effects.push(Effect::Availability(Availability::Offline));
            }
            None => {
                effects.push(Effect::Availability(Availability::Offline));
                effects.push(Effect::Warn(format!(
                    "`{topic}` was cleared: the device was removed from the broker"
                )));
            }
        }
        effects
    }

    fn take_description(
        &mut self,
        profile: &Profile,
        mapping: &Mapping,
        topic: &str,
        payload: &[u8],
    ) -> Vec<Effect> {
        if payload.is_empty() {
            // Part of removing the device (the empty `$state` says so).
            return Vec::new();
        }
        let description = match decode_description(topic, payload) {
            Ok(description) => description,
            Err(e) => {
                let kept = match &self.description {
                    Some(d) => format!("version {} is kept", d.version),
                    None => "writes wait for a valid one".to_owned(),
                };
                return vec![Effect::Warn(format!(
                    "{e}; the device's previous description ({kept})"
                ))];
            }
        };
        let mut effects: Vec<Effect> = description
            .skipped
            .iter()
            .map(|note| Effect::Warn(format!("`{topic}`: {note}")))
            .collect();
        self.mismatches = check_description(profile, mapping, &description);
        effects.extend(
            self.mismatches
                .warnings()
                .map(|w| Effect::Warn(w.to_owned())),
        );
        self.description = Some(description);
        effects
    }

    fn take_value(
        &mut self,
        profile: &Profile,
        mapping: &Mapping,
        topic: &str,
        path: PropertyPath,
        payload: &[u8],
    ) -> Vec<Effect> {
        let parameter = mapping
            .parameters
            .get(&path)
            .and_then(|name| profile.parameter(name));
        if parameter.is_none() && !mapping.identity.contains(&path) {
            return vec![Effect::Ignored(format!(
                "`{topic}`: no parameter or identity fact of the profile is on this property"
            ))];
        }
        if payload.is_empty() {
            // A deleted retained value: the device removed the property.
            self.values.remove(&path);
            return Vec::new();
        }
        let value = match parameter.map(|p| decode_value(topic, p, payload)) {
            Some(Ok(value)) => Some(value),
            Some(Err(e)) => {
                return vec![Effect::Warn(format!(
                    "{e}; the parameter keeps its last value"
                ))];
            }
            None => None,
        };
        let text = String::from_utf8_lossy(payload);
        let text = if text == EMPTY_STRING { "" } else { &text };
        for pending in self.pending.values_mut() {
            if pending.outcome != Outcome::Waiting {
                continue;
            }
            if let Expectation::Echo {
                path: expected,
                payload: sent,
                value: written,
            } = &pending.expectation
                && *expected == path
            {
                let echoed = match (written, &value) {
                    (Some(written), Some(now)) => written.matches(now),
                    _ => sent.as_bytes() == payload,
                };
                if echoed {
                    pending.outcome = Outcome::Met;
                }
            }
        }
        self.values.insert(
            path,
            Reported {
                text: text.to_owned(),
                value: value.clone(),
            },
        );
        match (parameter, value) {
            (Some(parameter), Some(value)) => vec![Effect::Readings(Readings::from([(
                parameter.name.clone(),
                value,
            )]))],
            _ => Vec::new(),
        }
    }

    fn take_target(&mut self, topic: &str, path: PropertyPath, payload: &[u8]) -> Vec<Effect> {
        if payload.len() > crate::codec::homie::MAX_VALUE_PAYLOAD {
            return vec![Effect::Warn(format!(
                "`{topic}` is {} bytes; ignored",
                payload.len()
            ))];
        }
        for pending in self.pending.values_mut() {
            if let Expectation::Echo {
                path: expected,
                payload: sent,
                ..
            } = &pending.expectation
                && *expected == path
                && sent.as_bytes() == payload
                && pending.outcome == Outcome::Waiting
            {
                pending.outcome = Outcome::Met;
            }
        }
        Vec::new()
    }
}

fn take_log(topic: &str, level: &str, payload: &[u8]) -> Vec<Effect> {
    let message = match decode_log_line(topic, payload) {
        Ok(message) => message,
        Err(e) => return vec![Effect::Warn(format!("{e}; the log line is dropped"))],
    };
    let (severity, note) = match log_severity(level) {
        Some(severity) => (severity, None),
        None => (
            Severity::Notice,
            Some(Effect::Warn(format!(
                "`{topic}`: level {} is not a Homie level (debug, info, warn, error, fatal); kept as notice",
                quote(level)
            ))),
        ),
    };
    let mut effects: Vec<Effect> = note.into_iter().collect();
    effects.push(Effect::Log {
        severity,
        message,
        fields: BTreeMap::from([("level".to_owned(), level.chars().take(32).collect())]),
    });
    effects
}

fn take_alert(topic: &str, id: &str, payload: &[u8]) -> Vec<Effect> {
    let fields = BTreeMap::from([("alert".to_owned(), id.chars().take(64).collect())]);
    if payload.is_empty() {
        return vec![Effect::Log {
            severity: Severity::Notice,
            message: format!("alert `{id}` resolved"),
            fields,
        }];
    }
    match decode_log_line(topic, payload) {
        Ok(message) => vec![Effect::Log {
            severity: Severity::Warning,
            message,
            fields,
        }],
        Err(e) => vec![Effect::Warn(format!("{e}; the alert is dropped"))],
    }
}

#[cfg(test)]
mod tests;

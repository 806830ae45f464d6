//! Everything the device publishes, dispatched: answers to their waiters, values in answers
//! and telemetry to the event hub, the LWT to availability, log lines to the ring. A payload
//! that cannot be read is logged with its topic and dropped; the link keeps working.

use std::sync::{Arc, PoisonError};

use iotmc_adapter::{Availability, Readings};
use serde_json::{Map, Value as Json};
use tokio::sync::mpsc;

use super::device::Device;
use crate::codec::tasmota::{
    self, Prefix, StatMessage, answers_command, decode_lwt, decode_stat, decode_value, lookup,
};
use crate::driver::Subscription;
use crate::frame::Message;

/// Routes messages until the driver stops. `online` hears each time the device's LWT says
/// Online.
pub(super) async fn route(
    device: Arc<Device>,
    mut stat: Subscription,
    mut tele: Subscription,
    online: mpsc::UnboundedSender<()>,
) {
    loop {
        let message = tokio::select! {
            m = stat.recv() => m,
            m = tele.recv() => m,
        };
        let Some(message) = message else {
            tracing::debug!(device = %device.id, "the broker's driver stopped; the link stops routing");
            return;
        };
        device.dispatch(&message, &online);
    }
}

/// Where a value is in what the device published.
enum Source<'a> {
    /// An answer on `RESULT`.
    Result,
    /// An answer on `STATUS<n>`.
    Status(u8),
    /// `tele/<topic>/STATE` or `SENSOR`.
    Tele(&'a str),
}

impl Device {
    pub(super) fn dispatch(&self, message: &Message, online: &mpsc::UnboundedSender<()>) {
        let topic = message.topic.as_str();
        match self.topics.classify(topic) {
            Some((Prefix::Stat, suffix)) => self.stat(topic, suffix, &message.payload),
            Some((Prefix::Tele, "LWT")) => self.on_lwt(topic, &message.payload, online),
            Some((Prefix::Tele, suffix @ ("STATE" | "SENSOR"))) => {
                match tasmota::object(topic, &message.payload) {
                    Ok(object) => self.report(&object, &Source::Tele(suffix), topic),
                    Err(e) => tracing::warn!(device = %self.id, error = %e, "telemetry ignored"),
                }
            }
            // The issue places log lines on tele/; Tasmota publishes them on stat/. Both count.
            Some((Prefix::Tele, "LOGGING")) => self.stat(topic, "LOGGING", &message.payload),
            Some((Prefix::Tele, other)) => {
                tracing::debug!(device = %self.id, topic, "telemetry `{other}` is not mapped; ignored");
            }
            Some((Prefix::Cmnd, _)) | None => {
                tracing::debug!(device = %self.id, topic, "unexpected topic; ignored");
            }
        }
    }

    fn stat(&self, topic: &str, suffix: &str, payload: &[u8]) {
        match decode_stat(topic, suffix, payload) {
            Ok(StatMessage::Logging(line)) => self.log.push(super::logs::record(line)),
            Ok(message) => {
                match &message {
                    StatMessage::Result(object) => self.report(object, &Source::Result, topic),
                    StatMessage::Status(n, object) => {
                        self.report(object, &Source::Status(*n), topic)
                    }
                    StatMessage::Other => {
                        tracing::debug!(device = %self.id, topic, "stat message of a kind the link does not use; ignored");
                    }
                    _ => {}
                }
                if !self.waiters.offer(&message) && matches!(message, StatMessage::Upgrade(_)) {
                    tracing::info!(device = %self.id, topic, "upgrade report nobody waited for");
                }
            }
            Err(e) => {
                if !self.waiters.offer_error(suffix, &e.to_string()) {
                    tracing::warn!(device = %self.id, error = %e, "message ignored");
                }
            }
        }
    }

    fn on_lwt(&self, topic: &str, payload: &[u8], online: &mpsc::UnboundedSender<()>) {
        let Some(availability) = decode_lwt(payload) else {
            tracing::warn!(
                device = %self.id,
                topic,
                payload = %String::from_utf8_lossy(payload.get(..64).unwrap_or(payload)),
                "LWT ignored: expected `Online` or `Offline`"
            );
            return;
        };
        *self.lwt.write().unwrap_or_else(PoisonError::into_inner) = Some(availability);
        self.hub.set_availability(availability);
        if availability == Availability::Online {
            let _ = online.send(());
        }
    }

    /// Reports the values of every parameter mapped to `source` that `object` carries.
    fn report(&self, object: &Map<String, Json>, source: &Source<'_>, topic: &str) {
        let json = Json::Object(object.clone());
        let mut values = Readings::new();
        for (name, mapping) in &self.mappings {
            let pointer = match (source, &mapping.map) {
                (Source::Result, m) => match &m.command {
                    Some(command) if object.keys().any(|k| answers_command(command, k)) => {
                        &m.pointer
                    }
                    _ => continue,
                },
                (Source::Status(n), m) if m.status == Some(*n) => &m.pointer,
                (Source::Tele(suffix), m) => match &m.tele {
                    Some(tele) if tele.topic.as_str() == *suffix => &tele.pointer,
                    _ => continue,
                },
                _ => continue,
            };
            let Some(found) = lookup(&json, pointer) else {
                continue;
            };
            match decode_value(&mapping.parameter, &mapping.values, found) {
                Ok(value) => {
                    values.insert(name.clone(), value);
                }
                Err(reason) => tracing::warn!(
                    device = %self.id,
                    topic,
                    parameter = %name,
                    pointer = %pointer,
                    "value ignored: {reason}"
                ),
            }
        }
        if !values.is_empty() {
            self.hub.report(values);
        }
    }
}

//! One request to the device over MQTT 5 request/response, and its answer read as the profile
//! says: the device's error at the error pointer is its refusal, anything unreadable is
//! malformed, and no answer is a timeout.

use std::time::Duration;

use bytes::Bytes;
use iotmc_adapter::LinkError;
use serde_json::Value as Json;

use crate::codec::generic::{Refusal, answer};
use crate::driver::{BrokerHandle, Request};
use crate::frame::{Outgoing, Properties};

/// Sends requests for one device.
#[derive(Debug, Clone)]
pub(super) struct Requester {
    pub(super) broker: BrokerHandle,
    pub(super) device_id: String,
    pub(super) error_pointer: String,
    pub(super) timeout: Duration,
}

/// What to send.
#[derive(Debug)]
pub(super) struct Ask<'a> {
    /// What the gateway is doing, for messages: `read`, `firmware begin`, ...
    pub(super) operation: &'a str,
    /// The topic (expanded).
    pub(super) topic: &'a str,
    /// The payload.
    pub(super) payload: Bytes,
    /// MQTT 5 user properties.
    pub(super) user: Vec<(String, String)>,
    /// Binary (a firmware chunk) rather than JSON.
    pub(super) binary: bool,
    /// How long to wait, if not the section's response timeout.
    pub(super) timeout: Option<Duration>,
}

impl<'a> Ask<'a> {
    /// A JSON request.
    pub(super) fn json(operation: &'a str, topic: &'a str, payload: &Json) -> Self {
        Self {
            operation,
            topic,
            payload: Bytes::from(payload.to_string()),
            user: Vec::new(),
            binary: false,
            timeout: None,
        }
    }

    /// This request with its own timeout.
    pub(super) fn within(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }
}

impl Requester {
    /// Sends the request and returns the answer's JSON, or the device's refusal as
    /// `DeviceRefused`.
    pub(super) async fn ask(&self, ask: Ask<'_>) -> Result<Json, LinkError> {
        let timeout = ask.timeout.unwrap_or(self.timeout);
        let content_type = if ask.binary {
            "application/octet-stream"
        } else {
            "application/json"
        };
        let message = Outgoing::new(ask.topic, ask.payload).with_properties(Properties {
            content_type: Some(content_type.to_owned()),
            user: ask.user,
            ..Properties::default()
        });
        let answered = self.broker.request(Request { message, timeout }).await;
        let message = match answered {
            Ok(message) => message,
            Err(e) => {
                tracing::warn!(
                    device = %self.device_id,
                    topic = ask.topic,
                    operation = ask.operation,
                    error = %e,
                    "request to the device failed"
                );
                return Err(e);
            }
        };
        match answer(ask.topic, &message.payload, &self.error_pointer) {
            Ok(Ok(json)) => Ok(json),
            Ok(Err(refusal)) => Err(self.refused(ask.operation, ask.topic, refusal)),
            Err(e) => Err(self.malformed(ask.operation, &e.to_string())),
        }
    }

    /// The device's refusal, with its words and where it said them.
    pub(super) fn refused(&self, operation: &str, topic: &str, refusal: Refusal) -> LinkError {
        let place = format!("answer to {operation} on `{topic}`");
        LinkError::DeviceRefused {
            code: refusal.code,
            detail: Some(match refusal.message {
                Some(message) => format!("{message}; {place}"),
                None => place,
            }),
        }
    }

    /// An answer the gateway cannot use.
    pub(super) fn malformed(&self, operation: &str, why: &str) -> LinkError {
        LinkError::Malformed(format!(
            "{operation} on device `{}`: {why}; check the profile's pointers against what the device sends",
            self.device_id
        ))
    }
}

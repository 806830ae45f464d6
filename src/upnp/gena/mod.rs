//! GENA eventing (UDA 2.0 §4): subscriptions, SEQ, moderation and NOTIFY delivery.
//!
//! Placeholder with the interface the face uses; the implementation lands from its branch.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;

use super::net::ServedInterface;

/// One evented service of one device.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServiceKey {
    /// Device UDN.
    pub device: uuid::Uuid,
    /// Service name.
    pub service_id: String,
}

/// Moderation of one variable.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Moderation {
    /// None.
    None,
    /// maximumRate.
    MaximumRate(Duration),
    /// minimumDelta.
    MinimumDelta(f64),
}

/// An evented variable.
#[derive(Debug, Clone, PartialEq)]
pub struct EventedVariable {
    /// Name.
    pub name: String,
    /// Moderation.
    pub moderation: Moderation,
}

/// Limits.
#[derive(Debug, Clone, Default)]
pub struct GenaLimits {}

/// Handle.
#[derive(Debug, Clone)]
pub struct Eventing {}

impl Eventing {
    /// Starts.
    pub fn start(_limits: GenaLimits) -> Self {
        Self {}
    }
    /// Registers.
    pub fn register(
        &self,
        _key: ServiceKey,
        _variables: Vec<EventedVariable>,
        _initial: Vec<(String, String)>,
    ) {
    }
    /// Publishes.
    pub fn publish(&self, _key: &ServiceKey, _changes: Vec<(String, String)>) {}
    /// Handles.
    pub async fn handle_request(
        &self,
        _key: &ServiceKey,
        _method: &hyper::Method,
        _headers: &hyper::HeaderMap,
        _arrived_on: &ServedInterface,
        _server: &str,
    ) -> hyper::Response<Full<Bytes>> {
        hyper::Response::new(Full::new(Bytes::new()))
    }
    /// Stops.
    pub async fn shutdown(self) {}
}

//! The link's task: follows everything below `<domain>/5/<device>/`, feeds it to the device
//! view, and acts on what the view says (events, log lines, warnings). It also forgets the
//! device's state while the broker connection is down, since the retained `$state` arrives
//! again with the resubscription.

use std::sync::Arc;

use iotmc_adapter::Profile;
use tokio::sync::watch;

use crate::driver::{ConnectionState, Subscription};
use crate::link::{EventHub, LogRing};

use super::Shared;
use super::view::{Effect, Mapping};

/// What the task needs.
pub(super) struct Followed {
    /// The device id from the gateway config, for log fields.
    pub(super) device_id: String,
    /// `<domain>/5/<device>/`.
    pub(super) prefix: String,
    pub(super) profile: Arc<Profile>,
    pub(super) mapping: Arc<Mapping>,
    pub(super) shared: Arc<Shared>,
    pub(super) hub: Arc<EventHub>,
    /// The log ring, when the profile collects the device's log.
    pub(super) ring: Option<Arc<LogRing>>,
}

/// Runs until the driver stops.
pub(super) async fn follow(
    followed: Followed,
    mut subscription: Subscription,
    mut broker: watch::Receiver<ConnectionState>,
) {
    let mut dropped = 0;
    loop {
        tokio::select! {
            message = subscription.recv() => {
                let Some(message) = message else {
                    followed.shared.update(|view| view.broker_down());
                    return;
                };
                followed.take(&message.topic, &message.payload);
                if subscription.dropped() > dropped {
                    dropped = subscription.dropped();
                    tracing::warn!(
                        device = %followed.device_id,
                        dropped,
                        "messages of this Homie device were dropped: the link fell behind"
                    );
                }
            }
            changed = broker.changed() => {
                if changed.is_err() {
                    followed.shared.update(|view| view.broker_down());
                    return;
                }
                if *broker.borrow_and_update() != ConnectionState::Connected {
                    followed.shared.update(|view| view.broker_down());
                }
            }
        }
    }
}

impl Followed {
    fn take(&self, topic: &str, payload: &[u8]) {
        let Some(rest) = topic.strip_prefix(&self.prefix) else {
            tracing::debug!(device = %self.device_id, topic, "ignored: not below the device");
            return;
        };
        let effects = self
            .shared
            .update(|view| view.handle(&self.profile, &self.mapping, topic, rest, payload));
        for effect in effects {
            match effect {
                Effect::Availability(availability) => self.hub.set_availability(availability),
                Effect::Readings(readings) => self.hub.report(readings),
                Effect::Log {
                    severity,
                    message,
                    fields,
                } => {
                    if let Some(ring) = &self.ring {
                        ring.push(iotmc_adapter::DeviceLogRecord {
                            index: None,
                            timestamp: None,
                            severity,
                            message,
                            fields,
                        });
                    }
                }
                Effect::Warn(warning) => {
                    tracing::warn!(device = %self.device_id, "{warning}");
                }
                Effect::Ignored(why) => tracing::debug!(device = %self.device_id, "{why}"),
            }
        }
    }
}

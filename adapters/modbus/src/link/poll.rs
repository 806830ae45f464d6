//! Background polling: every parameter read at the profile's interval in as few requests as
//! the plan allows, changes reported as they happen, availability from whether the device
//! answers.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use iotmc_adapter::{Availability, LinkError, LinkEvent, Readings, Value};
use tokio::sync::broadcast;
use tokio::task::AbortHandle;
use tokio::time::{Instant, MissedTickBehavior};

use super::Device;
use crate::driver::Priority;

/// Starts the poller of `device`; it stops when aborted (the link is dropped).
pub(super) fn spawn(device: Arc<Device>, events: broadcast::Sender<LinkEvent>) -> AbortHandle {
    tokio::spawn(run(device, events)).abort_handle()
}

/// What the poller remembers between rounds.
#[derive(Debug)]
struct PollState {
    last: Readings,
    availability: Option<Availability>,
    last_answer: Instant,
    offline_after: Duration,
    last_error: Option<String>,
}

async fn run(device: Arc<Device>, events: broadcast::Sender<LinkEvent>) {
    let names = device.profile.readable_parameters();
    let interval = device.profile.poll.interval;
    let offline_after = device
        .profile
        .health
        .offline_after
        .unwrap_or(interval.saturating_mul(3))
        // Never declare a device offline before one whole request could have failed.
        .max(device.policy.deadline());
    let mut state = PollState {
        last: Readings::new(),
        availability: None,
        last_answer: Instant::now(),
        offline_after,
        last_error: None,
    };
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let result = if names.is_empty() {
            // Nothing to read: ask for the identity's first register set instead, so
            // availability is still known. Devices without parameters are rare.
            super::identify::identify(&device)
                .await
                .map(|_| Readings::new())
        } else {
            device.read_parameters(&names, Priority::Poll).await
        };
        state.observe(&device, &events, result);
    }
}

impl PollState {
    fn observe(
        &mut self,
        device: &Device,
        events: &broadcast::Sender<LinkEvent>,
        result: Result<Readings, LinkError>,
    ) {
        let now = Instant::now();
        match result {
            Ok(values) => {
                self.last_answer = now;
                self.last_error = None;
                self.set_availability(device, events, Availability::Online);
                let changed: Readings = values
                    .into_iter()
                    .filter(|(name, value)| {
                        let resolution =
                            device.mapped.get(name).and_then(|m| m.parameter.resolution);
                        self.last
                            .get(name)
                            .is_none_or(|old| differs(old, value, resolution))
                    })
                    .collect();
                if !changed.is_empty() {
                    self.last.extend(changed.clone());
                    let _ = events.send(LinkEvent::Changed {
                        at: SystemTime::now(),
                        values: changed,
                    });
                }
            }
            Err(e) => {
                // A device that answers with an exception is reachable; one that does not
                // answer is not.
                let reachable = !matches!(
                    e.kind(),
                    iotmc_adapter::ErrorKind::Timeout
                        | iotmc_adapter::ErrorKind::Transport
                        | iotmc_adapter::ErrorKind::Closed
                );
                let text = e.to_string();
                if self.last_error.as_deref() != Some(text.as_str()) {
                    tracing::warn!(device = %device.device_id, error = %e, hint = e.hint(), "poll failed");
                    self.last_error = Some(text);
                }
                if reachable {
                    self.last_answer = now;
                    self.set_availability(device, events, Availability::Online);
                } else if self.availability.is_none()
                    || now.duration_since(self.last_answer) >= self.offline_after
                {
                    self.set_availability(device, events, Availability::Offline);
                }
            }
        }
    }

    fn set_availability(
        &mut self,
        device: &Device,
        events: &broadcast::Sender<LinkEvent>,
        availability: Availability,
    ) {
        if self.availability == Some(availability) {
            return;
        }
        tracing::info!(device = %device.device_id, ?availability, "availability changed");
        self.availability = Some(availability);
        if availability == Availability::Offline {
            // Values read after the device returns are all news.
            self.last.clear();
        }
        let _ = events.send(LinkEvent::Availability {
            at: SystemTime::now(),
            availability,
        });
    }
}

/// Whether `new` is a change from `old`: for numbers, by at least the declared resolution.
fn differs(old: &Value, new: &Value, resolution: Option<f64>) -> bool {
    match (old.as_f64(), new.as_f64(), resolution) {
        (Some(a), Some(b), Some(step)) if step > 0.0 => (a - b).abs() >= step / 2.0,
        _ => old != new,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn change_smaller_than_half_the_resolution_should_not_count() {
        assert!(!differs(
            &Value::Float(21.0),
            &Value::Float(21.04),
            Some(0.1)
        ));
        assert!(differs(&Value::Float(21.0), &Value::Float(21.1), Some(0.1)));
        assert!(differs(&Value::Float(21.0), &Value::Float(21.01), None));
        assert!(differs(
            &Value::from("heat"),
            &Value::from("cool"),
            Some(0.1)
        ));
    }
}

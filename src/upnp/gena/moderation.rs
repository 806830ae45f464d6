//! Event moderation per state variable (UDA 2.0 §2.5 and §4.3): `maximumRate` holds changes
//! that come too fast and events the latest when the period ends; `minimumDelta` suppresses
//! numeric changes smaller than the delta. Moderation is per variable, not per subscriber: it
//! decides what the service events, and every subscriber gets the same events.

use tokio::time::Instant;

use super::service::{EventedVariable, Moderation};

/// What to do with a change offered to a variable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Event the new value now.
    Event,
    /// Hold it; [`VariableState::poll_timeout`] says when it may be evented.
    Hold,
    /// Do not event it: it equals the last evented value, or is below `minimumDelta`.
    Suppress,
}

/// One evented variable: its current value and what was last evented.
#[derive(Debug, Clone)]
pub(crate) struct VariableState {
    variable: EventedVariable,
    /// The newest value published (what a new subscriber's initial event carries).
    current: String,
    /// The value subscribers were last told.
    last_evented: String,
    /// When the variable was last evented, for `maximumRate`.
    last_evented_at: Option<Instant>,
    /// A change is held by `maximumRate`.
    held: bool,
}

impl VariableState {
    /// A variable whose value at registration is `initial`; the initial events of subscribers
    /// carry it, so it counts as evented.
    pub(crate) fn new(variable: EventedVariable, initial: String) -> Self {
        Self {
            variable,
            last_evented: initial.clone(),
            current: initial,
            last_evented_at: None,
            held: false,
        }
    }

    /// The variable's name.
    pub(crate) fn name(&self) -> &str {
        &self.variable.name
    }

    /// The newest value published.
    pub(crate) fn current(&self) -> &str {
        &self.current
    }

    /// Offers a newly published `value` at `now`. On [`Verdict::Event`] the caller events
    /// [`Self::current`].
    pub(crate) fn offer(&mut self, value: &str, now: Instant) -> Verdict {
        value.clone_into(&mut self.current);
        if self.held {
            return Verdict::Hold;
        }
        if self.current == self.last_evented {
            return Verdict::Suppress;
        }
        match self.variable.moderation {
            Moderation::None => {}
            Moderation::MinimumDelta(delta) => {
                if let (Ok(old), Ok(new)) = (
                    self.last_evented.trim().parse::<f64>(),
                    self.current.trim().parse::<f64>(),
                ) && old.is_finite()
                    && new.is_finite()
                    && (new - old).abs() < delta
                {
                    return Verdict::Suppress;
                }
            }
            Moderation::MaximumRate(period) => {
                if let Some(at) = self.last_evented_at
                    && now < at + period
                {
                    self.held = true;
                    return Verdict::Hold;
                }
            }
        }
        self.mark_evented(now);
        Verdict::Event
    }

    /// When a held change may be evented.
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        match (self.held, self.variable.moderation, self.last_evented_at) {
            (true, Moderation::MaximumRate(period), Some(at)) => Some(at + period),
            _ => None,
        }
    }

    /// At `now`, releases a held change whose period has ended: returns the value to event, or
    /// `None` if nothing is due or the value went back to what was last evented.
    pub(crate) fn handle_timeout(&mut self, now: Instant) -> Option<String> {
        if self.poll_timeout().is_none_or(|due| now < due) {
            return None;
        }
        self.held = false;
        if self.current == self.last_evented {
            return None;
        }
        self.mark_evented(now);
        Some(self.current.clone())
    }

    fn mark_evented(&mut self, now: Instant) {
        self.last_evented.clone_from(&self.current);
        self.last_evented_at = Some(now);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn var(moderation: Moderation) -> VariableState {
        VariableState::new(
            EventedVariable {
                name: "Temperature".into(),
                moderation,
            },
            "20".into(),
        )
    }

    #[test]
    fn maximum_rate_should_hold_changes_inside_the_period_and_then_send_the_latest() {
        let t0 = Instant::now();
        let mut v = var(Moderation::MaximumRate(Duration::from_secs(5)));
        assert_eq!(v.offer("21", t0), Verdict::Event);
        assert_eq!(v.poll_timeout(), None);
        assert_eq!(v.offer("22", t0 + Duration::from_secs(1)), Verdict::Hold);
        assert_eq!(v.offer("23", t0 + Duration::from_secs(2)), Verdict::Hold);
        assert_eq!(v.poll_timeout(), Some(t0 + Duration::from_secs(5)));
        assert_eq!(v.handle_timeout(t0 + Duration::from_secs(4)), None);
        assert_eq!(
            v.handle_timeout(t0 + Duration::from_secs(5)),
            Some("23".into())
        );
        assert_eq!(v.poll_timeout(), None);
        // The period restarts from the released event.
        assert_eq!(v.offer("24", t0 + Duration::from_secs(9)), Verdict::Hold);
        assert_eq!(v.offer("25", t0 + Duration::from_secs(10)), Verdict::Hold);
        assert_eq!(
            v.handle_timeout(t0 + Duration::from_secs(10)),
            Some("25".into())
        );
        assert_eq!(v.offer("26", t0 + Duration::from_secs(15)), Verdict::Event);
    }

    #[test]
    fn maximum_rate_should_send_nothing_when_the_held_value_went_back() {
        let t0 = Instant::now();
        let mut v = var(Moderation::MaximumRate(Duration::from_secs(5)));
        assert_eq!(v.offer("21", t0), Verdict::Event);
        assert_eq!(v.offer("22", t0 + Duration::from_secs(1)), Verdict::Hold);
        assert_eq!(v.offer("21", t0 + Duration::from_secs(2)), Verdict::Hold);
        assert_eq!(v.handle_timeout(t0 + Duration::from_secs(5)), None);
        assert_eq!(v.poll_timeout(), None);
    }

    #[test]
    fn minimum_delta_should_suppress_small_changes_since_the_last_evented_value() {
        let t0 = Instant::now();
        let mut v = var(Moderation::MinimumDelta(1.0));
        assert_eq!(v.offer("20.5", t0), Verdict::Suppress);
        assert_eq!(v.offer("20.9", t0), Verdict::Suppress);
        // Measured from the last *evented* value (20), not from the last published one.
        assert_eq!(v.offer("21.0", t0), Verdict::Event);
        assert_eq!(v.offer("20.2", t0), Verdict::Suppress);
        assert_eq!(v.offer("19.9", t0), Verdict::Event);
        assert_eq!(v.current(), "19.9");
    }

    #[test]
    fn minimum_delta_should_event_values_that_are_not_numbers() {
        let t0 = Instant::now();
        let mut v = var(Moderation::MinimumDelta(1.0));
        assert_eq!(v.offer("n/a", t0), Verdict::Event);
        assert_eq!(v.offer("20.1", t0), Verdict::Event);
        assert_eq!(v.offer("NaN", t0), Verdict::Event);
    }

    #[test]
    fn an_unchanged_value_should_not_be_evented_again() {
        let t0 = Instant::now();
        let mut v = var(Moderation::None);
        assert_eq!(v.offer("20", t0), Verdict::Suppress);
        assert_eq!(v.offer("21", t0), Verdict::Event);
        assert_eq!(v.offer("21", t0), Verdict::Suppress);
    }
}

//! The update state machine driven with a fake clock: one test per path through it.

#![allow(clippy::unwrap_used)]

use super::*;

mod edges;
mod fuzz;
mod restore;
mod start;

/// 2024-01-01T00:00:00Z, a Monday.
const T0: UnixMs = 1_704_067_200_000;
const SECOND: u64 = 1_000;
const MINUTE: u64 = 60 * SECOND;
const HOUR: u64 = 60 * MINUTE;

const PROBATION: u64 = 2 * HOUR;
const GRACE: u64 = 30 * MINUTE;
const CHECK_EVERY: u64 = 10 * MINUTE;

fn image(version: &str, size: u64) -> ImageRef {
    ImageRef {
        sha256: format!("{:0>64}", version.replace('.', "")),
        version: version.into(),
        size,
    }
}

fn new_image() -> ImageRef {
    image("1.3.0", 1_000)
}

fn old_image() -> ImageRef {
    image("1.2.0", 900)
}

/// An update of `pump-1` from 1.2.0 to 1.3.0 starting an hour after T0.
fn update(strategy: Strategy) -> NewUpdate {
    NewUpdate {
        update_id: "u-1".into(),
        device: "pump-1".into(),
        image: new_image(),
        previous_version: Some("1.2.0".into()),
        previous: match strategy {
            Strategy::NativeTest => None,
            Strategy::Emulated => Some(old_image()),
        },
        strategy,
        start_at: T0 + HOUR,
        window: None,
        probation_ms: PROBATION,
        offline_grace_ms: GRACE,
        check_every_ms: CHECK_EVERY,
        campaign: None,
    }
}

fn healthy() -> HealthSample {
    HealthSample {
        reachable: true,
        running_version: Some("1.3.0".into()),
        problems: Vec::new(),
    }
}

fn unreachable() -> HealthSample {
    HealthSample {
        reachable: false,
        running_version: None,
        problems: vec!["no answer within 5 s".into()],
    }
}

/// The job as it comes back from the database.
fn persisted(job: &Job) -> Job {
    serde_json::from_str(&serde_json::to_string(job).unwrap()).unwrap()
}

/// A machine, a fake clock, and every phase the runner would have persisted, in order.
struct Run {
    machine: Machine,
    now: UnixMs,
    phases: Vec<Phase>,
}

impl Run {
    fn schedule(update: NewUpdate) -> Self {
        Self::watch(Machine::schedule(update, T0), T0)
    }

    fn restore(job: &Job, now: UnixMs) -> Self {
        Self::watch(Machine::restore(persisted(job), now), now)
    }

    fn watch(machine: Machine, now: UnixMs) -> Self {
        let mut run = Self {
            machine,
            now,
            phases: Vec::new(),
        };
        run.record();
        if run.phases.is_empty() {
            run.phases.push(run.job().phase);
        }
        run
    }

    fn job(&self) -> &Job {
        self.machine.job()
    }

    /// What the runner does after every call: persist (here: note the phase) on a change.
    fn record(&mut self) {
        if self.machine.take_change() == Change::State
            && self.phases.last() != Some(&self.job().phase)
        {
            self.phases.push(self.job().phase);
        }
    }

    fn poll(&mut self) -> Option<Command> {
        let command = self.machine.poll_command();
        self.record();
        command
    }

    fn expect(&mut self, expected: Command) {
        assert_eq!(self.poll(), Some(expected), "job: {:#?}", self.job());
        assert_eq!(self.poll(), None, "a second command while one is in flight");
    }

    fn feed(&mut self, input: Input) {
        self.machine.handle(input, self.now);
        self.record();
    }

    /// Moves the clock to the next timeout and handles it; returns that time.
    fn wait(&mut self) -> UnixMs {
        let at = self
            .machine
            .poll_timeout()
            .unwrap_or_else(|| panic!("nothing waits for time: {:#?}", self.job()));
        assert!(at >= self.now, "a timeout in the past: {at} < {}", self.now);
        self.now = at;
        self.machine.handle_timeout(at);
        self.record();
        at
    }

    fn cancel(&mut self) -> Result<(), CancelError> {
        let result = self.machine.cancel(self.now);
        self.record();
        result
    }

    /// From Scheduled to the first health check's timeout: starts, loads, transfers the new
    /// image in two steps and activates it.
    fn drive_into_probation(&mut self) {
        self.wait();
        self.expect(Command::LoadImage { image: new_image() });
        self.feed(Input::ImageLoaded);
        self.expect(Command::Transfer {
            image: new_image(),
            from_offset: 0,
        });
        self.feed(Input::Progress { acknowledged: 400 });
        self.feed(Input::Progress {
            acknowledged: 1_000,
        });
        self.feed(Input::TransferDone {
            verified_on_device: true,
        });
        let mode = match self.job().strategy {
            Strategy::NativeTest => ActivationMode::Test,
            Strategy::Emulated => ActivationMode::Permanent,
        };
        self.expect(Command::Activate(mode));
        self.now += 2 * MINUTE;
        self.feed(Input::Activated {
            running_version: Some("1.3.0".into()),
        });
        assert_eq!(self.job().phase, Phase::Probation);
    }

    /// Health checks answered by `sample(now)` until the machine asks for something else
    /// (returned) or the update ends (None).
    fn probation(&mut self, sample: impl Fn(UnixMs) -> HealthSample) -> Option<Command> {
        loop {
            if self.job().phase.is_terminal() {
                return None;
            }
            match self.poll() {
                Some(Command::CheckHealth) => self.feed(Input::Health(sample(self.now))),
                Some(command) => return Some(command),
                None => {
                    self.wait();
                }
            }
        }
    }

    fn assert_quiet(&mut self) {
        assert_eq!(self.poll(), None);
        assert_eq!(self.machine.poll_timeout(), None);
    }
}

/// Monday to Friday, 02:00 to 04:00 UTC.
fn night_window() -> WindowSpec {
    WindowSpec {
        days: vec![0, 1, 2, 3, 4],
        start_minute: 120,
        duration_s: 2 * 3600,
    }
}

const ALL_THE_WAY: [Phase; 8] = [
    Phase::Scheduled,
    Phase::Downloading,
    Phase::Verified,
    Phase::Transferring,
    Phase::Staged,
    Phase::Rebooting,
    Phase::Probation,
    Phase::Confirmed,
];

#[test]
fn a_scheduled_update_waits_for_its_start_time_and_says_when_it_is() {
    let mut run = Run::schedule(update(Strategy::NativeTest));
    assert_eq!(run.job().phase, Phase::Scheduled);
    assert_eq!(run.job().result, ResultCode::Initial);
    assert_eq!(run.job().detail, "scheduled for 2024-01-01T01:00:00Z");
    assert_eq!((run.job().created_at, run.job().updated_at), (T0, T0));
    assert_eq!(run.machine.poll_timeout(), Some(T0 + HOUR));
    assert_eq!(run.poll(), None);
    run.machine.handle_timeout(T0 + HOUR - 1);
    assert_eq!(run.poll(), None, "started a millisecond early");
    assert_eq!(run.wait(), T0 + HOUR);
    assert_eq!(run.poll(), Some(Command::LoadImage { image: new_image() }));
}

#[test]
fn a_two_bank_update_passes_every_phase_in_order_and_is_confirmed_once_at_the_deadline() {
    let mut run = Run::schedule(update(Strategy::NativeTest));
    run.drive_into_probation();
    let activated_at = run.now;
    let until = run.job().probation_until.unwrap();
    assert_eq!(until, activated_at + PROBATION);

    let mut checked_at = Vec::new();
    let command = loop {
        if let Some(command) = run.poll() {
            if command != Command::CheckHealth {
                break command;
            }
            checked_at.push(run.now);
            run.feed(Input::Health(healthy()));
            continue;
        }
        assert_eq!(run.job().phase, Phase::Probation, "left probation early");
        run.wait();
    };
    assert_eq!(command, Command::Confirm);
    assert_eq!(
        checked_at.last(),
        Some(&until),
        "the passing sample is taken right at the deadline"
    );
    assert!(
        checked_at[..checked_at.len() - 1]
            .iter()
            .all(|t| *t < until),
        "samples before the deadline did not pass probation"
    );
    assert_eq!(checked_at.len() as u64, PROBATION / CHECK_EVERY);

    run.now += SECOND;
    run.feed(Input::Confirmed);
    assert_eq!(run.phases, ALL_THE_WAY);
    assert_eq!(run.job().result, ResultCode::Success);
    assert_eq!(
        run.job().detail,
        "running 1.3.0, confirmed after 2h of probation"
    );
    assert_eq!(run.job().updated_at, run.now);
    run.assert_quiet();
}

#[test]
fn probation_does_not_pass_on_a_sample_taken_before_the_deadline() {
    let mut run = Run::schedule(update(Strategy::NativeTest));
    run.drive_into_probation();
    let until = run.job().probation_until.unwrap();
    // A runner that wakes late for every check still gets a check at the deadline.
    while run.now < until - CHECK_EVERY {
        run.wait();
        run.expect(Command::CheckHealth);
        run.feed(Input::Health(healthy()));
    }
    assert_eq!(run.wait(), until);
    run.expect(Command::CheckHealth);
    // A sample that arrives a millisecond before the deadline (a clock stepped back) does
    // not pass it.
    run.now = until - 1;
    run.feed(Input::Health(healthy()));
    assert_eq!(run.poll(), None);
    assert_eq!(run.job().phase, Phase::Probation);
    assert_eq!(run.wait(), until);
    run.expect(Command::CheckHealth);
    run.feed(Input::Health(healthy()));
    assert_eq!(run.poll(), Some(Command::Confirm));
}

#[test]
fn a_single_bank_update_activates_for_good_and_is_confirmed_without_a_confirm_command() {
    let mut run = Run::schedule(update(Strategy::Emulated));
    run.drive_into_probation();
    let until = run.job().probation_until.unwrap();
    assert_eq!(run.probation(|_| healthy()), None);
    assert_eq!(run.now, until);
    assert_eq!(run.phases, ALL_THE_WAY);
    assert_eq!(run.job().result, ResultCode::Success);
    assert!(!run.job().reinstalling);
    run.assert_quiet();
}

#[test]
fn a_new_image_that_does_not_boot_is_verified_by_reading_the_running_version_and_ends_rolled_back()
{
    let mut run = Run::schedule(update(Strategy::NativeTest));
    run.wait();
    run.expect(Command::LoadImage { image: new_image() });
    run.feed(Input::ImageLoaded);
    run.expect(Command::Transfer {
        image: new_image(),
        from_offset: 0,
    });
    run.feed(Input::TransferDone {
        verified_on_device: false,
    });
    run.expect(Command::Activate(ActivationMode::Test));
    run.feed(Input::ActivateFailed {
        boot_failed: true,
        detail: "MCUboot swapped back: image 1.3.0 did not start".into(),
    });
    run.expect(Command::ReadRunning);
    run.feed(Input::Running(Some("1.2.0".into())));
    assert_eq!(run.job().phase, Phase::RolledBack);
    assert_eq!(run.job().result, ResultCode::BootFailed);
    assert_eq!(run.job().rollback_reason, Some(ResultCode::BootFailed));
    assert!(
        run.job().detail.contains("did not boot"),
        "{}",
        run.job().detail
    );
    assert!(run.job().detail.contains("1.2.0"), "{}", run.job().detail);
    run.assert_quiet();
}

#[test]
fn a_two_bank_device_with_problems_in_probation_is_reverted_and_ends_rolled_back() {
    let mut run = Run::schedule(update(Strategy::NativeTest));
    run.drive_into_probation();
    let failing_from = run.now + 3 * CHECK_EVERY;
    let command = run.probation(|now| {
        let mut sample = healthy();
        if now >= failing_from {
            sample.problems = vec!["flow_rate = 0 is outside its healthy range 1..80".into()];
        }
        sample
    });
    assert_eq!(command, Some(Command::Revert));
    assert_eq!(run.now, failing_from);
    assert_eq!(run.job().phase, Phase::Probation);
    assert!(
        run.job().detail.contains("flow_rate = 0"),
        "{}",
        run.job().detail
    );
    assert_eq!(run.poll(), None);
    run.feed(Input::Reverted {
        running_version: Some("1.2.0".into()),
    });
    assert_eq!(run.job().phase, Phase::RolledBack);
    assert_eq!(run.job().result, ResultCode::ProbationFailed);
    assert!(
        run.job().detail.contains("flow_rate = 0"),
        "{}",
        run.job().detail
    );
    assert!(run.job().detail.contains("1.2.0"), "{}", run.job().detail);
    run.assert_quiet();
}

#[test]
fn a_single_bank_device_that_fails_probation_gets_its_previous_image_installed_again() {
    let mut run = Run::schedule(update(Strategy::Emulated));
    run.drive_into_probation();
    let command = run.probation(|_| HealthSample {
        problems: vec!["error event: watchdog reset".into()],
        ..healthy()
    });
    assert_eq!(command, Some(Command::LoadImage { image: old_image() }));
    assert!(run.job().reinstalling);
    assert_eq!(run.job().rollback_reason, Some(ResultCode::ProbationFailed));
    assert_eq!(run.job().acknowledged, 0);
    assert_eq!(
        run.cancel()
            .map_err(|e| matches!(e, CancelError::TooLate { .. })),
        Err(true)
    );
    run.feed(Input::ImageLoaded);
    run.expect(Command::Transfer {
        image: old_image(),
        from_offset: 0,
    });
    run.feed(Input::Progress { acknowledged: 900 });
    run.feed(Input::TransferDone {
        verified_on_device: false,
    });
    run.expect(Command::Activate(ActivationMode::Permanent));
    run.feed(Input::Activated {
        running_version: Some("1.2.0".into()),
    });
    assert_eq!(run.job().phase, Phase::RolledBack);
    assert_eq!(run.job().result, ResultCode::ProbationFailed);
    assert!(
        run.job().detail.contains("watchdog reset"),
        "{}",
        run.job().detail
    );
    assert_eq!(
        run.phases,
        [
            Phase::Scheduled,
            Phase::Downloading,
            Phase::Verified,
            Phase::Transferring,
            Phase::Staged,
            Phase::Rebooting,
            Phase::Probation,
            Phase::Downloading,
            Phase::Verified,
            Phase::Transferring,
            Phase::Staged,
            Phase::Rebooting,
            Phase::RolledBack,
        ]
    );
    run.assert_quiet();
}

#[test]
fn a_two_bank_device_that_reverts_on_its_own_during_probation_ends_rolled_back_without_a_revert() {
    let mut run = Run::schedule(update(Strategy::NativeTest));
    run.drive_into_probation();
    let reverted_from = run.now + 2 * CHECK_EVERY;
    let command = run.probation(|now| HealthSample {
        running_version: Some(
            if now >= reverted_from {
                "1.2.0"
            } else {
                "1.3.0"
            }
            .into(),
        ),
        ..healthy()
    });
    assert_eq!(command, None);
    assert_eq!(run.job().phase, Phase::RolledBack);
    assert_eq!(run.job().result, ResultCode::ProbationFailed);
    assert!(
        run.job().detail.contains("reverted on its own"),
        "{}",
        run.job().detail
    );
    run.assert_quiet();
}

#[test]
fn a_device_unreachable_for_longer_than_the_grace_is_rolled_back() {
    let mut run = Run::schedule(update(Strategy::NativeTest));
    run.drive_into_probation();
    let gone_at = run.now + CHECK_EVERY + 1;
    let command = run.probation(|now| {
        if now >= gone_at {
            unreachable()
        } else {
            healthy()
        }
    });
    assert_eq!(command, Some(Command::Revert));
    let last_seen = run.job().last_reachable.unwrap();
    assert!(run.now - last_seen > GRACE, "failed within the grace");
    assert!(
        run.now - last_seen <= GRACE + CHECK_EVERY,
        "failed a check late"
    );
    assert!(
        run.job().detail.contains("unreachable since"),
        "{}",
        run.job().detail
    );
    run.feed(Input::Reverted {
        running_version: None,
    });
    assert_eq!(run.job().phase, Phase::RolledBack);
    assert_eq!(run.job().result, ResultCode::ProbationFailed);
}

#[test]
fn a_device_unreachable_within_the_grace_still_ends_confirmed() {
    let mut run = Run::schedule(update(Strategy::NativeTest));
    run.drive_into_probation();
    let gone = run.now + CHECK_EVERY..run.now + CHECK_EVERY + GRACE;
    let command = run.probation(|now| {
        if gone.contains(&now) {
            unreachable()
        } else {
            healthy()
        }
    });
    assert_eq!(command, Some(Command::Confirm));
    run.feed(Input::Confirmed);
    assert_eq!(run.job().phase, Phase::Confirmed);
    assert_eq!(run.job().result, ResultCode::Success);
}

#[test]
fn a_device_still_unreachable_at_the_deadline_does_not_pass_probation() {
    let mut run = Run::schedule(update(Strategy::NativeTest));
    run.drive_into_probation();
    let until = run.job().probation_until.unwrap();
    let gone_from = until - CHECK_EVERY / 2;
    let command = run.probation(|now| {
        if now >= gone_from {
            unreachable()
        } else {
            healthy()
        }
    });
    assert_eq!(command, Some(Command::Revert));
    assert!(
        run.now > until,
        "the deadline passed without a healthy sample"
    );
}

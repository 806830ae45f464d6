//! Fuzz-ish: random walks through the machine (mostly sensible answers, some stale ones,
//! cancels, restarts, time jumps) with its invariants checked after every step, then every
//! input fed in every phase the walks reached.

use std::collections::BTreeMap;

use super::*;

/// xorshift64*: deterministic, so a failure reproduces.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    fn pick<T: Clone>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize].clone()
    }
}

fn version(rng: &mut Rng) -> Option<String> {
    rng.pick(&[None, Some("1.3.0"), Some("1.2.0"), Some("0.9.1")])
        .map(String::from)
}

/// Every input, with the values that matter to the machine.
fn every_input() -> Vec<Input> {
    let versions = [None, Some("1.3.0"), Some("1.2.0"), Some("0.9.1")];
    let mut inputs = vec![
        Input::ImageLoaded,
        Input::ImageUnavailable("gone".into()),
        Input::Progress { acknowledged: 0 },
        Input::Progress { acknowledged: 500 },
        Input::Progress {
            acknowledged: u64::MAX,
        },
        Input::TransferDone {
            verified_on_device: true,
        },
        Input::TransferDone {
            verified_on_device: false,
        },
        Input::ActivateFailed {
            boot_failed: true,
            detail: "boot failed".into(),
        },
        Input::ActivateFailed {
            boot_failed: false,
            detail: "timeout".into(),
        },
        Input::Health(healthy()),
        Input::Health(unreachable()),
        Input::Health(HealthSample {
            problems: vec!["too hot".into()],
            ..healthy()
        }),
        Input::Confirmed,
        Input::ConfirmFailed("nope".into()),
        Input::RevertFailed("nope".into()),
    ];
    for kind in [
        TransferFailure::Transport,
        TransferFailure::Integrity,
        TransferFailure::TooLarge,
        TransferFailure::Refused,
    ] {
        inputs.push(Input::TransferFailed {
            kind,
            detail: "broken".into(),
        });
    }
    for v in versions {
        let v = v.map(String::from);
        inputs.push(Input::Activated {
            running_version: v.clone(),
        });
        inputs.push(Input::Reverted {
            running_version: v.clone(),
        });
        inputs.push(Input::Running(v.clone()));
        inputs.push(Input::Health(HealthSample {
            running_version: v,
            ..healthy()
        }));
    }
    inputs
}

/// A plausible outcome of `command` (the device mostly behaves).
fn answer(command: &Command, rng: &mut Rng) -> Input {
    match command {
        Command::LoadImage { .. } if rng.chance(90) => Input::ImageLoaded,
        Command::LoadImage { .. } => Input::ImageUnavailable("missing".into()),
        Command::Transfer { image, .. } => match rng.below(10) {
            0..=4 => Input::Progress {
                acknowledged: rng.below(image.size + 2),
            },
            5..=7 => Input::TransferDone {
                verified_on_device: rng.chance(50),
            },
            _ => Input::TransferFailed {
                kind: rng.pick(&[
                    TransferFailure::Transport,
                    TransferFailure::Transport,
                    TransferFailure::Transport,
                    TransferFailure::Integrity,
                    TransferFailure::TooLarge,
                    TransferFailure::Refused,
                ]),
                detail: "link trouble".into(),
            },
        },
        Command::Activate(_) if rng.chance(70) => Input::Activated {
            running_version: version(rng),
        },
        Command::Activate(_) => Input::ActivateFailed {
            boot_failed: rng.chance(50),
            detail: "activation trouble".into(),
        },
        Command::CheckHealth => Input::Health(match rng.below(10) {
            0..=6 => healthy(),
            7 => unreachable(),
            8 => HealthSample {
                problems: vec!["too hot".into()],
                ..healthy()
            },
            _ => HealthSample {
                running_version: version(rng),
                ..healthy()
            },
        }),
        Command::Confirm if rng.chance(70) => Input::Confirmed,
        Command::Confirm => Input::ConfirmFailed("busy".into()),
        Command::Revert if rng.chance(80) => Input::Reverted {
            running_version: version(rng),
        },
        Command::Revert => Input::RevertFailed("refused".into()),
        Command::ReadRunning => Input::Running(version(rng)),
    }
}

fn random_update(rng: &mut Rng) -> NewUpdate {
    let mut update = update(rng.pick(&[Strategy::NativeTest, Strategy::Emulated]));
    if rng.chance(20) {
        update.previous = None;
    } else if rng.chance(50) {
        update.previous = Some(old_image());
    }
    if rng.chance(20) {
        update.previous_version = None;
    }
    update.window = match rng.below(4) {
        0 => Some(night_window()),
        1 => Some(WindowSpec {
            days: vec![9],
            start_minute: 0,
            duration_s: 60,
        }),
        _ => None,
    };
    update.start_at = T0 + rng.below(4 * HOUR) - HOUR;
    update.probation_ms = rng.pick(&[0, MINUTE, HOUR, PROBATION]);
    update.check_every_ms = rng.pick(&[0, SECOND, CHECK_EVERY]);
    update.offline_grace_ms = rng.pick(&[0, MINUTE, GRACE]);
    update
}

/// Phase changes one call may make.
fn allowed(from: Phase, to: Phase) -> bool {
    use Phase::*;
    from == to
        || matches!(
            (from, to),
            (
                Scheduled,
                WaitingForWindow | Downloading | Cancelled | Failed
            ) | (WaitingForWindow, Downloading | Cancelled | Failed)
                | (Downloading, Verified | Cancelled | Failed)
                | (Verified, Transferring | Downloading | Cancelled | Failed)
                | (Transferring, Staged | Cancelled | Failed)
                | (Staged, Rebooting | Failed)
                | (Rebooting, Probation | RolledBack | Failed)
                | (Probation, Downloading | Confirmed | RolledBack | Failed)
        )
}

/// What must hold between two observations of a machine at `now`.
fn check(before: &Job, after: &Machine, now: UnixMs, what: &str) {
    let job = after.job();
    let context = || format!("{what}\nbefore: {before:#?}\nafter: {job:#?}");
    if before.phase.is_terminal() {
        assert_eq!(before, job, "a finished update changed: {}", context());
    }
    assert!(allowed(before.phase, job.phase), "{}", context());
    assert_eq!(
        job.result == ResultCode::Initial,
        !job.phase.is_terminal(),
        "{}",
        context()
    );
    let fitting = match job.phase {
        Phase::Confirmed => job.result == ResultCode::Success,
        Phase::Cancelled => job.result == ResultCode::Cancelled,
        Phase::RolledBack => matches!(
            job.result,
            ResultCode::BootFailed | ResultCode::ProbationFailed
        ),
        Phase::Failed => !matches!(
            job.result,
            ResultCode::Success
                | ResultCode::Cancelled
                | ResultCode::BootFailed
                | ResultCode::ProbationFailed
        ),
        _ => true,
    };
    assert!(fitting, "result does not fit the phase: {}", context());
    if job.phase == Phase::Cancelled && before.phase != Phase::Cancelled {
        assert!(before.phase.is_cancellable() && !before.reinstalling);
    }
    let size = if job.reinstalling {
        job.previous.as_ref().map_or(0, |p| p.size)
    } else {
        job.image.size
    };
    assert!(job.acknowledged <= size, "{}", context());
    assert!(
        job.updated_at <= now.max(before.updated_at),
        "{}",
        context()
    );
    assert!(!job.detail.is_empty(), "{}", context());
    if job.phase.is_terminal() {
        assert_eq!(after.poll_timeout(), None, "{}", context());
        assert!(after.next.is_none() && after.in_flight.is_none());
    }
}

/// Machines in every state the walks reached, a few per phase.
fn walk(seed: u64, runs: usize, steps: usize) -> BTreeMap<&'static str, Vec<(Machine, UnixMs)>> {
    let mut rng = Rng(seed);
    let mut reached: BTreeMap<&'static str, Vec<(Machine, UnixMs)>> = BTreeMap::new();
    for _ in 0..runs {
        let mut now = T0;
        let mut machine = Machine::schedule(random_update(&mut rng), now);
        let mut outstanding: Option<Command> = None;
        for _ in 0..steps {
            let before = machine.job().clone();
            let what;
            match rng.below(100) {
                0..=59 => {
                    if let Some(command) = &outstanding {
                        let input = answer(command, &mut rng);
                        if !matches!(input, Input::Progress { .. }) {
                            outstanding = None;
                        }
                        what = format!("answer {input:?}");
                        machine.handle(input, now);
                    } else if let Some(command) = machine.poll_command() {
                        what = format!("poll {command:?}");
                        outstanding = Some(command);
                    } else if let Some(at) = machine.poll_timeout() {
                        now = now.max(at) + rng.below(3) * SECOND;
                        what = format!("timeout at {now}");
                        machine.handle_timeout(now);
                    } else {
                        what = "nothing to do".into();
                    }
                }
                60..=74 => {
                    let input = rng.pick(&every_input());
                    what = format!("stray {input:?}");
                    machine.handle(input, now);
                }
                75..=79 => {
                    what = "cancel".into();
                    let _ = machine.cancel(now);
                }
                80..=83 => {
                    now += rng.below(2 * HOUR);
                    what = format!("restart at {now}");
                    machine = Machine::restore(persisted(machine.job()), now);
                    outstanding = None;
                }
                _ => {
                    now += rng.below(20 * MINUTE);
                    what = format!("early timeout at {now}");
                    machine.handle_timeout(now);
                }
            }
            let _ = machine.take_change();
            check(&before, &machine, now, &what);
            let seen = reached.entry(machine.job().phase.as_str()).or_default();
            if seen.len() < 40 && rng.chance(10) {
                seen.push((machine.clone(), now));
            }
        }
    }
    reached
}

#[test]
fn random_walks_keep_the_invariants_and_finished_updates_never_change() {
    for seed in [1, 0x9e37_79b9_7f4a_7c15, 0xdead_beef] {
        walk(seed, 400, 150);
    }
}

#[test]
fn every_input_in_every_phase_is_handled_without_panicking_and_finished_updates_never_change() {
    let reached = walk(42, 600, 150);
    let phases = [
        Phase::Scheduled,
        Phase::WaitingForWindow,
        Phase::Downloading,
        Phase::Verified,
        Phase::Transferring,
        Phase::Staged,
        Phase::Rebooting,
        Phase::Probation,
        Phase::Confirmed,
        Phase::RolledBack,
        Phase::Failed,
        Phase::Cancelled,
    ];
    for phase in phases {
        let machines = reached.get(phase.as_str()).map_or(&[][..], Vec::as_slice);
        assert!(
            !machines.is_empty(),
            "the walks never reached {}",
            phase.as_str()
        );
        for (machine, now) in machines {
            // As it was, and with whatever command it has ready handed out.
            let mut polled = machine.clone();
            let _ = polled.poll_command();
            for start in [machine, &polled] {
                for input in every_input() {
                    for at in [*now, now + HOUR] {
                        let mut fed = start.clone();
                        fed.handle(input.clone(), at);
                        check(start.job(), &fed, at, &format!("{input:?}"));
                        let fed_job = fed.job().clone();
                        let _ = fed.poll_command();
                        check(&fed_job, &fed, at, &format!("{input:?}, then a poll"));
                        let polled_job = fed.job().clone();
                        fed.handle_timeout(at + 1);
                        check(
                            &polled_job,
                            &fed,
                            at + 1,
                            &format!("{input:?}, then a timeout"),
                        );
                    }
                }
            }
        }
    }
}

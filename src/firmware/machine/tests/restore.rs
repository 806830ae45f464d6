//! A gateway restart in every phase: the job is serialized as the runner persists it and a
//! new machine is restored from what comes back.

use super::*;

/// A run driven to the point `stop` says, then "killed": the persisted job.
fn killed_in(strategy: Strategy, stop: impl Fn(&Run) -> bool) -> (Job, UnixMs) {
    let mut run = Run::schedule(update(strategy));
    let steps: [&dyn Fn(&mut Run); 6] = [
        &|run| {
            run.wait();
        },
        &|run| {
            run.poll();
            run.feed(Input::ImageLoaded);
        },
        &|run| {
            run.poll();
            run.feed(Input::Progress { acknowledged: 640 });
        },
        &|run| {
            run.feed(Input::TransferDone {
                verified_on_device: true,
            });
        },
        &|run| {
            run.poll();
        },
        &|run| {
            run.now += MINUTE;
            run.feed(Input::Activated {
                running_version: Some("1.3.0".into()),
            });
        },
    ];
    for step in steps {
        if stop(&run) {
            break;
        }
        step(&mut run);
    }
    assert!(stop(&run), "never reached the stop: {:#?}", run.job());
    (run.job().clone(), run.now)
}

#[test]
fn a_restored_scheduled_update_still_waits_for_its_start_time() {
    let (job, _) = killed_in(Strategy::NativeTest, |run| {
        run.job().phase == Phase::Scheduled
    });
    let mut run = Run::restore(&job, T0 + MINUTE);
    assert_eq!(run.job(), &job, "restoring changed the job");
    assert_eq!(run.poll(), None);
    assert_eq!(run.wait(), T0 + HOUR);
    assert_eq!(run.poll(), Some(Command::LoadImage { image: new_image() }));
}

#[test]
fn a_restored_update_waiting_for_its_window_waits_for_the_same_opening() {
    let mut waiting = update(Strategy::NativeTest);
    waiting.window = Some(night_window());
    let mut before = Run::schedule(waiting);
    before.wait();
    assert_eq!(before.job().phase, Phase::WaitingForWindow);

    let mut run = Run::restore(before.job(), T0 + HOUR + 10 * MINUTE);
    run.wait();
    assert_eq!(run.job().phase, Phase::WaitingForWindow);
    assert_eq!(run.job().detail, before.job().detail);
    assert_eq!(run.poll(), None);
    assert_eq!(run.wait(), T0 + 2 * HOUR);
    assert_eq!(run.poll(), Some(Command::LoadImage { image: new_image() }));
}

#[test]
fn a_restored_download_reads_the_image_again() {
    let (job, now) = killed_in(Strategy::NativeTest, |run| {
        run.job().phase == Phase::Downloading
    });
    let mut run = Run::restore(&job, now + MINUTE);
    run.expect(Command::LoadImage { image: new_image() });
    assert_eq!(run.job(), &job);
}

#[test]
fn a_restored_verified_update_goes_back_to_downloading_and_reads_the_image_again() {
    let (job, now) = killed_in(Strategy::NativeTest, |run| {
        run.job().phase == Phase::Verified
    });
    let mut run = Run::restore(&job, now + MINUTE);
    assert_eq!(run.job().phase, Phase::Downloading);
    run.expect(Command::LoadImage { image: new_image() });
    run.feed(Input::ImageLoaded);
    run.expect(Command::Transfer {
        image: new_image(),
        from_offset: 0,
    });
}

#[test]
fn a_restored_transfer_resumes_from_the_persisted_offset() {
    let (job, now) = killed_in(Strategy::NativeTest, |run| run.job().acknowledged == 640);
    assert_eq!(job.phase, Phase::Transferring);
    let mut run = Run::restore(&job, now + 5 * MINUTE);
    run.expect(Command::Transfer {
        image: new_image(),
        from_offset: 640,
    });
    run.feed(Input::Progress {
        acknowledged: 1_000,
    });
    run.feed(Input::TransferDone {
        verified_on_device: true,
    });
    run.expect(Command::Activate(ActivationMode::Test));
}

#[test]
fn a_restored_transfer_waiting_to_retry_waits_for_its_retry_time_and_keeps_counting() {
    let (job, now) = killed_in(Strategy::NativeTest, |run| run.job().acknowledged == 640);
    let mut before = Run::restore(&job, now);
    before.poll();
    for _ in 0..2 {
        before.feed(Input::TransferFailed {
            kind: TransferFailure::Transport,
            detail: "device busy".into(),
        });
        before.wait();
        before.poll();
    }
    before.feed(Input::TransferFailed {
        kind: TransferFailure::Transport,
        detail: "device busy".into(),
    });
    let retry_at = before.job().retry_at.unwrap();
    assert_eq!(retry_at, before.now + 20 * SECOND);

    let mut run = Run::restore(before.job(), before.now + SECOND);
    assert_eq!(run.poll(), None, "retried before its time");
    assert_eq!(run.wait(), retry_at);
    run.expect(Command::Transfer {
        image: new_image(),
        from_offset: 640,
    });
    run.feed(Input::TransferFailed {
        kind: TransferFailure::Transport,
        detail: "device busy".into(),
    });
    assert_eq!(run.job().transfer_failures, 4);
    assert_eq!(run.job().retry_at, Some(run.now + 40 * SECOND));
}

#[test]
fn a_restored_transfer_whose_retry_time_passed_while_down_retries_at_once() {
    let (job, now) = killed_in(Strategy::NativeTest, |run| run.job().acknowledged == 640);
    let mut before = Run::restore(&job, now);
    before.poll();
    before.feed(Input::TransferFailed {
        kind: TransferFailure::Transport,
        detail: "device busy".into(),
    });
    let mut run = Run::restore(before.job(), before.now + HOUR);
    assert_eq!(run.job().retry_at, None);
    run.expect(Command::Transfer {
        image: new_image(),
        from_offset: 640,
    });
}

#[test]
fn a_restored_staged_update_activates_the_image() {
    for (strategy, mode) in [
        (Strategy::NativeTest, ActivationMode::Test),
        (Strategy::Emulated, ActivationMode::Permanent),
    ] {
        let (job, now) = killed_in(strategy, |run| run.job().phase == Phase::Staged);
        let mut run = Run::restore(&job, now + MINUTE);
        run.expect(Command::Activate(mode));
        assert_eq!(run.job().phase, Phase::Rebooting);
    }
}

#[test]
fn a_restored_reboot_reads_the_running_version_and_enters_probation_on_the_new_image() {
    let (job, now) = killed_in(Strategy::NativeTest, |run| {
        run.job().phase == Phase::Rebooting
    });
    let mut run = Run::restore(&job, now + 3 * MINUTE);
    run.expect(Command::ReadRunning);
    run.feed(Input::Running(Some("1.3.0".into())));
    assert_eq!(run.job().phase, Phase::Probation);
    assert_eq!(
        run.job().probation_until,
        Some(now + 3 * MINUTE + PROBATION)
    );
}

#[test]
fn a_restored_reboot_that_finds_the_previous_image_ends_rolled_back_on_two_banks_and_failed_on_one()
{
    for (strategy, phase, result) in [
        (
            Strategy::NativeTest,
            Phase::RolledBack,
            ResultCode::BootFailed,
        ),
        (Strategy::Emulated, Phase::Failed, ResultCode::UpdateFailed),
    ] {
        let (job, now) = killed_in(strategy, |run| run.job().phase == Phase::Rebooting);
        let mut run = Run::restore(&job, now + 3 * MINUTE);
        run.expect(Command::ReadRunning);
        run.feed(Input::Running(Some("1.2.0".into())));
        assert_eq!((run.job().phase, run.job().result), (phase, result));
        assert!(run.job().detail.contains("1.2.0"), "{}", run.job().detail);
    }
}

#[test]
fn a_restored_reboot_retries_reading_until_the_grace_then_fails_with_state_unknown() {
    let (job, now) = killed_in(Strategy::NativeTest, |run| {
        run.job().phase == Phase::Rebooting
    });
    let restarted_at = now + 3 * MINUTE;
    let mut run = Run::restore(&job, restarted_at);
    let mut reads = 0;
    while !run.job().phase.is_terminal() {
        match run.poll() {
            Some(Command::ReadRunning) => {
                reads += 1;
                run.feed(Input::Running(None));
            }
            Some(other) => panic!("unexpected {other:?}"),
            None => {
                run.wait();
            }
        }
    }
    assert_eq!(reads, GRACE / CHECK_EVERY + 1);
    assert!(run.now - restarted_at >= GRACE);
    assert_eq!(run.job().result, ResultCode::UpdateFailed);
    assert!(
        run.job().detail.contains("state unknown"),
        "{}",
        run.job().detail
    );
}

#[test]
fn a_restored_probation_checks_at_once_and_keeps_its_absolute_deadline() {
    let (job, now) = killed_in(Strategy::NativeTest, |run| {
        run.job().phase == Phase::Probation
    });
    let until = job.probation_until.unwrap();
    assert_eq!(until, now + PROBATION);

    let restarted_at = now + 45 * MINUTE;
    let mut run = Run::restore(&job, restarted_at);
    assert_eq!(run.machine.poll_timeout(), Some(restarted_at));
    assert_eq!(run.wait(), restarted_at);
    run.expect(Command::CheckHealth);
    run.feed(Input::Health(healthy()));
    assert_eq!(run.job().probation_until, Some(until));
    assert_eq!(run.probation(|_| healthy()), Some(Command::Confirm));
    assert_eq!(run.now, until, "probation ended at the persisted deadline");
}

#[test]
fn a_restored_probation_whose_deadline_passed_while_down_confirms_after_one_healthy_check() {
    let (job, now) = killed_in(Strategy::NativeTest, |run| {
        run.job().phase == Phase::Probation
    });
    let mut run = Run::restore(&job, now + PROBATION + HOUR);
    run.wait();
    run.expect(Command::CheckHealth);
    run.feed(Input::Health(healthy()));
    assert_eq!(run.poll(), Some(Command::Confirm));
}

#[test]
fn the_time_the_gateway_was_down_does_not_count_against_the_device_in_probation() {
    let (job, now) = killed_in(Strategy::NativeTest, |run| {
        run.job().phase == Phase::Probation
    });
    let restarted_at = now + GRACE + HOUR;
    let mut run = Run::restore(&job, restarted_at);
    run.wait();
    run.expect(Command::CheckHealth);
    run.feed(Input::Health(unreachable()));
    assert_eq!(run.job().phase, Phase::Probation);
    assert_eq!(
        run.poll(),
        None,
        "probation failed on the gateway's own downtime"
    );
}

#[test]
fn a_restored_failed_probation_of_a_two_bank_device_reads_the_running_version_before_reverting() {
    let (job, now) = killed_in(Strategy::NativeTest, |run| {
        run.job().phase == Phase::Probation
    });
    let mut run = Run::restore(&job, now);
    run.wait();
    run.expect(Command::CheckHealth);
    run.feed(Input::Health(HealthSample {
        problems: vec!["error event: brown-out".into()],
        ..healthy()
    }));
    assert_eq!(run.poll(), Some(Command::Revert));
    let reverting = run.job().clone();

    // Killed with the revert in flight; the device had not been reverted yet.
    let mut again = Run::restore(&reverting, run.now + MINUTE);
    again.expect(Command::ReadRunning);
    again.feed(Input::Running(Some("1.3.0".into())));
    again.expect(Command::Revert);
    again.feed(Input::Reverted {
        running_version: Some("1.2.0".into()),
    });
    assert_eq!(again.job().phase, Phase::RolledBack);
    assert_eq!(again.job().result, ResultCode::ProbationFailed);

    // Killed with the revert in flight; the device had already gone back.
    let mut done = Run::restore(&reverting, run.now + MINUTE);
    done.expect(Command::ReadRunning);
    done.feed(Input::Running(Some("1.2.0".into())));
    assert_eq!(done.job().phase, Phase::RolledBack);
    assert_eq!(done.job().result, ResultCode::ProbationFailed);
}

#[test]
fn a_restored_reinstall_of_the_previous_image_resumes_it_and_still_ends_rolled_back() {
    let (job, now) = killed_in(Strategy::Emulated, |run| {
        run.job().phase == Phase::Probation
    });
    let mut run = Run::restore(&job, now);
    run.wait();
    run.expect(Command::CheckHealth);
    run.feed(Input::Health(HealthSample {
        problems: vec!["error event: brown-out".into()],
        ..healthy()
    }));
    run.expect(Command::LoadImage { image: old_image() });
    run.feed(Input::ImageLoaded);
    run.expect(Command::Transfer {
        image: old_image(),
        from_offset: 0,
    });
    run.feed(Input::Progress { acknowledged: 450 });

    let mut resumed = Run::restore(run.job(), run.now + MINUTE);
    resumed.expect(Command::Transfer {
        image: old_image(),
        from_offset: 450,
    });
    assert_eq!(
        resumed
            .cancel()
            .map_err(|e| matches!(e, CancelError::TooLate { .. })),
        Err(true)
    );
    resumed.feed(Input::TransferDone {
        verified_on_device: false,
    });
    resumed.expect(Command::Activate(ActivationMode::Permanent));
    resumed.feed(Input::Activated {
        running_version: Some("1.2.0".into()),
    });
    assert_eq!(resumed.job().phase, Phase::RolledBack);
    assert_eq!(resumed.job().result, ResultCode::ProbationFailed);
}

#[test]
fn a_restored_finished_update_stays_as_it_was_and_asks_for_nothing() {
    let mut done = Run::schedule(update(Strategy::Emulated));
    done.drive_into_probation();
    done.probation(|_| healthy());
    let job = done.job().clone();
    assert_eq!(job.phase, Phase::Confirmed);
    let mut run = Run::restore(&job, done.now + HOUR);
    assert_eq!(run.job(), &job);
    assert_eq!(run.machine.take_change(), Change::None);
    run.assert_quiet();
}

//! The less travelled paths: activation surprises, confirm and revert failures, images missing
//! from the store, stale inputs, and values at the ends of their ranges.

use super::*;

/// A run with the new image staged and the activation in flight.
fn activating(strategy: Strategy) -> Run {
    let mut run = Run::schedule(update(strategy));
    run.wait();
    run.poll();
    run.feed(Input::ImageLoaded);
    run.poll();
    run.feed(Input::TransferDone {
        verified_on_device: true,
    });
    assert!(matches!(run.poll(), Some(Command::Activate(_))));
    run
}

/// A two-bank run whose probation just passed, with the confirm in flight.
fn confirming() -> Run {
    let mut run = Run::schedule(update(Strategy::NativeTest));
    run.drive_into_probation();
    assert_eq!(run.probation(|_| healthy()), Some(Command::Confirm));
    run
}

/// A run whose probation just failed (two banks: revert in flight; one bank: the previous
/// image's load).
fn failing_probation(strategy: Strategy, previous: Option<ImageRef>) -> Run {
    let mut update = update(strategy);
    update.previous = previous;
    let mut run = Run::schedule(update);
    run.drive_into_probation();
    run.wait();
    run.expect(Command::CheckHealth);
    run.feed(Input::Health(HealthSample {
        problems: vec!["error event: stack overflow in task modbus".into()],
        ..healthy()
    }));
    run
}

#[test]
fn an_activation_that_comes_back_on_the_previous_version_counts_as_a_failed_boot() {
    let mut run = activating(Strategy::NativeTest);
    run.feed(Input::Activated {
        running_version: Some("1.2.0".into()),
    });
    assert_eq!(run.job().phase, Phase::RolledBack);
    assert_eq!(run.job().result, ResultCode::BootFailed);
    assert!(
        run.job().detail.contains("did not boot"),
        "{}",
        run.job().detail
    );
}

#[test]
fn an_activation_that_comes_back_on_an_unknown_version_needs_attention() {
    let mut run = activating(Strategy::NativeTest);
    run.feed(Input::Activated {
        running_version: Some("0.9.1".into()),
    });
    assert_eq!(run.job().phase, Phase::Failed);
    assert_eq!(run.job().result, ResultCode::RevertFailed);
    assert!(run.job().detail.contains("0.9.1"), "{}", run.job().detail);
    assert!(
        run.job().detail.contains("check it"),
        "{}",
        run.job().detail
    );
}

#[test]
fn an_activation_from_a_device_that_does_not_tell_its_version_is_accepted_drive_into_probation() {
    let mut run = activating(Strategy::Emulated);
    run.feed(Input::Activated {
        running_version: None,
    });
    assert_eq!(run.job().phase, Phase::Probation);
    assert_eq!(run.job().probation_until, Some(run.now + PROBATION));
    assert_eq!(run.machine.poll_timeout(), Some(run.now + CHECK_EVERY));
}

#[test]
fn an_activation_error_that_left_the_device_unchanged_fails_the_update_and_says_so() {
    let mut run = activating(Strategy::NativeTest);
    run.feed(Input::ActivateFailed {
        boot_failed: false,
        detail: "write to register 0x0100 timed out".into(),
    });
    run.expect(Command::ReadRunning);
    run.feed(Input::Running(Some("1.2.0".into())));
    assert_eq!(run.job().phase, Phase::Failed);
    assert_eq!(run.job().result, ResultCode::UpdateFailed);
    let detail = &run.job().detail;
    assert!(detail.contains("unchanged"), "{detail}");
    assert!(detail.contains("register 0x0100"), "{detail}");
}

#[test]
fn an_activation_error_after_which_the_device_runs_the_new_image_enters_probation() {
    let mut run = activating(Strategy::NativeTest);
    run.feed(Input::ActivateFailed {
        boot_failed: false,
        detail: "no answer after the restart".into(),
    });
    run.expect(Command::ReadRunning);
    run.feed(Input::Running(None));
    assert_eq!(run.poll(), None);
    run.wait();
    run.expect(Command::ReadRunning);
    run.feed(Input::Running(Some("1.3.0".into())));
    assert_eq!(run.job().phase, Phase::Probation);
    assert_eq!(run.job().probation_until, Some(run.now + PROBATION));
}

#[test]
fn a_failed_boot_after_which_the_device_reports_another_version_needs_attention() {
    let mut run = activating(Strategy::NativeTest);
    run.feed(Input::ActivateFailed {
        boot_failed: true,
        detail: "boot failed".into(),
    });
    run.expect(Command::ReadRunning);
    run.feed(Input::Running(Some("0.9.1".into())));
    assert_eq!(run.job().phase, Phase::Failed);
    assert_eq!(run.job().result, ResultCode::RevertFailed);
    assert!(run.job().detail.contains("0.9.1"), "{}", run.job().detail);
}

#[test]
fn a_failed_boot_whose_running_version_cannot_be_read_within_the_grace_needs_attention() {
    let mut run = activating(Strategy::NativeTest);
    run.feed(Input::ActivateFailed {
        boot_failed: true,
        detail: "boot failed".into(),
    });
    while !run.job().phase.is_terminal() {
        match run.poll() {
            Some(Command::ReadRunning) => run.feed(Input::Running(None)),
            Some(other) => panic!("unexpected {other:?}"),
            None => {
                run.wait();
            }
        }
    }
    assert_eq!(run.job().result, ResultCode::RevertFailed);
    assert!(
        run.job().detail.contains("needs attention"),
        "{}",
        run.job().detail
    );
}

#[test]
fn confirming_that_fails_once_is_tried_again_and_ends_confirmed() {
    let mut run = confirming();
    run.feed(Input::ConfirmFailed("SMP error 3".into()));
    assert_eq!(run.poll(), None);
    let failed_at = run.now;
    assert_eq!(run.wait(), failed_at + CHECK_EVERY);
    run.expect(Command::Confirm);
    run.feed(Input::Confirmed);
    assert_eq!(run.job().phase, Phase::Confirmed);
    assert_eq!(run.job().result, ResultCode::Success);
}

#[test]
fn confirming_that_fails_three_times_fails_the_update_and_warns_of_a_revert_at_restart() {
    let mut run = confirming();
    let mut confirms = 1;
    loop {
        run.feed(Input::ConfirmFailed("SMP error 3".into()));
        if run.job().phase.is_terminal() {
            break;
        }
        run.wait();
        run.expect(Command::Confirm);
        confirms += 1;
    }
    assert_eq!(confirms, MAX_CONFIRM_ATTEMPTS);
    assert_eq!(run.job().result, ResultCode::UpdateFailed);
    assert!(
        run.job()
            .detail
            .contains("may revert to its previous firmware 1.2.0"),
        "{}",
        run.job().detail
    );
}

#[test]
fn a_failed_revert_ends_with_revert_failed_and_says_the_device_needs_attention() {
    let mut run = failing_probation(Strategy::NativeTest, None);
    run.expect(Command::Revert);
    run.feed(Input::RevertFailed("bank B is empty".into()));
    assert_eq!(run.job().phase, Phase::Failed);
    assert_eq!(run.job().result, ResultCode::RevertFailed);
    let detail = &run.job().detail;
    assert!(detail.contains("bank B is empty"), "{detail}");
    assert!(detail.contains("stack overflow"), "{detail}");
    assert!(detail.contains("needs attention"), "{detail}");
}

#[test]
fn a_revert_after_which_the_device_still_runs_the_new_image_ends_with_revert_failed() {
    let mut run = failing_probation(Strategy::NativeTest, None);
    run.expect(Command::Revert);
    run.feed(Input::Reverted {
        running_version: Some("1.3.0".into()),
    });
    assert_eq!(run.job().phase, Phase::Failed);
    assert_eq!(run.job().result, ResultCode::RevertFailed);
}

#[test]
fn an_image_missing_from_the_store_fails_the_update_without_touching_the_device() {
    let mut run = Run::schedule(update(Strategy::NativeTest));
    run.wait();
    run.expect(Command::LoadImage { image: new_image() });
    run.feed(Input::ImageUnavailable(
        "stored bytes hash to 9f86…, not 0…130".into(),
    ));
    assert_eq!(run.job().phase, Phase::Failed);
    assert_eq!(run.job().result, ResultCode::ImageUnavailable);
    let detail = &run.job().detail;
    assert!(detail.contains("stored bytes hash"), "{detail}");
    assert!(detail.contains("was not touched"), "{detail}");
    assert!(detail.contains("import the image again"), "{detail}");
    run.assert_quiet();
}

#[test]
fn a_previous_image_gone_from_the_store_during_the_reinstall_leaves_the_new_image_running() {
    let mut run = failing_probation(Strategy::Emulated, Some(old_image()));
    run.expect(Command::LoadImage { image: old_image() });
    run.feed(Input::ImageUnavailable("no such image".into()));
    assert_eq!(run.job().phase, Phase::Failed);
    assert_eq!(run.job().result, ResultCode::RevertFailed);
    let detail = &run.job().detail;
    assert!(detail.contains("runs the NEW image 1.3.0"), "{detail}");
    assert!(detail.contains("gone from the store"), "{detail}");
}

#[test]
fn a_single_bank_device_without_a_previous_image_that_fails_probation_needs_attention() {
    let mut run = failing_probation(Strategy::Emulated, None);
    assert_eq!(run.job().phase, Phase::Failed);
    assert_eq!(run.job().result, ResultCode::RevertFailed);
    assert!(!run.job().reinstalling);
    assert!(
        run.job().detail.contains("cannot be re-installed"),
        "{}",
        run.job().detail
    );
    run.assert_quiet();
}

#[test]
fn a_reinstall_the_device_refuses_ends_with_revert_failed_while_transport_errors_are_retried() {
    let mut run = failing_probation(Strategy::Emulated, Some(old_image()));
    run.expect(Command::LoadImage { image: old_image() });
    run.feed(Input::ImageLoaded);
    run.expect(Command::Transfer {
        image: old_image(),
        from_offset: 0,
    });
    run.feed(Input::TransferFailed {
        kind: TransferFailure::Transport,
        detail: "timeout".into(),
    });
    assert_eq!(run.job().phase, Phase::Transferring);
    run.wait();
    run.expect(Command::Transfer {
        image: old_image(),
        from_offset: 0,
    });
    run.feed(Input::TransferFailed {
        kind: TransferFailure::Refused,
        detail: "OTA upgrade refused: downgrade not allowed".into(),
    });
    assert_eq!(run.job().phase, Phase::Failed);
    assert_eq!(run.job().result, ResultCode::RevertFailed);
    let detail = &run.job().detail;
    assert!(detail.contains("downgrade not allowed"), "{detail}");
    assert!(
        detail.contains("still runs the new image 1.3.0"),
        "{detail}"
    );
}

#[test]
fn a_reinstall_after_which_the_device_reports_another_version_ends_with_revert_failed() {
    let mut run = failing_probation(Strategy::Emulated, Some(old_image()));
    run.poll();
    run.feed(Input::ImageLoaded);
    run.poll();
    run.feed(Input::TransferDone {
        verified_on_device: false,
    });
    run.expect(Command::Activate(ActivationMode::Permanent));
    run.feed(Input::Activated {
        running_version: Some("1.3.0".into()),
    });
    assert_eq!(run.job().phase, Phase::Failed);
    assert_eq!(run.job().result, ResultCode::RevertFailed);
}

#[test]
fn the_device_may_lower_its_acknowledged_offset_but_not_past_the_image_size() {
    let mut run = Run::schedule(update(Strategy::NativeTest));
    run.wait();
    run.poll();
    run.feed(Input::ImageLoaded);
    run.poll();
    run.feed(Input::Progress { acknowledged: 800 });
    assert_eq!(run.job().acknowledged, 800);
    run.feed(Input::Progress { acknowledged: 200 });
    assert_eq!(
        run.job().acknowledged,
        200,
        "the device restarted its staging"
    );
    run.machine.handle(
        Input::Progress {
            acknowledged: u64::MAX,
        },
        run.now,
    );
    assert_eq!(run.machine.take_change(), Change::Progress);
    assert_eq!(run.job().acknowledged, 1_000);
    assert_eq!(run.job().phase, Phase::Transferring);
}

#[test]
fn inputs_that_answer_no_command_in_flight_are_ignored() {
    let mut run = Run::schedule(update(Strategy::NativeTest));
    run.wait();
    run.expect(Command::LoadImage { image: new_image() });
    let loading = run.job().clone();
    for stale in [
        Input::Progress { acknowledged: 10 },
        Input::Confirmed,
        Input::Health(healthy()),
        Input::Running(Some("1.3.0".into())),
        Input::Activated {
            running_version: None,
        },
    ] {
        run.feed(stale);
        assert_eq!(run.job(), &loading);
    }
    run.feed(Input::ImageLoaded);
    run.feed(Input::ImageLoaded);
    run.feed(Input::ImageUnavailable("late duplicate".into()));
    assert_eq!(run.job().phase, Phase::Verified);
    run.expect(Command::Transfer {
        image: new_image(),
        from_offset: 0,
    });
}

#[test]
fn a_window_that_never_opens_fails_the_update_instead_of_waiting_for_ever() {
    let mut never = update(Strategy::NativeTest);
    never.window = Some(WindowSpec {
        days: Vec::new(),
        start_minute: 120,
        duration_s: 3600,
    });
    let mut run = Run::schedule(never);
    run.wait();
    assert_eq!(run.job().phase, Phase::Failed);
    assert_eq!(run.job().result, ResultCode::UpdateFailed);
    assert!(
        run.job().detail.contains("never opens"),
        "{}",
        run.job().detail
    );
    run.assert_quiet();
}

#[test]
fn health_checks_are_a_second_apart_at_least_even_with_a_zero_interval() {
    let mut eager = update(Strategy::NativeTest);
    eager.check_every_ms = 0;
    let mut run = Run::schedule(eager);
    run.drive_into_probation();
    let entered = run.now;
    assert_eq!(run.wait(), entered + MIN_CHECK_EVERY_MS);
}

#[test]
fn times_beyond_the_year_9999_are_written_without_panicking() {
    let mut far = update(Strategy::NativeTest);
    far.start_at = UnixMs::MAX;
    far.probation_ms = UnixMs::MAX;
    let run = Run::schedule(far);
    assert!(
        run.job().detail.contains("ms after 1970"),
        "{}",
        run.job().detail
    );
    let mut run = Run::schedule(update(Strategy::NativeTest));
    run.drive_into_probation();
    assert!(run.job().probation_until.is_some());
    let mut job = run.job().clone();
    job.probation_ms = UnixMs::MAX;
    job.probation_until = None;
    let mut restored = Run::restore(&job, UnixMs::MAX - 1);
    assert_eq!(restored.job().probation_until, Some(UnixMs::MAX));
    restored.wait();
    restored.expect(Command::CheckHealth);
    restored.feed(Input::Health(healthy()));
}

#[test]
fn transfer_retries_wait_five_seconds_doubling_up_to_five_minutes() {
    let delays: Vec<u64> = (1..=12).map(transfer_retry_delay).collect();
    assert_eq!(
        delays,
        [
            5_000, 10_000, 20_000, 40_000, 80_000, 160_000, 300_000, 300_000, 300_000, 300_000,
            300_000, 300_000
        ]
    );
    assert_eq!(transfer_retry_delay(0), FIRST_RETRY_MS);
    assert_eq!(transfer_retry_delay(u32::MAX), MAX_RETRY_MS);
}

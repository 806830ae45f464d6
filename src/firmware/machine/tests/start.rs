//! Before the device boots the image: the start time, the maintenance window, the transfer
//! with its retries and refusals, and cancelling.

use super::*;

#[test]
fn cancelling_a_scheduled_update_ends_it_with_no_further_commands_or_timeouts() {
    let mut run = Run::schedule(update(Strategy::NativeTest));
    run.now += MINUTE;
    assert_eq!(run.cancel(), Ok(()));
    assert_eq!(run.job().phase, Phase::Cancelled);
    assert_eq!(run.job().result, ResultCode::Cancelled);
    assert_eq!(run.job().updated_at, run.now);
    assert!(run.job().detail.contains("1.2.0"), "{}", run.job().detail);
    run.assert_quiet();
    run.machine.handle_timeout(T0 + HOUR);
    run.assert_quiet();
}

#[test]
fn cancelling_during_the_transfer_forgets_it_and_ignores_its_late_outcome() {
    let mut run = Run::schedule(update(Strategy::NativeTest));
    run.wait();
    run.expect(Command::LoadImage { image: new_image() });
    run.feed(Input::ImageLoaded);
    run.expect(Command::Transfer {
        image: new_image(),
        from_offset: 0,
    });
    run.feed(Input::Progress { acknowledged: 250 });
    assert_eq!(run.cancel(), Ok(()));
    let cancelled = run.job().clone();
    assert_eq!(cancelled.phase, Phase::Cancelled);
    assert!(
        cancelled.detail.contains("250 bytes"),
        "{}",
        cancelled.detail
    );
    run.feed(Input::Progress { acknowledged: 500 });
    run.feed(Input::TransferDone {
        verified_on_device: true,
    });
    assert_eq!(run.job(), &cancelled);
    run.assert_quiet();
}

#[test]
fn cancelling_during_probation_is_refused_as_too_late_and_changes_nothing() {
    let mut run = Run::schedule(update(Strategy::NativeTest));
    run.drive_into_probation();
    let before = run.job().clone();
    let timeout = run.machine.poll_timeout();
    let refused = run.cancel().unwrap_err();
    assert_eq!(
        refused,
        CancelError::TooLate {
            update_id: "u-1".into(),
            phase: Phase::Probation
        }
    );
    assert!(refused.to_string().contains("can no longer be cancelled"));
    assert_eq!(run.job(), &before);
    assert_eq!(run.machine.poll_timeout(), timeout);
}

#[test]
fn cancelling_a_confirmed_update_is_refused_as_finished() {
    let mut run = Run::schedule(update(Strategy::Emulated));
    run.drive_into_probation();
    assert_eq!(run.probation(|_| healthy()), None);
    let before = run.job().clone();
    assert_eq!(
        run.cancel(),
        Err(CancelError::Finished {
            update_id: "u-1".into(),
            phase: Phase::Confirmed
        })
    );
    assert_eq!(run.job(), &before);
}

#[test]
fn a_start_time_in_the_past_starts_on_the_first_timeout() {
    let mut past = update(Strategy::NativeTest);
    past.start_at = T0 - 3 * HOUR;
    let mut run = Run::schedule(past);
    assert_eq!(run.job().phase, Phase::Scheduled);
    assert_eq!(run.machine.poll_timeout(), Some(T0 - 3 * HOUR));
    run.machine.handle_timeout(T0);
    run.record();
    assert_eq!(run.poll(), Some(Command::LoadImage { image: new_image() }));
    assert_eq!(run.job().phase, Phase::Downloading);
    assert_eq!(run.job().updated_at, T0);
}

#[test]
fn an_update_whose_start_time_is_outside_the_window_waits_for_the_opening_then_downloads() {
    let mut waiting = update(Strategy::NativeTest);
    waiting.window = Some(night_window());
    let mut run = Run::schedule(waiting);
    assert_eq!(run.wait(), T0 + HOUR);
    assert_eq!(run.job().phase, Phase::WaitingForWindow);
    assert_eq!(run.poll(), None);
    assert!(
        run.job().detail.contains("2024-01-01T02:00:00Z"),
        "{}",
        run.job().detail
    );
    assert_eq!(run.wait(), T0 + 2 * HOUR);
    assert_eq!(run.poll(), Some(Command::LoadImage { image: new_image() }));
    assert_eq!(
        run.phases,
        [
            Phase::Scheduled,
            Phase::WaitingForWindow,
            Phase::Downloading
        ]
    );
}

#[test]
fn an_update_whose_start_time_is_inside_the_window_starts_at_once() {
    let mut inside = update(Strategy::NativeTest);
    inside.window = Some(night_window());
    inside.start_at = T0 + 3 * HOUR;
    let mut run = Run::schedule(inside);
    assert_eq!(run.wait(), T0 + 3 * HOUR);
    assert_eq!(run.poll(), Some(Command::LoadImage { image: new_image() }));
    assert_eq!(run.phases, [Phase::Scheduled, Phase::Downloading]);
}

#[test]
fn transport_failures_are_retried_with_growing_backoff_from_the_acknowledged_offset() {
    let mut run = Run::schedule(update(Strategy::NativeTest));
    run.wait();
    run.expect(Command::LoadImage { image: new_image() });
    run.feed(Input::ImageLoaded);
    run.expect(Command::Transfer {
        image: new_image(),
        from_offset: 0,
    });
    run.feed(Input::Progress { acknowledged: 300 });
    let fail = |run: &mut Run| {
        run.feed(Input::TransferFailed {
            kind: TransferFailure::Transport,
            detail: "no answer within 2 s".into(),
        })
    };
    let mut delays = Vec::new();
    for _ in 0..3 {
        fail(&mut run);
        assert_eq!(run.job().phase, Phase::Transferring);
        assert_eq!(run.poll(), None, "retried at once");
        assert_eq!(run.machine.poll_timeout(), run.job().retry_at);
        assert!(
            run.job().detail.contains("retrying from byte 300"),
            "{}",
            run.job().detail
        );
        let failed_at = run.now;
        delays.push(run.wait() - failed_at);
        run.expect(Command::Transfer {
            image: new_image(),
            from_offset: 300,
        });
        assert_eq!(run.job().retry_at, None);
    }
    assert_eq!(delays, [5 * SECOND, 10 * SECOND, 20 * SECOND]);
    assert_eq!(run.job().transfer_failures, 3);

    run.feed(Input::Progress { acknowledged: 700 });
    assert_eq!(run.job().transfer_failures, 0, "progress resets the count");
    fail(&mut run);
    let failed_at = run.now;
    assert_eq!(run.wait() - failed_at, 5 * SECOND);
    run.expect(Command::Transfer {
        image: new_image(),
        from_offset: 700,
    });
}

#[test]
fn a_transfer_that_keeps_failing_ends_with_connection_lost_and_the_device_on_its_old_firmware() {
    let mut run = Run::schedule(update(Strategy::NativeTest));
    run.wait();
    run.expect(Command::LoadImage { image: new_image() });
    run.feed(Input::ImageLoaded);
    run.expect(Command::Transfer {
        image: new_image(),
        from_offset: 0,
    });
    let mut delays = Vec::new();
    loop {
        run.feed(Input::TransferFailed {
            kind: TransferFailure::Transport,
            detail: "connection reset by peer".into(),
        });
        if run.job().phase.is_terminal() {
            break;
        }
        let failed_at = run.now;
        delays.push((run.wait() - failed_at) / SECOND);
        assert!(matches!(run.poll(), Some(Command::Transfer { .. })));
    }
    assert_eq!(delays, [5, 10, 20, 40, 80, 160, 300, 300, 300]);
    assert_eq!(run.job().transfer_failures, MAX_TRANSFER_FAILURES);
    assert_eq!(run.job().phase, Phase::Failed);
    assert_eq!(run.job().result, ResultCode::ConnectionLost);
    assert!(
        run.job()
            .detail
            .contains("still runs its previous firmware 1.2.0"),
        "{}",
        run.job().detail
    );
    run.assert_quiet();
}

#[test]
fn device_refusals_of_the_transfer_end_with_their_own_result_codes() {
    for (kind, result) in [
        (TransferFailure::Integrity, ResultCode::IntegrityFailure),
        (TransferFailure::TooLarge, ResultCode::NotEnoughFlash),
        (TransferFailure::Refused, ResultCode::UpdateFailed),
    ] {
        let mut run = Run::schedule(update(Strategy::NativeTest));
        run.wait();
        run.expect(Command::LoadImage { image: new_image() });
        run.feed(Input::ImageLoaded);
        run.expect(Command::Transfer {
            image: new_image(),
            from_offset: 0,
        });
        run.feed(Input::TransferFailed {
            kind,
            detail: "CRC read-back 0x1d0f, expected 0x29b1".into(),
        });
        assert_eq!(run.job().phase, Phase::Failed, "{kind:?}");
        assert_eq!(run.job().result, result, "{kind:?}");
        let detail = &run.job().detail;
        assert!(detail.contains("CRC read-back 0x1d0f"), "{detail}");
        assert!(detail.contains("did not boot the new image"), "{detail}");
        run.assert_quiet();
    }
}

//! `--follow`: poll a firmware update's status until it is over, telling each change once.

use std::future::Future;
use std::time::Duration;

use super::error::CtlError;
use super::records::FirmwareStatus;

/// Polls in a row that may fail (the gateway restarting, a network blip) before following
/// gives up.
pub(super) const MAX_POLL_FAILURES: u32 = 5;

/// What was last told, to tell only news.
#[derive(Debug, Default)]
pub(super) struct Progress {
    last: Option<(String, String, Option<u64>)>,
}

impl Progress {
    /// Whether `status` differs from the last one told (update, phase, or whole percent), and
    /// remembers it.
    pub(super) fn is_news(&mut self, status: &FirmwareStatus) -> bool {
        let now = (
            status.update_id.clone(),
            status.status.clone(),
            status.percent(),
        );
        if self.last.as_ref() == Some(&now) {
            return false;
        }
        self.last = Some(now);
        true
    }
}

/// Calls `poll` every `every` (the first at once) until the update is over, handing each new
/// status to `tell` and each tolerated failure to `warn`. Returns the final status, or the
/// error after [`MAX_POLL_FAILURES`] failures in a row.
pub(super) async fn follow<P, F>(
    mut poll: P,
    every: Duration,
    mut tell: impl FnMut(&FirmwareStatus),
    mut warn: impl FnMut(&CtlError),
) -> Result<FirmwareStatus, CtlError>
where
    P: FnMut() -> F,
    F: Future<Output = Result<FirmwareStatus, CtlError>>,
{
    let mut progress = Progress::default();
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failures = 0u32;
    loop {
        ticks.tick().await;
        match poll().await {
            Ok(status) => {
                failures = 0;
                if progress.is_news(&status) {
                    tell(&status);
                }
                if status.is_final() {
                    return Ok(status);
                }
            }
            Err(e) => {
                failures += 1;
                if failures >= MAX_POLL_FAILURES {
                    return Err(e);
                }
                warn(&e);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::sync::{Arc, RwLock};

    use super::*;

    fn status(phase: &str, acknowledged: u64) -> FirmwareStatus {
        FirmwareStatus {
            update_id: "u-1".into(),
            status: phase.into(),
            bytes_acknowledged: acknowledged,
            bytes_total: 1000,
            ..FirmwareStatus::default()
        }
    }

    /// A poll answering `script` in order, counting its calls.
    fn scripted(
        script: Vec<Result<FirmwareStatus, CtlError>>,
    ) -> (
        impl FnMut() -> std::future::Ready<Result<FirmwareStatus, CtlError>>,
        Arc<RwLock<usize>>,
    ) {
        let script = Arc::new(RwLock::new(VecDeque::from(script)));
        let calls = Arc::new(RwLock::new(0usize));
        let counter = Arc::clone(&calls);
        let poll = move || {
            *counter.write().unwrap() += 1;
            let next = script
                .write()
                .unwrap()
                .pop_front()
                .expect("polled after the end of the script");
            std::future::ready(next)
        };
        (poll, calls)
    }

    #[tokio::test(start_paused = true)]
    async fn following_should_tell_each_phase_and_percent_once_and_stop_at_a_terminal_phase() {
        let (poll, calls) = scripted(vec![
            Ok(status("Scheduled", 0)),
            Ok(status("Transferring", 100)),
            Ok(status("Transferring", 100)),
            Ok(status("Transferring", 109)),
            Ok(status("Transferring", 500)),
            Ok(status("Staged", 1000)),
            Ok(status("Probation", 1000)),
            Ok(status("Confirmed", 1000)),
        ]);
        let started = tokio::time::Instant::now();
        let mut told = Vec::new();
        let end = follow(
            poll,
            Duration::from_secs(1),
            |s| told.push(format!("{} {:?}", s.status, s.percent())),
            |e| panic!("{e}"),
        )
        .await
        .unwrap();
        assert_eq!(end.status, "Confirmed");
        assert_eq!(
            told,
            [
                "Scheduled Some(0)",
                "Transferring Some(10)",
                "Transferring Some(50)",
                "Staged Some(100)",
                "Probation Some(100)",
                "Confirmed Some(100)",
            ]
        );
        assert_eq!(*calls.read().unwrap(), 8);
        // One poll a second, the first at once.
        assert_eq!(started.elapsed(), Duration::from_secs(7));
    }

    #[tokio::test(start_paused = true)]
    async fn following_an_idle_device_should_end_at_once() {
        let (poll, calls) = scripted(vec![Ok(FirmwareStatus {
            status: "Idle".into(),
            ..FirmwareStatus::default()
        })]);
        let end = follow(poll, Duration::from_secs(1), |_| {}, |_| {})
            .await
            .unwrap();
        assert_eq!(end.status, "Idle");
        assert_eq!(*calls.read().unwrap(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_few_failed_polls_should_be_tolerated_and_too_many_in_a_row_should_end_it() {
        let blip = || Err(CtlError::plain("timeout", "no reply".into()));
        let mut script = vec![Ok(status("Transferring", 0)), blip(), blip()];
        script.push(Ok(status("Failed", 10)));
        let (poll, _) = scripted(script);
        let mut warnings = 0;
        let end = follow(poll, Duration::from_secs(1), |_| {}, |_| warnings += 1)
            .await
            .unwrap();
        assert_eq!((end.status.as_str(), warnings), ("Failed", 2));
        assert!(end.ended_badly());

        let script = std::iter::once(Ok(status("Transferring", 0)))
            .chain((0..MAX_POLL_FAILURES).map(|_| blip()))
            .collect();
        let (poll, calls) = scripted(script);
        let err = follow(poll, Duration::from_secs(1), |_| {}, |_| {})
            .await
            .unwrap_err();
        assert_eq!(err.kind, "timeout");
        assert_eq!(*calls.read().unwrap(), 1 + MAX_POLL_FAILURES as usize);
    }
}

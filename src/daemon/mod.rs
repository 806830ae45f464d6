//! The daemon shell: parse config → build and bind → spawn → wait for SIGTERM/SIGINT → drain
//! with a grace timeout. Readiness, watchdog and stopping are reported to systemd
//! (`Type=notify`); outside systemd those notifications are no-ops.

mod gateway;
mod plan;

use std::future::Future;
use std::time::Duration;

use anyhow::Context as _;
use tokio::time::Instant;

pub use gateway::{Gateway, ManagedDevice, StartError};
pub use plan::{PlannedDevice, plan_devices};

use crate::adapters::AdapterSet;
use crate::config::Config;

/// Runs the gateway described by `config` until `shutdown` completes, then drains.
pub async fn run(
    config: Config,
    adapters: AdapterSet,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let grace = config.gateway.shutdown_grace;
    let started = Instant::now();
    let gateway = Gateway::start(config, adapters)
        .await
        .context("the gateway could not start")?;
    tracing::info!(
        devices = gateway.devices().len(),
        attached = gateway
            .devices()
            .iter()
            .filter(|d| d.link.is_some())
            .count(),
        elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        "gateway ready"
    );
    notify(&[
        sd_notify::NotifyState::Ready,
        sd_notify::NotifyState::Status("serving"),
    ]);
    let watchdog = sd_notify::watchdog_enabled().map(|interval| tokio::spawn(watchdog(interval)));

    shutdown.await;
    tracing::info!(grace_s = grace.as_secs_f64(), "stopping");
    notify(&[sd_notify::NotifyState::Stopping]);
    if tokio::time::timeout(grace, gateway.stop()).await.is_err() {
        tracing::warn!(
            grace_s = grace.as_secs_f64(),
            "operations still running after the grace period were abandoned"
        );
    }
    if let Some(task) = watchdog {
        task.abort();
    }
    tracing::info!("stopped");
    Ok(())
}

/// Completes on the first SIGTERM or SIGINT.
pub async fn shutdown_signal() -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot listen for SIGINT")?;
    tokio::select! {
        _ = term.recv() => tracing::info!(signal = "SIGTERM", "stop requested"),
        _ = int.recv() => tracing::info!(signal = "SIGINT", "stop requested"),
    }
    Ok(())
}

/// Pings the systemd watchdog at half its interval.
async fn watchdog(interval: Duration) {
    let mut tick = tokio::time::interval(interval / 2);
    loop {
        tick.tick().await;
        notify(&[sd_notify::NotifyState::Watchdog]);
    }
}

fn notify(states: &[sd_notify::NotifyState<'_>]) {
    if let Err(e) = sd_notify::notify(states) {
        tracing::warn!(error = %e, "cannot notify systemd");
    }
}

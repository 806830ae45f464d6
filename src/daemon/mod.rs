//! The daemon shell: parse config → build and bind → spawn → wait for SIGTERM/SIGINT → stop,
//! bounded by a grace timeout. Readiness, watchdog and stopping are reported to systemd
//! (`Type=notify`); outside systemd those notifications are no-ops.

mod gateway;
mod plan;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::time::Instant;

pub use gateway::{Gateway, ManagedDevice, StartError};

pub use plan::{PlannedDevice, plan_devices};

use crate::adapters::AdapterSet;
use crate::config::Config;
use crate::registry::Registry;
use crate::upnp::UpnpFace;

/// Runs the gateway described by `config` until `shutdown` completes, then stops it within the
/// configured grace period.
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
    let face = match UpnpFace::start(&gateway).await {
        Ok(face) => face,
        Err(e) => {
            gateway.stop().await;
            return Err(anyhow::Error::new(e).context("the UPnP face could not start"));
        }
    };
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
    let watchdog = sd_notify::watchdog_enabled()
        .map(|interval| tokio::spawn(watchdog(interval, Arc::clone(gateway.registry()))));

    shutdown.await;
    tracing::info!(grace_s = grace.as_secs_f64(), "stopping");
    notify(&[sd_notify::NotifyState::Stopping]);
    let stop_all = async {
        face.stop().await;
        gateway.stop().await;
    };
    if tokio::time::timeout(grace, stop_all).await.is_err() {
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

/// SIGTERM and SIGINT handlers, installed before anything starts so that a stop requested
/// during start-up is not lost (nor kills the process by the default action): it is taken up
/// as soon as the gateway is ready.
#[derive(Debug)]
pub struct ShutdownSignal {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl ShutdownSignal {
    /// Installs the handlers. Must be called inside the runtime.
    pub fn install() -> anyhow::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Self {
            term: signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?,
            int: signal(SignalKind::interrupt()).context("cannot listen for SIGINT")?,
        })
    }

    /// Completes on the first SIGTERM or SIGINT received since [`ShutdownSignal::install`].
    pub async fn wait(mut self) {
        tokio::select! {
            _ = self.term.recv() => tracing::info!(signal = "SIGTERM", "stop requested"),
            _ = self.int.recv() => tracing::info!(signal = "SIGINT", "stop requested"),
        }
    }
}

/// Pings the systemd watchdog at half its interval, as long as the runtime runs this task and
/// the registry answers a read; otherwise systemd restarts the daemon.
async fn watchdog(interval: Duration, registry: Arc<Registry>) {
    let mut tick = tokio::time::interval(interval / 2);
    loop {
        tick.tick().await;
        match registry.check_readable() {
            Ok(()) => notify(&[sd_notify::NotifyState::Watchdog]),
            Err(e) => {
                tracing::error!(error = %e, "registry unreadable; withholding the watchdog ping")
            }
        }
    }
}

fn notify(states: &[sd_notify::NotifyState<'_>]) {
    if let Err(e) = sd_notify::notify(states) {
        tracing::warn!(error = %e, "cannot notify systemd");
    }
}

//! Firmware by URL pull (method `url-pull`): the device downloads its image itself.
//!
//! - `stage` hands the device the image's one-time URL (`OtaUrl <url>`) and checks the echo.
//!   No byte moves yet: the download happens at activation, so the progress reported is the
//!   whole image at once, meaning "the device has what it needs to fetch it".
//! - `activate(Permanent)` sends `Upgrade 1`, follows the device's report on
//!   `stat/<topic>/UPGRADE`, waits for the restart (LWT Offline, then Online) and checks that
//!   `Status 2` reports the staged version. Tasmota has one bank: `Test`, `confirm` and
//!   `revert` are unsupported (the gateway emulates rollback by installing the old image).

use std::sync::{Arc, PoisonError, RwLock};

use async_trait::async_trait;
use iotmc_adapter::{
    ActivationMode, Availability, BankInfo, FirmwareCapabilities, FirmwareImage, FirmwareTarget,
    LinkError, LinkEvent, StageOutcome, StageProgress,
};
use serde_json::Value as Json;
use tokio::sync::broadcast;
use tokio::time::Instant;

use super::device::Device;
use crate::codec::tasmota::{
    Answer, Expect, Prefix, UpgradeOutcome, core_version, lookup, same_version, upgrade_started,
};

/// The firmware target of a Tasmota device.
#[derive(Debug)]
pub struct UrlPullFirmware {
    pub(super) device: Arc<Device>,
    /// The version of the image handed over by the last `stage`.
    pub(super) staged: RwLock<Option<String>>,
    /// One firmware operation at a time.
    pub(super) busy: tokio::sync::Mutex<()>,
}

impl UrlPullFirmware {
    fn unsupported(operation: &str, reason: &str) -> LinkError {
        LinkError::Unsupported {
            operation: operation.to_owned(),
            reason: reason.to_owned(),
        }
    }

    fn lock(&self, operation: &str) -> Result<tokio::sync::MutexGuard<'_, ()>, LinkError> {
        self.busy.try_lock().map_err(|_| {
            LinkError::Busy(format!(
                "{operation}: another firmware operation on device `{}` is running",
                self.device.id
            ))
        })
    }

    /// The running version as Tasmota prints it, from `Status 2`.
    async fn running_version(&self) -> Result<String, LinkError> {
        let answer = self
            .device
            .command("Status", "2", Expect::Status(2))
            .await?;
        let json = Json::Object(answer);
        match lookup(&json, "/StatusFWR/Version").and_then(Json::as_str) {
            Some(version) => Ok(version.to_owned()),
            None => Err(LinkError::Malformed(format!(
                "device `{}` answered `Status 2` on {} without /StatusFWR/Version: {json}",
                self.device.id,
                self.device.topics.topic(Prefix::Stat, "STATUS2")
            ))),
        }
    }

    /// Waits for the device's upgrade report and its restart, until `deadline`.
    async fn follow_upgrade(
        &self,
        registration: &mut super::device::Registration<'_>,
        events: &mut broadcast::Receiver<LinkEvent>,
        deadline: Instant,
    ) -> Result<(), LinkError> {
        let device = &self.device;
        let mut reported = false;
        let mut went_offline = false;
        loop {
            tokio::select! {
                answer = registration.receiver(), if !reported => {
                    reported = true;
                    match answer {
                        Ok(Ok(Answer::Upgrade(UpgradeOutcome::Successful))) => {}
                        Ok(Ok(Answer::Upgrade(UpgradeOutcome::Failed(why)))) => {
                            return Err(LinkError::DeviceRefused {
                                code: "Upgrade failed".to_owned(),
                                detail: Some(format!(
                                    "device `{}` reported on {}: Failed {why}; it keeps running its old firmware",
                                    device.id,
                                    device.topics.topic(Prefix::Stat, "UPGRADE")
                                )),
                            });
                        }
                        Ok(Ok(other)) => tracing::warn!(device = %device.id, ?other, "unexpected upgrade report"),
                        Ok(Err(malformed)) => tracing::warn!(device = %device.id, %malformed, "upgrade report unreadable; following the restart"),
                        Err(_) => return Err(LinkError::Closed),
                    }
                }
                event = events.recv() => match event {
                    Ok(LinkEvent::Availability { availability: Availability::Offline, .. }) => went_offline = true,
                    // Back after going away once the download was reported: the restart. Away
                    // and back before the report was something else (a broker reconnect).
                    Ok(LinkEvent::Availability { availability: Availability::Online, .. }) if went_offline => {
                        if reported {
                            return Ok(());
                        }
                        went_offline = false;
                    }
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => return Err(LinkError::Closed),
                },
                () = tokio::time::sleep_until(deadline) => {
                    let stage = match (reported, went_offline) {
                        (false, _) => "the device did not report on its download",
                        (true, false) => "the device reported a successful download but did not restart",
                        (true, true) => "the device restarted but did not come back online",
                    };
                    tracing::warn!(device = %device.id, stage, "firmware activation timed out");
                    return Err(LinkError::Timeout { after: device.section.upgrade_timeout });
                }
            }
        }
    }
}

#[async_trait]
impl FirmwareTarget for UrlPullFirmware {
    fn capabilities(&self) -> FirmwareCapabilities {
        let max_image_size = self.device.profile.firmware.max_image_size;
        FirmwareCapabilities {
            dual_bank: false,
            confirm_required: false,
            resumable: false,
            max_image_size,
            // The device fetches the image in one HTTP download.
            preferred_chunk: u32::try_from(max_image_size).unwrap_or(u32::MAX),
        }
    }

    async fn banks(&self) -> Result<Vec<BankInfo>, LinkError> {
        let running = self.running_version().await?;
        Ok(vec![BankInfo {
            slot: 0,
            version: Some(core_version(&running).to_owned()),
            active: true,
            confirmed: true,
            pending: false,
        }])
    }

    async fn stage(
        &self,
        image: &FirmwareImage,
        from_offset: u64,
        progress: &(dyn Fn(StageProgress) + Send + Sync),
    ) -> Result<StageOutcome, LinkError> {
        let operation = "firmware stage";
        let _busy = self.lock(operation)?;
        if from_offset != 0 {
            return Err(Self::unsupported(
                operation,
                "Tasmota downloads the whole image itself; a url-pull transfer cannot resume, stage from offset 0",
            ));
        }
        let total = image.bytes.len() as u64;
        let max = self.capabilities().max_image_size;
        if total > max {
            return Err(LinkError::OutOfRange {
                name: "firmware image".to_owned(),
                value: format!("{total} bytes"),
                expected: format!("at most {max} bytes (the profile's firmware.max_image_size)"),
            });
        }
        let Some(url) = image.download_url.as_deref() else {
            return Err(Self::unsupported(
                operation,
                "a Tasmota device pulls its image from a URL, and none was given: the gateway's image endpoint must be configured to offer images at one-time URLs",
            ));
        };
        let answer = self
            .device
            .command("OtaUrl", url, Expect::Result("OtaUrl".to_owned()))
            .await?;
        let json = Json::Object(answer);
        let kept = lookup(&json, "/OtaUrl").and_then(Json::as_str);
        if kept != Some(url) {
            return Err(LinkError::DeviceRefused {
                code: "OtaUrl not taken".to_owned(),
                detail: Some(format!(
                    "device `{}` was sent the URL {url} and answered {json}; a URL too long for its settings is cut short",
                    self.device.id
                )),
            });
        }
        *self.staged.write().unwrap_or_else(PoisonError::into_inner) = Some(image.version.clone());
        progress(StageProgress {
            acknowledged: total,
            total,
        });
        Ok(StageOutcome {
            transferred: total,
            verified_on_device: false,
        })
    }

    async fn activate(&self, mode: ActivationMode) -> Result<(), LinkError> {
        let operation = "firmware activate";
        if mode == ActivationMode::Test {
            return Err(Self::unsupported(
                "firmware activate (test)",
                "Tasmota has one firmware bank and cannot boot an image on trial; activate it permanently (the gateway keeps the old image to re-install it)",
            ));
        }
        let _busy = self.lock(operation)?;
        let staged = self
            .staged
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
            .ok_or_else(|| {
                Self::unsupported(
                    operation,
                    "no image is staged on this device: stage one first",
                )
            })?;
        let device = &self.device;
        let deadline = Instant::now() + device.section.upgrade_timeout;
        let mut events = device.hub.subscribe();
        let mut registration = device.waiters.register(Expect::Upgrade);
        let answer = device
            .command("Upgrade", "1", Expect::Result("Upgrade".to_owned()))
            .await?;
        upgrade_started(&answer).map_err(|said| LinkError::DeviceRefused {
            code: "Upgrade not started".to_owned(),
            detail: Some(format!(
                "device `{}` was sent `Upgrade 1` and {said}",
                device.id
            )),
        })?;
        self.follow_upgrade(&mut registration, &mut events, deadline)
            .await?;
        drop(registration);
        *self.staged.write().unwrap_or_else(PoisonError::into_inner) = None;
        let running = self.running_version().await?;
        if !same_version(&running, &staged) {
            return Err(LinkError::DeviceRefused {
                code: "firmware version unchanged".to_owned(),
                detail: Some(format!(
                    "device `{}` restarted after the upgrade to {staged} but reports {running} (Status 2)",
                    device.id
                )),
            });
        }
        Ok(())
    }

    async fn confirm(&self) -> Result<(), LinkError> {
        Err(Self::unsupported(
            "firmware confirm",
            "Tasmota has one firmware bank; a permanent activation needs no confirmation",
        ))
    }

    async fn revert(&self) -> Result<(), LinkError> {
        Err(Self::unsupported(
            "firmware revert",
            "Tasmota has one firmware bank and keeps no previous image; install the previous image again to go back",
        ))
    }
}

//! Chunked firmware over MQTT 5 request/response (the wire protocol is in
//! `device-profiles/mqtt/generic.md`): `begin` says where the device continues, binary chunks
//! carry `offset` and `length` user properties and are acknowledged, `verify` returns the
//! device's SHA-256 of what it holds, `activate` restarts it into the image, `confirm` keeps a
//! test image, `revert` goes back, `banks` lists the slots.

use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use iotmc_adapter::profile::FirmwareSpec;
use iotmc_adapter::{
    ActivationMode, Availability, BankInfo, FirmwareCapabilities, FirmwareImage, FirmwareTarget,
    LinkError, LinkEvent, StageOutcome, StageProgress,
};
use serde_json::json;
use tokio::sync::broadcast::error::RecvError;

use super::request::{Ask, Requester};
use crate::codec::generic::{acknowledged, banks, begin_offset, hex, sha256};
use crate::link::EventHub;
use crate::profile::generic::{FirmwareMap, expand};

/// Chunks in a row the device may acknowledge without progress before the transfer fails.
const MAX_STALLS: u32 = 3;

/// The chunked firmware target of one device.
#[derive(Debug)]
pub(super) struct ChunkedFirmware {
    requester: Requester,
    topic: String,
    capabilities: FirmwareCapabilities,
    verify_timeout: Duration,
    restart_timeout: Duration,
    hub: Arc<EventHub>,
    /// The version of the last image staged and verified through this link.
    staged: RwLock<Option<String>>,
    /// Held while a transfer or restart runs.
    busy: tokio::sync::Mutex<()>,
}

impl ChunkedFirmware {
    pub(super) fn new(
        requester: Requester,
        map: &FirmwareMap,
        spec: &FirmwareSpec,
        device: &str,
        hub: Arc<EventHub>,
    ) -> Self {
        Self {
            requester,
            topic: expand(&map.topic, device),
            capabilities: FirmwareCapabilities {
                dual_bank: spec.dual_bank,
                confirm_required: map.confirm_required.unwrap_or(spec.dual_bank),
                resumable: true,
                max_image_size: spec.max_image_size,
                preferred_chunk: map.chunk_size,
            },
            verify_timeout: map.verify_timeout,
            restart_timeout: map.restart_timeout,
            hub,
            staged: RwLock::new(None),
            busy: tokio::sync::Mutex::new(()),
        }
    }

    fn exclusive(&self, operation: &str) -> Result<tokio::sync::MutexGuard<'_, ()>, LinkError> {
        self.busy.try_lock().map_err(|_| {
            LinkError::Busy(format!(
                "firmware {operation} on device `{}`: another firmware operation is running",
                self.requester.device_id
            ))
        })
    }

    async fn op(
        &self,
        operation: &str,
        payload: serde_json::Value,
    ) -> Result<serde_json::Value, LinkError> {
        self.requester
            .ask(Ask::json(operation, &self.topic, &payload))
            .await
    }

    /// Sends the request of an operation that restarts the device and waits until it went
    /// offline and came back online.
    async fn restarting(
        &self,
        operation: &str,
        payload: serde_json::Value,
    ) -> Result<(), LinkError> {
        let mut events = self.hub.subscribe();
        self.op(operation, payload).await?;
        let mut went_offline = false;
        let back = async {
            loop {
                match events.recv().await {
                    Ok(LinkEvent::Availability { availability, .. }) => match availability {
                        Availability::Offline => went_offline = true,
                        Availability::Online if went_offline => return Ok(()),
                        Availability::Online => {}
                    },
                    Ok(LinkEvent::Changed { .. }) => {}
                    Err(RecvError::Lagged(_)) => {
                        // Events were lost: judge by the state now.
                        went_offline = true;
                        if self.hub.availability() == Some(Availability::Online) {
                            return Ok(());
                        }
                    }
                    Err(RecvError::Closed) => return Err(LinkError::Closed),
                }
            }
        };
        tokio::time::timeout(self.restart_timeout, back)
            .await
            .map_err(|_| {
                tracing::warn!(
                    device = %self.requester.device_id,
                    operation,
                    after = ?self.restart_timeout,
                    "the device did not go offline and come back after a firmware restart"
                );
                LinkError::Timeout {
                    after: self.restart_timeout,
                }
            })?
    }

    fn staged(&self) -> Option<String> {
        self.staged
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    async fn active(&self) -> Result<BankInfo, LinkError> {
        self.banks_now()
            .await?
            .into_iter()
            .find(|b| b.active)
            .ok_or_else(|| {
                self.requester
                    .malformed("firmware banks", "no bank is marked active")
            })
    }

    async fn banks_now(&self) -> Result<Vec<BankInfo>, LinkError> {
        let answer = self.op("firmware banks", json!({"op": "banks"})).await?;
        banks(&self.topic, &answer)
            .map_err(|e| self.requester.malformed("firmware banks", &e.to_string()))
    }
}

#[async_trait]
impl FirmwareTarget for ChunkedFirmware {
    fn capabilities(&self) -> FirmwareCapabilities {
        self.capabilities.clone()
    }

    async fn banks(&self) -> Result<Vec<BankInfo>, LinkError> {
        self.banks_now().await
    }

    async fn stage(
        &self,
        image: &FirmwareImage,
        from_offset: u64,
        progress: &(dyn Fn(StageProgress) + Send + Sync),
    ) -> Result<StageOutcome, LinkError> {
        let _busy = self.exclusive("transfer")?;
        let size = image.bytes.len() as u64;
        if size == 0 || size > self.capabilities.max_image_size {
            return Err(LinkError::OutOfRange {
                name: "firmware image".into(),
                value: format!("{size} bytes"),
                expected: format!("1 ..= {} bytes", self.capabilities.max_image_size),
            });
        }
        if from_offset > size {
            return Err(LinkError::OutOfRange {
                name: "firmware offset".into(),
                value: from_offset.to_string(),
                expected: format!("0 ..= {size} (the image size)"),
            });
        }
        let begin = json!({
            "op": "begin",
            "size": size,
            "sha256": hex(&image.sha256),
            "version": image.version,
            "offset": from_offset,
        });
        let answer = self.op("firmware begin", begin).await?;
        let start = begin_offset(&self.topic, &answer, size)
            .map_err(|e| self.requester.malformed("firmware begin", &e.to_string()))?;
        if start != from_offset {
            tracing::info!(
                device = %self.requester.device_id,
                asked = from_offset,
                device_offset = start,
                "the device continues the transfer where it says"
            );
        }
        progress(StageProgress {
            acknowledged: start,
            total: size,
        });
        let chunk_size = u64::from(self.capabilities.preferred_chunk.max(1));
        let mut offset = start;
        let mut stalls = 0;
        while offset < size {
            let end = (offset + chunk_size).min(size);
            let (from, to) = (
                usize::try_from(offset).unwrap_or(usize::MAX),
                usize::try_from(end).unwrap_or(usize::MAX),
            );
            let data = Bytes::copy_from_slice(image.bytes.get(from..to).unwrap_or_default());
            let ask = Ask {
                operation: "firmware chunk",
                topic: &self.topic,
                payload: data,
                user: vec![
                    ("offset".into(), offset.to_string()),
                    ("length".into(), (end - offset).to_string()),
                ],
                binary: true,
                timeout: None,
            };
            let answer = self.requester.ask(ask).await?;
            let held = acknowledged(&self.topic, &answer, end)
                .map_err(|e| self.requester.malformed("firmware chunk", &e.to_string()))?;
            if held <= offset {
                stalls += 1;
                if stalls > MAX_STALLS {
                    return Err(self.requester.malformed(
                        "firmware chunk",
                        &format!("the device acknowledged {held} bytes {stalls} times in a row after chunks at {offset}; it does not take the image"),
                    ));
                }
            } else {
                stalls = 0;
            }
            offset = held;
            progress(StageProgress {
                acknowledged: offset,
                total: size,
            });
        }
        let answer = self
            .requester
            .ask(
                Ask::json("firmware verify", &self.topic, &json!({"op": "verify"}))
                    .within(self.verify_timeout),
            )
            .await?;
        let on_device = sha256(&self.topic, &answer)
            .map_err(|e| self.requester.malformed("firmware verify", &e.to_string()))?;
        if on_device != image.sha256 {
            return Err(LinkError::Malformed(format!(
                "firmware verify on device `{}`: the device's SHA-256 of the image is {}, expected {}: the copy on the device is damaged; stage it again from 0",
                self.requester.device_id,
                hex(&on_device),
                hex(&image.sha256)
            )));
        }
        *self.staged.write().unwrap_or_else(PoisonError::into_inner) = Some(image.version.clone());
        Ok(StageOutcome {
            transferred: size - start,
            verified_on_device: true,
        })
    }

    async fn activate(&self, mode: ActivationMode) -> Result<(), LinkError> {
        let _busy = self.exclusive("activation")?;
        let mode_name = match mode {
            ActivationMode::Test => "test",
            ActivationMode::Permanent => "permanent",
        };
        let expected = match self.staged() {
            Some(version) => Some(version),
            None => self
                .banks_now()
                .await?
                .into_iter()
                .find(|b| !b.active && b.version.is_some())
                .and_then(|b| b.version),
        };
        self.restarting(
            "firmware activate",
            json!({"op": "activate", "mode": mode_name}),
        )
        .await?;
        let active = self.active().await?;
        if let Some(expected) = expected
            && active.version.as_deref() != Some(expected.as_str())
        {
            return Err(LinkError::DeviceRefused {
                code: "boot failed".into(),
                detail: Some(format!(
                    "device `{}` came back running {}, not the staged {expected}: it did not boot the new image and kept the previous one",
                    self.requester.device_id,
                    active.version.as_deref().unwrap_or("an unknown version")
                )),
            });
        }
        *self.staged.write().unwrap_or_else(PoisonError::into_inner) = None;
        Ok(())
    }

    async fn confirm(&self) -> Result<(), LinkError> {
        let _busy = self.exclusive("confirm")?;
        self.op("firmware confirm", json!({"op": "confirm"}))
            .await?;
        Ok(())
    }

    async fn revert(&self) -> Result<(), LinkError> {
        if !self.capabilities.dual_bank {
            return Err(LinkError::Unsupported {
                operation: "firmware revert".into(),
                reason: "the device has one bank (the profile's `firmware.dual_bank` is false)"
                    .into(),
            });
        }
        let _busy = self.exclusive("revert")?;
        self.restarting("firmware revert", json!({"op": "revert"}))
            .await
    }
}

//! FirmwareUpdate:1 on every virtual device and the campaign actions of the gateway's
//! ManagementController:1, on top of the firmware engine; and the forwarding of the engine's
//! notices to GENA.

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio::sync::broadcast::error::RecvError;
use uuid::Uuid;

use super::specs::{FIRMWARE_UPDATE, MANAGEMENT_CONTROLLER};
use super::{FaceState, event_key};
use crate::firmware::engine::{EngineError, Notice, parse_sha256, transfer_total};
use crate::firmware::store::StoredImage;
use crate::upnp::device::VirtualDevice;
use crate::upnp::soap::UpnpError;

type Out = Vec<(&'static str, String)>;

/// A FirmwareUpdate:1 action on `device`.
pub(super) async fn device_action(
    state: &FaceState,
    device: &VirtualDevice,
    action: &str,
    args: &[&str],
) -> Result<Out, UpnpError> {
    let id = device.record().id;
    let arg = |i: usize| args.get(i).copied().unwrap_or_default();
    let fail = |operation: &str, e: EngineError| engine_error(device, operation, &e);
    match action {
        "GetFirmwareInfo" => {
            let info = state
                .firmware
                .info(&id)
                .await
                .map_err(|e| fail(action, e))?;
            let (rv, rs, rh, rd) = image_fields(info.running_image.as_ref());
            let (ov, os, oh, od) = image_fields(info.offered.as_ref());
            let emergency = info.offered.as_ref().is_some_and(|i| i.manifest.emergency);
            Ok(vec![
                ("RunningVersion", info.running_version.unwrap_or(rv)),
                ("RunningSize", rs),
                ("RunningSha256", rh),
                ("RunningReleaseDate", rd),
                ("OfferedVersion", ov),
                ("OfferedSize", os),
                ("OfferedSha256", oh),
                ("OfferedReleaseDate", od),
                ("OfferedEmergency", if emergency { "1" } else { "0" }.into()),
            ])
        }
        "ScheduleFirmwareUpdate" => {
            let start = crate::utc::parse(arg(0)).map_err(|why| {
                UpnpError::argument_value_invalid(format!(
                    "ScheduleFirmwareUpdate on {}: StartTime {why}",
                    device.describe()
                ))
            })?;
            let image = match arg(1).trim() {
                "" => None,
                text => Some(parse_sha256(text).ok_or_else(|| {
                    UpnpError::argument_value_invalid(format!(
                        "ScheduleFirmwareUpdate on {}: ImageSha256 must be 64 hex digits or empty (the image on offer)",
                        device.describe()
                    ))
                })?),
            };
            let update_id = state
                .firmware
                .schedule(&id, image, start)
                .map_err(|e| fail(action, e))?;
            Ok(vec![("UpdateId", update_id)])
        }
        "CancelFirmwareUpdate" => {
            state
                .firmware
                .cancel(&id, arg(0).trim())
                .map_err(|e| fail(action, e))?;
            Ok(Vec::new())
        }
        "GetFirmwareUpdateStatus" => Ok(match state.firmware.job(&id) {
            None => vec![
                ("UpdateId", String::new()),
                ("Status", "Idle".into()),
                ("ResultCode", "0".into()),
                ("BytesAcknowledged", "0".into()),
                ("BytesTotal", "0".into()),
                ("ProbationEnds", String::new()),
                ("Detail", "no firmware update has been scheduled".into()),
            ],
            Some(job) => {
                let total = transfer_total(&job);
                vec![
                    ("UpdateId", job.update_id.clone()),
                    ("Status", job.phase.as_str().into()),
                    ("ResultCode", job.result.code().to_string()),
                    ("BytesAcknowledged", ui4(job.acknowledged)),
                    ("BytesTotal", ui4(total)),
                    (
                        "ProbationEnds",
                        job.probation_until.map(rfc3339).unwrap_or_default(),
                    ),
                    ("Detail", job.detail.clone()),
                ]
            }
        }),
        other => Err(UpnpError::action_failed(format!(
            "internal: FirmwareUpdate#{other} has no handler"
        ))),
    }
}

/// A campaign action of the gateway's ManagementController.
pub(super) fn campaign_action(
    state: &FaceState,
    action: &str,
    args: &[&str],
) -> Result<Out, UpnpError> {
    let arg = |i: usize| args.get(i).copied().unwrap_or_default();
    let fail = |e: EngineError| UpnpError::new(e.code(), format!("{action}: {e}"));
    let engine = &state.firmware;
    match action {
        "StartFirmwareCampaign" => {
            let image = parse_sha256(arg(1).trim()).ok_or_else(|| {
                UpnpError::argument_value_invalid(
                    "StartFirmwareCampaign: ImageSha256 must be 64 hex digits",
                )
            })?;
            let start = crate::utc::parse(arg(2)).map_err(|why| {
                UpnpError::argument_value_invalid(format!("StartFirmwareCampaign: StartTime {why}"))
            })?;
            let count = |i: usize, name: &str| {
                arg(i).trim().parse::<u32>().map_err(|_| {
                    UpnpError::argument_value_invalid(format!(
                        "StartFirmwareCampaign: {name} must be a number"
                    ))
                })
            };
            let id = engine
                .start_campaign(
                    arg(0),
                    image,
                    start,
                    count(3, "MaxConcurrent")?,
                    count(4, "FailureThreshold")?,
                )
                .map_err(fail)?;
            Ok(vec![("CampaignId", id)])
        }
        "PauseFirmwareCampaign" => engine
            .pause_campaign(arg(0).trim())
            .map_err(fail)
            .map(|()| Vec::new()),
        "ResumeFirmwareCampaign" => engine
            .resume_campaign(arg(0).trim())
            .map_err(fail)
            .map(|()| Vec::new()),
        "AbortFirmwareCampaign" => engine
            .abort_campaign(arg(0).trim())
            .map_err(fail)
            .map(|()| Vec::new()),
        "GetFirmwareCampaignStatus" => {
            let campaign = engine.campaign(arg(0).trim()).map_err(fail)?;
            Ok(vec![("Status", campaign.status_xml())])
        }
        other => Err(UpnpError::action_failed(format!(
            "internal: ManagementController#{other} has no handler"
        ))),
    }
}

/// Forwards the engine's notices to GENA until the engine goes away. A forwarder that fell
/// behind re-publishes every device's current values.
pub async fn forward_notices(state: Arc<FaceState>) {
    let mut notices = state.firmware.subscribe();
    // Device ids are fixed while the face runs: look each notice's device up once, not by
    // walking every device per notice.
    let udns: BTreeMap<String, Uuid> = state
        .devices
        .values()
        .map(|d| (d.record().id, d.udn))
        .collect();
    loop {
        match notices.recv().await {
            Ok(notice) => publish(&state, &udns, notice),
            Err(RecvError::Lagged(missed)) => {
                tracing::warn!(
                    missed,
                    "firmware notices lagged; re-publishing current values"
                );
                for id in udns.keys() {
                    publish(
                        &state,
                        &udns,
                        Notice::Available {
                            value: state.firmware.available_value(id),
                            device: id.clone(),
                        },
                    );
                    publish(
                        &state,
                        &udns,
                        Notice::Status {
                            value: state.firmware.status_value(id),
                            device: id.clone(),
                        },
                    );
                }
            }
            Err(RecvError::Closed) => return,
        }
    }
}

fn publish(state: &FaceState, udns: &BTreeMap<String, Uuid>, notice: Notice) {
    let (device, name, value) = match notice {
        Notice::Available { device, value } => (Some(device), "FirmwareAvailable", value),
        Notice::Status { device, value } => (Some(device), "FirmwareUpdateStatus", value),
        Notice::Campaign { value } => (None, "FirmwareCampaignStatus", value),
    };
    let key = match device {
        Some(id) => {
            let Some(udn) = udns.get(&id) else {
                return;
            };
            event_key(*udn, &FIRMWARE_UPDATE)
        }
        None => event_key(state.gateway.udn, &MANAGEMENT_CONTROLLER),
    };
    state.eventing.publish(&key, vec![(name.to_owned(), value)]);
}

fn engine_error(device: &VirtualDevice, operation: &str, e: &EngineError) -> UpnpError {
    UpnpError::new(
        e.code(),
        format!("{operation} on {}: {e}", device.describe()),
    )
}

/// (version, size, SHA-256, release date) of an image; without one, empty strings and size 0
/// (a ui4 cannot be empty: async-upnp-client, for one, refuses the whole answer).
fn image_fields(image: Option<&StoredImage>) -> (String, String, String, String) {
    image.map_or_else(
        || (String::new(), "0".into(), String::new(), String::new()),
        |i| {
            (
                i.manifest.version.clone(),
                ui4(i.manifest.size),
                i.sha256_hex(),
                i.manifest.release_date.clone(),
            )
        },
    )
}

fn ui4(n: u64) -> String {
    n.min(u64::from(u32::MAX)).to_string()
}

fn rfc3339(ms: u64) -> String {
    crate::firmware::machine::utc(ms)
}

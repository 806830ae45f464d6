//! The firmware engine end to end, driven only through UPnP actions and GENA events (issue 6,
//! "Done when"): a simulated two-bank Modbus controller and a simulated generic MQTT 5
//! controller each take a healthy image (Transferring → … → Confirmed) and roll back an image
//! that fails its health check (… → Probation → RolledBack, result 12); refused schedules change
//! nothing; a scheduled update is cancelled; a campaign over their group completes one device at
//! a time. Set-up (simulators, keys, signing, import into the store) uses the library.
#![cfg(all(feature = "modbus", feature = "mqtt"))]
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed set-up step is a failed test

mod common;
mod firmware;

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime};

use firmware::control::elements;
use firmware::events::{CampaignSummary, UpdateStatus};
use firmware::images::{Imported, MODBUS_PROFILE, MQTT_PROFILE, SimImage};
use firmware::rig::{CONTROLLER_EVENTS, MODBUS_DEVICE, MQTT_DEVICE, Rig, firmware_events};
use firmware::utc;

/// UPnP error 713 (README, "UPnP error codes"): the image is not for this device.
const WRONG_TARGET: u16 = 713;
/// UPnP error 717: too late to cancel (the update is over or past Transferring).
const NOT_NOW: u16 = 717;

/// Image size for the UPnP tests: several hundred Modbus requests, a few dozen MQTT chunks.
const IMAGE_SIZE: usize = 48 * 1024;

/// The phases of an update that succeeds, every one evented.
const CONFIRMED_PHASES: [&str; 8] = [
    "Scheduled",
    "Downloading",
    "Verified",
    "Transferring",
    "Staged",
    "Rebooting",
    "Probation",
    "Confirmed",
];

/// The phases of an update whose image fails probation on a two-bank device.
const ROLLED_BACK_PHASES: [&str; 8] = [
    "Scheduled",
    "Downloading",
    "Verified",
    "Transferring",
    "Staged",
    "Rebooting",
    "Probation",
    "RolledBack",
];

fn is_terminal(status: &str) -> bool {
    matches!(status, "Confirmed" | "RolledBack" | "Failed" | "Cancelled")
}

/// Waits for update `update_id` of device `id` to end and returns its last evented status.
async fn await_end(rig: &mut Rig, id: &str, update_id: &str) -> UpdateStatus {
    let value = rig
        .events
        .until(
            &firmware_events(id),
            "FirmwareUpdateStatus",
            &format!("update {update_id} of {id} to end"),
            |v| {
                let s = UpdateStatus::parse(v);
                s.update_id == update_id && is_terminal(&s.status)
            },
        )
        .await;
    UpdateStatus::parse(&value)
}

/// Checks the progress evented for `update_id`: never backwards, never past the image.
fn assert_progress(rig: &Rig, id: &str, update_id: &str, image: &Imported) {
    let statuses = rig.events.update_statuses(&firmware_events(id), update_id);
    let mut last = 0;
    for s in &statuses {
        assert!(
            s.acknowledged >= last && s.acknowledged <= image.size,
            "acknowledged bytes go forward within the image: {statuses:#?}"
        );
        last = s.acknowledged;
    }
}

/// A healthy image is confirmed, then an unhealthy one is rolled back: both scheduled over
/// HTTPS and watched through GENA only.
async fn confirm_then_roll_back(rig: &mut Rig, id: &str, profile: &str) {
    let service = rig.firmware(id).await;
    let path = firmware_events(id);
    let initial = rig.running(id);

    // A healthy image: offered, scheduled for now (the image on offer), confirmed.
    let good = rig.import(&SimImage::new("2.0.0", true, IMAGE_SIZE, &[profile]));
    rig.await_offer(id, &good).await;
    let info = rig.face.firmware_info(&service).await;
    assert_eq!(info["OfferedVersion"], good.version, "{info:#?}");
    assert_eq!(info["OfferedSize"], good.size.to_string(), "{info:#?}");
    assert_eq!(info["OfferedSha256"], good.sha256, "{info:#?}");
    assert_eq!(info["OfferedReleaseDate"], good.release_date, "{info:#?}");
    assert_eq!(info["OfferedEmergency"], "0", "{info:#?}");
    assert_eq!(info["RunningVersion"], initial, "{info:#?}");

    let update = rig
        .face
        .schedule_ok(&service, &utc(SystemTime::now()), "")
        .await;
    let end = await_end(rig, id, &update).await;
    assert_eq!(
        rig.events.phases(&path, &update),
        CONFIRMED_PHASES,
        "every phase of {update} is evented, in order"
    );
    assert_eq!(
        (end.status.as_str(), end.result),
        ("Confirmed", 1),
        "{end:?}"
    );
    assert_eq!((end.acknowledged, end.total), (good.size, good.size));
    assert_progress(rig, id, &update, &good);
    assert_eq!(rig.running(id), "2.0.0", "{id} runs the new image");
    let status = rig.face.update_status(&service).await;
    assert_eq!(
        (
            status.update_id.as_str(),
            status.status.as_str(),
            status.result
        ),
        (update.as_str(), "Confirmed", 1),
        "{status:?}"
    );
    assert_eq!((status.acknowledged, status.total), (good.size, good.size));
    let info = rig.face.firmware_info(&service).await;
    assert_eq!(info["RunningVersion"], "2.0.0", "{info:#?}");
    assert_eq!(info["RunningSha256"], good.sha256, "{info:#?}");
    assert_eq!(info["RunningSize"], good.size.to_string(), "{info:#?}");

    // An image that boots but fails the health check: probation fails, the device is returned
    // to 2.0.0.
    let bad = rig.import(&SimImage::new("2.1.0", false, IMAGE_SIZE, &[profile]));
    rig.await_offer(id, &bad).await;
    let update = rig
        .face
        .schedule_ok(&service, &utc(SystemTime::now()), &bad.sha256)
        .await;
    let end = await_end(rig, id, &update).await;
    assert_eq!(
        rig.events.phases(&path, &update),
        ROLLED_BACK_PHASES,
        "every phase of {update} is evented, in order"
    );
    assert_eq!(
        (end.status.as_str(), end.result),
        ("RolledBack", 12),
        "{end:?}"
    );
    assert_progress(rig, id, &update, &bad);
    assert_eq!(rig.running(id), "2.0.0", "{id} is back on the image it ran");
    let status = rig.face.update_status(&service).await;
    assert_eq!(
        (
            status.update_id.as_str(),
            status.status.as_str(),
            status.result
        ),
        (update.as_str(), "RolledBack", 12),
        "{status:?}"
    );
    assert!(!status.detail.is_empty(), "the detail says what went wrong");
    let info = rig.face.firmware_info(&service).await;
    assert_eq!(info["RunningVersion"], "2.0.0", "{info:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_modbus_two_bank_device_should_confirm_a_healthy_image_and_roll_back_an_unhealthy_one() {
    let mut rig = Rig::start().await;
    let bank = rig.modbus.sim().active_bank();
    confirm_then_roll_back(&mut rig, MODBUS_DEVICE, MODBUS_PROFILE).await;
    assert_ne!(
        rig.modbus.sim().active_bank(),
        bank,
        "2.0.0 runs from the other bank"
    );
    assert_eq!(
        rig.modbus.confirmed(),
        Some(true),
        "the bank it runs is confirmed"
    );
    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_mqtt_two_bank_device_should_confirm_a_healthy_image_and_roll_back_an_unhealthy_one() {
    let mut rig = Rig::start().await;
    confirm_then_roll_back(&mut rig, MQTT_DEVICE, MQTT_PROFILE).await;
    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schedule_of_an_image_for_another_profile_should_be_refused_naming_it_and_change_nothing()
{
    let mut rig = Rig::start().await;
    let service = rig.firmware(MODBUS_DEVICE).await;
    let other = rig.import(&SimImage::new("2.0.0", true, IMAGE_SIZE, &[MQTT_PROFILE]));
    // The gateway has seen the image: it offers it to the device it is for.
    rig.await_offer(MQTT_DEVICE, &other).await;
    let info = rig.face.firmware_info(&service).await;
    assert_ne!(
        info["OfferedSha256"], other.sha256,
        "not offered to a device of another profile"
    );
    let before = rig.face.update_status(&service).await;
    assert_eq!(before.status, "Idle", "{before:?}");

    let reply = rig
        .face
        .schedule(&service, &utc(SystemTime::now()), &other.sha256)
        .await;
    let (code, description) = reply.upnp_error();
    assert_eq!(
        code, WRONG_TARGET,
        "the image is not for this device: {description}"
    );
    assert!(
        description.contains(MODBUS_PROFILE)
            && (description.contains(&other.sha256) || description.contains(MQTT_PROFILE)),
        "the error names the image and the device's profile: {description}"
    );

    assert_eq!(rig.face.update_status(&service).await, before);
    assert_eq!(rig.modbus.image_bytes(), 0, "no byte moved");
    assert_eq!(rig.running(MODBUS_DEVICE), "1.0.0");
    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_anonymous_schedule_or_cancel_over_plain_http_should_be_refused_with_606_and_change_nothing()
 {
    let mut rig = Rig::start().await;
    let service = rig.firmware(MODBUS_DEVICE).await;
    let image = rig.import(&SimImage::new("2.0.0", true, IMAGE_SIZE, &[MODBUS_PROFILE]));
    rig.await_offer(MODBUS_DEVICE, &image).await;
    let before = rig.face.update_status(&service).await;

    let start = utc(SystemTime::now());
    let reply = rig
        .face
        .read(
            &service,
            "ScheduleFirmwareUpdate",
            &[("StartTime", &start), ("ImageSha256", &image.sha256)],
        )
        .await;
    let (code, description) = reply.upnp_error();
    assert_eq!(code, 606, "{description}");
    assert!(
        description.contains("HTTPS"),
        "the error says how to call it: {description}"
    );
    let reply = rig
        .face
        .read(&service, "CancelFirmwareUpdate", &[("UpdateId", "any")])
        .await;
    assert_eq!(reply.upnp_error().0, 606);

    assert_eq!(rig.face.update_status(&service).await, before);
    assert_eq!(rig.modbus.image_bytes(), 0, "no byte moved");
    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_update_scheduled_an_hour_ahead_should_end_cancelled_when_the_operator_cancels_it() {
    let mut rig = Rig::start().await;
    let service = rig.firmware(MODBUS_DEVICE).await;
    let path = firmware_events(MODBUS_DEVICE);
    let image = rig.import(&SimImage::new("2.0.0", true, IMAGE_SIZE, &[MODBUS_PROFILE]));
    rig.await_offer(MODBUS_DEVICE, &image).await;

    let later = utc(SystemTime::now() + Duration::from_secs(3600));
    let update = rig.face.schedule_ok(&service, &later, &image.sha256).await;
    rig.events
        .until(&path, "FirmwareUpdateStatus", "the update scheduled", |v| {
            let s = UpdateStatus::parse(v);
            s.update_id == update && s.status == "Scheduled"
        })
        .await;
    let status = rig.face.update_status(&service).await;
    assert_eq!(
        (status.status.as_str(), status.result),
        ("Scheduled", 0),
        "{status:?}"
    );

    let reply = rig
        .face
        .change(&service, "CancelFirmwareUpdate", &[("UpdateId", &update)])
        .await;
    assert_eq!(reply.status, hyper::StatusCode::OK, "{reply:?}");
    let end = await_end(&mut rig, MODBUS_DEVICE, &update).await;
    assert_eq!(
        (end.status.as_str(), end.result),
        ("Cancelled", 10),
        "{end:?}"
    );
    assert_eq!(
        rig.events.phases(&path, &update),
        ["Scheduled", "Cancelled"]
    );
    let status = rig.face.update_status(&service).await;
    assert_eq!(
        (
            status.update_id.as_str(),
            status.status.as_str(),
            status.result
        ),
        (update.as_str(), "Cancelled", 10),
        "{status:?}"
    );

    // Cancelling what is over is refused and changes nothing.
    let reply = rig
        .face
        .change(&service, "CancelFirmwareUpdate", &[("UpdateId", &update)])
        .await;
    let (code, description) = reply.upnp_error();
    assert_eq!(code, NOT_NOW, "too late to cancel: {description}");
    assert!(
        description.contains(&update),
        "the error names the update: {description}"
    );
    assert_eq!(rig.face.update_status(&service).await, status);
    assert_eq!(rig.modbus.image_bytes(), 0, "no byte moved");
    assert_eq!(rig.running(MODBUS_DEVICE), "1.0.0");
    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_campaign_over_a_group_one_device_at_a_time_should_complete_with_both_confirmed() {
    let mut rig = Rig::start().await;
    let image = rig.import(&SimImage::new(
        "3.0.0",
        true,
        IMAGE_SIZE,
        &[MODBUS_PROFILE, MQTT_PROFILE],
    ));
    rig.await_offer(MODBUS_DEVICE, &image).await;
    rig.await_offer(MQTT_DEVICE, &image).await;

    let controller = rig.controller().await;
    let campaign = rig
        .face
        .change(
            &controller,
            "StartFirmwareCampaign",
            &[
                ("Targets", "group:hvac"),
                ("ImageSha256", &image.sha256),
                ("StartTime", &utc(SystemTime::now())),
                ("MaxConcurrent", "1"),
                ("FailureThreshold", "1"),
            ],
        )
        .await
        .argument("CampaignId");
    assert!(!campaign.is_empty());
    let last = rig
        .events
        .until(
            CONTROLLER_EVENTS,
            "FirmwareCampaignStatus",
            &format!("campaign {campaign} to complete"),
            |v| {
                CampaignSummary::parse(v)
                    .is_some_and(|s| s.id == campaign && s.state == "Completed")
            },
        )
        .await;
    let last = CampaignSummary::parse(&last).unwrap();
    assert_eq!(
        (
            last.pending,
            last.running,
            last.succeeded,
            last.failed,
            last.cancelled
        ),
        (0, 0, 2, 0, 0),
        "{last:?}"
    );
    let summaries: Vec<CampaignSummary> = rig
        .events
        .values(CONTROLLER_EVENTS, "FirmwareCampaignStatus")
        .iter()
        .filter_map(|v| CampaignSummary::parse(v))
        .filter(|s| s.id == campaign)
        .collect();
    assert!(
        summaries.iter().all(|s| s.running <= 1),
        "never more than MaxConcurrent devices at once: {summaries:#?}"
    );
    assert!(
        summaries.iter().any(|s| s.running == 1),
        "the campaign evented its devices running: {summaries:#?}"
    );

    let status = rig
        .face
        .read(
            &controller,
            "GetFirmwareCampaignStatus",
            &[("CampaignId", &campaign)],
        )
        .await
        .argument("Status");
    let campaigns = elements(&status, "Campaign");
    assert_eq!(campaigns.len(), 1, "{status}");
    assert_eq!(campaigns[0].get("id"), Some(&campaign), "{status}");
    assert_eq!(
        campaigns[0].get("state").map(String::as_str),
        Some("Completed"),
        "{status}"
    );
    let devices = elements(&status, "Device");
    let ids: BTreeSet<&str> = devices
        .iter()
        .filter_map(|d| d.get("id").map(String::as_str))
        .collect();
    assert_eq!(
        ids,
        BTreeSet::from([MODBUS_DEVICE, MQTT_DEVICE]),
        "{status}"
    );
    for device in &devices {
        assert_eq!(
            device.get("status").map(String::as_str),
            Some("Confirmed"),
            "{status}"
        );
        assert_eq!(
            device.get("resultCode").map(String::as_str),
            Some("1"),
            "{status}"
        );
        let id = device.get("id").unwrap();
        let update = device.get("updateId").unwrap();
        let end = await_end(&mut rig, id, update).await;
        assert_eq!((end.status.as_str(), end.result), ("Confirmed", 1));
    }
    assert_eq!(rig.running(MODBUS_DEVICE), "3.0.0");
    assert_eq!(rig.running(MQTT_DEVICE), "3.0.0");
    rig.stop().await;
}

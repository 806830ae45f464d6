//! Campaigns as the engine runs them: persisted after every change, ticked every second and
//! whenever one of their updates ends, their updates scheduled through the same checks as a
//! single ScheduleFirmwareUpdate.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::super::campaign::{Campaign, CampaignState, NewCampaign, Slot, parse_targets};
use super::super::machine::Job;
use super::super::store::hex;
use super::{EngineError, Inner, Notice, new_id, now_ms, read, write};
use crate::registry::{RecordTable, unix_ms};

/// How often campaigns look for devices to start (start times, freed slots).
const TICK: Duration = Duration::from_secs(1);

/// Loads the campaigns the registry holds, after the updates were restored. An update that
/// ended just before the gateway stopped (its end persisted, its campaign's not: two writes)
/// is counted now, or its campaign would hold the slot for ever.
pub(super) fn restore(inner: &Inner) -> Result<(), String> {
    let campaigns: Vec<(String, Campaign)> = inner
        .registry
        .records(RecordTable::Campaigns)
        .map_err(|e| e.to_string())?;
    write(&inner.campaigns).extend(campaigns);
    let ended: Vec<Job> = read(&inner.slots)
        .values()
        .map(|slot| slot.with(|m| m.job().clone()))
        .filter(|job| job.phase.is_terminal() && job.campaign.is_some())
        .collect();
    for job in ended {
        if let Some(id) = &job.campaign {
            change(inner, id, |c| {
                let this_update = matches!(
                    c.slots().get(job.device.as_str()),
                    Some(Slot::Started { update_id }) if *update_id == job.update_id
                );
                if this_update {
                    c.ended(&job.device, job.phase, job.result, now_ms());
                }
            });
        }
    }
    Ok(())
}

pub(super) async fn tick_loop(inner: Arc<Inner>) {
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let ids: Vec<String> = read(&inner.campaigns)
            .iter()
            .filter(|(_, c)| c.state == CampaignState::Running)
            .map(|(id, _)| id.clone())
            .collect();
        for id in ids {
            advance(&inner, &id);
        }
    }
}

/// Starts the campaign's due devices. One advance at a time (the ticker and an ending update
/// may both call it), so no device is scheduled twice.
fn advance(inner: &Arc<Inner>, id: &str) {
    let _one_at_a_time = write(&inner.advancing);
    let now = now_ms();
    let Some(campaign) = read(&inner.campaigns).get(id).cloned() else {
        return;
    };
    let due = campaign.due(now);
    if due.is_empty() {
        return;
    }
    let image = super::parse_sha256(&campaign.image);
    for device in due {
        let result = inner.schedule(&device, image, SystemTime::now(), Some(id.to_owned()));
        let campaign = change(inner, id, |c| match &result {
            Ok(update_id) => c.started(&device, update_id, now_ms()),
            Err(e) => {
                tracing::warn!(campaign = %id, device = %device, error = %e, "campaign could not schedule the device");
                c.refused(&device, &e.to_string(), now_ms());
            }
        });
        // Aborted while this device was being scheduled: its update is cancelled like the
        // others the abort found running.
        if let (Ok(update_id), Some(campaign)) = (&result, campaign)
            && campaign.state == CampaignState::Aborted
            && let Err(e) = inner.cancel(&device, update_id)
        {
            tracing::info!(campaign = %id, device = %device, reason = %e, "update of an aborted campaign goes on");
        }
    }
}

/// Changes a campaign, persists and events it.
fn change(inner: &Inner, id: &str, f: impl FnOnce(&mut Campaign)) -> Option<Campaign> {
    let campaign = {
        let mut campaigns = write(&inner.campaigns);
        let campaign = campaigns.get_mut(id)?;
        let before = campaign.clone();
        f(campaign);
        if *campaign == before {
            return Some(before);
        }
        campaign.clone()
    };
    if let Err(e) = inner
        .registry
        .put_record(RecordTable::Campaigns, id, &campaign)
    {
        tracing::error!(campaign = %id, error = %e, "cannot persist the campaign");
    }
    tracing::info!(campaign = %id, status = %campaign.status_value(), "firmware campaign");
    inner.send(Notice::Campaign {
        value: campaign.status_value(),
    });
    Some(campaign)
}

pub(super) fn unknown(inner: &Inner, id: &str) -> EngineError {
    let known: Vec<String> = read(&inner.campaigns).keys().take(20).cloned().collect();
    EngineError::NotFound(format!(
        "no firmware campaign `{}`; the campaigns are: {}",
        id.chars().take(64).collect::<String>(),
        if known.is_empty() {
            "none".to_owned()
        } else {
            known.join(", ")
        }
    ))
}

pub(super) fn start(
    inner: &Arc<Inner>,
    targets: &str,
    image: [u8; 32],
    start: SystemTime,
    max_concurrent: u32,
    failure_threshold: u32,
) -> Result<String, EngineError> {
    if max_concurrent == 0 || failure_threshold == 0 {
        return Err(EngineError::InvalidArgument(
            "MaxConcurrent and FailureThreshold must be at least 1".into(),
        ));
    }
    let mut groups: BTreeMap<String, Vec<String>> = inner
        .groups
        .keys()
        .map(|g| (g.clone(), Vec::new()))
        .collect();
    let live = inner.live_devices();
    for device in &live {
        if let Some(group) = inner.group_of(&device.id) {
            groups.entry(group).or_default().push(device.id.clone());
        }
    }
    let ids: Vec<String> = live.iter().map(|d| d.id.clone()).collect();
    let devices = parse_targets(targets, &groups, &ids).map_err(EngineError::InvalidArgument)?;
    let stored = read(&inner.images)
        .iter()
        .find(|i| i.sha256 == image)
        .cloned()
        .ok_or_else(|| {
            EngineError::NoImage(format!(
                "no verified firmware image with SHA-256 {} in the store; import it with `iotmc-gateway firmware import`",
                hex(&image)
            ))
        })?;
    let misfits: Vec<String> = devices
        .iter()
        .filter_map(|d| inner.devices.get(d))
        .filter(|d| !stored.targets(&d.profile.id))
        .map(|d| format!("{} ({})", d.id, d.profile.id))
        .collect();
    if !misfits.is_empty() {
        return Err(EngineError::WrongTarget(format!(
            "image {} is for {}; these targets have other profiles: {}",
            stored.manifest.version,
            stored.manifest.targets.join(", "),
            misfits.join(", ")
        )));
    }
    let id = new_id("campaign");
    let campaign = Campaign::new(
        NewCampaign {
            id: id.clone(),
            image: hex(&image),
            devices,
            max_concurrent,
            failure_threshold,
            start_at: unix_ms(start),
        },
        now_ms(),
    );
    inner
        .registry
        .put_record(RecordTable::Campaigns, &id, &campaign)
        .map_err(|e| EngineError::Storage(format!("the campaign could not be persisted: {e}")))?;
    tracing::info!(campaign = %id, devices = campaign.devices.len(), version = %stored.manifest.version, "firmware campaign started");
    inner.send(Notice::Campaign {
        value: campaign.status_value(),
    });
    write(&inner.campaigns).insert(id.clone(), campaign);
    advance(inner, &id);
    Ok(id)
}

fn with_campaign(
    inner: &Inner,
    id: &str,
    f: impl FnOnce(&mut Campaign) -> Result<(), String>,
) -> Result<(), EngineError> {
    if !read(&inner.campaigns).contains_key(id) {
        return Err(unknown(inner, id));
    }
    let mut outcome = Ok(());
    change(inner, id, |c| outcome = f(c));
    outcome.map_err(EngineError::CampaignState)
}

pub(super) fn pause(inner: &Inner, id: &str) -> Result<(), EngineError> {
    with_campaign(inner, id, |c| c.pause("paused by an operator", now_ms()))
}

pub(super) fn resume(inner: &Arc<Inner>, id: &str) -> Result<(), EngineError> {
    with_campaign(inner, id, |c| c.resume(now_ms()))?;
    advance(inner, id);
    Ok(())
}

pub(super) fn abort(inner: &Inner, id: &str) -> Result<(), EngineError> {
    let mut running = Vec::new();
    with_campaign(inner, id, |c| {
        running = c.abort(now_ms())?;
        Ok(())
    })?;
    let campaign = read(&inner.campaigns).get(id).cloned();
    for (device, slot) in campaign.iter().flat_map(|c| c.devices.iter()) {
        if let Slot::Started { update_id } = slot
            && running.contains(update_id)
        {
            match inner.cancel(device, update_id) {
                Ok(()) => {}
                Err(e) => {
                    tracing::info!(campaign = %id, device = %device, reason = %e, "update of an aborted campaign goes on")
                }
            }
        }
    }
    Ok(())
}

/// One of a campaign's updates ended.
pub(super) fn update_ended(inner: &Arc<Inner>, job: &Job) {
    let Some(id) = &job.campaign else {
        return;
    };
    change(inner, id, |c| {
        c.ended(&job.device, job.phase, job.result, now_ms());
    });
    advance(inner, id);
}

//! Gateway-emulated rollback of a one-bank device: the engine keeps the running version's image
//! and installs it again when the new image fails probation; without that image it refuses to
//! start an update at all. Driven through the engine's API against the in-memory device (the
//! UPnP path is covered by `firmware_upnp.rs`).

#![allow(clippy::unwrap_used)]

mod common;
mod firmware;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;

use firmware::images::{SimImage, Vendor};
use firmware::{GUARD, quote};
use iotmc_adapter::Value;
use iotmc_adapter::testkit::memory::{Fault, MemoryAdapter};
use iotmc_gateway::adapters::AdapterSet;
use iotmc_gateway::config::Config;
use iotmc_gateway::daemon::Gateway;
use iotmc_gateway::firmware::engine::{EngineError, Notice, parse_sha256};
use iotmc_gateway::firmware::machine::{Phase, ResultCode};
use iotmc_gateway::firmware::store::ImportCheck;

const PROFILE: &str = r#"
id = "one-bank-plug"
manufacturer = "Test Works"
model = "One-bank plug"
protocol = "memory"

[[parameters]]
name = "temperature"
type = "float"
access = "read"

[firmware]
method = "memory"
dual_bank = false
max_image_size = 65536

[health]
checks = [{ parameter = "temperature", max = 60 }]

[memory]
initial = { temperature = 21.0 }
"#;

fn config(dir: &Path, vendor: &Vendor) -> Config {
    let profiles = dir.join("profiles");
    std::fs::create_dir_all(&profiles).unwrap();
    std::fs::write(profiles.join("plug.toml"), PROFILE).unwrap();
    let text = format!(
        r#"
[gateway]
id = "emulated-test"
name = "Emulated rollback test"
state_dir = {state}
profile_dirs = [{profiles}]

[trust]
firmware_keys = {trust}

[firmware]
scan_interval = "100ms"
check_interval = "200ms"
test_probation_floor = "1s"

[[groups]]
name = "plugs"
firmware = {{ probation = "2s", emergency_probation = "1s" }}

[[devices]]
id = "plug-1"
profile = "one-bank-plug"
address = "memory:plug-1"
group = "plugs"
"#,
        state = quote(&dir.join("state")),
        profiles = quote(&profiles),
        trust = quote(&vendor.trust_dir),
    );
    Config::from_toml(&dir.join("gateway.toml"), &text).unwrap()
}

fn check() -> ImportCheck {
    ImportCheck {
        max_image_size: 65536,
        profiles: BTreeMap::from([("one-bank-plug".to_owned(), 65536)]),
    }
}

async fn start(dir: &Path, vendor: &Vendor) -> (Gateway, Arc<MemoryAdapter>) {
    let config = config(dir, vendor);
    let memory = Arc::new(MemoryAdapter::new(Fault::None));
    let adapters = AdapterSet::for_config(&config)
        .unwrap()
        .with(Arc::clone(&memory) as Arc<dyn iotmc_adapter::Adapter>);
    let gateway = Gateway::start(config, adapters).await.unwrap();
    (gateway, memory)
}

/// Waits until the engine offers `version` to plug-1 (it learns the running version and scans
/// the store in the background).
async fn until_offered(gateway: &Gateway, version: &str) {
    let engine = gateway.firmware();
    let mut notices = engine.subscribe();
    tokio::time::timeout(GUARD, async {
        loop {
            engine.rescan();
            if engine
                .available_value("plug-1")
                .starts_with(&format!("{version},"))
            {
                return;
            }
            let _ = notices.recv().await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{version} was never offered"));
}

/// Follows plug-1's status notices until the update is in `phase`; returns every phase seen.
async fn until_phase(
    notices: &mut tokio::sync::broadcast::Receiver<Notice>,
    update: &str,
    phase: Phase,
) -> Vec<String> {
    let mut seen = Vec::new();
    tokio::time::timeout(GUARD, async {
        loop {
            if let Ok(Notice::Status { device, value }) = notices.recv().await
                && device == "plug-1"
                && value.split(',').nth(1) == Some(update)
            {
                let name = value.split(',').next().unwrap().to_owned();
                if seen.last() != Some(&name) {
                    seen.push(name.clone());
                }
                if name == phase.as_str() {
                    return;
                }
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("never reached {phase:?}; saw {seen:?}"));
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_one_bank_device_failing_probation_should_get_its_previous_image_installed_again() {
    let dir = tempfile::tempdir().unwrap();
    let vendor = Vendor::new(dir.path());
    let state = dir.path().join("state");
    // The running version's image must be in the store for a rollback to be possible.
    vendor.import_checked(
        &state,
        &SimImage::new("1.0.0", true, 8192, &["one-bank-plug"]),
        &check(),
    );
    let new = vendor.import_checked(
        &state,
        &SimImage::new("2.0.0", true, 8192, &["one-bank-plug"]),
        &check(),
    );
    let (gateway, memory) = start(dir.path(), &vendor).await;
    until_offered(&gateway, "2.0.0").await;
    let engine = gateway.firmware();
    let mut notices = engine.subscribe();

    let update = engine
        .schedule("plug-1", parse_sha256(&new.sha256), SystemTime::now())
        .unwrap();
    until_phase(&mut notices, &update, Phase::Probation).await;
    let device = memory.device("memory:plug-1").unwrap();
    // The new image makes the plug run hot: the health check fails.
    device.change_locally(BTreeMap::from([(
        "temperature".to_owned(),
        Value::Float(95.0),
    )]));
    let seen = until_phase(&mut notices, &update, Phase::RolledBack).await;

    assert!(
        seen.contains(&"Transferring".to_owned()) && seen.contains(&"Rebooting".to_owned()),
        "the previous image is transferred and activated again: {seen:?}"
    );
    let job = engine.job("plug-1").unwrap();
    assert_eq!(job.phase, Phase::RolledBack);
    assert_eq!(job.result, ResultCode::ProbationFailed);
    assert!(job.reinstalling);
    assert!(job.detail.contains("temperature"), "{}", job.detail);
    let info = engine.info("plug-1").await.unwrap();
    assert_eq!(info.running_version.as_deref(), Some("1.0.0"));
    gateway.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_one_bank_device_whose_running_image_is_not_stored_should_not_be_updated() {
    let dir = tempfile::tempdir().unwrap();
    let vendor = Vendor::new(dir.path());
    let state = dir.path().join("state");
    let new = vendor.import_checked(
        &state,
        &SimImage::new("2.0.0", true, 8192, &["one-bank-plug"]),
        &check(),
    );
    let (gateway, _memory) = start(dir.path(), &vendor).await;
    until_offered(&gateway, "2.0.0").await;
    let engine = gateway.firmware();

    let refused = engine
        .schedule("plug-1", parse_sha256(&new.sha256), SystemTime::now())
        .unwrap_err();
    assert!(matches!(refused, EngineError::NoRollback(_)), "{refused:?}");
    assert_eq!(refused.code(), 715);
    let text = refused.to_string();
    assert!(
        text.contains("runs 1.0.0") && text.contains("import the image of 1.0.0"),
        "{text}"
    );
    assert!(engine.job("plug-1").is_none(), "nothing was scheduled");
    assert_eq!(engine.status_value("plug-1"), "Idle");
    gateway.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_update_that_ended_just_before_a_crash_should_be_counted_by_its_campaign_at_restart() {
    use iotmc_gateway::firmware::campaign::{Campaign, CampaignState, NewCampaign};
    use iotmc_gateway::firmware::machine::{ImageRef, Machine, NewUpdate, Strategy};
    use iotmc_gateway::registry::{RecordTable, Registry};

    let dir = tempfile::tempdir().unwrap();
    let vendor = Vendor::new(dir.path());
    let state = dir.path().join("state");
    std::fs::create_dir_all(&state).unwrap();
    // What a kill -9 between the two writes leaves: the update's end persisted, its
    // campaign's still saying it runs.
    let mut campaign = Campaign::new(
        NewCampaign {
            id: "campaign-1".into(),
            image: "ab".repeat(32),
            devices: vec!["plug-1".into()],
            max_concurrent: 1,
            failure_threshold: 1,
            start_at: 0,
        },
        0,
    );
    campaign.started("plug-1", "fw-1", 0);
    let mut machine = Machine::schedule(
        NewUpdate {
            update_id: "fw-1".into(),
            device: "plug-1".into(),
            image: ImageRef {
                sha256: "ab".repeat(32),
                version: "2.0.0".into(),
                size: 8192,
            },
            previous_version: Some("1.0.0".into()),
            previous: None,
            strategy: Strategy::NativeTest,
            start_at: 0,
            window: None,
            probation_ms: 1000,
            offline_grace_ms: 1000,
            check_every_ms: 1000,
            campaign: Some("campaign-1".into()),
        },
        0,
    );
    machine.cancel(0).unwrap();
    {
        let registry = Registry::open(&state).unwrap();
        registry
            .put_record(RecordTable::Campaigns, "campaign-1", &campaign)
            .unwrap();
        registry
            .put_record(RecordTable::Jobs, "plug-1", machine.job())
            .unwrap();
    }

    let (gateway, _memory) = start(dir.path(), &vendor).await;
    let restored = gateway.firmware().campaign("campaign-1").unwrap();
    assert_eq!(restored.counts().running, 0, "{restored:?}");
    assert_eq!(restored.counts().cancelled, 1, "{restored:?}");
    assert_eq!(restored.state, CampaignState::Completed);
    gateway.stop().await;
}

//! The firmware engine: policy around the image store and the per-device state machines.
//!
//! It offers each device the newest image for its profile (evented as FirmwareAvailable when an
//! import adds one), schedules updates after checking that the image fits the device and that a
//! failure can be undone, runs one task per update ([`runner`]) that carries out the machine's
//! commands, persists every change of every update in the registry before eventing it, picks
//! unfinished updates up again after a restart, and runs campaigns ([`campaigns`]).
//!
//! Its clock is the UTC wall clock: schedules and probation deadlines are UTC times that must
//! survive a restart. Runners look at the clock at least every 30 s, so a clock set by NTP after
//! boot (a Raspberry Pi has no RTC) is noticed.

mod campaigns;
mod error;
mod health;
pub mod policy;
mod runner;

use std::collections::BTreeMap;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, SystemTime};

use iotmc_adapter::{DeviceLink, Profile};
use tokio::sync::broadcast;
use tokio::task::JoinHandle;

pub use error::EngineError;
pub use error::{NO_IMAGE, NO_ROLLBACK, NO_SUCH_UPDATE, NOT_NOW, UPDATE_IN_PROGRESS, WRONG_TARGET};

use super::ImageOffers;
use super::UnixMs;
use super::campaign::Campaign;
use super::machine::{Job, Machine, NewUpdate, Phase};
use super::signing::TrustedKeys;
use super::store::{ImageStore, StoredImage};
use crate::config::{Config, GroupConfig};
use crate::registry::{RecordTable, Registry, unix_ms};
use runner::Slot;

/// Capacity of the notice channel; a forwarder that falls behind re-reads every value.
const NOTICE_CAPACITY: usize = 1024;

/// What the engine needs from the config.
#[derive(Debug, Clone)]
pub struct EngineSettings {
    /// How often the store is scanned for imported images.
    pub scan_interval: Duration,
    /// Time between health checks during probation.
    pub check_interval: Duration,
    /// Shortest probation for ordinary and emergency images.
    pub probation_floors: (Duration, Duration),
}

impl EngineSettings {
    /// From the config.
    pub fn from_config(config: &Config) -> Self {
        Self {
            scan_interval: config.firmware.scan_interval,
            check_interval: config.firmware.check_interval,
            probation_floors: config.probation_floors(),
        }
    }
}

/// A device as the engine sees it.
#[derive(Debug, Clone)]
pub struct DeviceEntry {
    /// Device id.
    pub id: String,
    /// Its profile.
    pub profile: Arc<Profile>,
    /// Its link, if attached.
    pub link: Option<Arc<dyn DeviceLink>>,
    /// Its management group.
    pub group: Option<String>,
}

/// Something for the UPnP face to event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// A device's FirmwareAvailable changed.
    Available {
        /// Device id.
        device: String,
        /// The new value.
        value: String,
    },
    /// A device's FirmwareUpdateStatus changed.
    Status {
        /// Device id.
        device: String,
        /// The new value.
        value: String,
    },
    /// A campaign changed (FirmwareCampaignStatus on the gateway root device).
    Campaign {
        /// The new value.
        value: String,
    },
}

/// What GetFirmwareInfo answers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FirmwareInfo {
    /// Running version, if known.
    pub running_version: Option<String>,
    /// The running version's image, if the store has it.
    pub running_image: Option<StoredImage>,
    /// The image on offer, if any.
    pub offered: Option<StoredImage>,
}

/// The engine's shared state.
#[derive(Debug)]
struct Inner {
    store: ImageStore,
    trust: TrustedKeys,
    registry: Arc<Registry>,
    offers: Arc<ImageOffers>,
    devices: BTreeMap<String, Arc<DeviceEntry>>,
    groups: BTreeMap<String, GroupConfig>,
    settings: EngineSettings,
    images: RwLock<Vec<StoredImage>>,
    slots: RwLock<BTreeMap<String, Arc<Slot>>>,
    running: RwLock<BTreeMap<String, Option<String>>>,
    /// Hardware revision each device reported, if it did.
    hardware: RwLock<BTreeMap<String, String>>,
    available: RwLock<BTreeMap<String, String>>,
    campaigns: RwLock<BTreeMap<String, Campaign>>,
    /// Held while a campaign starts devices.
    advancing: RwLock<()>,
    notices: broadcast::Sender<Notice>,
    tasks: RwLock<Vec<JoinHandle<()>>>,
    /// Each device's management group now (an operator may move a device while it runs).
    memberships: RwLock<BTreeMap<String, Option<String>>>,
    /// Devices decommissioned while the gateway runs: no longer updated or offered anything.
    retired: RwLock<std::collections::BTreeSet<String>>,
}

/// The firmware engine of a running gateway.
#[derive(Debug)]
pub struct FirmwareEngine {
    inner: Arc<Inner>,
}

impl FirmwareEngine {
    /// Opens the image store, loads the trust store, restores unfinished updates and campaigns
    /// from the registry and starts their tasks, the store scan and the campaign ticker. Must be
    /// called inside the runtime.
    pub fn start(
        config: &Config,
        registry: Arc<Registry>,
        offers: Arc<ImageOffers>,
        devices: Vec<DeviceEntry>,
    ) -> Result<Self, String> {
        let store = ImageStore::open(&config.gateway.state_dir).map_err(|e| e.to_string())?;
        let trust = match &config.trust.firmware_keys {
            Some(dir) => TrustedKeys::load_dir(dir).unwrap_or_else(|e| {
                tracing::error!(error = %e, "firmware keys unusable: every firmware image is refused until [trust] firmware_keys is fixed");
                TrustedKeys::empty()
            }),
            None => {
                tracing::warn!("[trust] firmware_keys is not set: no firmware image can be verified, so none is offered");
                TrustedKeys::empty()
            }
        };
        let (notices, _) = broadcast::channel(NOTICE_CAPACITY);
        let memberships = devices
            .iter()
            .map(|d| (d.id.clone(), d.group.clone()))
            .collect();
        let inner = Arc::new(Inner {
            store,
            trust,
            registry,
            offers,
            devices: devices
                .into_iter()
                .map(|d| (d.id.clone(), Arc::new(d)))
                .collect(),
            groups: config
                .groups
                .iter()
                .map(|g| (g.name.clone(), g.clone()))
                .collect(),
            settings: EngineSettings::from_config(config),
            images: RwLock::new(Vec::new()),
            slots: RwLock::new(BTreeMap::new()),
            running: RwLock::new(BTreeMap::new()),
            hardware: RwLock::new(BTreeMap::new()),
            available: RwLock::new(BTreeMap::new()),
            campaigns: RwLock::new(BTreeMap::new()),
            advancing: RwLock::new(()),
            notices,
            tasks: RwLock::new(Vec::new()),
            memberships: RwLock::new(memberships),
            retired: RwLock::new(std::collections::BTreeSet::new()),
        });
        inner.scan();
        inner.restore()?;
        campaigns::restore(&inner)?;
        let scanner = tokio::spawn(scan_loop(Arc::clone(&inner)));
        let learner = tokio::spawn(learn_running_versions(Arc::clone(&inner)));
        let ticker = tokio::spawn(campaigns::tick_loop(Arc::clone(&inner)));
        write(&inner.tasks).extend([scanner, learner, ticker]);
        Ok(Self { inner })
    }

    /// Stops every task. Updates under way stay persisted and go on at the next start.
    pub fn stop(&self) {
        for task in write(&self.inner.tasks).iter() {
            task.abort();
        }
    }

    /// Stops every task and waits until they are gone (and with them their hold on the
    /// registry).
    pub async fn shutdown(&self) {
        self.stop();
        let tasks: Vec<JoinHandle<()>> = write(&self.inner.tasks).drain(..).collect();
        for task in tasks {
            let _ = task.await;
        }
    }

    /// Notices to event.
    pub fn subscribe(&self) -> broadcast::Receiver<Notice> {
        self.inner.notices.subscribe()
    }

    /// Scans the store now (the engine also does so every `scan_interval`).
    pub fn rescan(&self) {
        self.inner.scan();
    }

    /// The images in the store the engine knows of.
    pub fn images(&self) -> Vec<StoredImage> {
        read(&self.inner.images).clone()
    }

    /// FirmwareAvailable of a device, as last evented.
    pub fn available_value(&self, device: &str) -> String {
        read(&self.inner.available)
            .get(device)
            .cloned()
            .unwrap_or_default()
    }

    /// FirmwareUpdateStatus of a device.
    pub fn status_value(&self, device: &str) -> String {
        self.job(device)
            .map_or_else(|| "Idle".to_owned(), |job| status_value(&job))
    }

    /// Moves `device` to `group` (its group policy and campaign membership from now on).
    pub fn set_group(&self, device: &str, group: Option<String>) {
        write(&self.inner.memberships).insert(device.to_owned(), group);
    }

    /// Forgets a decommissioned device: refused while an update of it is under way (the
    /// caller says to cancel it first); otherwise its update record is deleted and nothing is
    /// offered to or scheduled for it any more.
    pub fn retire(&self, device: &str) -> Result<(), EngineError> {
        if let Some(job) = self.job(device)
            && !job.phase.is_terminal()
        {
            return Err(EngineError::Busy(format!(
                "device {device} has a firmware update under way ({}, update {}); cancel it with CancelFirmwareUpdate or wait for it to end, then decommission",
                job.phase.as_str(),
                job.update_id
            )));
        }
        write(&self.inner.retired).insert(device.to_owned());
        write(&self.inner.slots).remove(device);
        write(&self.inner.available).remove(device);
        write(&self.inner.running).remove(device);
        self.inner
            .registry
            .remove_record(crate::registry::RecordTable::Jobs, device)
            .map_err(|e| EngineError::Storage(e.to_string()))
    }

    /// The device's current or last update.
    pub fn job(&self, device: &str) -> Option<Job> {
        let slot = read(&self.inner.slots).get(device).cloned()?;
        Some(slot.with(|m| m.job().clone()))
    }

    /// What GetFirmwareInfo answers: the running version is read from the device when it
    /// answers within a few seconds, else the last one known.
    pub async fn info(&self, device: &str) -> Result<FirmwareInfo, EngineError> {
        let entry = self.inner.device(device)?;
        if let Some(link) = &entry.link {
            let read = tokio::time::timeout(
                Duration::from_secs(5),
                health::running_version(link.as_ref()),
            )
            .await;
            if let Ok(Ok(Some(version))) = read {
                self.inner.learned(device, Some(version));
            }
        }
        let running = read(&self.inner.running).get(device).cloned().flatten();
        let images = read(&self.inner.images);
        Ok(FirmwareInfo {
            running_image: running
                .as_deref()
                .and_then(|v| policy::running_image(&images, &entry.profile.id, v))
                .cloned(),
            offered: policy::offered(&images, &entry.profile.id, running.as_deref()).cloned(),
            running_version: running,
        })
    }

    /// Schedules an update of `device` to `image` (SHA-256; none = the image on offer) at
    /// `start` (UTC; a time in the past starts at once). Returns the update id.
    pub fn schedule(
        &self,
        device: &str,
        image: Option<[u8; 32]>,
        start: SystemTime,
    ) -> Result<String, EngineError> {
        self.inner.schedule(device, image, start, None)
    }

    /// Cancels the device's update `update_id`.
    pub fn cancel(&self, device: &str, update_id: &str) -> Result<(), EngineError> {
        self.inner.cancel(device, update_id)
    }

    /// Starts a campaign; returns its id.
    pub fn start_campaign(
        &self,
        targets: &str,
        image: [u8; 32],
        start: SystemTime,
        max_concurrent: u32,
        failure_threshold: u32,
    ) -> Result<String, EngineError> {
        campaigns::start(
            &self.inner,
            targets,
            image,
            start,
            max_concurrent,
            failure_threshold,
        )
    }

    /// Pauses a campaign.
    pub fn pause_campaign(&self, id: &str) -> Result<(), EngineError> {
        campaigns::pause(&self.inner, id)
    }

    /// Resumes a campaign.
    pub fn resume_campaign(&self, id: &str) -> Result<(), EngineError> {
        campaigns::resume(&self.inner, id)
    }

    /// Aborts a campaign.
    pub fn abort_campaign(&self, id: &str) -> Result<(), EngineError> {
        campaigns::abort(&self.inner, id)
    }

    /// A campaign.
    pub fn campaign(&self, id: &str) -> Result<Campaign, EngineError> {
        read(&self.inner.campaigns)
            .get(id)
            .cloned()
            .ok_or_else(|| campaigns::unknown(&self.inner, id))
    }
}

impl Drop for FirmwareEngine {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `<Status>,<UpdateId>,<ResultCode>,<acknowledged>/<total>`.
pub fn status_value(job: &Job) -> String {
    format!(
        "{},{},{},{}/{}",
        job.phase.as_str(),
        job.update_id,
        job.result.code(),
        job.acknowledged,
        transfer_total(job)
    )
}

/// Size of the image the job moves now: the previous one while re-installing it.
pub fn transfer_total(job: &Job) -> u64 {
    if job.reinstalling {
        job.previous.as_ref().map_or(0, |p| p.size)
    } else {
        job.image.size
    }
}

/// `<version>,<sha256>,<size>,<release date>[,emergency]`.
pub fn available_value(image: &StoredImage) -> String {
    let m = &image.manifest;
    format!(
        "{},{},{},{}{}",
        m.version,
        image.sha256_hex(),
        m.size,
        m.release_date,
        if m.emergency { ",emergency" } else { "" }
    )
}

/// Parses 64 hex digits (the store's parser).
pub use super::store::parse_sha256;

/// The engine clock: UTC milliseconds.
fn now_ms() -> UnixMs {
    unix_ms(SystemTime::now())
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(PoisonError::into_inner)
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(PoisonError::into_inner)
}

impl Inner {
    fn device(&self, id: &str) -> Result<&Arc<DeviceEntry>, EngineError> {
        if read(&self.retired).contains(id) {
            return Err(EngineError::InvalidArgument(format!(
                "device `{id}` is decommissioned"
            )));
        }
        self.devices.get(id).ok_or_else(|| {
            EngineError::InvalidArgument(format!("no managed device `{id}` on this gateway"))
        })
    }

    /// The managed devices not decommissioned.
    fn live_devices(&self) -> Vec<Arc<DeviceEntry>> {
        let retired = read(&self.retired);
        self.devices
            .values()
            .filter(|d| !retired.contains(&d.id))
            .cloned()
            .collect()
    }

    /// The device's management group now.
    fn group_of(&self, id: &str) -> Option<String> {
        read(&self.memberships).get(id).cloned().flatten()
    }

    fn send(&self, notice: Notice) {
        // No receiver (no face running) is fine.
        let _ = self.notices.send(notice);
    }

    /// Reads the store and events FirmwareAvailable where it changed.
    fn scan(&self) {
        match self.store.list(&self.trust) {
            Ok(images) => {
                if *read(&self.images) != images {
                    tracing::info!(images = images.len(), "firmware store changed");
                    *write(&self.images) = images;
                    self.refresh_available();
                }
            }
            Err(e) => tracing::error!(error = %e, "cannot list the firmware store"),
        }
    }

    /// Recomputes every device's FirmwareAvailable and events the ones that changed.
    fn refresh_available(&self) {
        let images = read(&self.images).clone();
        let running = read(&self.running).clone();
        for device in self.live_devices() {
            let id = &device.id;
            if !device.profile.firmware.is_supported() {
                continue;
            }
            let current = running.get(id).cloned().flatten();
            let value = policy::offered(&images, &device.profile.id, current.as_deref())
                .map(available_value)
                .unwrap_or_default();
            let changed = {
                let mut available = write(&self.available);
                let old = available.insert(id.clone(), value.clone());
                old.as_ref() != Some(&value) && !(old.is_none() && value.is_empty())
            };
            if changed {
                tracing::info!(device = %id, available = %value, "firmware on offer changed");
                self.send(Notice::Available {
                    device: id.clone(),
                    value,
                });
            }
        }
    }

    /// Records the version a device runs.
    fn learned(&self, device: &str, version: Option<String>) {
        let changed = {
            let mut running = write(&self.running);
            let old = running.insert(device.to_owned(), version.clone());
            old != Some(version)
        };
        if changed {
            self.refresh_available();
        }
    }

    /// Restores the updates the registry holds; unfinished ones get their task again.
    fn restore(self: &Arc<Self>) -> Result<(), String> {
        let jobs: Vec<(String, Job)> = self
            .registry
            .records(RecordTable::Jobs)
            .map_err(|e| e.to_string())?;
        let now = now_ms();
        for (device, job) in jobs {
            let Some(entry) = self.devices.get(&device).cloned() else {
                tracing::warn!(device = %device, update = %job.update_id, "a firmware update of a device no longer managed is left as it was");
                continue;
            };
            let terminal = job.phase.is_terminal();
            if !terminal {
                tracing::info!(device = %device, update = %job.update_id, phase = job.phase.as_str(), acknowledged = job.acknowledged, "resuming the firmware update");
            }
            let slot = Arc::new(Slot::new(Machine::restore(job, now)));
            write(&self.slots).insert(device.clone(), Arc::clone(&slot));
            if !terminal {
                self.spawn_runner(entry, slot);
            }
        }
        Ok(())
    }

    fn spawn_runner(self: &Arc<Self>, device: Arc<DeviceEntry>, slot: Arc<Slot>) {
        let span = tracing::info_span!("firmware", device = %device.id);
        let task = tokio::spawn(tracing::Instrument::instrument(
            runner::run(Arc::clone(self), device, slot),
            span,
        ));
        let mut tasks = write(&self.tasks);
        tasks.retain(|t| !t.is_finished());
        tasks.push(task);
    }

    /// Persists and events the slot's job if it changed.
    fn changed(&self, device: &DeviceEntry, slot: &Slot) {
        use super::machine::Change;
        let (change, job) = slot.with(|m| (m.take_change(), m.job().clone()));
        if change == Change::None {
            return;
        }
        if let Err(e) = self
            .registry
            .put_record(RecordTable::Jobs, &device.id, &job)
        {
            tracing::error!(device = %device.id, error = %e, "cannot persist the firmware update; it will not survive a restart in this state");
        }
        if change == Change::State {
            tracing::info!(
                device = %device.id,
                update = %job.update_id,
                phase = job.phase.as_str(),
                result = job.result.code(),
                detail = %job.detail,
                "firmware update"
            );
        }
        self.send(Notice::Status {
            device: device.id.clone(),
            value: status_value(&job),
        });
    }

    /// A runner finished: the device's version is learned again and campaigns are told.
    fn ended(self: &Arc<Self>, device: &DeviceEntry, slot: &Slot) {
        let job = slot.with(|m| m.job().clone());
        if job.phase == Phase::Confirmed {
            self.learned(&device.id, Some(job.image.version.clone()));
        } else if job.phase == Phase::RolledBack {
            self.learned(&device.id, job.previous_version.clone());
        }
        campaigns::update_ended(self, &job);
    }

    fn schedule(
        self: &Arc<Self>,
        device_id: &str,
        image: Option<[u8; 32]>,
        start: SystemTime,
        campaign: Option<String>,
    ) -> Result<String, EngineError> {
        let device = Arc::clone(self.device(device_id)?);
        let profile = &device.profile;
        if !profile.firmware.is_supported() {
            return Err(EngineError::NotSupported(format!(
                "device {device_id}: its profile `{}` declares no firmware method, so the gateway cannot update it",
                profile.id
            )));
        }
        let Some(target) = device.link.as_ref().and_then(|l| l.firmware()) else {
            return Err(EngineError::NotSupported(format!(
                "device {device_id} has no working link to update through (attaching failed or its adapter is not built in); see the gateway log"
            )));
        };
        if let Some(slot) = read(&self.slots).get(device_id) {
            let job = slot.with(|m| m.job().clone());
            if !job.phase.is_terminal() {
                return Err(EngineError::Busy(format!(
                    "device {device_id} has update {} in phase {}; cancel it first (CancelFirmwareUpdate) or wait for it to end",
                    job.update_id,
                    job.phase.as_str()
                )));
            }
        }
        let running = read(&self.running).get(device_id).cloned().flatten();
        let images = read(&self.images).clone();
        let chosen = match image {
            Some(sha) => images.iter().find(|i| i.sha256 == sha).cloned().ok_or_else(|| {
                EngineError::NoImage(format!(
                    "no verified firmware image with SHA-256 {} in the store; import it with `iotmc-gateway firmware import`",
                    super::store::hex(&sha)
                ))
            })?,
            None => policy::offered(&images, &profile.id, running.as_deref())
                .cloned()
                .ok_or_else(|| {
                    EngineError::NoImage(format!(
                        "no firmware image on offer for device {device_id} (profile `{}`, running {}); import one with `iotmc-gateway firmware import`",
                        profile.id,
                        running.as_deref().unwrap_or("an unknown version")
                    ))
                })?,
        };
        if !chosen.targets(&profile.id) {
            return Err(EngineError::WrongTarget(format!(
                "image {} ({}) is for {}, not for device {device_id}'s profile `{}`",
                chosen.manifest.version,
                chosen.sha256_hex(),
                chosen.manifest.targets.join(", "),
                profile.id
            )));
        }
        let limit = profile
            .firmware
            .max_image_size
            .min(target.capabilities().max_image_size);
        if chosen.manifest.size > limit {
            return Err(EngineError::WrongTarget(format!(
                "image {} is {} bytes, more than device {device_id} takes ({limit} bytes: the profile's firmware.max_image_size)",
                chosen.manifest.version, chosen.manifest.size
            )));
        }
        if let Some(min) = &chosen.manifest.min_hardware {
            match read(&self.hardware).get(device_id) {
                Some(hardware) if policy::compare_versions(hardware, min).is_lt() => {
                    return Err(EngineError::WrongTarget(format!(
                        "image {} needs hardware revision {min} or later; device {device_id} reports {hardware}",
                        chosen.manifest.version
                    )));
                }
                Some(_) => {}
                None => {
                    tracing::warn!(device = %device_id, min_hardware = %min, "the image names a minimum hardware revision, but the device does not report its own; not checked")
                }
            }
        }
        if let Some(min) = &chosen.manifest.min_bootloader {
            tracing::warn!(device = %device_id, min_bootloader = %min, "the image names a minimum bootloader version; no adapter reports bootloader versions, so it is not checked");
        }
        let capabilities = target.capabilities();
        let strategy = policy::strategy(&capabilities);
        let previous = match strategy {
            super::machine::Strategy::NativeTest => None,
            super::machine::Strategy::Emulated => {
                let Some(version) = running.as_deref() else {
                    return Err(EngineError::NoRollback(format!(
                        "device {device_id} has one firmware bank and its running version is not known, so a failed update could not be rolled back; read it first (GetFirmwareInfo) and import the image of that version"
                    )));
                };
                let Some(image) = policy::running_image(&images, &profile.id, version) else {
                    return Err(EngineError::NoRollback(format!(
                        "device {device_id} has one firmware bank and runs {version}, but the store has no image of {version} for profile `{}`: a failed update could not be rolled back; import the image of {version} first",
                        profile.id
                    )));
                };
                Some(policy::image_ref(image))
            }
        };
        let group = self
            .group_of(&device.id)
            .and_then(|g| self.groups.get(&g).cloned());
        let group = group.as_ref();
        let probation = policy::probation(
            group,
            chosen.manifest.emergency,
            self.settings.probation_floors,
        );
        let check_every = self.settings.check_interval;
        let update_id = new_id("fw");
        let now = now_ms();
        let machine = Machine::schedule(
            NewUpdate {
                update_id: update_id.clone(),
                device: device_id.to_owned(),
                image: policy::image_ref(&chosen),
                previous_version: running,
                previous,
                strategy,
                start_at: unix_ms(start),
                window: policy::window(group),
                probation_ms: millis(probation),
                offline_grace_ms: millis(policy::offline_grace(profile, check_every)),
                check_every_ms: millis(check_every),
                campaign,
            },
            now,
        );
        let job = machine.job().clone();
        self.registry
            .put_record(RecordTable::Jobs, device_id, &job)
            .map_err(|e| {
                EngineError::Storage(format!(
                    "the update could not be persisted, so it was not scheduled: {e}"
                ))
            })?;
        tracing::info!(device = %device_id, update = %update_id, version = %job.image.version, start = %runner::utc(job.start_at), probation_s = probation.as_secs(), "firmware update scheduled");
        let slot = Arc::new(Slot::new(machine));
        write(&self.slots).insert(device_id.to_owned(), Arc::clone(&slot));
        self.send(Notice::Status {
            device: device_id.to_owned(),
            value: status_value(&job),
        });
        self.spawn_runner(device, slot);
        Ok(update_id)
    }

    fn cancel(&self, device_id: &str, update_id: &str) -> Result<(), EngineError> {
        let device = self.device(device_id)?;
        let slot = read(&self.slots).get(device_id).cloned();
        let Some(slot) = slot.filter(|s| s.with(|m| m.job().update_id == update_id)) else {
            return Err(EngineError::NotFound(format!(
                "device {device_id} has no update `{}`; GetFirmwareUpdateStatus shows its current one",
                update_id.chars().take(64).collect::<String>()
            )));
        };
        slot.with(|m| m.cancel(now_ms()))?;
        self.changed(device, &slot);
        slot.cancel.notify_one();
        slot.wake.notify_one();
        Ok(())
    }
}

async fn scan_loop(inner: Arc<Inner>) {
    let mut tick = tokio::time::interval(inner.settings.scan_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let scanner = Arc::clone(&inner);
        // Listing verifies signatures: keep it off the runtime's worker threads.
        if let Err(e) = tokio::task::spawn_blocking(move || scanner.scan()).await {
            tracing::error!(error = %e, "firmware store scan failed");
        }
    }
}

/// Reads the running version of every device that can take firmware, retrying those that do
/// not answer every minute until each is known once.
async fn learn_running_versions(inner: Arc<Inner>) {
    let mut pending: Vec<Arc<DeviceEntry>> = inner
        .devices
        .values()
        .filter(|d| d.profile.firmware.is_supported() && d.link.is_some())
        .cloned()
        .collect();
    while !pending.is_empty() {
        let mut still = Vec::new();
        for device in pending {
            let Some(link) = &device.link else { continue };
            // One identity read gives the hardware revision and, for devices without banks,
            // the running version.
            let identity =
                match tokio::time::timeout(Duration::from_secs(10), link.identify()).await {
                    Ok(Ok(identity)) => identity,
                    _ => {
                        still.push(device);
                        continue;
                    }
                };
            if let Some(hardware) = identity.hardware_version {
                write(&inner.hardware).insert(device.id.clone(), hardware);
            }
            let banked = tokio::time::timeout(
                Duration::from_secs(10),
                health::active_bank_version(link.as_ref()),
            )
            .await
            .ok()
            .flatten();
            match banked.or(identity.firmware_version) {
                Some(version) => inner.learned(&device.id, Some(version)),
                None => still.push(device),
            }
        }
        pending = still;
        if !pending.is_empty() {
            tokio::time::sleep(Duration::from_secs(60)).await;
        }
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// A new random id: `<prefix>-<16 hex digits>`.
fn new_id(prefix: &str) -> String {
    let bytes: [u8; 8] = rand::random();
    format!("{prefix}-{}", super::store::hex(&bytes))
}

//! The diagnostics engine: one ring per managed device, filled by the gateway's observers and
//! by the device's own log (on demand and every `logs.fetch_interval`), read by controllers
//! and drained by the export sinks.

use std::collections::BTreeMap;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, SystemTime};

use iotmc_adapter::{DeviceLink, Profile, Severity};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use super::native::{NativeState, event_of};
use super::query::LogRequest;
use super::record::{Category, Cursor, Event, LogRecord};
use super::ring::{ExportBatch, Filter, Ring, RingStats};
use crate::config::{Config, SinkSpec};
use crate::utc::unix_ms;

/// While a device's own log cannot be read, a controller's read tries it again at most this
/// often (the periodic fetch keeps its own interval).
pub const RETRY_FAILING: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Freshness {
    /// Fetch now (the periodic task).
    Always,
    /// Unless a fetch started after `.0` fetches had started (a controller's read: one that
    /// started after it asked has what it wants), or the log is failing and was tried within
    /// [`RETRY_FAILING`].
    SinceRequest(u64),
}

/// Awaits every task (their panics are the tasks' own business: logged by the runtime).
async fn futures_join_all(tasks: Vec<JoinHandle<()>>) {
    for task in tasks {
        let _ = task.await;
    }
}

/// A device the engine keeps a log for.
#[derive(Debug, Clone)]
pub struct DeviceEntry {
    /// Device id.
    pub id: String,
    /// Its management group.
    pub group: Option<String>,
    /// Its profile (the log method and fetch interval).
    pub profile: Arc<Profile>,
    /// Its link, when attached.
    pub link: Option<Arc<dyn DeviceLink>>,
}

/// Why a log request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DiagnosticsError {
    /// No such device.
    #[error("no device `{0}` is managed by this gateway")]
    UnknownDevice(String),
    /// An argument is wrong; the text names it.
    #[error("{0}")]
    BadArgument(String),
}

/// The device's own log, as last read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NativeStatus {
    /// The profile declares no log method: only gateway-observed records.
    None,
    /// Read now, or earlier (ms since the Unix epoch).
    Read {
        /// When the log was last read.
        at_ms: Option<u64>,
    },
    /// The last read failed (the records held are still answered).
    Failing(String),
    /// The device is not attached (its adapter failed at start; see the gateway's log and the
    /// `attach` record): its own log cannot be read.
    NotAttached,
}

impl LogPage {
    /// When the device's own log was last read, if it was (for tests and renderers).
    pub fn native_read_at(&self) -> Option<u64> {
        match self.native {
            NativeStatus::Read { at_ms } => at_ms,
            _ => None,
        }
    }
}

/// One answer to a log request.
#[derive(Debug, Clone, PartialEq)]
pub struct LogPage {
    /// Device id.
    pub device: String,
    /// Matching records, oldest first.
    pub records: Vec<LogRecord>,
    /// Where to continue.
    pub next: Cursor,
    /// Records after the request's cursor that are no longer held.
    pub missed: u64,
    /// Whether more records are held after `next`.
    pub more: bool,
    /// The device's own log.
    pub native: NativeStatus,
}

/// What GetLogInfo reports.
#[derive(Debug, Clone, PartialEq)]
pub struct LogInfo {
    /// Device id.
    pub device: String,
    /// The ring's figures.
    pub ring: RingStats,
    /// The cursor of the newest record.
    pub newest: Cursor,
    /// The profile's log method (`none` when the device keeps none).
    pub native_method: String,
    /// How often the device's own log is read in the background.
    pub fetch_interval: Option<Duration>,
    /// The device's own log, as last read.
    pub native: NativeStatus,
    /// The labels of the sinks the device is exported to, in the order of `ring.exports`.
    pub sinks: Vec<String>,
}

#[derive(Debug)]
struct DeviceLog {
    ring: RwLock<Ring>,
    profile: Arc<Profile>,
    link: Option<Arc<dyn DeviceLink>>,
    native: tokio::sync::Mutex<NativeState>,
    /// Why the last read of the device's own log failed, while it keeps failing. Outside
    /// `native` so that GetLogInfo and pages read it without awaiting a fetch in progress.
    native_failing: RwLock<Option<String>>,
    /// When the device's own log was last read successfully (ms since the Unix epoch).
    native_read_ms: RwLock<Option<u64>>,
    /// Records that callers can cause, by kind: how many were recorded in the current window.
    limits: RwLock<BTreeMap<String, Limit>>,
    /// Fetches of the device's own log started so far.
    fetches_started: std::sync::atomic::AtomicU64,
}

/// At most [`LIMITED_PER_WINDOW`] records of one kind per [`LIMIT_WINDOW`] and device.
#[derive(Debug, Clone, Copy)]
struct Limit {
    window_start: tokio::time::Instant,
    recorded: u32,
    suppressed: u64,
}

/// Records of one kind a caller can cause (refused calls, failed actions) kept per window and
/// device; the rest are counted and reported with the next one kept, so that no caller can
/// overwrite a device's history by repeating a call.
pub const LIMITED_PER_WINDOW: u32 = 5;
/// The window of [`LIMITED_PER_WINDOW`].
pub const LIMIT_WINDOW: Duration = Duration::from_secs(60);

#[derive(Debug)]
struct Inner {
    epoch: u64,
    fetch_timeout: Duration,
    max_records: usize,
    sinks: Vec<SinkSpec>,
    devices: BTreeMap<String, Arc<DeviceLog>>,
    /// Woken when records arrive, for the export sinks.
    arrived: Notify,
    tasks: RwLock<Vec<JoinHandle<()>>>,
    /// The export sinks' tasks, which get a last round at shutdown.
    exporters: RwLock<Vec<JoinHandle<()>>>,
    /// Turns true when the gateway stops.
    closing: tokio::sync::watch::Sender<bool>,
    /// Devices decommissioned while the gateway runs: their logs are wiped and nothing more
    /// is recorded or read for them.
    retired: RwLock<std::collections::BTreeSet<String>>,
}

/// The diagnostics engine; cheap to clone.
#[derive(Debug, Clone)]
pub struct DiagnosticsEngine {
    inner: Arc<Inner>,
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(PoisonError::into_inner)
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(PoisonError::into_inner)
}

impl DiagnosticsEngine {
    /// An engine for `devices`, sized and exported as `config` says. `epoch` tells this run's
    /// cursors from earlier runs' (the start time in ms does).
    pub fn new(config: &Config, devices: Vec<DeviceEntry>, epoch: u64) -> Self {
        let section = &config.diagnostics;
        let devices = devices
            .into_iter()
            .map(|d| {
                let sinks = config.sinks_for(d.group.as_deref());
                let log = DeviceLog {
                    ring: RwLock::new(Ring::new(section.ring_size, &sinks)),
                    profile: d.profile,
                    link: d.link,
                    native: tokio::sync::Mutex::new(NativeState::default()),
                    native_failing: RwLock::new(None),
                    native_read_ms: RwLock::new(None),
                    limits: RwLock::new(BTreeMap::new()),
                    fetches_started: std::sync::atomic::AtomicU64::new(0),
                };
                (d.id, Arc::new(log))
            })
            .collect();
        Self {
            inner: Arc::new(Inner {
                epoch,
                fetch_timeout: section.fetch_timeout,
                max_records: section.max_records,
                sinks: config.export_sinks(),
                devices,
                arrived: Notify::new(),
                tasks: RwLock::new(Vec::new()),
                exporters: RwLock::new(Vec::new()),
                closing: tokio::sync::watch::Sender::new(false),
                retired: RwLock::new(std::collections::BTreeSet::new()),
            }),
        }
    }

    /// Starts reading every device's own log every `logs.fetch_interval` of its profile.
    /// Export sinks are started by [`super::export::start`].
    pub fn start_fetching(&self) {
        let mut tasks = write(&self.inner.tasks);
        for (id, log) in &self.inner.devices {
            let (Some(interval), Some(_)) = (log.profile.logs.fetch_interval, &log.link) else {
                continue;
            };
            if !log.profile.logs.is_supported() {
                continue;
            }
            let engine = self.clone();
            let id = id.clone();
            tasks.push(tokio::spawn(async move {
                let mut tick = tokio::time::interval(interval);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tick.tick().await;
                    // Failures are recorded in the ring by `refresh`.
                    let _ = engine.refresh(&id).await;
                }
            }));
        }
    }

    /// Adds a task to stop with the engine (the export sinks).
    pub fn adopt(&self, task: JoinHandle<()>) {
        write(&self.inner.tasks).push(task);
    }

    /// Adds an export sink's task: at shutdown it is told to write what it has left and given
    /// the grace period to finish.
    pub fn adopt_exporter(&self, task: JoinHandle<()>) {
        write(&self.inner.exporters).push(task);
    }

    /// Turns true when the gateway stops; export sinks then write what they have and end.
    pub fn closing(&self) -> tokio::sync::watch::Receiver<bool> {
        self.inner.closing.subscribe()
    }

    /// Stops the background reads and the export sinks at once.
    pub fn stop(&self) {
        for task in write(&self.inner.tasks)
            .drain(..)
            .chain(write(&self.inner.exporters).drain(..))
        {
            task.abort();
        }
    }

    /// Stops the background reads, lets the export sinks write what they hold within `grace`,
    /// then stops them; records no sink could write are counted in the log (they are lost with
    /// the gateway's memory).
    pub async fn shutdown(&self, grace: Duration) {
        for task in write(&self.inner.tasks).drain(..) {
            task.abort();
        }
        self.inner.closing.send_replace(true);
        let exporters: Vec<JoinHandle<()>> = write(&self.inner.exporters).drain(..).collect();
        let aborts: Vec<_> = exporters.iter().map(JoinHandle::abort_handle).collect();
        let all = futures_join_all(exporters);
        if tokio::time::timeout(grace, all).await.is_err() {
            aborts.iter().for_each(tokio::task::AbortHandle::abort);
        }
        for (sink, spec) in self.inner.sinks.iter().enumerate() {
            let unwritten: u64 = self
                .inner
                .devices
                .values()
                .map(|log| read(&log.ring).unexported(sink))
                .sum();
            if unwritten > 0 {
                tracing::warn!(
                    sink = %spec.label(),
                    unwritten,
                    "diagnostics records were not exported before the stop and are lost with the gateway's memory"
                );
            }
        }
    }

    /// This run's epoch.
    pub fn epoch(&self) -> u64 {
        self.inner.epoch
    }

    /// The most records one request returns.
    pub fn max_records(&self) -> usize {
        self.inner.max_records
    }

    /// The export sinks, by index.
    pub fn sinks(&self) -> &[SinkSpec] {
        &self.inner.sinks
    }

    /// The ids of the devices with a log.
    pub fn device_ids(&self) -> impl Iterator<Item = &str> {
        self.inner.devices.keys().map(String::as_str)
    }

    /// Wipes a decommissioned device's log (records not yet exported are lost with it, as
    /// decommissioning means) and stops recording and reading its own log. Returns how many
    /// records were wiped.
    pub fn retire(&self, id: &str) -> usize {
        let Ok(log) = self.device(id) else {
            return 0;
        };
        let wiped = {
            let mut ring = write(&log.ring);
            let last = ring.last_seq();
            ring.clear_through(last).unwrap_or_default()
        };
        write(&self.inner.retired).insert(id.to_owned());
        wiped
    }

    fn device(&self, id: &str) -> Result<&Arc<DeviceLog>, DiagnosticsError> {
        if read(&self.inner.retired).contains(id) {
            return Err(DiagnosticsError::UnknownDevice(id.to_owned()));
        }
        self.inner
            .devices
            .get(id)
            .ok_or_else(|| DiagnosticsError::UnknownDevice(id.to_owned()))
    }

    /// Records a gateway-observed `event` on `device`, now. Unknown devices are ignored.
    pub fn record(&self, device: &str, event: Event) {
        self.record_at(device, SystemTime::now(), event);
    }

    /// Records `event`, one that callers can cause (a refused call, a failed action), on
    /// `device` now, unless [`LIMITED_PER_WINDOW`] records of the same `kind` were recorded in
    /// the last [`LIMIT_WINDOW`]; those left out are counted, and the next record of the kind
    /// says how many (field `suppressed`).
    pub fn record_limited(&self, device: &str, kind: &str, mut event: Event) {
        let Ok(log) = self.device(device) else {
            return;
        };
        let now = tokio::time::Instant::now();
        let suppressed = {
            let mut limits = write(&log.limits);
            let limit = limits.entry(kind.to_owned()).or_insert(Limit {
                window_start: now,
                recorded: 0,
                suppressed: 0,
            });
            if now.duration_since(limit.window_start) >= LIMIT_WINDOW {
                limit.window_start = now;
                limit.recorded = 0;
            }
            if limit.recorded >= LIMITED_PER_WINDOW {
                limit.suppressed += 1;
                return;
            }
            limit.recorded += 1;
            std::mem::take(&mut limit.suppressed)
        };
        if suppressed > 0 {
            event.message.push_str(&format!(
                " ({suppressed} more like it were not recorded: at most {LIMITED_PER_WINDOW} a minute)"
            ));
            event = event.with("suppressed", suppressed);
        }
        self.record(device, event);
    }

    /// Records `event` on `device` at `at`.
    pub fn record_at(&self, device: &str, at: SystemTime, event: Event) {
        let Ok(log) = self.device(device) else {
            tracing::debug!(device, "diagnostics event for an unmanaged device dropped");
            return;
        };
        write(&log.ring).push(unix_ms(at), event);
        self.inner.arrived.notify_waiters();
    }

    /// Reads the device's own log (when its profile declares one and it is attached) and adds
    /// the records not taken before. Returns how many were added. A failure is recorded in the
    /// ring once when it starts and once when it ends, not at every try.
    pub async fn refresh(&self, device: &str) -> Result<usize, String> {
        self.fetch_native(device, Freshness::Always).await
    }

    /// Like [`Self::refresh`], for a controller's read: reads waiting together share one fetch
    /// (one that started after a read asked serves it), and while the device's log cannot be
    /// read it is tried at most every [`RETRY_FAILING`], so that callers (anonymous ones
    /// included) drive at most one fetch at a time to the device, and few to a silent one.
    pub async fn refresh_on_demand(&self, device: &str) -> Result<usize, String> {
        let started = self
            .device(device)
            .map(|log| {
                log.fetches_started
                    .load(std::sync::atomic::Ordering::SeqCst)
            })
            .unwrap_or_default();
        self.fetch_native(device, Freshness::SinceRequest(started))
            .await
    }

    async fn fetch_native(&self, device: &str, freshness: Freshness) -> Result<usize, String> {
        let log = self.device(device).map_err(|e| e.to_string())?;
        let Some(link) = &log.link else {
            return Ok(0);
        };
        let Some(source) = link.logs() else {
            return Ok(0);
        };
        let mut state = log.native.lock().await;
        if let Freshness::SinceRequest(started) = freshness {
            let now_started = log
                .fetches_started
                .load(std::sync::atomic::Ordering::SeqCst);
            let retrying_too_soon = read(&log.native_failing).is_some()
                && state
                    .last_attempt
                    .is_some_and(|at| at.elapsed() < RETRY_FAILING);
            if now_started > started || retrying_too_soon {
                return Ok(0);
            }
        }
        log.fetches_started
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let fetched =
            tokio::time::timeout(self.inner.fetch_timeout, source.fetch(state.cursor)).await;
        let now = SystemTime::now();
        state.last_attempt = Some(tokio::time::Instant::now());
        let batch = match fetched {
            Ok(Ok(batch)) => batch,
            failed => {
                let why = match failed {
                    Ok(Err(e)) => format!("{e}; {}", e.hint()),
                    _ => format!(
                        "no answer within {} ([diagnostics] fetch_timeout)",
                        humantime::format_duration(self.inner.fetch_timeout)
                    ),
                };
                if read(&log.native_failing).is_none() {
                    self.record_at(
                        device,
                        now,
                        Event::gateway(
                            Severity::Warning,
                            Category::Error,
                            format!("cannot read the device's own log: {why}; the gateway's records are still kept"),
                        )
                        .with("operation", "log-fetch"),
                    );
                }
                *write(&log.native_failing) = Some(why.clone());
                return Err(why);
            }
        };
        if write(&log.native_failing).take().is_some() {
            self.record_at(
                device,
                now,
                Event::gateway(
                    Severity::Notice,
                    Category::Operational,
                    "the device's own log can be read again",
                )
                .with("operation", "log-fetch"),
            );
        }
        let taken = state.take_new(batch);
        if let Some(before) = taken.renumbered_from {
            self.record_at(
                device,
                now,
                Event::gateway(
                    Severity::Notice,
                    Category::StateTransition,
                    format!("the device numbers its own log anew (it restarted or cleared it; the last record taken was {before}); its records are taken from the new numbering"),
                )
                .with("operation", "log-fetch"),
            );
        }
        let new = taken.records;
        let count = new.len();
        *write(&log.native_read_ms) = Some(unix_ms(now));
        if count > 0 {
            let mut ring = write(&log.ring);
            for record in new {
                let at = record.timestamp.unwrap_or(now);
                ring.push(unix_ms(at), event_of(record));
            }
            drop(ring);
            self.inner.arrived.notify_waiters();
        }
        Ok(count)
    }

    fn native_status(&self, log: &DeviceLog) -> NativeStatus {
        if !log.profile.logs.is_supported() {
            return NativeStatus::None;
        }
        if log.link.is_none() {
            return NativeStatus::NotAttached;
        }
        match read(&log.native_failing).clone() {
            Some(why) => NativeStatus::Failing(why),
            None => NativeStatus::Read {
                at_ms: *read(&log.native_read_ms),
            },
        }
    }

    /// Answers a log request: reads the device's own log first (bounded by
    /// `[diagnostics] fetch_timeout`; on failure the records held are answered), then the ring.
    pub async fn read_log(
        &self,
        device: &str,
        request: &LogRequest,
    ) -> Result<LogPage, DiagnosticsError> {
        let log = Arc::clone(self.device(device)?);
        let _ = self.refresh_on_demand(device).await;
        let after = match request.cursor {
            Some(c) if c.epoch == self.inner.epoch => c.seq,
            // A cursor of an earlier run stands before everything held now.
            Some(_) | None => 0,
        };
        let page = read(&log.ring).read(after, &request.filter);
        Ok(LogPage {
            device: device.to_owned(),
            records: page.records,
            next: Cursor {
                epoch: self.inner.epoch,
                seq: page.next,
            },
            missed: page.missed,
            more: page.more,
            native: self.native_status(&log),
        })
    }

    /// Removes the records up to and including `cursor` (a `NextCursor` handed out); records
    /// that arrived after it stay. Returns how many were removed.
    pub fn clear(&self, device: &str, cursor: &str) -> Result<usize, DiagnosticsError> {
        let log = self.device(device)?;
        let cursor = Cursor::parse(cursor).ok_or_else(|| {
            DiagnosticsError::BadArgument(format!(
                "UpToCursor `{}` is not a cursor this gateway handed out; pass the NextCursor of a GetDiagnosticsLog answer unchanged",
                cursor.chars().take(64).collect::<String>()
            ))
        })?;
        if cursor.epoch != self.inner.epoch {
            return Err(DiagnosticsError::BadArgument(format!(
                "UpToCursor {cursor} is from an earlier run of the gateway (it restarted since, and everything held now arrived after that cursor); read the log again and clear up to the new NextCursor"
            )));
        }
        write(&log.ring)
            .clear_through(cursor.seq)
            .map_err(|e| DiagnosticsError::BadArgument(format!("UpToCursor {cursor}: {e}")))
    }

    /// The device's log figures.
    pub fn info(&self, device: &str) -> Result<LogInfo, DiagnosticsError> {
        let log = self.device(device)?;
        let ring = read(&log.ring).stats();
        Ok(LogInfo {
            device: device.to_owned(),
            newest: Cursor {
                epoch: self.inner.epoch,
                seq: ring.last_seq,
            },
            sinks: ring
                .exports
                .iter()
                .map(|m| {
                    self.inner
                        .sinks
                        .get(m.sink)
                        .map_or_else(|| format!("sink {}", m.sink), SinkSpec::label)
                })
                .collect(),
            ring,
            native_method: log.profile.logs.method.clone(),
            fetch_interval: log.profile.logs.fetch_interval,
            native: self.native_status(log),
        })
    }

    /// Every record held for `device` matching `filter`, for tests and the CLI.
    pub fn records(&self, device: &str, filter: &Filter) -> Vec<LogRecord> {
        self.device(device)
            .map(|log| read(&log.ring).read(0, filter).records)
            .unwrap_or_default()
    }

    /// The ids of the devices exported to sink `sink`.
    pub fn sink_devices(&self, sink: usize) -> Vec<String> {
        self.inner
            .devices
            .iter()
            .filter(|(_, log)| read(&log.ring).exports_to(sink))
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// Up to `max` records of `device` that sink `sink` has not written, and how many it lost.
    pub fn export_batch(&self, device: &str, sink: usize, max: usize) -> ExportBatch {
        match self.device(device) {
            Ok(log) => write(&log.ring).export_batch(sink, max),
            Err(_) => ExportBatch {
                records: Vec::new(),
                newly_lost: 0,
            },
        }
    }

    /// Records that sink `sink` wrote `device`'s records up to `seq`.
    pub fn mark_exported(&self, device: &str, sink: usize, seq: u64) {
        if let Ok(log) = self.device(device) {
            write(&log.ring).mark_exported(sink, seq);
        }
    }

    /// Records that sink `sink` failed to write `device`'s last batch (see
    /// [`Ring::export_failed`]).
    pub fn export_failed(&self, device: &str, sink: usize) {
        if let Ok(log) = self.device(device) {
            write(&log.ring).export_failed(sink);
        }
    }

    /// Waits until records arrive (or returns at once if some arrived since the last wait of
    /// this future's creation; use with a periodic tick as a fallback).
    pub async fn arrived(&self) {
        self.inner.arrived.notified().await;
    }
}

#[cfg(test)]
mod tests;

//! BatchSetValues on the gateway's root device: one ParameterValueList written to many devices
//! (a management group or a list), at most MaxConcurrent at a time, with a result per device,
//! and a batch id that makes a retry idempotent.
//!
//! A batch runs on a task of its own, so that it finishes (and is recorded) even when the call
//! that started it gives up, for instance at the HTTP layer's request timeout. A call with the
//! id of a running batch waits for it; one with the id of a finished batch answers its stored
//! results; either way it writes nothing. The same id with a different request is refused.

mod record;
mod request;
mod run;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, OnceLock, PoisonError, RwLock, Weak};

use tokio::sync::watch;

use super::{Caller, FaceState, errors};
use crate::firmware::campaign::parse_targets;
use crate::registry::{RecordTable, Registry, RegistryError};
use crate::upnp::device::VirtualDevice;
use crate::upnp::soap::UpnpError;
use record::BatchRecord;
use request::BatchRequest;

/// Finished batches kept in the registry; the oldest are removed past it (a retry of one of
/// those runs again).
pub const MAX_STORED: usize = 1000;
/// Batches running at once; more are refused until one finishes.
pub const MAX_RUNNING: usize = 16;

/// The answer a running batch will give, once it has one.
type Done = watch::Receiver<Option<Arc<BatchRecord>>>;

/// The gateway's batches: those running now (by id), and the finished ones the registry keeps.
#[derive(Debug, Default)]
pub struct Batches {
    /// The face the batches run on, set once it is built ([`Batches::attach`]).
    face: OnceLock<Weak<FaceState>>,
    running: RwLock<HashMap<String, Running>>,
    /// `(finished_ms, id)` of every stored batch, loaded from the registry on first use.
    stored: RwLock<Option<BTreeSet<(u64, String)>>>,
}

#[derive(Debug)]
struct Running {
    digest: String,
    targets: String,
    started_ms: u64,
    operator: Option<String>,
    done: Done,
}

/// How a call goes on once its batch id was looked up.
enum Begun {
    /// Finished before: answer its results, write nothing.
    Stored(Box<BatchRecord>),
    /// Running now, started by this call (`false`) or another (`true`): wait for it.
    Running(Done, bool),
}

impl Batches {
    /// Lets batches run on tasks of their own, holding `state`; until this is called every
    /// BatchSetValues fails.
    pub fn attach(&self, state: &Arc<FaceState>) {
        let _ = self.face.set(Arc::downgrade(state));
    }

    /// The face the batches run on, once attached (lifecycle operations run on it too).
    pub(super) fn face(&self) -> Option<Arc<FaceState>> {
        self.face.get().and_then(Weak::upgrade)
    }

    /// Looks `request`'s id up and, when it is new, starts the batch.
    fn begin(
        &self,
        state: &FaceState,
        request: BatchRequest,
        operator: Option<String>,
    ) -> Result<Begun, UpnpError> {
        let face = self.face.get().and_then(Weak::upgrade).ok_or_else(|| {
            UpnpError::action_failed(
                "internal: BatchSetValues has no face to run on (Batches::attach was not called)",
            )
        })?;
        let digest = request.digest();
        // The lookup and the start happen under one lock, and a finishing batch is stored
        // before it leaves the running map: a second call finds it in one place or the other.
        let mut running = write(&self.running);
        if let Some(run) = running.get(&request.id) {
            if run.digest != digest {
                return Err(reused(
                    &request.id,
                    &format!(
                        "is running since {} (started by {}, Targets {:?})",
                        crate::utc::format_seconds(run.started_ms),
                        who(run.operator.as_deref()),
                        run.targets
                    ),
                ));
            }
            return Ok(Begun::Running(run.done.clone(), true));
        }
        match state
            .registry
            .get_record::<BatchRecord>(RecordTable::Batches, &request.id)
        {
            Ok(Some(record)) if record.digest == digest => {
                return Ok(Begun::Stored(Box::new(record)));
            }
            Ok(Some(record)) => {
                return Err(reused(
                    &request.id,
                    &format!(
                        "ran from {} to {} (started by {}, Targets {:?}, parameters {})",
                        crate::utc::format_seconds(record.started_ms),
                        crate::utc::format_seconds(record.finished_ms),
                        who(record.operator.as_deref()),
                        record.targets,
                        record
                            .values
                            .iter()
                            .map(|(p, _)| p.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
            }
            Ok(None) => {}
            Err(e) => {
                return Err(UpnpError::action_failed(format!(
                    "BatchSetValues: cannot look batch {} up in the registry: {e}",
                    request.id
                )));
            }
        }
        if running.len() >= MAX_RUNNING {
            return Err(UpnpError::action_failed(format!(
                "BatchSetValues: {MAX_RUNNING} batches are running, the most the gateway runs at once; \
                 retry batch {} with the same BatchId when one has finished",
                request.id
            )));
        }
        let devices = resolve_targets(state, &request)?;
        let (sender, done) = watch::channel(None);
        let started_ms = crate::utc::unix_ms(std::time::SystemTime::now());
        running.insert(
            request.id.clone(),
            Running {
                digest: digest.clone(),
                targets: request.targets_spec(),
                started_ms,
                operator: operator.clone(),
                done: done.clone(),
            },
        );
        drop(running);
        tokio::spawn(run::run(
            face,
            run::Job {
                request,
                digest,
                operator,
                started_ms,
                devices,
            },
            sender,
        ));
        Ok(Begun::Running(done, false))
    }

    /// Forgets running batch `id` (it was stored, or it was interrupted).
    fn finished(&self, id: &str) {
        write(&self.running).remove(id);
    }

    /// Stores a finished batch and removes the oldest past `keep` ([`MAX_STORED`]).
    fn store(
        &self,
        registry: &Registry,
        record: &BatchRecord,
        keep: usize,
    ) -> Result<(), RegistryError> {
        let mut stored = write(&self.stored);
        let index = match stored.take() {
            Some(index) => index,
            None => match registry.records::<Finished>(RecordTable::Batches) {
                Ok(records) => records
                    .into_iter()
                    .map(|(id, f)| (f.finished_ms, id))
                    .collect(),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot list the stored batches: only those stored from now on are bounded to {MAX_STORED}");
                    BTreeSet::new()
                }
            },
        };
        let index = stored.insert(index);
        registry.put_record(RecordTable::Batches, &record.batch_id, record)?;
        index.retain(|(_, id)| *id != record.batch_id);
        index.insert((record.finished_ms, record.batch_id.clone()));
        while index.len() > keep {
            let Some((_, oldest)) = index.pop_first() else {
                break;
            };
            registry.remove_record(RecordTable::Batches, &oldest)?;
            tracing::debug!(batch = %oldest, "oldest stored batch removed");
        }
        Ok(())
    }
}

/// The part of a stored [`BatchRecord`] that orders them.
#[derive(serde::Deserialize)]
struct Finished {
    finished_ms: u64,
}

/// BatchSetValues(BatchId, Targets, ParameterValueList, MaxConcurrent) -> Results.
pub(super) async fn batch_set_values(
    state: &FaceState,
    args: &[&str],
    caller: &Caller,
) -> Result<Vec<(&'static str, String)>, UpnpError> {
    let arg = |i: usize| args.get(i).copied().unwrap_or_default();
    let request = BatchRequest::parse(arg(0), arg(1), arg(2), arg(3)).map_err(|e| e.to_upnp())?;
    let operator = caller.operator().map(str::to_owned);
    let id = request.id.clone();
    let (record, replayed) = match state.batches.begin(state, request, operator)? {
        Begun::Stored(record) => {
            tracing::info!(batch = %id, "BatchSetValues retried: answering the stored results");
            (Arc::new(*record), true)
        }
        Begun::Running(mut done, joined) => {
            if joined {
                tracing::info!(batch = %id, "BatchSetValues retried while running: waiting for it");
            }
            let record = done
                .wait_for(Option::is_some)
                .await
                .ok()
                .and_then(|r| r.clone())
                .ok_or_else(|| {
                    UpnpError::action_failed(format!(
                        "BatchSetValues: batch {id} was interrupted before it finished (the gateway is stopping?); \
                         call again with the same BatchId to run it (devices already written get the same values again)"
                    ))
                })?;
            (record, joined)
        }
    };
    Ok(vec![("Results", record.results_xml(replayed))])
}

/// The devices Targets names, in its order; decommissioned devices are unknown.
fn resolve_targets(
    state: &FaceState,
    request: &BatchRequest,
) -> Result<Vec<Arc<VirtualDevice>>, UpnpError> {
    let mut by_id: BTreeMap<String, Arc<VirtualDevice>> = BTreeMap::new();
    let mut groups: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for device in state.live_devices() {
        by_id.insert(device.record().id, Arc::clone(device));
    }
    for (id, device) in &by_id {
        let record = device.record();
        // With enrollment on, a device belongs to its group once it is commissioned into it;
        // a device waiting for approval (or rejected) is reached only by its id.
        let member = state.identities.is_none()
            || matches!(
                record.lifecycle,
                crate::lifecycle::LifecycleState::Commissioned
                    | crate::lifecycle::LifecycleState::Maintenance
            );
        if let (Some(group), true) = (record.group, member) {
            groups.entry(group).or_default().push(id.clone());
        }
    }
    let ids: Vec<String> = by_id.keys().cloned().collect();
    let targets = parse_targets(&request.targets_spec(), &groups, &ids).map_err(|why| {
        UpnpError::argument_value_invalid(format!("BatchSetValues {}: {why}", request.id))
    })?;
    Ok(targets
        .iter()
        .filter_map(|id| by_id.get(id).cloned())
        .collect())
}

fn reused(id: &str, when: &str) -> UpnpError {
    UpnpError::new(
        errors::BATCH_ID_REUSED,
        format!(
            "BatchSetValues: BatchId {id} was already used for a different request: batch {id} {when}. \
             A new request needs a new BatchId; repeat the original request unchanged to get its results"
        ),
    )
}

fn who(operator: Option<&str>) -> &str {
    operator.unwrap_or("an unnamed caller")
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(PoisonError::into_inner)
}

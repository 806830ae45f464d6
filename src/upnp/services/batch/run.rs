//! Running one batch on a task of its own: each target device's SetValues, at most
//! MaxConcurrent at once, each with the bookkeeping of a SetValues call on that device; then
//! the record, stored before it is answered.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::SystemTime;

use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tracing::Instrument as _;

use super::record::{BatchRecord, DeviceResult, Outcome};
use super::request::BatchRequest;
use crate::upnp::device::VirtualDevice;
use crate::upnp::services::{FaceState, note_error, write_values};

/// A batch ready to run.
#[derive(Debug)]
pub(super) struct Job {
    pub(super) request: BatchRequest,
    pub(super) digest: String,
    pub(super) operator: Option<String>,
    pub(super) started_ms: u64,
    /// The target devices, in the order of Targets.
    pub(super) devices: Vec<Arc<VirtualDevice>>,
}

/// Removes the batch from the running ones when its task ends, however it ends.
struct Forget {
    state: Arc<FaceState>,
    id: String,
}

impl Drop for Forget {
    fn drop(&mut self) {
        self.state.batches.finished(&self.id);
    }
}

/// Runs `job` and sends its record through `sender` once it is stored.
pub(super) async fn run(
    state: Arc<FaceState>,
    job: Job,
    sender: watch::Sender<Option<Arc<BatchRecord>>>,
) {
    let _forget = Forget {
        state: Arc::clone(&state),
        id: job.request.id.clone(),
    };
    let id: Arc<str> = Arc::from(job.request.id.as_str());
    let list: Arc<str> = Arc::from(job.request.list_xml());
    let operator: Option<Arc<str>> = job.operator.as_deref().map(Arc::from);
    tracing::info!(
        batch = %id,
        devices = job.devices.len(),
        max_concurrent = job.request.max_concurrent,
        operator = operator.as_deref().unwrap_or(""),
        "batch started"
    );

    let limit = Arc::new(Semaphore::new(job.request.max_concurrent));
    let mut tasks = JoinSet::new();
    let mut index_of = HashMap::new();
    for (index, device) in job.devices.iter().enumerate() {
        // The semaphore is never closed.
        let Ok(permit) = Arc::clone(&limit).acquire_owned().await else {
            break;
        };
        let (state, device, list, id, operator) = (
            Arc::clone(&state),
            Arc::clone(device),
            Arc::clone(&list),
            Arc::clone(&id),
            operator.clone(),
        );
        let span = tracing::info_span!("batch_device", batch = %id, device = %device.record().id);
        let handle = tasks.spawn(
            async move {
                let result = write_one(&state, &device, &list, &id, operator.as_deref()).await;
                drop(permit);
                result
            }
            .instrument(span),
        );
        index_of.insert(handle.id(), index);
    }
    let mut results: Vec<Option<DeviceResult>> = vec![None; job.devices.len()];
    while let Some(joined) = tasks.join_next_with_id().await {
        match joined {
            Ok((task, result)) => {
                if let Some(slot) = index_of.get(&task).and_then(|i| results.get_mut(*i)) {
                    *slot = Some(result);
                }
            }
            Err(e) => {
                tracing::error!(batch = %id, error = %e, "a device's write of the batch ended without an outcome")
            }
        }
    }
    let results = results
        .into_iter()
        .zip(&job.devices)
        .map(|(result, device)| result.unwrap_or_else(|| lost(device)))
        .collect();

    let record = BatchRecord {
        batch_id: job.request.id.clone(),
        digest: job.digest,
        targets: job.request.targets_spec(),
        values: job.request.values,
        operator: job.operator,
        started_ms: job.started_ms,
        finished_ms: crate::utc::unix_ms(SystemTime::now()),
        results,
    };
    let succeeded = record.succeeded();
    tracing::info!(
        batch = %id,
        devices = record.results.len(),
        succeeded,
        failed = record.results.len() - succeeded,
        "batch finished"
    );
    if let Err(e) = state
        .batches
        .store(&state.registry, &record, super::MAX_STORED)
    {
        tracing::error!(batch = %id, error = %e, "cannot store the finished batch: a retry with its BatchId will run it again");
    }
    sender.send_replace(Some(Arc::new(record)));
}

/// SetValues on one device of batch `id`, recorded as that action is: the device's
/// availability, the configuration change and its event, and in the device's diagnostics log
/// the operator's action or the device's failure.
async fn write_one(
    state: &FaceState,
    device: &VirtualDevice,
    list: &str,
    id: &str,
    operator: Option<&str>,
) -> DeviceResult {
    let device_id = device.record().id;
    let outcome = match write_values(state, device, list).await {
        Ok(()) => {
            state.diagnostics.record(
                &device_id,
                crate::diagnostics::observe::action_done(
                    "ConfigurationManagement",
                    "SetValues",
                    operator,
                )
                .with("batch", id),
            );
            tracing::info!(batch = %id, device = %device_id, "batch: changes applied");
            Outcome::ChangesApplied
        }
        Err(e) => {
            note_error(state, device, "ConfigurationManagement", "SetValues", &e);
            tracing::warn!(batch = %id, device = %device_id, code = e.code, error = %e.description, "batch: the device's SetValues failed");
            Outcome::Failed {
                code: e.code,
                description: e.description,
            }
        }
    };
    DeviceResult {
        id: device_id,
        udn: device.udn,
        outcome,
        config_version: device.record().config_version,
    }
}

/// The result of a device whose write task ended without one (it panicked).
fn lost(device: &VirtualDevice) -> DeviceResult {
    let record = device.record();
    DeviceResult {
        id: record.id.clone(),
        udn: device.udn,
        outcome: Outcome::Failed {
            code: 501,
            description: format!(
                "internal: the write to {} ended without an outcome; see the gateway log, and read its values back with GetValues",
                device.describe()
            ),
        },
        config_version: record.config_version,
    }
}

//! The device's log: fetched by request (`{"op": "fetch", "after", "max"}`, the device's own
//! index is the cursor) or collected from a topic it publishes records to (the gateway numbers
//! them and keeps the newest [`crate::link::LOG_RING_CAPACITY`]).

use std::sync::Arc;

use async_trait::async_trait;
use iotmc_adapter::{LinkError, LogBatch, LogCursor, LogSource};
use serde_json::json;

use super::request::{Ask, Requester};
use crate::codec::generic::{log_answer, log_record};
use crate::codec::json;
use crate::driver::BrokerHandle;
use crate::link::{CollectedLog, LogRing, TaskGuard};
use crate::profile::generic::{LogMap, expand};

/// Fetched with requests.
#[derive(Debug)]
pub(super) struct RequestLog {
    requester: Requester,
    topic: String,
    max: u32,
}

impl RequestLog {
    pub(super) fn new(requester: Requester, map: &LogMap, device: &str) -> Self {
        Self {
            requester,
            topic: expand(map.request_topic.as_deref().unwrap_or_default(), device),
            max: map.max,
        }
    }
}

#[async_trait]
impl LogSource for RequestLog {
    async fn fetch(&self, since: Option<LogCursor>) -> Result<LogBatch, LinkError> {
        let mut request = json!({"op": "fetch", "max": self.max});
        if let Some(LogCursor::Index(after)) = since {
            request["after"] = json!(after);
        }
        let answer = self
            .requester
            .ask(Ask::json("log fetch", &self.topic, &request))
            .await?;
        let batch = log_answer(&self.topic, &answer)
            .map_err(|e| self.requester.malformed("log fetch", &e.to_string()))?;
        let mut records = batch.records;
        if let Some(LogCursor::Time(after)) = since {
            // The device numbers its records; a time cursor filters what it returned.
            records.retain(|r| r.timestamp.is_none_or(|t| t > after));
        }
        let next = match (batch.next, since) {
            (Some(index), _) => Some(LogCursor::Index(index)),
            (None, since) => since,
        };
        Ok(LogBatch { records, next })
    }

    async fn clear(&self) -> Result<(), LinkError> {
        self.requester
            .ask(Ask::json("log clear", &self.topic, &json!({"op": "clear"})))
            .await?;
        Ok(())
    }
}

/// Subscribes to `topic` and collects the records published there into a ring: the log source
/// and the task that collects.
pub(super) async fn follow_topic(
    broker: &BrokerHandle,
    topic: &str,
    device_id: &str,
) -> Result<(CollectedLog, TaskGuard), LinkError> {
    let mut subscription = broker.subscribe(topic).await?;
    let ring = Arc::new(LogRing::default());
    let collected = Arc::clone(&ring);
    let device_id = device_id.to_owned();
    let task = TaskGuard::spawn(async move {
        while let Some(message) = subscription.recv().await {
            let record = json::parse(&message.topic, &message.payload)
                .map_err(|e| e.to_string())
                .and_then(|j| {
                    log_record(&j).map_err(|why| format!("on `{}`: {why}", message.topic))
                });
            match record {
                Ok(record) => collected.push(record),
                Err(why) => {
                    tracing::warn!(device = %device_id, error = %why, "log record ignored");
                }
            }
        }
    });
    Ok((CollectedLog::new(ring), task))
}

//! The device's `$log/<level>` lines (and `$alert/<id>` messages), collected as they arrive
//! into a bounded ring: Homie log lines are not retained and carry no index or time, so the
//! link numbers them from 1 and stamps them on receipt. `fetch` continues after an index (or
//! a time); `clear` empties the ring (numbering goes on, so a cursor never repeats a record).

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::SystemTime;

use async_trait::async_trait;
use iotmc_adapter::{DeviceLogRecord, LinkError, LogBatch, LogCursor, LogSource, Severity};

/// Records kept per device; the oldest go first.
pub(crate) const LOG_CAPACITY: usize = 512;

/// The ring of collected records.
#[derive(Debug)]
pub(crate) struct LogRing {
    records: VecDeque<DeviceLogRecord>,
    next_index: u64,
    capacity: usize,
}

impl LogRing {
    /// An empty ring holding at most `capacity` records.
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            records: VecDeque::new(),
            next_index: 1,
            capacity: capacity.max(1),
        }
    }

    /// Appends a line received at `at`.
    pub(crate) fn push(
        &mut self,
        at: SystemTime,
        severity: Severity,
        message: String,
        fields: BTreeMap<String, String>,
    ) {
        if self.records.len() == self.capacity {
            self.records.pop_front();
        }
        self.records.push_back(DeviceLogRecord {
            index: Some(self.next_index),
            timestamp: Some(at),
            severity,
            message,
            fields,
        });
        self.next_index += 1;
    }

    /// The records after `since`, oldest first, and the cursor to continue from.
    pub(crate) fn fetch(&self, since: Option<LogCursor>) -> LogBatch {
        let records: Vec<DeviceLogRecord> = self
            .records
            .iter()
            .filter(|r| match since {
                None => true,
                Some(LogCursor::Index(after)) => r.index.is_some_and(|i| i > after),
                Some(LogCursor::Time(after)) => r.timestamp.is_some_and(|t| t > after),
            })
            .cloned()
            .collect();
        let next = records
            .last()
            .and_then(|r| r.index)
            .map(LogCursor::Index)
            .or(since);
        LogBatch { records, next }
    }

    /// Forgets every record.
    pub(crate) fn clear(&mut self) {
        self.records.clear();
    }
}

/// The log source of a Homie link.
#[derive(Debug, Clone)]
pub(crate) struct DeviceLog {
    ring: Arc<RwLock<LogRing>>,
}

impl DeviceLog {
    /// A log source reading `ring`.
    pub(crate) fn new(ring: Arc<RwLock<LogRing>>) -> Self {
        Self { ring }
    }
}

#[async_trait]
impl LogSource for DeviceLog {
    async fn fetch(&self, since: Option<LogCursor>) -> Result<LogBatch, LinkError> {
        Ok(self
            .ring
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .fetch(since))
    }

    async fn clear(&self) -> Result<(), LinkError> {
        self.ring
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn line(ring: &mut LogRing, seconds: u64, message: &str) {
        ring.push(
            SystemTime::UNIX_EPOCH + Duration::from_secs(seconds),
            Severity::Warning,
            message.to_owned(),
            BTreeMap::new(),
        );
    }

    fn messages(batch: &LogBatch) -> Vec<&str> {
        batch.records.iter().map(|r| r.message.as_str()).collect()
    }

    #[test]
    fn fetch_should_continue_after_the_cursor_it_returned() {
        let mut ring = LogRing::new(8);
        line(&mut ring, 1, "a");
        line(&mut ring, 2, "b");
        let first = ring.fetch(None);
        assert_eq!(messages(&first), ["a", "b"]);
        assert_eq!(first.next, Some(LogCursor::Index(2)));
        let empty = ring.fetch(first.next);
        assert!(empty.records.is_empty());
        assert_eq!(empty.next, first.next, "an empty fetch keeps the cursor");
        line(&mut ring, 3, "c");
        assert_eq!(messages(&ring.fetch(first.next)), ["c"]);
        let by_time = ring.fetch(Some(LogCursor::Time(
            SystemTime::UNIX_EPOCH + Duration::from_secs(1),
        )));
        assert_eq!(messages(&by_time), ["b", "c"]);
    }

    #[test]
    fn the_ring_should_drop_the_oldest_and_never_reuse_an_index() {
        let mut ring = LogRing::new(2);
        for (i, m) in ["a", "b", "c"].iter().enumerate() {
            line(&mut ring, i as u64, m);
        }
        let batch = ring.fetch(None);
        assert_eq!(messages(&batch), ["b", "c"]);
        ring.clear();
        assert!(ring.fetch(None).records.is_empty());
        line(&mut ring, 9, "d");
        let after_clear = ring.fetch(batch.next);
        assert_eq!(messages(&after_clear), ["d"]);
        assert_eq!(after_clear.records[0].index, Some(4));
    }
}

//! Log lines a device publishes (Tasmota `stat/<topic>/LOGGING`, Homie `$log/<level>`, a generic
//! log topic), collected as they arrive into a bounded ring. Such lines are published once and
//! carry no index the device could be asked for again, so the ring numbers them from 1 and
//! stamps those without a time of their own with the time they arrived. `fetch` continues after
//! an index (or a time); `clear` empties the ring but numbering goes on, so a cursor never
//! repeats a record. What the ring overwrites is lost: [`LOG_RING_CAPACITY`] bounds the memory.

use std::collections::VecDeque;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::SystemTime;

use async_trait::async_trait;
use iotmc_adapter::{DeviceLogRecord, LinkError, LogBatch, LogCursor, LogSource};

/// Records kept per device; the oldest go first.
pub const LOG_RING_CAPACITY: usize = 1000;

/// The ring of one device's collected records.
#[derive(Debug)]
pub struct LogRing {
    state: RwLock<Ring>,
    capacity: usize,
}

#[derive(Debug, Default)]
struct Ring {
    records: VecDeque<DeviceLogRecord>,
    /// Index of the last record collected (the first gets 1).
    last: u64,
}

impl Default for LogRing {
    fn default() -> Self {
        Self::new(LOG_RING_CAPACITY)
    }
}

impl LogRing {
    /// An empty ring holding at most `capacity` records.
    pub fn new(capacity: usize) -> Self {
        Self {
            state: RwLock::new(Ring::default()),
            capacity: capacity.max(1),
        }
    }

    /// Collects a record: numbered by the ring (the device's own index, if any, is replaced),
    /// stamped with the time of arrival when it has no time of its own.
    pub fn push(&self, record: DeviceLogRecord) {
        let mut ring = self.state.write().unwrap_or_else(PoisonError::into_inner);
        ring.last += 1;
        let record = DeviceLogRecord {
            index: Some(ring.last),
            timestamp: record.timestamp.or_else(|| Some(SystemTime::now())),
            ..record
        };
        if ring.records.len() >= self.capacity {
            ring.records.pop_front();
        }
        ring.records.push_back(record);
    }

    /// The records after `since` (all the ring holds for `None`), oldest first, and where to
    /// continue: after the last one returned, or where the ring stands when none was newer.
    pub fn fetch(&self, since: Option<LogCursor>) -> LogBatch {
        let ring = self.state.read().unwrap_or_else(PoisonError::into_inner);
        let records: Vec<DeviceLogRecord> = ring
            .records
            .iter()
            .filter(|r| match since {
                None => true,
                Some(LogCursor::Index(after)) => r.index.is_some_and(|i| i > after),
                Some(LogCursor::Time(after)) => r.timestamp.is_some_and(|t| t > after),
            })
            .cloned()
            .collect();
        let next = match records.last().and_then(|r| r.index) {
            Some(last) => Some(LogCursor::Index(last)),
            None => since.or(Some(LogCursor::Index(ring.last))),
        };
        LogBatch { records, next }
    }

    /// Forgets every record (numbering goes on).
    pub fn clear(&self) {
        self.state
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .records
            .clear();
    }
}

/// The log source of a device whose lines are collected in a [`LogRing`]. Clearing clears the
/// gateway's copy only: a device that publishes its lines keeps none to clear.
#[derive(Debug, Clone)]
pub struct CollectedLog {
    ring: Arc<LogRing>,
}

impl CollectedLog {
    /// A log source reading `ring`.
    pub fn new(ring: Arc<LogRing>) -> Self {
        Self { ring }
    }
}

#[async_trait]
impl LogSource for CollectedLog {
    async fn fetch(&self, since: Option<LogCursor>) -> Result<LogBatch, LinkError> {
        Ok(self.ring.fetch(since))
    }

    async fn clear(&self) -> Result<(), LinkError> {
        self.ring.clear();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use iotmc_adapter::Severity;

    use super::*;

    fn line(ring: &LogRing, seconds: Option<u64>, message: &str) {
        ring.push(DeviceLogRecord {
            index: Some(999),
            timestamp: seconds.map(|s| SystemTime::UNIX_EPOCH + Duration::from_secs(s)),
            severity: Severity::Warning,
            message: message.to_owned(),
            fields: BTreeMap::new(),
        });
    }

    fn messages(batch: &LogBatch) -> Vec<&str> {
        batch.records.iter().map(|r| r.message.as_str()).collect()
    }

    #[test]
    fn fetch_should_continue_after_the_cursor_it_returned() {
        let ring = LogRing::new(8);
        let empty = ring.fetch(None);
        assert!(empty.records.is_empty());
        assert_eq!(empty.next, Some(LogCursor::Index(0)));
        line(&ring, Some(1), "a");
        line(&ring, Some(2), "b");
        let first = ring.fetch(empty.next);
        assert_eq!(messages(&first), ["a", "b"]);
        assert_eq!(first.records[0].index, Some(1), "the ring numbers records");
        assert_eq!(first.next, Some(LogCursor::Index(2)));
        let none = ring.fetch(first.next);
        assert!(none.records.is_empty());
        assert_eq!(none.next, first.next, "an empty fetch keeps the cursor");
        line(&ring, Some(3), "c");
        assert_eq!(messages(&ring.fetch(first.next)), ["c"]);
        let by_time = ring.fetch(Some(LogCursor::Time(
            SystemTime::UNIX_EPOCH + Duration::from_secs(1),
        )));
        assert_eq!(messages(&by_time), ["b", "c"]);
    }

    #[test]
    fn the_ring_should_drop_the_oldest_and_never_reuse_an_index() {
        let ring = LogRing::new(2);
        for m in ["a", "b", "c"] {
            line(&ring, Some(1), m);
        }
        let batch = ring.fetch(None);
        assert_eq!(messages(&batch), ["b", "c"]);
        ring.clear();
        assert!(ring.fetch(None).records.is_empty());
        line(&ring, None, "d");
        let after_clear = ring.fetch(batch.next);
        assert_eq!(messages(&after_clear), ["d"]);
        assert_eq!(after_clear.records[0].index, Some(4));
        assert!(
            after_clear.records[0].timestamp.is_some(),
            "a record without a time is stamped on arrival"
        );
    }
}

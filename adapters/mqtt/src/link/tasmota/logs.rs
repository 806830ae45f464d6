//! The device's log lines (`stat/<topic>/LOGGING`), collected into a bounded ring as they
//! arrive, numbered by the link and stamped with the time they arrived: Tasmota publishes
//! each line once, keeps no log it could be asked for again, and prints only its time of day.
//! Clearing empties the ring; there is nothing on the device to clear.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::SystemTime;

use async_trait::async_trait;
use iotmc_adapter::{DeviceLogRecord, LinkError, LogBatch, LogCursor, LogSource};

use super::device::Device;
use crate::codec::tasmota::LogLine;

/// Records the ring keeps; the oldest go first.
pub const LOG_RING_CAPACITY: usize = 1000;

/// The ring of collected lines.
#[derive(Debug, Default)]
pub(super) struct LogRing {
    state: RwLock<Ring>,
}

#[derive(Debug, Default)]
struct Ring {
    records: VecDeque<DeviceLogRecord>,
    /// Index of the last record collected (the first gets 1).
    last: u64,
}

impl LogRing {
    /// Collects a line.
    pub(super) fn push(&self, line: LogLine) {
        let mut ring = self.state.write().unwrap_or_else(PoisonError::into_inner);
        ring.last += 1;
        let mut fields = BTreeMap::new();
        if let Some(time) = line.device_time {
            fields.insert("device_time".to_owned(), time);
        }
        if let Some(tag) = line.tag {
            fields.insert("tag".to_owned(), tag);
        }
        let record = DeviceLogRecord {
            index: Some(ring.last),
            timestamp: Some(SystemTime::now()),
            severity: line.severity,
            message: line.message,
            fields,
        };
        if ring.records.len() == LOG_RING_CAPACITY {
            ring.records.pop_front();
        }
        ring.records.push_back(record);
    }

    /// Records after `since` (all the ring holds for `None`), and where to continue.
    pub(super) fn after(&self, since: Option<LogCursor>) -> LogBatch {
        let ring = self.state.read().unwrap_or_else(PoisonError::into_inner);
        let newer = |r: &&DeviceLogRecord| match since {
            None => true,
            Some(LogCursor::Index(n)) => r.index.is_some_and(|i| i > n),
            Some(LogCursor::Time(t)) => r.timestamp.is_some_and(|at| at > t),
        };
        let records: Vec<DeviceLogRecord> = ring.records.iter().filter(newer).cloned().collect();
        let next = match records.last().and_then(|r| r.index) {
            Some(last) => Some(LogCursor::Index(last)),
            None => since.or(Some(LogCursor::Index(ring.last))),
        };
        LogBatch { records, next }
    }

    fn clear(&self) {
        self.state
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .records
            .clear();
    }
}

/// The log source of a Tasmota device (log method `topic`).
#[derive(Debug)]
pub struct TopicLog {
    pub(super) device: Arc<Device>,
}

#[async_trait]
impl LogSource for TopicLog {
    async fn fetch(&self, since: Option<LogCursor>) -> Result<LogBatch, LinkError> {
        Ok(self.device.log.after(since))
    }

    /// Empties the gateway's ring; Tasmota keeps no log of its own to clear.
    async fn clear(&self) -> Result<(), LinkError> {
        self.device.log.clear();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use iotmc_adapter::Severity;

    fn line(text: &str) -> LogLine {
        LogLine {
            device_time: Some("12:00:00.000".into()),
            tag: Some("APP".into()),
            message: text.into(),
            severity: Severity::Informational,
        }
    }

    #[test]
    fn fetch_from_a_cursor_should_return_only_newer_records() {
        let ring = LogRing::default();
        ring.push(line("one"));
        ring.push(line("two"));
        let all = ring.after(None);
        assert_eq!(all.records.len(), 2);
        assert_eq!(all.next, Some(LogCursor::Index(2)));
        ring.push(line("three"));
        let newer = ring.after(all.next);
        assert_eq!(newer.records.len(), 1);
        assert_eq!(newer.records[0].message, "three");
        assert_eq!(newer.records[0].fields["tag"], "APP");
        let none = ring.after(newer.next);
        assert!(none.records.is_empty());
        assert_eq!(none.next, newer.next);
    }

    #[test]
    fn the_ring_should_keep_the_newest_records_and_keep_counting_after_a_clear() {
        let ring = LogRing::default();
        for i in 0..LOG_RING_CAPACITY + 5 {
            ring.push(line(&i.to_string()));
        }
        let all = ring.after(None);
        assert_eq!(all.records.len(), LOG_RING_CAPACITY);
        assert_eq!(all.records[0].index, Some(6));
        ring.clear();
        assert!(ring.after(None).records.is_empty());
        ring.push(line("after"));
        assert_eq!(
            ring.after(None).records[0].index,
            Some(LOG_RING_CAPACITY as u64 + 6)
        );
    }
}

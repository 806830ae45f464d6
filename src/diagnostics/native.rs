//! A device's own log, read through its adapter's `LogSource`: where to continue, and which
//! records were already taken, so that a record reaches the ring once however often the log is
//! read (on demand and periodically, or by a device that ignores the cursor).

use std::collections::HashSet;
use std::hash::{DefaultHasher, Hash as _, Hasher as _};
use std::time::SystemTime;

use iotmc_adapter::{DeviceLogRecord, LogBatch, LogCursor};

use super::record::{Category, Event, Source};

/// What the gateway remembers of one device's own log.
#[derive(Debug, Default)]
pub struct NativeState {
    /// The cursor to pass to the next fetch.
    pub cursor: Option<LogCursor>,
    /// The highest device index taken.
    last_index: Option<u64>,
    /// The latest device timestamp taken, for records without an index.
    last_time: Option<SystemTime>,
    /// Digests of the records taken at `last_time` (several records may share a timestamp).
    at_last_time: HashSet<u64>,
    /// Records taken since the start.
    pub taken: u64,
    /// When the last fetch was tried, and when it ended.
    pub last_attempt: Option<tokio::time::Instant>,
}

/// What a batch brought.
#[derive(Debug, Default)]
pub struct Taken {
    /// The records not taken before, oldest first.
    pub records: Vec<DeviceLogRecord>,
    /// The device numbers its records anew (it restarted, or cleared its log): the highest
    /// index taken before, when that happened.
    pub renumbered_from: Option<u64>,
}

impl NativeState {
    /// The records of `batch` not taken before, oldest first; remembers them and the cursor.
    ///
    /// A device whose numbering went back (its cursor is below the one passed, after a restart
    /// or a clear of its log: adapters then read everything again) is numbered anew: its
    /// records are taken from the new numbering on.
    pub fn take_new(&mut self, batch: LogBatch) -> Taken {
        let mut renumbered_from = None;
        if let (Some(LogCursor::Index(now)), Some(LogCursor::Index(before))) =
            (batch.next, self.cursor)
            && now < before
        {
            renumbered_from = self.last_index;
            self.last_index = None;
        }
        let mut new = Vec::new();
        for record in batch.records {
            if self.is_new(&record) {
                self.remember(&record);
                new.push(record);
            }
        }
        if batch.next.is_some() {
            self.cursor = batch.next;
        }
        self.taken += new.len() as u64;
        Taken {
            records: new,
            renumbered_from,
        }
    }

    fn is_new(&self, record: &DeviceLogRecord) -> bool {
        if let Some(index) = record.index {
            return self.last_index.is_none_or(|last| index > last);
        }
        match (record.timestamp, self.last_time) {
            (Some(at), Some(last)) if at < last => false,
            (Some(at), Some(last)) if at == last => !self.at_last_time.contains(&digest(record)),
            (Some(_), _) => true,
            // No index and no time: nothing to tell it from a repeat but its content, against
            // the records of the same fetch only; adapters of such devices clear or number
            // them (the MQTT adapter numbers what it collects).
            (None, _) => true,
        }
    }

    fn remember(&mut self, record: &DeviceLogRecord) {
        if let Some(index) = record.index {
            self.last_index = Some(self.last_index.map_or(index, |l| l.max(index)));
        } else if let Some(at) = record.timestamp {
            if self.last_time != Some(at) {
                if self.last_time.is_some_and(|last| at < last) {
                    return;
                }
                self.last_time = Some(at);
                self.at_last_time.clear();
            }
            self.at_last_time.insert(digest(record));
        }
    }
}

fn digest(record: &DeviceLogRecord) -> u64 {
    let mut hasher = DefaultHasher::new();
    record.severity.hash(&mut hasher);
    record.message.hash(&mut hasher);
    for (k, v) in &record.fields {
        k.hash(&mut hasher);
        v.hash(&mut hasher);
    }
    hasher.finish()
}

/// The ring event of a device's own record: errors and worse are category `error`, the rest
/// `operational`; the device's index is kept as field `device_index`.
pub fn event_of(record: DeviceLogRecord) -> Event {
    let category = if record.severity <= iotmc_adapter::Severity::Error {
        Category::Error
    } else {
        Category::Operational
    };
    let mut fields = record.fields;
    if let Some(index) = record.index {
        fields.insert("device_index".into(), index.to_string());
    }
    Event {
        severity: record.severity,
        category,
        source: Source::Device,
        message: record.message,
        fields,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use super::*;
    use iotmc_adapter::Severity;

    fn indexed(index: u64, message: &str) -> DeviceLogRecord {
        DeviceLogRecord {
            index: Some(index),
            timestamp: None,
            severity: Severity::Error,
            message: message.into(),
            fields: BTreeMap::new(),
        }
    }

    fn timed(secs: u64, message: &str) -> DeviceLogRecord {
        DeviceLogRecord {
            index: None,
            timestamp: Some(SystemTime::UNIX_EPOCH + Duration::from_secs(secs)),
            severity: Severity::Warning,
            message: message.into(),
            fields: BTreeMap::new(),
        }
    }

    fn messages(records: &[DeviceLogRecord]) -> Vec<&str> {
        records.iter().map(|r| r.message.as_str()).collect()
    }

    #[test]
    fn records_should_be_taken_once_by_the_devices_index() {
        let mut state = NativeState::default();
        let first = state.take_new(LogBatch {
            records: vec![indexed(1, "a"), indexed(2, "b")],
            next: Some(LogCursor::Index(2)),
        });
        assert_eq!(messages(&first.records), ["a", "b"]);
        assert_eq!(state.cursor, Some(LogCursor::Index(2)));
        // A device that ignores the cursor sends everything again, plus one new record.
        let second = state.take_new(LogBatch {
            records: vec![indexed(1, "a"), indexed(2, "b"), indexed(3, "c")],
            next: Some(LogCursor::Index(3)),
        });
        assert_eq!(messages(&second.records), ["c"]);
        assert_eq!(state.taken, 3);
    }

    #[test]
    fn records_without_an_index_should_be_taken_once_by_their_timestamp() {
        let mut state = NativeState::default();
        let first = state.take_new(LogBatch {
            records: vec![timed(10, "a"), timed(20, "b"), timed(20, "c")],
            next: None,
        });
        assert_eq!(messages(&first.records), ["a", "b", "c"]);
        let second = state.take_new(LogBatch {
            records: vec![
                timed(10, "a"),
                timed(20, "b"),
                timed(20, "c"),
                timed(20, "d"),
                timed(30, "e"),
            ],
            next: None,
        });
        assert_eq!(
            messages(&second.records),
            ["d", "e"],
            "same-second records are told apart by content"
        );
        assert_eq!(
            state.cursor, None,
            "a batch without a cursor keeps the last one"
        );
    }

    #[test]
    fn a_device_that_numbers_its_log_anew_should_have_its_new_records_taken() {
        let mut state = NativeState::default();
        let before = state.take_new(LogBatch {
            records: vec![
                indexed(9_999, "old"),
                indexed(10_000, "last before restart"),
            ],
            next: Some(LogCursor::Index(10_000)),
        });
        assert_eq!(before.renumbered_from, None);
        // The device restarted: asked for records after 10 000, the adapter read all it holds.
        let after = state.take_new(LogBatch {
            records: vec![indexed(1, "power on"), indexed(2, "fan started")],
            next: Some(LogCursor::Index(2)),
        });
        assert_eq!(messages(&after.records), ["power on", "fan started"]);
        assert_eq!(after.renumbered_from, Some(10_000));
        let then = state.take_new(LogBatch {
            records: vec![indexed(2, "fan started"), indexed(3, "setpoint changed")],
            next: Some(LogCursor::Index(3)),
        });
        assert_eq!(messages(&then.records), ["setpoint changed"]);
        assert_eq!(then.renumbered_from, None);
    }

    #[test]
    fn device_records_should_keep_their_index_and_be_categorised_by_severity() {
        let event = event_of(indexed(7, "fan failure"));
        assert_eq!(event.source, Source::Device);
        assert_eq!(event.category, Category::Error);
        assert_eq!(event.fields["device_index"], "7");
        assert_eq!(event_of(timed(1, "ok")).category, Category::Operational);
    }
}

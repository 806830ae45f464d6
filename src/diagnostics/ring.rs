//! One device's log: a ring bounded in bytes that keeps the newest records, counts what it
//! overwrote, and remembers how far each export sink got so that records overwritten before
//! they were exported are counted per sink.
//!
//! The device's own records and the gateway's share the ring, and neither can push the other
//! below half of it: when the ring is full, the oldest record goes, unless its source holds
//! half of the ring or less while the other source holds more; then the other source's oldest
//! goes. A device that logs every second cannot crowd out what the gateway saw of it.
//!
//! Sans-IO and clock-free: times come in with the records.

use std::collections::VecDeque;

use super::record::{Event, LogRecord, Severity, Source};

/// Which records a reader wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Filter {
    /// Only records at least this severe (`Error` keeps error, critical, alert, emergency).
    pub min_severity: Option<Severity>,
    /// Only records at or after this time (ms since the Unix epoch).
    pub start_ms: Option<u64>,
    /// Only records before this time (ms since the Unix epoch).
    pub end_ms: Option<u64>,
    /// At most this many records (at least 1).
    pub max: usize,
}

impl Filter {
    /// Every record, up to `max`.
    pub fn all(max: usize) -> Self {
        Self {
            min_severity: None,
            start_ms: None,
            end_ms: None,
            max,
        }
    }

    fn matches(&self, record: &LogRecord) -> bool {
        self.min_severity.is_none_or(|s| record.severity <= s)
            && self.start_ms.is_none_or(|t| record.at_ms >= t)
            && self.end_ms.is_none_or(|t| record.at_ms < t)
    }
}

/// What a read returns.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    /// Matching records, oldest first.
    pub records: Vec<LogRecord>,
    /// The sequence number to continue after: the last record looked at. Reading on from it
    /// with the same filter never skips a matching record and never repeats one.
    pub next: u64,
    /// Records after the reader's position that are no longer held (overwritten because the
    /// ring was full, or cleared), so the reader knows it missed them.
    pub missed: u64,
    /// Whether records after `next` are already held (the reader should read on at once).
    pub more: bool,
}

/// How far one export sink got in this ring.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExportMark {
    /// The sink's index in the gateway's export configuration.
    pub sink: usize,
    /// The last record the sink has written (0: none).
    pub exported: u64,
    /// Records overwritten or cleared before the sink wrote them, since the start.
    pub lost: u64,
    /// How many of `lost` the sink has already been told about.
    reported: u64,
    /// The last record handed to the sink in a batch whose outcome is not known yet: records
    /// up to it that are overwritten meanwhile were written (or, if the write fails, are
    /// counted as lost by [`Ring::export_failed`]).
    in_flight: u64,
}

/// A batch for one export sink.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportBatch {
    /// Records the sink has not written yet, oldest first.
    pub records: Vec<LogRecord>,
    /// Records lost to this sink since its last batch (overwritten or cleared before export).
    pub newly_lost: u64,
}

/// The ring's figures, for GetLogInfo and the HTTP endpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct RingStats {
    /// Records held.
    pub records: usize,
    /// Bytes charged for them.
    pub bytes: usize,
    /// The bound, in bytes.
    pub capacity: usize,
    /// Time of the oldest and newest record held.
    pub oldest_ms: Option<u64>,
    /// Time of the newest record held.
    pub newest_ms: Option<u64>,
    /// The last sequence number handed out (0: none yet).
    pub last_seq: u64,
    /// Records overwritten because the ring was full, since the start.
    pub overwritten: u64,
    /// Records removed by ClearDiagnosticsLog, since the start.
    pub cleared: u64,
    /// Each export sink's progress.
    pub exports: Vec<ExportMark>,
}

/// One device's ring.
#[derive(Debug)]
pub struct Ring {
    capacity: usize,
    used: usize,
    /// Bytes held by the device's own records ([`Source::Device`]).
    used_by_device: usize,
    records: VecDeque<LogRecord>,
    last_seq: u64,
    overwritten: u64,
    cleared: u64,
    exports: Vec<ExportMark>,
}

/// Why a clear was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "the cursor is past the newest record ({last}); only a cursor that was handed out can be cleared up to"
)]
pub struct ClearRefused {
    /// The newest sequence number handed out.
    pub last: u64,
}

impl Ring {
    /// An empty ring holding at most `capacity` bytes of records (see [`LogRecord::cost`]),
    /// exported to the sinks `sinks`.
    pub fn new(capacity: usize, sinks: &[usize]) -> Self {
        Self {
            capacity,
            used: 0,
            used_by_device: 0,
            records: VecDeque::new(),
            last_seq: 0,
            overwritten: 0,
            cleared: 0,
            exports: sinks
                .iter()
                .map(|&sink| ExportMark {
                    sink,
                    exported: 0,
                    lost: 0,
                    reported: 0,
                    in_flight: 0,
                })
                .collect(),
        }
    }

    /// Appends `event` at `at_ms`, overwriting the oldest records when the ring is full.
    /// Returns its sequence number.
    pub fn push(&mut self, at_ms: u64, event: Event) -> u64 {
        self.last_seq += 1;
        let record = LogRecord::new(self.last_seq, at_ms, event);
        let cost = record.cost();
        while self.used + cost > self.capacity {
            let Some(old) = self.overwrite_one() else {
                break;
            };
            self.overwritten += 1;
            tracing::trace!(seq = old.seq, "diagnostics ring full; a record overwritten");
        }
        self.used += cost;
        if record.source == Source::Device {
            self.used_by_device += cost;
        }
        self.records.push_back(record);
        self.last_seq
    }

    /// Removes the record a full ring gives up: the oldest, unless its source holds half of
    /// the ring or less while the other source holds more (then the other's oldest).
    fn overwrite_one(&mut self) -> Option<LogRecord> {
        let oldest = self.records.front()?.source;
        let held = |source| match source {
            Source::Device => self.used_by_device,
            Source::Gateway => self.used - self.used_by_device,
        };
        let other = match oldest {
            Source::Device => Source::Gateway,
            Source::Gateway => Source::Device,
        };
        let half = self.capacity / 2;
        let victim = if held(oldest) <= half && held(other) > half {
            self.records.iter().position(|r| r.source == other)?
        } else {
            0
        };
        self.remove_at(victim)
    }

    fn pop_front(&mut self) -> Option<LogRecord> {
        self.remove_at(0)
    }

    fn remove_at(&mut self, index: usize) -> Option<LogRecord> {
        let old = self.records.remove(index)?;
        self.used -= old.cost();
        if old.source == Source::Device {
            self.used_by_device -= old.cost();
        }
        for mark in &mut self.exports {
            if mark.exported.max(mark.in_flight) < old.seq {
                mark.lost += 1;
            }
        }
        Some(old)
    }

    /// Records after `after` (a sequence number; 0 for the start) that match `filter`.
    pub fn read(&self, after: u64, filter: &Filter) -> Page {
        let after = after.min(self.last_seq);
        let start = self.records.partition_point(|r| r.seq <= after);
        // Every sequence number after `after` was handed out; those not held are missed.
        let held_after = (self.records.len() - start) as u64;
        let missed = (self.last_seq - after).saturating_sub(held_after);
        let max = filter.max.max(1);
        let mut records = Vec::new();
        let mut next = self.last_seq;
        for record in self.records.range(start..) {
            if !filter.matches(record) {
                continue;
            }
            records.push(record.clone());
            if records.len() == max {
                next = record.seq;
                break;
            }
        }
        Page {
            records,
            next,
            missed,
            more: next < self.last_seq,
        }
    }

    /// Removes every record up to and including `seq`; newer ones stay. Returns how many were
    /// removed. A `seq` past the newest record was never handed out and is refused.
    pub fn clear_through(&mut self, seq: u64) -> Result<usize, ClearRefused> {
        if seq > self.last_seq {
            return Err(ClearRefused {
                last: self.last_seq,
            });
        }
        let mut removed = 0;
        while self.records.front().is_some_and(|r| r.seq <= seq) {
            self.pop_front();
            removed += 1;
        }
        self.cleared += removed as u64;
        Ok(removed)
    }

    /// Up to `max` records sink `sink` has not written yet, and how many it lost since the last
    /// batch. Empty for a sink this ring is not exported to.
    pub fn export_batch(&mut self, sink: usize, max: usize) -> ExportBatch {
        let Some(mark) = self.exports.iter_mut().find(|m| m.sink == sink) else {
            return ExportBatch {
                records: Vec::new(),
                newly_lost: 0,
            };
        };
        let newly_lost = mark.lost - mark.reported;
        mark.reported = mark.lost;
        let exported = mark.exported;
        let start = self.records.partition_point(|r| r.seq <= exported);
        let records: Vec<LogRecord> = self.records.range(start..).take(max).cloned().collect();
        mark.in_flight = records.last().map_or(exported, |r| r.seq);
        ExportBatch {
            records,
            newly_lost,
        }
    }

    /// Records that sink `sink` failed to write its last batch: records of it that were
    /// overwritten meanwhile are counted as lost; the rest are handed out again.
    pub fn export_failed(&mut self, sink: usize) {
        let Some(index) = self.exports.iter().position(|m| m.sink == sink) else {
            return;
        };
        let (exported, in_flight) = (self.exports[index].exported, self.exports[index].in_flight);
        if in_flight > exported {
            let start = self.records.partition_point(|r| r.seq <= exported);
            let end = self.records.partition_point(|r| r.seq <= in_flight);
            let gone = (in_flight - exported).saturating_sub((end - start) as u64);
            let mark = &mut self.exports[index];
            mark.lost += gone;
            mark.in_flight = exported;
        }
    }

    /// Records that sink `sink` has written everything up to `seq`.
    pub fn mark_exported(&mut self, sink: usize, seq: u64) {
        if let Some(mark) = self.exports.iter_mut().find(|m| m.sink == sink) {
            mark.exported = mark.exported.max(seq.min(self.last_seq));
            mark.in_flight = mark.in_flight.max(mark.exported);
        }
    }

    /// How many records held sink `sink` has not written.
    pub fn unexported(&self, sink: usize) -> u64 {
        self.exports.iter().find(|m| m.sink == sink).map_or(0, |m| {
            let start = self.records.partition_point(|r| r.seq <= m.exported);
            (self.records.len() - start) as u64
        })
    }

    /// Whether this ring is exported to sink `sink`.
    pub fn exports_to(&self, sink: usize) -> bool {
        self.exports.iter().any(|m| m.sink == sink)
    }

    /// The ring's figures.
    pub fn stats(&self) -> RingStats {
        RingStats {
            records: self.records.len(),
            bytes: self.used,
            capacity: self.capacity,
            oldest_ms: self.records.iter().map(|r| r.at_ms).min(),
            newest_ms: self.records.iter().map(|r| r.at_ms).max(),
            last_seq: self.last_seq,
            overwritten: self.overwritten,
            cleared: self.cleared,
            exports: self.exports.clone(),
        }
    }

    /// The newest sequence number handed out (0: none).
    pub fn last_seq(&self) -> u64 {
        self.last_seq
    }
}

#[cfg(test)]
mod tests;

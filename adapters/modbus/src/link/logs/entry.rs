//! Log entries as the profile lays them out, with no IO: which slots hold which sequence
//! numbers, how to read them in as few requests as the limits allow, and what one entry says.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use iotmc_adapter::{DeviceLogRecord, Severity};

/// Registers before an entry's text: sequence (2), time (2), code (1), severity (1).
pub(super) const FIXED_REGISTERS: u16 = 6;

/// One entry, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Entry {
    /// The entry's own sequence number (0 = never written).
    pub(super) sequence: u32,
    /// When the device logged it, if it keeps time.
    pub(super) time: Option<SystemTime>,
    /// The event code.
    pub(super) code: u16,
    /// Syslog severity.
    pub(super) severity: Severity,
    /// The entry's text (registers 6 on), without NULs.
    pub(super) text: String,
}

impl Entry {
    /// Decodes one entry; `None` if it is shorter than the six fixed registers.
    pub(super) fn decode(words: &[u16]) -> Option<Self> {
        let [s_high, s_low, t_high, t_low, code, severity, text @ ..] = words else {
            return None;
        };
        let sequence = u32::from(*s_high) << 16 | u32::from(*s_low);
        let seconds = u32::from(*t_high) << 16 | u32::from(*t_low);
        let time = (seconds != 0)
            .then(|| SystemTime::UNIX_EPOCH + Duration::from_secs(u64::from(seconds)));
        Some(Self {
            sequence,
            time,
            code: *code,
            severity: severity_of(*severity),
            text: ascii_text(text),
        })
    }

    /// The record: the code's text (or `event <code>`), then the entry's own text.
    pub(super) fn record(&self, codes: &BTreeMap<String, String>) -> DeviceLogRecord {
        let mut message = codes
            .get(&self.code.to_string())
            .cloned()
            .unwrap_or_else(|| format!("event {}", self.code));
        if !self.text.is_empty() {
            message.push_str(": ");
            message.push_str(&self.text);
        }
        let fields = BTreeMap::from([
            ("code".to_owned(), self.code.to_string()),
            ("sequence".to_owned(), self.sequence.to_string()),
        ]);
        DeviceLogRecord {
            index: Some(u64::from(self.sequence)),
            timestamp: self.time,
            severity: self.severity,
            message,
            fields,
        }
    }
}

/// Syslog severity 0–7; anything larger reads as informational.
pub(super) fn severity_of(raw: u16) -> Severity {
    match raw {
        0 => Severity::Emergency,
        1 => Severity::Alert,
        2 => Severity::Critical,
        3 => Severity::Error,
        4 => Severity::Warning,
        5 => Severity::Notice,
        7 => Severity::Debug,
        _ => Severity::Informational,
    }
}

/// Two characters per register, high byte first; NULs and other non-printable bytes dropped,
/// trailing spaces trimmed.
pub(super) fn ascii_text(words: &[u16]) -> String {
    let text: String = words
        .iter()
        .flat_map(|w| w.to_be_bytes())
        .filter(|b| b.is_ascii_graphic() || *b == b' ')
        .map(char::from)
        .collect();
    text.trim_end().to_owned()
}

/// The slot that holds sequence number `sequence` in a ring of `entries`.
pub(super) fn slot_of(sequence: u64, entries: u64) -> u64 {
    sequence % entries.max(1)
}

/// Sequence numbers a fetch reads and how many were lost on the way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Window {
    /// First sequence number to read (`first > last` when there is none).
    pub(super) first: u64,
    /// Last sequence number to read (the newest).
    pub(super) last: u64,
    /// Entries after the cursor the ring no longer holds.
    pub(super) lost: u64,
}

/// What to read when the newest entry is `newest` and the caller has read up to `after` (its
/// cursor; `None` to read all the ring holds). A cursor past `newest` means the device
/// cleared its log or its sequence wrapped: everything is read again.
pub(super) fn window(newest: u64, after: Option<u64>, entries: u64) -> Window {
    let after = after.filter(|&a| a <= newest);
    let oldest_kept = newest.saturating_sub(entries.max(1)) + 1;
    let wanted = after.map_or(1, |a| a + 1);
    let first = wanted.max(oldest_kept);
    Window {
        first,
        last: newest,
        lost: after.map_or(0, |_| first - wanted),
    }
}

/// A run of consecutive slots holding consecutive sequence numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Run {
    /// Sequence number in the first slot.
    pub(super) sequence: u64,
    /// First slot.
    pub(super) slot: u64,
    /// Slots.
    pub(super) count: u64,
}

/// The window's sequence numbers as at most two runs of slots (the ring wraps once at most).
pub(super) fn runs(window: Window, entries: u64) -> Vec<Run> {
    let entries = entries.max(1);
    let mut runs = Vec::new();
    let mut sequence = window.first;
    while sequence <= window.last {
        let slot = slot_of(sequence, entries);
        let count = (entries - slot).min(window.last - sequence + 1);
        runs.push(Run {
            sequence,
            slot,
            count,
        });
        sequence += count;
    }
    runs
}

/// Reads covering slots `run.slot..run.slot + run.count` as (register offset from the start
/// of the log, registers): whole entries, as many as `limit` registers allow; an entry longer
/// than `limit` is read in pieces.
pub(super) fn requests(run: Run, entry_registers: u16, limit: u16) -> Vec<(u64, u16)> {
    let size = u64::from(entry_registers.max(1));
    let limit = u64::from(limit.max(1));
    let mut out = Vec::new();
    if size <= limit {
        let per_request = limit / size;
        let mut slot = run.slot;
        let end = run.slot + run.count;
        while slot < end {
            let n = per_request.min(end - slot);
            // At most `limit`, a u16.
            out.push((slot * size, (n * size) as u16));
            slot += n;
        }
    } else {
        for slot in run.slot..run.slot + run.count {
            let mut at = 0;
            while at < size {
                let n = limit.min(size - at);
                out.push((slot * size + at, n as u16));
                at += n;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_decodes_sequence_time_code_severity_and_text() {
        let words = [
            0x0001, 0x0002, // sequence 65538
            0x6553, 0xF100, // time 1_700_000_000
            17,     // code
            4,      // warning
            0x6661, 0x6E20, 0x7374, 0x6F70, 0x0000, // "fan stop", NUL-padded
        ];
        let entry = Entry::decode(&words).unwrap();
        assert_eq!(entry.sequence, 65538);
        assert_eq!(
            entry.time,
            Some(SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000))
        );
        assert_eq!(entry.severity, Severity::Warning);
        assert_eq!(entry.text, "fan stop");
        let codes = BTreeMap::from([("17".to_owned(), "supply fan failure".to_owned())]);
        let record = entry.record(&codes);
        assert_eq!(record.message, "supply fan failure: fan stop");
        assert_eq!(record.index, Some(65538));
        assert_eq!(record.fields["code"], "17");
        assert_eq!(record.fields["sequence"], "65538");
    }

    #[test]
    fn an_entry_without_clock_or_text_reads_as_its_code() {
        let entry = Entry::decode(&[0, 5, 0, 0, 9, 12]).unwrap();
        assert_eq!(entry.time, None);
        assert_eq!(entry.severity, Severity::Informational);
        assert_eq!(entry.record(&BTreeMap::new()).message, "event 9");
    }

    #[test]
    fn a_short_entry_is_not_decoded() {
        assert_eq!(Entry::decode(&[0, 1, 0, 0, 9]), None);
    }

    #[test]
    fn severities_map_to_syslog_and_large_values_to_informational() {
        assert_eq!(severity_of(0), Severity::Emergency);
        assert_eq!(severity_of(3), Severity::Error);
        assert_eq!(severity_of(6), Severity::Informational);
        assert_eq!(severity_of(7), Severity::Debug);
        assert_eq!(severity_of(8), Severity::Informational);
        assert_eq!(severity_of(0xFFFF), Severity::Informational);
    }

    #[test]
    fn sequence_n_lives_in_slot_n_modulo_entries() {
        assert_eq!(slot_of(1, 16), 1);
        assert_eq!(slot_of(16, 16), 0);
        assert_eq!(slot_of(35, 16), 3);
    }

    #[test]
    fn an_empty_log_has_nothing_to_read() {
        let w = window(0, None, 16);
        assert!(w.first > w.last);
        assert!(runs(w, 16).is_empty());
    }

    #[test]
    fn a_first_fetch_reads_what_the_ring_still_holds_and_loses_nothing() {
        assert_eq!(
            window(40, None, 16),
            Window {
                first: 25,
                last: 40,
                lost: 0
            }
        );
        assert_eq!(
            window(5, None, 16),
            Window {
                first: 1,
                last: 5,
                lost: 0
            }
        );
    }

    #[test]
    fn a_cursor_behind_the_ring_counts_the_overwritten_entries() {
        // Read up to 10; newest is 40 in a ring of 16: 11..=24 are gone.
        assert_eq!(
            window(40, Some(10), 16),
            Window {
                first: 25,
                last: 40,
                lost: 14
            }
        );
        assert_eq!(window(40, Some(30), 16).lost, 0);
    }

    #[test]
    fn a_cursor_past_the_newest_reads_everything_again() {
        // The device cleared its log (or the sequence wrapped): newest 3 < cursor 40.
        assert_eq!(
            window(3, Some(40), 16),
            Window {
                first: 1,
                last: 3,
                lost: 0
            }
        );
    }

    #[test]
    fn a_window_across_the_end_of_the_ring_is_two_runs() {
        let w = window(40, Some(28), 16); // 29..=40: slots 13..=15, then 0..=8
        assert_eq!(
            runs(w, 16),
            vec![
                Run {
                    sequence: 29,
                    slot: 13,
                    count: 3
                },
                Run {
                    sequence: 32,
                    slot: 0,
                    count: 9
                },
            ]
        );
    }

    #[test]
    fn requests_carry_whole_entries_up_to_the_limit() {
        // 30 entries of 16 registers: 7 per 125-register read.
        let run = Run {
            sequence: 1,
            slot: 1,
            count: 30,
        };
        let reqs = requests(run, 16, 125);
        assert_eq!(reqs.len(), 5);
        assert_eq!(reqs[0], (16, 112));
        assert_eq!(reqs[4], (16 + 28 * 16, 32));
        assert!(reqs.iter().all(|(_, n)| n % 16 == 0));
    }

    #[test]
    fn an_entry_longer_than_the_limit_is_read_in_pieces() {
        let run = Run {
            sequence: 3,
            slot: 2,
            count: 1,
        };
        assert_eq!(requests(run, 130, 125), vec![(260, 125), (385, 5)]);
    }
}

//! One record of a device's diagnostics log, and the cursor that marks a place in it.

use std::collections::BTreeMap;
use std::fmt;

pub use iotmc_adapter::Severity;
use serde::Serialize;

/// Longest message kept, in bytes; longer ones are cut at a character boundary and end in `…`.
pub const MAX_MESSAGE: usize = 1024;
/// Most fields kept per record; the rest are dropped (a field `truncated` says so).
pub const MAX_FIELDS: usize = 16;
/// Longest field name, in bytes.
pub const MAX_FIELD_NAME: usize = 32;
/// Longest field value, in bytes.
pub const MAX_FIELD_VALUE: usize = 256;
/// What every record is charged in the ring besides its text: the record itself in its queue
/// slot. See [`LogRecord::cost`].
pub const RECORD_OVERHEAD: usize = 96;
/// What every field is charged besides its text: its name and value strings in the record's
/// field slice.
pub const FIELD_OVERHEAD: usize = std::mem::size_of::<(String, String)>();

/// Who saw the event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// The device's own log, fetched through its adapter.
    Device,
    /// The gateway observed it (availability, action results, firmware steps, southbound
    /// errors, lifecycle transitions).
    Gateway,
}

impl Source {
    /// The name used in every output form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Device => "device",
            Self::Gateway => "gateway",
        }
    }
}

/// What the event is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Category {
    /// Normal operation: values changed, actions carried out.
    Operational,
    /// Something failed.
    Error,
    /// Lifecycle or availability changed.
    StateTransition,
    /// Authentication and authorisation: refused callers, operator actions.
    Security,
    /// Firmware update steps.
    Firmware,
}

impl Category {
    /// The name used in every output form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Operational => "operational",
            Self::Error => "error",
            Self::StateTransition => "state-transition",
            Self::Security => "security",
            Self::Firmware => "firmware",
        }
    }
}

/// Parses a severity name (`error`), its RFC 5424 number (`3`) or the usual short forms
/// (`err`, `warn`, `info`, `crit`, `emerg`); case does not matter.
pub fn parse_severity(text: &str) -> Option<Severity> {
    use Severity::*;
    let text = text.trim().to_ascii_lowercase();
    Some(match text.as_str() {
        "0" | "emergency" | "emerg" => Emergency,
        "1" | "alert" => Alert,
        "2" | "critical" | "crit" => Critical,
        "3" | "error" | "err" => Error,
        "4" | "warning" | "warn" => Warning,
        "5" | "notice" => Notice,
        "6" | "informational" | "info" => Informational,
        "7" | "debug" => Debug,
        _ => return None,
    })
}

/// What an observer records: everything but the sequence number and the time.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// Severity.
    pub severity: Severity,
    /// Category.
    pub category: Category,
    /// Who saw it.
    pub source: Source,
    /// What happened, in words an integrator understands.
    pub message: String,
    /// Structured details (`operation`, `code`, `operator`, ...).
    pub fields: BTreeMap<String, String>,
}

impl Event {
    /// A gateway-observed event.
    pub fn gateway(severity: Severity, category: Category, message: impl Into<String>) -> Self {
        Self {
            severity,
            category,
            source: Source::Gateway,
            message: message.into(),
            fields: BTreeMap::new(),
        }
    }

    /// Adds a field.
    pub fn with(mut self, name: &str, value: impl fmt::Display) -> Self {
        self.fields.insert(name.to_owned(), value.to_string());
        self
    }
}

/// One record of the ring.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LogRecord {
    /// Position in this device's log during this run: strictly increasing, never reused.
    pub seq: u64,
    /// When it happened (the device's own time for native records that carry one, else when
    /// the gateway saw it), milliseconds since the Unix epoch, UTC.
    pub at_ms: u64,
    /// Severity.
    pub severity: Severity,
    /// Who saw it.
    pub source: Source,
    /// What it is about.
    pub category: Category,
    /// What happened.
    pub message: String,
    /// Structured details, sorted by name (a slice, not a tree: a B-tree node costs 544 bytes
    /// however few fields it holds, more than the typical record's text).
    #[serde(serialize_with = "fields_as_map")]
    pub fields: Box<[(String, String)]>,
}

fn fields_as_map<S: serde::Serializer>(
    fields: &[(String, String)],
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.collect_map(fields.iter().map(|(k, v)| (k, v)))
}

impl LogRecord {
    /// A record made of `event`, its text bounded (see [`MAX_MESSAGE`], [`MAX_FIELDS`]).
    pub fn new(seq: u64, at_ms: u64, event: Event) -> Self {
        let Event {
            severity,
            category,
            source,
            message,
            fields,
        } = event;
        let total = fields.len();
        let mut kept: Vec<(String, String)> = fields
            .into_iter()
            .take(MAX_FIELDS)
            .map(|(k, v)| (bounded(k, MAX_FIELD_NAME), bounded(v, MAX_FIELD_VALUE)))
            .collect();
        if total > MAX_FIELDS {
            kept.push((
                "truncated".into(),
                format!("{} more fields", total - MAX_FIELDS),
            ));
            kept.sort_by(|a, b| a.0.cmp(&b.0));
        }
        Self {
            seq,
            at_ms,
            severity,
            source,
            category,
            message: bounded(message, MAX_MESSAGE),
            fields: kept.into_boxed_slice(),
        }
    }

    /// The value of field `name`.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .binary_search_by(|(k, _)| k.as_str().cmp(name))
            .ok()
            .map(|i| self.fields[i].1.as_str())
    }

    /// The bytes this record is charged in the ring: [`RECORD_OVERHEAD`], the capacity of its
    /// message, and per field [`FIELD_OVERHEAD`] plus the capacities of name and value: the
    /// heap the record holds (checked by `cargo bench --bench diagnostics`).
    pub fn cost(&self) -> usize {
        RECORD_OVERHEAD
            + self.message.capacity()
            + self
                .fields
                .iter()
                .map(|(k, v)| FIELD_OVERHEAD + k.capacity() + v.capacity())
                .sum::<usize>()
    }
}

impl LogRecord {
    /// The record as one JSON object on one line (no newline), the form of the HTTP endpoint's
    /// `log.jsonl` and of exported files:
    /// `{"device":"boiler-1","seq":12,"time":"2026-11-24T02:30:00.123Z","severity":"error",
    /// "source":"gateway","category":"error","message":"...","fields":{"code":"701"}}`.
    pub fn json_line(&self, device: &str) -> String {
        serde_json::json!({
            "device": device,
            "seq": self.seq,
            "time": crate::utc::format_ms(self.at_ms),
            "severity": self.severity.to_string(),
            "source": self.source.as_str(),
            "category": self.category.as_str(),
            "message": self.message,
            "fields": self
                .fields
                .iter()
                .map(|(k, v)| (k.clone(), serde_json::Value::from(v.as_str())))
                .collect::<serde_json::Map<_, _>>(),
        })
        .to_string()
    }
}

/// `text` cut to at most `max` bytes at a character boundary, ending in `…` when cut.
fn bounded(mut text: String, max: usize) -> String {
    if text.len() <= max {
        // `format!` leaves spare capacity that the ring would hold for the record's lifetime.
        text.shrink_to_fit();
        return text;
    }
    let ellipsis = '…';
    let mut end = max - ellipsis.len_utf8();
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
    text.push(ellipsis);
    text.shrink_to_fit();
    text
}

/// A place in one device's log: after the record with sequence number `seq`, in the run
/// `epoch` of the gateway. Written `<epoch hex>-<seq>`; opaque to controllers.
///
/// Sequence numbers restart with the gateway (the ring lives in memory), so a cursor from an
/// earlier run stands before everything held now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    /// The run the cursor was handed out in.
    pub epoch: u64,
    /// The last record it covers (0: none).
    pub seq: u64,
}

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:x}-{}", self.epoch, self.seq)
    }
}

impl Cursor {
    /// Parses a cursor as [`Display`](fmt::Display) writes it.
    pub fn parse(text: &str) -> Option<Self> {
        let (epoch, seq) = text.trim().split_once('-')?;
        if epoch.is_empty() || epoch.len() > 16 || seq.is_empty() || seq.len() > 20 {
            return None;
        }
        Some(Self {
            epoch: u64::from_str_radix(epoch, 16).ok()?,
            seq: seq.parse().ok()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_should_round_trip_and_refuse_garbage() {
        let cursor = Cursor {
            epoch: 0x19ab_cdef_0123,
            seq: 42,
        };
        assert_eq!(Cursor::parse(&cursor.to_string()), Some(cursor));
        for bad in [
            "",
            "-",
            "12",
            "x-1",
            "1-",
            "1-y",
            "1--2",
            "11111111111111111-1",
        ] {
            assert_eq!(Cursor::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn long_text_should_be_cut_at_a_character_boundary() {
        let record = LogRecord::new(
            1,
            0,
            Event::gateway(Severity::Error, Category::Error, "é".repeat(MAX_MESSAGE))
                .with(&"k".repeat(100), "v".repeat(1000)),
        );
        assert!(record.message.len() <= MAX_MESSAGE);
        assert!(record.message.ends_with('…'));
        let (name, value) = record.fields.iter().next().unwrap();
        assert!(name.len() <= MAX_FIELD_NAME && value.len() <= MAX_FIELD_VALUE);
    }

    #[test]
    fn fields_beyond_the_limit_should_be_counted_not_kept() {
        let mut event = Event::gateway(Severity::Notice, Category::Operational, "many");
        for i in 0..(MAX_FIELDS + 5) {
            event = event.with(&format!("f{i:02}"), i);
        }
        let record = LogRecord::new(1, 0, event);
        assert_eq!(record.fields.len(), MAX_FIELDS + 1);
        assert_eq!(record.field("truncated"), Some("5 more fields"));
        assert!(record.fields.is_sorted_by(|a, b| a.0 <= b.0));
    }

    #[test]
    fn a_json_line_should_hold_every_part_of_the_record_on_one_line() {
        let record = LogRecord::new(
            12,
            1_795_487_400_123,
            Event::gateway(
                Severity::Error,
                Category::StateTransition,
                "line\nbreak \"quoted\"",
            )
            .with("code", 701),
        );
        let line = record.json_line("boiler-1");
        assert!(!line.contains('\n'));
        let value: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(value["device"], "boiler-1");
        assert_eq!(value["seq"], 12);
        assert_eq!(value["time"], "2026-11-24T02:30:00.123Z");
        assert_eq!(value["severity"], "error");
        assert_eq!(value["source"], "gateway");
        assert_eq!(value["category"], "state-transition");
        assert_eq!(value["message"], "line\nbreak \"quoted\"");
        assert_eq!(value["fields"]["code"], "701");
    }

    #[test]
    fn severities_should_parse_by_name_number_and_short_form() {
        assert_eq!(parse_severity("Error"), Some(Severity::Error));
        assert_eq!(parse_severity("3"), Some(Severity::Error));
        assert_eq!(parse_severity("warn"), Some(Severity::Warning));
        assert_eq!(
            parse_severity("informational"),
            Some(Severity::Informational)
        );
        assert_eq!(parse_severity("8"), None);
        assert_eq!(parse_severity("loud"), None);
    }
}

//! RFC 5424 syslog messages made of log records, and the RFC 6587 octet-counting frame for
//! TCP. Pure: no IO, no clock.
//!
//! ```text
//! <PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID [iotmc@32473 device=".." seq=".." source=".." <fields>] BOM MSG
//! ```
//!
//! - PRI: facility × 8 + the record's severity code.
//! - TIMESTAMP: the record's UTC time with milliseconds and `Z` (`-` for a time past 9999).
//! - HOSTNAME: the gateway id; APP-NAME `iotmc-gateway`; PROCID `-`; MSGID the category
//!   (`state-transition`). Header fields are printable US-ASCII: anything else becomes `_`.
//! - STRUCTURED-DATA: one element, SD-ID `iotmc@32473` (RFC 5612's example enterprise number),
//!   with the device, the record's sequence number (0 for an export-gap notice), its source and
//!   its fields. A field name is mapped to an SD-NAME (at most 32 printable US-ASCII characters
//!   other than `=`, space, `]` and `"`, others becoming `_`); a field whose mapped name is
//!   empty, is one of the three above or repeats an earlier one is left out. Values escape `"`,
//!   `\` and `]` with a backslash.
//! - MSG: a UTF-8 byte-order mark and the message.
//!
//! With a size limit (UDP: [`UDP_MAX`]), the fields that do not fit are left out first; the
//! message is cut at a character boundary only when even the header, the three fixed
//! parameters and the message do not fit.

use std::fmt::Write as _;

use crate::diagnostics::record::LogRecord;

/// APP-NAME of every message.
pub const APP_NAME: &str = "iotmc-gateway";
/// SD-ID of the element that carries the record's device, sequence number, source and fields.
pub const SD_ID: &str = "iotmc@32473";
/// Largest UDP message sent (RFC 5426 §3.2: receivers SHOULD take 2048 octets).
pub const UDP_MAX: usize = 2048;
/// Longest HOSTNAME (RFC 5424 §6.2.4).
const HOSTNAME_MAX: usize = 255;
/// Longest SD-NAME (RFC 5424 §6.3.2, §6.3.3).
const SD_NAME_MAX: usize = 32;
/// Longest MSGID.
const MSGID_MAX: usize = 32;
/// The byte-order mark that says MSG is UTF-8 (RFC 5424 §6.4).
const BOM: &str = "\u{feff}";
/// Parameters every element carries; fields of these names are left out.
const FIXED_PARAMS: [&str; 3] = ["device", "seq", "source"];

/// Turns records into RFC 5424 messages for one collector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rfc5424 {
    facility: u8,
    hostname: String,
}

impl Rfc5424 {
    /// A formatter for `facility` (0–23; larger values are taken as 23) naming the gateway
    /// `hostname` (sanitised to printable US-ASCII, at most 255 characters; `-` when empty).
    pub fn new(facility: u8, hostname: &str) -> Self {
        Self {
            facility: facility.min(23),
            hostname: header_field(hostname, HOSTNAME_MAX),
        }
    }

    /// The HOSTNAME this formatter writes.
    pub fn hostname(&self) -> &str {
        &self.hostname
    }

    /// `record` of `device` as one RFC 5424 message of at most `max_len` bytes when given.
    pub fn format(&self, device: &str, record: &LogRecord, max_len: Option<usize>) -> String {
        let pri = u16::from(self.facility) * 8 + u16::from(record.severity.code());
        let time = crate::utc::format_ms(record.at_ms);
        let time = if time.ends_with('Z') {
            time
        } else {
            "-".into()
        };
        let msgid = header_field(record.category.as_str(), MSGID_MAX);
        let mut out = format!(
            "<{pri}>1 {time} {} {APP_NAME} - {msgid} [{SD_ID}",
            self.hostname
        );
        push_param(&mut out, "device", device);
        push_param(&mut out, "seq", &record.seq.to_string());
        push_param(&mut out, "source", record.source.as_str());
        // What must follow the fields: `]`, a space, the BOM and the message.
        let tail = 1 + 1 + BOM.len() + record.message.len();
        let mut used: Vec<String> = FIXED_PARAMS.iter().map(|&p| p.to_owned()).collect();
        for (name, value) in &record.fields {
            let Some(name) = sd_name(name) else { continue };
            if used.contains(&name) {
                continue;
            }
            let mut param = String::new();
            push_param(&mut param, &name, value);
            if max_len.is_some_and(|max| out.len() + param.len() + tail > max) {
                continue;
            }
            out.push_str(&param);
            used.push(name);
        }
        out.push_str("] ");
        out.push_str(BOM);
        out.push_str(&record.message);
        if let Some(max) = max_len {
            truncate_at_char(&mut out, max);
        }
        out
    }
}

/// `message` framed for TCP by octet counting (RFC 6587 §3.4.1): `<length> <message>`.
pub fn octet_counted(message: &str) -> Vec<u8> {
    let mut frame = format!("{} ", message.len()).into_bytes();
    frame.extend_from_slice(message.as_bytes());
    frame
}

/// `name` as an SD-NAME: characters other than printable US-ASCII, `=`, space, `]` and `"`
/// become `_`, and it is cut to 32 characters. `None` when nothing is left.
pub fn sd_name(name: &str) -> Option<String> {
    let mapped: String = name
        .chars()
        .take(SD_NAME_MAX)
        .map(|c| match c {
            '=' | ']' | '"' => '_',
            c if c.is_ascii_graphic() => c,
            _ => '_',
        })
        .collect();
    (!mapped.is_empty()).then_some(mapped)
}

/// Appends `value` as a PARAM-VALUE body: `"`, `\` and `]` are escaped with a backslash.
pub fn escape_sd_value(value: &str, out: &mut String) {
    for c in value.chars() {
        if matches!(c, '"' | '\\' | ']') {
            out.push('\\');
        }
        out.push(c);
    }
}

/// `text` as a header field: printable US-ASCII only (others become `_`), at most `max`
/// characters, `-` (the NILVALUE) when empty.
pub fn header_field(text: &str, max: usize) -> String {
    let field: String = text
        .chars()
        .take(max)
        .map(|c| if c.is_ascii_graphic() { c } else { '_' })
        .collect();
    if field.is_empty() { "-".into() } else { field }
}

fn push_param(out: &mut String, name: &str, value: &str) {
    let _ = write!(out, " {name}=\"");
    escape_sd_value(value, out);
    out.push('"');
}

/// Cuts `text` to at most `max` bytes at a character boundary.
pub fn truncate_at_char(text: &mut String, max: usize) {
    if text.len() <= max {
        return;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnostics::record::{Category, Event, Severity};

    /// 2026-11-24T02:30:00.123Z
    const AT_MS: u64 = 1_795_487_400_123;

    fn record(seq: u64, event: Event) -> LogRecord {
        LogRecord::new(seq, AT_MS, event)
    }

    #[test]
    fn a_record_should_become_an_rfc5424_message_field_by_field() {
        let formatter = Rfc5424::new(16, "bldg-a-gw");
        let event = Event::gateway(Severity::Error, Category::StateTransition, "went offline")
            .with("code", 701);
        let message = formatter.format("boiler-1", &record(12, event), None);
        let expected: &[u8] = &[
            b"<131>".as_slice(),          // PRI: local0 (16) * 8 + error (3)
            b"1",                         // VERSION
            b" 2026-11-24T02:30:00.123Z", // TIMESTAMP: UTC, milliseconds, Z
            b" bldg-a-gw",                // HOSTNAME: the gateway id
            b" iotmc-gateway",            // APP-NAME
            b" -",                        // PROCID: none
            b" state-transition",         // MSGID: the category
            b" [iotmc@32473",             // SD-ELEMENT opens with its SD-ID
            b" device=\"boiler-1\"",      // the device
            b" seq=\"12\"",               // the record's sequence number
            b" source=\"gateway\"",       // who saw it
            b" code=\"701\"",             // the record's field
            b"]",                         // SD-ELEMENT closes
            b" ",                         // SP before MSG
            &[0xEF, 0xBB, 0xBF],          // BOM: MSG is UTF-8
            b"went offline",              // MSG
        ]
        .concat();
        assert_eq!(
            message.as_bytes(),
            expected,
            "{message:?} != {:?}",
            String::from_utf8_lossy(expected)
        );
    }

    #[test]
    fn an_independent_parser_should_read_back_every_part() {
        let formatter = Rfc5424::new(3, "gw-1");
        let event = Event {
            source: crate::diagnostics::record::Source::Device,
            ..Event::gateway(Severity::Debug, Category::Firmware, "bank B: 1.2.0 ✓")
        }
        .with("tricky", "a \"quoted\" \\ back] slash")
        .with("slot", 2);
        let message = formatter.format("pump-7", &record(4, event), None);
        let parsed = syslog_rfc5424::parse_message(&message).unwrap();
        assert_eq!(parsed.facility, syslog_rfc5424::SyslogFacility::LOG_DAEMON);
        assert_eq!(parsed.severity, syslog_rfc5424::SyslogSeverity::SEV_DEBUG);
        assert_eq!(parsed.version, 1);
        assert_eq!(parsed.timestamp, Some(1_795_487_400));
        assert_eq!(parsed.timestamp_nanos, Some(123_000_000));
        assert_eq!(parsed.hostname.as_deref(), Some("gw-1"));
        assert_eq!(parsed.appname.as_deref(), Some("iotmc-gateway"));
        assert_eq!(parsed.procid, None);
        assert_eq!(parsed.msgid.as_deref(), Some("firmware"));
        let sd = parsed.sd.find_sdid(SD_ID).unwrap();
        assert_eq!(sd["device"], "pump-7");
        assert_eq!(sd["seq"], "4");
        assert_eq!(sd["source"], "device");
        assert_eq!(sd["slot"], "2");
        assert_eq!(sd["tricky"], "a \"quoted\" \\ back] slash");
        assert_eq!(parsed.msg, "\u{feff}bank B: 1.2.0 ✓");
    }

    #[test]
    fn quotes_backslashes_and_brackets_should_be_escaped_in_values() {
        let mut out = String::new();
        escape_sd_value(r#"a"b\c]d[e"#, &mut out);
        assert_eq!(out, r#"a\"b\\c\]d[e"#);
    }

    #[test]
    fn invalid_sd_names_should_be_mapped_or_dropped() {
        assert_eq!(sd_name("error code").as_deref(), Some("error_code"));
        assert_eq!(sd_name("a=b]c\"d").as_deref(), Some("a_b_c_d"));
        assert_eq!(sd_name("température").as_deref(), Some("temp_rature"));
        assert_eq!(sd_name(&"n".repeat(40)).map(|n| n.len()), Some(32));
        assert_eq!(sd_name(""), None);
        // A field named like a fixed parameter, and one that maps onto an earlier field's
        // name, are left out rather than repeated.
        let event = Event::gateway(Severity::Notice, Category::Operational, "m")
            .with("a b", 1)
            .with("a_b", 2)
            .with("device", "spoofed");
        let message = Rfc5424::new(16, "gw").format("real", &record(1, event), None);
        let parsed = syslog_rfc5424::parse_message(&message).unwrap();
        let sd = parsed.sd.find_sdid(SD_ID).unwrap();
        assert_eq!(sd["device"], "real");
        assert_eq!(sd["a_b"], "1");
        assert_eq!(message.matches("a_b=").count(), 1, "{message}");
    }

    #[test]
    fn header_fields_should_be_printable_ascii_or_nil() {
        assert_eq!(header_field("gw 1\tö", 255), "gw_1__");
        assert_eq!(header_field("", 255), "-");
        assert_eq!(Rfc5424::new(16, &"h".repeat(300)).hostname().len(), 255);
        let event = Event::gateway(Severity::Notice, Category::Operational, "m");
        let message = Rfc5424::new(16, "").format("d", &record(1, event), None);
        assert!(
            message.starts_with("<133>1 2026-11-24T02:30:00.123Z - iotmc-gateway - operational [")
        );
    }

    #[test]
    fn a_time_past_year_9999_should_be_the_nilvalue() {
        let event = Event::gateway(Severity::Notice, Category::Operational, "m");
        let record = LogRecord::new(1, u64::MAX, event);
        let message = Rfc5424::new(16, "gw").format("d", &record, None);
        assert!(message.starts_with("<133>1 - gw "), "{message}");
    }

    #[test]
    fn a_message_over_the_udp_limit_should_drop_fields_first_then_cut_at_a_char_boundary() {
        let mut event = Event::gateway(Severity::Error, Category::Error, "é".repeat(500));
        for i in 0..16 {
            event = event.with(&format!("field{i:02}"), "v".repeat(200));
        }
        let full = Rfc5424::new(16, "gw").format("d", &record(1, event.clone()), None);
        assert!(full.len() > UDP_MAX);
        let cut = Rfc5424::new(16, "gw").format("d", &record(1, event.clone()), Some(UDP_MAX));
        assert!(cut.len() <= UDP_MAX, "{}", cut.len());
        let parsed = syslog_rfc5424::parse_message(&cut).unwrap();
        // The whole message is kept; only fields went.
        assert_eq!(parsed.msg, format!("\u{feff}{}", "é".repeat(500)));
        let kept = parsed.sd.find_sdid(SD_ID).unwrap().len() - FIXED_PARAMS.len();
        assert!((1..16).contains(&kept), "{kept} fields kept");
        // A limit too small even for the message cuts it at a character boundary.
        let tiny = Rfc5424::new(16, "gw").format("d", &record(1, event), Some(301));
        assert!(tiny.len() <= 301 && tiny.len() >= 299, "{}", tiny.len());
        assert!(tiny.ends_with('é'));
    }

    #[test]
    fn octet_counting_should_prefix_the_length_in_bytes() {
        assert_eq!(octet_counted("<13>1 ä"), b"8 <13>1 \xC3\xA4".to_vec());
    }
}

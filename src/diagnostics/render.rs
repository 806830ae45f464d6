//! The forms of a page of records: the XML of GetDiagnosticsLog's `Log` argument, JSON lines and
//! plain text for the HTTP endpoint, and the XML of GetLogInfo.
//!
//! The XML (documented in README.md, "Diagnostics log"):
//!
//! ```xml
//! <DiagnosticsLog device="boiler-1" records="1" missed="0" more="0" native="read">
//!   <Record seq="12" time="2026-11-24T02:30:00.123Z" severity="error" source="gateway"
//!           category="error">
//!     <Message>GetValues failed: ...</Message>
//!     <Field name="code">701</Field>
//!   </Record>
//! </DiagnosticsLog>
//! ```

use crate::upnp::xml_text::escape;
use crate::utc::format_ms;

use super::engine::{LogInfo, LogPage, NativeStatus};
use super::record::LogRecord;

fn native_attributes(native: &NativeStatus) -> String {
    match native {
        NativeStatus::None => r#" native="none""#.to_owned(),
        NativeStatus::Read { at_ms: None } => r#" native="unread""#.to_owned(),
        NativeStatus::Read { .. } => r#" native="read""#.to_owned(),
        NativeStatus::NotAttached => r#" native="not-attached""#.to_owned(),
        NativeStatus::Failing(why) => {
            format!(r#" native="failing" nativeError="{}""#, escape(why))
        }
    }
}

/// The `Log` output of GetDiagnosticsLog.
pub fn xml(page: &LogPage) -> String {
    let mut out = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><DiagnosticsLog device="{}" records="{}" missed="{}" more="{}"{}>"#,
        escape(&page.device),
        page.records.len(),
        page.missed,
        u8::from(page.more),
        native_attributes(&page.native),
    );
    for record in &page.records {
        out.push_str(&format!(
            r#"<Record seq="{}" time="{}" severity="{}" source="{}" category="{}"><Message>{}</Message>"#,
            record.seq,
            format_ms(record.at_ms),
            record.severity,
            record.source.as_str(),
            record.category.as_str(),
            escape(&record.message),
        ));
        for (name, value) in &record.fields {
            out.push_str(&format!(
                r#"<Field name="{}">{}</Field>"#,
                escape(name),
                escape(value)
            ));
        }
        out.push_str("</Record>");
    }
    out.push_str("</DiagnosticsLog>");
    out
}

/// JSON lines: one object per record ([`LogRecord::json_line`]).
pub fn jsonl(page: &LogPage) -> String {
    let mut out = String::new();
    for record in &page.records {
        out.push_str(&record.json_line(&page.device));
        out.push('\n');
    }
    out
}

/// Plain text, one line per record:
/// `2026-11-24T02:30:00.123Z error gateway/error #12 GetValues failed: ... code=701`.
/// Line breaks inside messages are shown as `\n` so that one record stays one line.
pub fn text(page: &LogPage) -> String {
    let mut out = String::new();
    for record in &page.records {
        out.push_str(&text_line(record));
        out.push('\n');
    }
    out
}

/// One record as a line of text (no newline).
pub fn text_line(record: &LogRecord) -> String {
    let one_line = |s: &str| {
        // One record per line, and nothing a terminal would act on (a device's message may
        // carry escape sequences).
        let mut out = String::with_capacity(s.len());
        for c in s.chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '\r' => out.push_str("\\r"),
                '\n' => out.push_str("\\n"),
                c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", u32::from(c))),
                c => out.push(c),
            }
        }
        out
    };
    let mut line = format!(
        "{} {} {}/{} #{} {}",
        format_ms(record.at_ms),
        record.severity,
        record.source.as_str(),
        record.category.as_str(),
        record.seq,
        one_line(&record.message)
    );
    for (name, value) in &record.fields {
        line.push_str(&format!(" {}={}", one_line(name), quoted(&one_line(value))));
    }
    line
}

fn quoted(value: &str) -> String {
    if value.is_empty() || value.contains([' ', '"', '=']) {
        format!("\"{}\"", value.replace('"', "\\\""))
    } else {
        value.to_owned()
    }
}

/// The `LogInfo` output of GetLogInfo.
pub fn info_xml(info: &LogInfo, uris: &[String]) -> String {
    let ring = &info.ring;
    let time = |t: Option<u64>| t.map(format_ms).unwrap_or_default();
    let mut out = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><LogInfo device="{}"><Records>{}</Records><Bytes>{}</Bytes><Capacity>{}</Capacity><Oldest>{}</Oldest><Newest>{}</Newest><NewestCursor>{}</NewestCursor><Overwritten>{}</Overwritten><Cleared>{}</Cleared>"#,
        escape(&info.device),
        ring.records,
        ring.bytes,
        ring.capacity,
        time(ring.oldest_ms),
        time(ring.newest_ms),
        info.newest,
        ring.overwritten,
        ring.cleared,
    );
    let (status, error, read_at) = match &info.native {
        NativeStatus::None => ("none", String::new(), None),
        NativeStatus::Read { at_ms: None } => ("unread", String::new(), None),
        NativeStatus::Read { at_ms } => ("read", String::new(), *at_ms),
        NativeStatus::NotAttached => ("not-attached", String::new(), None),
        NativeStatus::Failing(why) => ("failing", why.clone(), None),
    };
    out.push_str(&format!(
        r#"<DeviceLog method="{}" status="{}" fetchInterval="{}" lastRead="{}">{}</DeviceLog>"#,
        escape(&info.native_method),
        status,
        info.fetch_interval
            .map(|d| humantime::format_duration(d).to_string())
            .unwrap_or_default(),
        time(read_at),
        escape(&error),
    ));
    out.push_str("<Exports>");
    for (mark, label) in ring.exports.iter().zip(&info.sinks) {
        out.push_str(&format!(
            r#"<Export sink="{}" exportedThrough="{}" lostBeforeExport="{}"/>"#,
            escape(label),
            mark.exported,
            mark.lost
        ));
    }
    out.push_str("</Exports><URIs>");
    for uri in uris {
        out.push_str(&format!("<URI>{}</URI>", escape(uri)));
    }
    out.push_str("</URIs></LogInfo>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnostics::record::{Category, Cursor, Event, Severity};

    fn page(records: Vec<LogRecord>, native: NativeStatus) -> LogPage {
        LogPage {
            device: "boiler-1".into(),
            records,
            next: Cursor { epoch: 1, seq: 2 },
            missed: 3,
            more: true,
            native,
        }
    }

    fn record() -> LogRecord {
        LogRecord::new(
            12,
            1_795_487_400_123,
            Event::gateway(Severity::Error, Category::Error, "a <b> & \"c\"\nnext line")
                .with("code", 701)
                .with("why", "two words"),
        )
    }

    #[test]
    fn the_xml_should_escape_text_and_carry_every_part() {
        let xml = xml(&page(
            vec![record()],
            NativeStatus::Failing("timed out <5s>".into()),
        ));
        assert!(xml.starts_with(r#"<?xml version="1.0" encoding="UTF-8"?><DiagnosticsLog device="boiler-1" records="1" missed="3" more="1" native="failing" nativeError="timed out &lt;5s&gt;">"#), "{xml}");
        assert!(xml.contains(r#"<Record seq="12" time="2026-11-24T02:30:00.123Z" severity="error" source="gateway" category="error"><Message>a &lt;b&gt; &amp; &quot;c&quot;"#), "{xml}");
        assert!(xml.contains(r#"<Field name="code">701</Field><Field name="why">two words</Field></Record></DiagnosticsLog>"#), "{xml}");
        // Well formed: a real parser reads it back.
        let mut reader = quick_xml::Reader::from_str(&xml);
        let mut records = 0;
        loop {
            match reader.read_event().unwrap() {
                quick_xml::events::Event::Start(e) if e.name().as_ref() == "Record" => records += 1,
                quick_xml::events::Event::Eof => break,
                _ => {}
            }
        }
        assert_eq!(records, 1);
    }

    #[test]
    fn text_should_keep_one_record_on_one_line() {
        let text = text(&page(vec![record(), record()], NativeStatus::None));
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(
            lines[0],
            r#"2026-11-24T02:30:00.123Z error gateway/error #12 a <b> & "c"\nnext line code=701 why="two words""#
        );
    }

    #[test]
    fn text_should_not_pass_control_characters_to_a_terminal() {
        let record = LogRecord::new(
            1,
            0,
            Event::gateway(
                Severity::Error,
                Category::Error,
                "red \u{1b}[31m alert\u{7}",
            ),
        );
        let line = text_line(&record);
        assert!(!line.chars().any(char::is_control), "{line:?}");
        assert!(line.contains("red \\u{1b}[31m alert\\u{7}"), "{line}");
    }

    #[test]
    fn json_lines_should_hold_one_object_per_record() {
        let jsonl = jsonl(&page(vec![record(), record()], NativeStatus::None));
        for line in jsonl.lines() {
            let value: serde_json::Value = serde_json::from_str(line).unwrap();
            assert_eq!(value["device"], "boiler-1");
        }
        assert_eq!(jsonl.lines().count(), 2);
    }
}

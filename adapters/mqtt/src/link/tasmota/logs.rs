//! The device's log lines (`stat/<topic>/LOGGING`) as records for the link's [`LogRing`]:
//! Tasmota publishes each line once, keeps no log it could be asked for again, and prints only
//! its time of day, which is kept as the field `device_time` (the record's time is when the
//! line arrived). Clearing empties the ring; there is nothing on the device to clear.
//!
//! [`LogRing`]: crate::link::LogRing

use std::collections::BTreeMap;

use iotmc_adapter::DeviceLogRecord;

use crate::codec::tasmota::LogLine;

/// A collected line as a log record.
pub(super) fn record(line: LogLine) -> DeviceLogRecord {
    let mut fields = BTreeMap::new();
    if let Some(time) = line.device_time {
        fields.insert("device_time".to_owned(), time);
    }
    if let Some(tag) = line.tag {
        fields.insert("tag".to_owned(), tag);
    }
    DeviceLogRecord {
        index: None,
        timestamp: None,
        severity: line.severity,
        message: line.message,
        fields,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use iotmc_adapter::Severity;

    #[test]
    fn a_line_should_keep_its_device_time_and_tag_as_fields() {
        let record = record(LogLine {
            device_time: Some("12:00:00.000".into()),
            tag: Some("APP".into()),
            message: "Restarting".into(),
            severity: Severity::Notice,
        });
        assert_eq!(record.fields["device_time"], "12:00:00.000");
        assert_eq!(record.fields["tag"], "APP");
        assert_eq!(record.message, "Restarting");
        assert_eq!(record.severity, Severity::Notice);
    }
}

//! Serial-line diagnostics as log records: the communication event log (FC 0x0C, one record per
//! event byte) and the diagnostic counters (FC 0x08, a record when one rose), per *MODBUS
//! Application Protocol V1.1b3* §6.8–6.9.

use std::collections::{BTreeMap, BTreeSet};

use iotmc_adapter::{DeviceLogRecord, LinkError, Severity};

use crate::driver::Priority;
use crate::frame::{CommEventLog, ExceptionCode, Request, Response, diagnostic};
use crate::link::Device;
use crate::link::ops::refused;

/// The counters read, with their meaning and whether a rise means trouble.
const COUNTERS: [(u16, &str, bool); 6] = [
    (diagnostic::BUS_MESSAGE_COUNT, "bus messages", false),
    (
        diagnostic::BUS_COMMUNICATION_ERROR_COUNT,
        "bus communication errors (CRC)",
        true,
    ),
    (
        diagnostic::BUS_EXCEPTION_ERROR_COUNT,
        "exception responses",
        true,
    ),
    (
        diagnostic::SERVER_NO_RESPONSE_COUNT,
        "messages left unanswered",
        true,
    ),
    (diagnostic::SERVER_BUSY_COUNT, "busy responses", true),
    (
        diagnostic::BUS_CHARACTER_OVERRUN_COUNT,
        "character overruns",
        true,
    ),
];

/// What the last fetch saw, to report only what is new.
#[derive(Debug, Default)]
pub(super) struct SerialState {
    /// Counter values by sub-function.
    counters: BTreeMap<u16, u16>,
    /// The message count of the last comm event log.
    message_count: Option<u16>,
    /// Functions (0x0C) and sub-functions (0x08 / n) the device answered exception 01 to.
    unsupported: BTreeSet<(u8, u16)>,
}

/// The meaning of one comm event byte (§6.9), and how much it matters.
pub(super) fn comm_event(byte: u8) -> (Severity, String) {
    let flags = |names: &[(u8, &'static str)]| -> Vec<&'static str> {
        names
            .iter()
            .filter(|(bit, _)| byte & (1 << bit) != 0)
            .map(|(_, name)| *name)
            .collect()
    };
    let with = |what: &str, flags: &[&str]| {
        if flags.is_empty() {
            what.to_owned()
        } else {
            format!("{what}: {}", flags.join(", "))
        }
    };
    if byte & 0x80 != 0 {
        let set = flags(&[
            (1, "communication error"),
            (4, "character overrun"),
            (5, "listen only mode"),
            (6, "broadcast received"),
        ]);
        let severity = if byte & 0x12 != 0 {
            Severity::Warning
        } else {
            Severity::Debug
        };
        (severity, with("receive event", &set))
    } else if byte & 0x40 != 0 {
        let set = flags(&[
            (0, "read exception sent (codes 1-3)"),
            (1, "server abort exception sent (code 4)"),
            (2, "server busy exception sent (codes 5-6)"),
            (3, "server program NAK exception sent (code 7)"),
            (4, "write timeout"),
            (5, "listen only mode"),
        ]);
        let severity = if byte & 0x1F != 0 {
            Severity::Warning
        } else {
            Severity::Debug
        };
        (severity, with("send event", &set))
    } else if byte == 0x04 {
        (Severity::Notice, "entered listen only mode".to_owned())
    } else if byte == 0x00 {
        (Severity::Notice, "communication restart".to_owned())
    } else {
        (
            Severity::Debug,
            format!("unknown communication event 0x{byte:02X}"),
        )
    }
}

/// Event bytes new since the last fetch, oldest first. The device keeps the newest 64 and logs
/// about two per message (receive, send), so the message count's rise tells how many are new.
pub(super) fn new_events(log: &CommEventLog, previous_message_count: Option<u16>) -> Vec<u8> {
    let fresh = match previous_message_count {
        None => log.events.len(),
        Some(before) => {
            let messages = usize::from(log.message_count.wrapping_sub(before));
            messages.saturating_mul(2).min(log.events.len())
        }
    };
    log.events.iter().take(fresh).rev().copied().collect()
}

/// Reads the diagnostics and turns what is new into records. `from_start` reports everything
/// the device holds (a fetch with no cursor). Returns the records and the message count seen.
pub(super) async fn fetch(
    device: &Device,
    state: &std::sync::RwLock<SerialState>,
    from_start: bool,
) -> Result<(Vec<DeviceLogRecord>, Option<u16>), LinkError> {
    let (mut previous_count, mut before, unsupported) = {
        let s = state
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        (s.message_count, s.counters.clone(), s.unsupported.clone())
    };
    if from_start {
        previous_count = None;
        before.clear();
    }
    let mut records = Vec::new();
    let mut refused_now = BTreeSet::new();
    let mut message_count = None;
    if !unsupported.contains(&(0x0C, 0)) {
        match device
            .call_raw(Request::GetCommEventLog, Priority::Management)
            .await?
        {
            Ok(Response::GetCommEventLog(log)) => {
                for byte in new_events(&log, previous_count) {
                    let (severity, message) = comm_event(byte);
                    records.push(record(
                        severity,
                        message,
                        [
                            ("source", "comm-event-log".to_owned()),
                            ("event", format!("0x{byte:02X}")),
                        ],
                    ));
                }
                message_count = Some(log.message_count);
            }
            Ok(other) => {
                return Err(LinkError::Malformed(format!(
                    "Get Comm Event Log (FC 0x0C) answered with {other:?}"
                )));
            }
            Err(ExceptionCode::IllegalFunction) => {
                refused_now.insert((0x0C, 0));
            }
            Err(code) => {
                return Err(refused(
                    code,
                    "reading the communication event log (FC 0x0C)",
                ));
            }
        }
    }
    let mut seen = BTreeMap::new();
    for (sub_function, name, trouble) in COUNTERS {
        if unsupported.contains(&(0x08, sub_function)) {
            continue;
        }
        let request = Request::Diagnostics {
            sub_function,
            data: 0,
        };
        let count = match device.call_raw(request, Priority::Management).await? {
            Ok(Response::Diagnostics { data, .. }) => data,
            Ok(other) => {
                return Err(LinkError::Malformed(format!(
                    "Diagnostics (FC 0x08 / 0x{sub_function:04X}) answered with {other:?}"
                )));
            }
            Err(ExceptionCode::IllegalFunction) => {
                refused_now.insert((0x08, sub_function));
                continue;
            }
            Err(code) => {
                return Err(refused(
                    code,
                    &format!("reading the {name} counter (FC 0x08 / 0x{sub_function:04X})"),
                ));
            }
        };
        seen.insert(sub_function, count);
        let previous = before.get(&sub_function).copied().unwrap_or(0);
        // A counter below its last value was cleared (or the device restarted).
        let base = if count < previous { 0 } else { previous };
        if count > base {
            let severity = if trouble {
                Severity::Warning
            } else {
                Severity::Informational
            };
            records.push(record(
                severity,
                format!("serial line: {name} rose from {base} to {count}"),
                [
                    ("source", "diagnostic-counters".to_owned()),
                    ("counter", name.to_owned()),
                    ("count", count.to_string()),
                    ("increase", (count - base).to_string()),
                ],
            ));
        }
    }
    let mut s = state
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    for (function, sub_function) in refused_now {
        if s.unsupported.insert((function, sub_function)) {
            tracing::debug!(
                device = %device.device_id,
                function,
                sub_function,
                "the device does not support this serial diagnostic (exception 01); skipping it from now on"
            );
        }
    }
    s.counters.extend(seen);
    if message_count.is_some() {
        s.message_count = message_count;
    }
    let cursor = message_count.or_else(|| s.counters.get(&diagnostic::BUS_MESSAGE_COUNT).copied());
    Ok((records, cursor))
}

fn record<const N: usize>(
    severity: Severity,
    message: String,
    fields: [(&str, String); N],
) -> DeviceLogRecord {
    DeviceLogRecord {
        index: None,
        timestamp: None,
        severity,
        message,
        fields: fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn receive_events_name_their_bits() {
        assert_eq!(comm_event(0x80), (Severity::Debug, "receive event".into()));
        assert_eq!(
            comm_event(0x80 | 0x40),
            (Severity::Debug, "receive event: broadcast received".into())
        );
        assert_eq!(
            comm_event(0x80 | 0x02 | 0x10),
            (
                Severity::Warning,
                "receive event: communication error, character overrun".into()
            )
        );
        assert_eq!(
            comm_event(0x80 | 0x20),
            (Severity::Debug, "receive event: listen only mode".into())
        );
    }

    #[test]
    fn send_events_name_the_exceptions_sent() {
        assert_eq!(comm_event(0x40), (Severity::Debug, "send event".into()));
        assert_eq!(
            comm_event(0x40 | 0x01),
            (
                Severity::Warning,
                "send event: read exception sent (codes 1-3)".into()
            )
        );
        assert_eq!(
            comm_event(0x40 | 0x04 | 0x10),
            (
                Severity::Warning,
                "send event: server busy exception sent (codes 5-6), write timeout".into()
            )
        );
    }

    #[test]
    fn listen_only_and_restart_are_0x04_and_0x00_as_the_specification_says() {
        assert_eq!(
            comm_event(0x04),
            (Severity::Notice, "entered listen only mode".into())
        );
        assert_eq!(
            comm_event(0x00),
            (Severity::Notice, "communication restart".into())
        );
        assert_eq!(comm_event(0x21).1, "unknown communication event 0x21");
    }

    #[test]
    fn new_events_are_the_newest_by_message_count_oldest_first() {
        let log = CommEventLog {
            status: 0,
            event_count: 10,
            message_count: 12,
            // Newest first.
            events: vec![0x40, 0x80, 0x41, 0x80, 0x40, 0x80],
        };
        assert_eq!(
            new_events(&log, None),
            vec![0x80, 0x40, 0x80, 0x41, 0x80, 0x40]
        );
        assert_eq!(new_events(&log, Some(11)), vec![0x80, 0x40]);
        assert_eq!(new_events(&log, Some(12)), Vec::<u8>::new());
        // The count wrapped or was cleared: everything held is new.
        assert_eq!(new_events(&log, Some(65_000)).len(), 6);
    }
}

//! A log request as controllers write it (GetDiagnosticsLog's arguments, the HTTP endpoint's
//! query), checked once for both.

use super::record::{Cursor, parse_severity};
use super::ring::Filter;

/// A checked log request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogRequest {
    /// Which records.
    pub filter: Filter,
    /// Where to continue; `None` from the oldest record held.
    pub cursor: Option<Cursor>,
}

/// The request's arguments as text; empty means "not given".
#[derive(Debug, Clone, Copy, Default)]
pub struct RequestText<'a> {
    /// `MinimumSeverity`: a name (`error`), a number (`3`) or empty for all.
    pub min_severity: &'a str,
    /// `StartTime`: UTC, inclusive.
    pub start: &'a str,
    /// `EndTime`: UTC, exclusive.
    pub end: &'a str,
    /// `MaximumRecords`: 0 or empty for the gateway's limit.
    pub max: &'a str,
    /// `Cursor`: a `NextCursor` from an earlier answer, or empty.
    pub cursor: &'a str,
}

impl LogRequest {
    /// Checks `text`; `limit` is the most records one request returns
    /// (`[diagnostics] max_records`). The error names the argument and the form expected.
    pub fn parse(text: &RequestText<'_>, limit: usize) -> Result<Self, String> {
        let min_severity = match text.min_severity.trim() {
            "" => None,
            s => Some(parse_severity(s).ok_or_else(|| {
                format!(
                    "MinimumSeverity `{}` is not a syslog severity; use emergency, alert, critical, error, warning, notice, informational or debug (or 0 to 7)",
                    shown(s)
                )
            })?),
        };
        let time = |name: &str, value: &str| -> Result<Option<u64>, String> {
            match value.trim() {
                "" => Ok(None),
                t => crate::utc::parse(t)
                    .map(|at| Some(crate::utc::unix_ms(at)))
                    .map_err(|why| format!("{name} {why}")),
            }
        };
        let start_ms = time("StartTime", text.start)?;
        let end_ms = time("EndTime", text.end)?;
        if let (Some(start), Some(end)) = (start_ms, end_ms)
            && end <= start
        {
            return Err(
                "EndTime must be after StartTime (StartTime is inclusive, EndTime exclusive)"
                    .into(),
            );
        }
        let max = match text.max.trim() {
            "" | "0" => limit,
            n => n
                .parse::<u64>()
                .map_err(|_| {
                    format!(
                        "MaximumRecords `{}` is not a number; give 1 to {limit}, or 0 for {limit}",
                        shown(n)
                    )
                })?
                .min(limit as u64) as usize,
        };
        let cursor = match text.cursor.trim() {
            "" => None,
            c => Some(Cursor::parse(c).ok_or_else(|| {
                format!(
                    "Cursor `{}` is not a cursor this gateway handed out; pass NextCursor from an earlier answer unchanged, or leave it empty to start from the oldest record",
                    shown(c)
                )
            })?),
        };
        Ok(Self {
            filter: Filter {
                min_severity,
                start_ms,
                end_ms,
                max,
            },
            cursor,
        })
    }
}

fn shown(text: &str) -> String {
    text.chars().take(64).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnostics::Severity;

    #[test]
    fn empty_arguments_should_ask_for_everything_up_to_the_limit() {
        let request = LogRequest::parse(&RequestText::default(), 500).unwrap();
        assert_eq!(request.filter, Filter::all(500));
        assert_eq!(request.cursor, None);
    }

    #[test]
    fn every_argument_should_be_read() {
        let request = LogRequest::parse(
            &RequestText {
                min_severity: "warning",
                start: "2026-11-24T00:00:00Z",
                end: "2026-11-25T00:00:00Z",
                max: "20",
                cursor: "1a-7",
            },
            500,
        )
        .unwrap();
        assert_eq!(request.filter.min_severity, Some(Severity::Warning));
        assert_eq!(request.filter.start_ms, Some(1_795_478_400_000));
        assert_eq!(request.filter.end_ms, Some(1_795_564_800_000));
        assert_eq!(request.filter.max, 20);
        assert_eq!(
            request.cursor,
            Some(Cursor {
                epoch: 0x1a,
                seq: 7
            })
        );
    }

    #[test]
    fn a_maximum_above_the_limit_should_be_capped() {
        let request = LogRequest::parse(
            &RequestText {
                max: "99999",
                ..RequestText::default()
            },
            500,
        )
        .unwrap();
        assert_eq!(request.filter.max, 500);
    }

    #[test]
    fn bad_arguments_should_be_named_in_the_error() {
        let cases = [
            (
                RequestText {
                    min_severity: "loud",
                    ..Default::default()
                },
                "MinimumSeverity",
            ),
            (
                RequestText {
                    start: "yesterday",
                    ..Default::default()
                },
                "StartTime",
            ),
            (
                RequestText {
                    end: "2026-11-24T00:00:00+02:00",
                    ..Default::default()
                },
                "UTC",
            ),
            (
                RequestText {
                    max: "-1",
                    ..Default::default()
                },
                "MaximumRecords",
            ),
            (
                RequestText {
                    cursor: "zz",
                    ..Default::default()
                },
                "Cursor",
            ),
            (
                RequestText {
                    start: "2026-11-25T00:00:00Z",
                    end: "2026-11-24T00:00:00Z",
                    ..Default::default()
                },
                "EndTime must be after StartTime",
            ),
        ];
        for (text, expected) in cases {
            let error = LogRequest::parse(&text, 500).unwrap_err();
            assert!(error.contains(expected), "{error}");
        }
    }
}

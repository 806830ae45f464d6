//! UTC times as controllers write them (`2026-11-24T02:30:00Z`), shared by every action and URL
//! that takes a time.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Parses a UTC time like `2026-11-24T02:30:00Z` (fractional seconds allowed, the `Z` may be
/// left out). A zone offset is refused rather than silently misread; the error says why and
/// shows the expected form.
pub fn parse(text: &str) -> Result<SystemTime, String> {
    let text = text.trim();
    let shown = || text.chars().take(64).collect::<String>();
    if text.contains('+') || text.get(19..).is_some_and(|rest| rest.contains('-')) {
        return Err(format!(
            "`{}` has a zone offset; give the time in UTC, e.g. 2026-11-24T02:30:00Z",
            shown()
        ));
    }
    humantime::parse_rfc3339_weak(text.trim_end_matches('Z')).map_err(|e| {
        format!(
            "`{}` is not a UTC time like 2026-11-24T02:30:00Z: {e}",
            shown()
        )
    })
}

/// Milliseconds since the Unix epoch (0 before it, saturating far after).
pub fn unix_ms(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The inverse of [`unix_ms`].
pub fn from_unix_ms(ms: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms)
}

/// RFC 3339 with milliseconds, `2026-11-24T02:30:00.123Z`; times past year 9999 (only from a
/// corrupt source) are written as milliseconds instead of panicking.
pub fn format_ms(ms: u64) -> String {
    format_with(ms, |t| humantime::format_rfc3339_millis(t).to_string())
}

/// RFC 3339 to the second, `2026-11-24T02:30:00Z` (the UPnP dateTime form); the same guard as
/// [`format_ms`].
pub fn format_seconds(ms: u64) -> String {
    format_with(ms, |t| humantime::format_rfc3339_seconds(t).to_string())
}

fn format_with(ms: u64, format: impl FnOnce(SystemTime) -> String) -> String {
    const YEAR_10000_MS: u64 = 253_402_300_800_000;
    match UNIX_EPOCH.checked_add(Duration::from_millis(ms)) {
        Some(time) if ms < YEAR_10000_MS => format(time),
        _ => format!("{ms} ms after 1970-01-01 UTC"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_should_be_utc() {
        assert!(parse("2026-11-24T02:30:00Z").is_ok());
        assert!(parse("2026-11-24T02:30:00").is_ok());
        assert!(parse("2026-11-24T02:30:00.250Z").is_ok());
        let offset = parse("2026-11-24T02:30:00+01:00").unwrap_err();
        assert!(offset.contains("UTC"), "{offset}");
        assert!(parse("tomorrow").is_err());
    }

    #[test]
    fn millisecond_times_should_round_trip() {
        let at = parse("2026-11-24T02:30:00.250Z").unwrap();
        assert_eq!(format_ms(unix_ms(at)), "2026-11-24T02:30:00.250Z");
        assert!(format_ms(u64::MAX).contains("ms after"));
        assert_eq!(format_seconds(unix_ms(at)), "2026-11-24T02:30:00Z");
        assert!(format_seconds(u64::MAX).contains("ms after"));
    }
}

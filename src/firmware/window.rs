//! Weekly maintenance windows in UTC.
//!
//! A window opens on each listed weekday at `start_minute` and stays open `duration_s`, so one
//! may run past midnight or last several days; windows of neighbouring days that overlap join
//! into one. Weekdays are counted from the days since the Unix epoch (1970-01-01 was a
//! Thursday); there are no time zones and no leap seconds, as in Unix time itself.
//!
//! The struct is persisted with each update, so its fields may come from an old or edited
//! database: a window with no valid day (0–6), a start at or past midnight or no duration never
//! opens, and nothing here panics on it.

use serde::{Deserialize, Serialize};

use super::UnixMs;
use crate::config::{MaintenanceWindow, Weekday};

const MINUTE_MS: u64 = 60_000;
const DAY_MS: u64 = 24 * 60 * MINUTE_MS;
const WEEK_MS: u64 = 7 * DAY_MS;
/// 1970-01-01 was a Thursday: day 0 since the epoch is weekday 3 (Monday = 0).
const EPOCH_WEEKDAY: u64 = 3;

/// A weekly window, as the state machine keeps it (persisted with the update).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowSpec {
    /// Days it opens on, 0 = Monday … 6 = Sunday.
    pub days: Vec<u8>,
    /// Opening time, minutes after midnight UTC.
    pub start_minute: u16,
    /// How long it stays open, in seconds.
    pub duration_s: u64,
}

impl WindowSpec {
    /// From the config's window (whose `start` the config check has validated); `None` when
    /// `start` is not an `HH:MM` time. A duration with a fraction of a second is rounded up.
    pub fn from_config(window: &MaintenanceWindow) -> Option<Self> {
        let start_minute = window.start_minute()?;
        let mut days: Vec<u8> = window.days.iter().map(|day| day_number(*day)).collect();
        days.sort_unstable();
        days.dedup();
        let whole = window.duration.as_secs();
        let duration_s = if window.duration.subsec_nanos() > 0 {
            whole.saturating_add(1)
        } else {
            whole
        };
        Some(Self {
            days,
            start_minute,
            duration_s,
        })
    }

    /// `at` itself when a window is open at `at` (including one that opened on an earlier day
    /// and is still open), else the next opening after it. [`UnixMs::MAX`] when the window
    /// never opens (no valid day, a start past midnight, or no duration).
    pub fn open_at_or_after(&self, at: UnixMs) -> UnixMs {
        if !self.opens() {
            return UnixMs::MAX;
        }
        if self.is_open_at(at) {
            return at;
        }
        self.next_opening_after(at).unwrap_or(UnixMs::MAX)
    }

    /// When the window open at `at` closes, if one is open. Windows that overlap join, so this
    /// is the end of the whole open stretch; [`UnixMs::MAX`] when the stretch never ends (for
    /// example a window of 7 days, or one of 24 hours every day).
    pub fn closes_after(&self, at: UnixMs) -> Option<UnixMs> {
        if !self.opens() {
            return None;
        }
        let opened = self.last_opening_at_or_before(at)?;
        let mut closes = opened.saturating_add(self.duration_ms());
        if at >= closes {
            return None;
        }
        // The openings are weekly, so a stretch that reaches the same opening a week later
        // goes on for ever.
        let a_week_later = opened.saturating_add(WEEK_MS);
        let mut cursor = opened;
        while let Some(next) = self.next_opening_after(cursor) {
            if next > closes {
                break;
            }
            if next >= a_week_later {
                return Some(UnixMs::MAX);
            }
            closes = closes.max(next.saturating_add(self.duration_ms()));
            cursor = next;
        }
        Some(closes)
    }

    /// Whether this window ever opens.
    fn opens(&self) -> bool {
        self.duration_s > 0
            && u64::from(self.start_minute) * MINUTE_MS < DAY_MS
            && self.days.iter().any(|day| *day < 7)
    }

    fn duration_ms(&self) -> u64 {
        self.duration_s.saturating_mul(1000)
    }

    fn is_open_at(&self, at: UnixMs) -> bool {
        self.last_opening_at_or_before(at)
            .is_some_and(|opened| at < opened.saturating_add(self.duration_ms()))
    }

    /// The opening on day `day` since the epoch, if the window opens that weekday.
    fn opening_on(&self, day: u64) -> Option<UnixMs> {
        let weekday = (day + EPOCH_WEEKDAY) % 7;
        if !self.days.iter().any(|d| u64::from(*d) == weekday) {
            return None;
        }
        day.checked_mul(DAY_MS)?
            .checked_add(u64::from(self.start_minute) * MINUTE_MS)
    }

    /// The latest opening at or before `at`: the one whose window would be open now. Only the
    /// latest matters, since every opening lasts as long.
    fn last_opening_at_or_before(&self, at: UnixMs) -> Option<UnixMs> {
        let today = at / DAY_MS;
        (0..=7)
            .filter_map(|back| today.checked_sub(back))
            .filter_map(|day| self.opening_on(day))
            .find(|opening| *opening <= at)
    }

    /// The first opening strictly after `at`.
    fn next_opening_after(&self, at: UnixMs) -> Option<UnixMs> {
        let today = at / DAY_MS;
        (0..=7)
            .filter_map(|ahead| today.checked_add(ahead))
            .filter_map(|day| self.opening_on(day))
            .find(|opening| *opening > at)
    }
}

fn day_number(day: Weekday) -> u8 {
    match day {
        Weekday::Mon => 0,
        Weekday::Tue => 1,
        Weekday::Wed => 2,
        Weekday::Thu => 3,
        Weekday::Fri => 4,
        Weekday::Sat => 5,
        Weekday::Sun => 6,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;

    const HOUR_S: u64 = 3600;

    /// UTC milliseconds of an RFC 3339 time such as `2024-01-01T02:30:00Z`.
    fn utc(text: &str) -> UnixMs {
        let time = humantime::parse_rfc3339(text).unwrap();
        u64::try_from(time.duration_since(UNIX_EPOCH).unwrap().as_millis()).unwrap()
    }

    fn window(days: &[u8], start: &str, duration_s: u64) -> WindowSpec {
        let (h, m) = start.split_once(':').unwrap();
        WindowSpec {
            days: days.to_vec(),
            start_minute: h.parse::<u16>().unwrap() * 60 + m.parse::<u16>().unwrap(),
            duration_s,
        }
    }

    // 2024-01-01 was a Monday.
    const MON: u8 = 0;
    const TUE: u8 = 1;
    const WED: u8 = 2;
    const THU: u8 = 3;
    const FRI: u8 = 4;
    const SUN: u8 = 6;
    const WORKDAYS: [u8; 5] = [MON, TUE, WED, THU, FRI];

    #[test]
    fn the_epoch_counts_as_a_thursday() {
        let thursdays = window(&[THU], "00:00", 60);
        assert_eq!(thursdays.open_at_or_after(0), 0);
        let mondays = window(&[MON], "00:00", 60);
        assert_eq!(mondays.open_at_or_after(0), utc("1970-01-05T00:00:00Z"));
    }

    #[test]
    fn a_time_inside_the_window_is_itself_the_opening_and_the_window_closes_at_its_end() {
        let w = window(&WORKDAYS, "02:00", 2 * HOUR_S);
        let at = utc("2024-01-03T03:15:00Z");
        assert_eq!(w.open_at_or_after(at), at);
        assert_eq!(w.closes_after(at), Some(utc("2024-01-03T04:00:00Z")));
    }

    #[test]
    fn the_opening_instant_is_inside_and_the_closing_instant_is_outside() {
        let w = window(&WORKDAYS, "02:00", 2 * HOUR_S);
        let opening = utc("2024-01-03T02:00:00Z");
        assert_eq!(w.open_at_or_after(opening), opening);
        let closing = utc("2024-01-03T04:00:00Z");
        assert_eq!(w.closes_after(closing), None);
        assert_eq!(w.open_at_or_after(closing), utc("2024-01-04T02:00:00Z"));
    }

    #[test]
    fn a_time_before_the_window_on_a_listed_day_waits_for_that_days_opening() {
        let w = window(&WORKDAYS, "02:00", 2 * HOUR_S);
        let at = utc("2024-01-03T01:59:59Z");
        assert_eq!(w.open_at_or_after(at), utc("2024-01-03T02:00:00Z"));
        assert_eq!(w.closes_after(at), None);
    }

    #[test]
    fn a_time_after_the_window_waits_for_the_next_listed_day_skipping_unlisted_ones() {
        let w = window(&WORKDAYS, "02:00", 2 * HOUR_S);
        let friday_evening = utc("2024-01-05T18:00:00Z");
        assert_eq!(
            w.open_at_or_after(friday_evening),
            utc("2024-01-08T02:00:00Z")
        );
    }

    #[test]
    fn a_window_that_runs_past_midnight_is_open_on_the_next_day_even_if_that_day_is_not_listed() {
        let w = window(&[MON], "23:00", 2 * HOUR_S);
        let tuesday_early = utc("2024-01-02T00:30:00Z");
        assert_eq!(w.open_at_or_after(tuesday_early), tuesday_early);
        assert_eq!(
            w.closes_after(tuesday_early),
            Some(utc("2024-01-02T01:00:00Z"))
        );
        let tuesday_later = utc("2024-01-02T01:00:00Z");
        assert_eq!(
            w.open_at_or_after(tuesday_later),
            utc("2024-01-08T23:00:00Z")
        );
    }

    #[test]
    fn a_sunday_window_stays_open_into_monday_across_the_week_end() {
        let w = window(&[SUN], "22:00", 4 * HOUR_S);
        let monday_early = utc("2024-01-08T01:00:00Z");
        assert_eq!(w.open_at_or_after(monday_early), monday_early);
        assert_eq!(
            w.closes_after(monday_early),
            Some(utc("2024-01-08T02:00:00Z"))
        );
        let monday_later = utc("2024-01-08T03:00:00Z");
        assert_eq!(
            w.open_at_or_after(monday_later),
            utc("2024-01-14T22:00:00Z")
        );
    }

    #[test]
    fn a_window_of_several_days_is_open_on_the_days_after_its_opening() {
        let w = window(&[FRI], "18:00", 3 * 24 * HOUR_S);
        let sunday = utc("2024-01-07T12:00:00Z");
        assert_eq!(w.open_at_or_after(sunday), sunday);
        assert_eq!(w.closes_after(sunday), Some(utc("2024-01-08T18:00:00Z")));
    }

    #[test]
    fn a_single_day_window_missed_by_a_minute_waits_a_whole_week() {
        let w = window(&[WED], "10:00", HOUR_S);
        let at = utc("2024-01-03T11:01:00Z");
        assert_eq!(w.open_at_or_after(at), utc("2024-01-10T10:00:00Z"));
    }

    #[test]
    fn a_window_lasting_seven_days_is_always_open_and_never_closes() {
        let w = window(&[THU], "06:00", 7 * 24 * HOUR_S);
        let start = utc("2024-01-01T00:00:00Z");
        for minute in (0..7 * 24 * 60).step_by(37) {
            let at = start + minute * MINUTE_MS;
            assert_eq!(w.open_at_or_after(at), at, "closed at minute {minute}");
            assert_eq!(w.closes_after(at), Some(UnixMs::MAX));
        }
    }

    #[test]
    fn overlapping_windows_of_neighbouring_days_close_at_the_end_of_the_last_one() {
        let w = window(&[MON, TUE], "12:00", 30 * HOUR_S);
        let monday = utc("2024-01-01T13:00:00Z");
        assert_eq!(w.closes_after(monday), Some(utc("2024-01-03T18:00:00Z")));
    }

    #[test]
    fn a_daily_window_of_a_whole_day_never_closes() {
        let w = window(&[0, 1, 2, 3, 4, 5, 6], "03:00", 24 * HOUR_S);
        let at = utc("2024-01-04T09:00:00Z");
        assert_eq!(w.open_at_or_after(at), at);
        assert_eq!(w.closes_after(at), Some(UnixMs::MAX));
    }

    #[test]
    fn a_window_with_no_valid_day_or_no_duration_or_a_start_past_midnight_never_opens() {
        let at = utc("2024-01-04T09:00:00Z");
        for w in [
            window(&[], "03:00", HOUR_S),
            window(&[7, 200], "03:00", HOUR_S),
            window(&[MON], "03:00", 0),
            WindowSpec {
                days: vec![MON],
                start_minute: 24 * 60,
                duration_s: HOUR_S,
            },
        ] {
            assert_eq!(w.open_at_or_after(at), UnixMs::MAX, "{w:?}");
            assert_eq!(w.closes_after(at), None, "{w:?}");
        }
    }

    #[test]
    fn times_at_the_ends_of_the_clock_do_not_panic() {
        let w = window(&[0, 1, 2, 3, 4, 5, 6], "23:59", u64::MAX);
        for at in [0, 1, UnixMs::MAX - 1, UnixMs::MAX] {
            let _ = w.open_at_or_after(at);
            let _ = w.closes_after(at);
        }
        let w = window(&[SUN], "23:59", 60);
        assert_eq!(w.open_at_or_after(UnixMs::MAX), UnixMs::MAX);
    }

    #[test]
    fn the_config_window_maps_days_to_numbers_from_monday_and_start_to_minutes() {
        let config = MaintenanceWindow {
            days: vec![Weekday::Sun, Weekday::Mon, Weekday::Wed, Weekday::Mon],
            start: "02:30".into(),
            duration: Duration::from_millis(90 * 60 * 1000 + 1),
        };
        assert_eq!(
            WindowSpec::from_config(&config),
            Some(WindowSpec {
                days: vec![MON, WED, SUN],
                start_minute: 150,
                duration_s: 90 * 60 + 1,
            })
        );
    }

    #[test]
    fn a_config_window_with_an_invalid_start_gives_no_window() {
        for start in ["2:30", "24:00", "02:60", "noon", ""] {
            let config = MaintenanceWindow {
                days: vec![Weekday::Mon],
                start: start.into(),
                duration: Duration::from_secs(3600),
            };
            assert_eq!(WindowSpec::from_config(&config), None, "{start:?}");
        }
    }
}

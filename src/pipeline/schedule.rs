//! Fire times of pipeline schedules: 5-field cron in an IANA time zone,
//! correct across daylight-saving (DST) changes.
//!
//! Why this thin layer instead of tokio-cron-scheduler: that crate keeps a
//! fixed UTC offset per job (its issue #107) and wants 6-field cron, so a job
//! at 02:30 daily in Europe/Berlin drifts by an hour after a DST change and is
//! skipped or doubled on change days. Here the cron parser (`croner`) finds
//! candidate times in local wall-clock time, with no zone attached, and only
//! then are they mapped to instants with `chrono-tz`:
//!
//! - a wall-clock time that does not exist (spring forward) fires at the first
//!   instant after the gap, so `30 2 * * *` still fires once that day;
//! - a wall-clock time that occurs twice (fall back) fires once, at the earlier
//!   instant, unless the hour field starts with `*` (`0 * * * *`,
//!   `*/15 * * * *`, `0 */2 * * *`, `@hourly`): such jobs follow real time and
//!   fire at both instants (Vixie cron's rule);
//! - fire times strictly increase: wall-clock times that map to the same
//!   instant fire once (`*/15 2 * * *` fires once, at 03:00, on a Berlin
//!   spring-forward day).

use chrono::{DateTime, LocalResult, NaiveDateTime, TimeDelta, TimeZone, Utc};
use chrono_tz::{GapInfo, Tz};
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};

/// Why an expression or time zone was rejected; the message says what is wrong.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct CronError(String);

/// A cron expression bound to a time zone.
#[derive(Debug, Clone)]
pub struct CronSchedule {
    expression: String,
    cron: Cron,
    timezone: Tz,
    /// The hour field starts with `*`: a repeated wall-clock time fires at
    /// both of its instants, not only the earlier one.
    follows_real_time: bool,
}

/// Name and allowed numbers of each of the five fields, in order.
const FIELDS: [(&str, u32, u32); 5] = [
    ("minute", 0, 59),
    ("hour", 0, 23),
    ("day-of-month", 1, 31),
    ("month", 1, 12),
    ("day-of-week", 0, 7),
];
const MONTH_NAMES: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];
const DAY_NAMES: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

impl CronSchedule {
    /// `expr`: standard 5-field cron (minute hour day-of-month month
    /// day-of-week, with `*`, lists, ranges, steps, names like MON/JAN;
    /// day-of-week 0 and 7 are Sunday) or @hourly, @daily (= @midnight),
    /// @weekly, @monthly, @yearly (= @annually). 6-field (seconds)
    /// expressions are rejected. `timezone`: IANA name like "Europe/Berlin"
    /// or "UTC".
    pub fn parse(expr: &str, timezone: &str) -> Result<CronSchedule, CronError> {
        let bad = |why: String| CronError(format!("bad cron expression {expr:?}: {why}"));
        let expanded = expand_nickname(expr.trim()).map_err(bad)?;
        let fields: Vec<&str> = expanded.split_whitespace().collect();
        match fields.len() {
            5 => {}
            n @ (6 | 7) => {
                return Err(bad(format!(
                    "{n} fields, but seconds are not supported: use 5 fields \
                     (minute hour day-of-month month day-of-week)"
                )));
            }
            n => {
                return Err(bad(format!(
                    "expected 5 fields (minute hour day-of-month month day-of-week), got {n}"
                )));
            }
        }
        for (field, &(name, lo, hi)) in fields.iter().zip(&FIELDS) {
            let names: &[&str] = match name {
                "month" => &MONTH_NAMES,
                "day-of-week" => &DAY_NAMES,
                _ => &[],
            };
            check_field(field, name, lo, hi, names).map_err(bad)?;
        }
        let cron = CronParser::builder()
            .seconds(Seconds::Disallowed)
            .year(Year::Disallowed)
            .build()
            .parse(expanded)
            .map_err(|e| bad(e.to_string()))?;
        // croner accepts patterns no date satisfies, such as February 30th.
        if cron
            .find_next_occurrence(&DateTime::UNIX_EPOCH.naive_utc(), false)
            .is_err()
        {
            return Err(bad("it never fires (no date matches)".to_string()));
        }
        let timezone = timezone.parse::<Tz>().map_err(|_| {
            CronError(format!(
                "unknown time zone {timezone:?}: expected an IANA name like \"Europe/Berlin\" or \"UTC\""
            ))
        })?;
        Ok(CronSchedule {
            expression: expr.to_string(),
            cron,
            timezone,
            follows_real_time: fields[1].starts_with('*'),
        })
    }

    /// The first fire time strictly after `after`.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let local = self.wall_clock(after);
        // `first_instant` never decreases as the wall-clock time grows, so
        // the first candidate whose instant lies past `after` is the earliest
        // fire. Candidates whose first instant already passed (when `after`
        // is in the second run of a repeated hour) are skipped.
        let mut candidate = local;
        let first = loop {
            candidate = self.cron.find_next_occurrence(&candidate, false).ok()?;
            let instant = self.first_instant(candidate)?;
            if instant > after {
                break instant;
            }
        };
        if !self.follows_real_time {
            return Some(first);
        }
        // Second instants of repeated wall-clock times. They all come after
        // the first instants of the same repeated stretch, so one can be the
        // next fire only when `after` itself is inside that stretch.
        let LocalResult::Ambiguous(_, later) = self.timezone.from_local_datetime(&local) else {
            return Some(first);
        };
        // The wall-clock time `after` would show under the offset in force
        // after the clock went back: later instants of wall-clock times past
        // it are past `after`.
        let start = local - (later.to_utc() - after);
        let mut candidate = start;
        loop {
            candidate = self.cron.find_next_occurrence(&candidate, false).ok()?;
            match self.timezone.from_local_datetime(&candidate) {
                LocalResult::Ambiguous(_, second) => return Some(first.min(second.to_utc())),
                // Past the repeated stretch: no second instant is left.
                _ if candidate > local => return Some(first),
                // Still before the repeated stretch (`after` is in its first run).
                _ => {}
            }
        }
    }

    /// The latest fire time at or before `at`, or `None` if there is none
    /// (croner searches back to year 1).
    pub fn prev_at_or_before(&self, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let local = self.wall_clock(at);
        // Search down from the latest wall-clock time shown so far. In the
        // second run of a repeated stretch that is not `local` but the time
        // `at` would show under the offset before the clock went back.
        let top = match self.timezone.from_local_datetime(&local) {
            LocalResult::Ambiguous(earlier, _) => local + (at - earlier.to_utc()),
            _ => local,
        };
        let mut candidate = self.cron.find_previous_occurrence(&top, true).ok()?;
        let first = loop {
            let instant = self.first_instant(candidate)?;
            if instant <= at {
                break instant;
            }
            candidate = self.cron.find_previous_occurrence(&candidate, false).ok()?;
        };
        if !self.follows_real_time {
            return Some(first);
        }
        // A second instant beats `first` only if `first` is the earlier
        // instant of a repeated wall-clock time: the second run of that
        // stretch then comes after it. Its latest fire at or before `at` is
        // the latest candidate at or before the wall-clock time `at` shows
        // under the offset after the clock went back.
        let LocalResult::Ambiguous(_, later) = self.timezone.from_local_datetime(&candidate) else {
            return Some(first);
        };
        let top = candidate + (at - later.to_utc());
        let candidate = self.cron.find_previous_occurrence(&top, true).ok()?;
        match self.timezone.from_local_datetime(&candidate) {
            LocalResult::Ambiguous(_, second) if second <= at => Some(first.max(second.to_utc())),
            _ => Some(first),
        }
    }

    /// All fire times in `(after, until]`, oldest first, at most `limit` of
    /// them; when there are more, the last (most recent) `limit` ones. Walks
    /// back from `until`, so the cost follows the number returned, not the
    /// length of the range.
    pub fn fire_times_between(
        &self,
        after: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: usize,
    ) -> Vec<DateTime<Utc>> {
        let mut times = Vec::new();
        let mut cursor = until;
        while times.len() < limit {
            match self.prev_at_or_before(cursor) {
                Some(time) if time > after => {
                    times.push(time);
                    cursor = time - TimeDelta::nanoseconds(1);
                }
                _ => break,
            }
        }
        times.reverse();
        times
    }

    pub fn timezone(&self) -> Tz {
        self.timezone
    }

    pub fn expression(&self) -> &str {
        &self.expression
    }

    fn wall_clock(&self, instant: DateTime<Utc>) -> NaiveDateTime {
        instant.with_timezone(&self.timezone).naive_local()
    }

    /// The first instant at which the wall clock shows `local` or a later
    /// time: the earlier instant of a repeated time, the first instant after
    /// the gap for a time that does not exist.
    fn first_instant(&self, local: NaiveDateTime) -> Option<DateTime<Utc>> {
        match self.timezone.from_local_datetime(&local) {
            LocalResult::Single(instant) | LocalResult::Ambiguous(instant, _) => {
                Some(instant.to_utc())
            }
            // `end` is missing only past the zone's last known transition,
            // which a gap never is.
            LocalResult::None => GapInfo::new(&local, &self.timezone)?
                .end
                .map(|end| end.to_utc()),
        }
    }
}

/// Replaces an @nickname by its 5 fields.
fn expand_nickname(expr: &str) -> Result<&str, String> {
    if !expr.starts_with('@') {
        return Ok(expr);
    }
    Ok(match expr.to_ascii_lowercase().as_str() {
        "@yearly" | "@annually" => "0 0 1 1 *",
        "@monthly" => "0 0 1 * *",
        "@weekly" => "0 0 * * 0",
        "@daily" | "@midnight" => "0 0 * * *",
        "@hourly" => "0 * * * *",
        _ => {
            return Err(format!(
                "unknown nickname {expr} (known: @yearly, @annually, @monthly, @weekly, \
                 @daily, @midnight, @hourly)"
            ));
        }
    })
}

/// Checks the plain numbers and names of one field, which croner reports
/// without naming the field ("Number out of bounds") or gets wrong: it
/// replaces names anywhere in the pattern, so `MON` in the month field would
/// mean January, and it accepts an empty list item that matches nothing.
/// Everything else (steps, croner's `L`, `W`, `#`) is left to croner.
fn check_field(field: &str, name: &str, lo: u32, hi: u32, names: &[&str]) -> Result<(), String> {
    for item in field.split(',') {
        if item.is_empty() {
            return Err(format!("{name} field {field:?} has an empty list item"));
        }
        let range = item.split_once('/').map_or(item, |(range, _step)| range);
        for bound in range.split('-') {
            if let Ok(value) = bound.parse::<u32>() {
                if !(lo..=hi).contains(&value) {
                    return Err(format!("{name} {value} out of range {lo}-{hi}"));
                }
            } else if bound.len() == 3
                && bound.chars().all(|c| c.is_ascii_alphabetic())
                && !names.iter().any(|known| known.eq_ignore_ascii_case(bound))
            {
                return Err(format!("{name} field: unknown name {bound:?}"));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Datelike, NaiveDate, Timelike, Weekday};

    fn schedule(expr: &str, tz: &str) -> CronSchedule {
        CronSchedule::parse(expr, tz).unwrap()
    }

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
    }

    /// Fire times during one local calendar day (midnight exists in the
    /// zones these tests use it with).
    fn fires_on_local_day(s: &CronSchedule, y: i32, m: u32, d: u32) -> Vec<DateTime<Utc>> {
        let day = NaiveDate::from_ymd_opt(y, m, d).unwrap();
        let midnight = |day: NaiveDate| {
            let local = day.and_hms_opt(0, 0, 0).unwrap();
            s.timezone()
                .from_local_datetime(&local)
                .single()
                .unwrap()
                .to_utc()
        };
        let one_ns = TimeDelta::nanoseconds(1);
        let start = midnight(day) - one_ns;
        let end = midnight(day.succ_opt().unwrap()) - one_ns;
        s.fire_times_between(start, end, usize::MAX)
    }

    /// Fire times in `(after, until]` by calling `next_after` repeatedly.
    fn iterate(s: &CronSchedule, after: DateTime<Utc>, until: DateTime<Utc>) -> Vec<DateTime<Utc>> {
        let mut times = Vec::new();
        let mut cursor = after;
        while let Some(next) = s.next_after(cursor).filter(|&t| t <= until) {
            times.push(next);
            cursor = next;
        }
        times
    }

    #[test]
    fn fixed_time_in_berlin_fires_once_on_both_change_days() {
        let s = schedule("30 2 * * *", "Europe/Berlin");
        for day in 28..=31 {
            let fires = fires_on_local_day(&s, 2026, 3, day);
            assert_eq!(fires.len(), 1, "2026-03-{day}: {fires:?}");
        }
        // 02:30 does not exist: the first instant after the gap, 03:00 CEST.
        assert_eq!(
            fires_on_local_day(&s, 2026, 3, 29),
            [utc(2026, 3, 29, 1, 0)]
        );
        assert_eq!(
            fires_on_local_day(&s, 2026, 3, 30),
            [utc(2026, 3, 30, 0, 30)]
        );
        for day in 24..=27 {
            let fires = fires_on_local_day(&s, 2026, 10, day);
            assert_eq!(fires.len(), 1, "2026-10-{day}: {fires:?}");
        }
        // 02:30 occurs twice: the first one, still CEST.
        assert_eq!(
            fires_on_local_day(&s, 2026, 10, 25),
            [utc(2026, 10, 25, 0, 30)]
        );
        assert_eq!(
            fires_on_local_day(&s, 2026, 10, 26),
            [utc(2026, 10, 26, 1, 30)]
        );
        // During the second 02:xx the last fire is still the first 02:30.
        let second_0210 = utc(2026, 10, 25, 1, 10);
        assert_eq!(
            s.prev_at_or_before(second_0210),
            Some(utc(2026, 10, 25, 0, 30))
        );
        assert_eq!(s.next_after(second_0210), Some(utc(2026, 10, 26, 1, 30)));
    }

    #[test]
    fn fixed_time_in_new_york_fires_once_on_both_change_days() {
        // Clocks go 02:00 EST -> 03:00 EDT on 2026-03-08 and 02:00 EDT ->
        // 01:00 EST on 2026-11-01, so 02:30 is in the gap and 01:30 repeats.
        let at_0230 = schedule("30 2 * * *", "America/New_York");
        let at_0130 = schedule("30 1 * * *", "America/New_York");
        for (m, days) in [(3, 7..=10), (10, 31..=31), (11, 1..=3)] {
            for day in days {
                for s in [&at_0230, &at_0130] {
                    let fires = fires_on_local_day(s, 2026, m, day);
                    assert_eq!(
                        fires.len(),
                        1,
                        "{} 2026-{m}-{day}: {fires:?}",
                        s.expression()
                    );
                }
            }
        }
        assert_eq!(
            fires_on_local_day(&at_0230, 2026, 3, 8),
            [utc(2026, 3, 8, 7, 0)]
        );
        assert_eq!(
            fires_on_local_day(&at_0130, 2026, 3, 8),
            [utc(2026, 3, 8, 6, 30)]
        );
        assert_eq!(
            fires_on_local_day(&at_0230, 2026, 11, 1),
            [utc(2026, 11, 1, 7, 30)]
        );
        // 01:30 EDT, the first of the two.
        assert_eq!(
            fires_on_local_day(&at_0130, 2026, 11, 1),
            [utc(2026, 11, 1, 5, 30)]
        );
    }

    #[test]
    fn hourly_follows_real_time_on_change_days() {
        for expr in ["0 * * * *", "@hourly"] {
            let s = schedule(expr, "Europe/Berlin");
            let fall = fires_on_local_day(&s, 2026, 10, 25);
            assert_eq!(fall.len(), 25, "{expr}");
            // 02:00 CEST and 02:00 CET, an hour apart.
            assert!(fall.contains(&utc(2026, 10, 25, 0, 0)));
            assert!(fall.contains(&utc(2026, 10, 25, 1, 0)));
            assert!(fall.windows(2).all(|w| w[1] - w[0] == TimeDelta::hours(1)));
            let spring = fires_on_local_day(&s, 2026, 3, 29);
            assert_eq!(spring.len(), 23, "{expr}");
            assert!(
                spring
                    .windows(2)
                    .all(|w| w[1] - w[0] == TimeDelta::hours(1))
            );
            assert_eq!(fires_on_local_day(&s, 2026, 10, 26).len(), 24);
        }
        let quarterly = schedule("*/15 * * * *", "Europe/Berlin");
        assert_eq!(fires_on_local_day(&quarterly, 2026, 10, 25).len(), 100);
        assert_eq!(fires_on_local_day(&quarterly, 2026, 3, 29).len(), 92);
        // A stepped hour field follows real time too (Vixie's rule).
        let two_hourly = schedule("0 */2 * * *", "Europe/Berlin");
        let fall = fires_on_local_day(&two_hourly, 2026, 10, 25);
        assert_eq!(fall.len(), 13);
        assert_eq!(
            fall[1..3],
            [utc(2026, 10, 25, 0, 0), utc(2026, 10, 25, 1, 0)]
        );
    }

    #[test]
    fn wall_clock_times_mapped_to_one_instant_fire_once() {
        let s = schedule("*/15 2 * * *", "Europe/Berlin");
        assert_eq!(
            fires_on_local_day(&s, 2026, 3, 29),
            [utc(2026, 3, 29, 1, 0)]
        );
        // The hour is fixed, so the repeated 02:xx fire in the first run only.
        let fall: Vec<_> = [0, 15, 30, 45].map(|mi| utc(2026, 10, 25, 0, mi)).into();
        assert_eq!(fires_on_local_day(&s, 2026, 10, 25), fall);
        assert_eq!(fires_on_local_day(&s, 2026, 10, 26).len(), 4);
    }

    #[test]
    fn basics_in_utc() {
        let weekdays = schedule("0 9 * * MON-FRI", "UTC");
        // 2026-01-02 is a Friday.
        let friday = utc(2026, 1, 2, 9, 0);
        assert_eq!(
            weekdays.next_after(friday - TimeDelta::seconds(1)),
            Some(friday)
        );
        assert_eq!(weekdays.next_after(friday), Some(utc(2026, 1, 5, 9, 0)));
        assert_eq!(
            weekdays.prev_at_or_before(utc(2026, 1, 5, 8, 59)),
            Some(friday)
        );
        let week = weekdays.fire_times_between(utc(2026, 1, 4, 0, 0), utc(2026, 1, 11, 0, 0), 10);
        assert_eq!(
            week,
            (5..=9).map(|d| utc(2026, 1, d, 9, 0)).collect::<Vec<_>>()
        );

        let t = utc(2026, 5, 17, 13, 7);
        let next = |expr: &str| schedule(expr, "UTC").next_after(t).unwrap();
        assert_eq!(next("@daily"), utc(2026, 5, 18, 0, 0));
        assert_eq!(next("@midnight"), utc(2026, 5, 18, 0, 0));
        assert_eq!(next("@hourly"), utc(2026, 5, 17, 14, 0));
        assert_eq!(next("@monthly"), utc(2026, 6, 1, 0, 0));
        assert_eq!(next("@yearly"), utc(2027, 1, 1, 0, 0));
        assert_eq!(next("@annually"), utc(2027, 1, 1, 0, 0));
        let weekly = next("@weekly");
        assert_eq!(weekly, utc(2026, 5, 24, 0, 0));
        assert_eq!(weekly.weekday(), Weekday::Sun);
        assert_eq!(next("*/20 * * * *"), utc(2026, 5, 17, 13, 20));
        assert_eq!(next("0 0 1-7 JAN,jul *"), utc(2026, 7, 1, 0, 0));

        // Day-of-week 0 and 7 are both Sunday.
        for expr in ["0 0 * * 0", "0 0 * * 7", "0 0 * * SUN", "0 0 * * 6-7"] {
            let s = schedule(expr, "UTC");
            let fires = s.fire_times_between(t, t + TimeDelta::days(28), 100);
            assert!(fires.iter().any(|f| f.weekday() == Weekday::Sun), "{expr}");
            let sundays = fires.iter().filter(|f| f.weekday() == Weekday::Sun).count();
            assert_eq!(sundays, 4, "{expr}: {fires:?}");
        }
        assert_eq!(schedule("0 0 * * 0", "UTC").expression(), "0 0 * * 0");
        assert_eq!(
            schedule("0 0 * * 0", "Europe/Berlin").timezone(),
            Tz::Europe__Berlin
        );
    }

    #[test]
    fn sub_second_bounds() {
        let s = schedule("* * * * *", "UTC");
        let t = utc(2026, 1, 1, 10, 0) + TimeDelta::milliseconds(500);
        assert_eq!(s.next_after(t), Some(utc(2026, 1, 1, 10, 1)));
        assert_eq!(s.prev_at_or_before(t), Some(utc(2026, 1, 1, 10, 0)));
    }

    #[test]
    fn errors_name_the_problem() {
        let err = |expr: &str, tz: &str| CronSchedule::parse(expr, tz).unwrap_err().to_string();
        assert_eq!(
            err("61 * * * *", "UTC"),
            r#"bad cron expression "61 * * * *": minute 61 out of range 0-59"#
        );
        assert!(err("0 24 * * *", "UTC").contains("hour 24 out of range 0-23"));
        assert!(err("0 0 * * 1-8", "UTC").contains("day-of-week 8 out of range 0-7"));
        assert!(err("* * * *", "UTC").contains("expected 5 fields"));
        assert!(err("* * * *", "UTC").contains("got 4"));
        let six = err("0 0 * * * *", "UTC");
        assert!(
            six.contains("seconds are not supported") && six.contains("use 5 fields"),
            "{six}"
        );
        assert!(err("", "UTC").contains("got 0"));
        assert!(err("@reboot", "UTC").contains("unknown nickname @reboot"));
        assert!(err("0 0 * MON *", "UTC").contains(r#"month field: unknown name "MON""#));
        assert!(err("0 0 * * JAN", "UTC").contains(r#"day-of-week field: unknown name "JAN""#));
        assert!(err("1,,2 * * * *", "UTC").contains("empty list item"));
        assert!(err("*/0 * * * *", "UTC").contains("Step cannot be zero"));
        assert!(err("0 0 30 2 *", "UTC").contains("never fires"));
        assert_eq!(
            err("0 * * * *", "Mars/Base"),
            r#"unknown time zone "Mars/Base": expected an IANA name like "Europe/Berlin" or "UTC""#
        );
    }

    #[test]
    fn limit_keeps_the_most_recent_and_is_fast() {
        let s = schedule("* * * * *", "Europe/Berlin");
        let until = utc(2026, 6, 1, 12, 0);
        let started = std::time::Instant::now();
        let fires = s.fire_times_between(utc(2023, 6, 1, 12, 0), until, 5);
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
        let expected: Vec<_> = (56..=60)
            .map(|m| utc(2026, 6, 1, 11, 0) + TimeDelta::minutes(m))
            .collect();
        assert_eq!(fires, expected);
        assert!(s.fire_times_between(until, until, 5).is_empty());
        assert!(
            s.fire_times_between(until, until - TimeDelta::hours(1), 5)
                .is_empty()
        );
        assert!(
            s.fire_times_between(utc(2026, 1, 1, 0, 0), until, 0)
                .is_empty()
        );
    }

    #[test]
    fn prev_and_next_round_trip_across_changes() {
        let cases = [
            ("30 2 * * *", "Europe/Berlin"),
            ("0 * * * *", "Europe/Berlin"),
            ("*/15 2 * * *", "Europe/Berlin"),
            ("*/15 * * * *", "America/New_York"),
            ("30 1 * * *", "America/New_York"),
            ("0 */2 * * *", "Europe/Berlin"),
        ];
        for (expr, tz) in cases {
            let s = schedule(expr, tz);
            for (from, to) in [
                (utc(2026, 3, 6, 0, 0), utc(2026, 3, 10, 0, 0)),
                (utc(2026, 3, 27, 0, 0), utc(2026, 3, 31, 0, 0)),
                (utc(2026, 10, 23, 0, 0), utc(2026, 10, 27, 0, 0)),
                (utc(2026, 10, 30, 0, 0), utc(2026, 11, 3, 0, 0)),
            ] {
                let fires = iterate(&s, from, to);
                assert!(!fires.is_empty());
                assert_eq!(
                    s.fire_times_between(from, to, usize::MAX),
                    fires,
                    "{expr} {tz}"
                );
                let mut previous = s.prev_at_or_before(from);
                for &fire in &fires {
                    assert_eq!(s.prev_at_or_before(fire), Some(fire), "{expr} {tz} {fire}");
                    let just_before = fire - TimeDelta::nanoseconds(1);
                    assert_eq!(
                        s.prev_at_or_before(just_before),
                        previous,
                        "{expr} {tz} {fire}"
                    );
                    if let Some(previous) = previous {
                        assert_eq!(s.next_after(previous), Some(fire), "{expr} {tz}");
                        // Any point between two fires leads to the later one.
                        let middle = previous + (fire - previous) / 2;
                        assert_eq!(s.next_after(middle), Some(fire), "{expr} {tz} {middle}");
                        assert_eq!(s.prev_at_or_before(middle), Some(previous), "{expr} {tz}");
                    }
                    previous = Some(fire);
                }
            }
        }
    }

    /// The fire times in `(from, until]` straight from the rules, checking
    /// every UTC minute (the zones tested change offsets on whole minutes).
    fn fire_times_by_definition(
        s: &CronSchedule,
        from: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Vec<DateTime<Utc>> {
        let mut times = Vec::new();
        // Hours of warm-up establish the latest wall-clock time shown (the
        // zones tested go back by at most an hour).
        let mut t = from - TimeDelta::hours(3);
        let mut shown = s.wall_clock(t);
        let mut previous = shown;
        while t < until {
            t += TimeDelta::minutes(1);
            let local = s.wall_clock(t);
            let fires = if local > shown {
                // A wall-clock time shown for the first time fires, and so
                // does one the clock jumped over since the previous minute.
                let skipped = s.cron.find_next_occurrence(&previous, false).unwrap() < local;
                shown = local;
                skipped || s.cron.is_time_matching(&local).unwrap()
            } else {
                // The clock went back: repeated times fire only for jobs
                // that follow real time.
                s.follows_real_time && s.cron.is_time_matching(&local).unwrap()
            };
            if fires && t > from {
                times.push(t);
            }
            previous = local;
        }
        times
    }

    /// Each hour in which the zone's UTC offset changes, over `years`.
    fn transitions(tz: Tz, years: std::ops::RangeInclusive<i32>) -> Vec<DateTime<Utc>> {
        use chrono::Offset;
        let offset = |t: DateTime<Utc>| t.with_timezone(&tz).offset().fix();
        let mut found = Vec::new();
        let mut t = utc(*years.start(), 1, 1, 0, 0);
        while t.year() <= *years.end() {
            if offset(t) != offset(t + TimeDelta::hours(1)) {
                found.push(t);
            }
            t += TimeDelta::hours(1);
        }
        found
    }

    #[test]
    fn matches_the_rules_around_every_change() {
        let zones = [
            // (zone, years with changes worth checking)
            ("Europe/Berlin", 2026..=2026),
            ("America/New_York", 2026..=2026),
            ("Australia/Lord_Howe", 2026..=2026), // half-hour DST
            ("Australia/Sydney", 2026..=2026),
            ("America/Sao_Paulo", 2018..=2018), // midnight did not exist
            ("America/Havana", 2026..=2026),    // changes at midnight / 01:00
            ("Pacific/Apia", 2011..=2011),      // skipped 2011-12-30 entirely
            ("Europe/Moscow", 2011..=2014),     // permanent +4 in 2011, +3 in 2014
        ];
        let exprs = [
            "30 2 * * *",
            "0 0 * * *",
            "0 * * * *",
            "*/15 * * * *",
            "*/15 2 * * *",
            "* 1 * * *",
            "0 */2 * * *",
            "45 0,1,2,3 * * *",
        ];
        let mut checked = 0;
        for (zone, years) in zones {
            let tz: Tz = zone.parse().unwrap();
            let changes = transitions(tz, years);
            assert!(!changes.is_empty(), "{zone}");
            for change in changes {
                let (from, to) = (change - TimeDelta::hours(8), change + TimeDelta::hours(8));
                for expr in exprs {
                    let s = schedule(expr, zone);
                    let expected = fire_times_by_definition(&s, from, to);
                    assert_eq!(iterate(&s, from, to), expected, "{expr} {zone} {change}");
                    let between = s.fire_times_between(from, to, usize::MAX);
                    assert_eq!(between, expected, "{expr} {zone} {change}");
                    // From any point, including inside a repeated hour.
                    let mut t = expected[0];
                    while t < expected[expected.len() - 1] {
                        let prev = expected.iter().rev().find(|&&e| e <= t).copied();
                        let next = expected.iter().find(|&&e| e > t).copied();
                        assert_eq!(s.prev_at_or_before(t), prev, "{expr} {zone} {t}");
                        assert_eq!(s.next_after(t), next, "{expr} {zone} {t}");
                        t += TimeDelta::seconds(7 * 60 + 30);
                    }
                    checked += expected.len();
                }
            }
        }
        assert!(checked > 2_000, "{checked}");
    }

    #[test]
    fn skipped_day_in_apia_fires_once() {
        // Samoa jumped from 2011-12-29 24:00 to 2011-12-31 00:00: the daily
        // job for the 30th fires at the first instant after the gap, which is
        // also the 31st's midnight, so once.
        let s = schedule("@daily", "Pacific/Apia");
        let fires = s.fire_times_between(utc(2011, 12, 28, 0, 0), utc(2012, 1, 2, 0, 0), 10);
        let local: Vec<_> = fires.iter().map(|f| s.wall_clock(*f)).collect();
        assert!(
            local.iter().all(|l| l.hour() == 0 && l.minute() == 0),
            "{local:?}"
        );
        let days: Vec<_> = local.iter().map(|l| l.day()).collect();
        assert_eq!(days, [28, 29, 31, 1, 2]);
    }
}

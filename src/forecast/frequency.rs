//! The period of a time series dataset (`frequency: daily` in a pipeline
//! file, the managed service's `DataFrequency`): how timestamps are
//! bucketed, how the calendar advances one period, and the season length
//! the per-series models use.

use chrono::{Datelike, Duration, NaiveDate, NaiveDateTime, Timelike};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase", try_from = "String")]
pub enum Frequency {
    Hourly,
    Daily,
    /// Weeks start on Monday (ISO 8601).
    Weekly,
    Monthly,
    Quarterly,
    Yearly,
}

impl TryFrom<String> for Frequency {
    type Error = String;

    fn try_from(s: String) -> Result<Self, String> {
        Frequency::parse(&s).ok_or_else(|| {
            let names: Vec<&str> = Frequency::ALL.iter().map(|f| f.name()).collect();
            format!("unknown frequency {s:?}; use {}", names.join(", "))
        })
    }
}

impl Frequency {
    pub const ALL: [Frequency; 6] = [
        Frequency::Hourly,
        Frequency::Daily,
        Frequency::Weekly,
        Frequency::Monthly,
        Frequency::Quarterly,
        Frequency::Yearly,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Frequency::Hourly => "hourly",
            Frequency::Daily => "daily",
            Frequency::Weekly => "weekly",
            Frequency::Monthly => "monthly",
            Frequency::Quarterly => "quarterly",
            Frequency::Yearly => "yearly",
        }
    }

    /// Accepts the names above and the managed service's codes (`H`, `D`,
    /// `W`, `M`, `Q`, `Y`).
    pub fn parse(s: &str) -> Option<Frequency> {
        let lower = s.to_ascii_lowercase();
        Frequency::ALL
            .into_iter()
            .find(|f| f.name() == lower)
            .or(match s {
                "H" | "1H" => Some(Frequency::Hourly),
                "D" | "1D" => Some(Frequency::Daily),
                "W" | "1W" => Some(Frequency::Weekly),
                "M" | "1M" => Some(Frequency::Monthly),
                "Q" => Some(Frequency::Quarterly),
                "Y" => Some(Frequency::Yearly),
                _ => None,
            })
    }

    /// The season length the per-series models use: a day of hours, a week
    /// of days, a year of weeks, months or quarters.
    pub fn season_length(self) -> usize {
        match self {
            Frequency::Hourly => 24,
            Frequency::Daily => 7,
            Frequency::Weekly => 52,
            Frequency::Monthly => 12,
            Frequency::Quarterly => 4,
            Frequency::Yearly => 1,
        }
    }

    /// The start of the period containing `t`.
    pub fn truncate(self, t: NaiveDateTime) -> NaiveDateTime {
        let day = t.date();
        let midnight = |d: NaiveDate| d.and_hms_opt(0, 0, 0).expect("midnight exists");
        match self {
            Frequency::Hourly => t
                .with_minute(0)
                .and_then(|t| t.with_second(0))
                .and_then(|t| t.with_nanosecond(0))
                .expect("hour start exists"),
            Frequency::Daily => midnight(day),
            Frequency::Weekly => {
                midnight(day - Duration::days(day.weekday().num_days_from_monday() as i64))
            }
            Frequency::Monthly => midnight(day.with_day(1).expect("day 1 exists")),
            Frequency::Quarterly => {
                let month = (day.month0() / 3) * 3 + 1;
                midnight(
                    NaiveDate::from_ymd_opt(day.year(), month, 1).expect("quarter start exists"),
                )
            }
            Frequency::Yearly => {
                midnight(NaiveDate::from_ymd_opt(day.year(), 1, 1).expect("1 January exists"))
            }
        }
    }

    /// `t` moved by `n` periods (negative moves back). Month arithmetic
    /// assumes `t` is a period start (the first of the month).
    pub fn add(self, t: NaiveDateTime, n: i64) -> NaiveDateTime {
        let months = |k: i64| {
            let total = t.year() as i64 * 12 + t.month0() as i64 + k;
            let date = NaiveDate::from_ymd_opt(
                total.div_euclid(12) as i32,
                total.rem_euclid(12) as u32 + 1,
                1,
            )
            .expect("month start exists");
            date.and_time(t.time())
        };
        match self {
            Frequency::Hourly => t + Duration::hours(n),
            Frequency::Daily => t + Duration::days(n),
            Frequency::Weekly => t + Duration::weeks(n),
            Frequency::Monthly => months(n),
            Frequency::Quarterly => months(3 * n),
            Frequency::Yearly => months(12 * n),
        }
    }

    /// How many periods `to` is after `from` (both period starts).
    pub fn periods_between(self, from: NaiveDateTime, to: NaiveDateTime) -> i64 {
        let month_index = |t: NaiveDateTime| t.year() as i64 * 12 + t.month0() as i64;
        match self {
            Frequency::Hourly => (to - from).num_hours(),
            Frequency::Daily => (to - from).num_days(),
            Frequency::Weekly => (to - from).num_weeks(),
            Frequency::Monthly => month_index(to) - month_index(from),
            Frequency::Quarterly => (month_index(to) - month_index(from)).div_euclid(3),
            Frequency::Yearly => (month_index(to) - month_index(from)).div_euclid(12),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").unwrap()
    }

    #[test]
    fn periods_truncate_advance_and_count() {
        let t = at("2024-02-29 17:45:10");
        assert_eq!(Frequency::Hourly.truncate(t), at("2024-02-29 17:00:00"));
        assert_eq!(Frequency::Weekly.truncate(t), at("2024-02-26 00:00:00"));
        assert_eq!(Frequency::Quarterly.truncate(t), at("2024-01-01 00:00:00"));
        let m = Frequency::Monthly.truncate(t);
        assert_eq!(Frequency::Monthly.add(m, 11), at("2025-01-01 00:00:00"));
        assert_eq!(Frequency::Monthly.add(m, -2), at("2023-12-01 00:00:00"));
        assert_eq!(
            Frequency::Monthly.periods_between(at("2023-12-01 00:00:00"), m),
            2
        );
        assert_eq!(
            Frequency::Weekly
                .periods_between(Frequency::Weekly.truncate(t), at("2024-03-11 00:00:00")),
            2
        );
        assert_eq!(Frequency::parse("W"), Some(Frequency::Weekly));
        assert_eq!(Frequency::parse("Daily"), Some(Frequency::Daily));
        assert_eq!(Frequency::parse("fortnightly"), None);
    }
}

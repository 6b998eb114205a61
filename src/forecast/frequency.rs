//! The period of a time series dataset (`frequency: daily` in a pipeline
//! file, the managed service's `DataFrequency`): how timestamps are
//! bucketed, how the calendar advances one period, and the season length
//! the per-series models use.
//!
//! A frequency is a unit (minute, hour, day, week, month, year) and a
//! multiple of it. Pipelines name it in English (`hourly`, `daily`,
//! `weekly`, `monthly`, `quarterly`, `yearly`) or with the managed
//! service's codes: `Y`, `M`, `W`, `D`, `H`, `30min`, `15min`, `10min`,
//! `5min`, `1min`, and multiples within the next larger unit (`1-59min`,
//! `1-23H`, `1-6D`, `1-4W`, `1-11M`, `1Y`), e.g. `3M` for quarters.
//! Periods of a multiple are counted from the UNIX epoch (weeks from a
//! Monday), so for a multiple that divides the next unit they line up with
//! it: `15min` periods start on the quarter hour, `3M` ones in January,
//! April, July and October.

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveDateTime};

/// The calendar unit of a frequency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Unit {
    Minute,
    Hour,
    Day,
    /// Weeks start on Monday (ISO 8601).
    Week,
    Month,
    Year,
}

impl Unit {
    /// The service's code letter(s) and the largest multiple it allows
    /// (a multiple must stay below the next larger unit).
    fn code(self) -> (&'static str, u32) {
        match self {
            Unit::Minute => ("min", 59),
            Unit::Hour => ("H", 23),
            Unit::Day => ("D", 6),
            Unit::Week => ("W", 4),
            Unit::Month => ("M", 11),
            Unit::Year => ("Y", 1),
        }
    }

    /// The length of one unit in seconds, for the fixed-length units.
    fn seconds(self) -> Option<i64> {
        match self {
            Unit::Minute => Some(60),
            Unit::Hour => Some(3_600),
            Unit::Day => Some(86_400),
            Unit::Week => Some(7 * 86_400),
            Unit::Month | Unit::Year => None,
        }
    }
}

/// A dataset's period: `every` units.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Frequency {
    unit: Unit,
    every: u32,
}

impl TryFrom<String> for Frequency {
    type Error = String;

    fn try_from(s: String) -> Result<Self, String> {
        Frequency::parse_or_explain(&s)
    }
}

impl From<Frequency> for String {
    fn from(f: Frequency) -> String {
        f.name()
    }
}

impl std::fmt::Display for Frequency {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name())
    }
}

/// Monday 5 January 1970: weeks of a multiple are counted from it.
const FIRST_MONDAY_SECS: i64 = 4 * 86_400;

/// What a frequency may be, for error messages.
pub const ACCEPTED: &str = "hourly, daily, weekly, monthly, quarterly, yearly, or a code: \
     Y, M, W, D, H, 30min, 15min, 10min, 5min, 1min, or a multiple such as 3M, 2W, 6H \
     (1-59min, 1-23H, 1-6D, 1-4W, 1-11M, 1Y)";

impl Frequency {
    pub const HOURLY: Frequency = Frequency::of(Unit::Hour, 1);
    pub const DAILY: Frequency = Frequency::of(Unit::Day, 1);
    pub const WEEKLY: Frequency = Frequency::of(Unit::Week, 1);
    pub const MONTHLY: Frequency = Frequency::of(Unit::Month, 1);
    pub const QUARTERLY: Frequency = Frequency::of(Unit::Month, 3);
    pub const YEARLY: Frequency = Frequency::of(Unit::Year, 1);

    /// The frequencies with an English name.
    const NAMED: [(Frequency, &'static str); 6] = [
        (Frequency::HOURLY, "hourly"),
        (Frequency::DAILY, "daily"),
        (Frequency::WEEKLY, "weekly"),
        (Frequency::MONTHLY, "monthly"),
        (Frequency::QUARTERLY, "quarterly"),
        (Frequency::YEARLY, "yearly"),
    ];

    const fn of(unit: Unit, every: u32) -> Frequency {
        Frequency { unit, every }
    }

    /// `every` units, when the service allows that multiple.
    pub fn new(unit: Unit, every: u32) -> Option<Frequency> {
        (1..=unit.code().1)
            .contains(&every)
            .then_some(Frequency { unit, every })
    }

    pub fn unit(self) -> Unit {
        self.unit
    }

    pub fn every(self) -> u32 {
        self.every
    }

    /// The English name when it has one (`weekly`), else the service's
    /// code (`2W`, `15min`).
    pub fn name(self) -> String {
        Frequency::NAMED
            .iter()
            .find(|(f, _)| *f == self)
            .map_or_else(|| self.code(), |(_, n)| n.to_string())
    }

    /// The service's code: `1W`, `3M`, `15min`.
    pub fn code(self) -> String {
        format!("{}{}", self.every, self.unit.code().0)
    }

    /// Accepts the English names (any case) and the managed service's
    /// codes (`Y`, `3M`, `2W`, `D`, `6H`, `15min`; `Q` for quarters).
    pub fn parse(s: &str) -> Option<Frequency> {
        Frequency::parse_or_explain(s).ok()
    }

    /// As [`Frequency::parse`], with an error naming what is accepted.
    pub fn parse_or_explain(s: &str) -> Result<Frequency, String> {
        let text = s.trim();
        let lower = text.to_ascii_lowercase();
        if let Some((f, _)) = Frequency::NAMED.iter().find(|(_, n)| *n == lower) {
            return Ok(*f);
        }
        if text == "Q" {
            return Ok(Frequency::QUARTERLY);
        }
        let unknown = || format!("unknown frequency {s:?}; use {ACCEPTED}");
        let digits = text.chars().take_while(char::is_ascii_digit).count();
        let (number, suffix) = text.split_at(digits);
        // `M` is a month and `min` a minute, as the service spells them;
        // the other letters are read in either case.
        let unit = match suffix {
            "min" => Unit::Minute,
            "H" | "h" => Unit::Hour,
            "D" | "d" => Unit::Day,
            "W" | "w" => Unit::Week,
            "M" => Unit::Month,
            "Y" | "y" => Unit::Year,
            _ => return Err(unknown()),
        };
        let every: u32 = if number.is_empty() {
            if unit == Unit::Minute {
                return Err(unknown());
            }
            1
        } else {
            number.parse().map_err(|_| unknown())?
        };
        Frequency::new(unit, every).ok_or_else(|| {
            let (code, max) = unit.code();
            let min = if max == 1 {
                format!("1{code}")
            } else {
                format!("1{code} to {max}{code}")
            };
            format!(
                "unknown frequency {s:?}: a multiple of {code} is {min} (a larger one overlaps \
                 the next unit, e.g. 1H not 60min); use {ACCEPTED}"
            )
        })
    }

    /// The season length the per-series models use: a day of hours, a week
    /// of days, a year of weeks, months or quarters; for minutes, a day
    /// when that is at most 144 periods, else an hour. A multiple divides
    /// its unit's season when it can (`2W`: 26, `3M`: 4, `6H`: 4); when it
    /// cannot (`5M`, `2D`) the series has no season (1).
    pub fn season_length(self) -> usize {
        let divide = |periods: u32| -> usize {
            if periods.is_multiple_of(self.every) {
                (periods / self.every) as usize
            } else {
                1
            }
        };
        match self.unit {
            Unit::Minute => {
                let per_day = divide(1_440);
                if per_day > 144 { divide(60) } else { per_day }
            }
            Unit::Hour => divide(24),
            Unit::Day => divide(7),
            Unit::Week => divide(52),
            Unit::Month => divide(12),
            Unit::Year => 1,
        }
    }

    /// Months since year 0 of `t`.
    fn month_index(t: NaiveDateTime) -> i64 {
        t.year() as i64 * 12 + t.month0() as i64
    }

    fn month_start(index: i64) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(
            index.div_euclid(12) as i32,
            index.rem_euclid(12) as u32 + 1,
            1,
        )
        .expect("month start exists")
        .and_hms_opt(0, 0, 0)
        .expect("midnight exists")
    }

    /// The length of one period in seconds, for the fixed-length units.
    fn period_seconds(self) -> Option<i64> {
        self.unit.seconds().map(|s| s * self.every as i64)
    }

    /// Where periods of a fixed-length unit are counted from.
    fn epoch(self) -> i64 {
        if self.unit == Unit::Week {
            FIRST_MONDAY_SECS
        } else {
            0
        }
    }

    /// The start of the period containing `t`.
    pub fn truncate(self, t: NaiveDateTime) -> NaiveDateTime {
        match self.period_seconds() {
            Some(len) => {
                let secs = t.and_utc().timestamp() - self.epoch();
                let start = secs.div_euclid(len) * len + self.epoch();
                DateTime::from_timestamp(start, 0)
                    .expect("a period start before a valid time is valid")
                    .naive_utc()
            }
            None => {
                let months = self.every as i64
                    * match self.unit {
                        Unit::Year => 12,
                        _ => 1,
                    };
                let index = Frequency::month_index(t);
                Frequency::month_start(index.div_euclid(months) * months)
            }
        }
    }

    /// `t` moved by `n` periods (negative moves back). Month arithmetic
    /// assumes `t` is a period start (the first of the month).
    pub fn add(self, t: NaiveDateTime, n: i64) -> NaiveDateTime {
        match self.period_seconds() {
            Some(len) => t + Duration::seconds(len * n),
            None => {
                let months = n * self.every as i64 * if self.unit == Unit::Year { 12 } else { 1 };
                let total = Frequency::month_index(t) + months;
                Frequency::month_start(total).date().and_time(t.time())
            }
        }
    }

    /// How many periods `to` is after `from` (both period starts).
    pub fn periods_between(self, from: NaiveDateTime, to: NaiveDateTime) -> i64 {
        match self.period_seconds() {
            Some(len) => (to - from).num_seconds().div_euclid(len),
            None => {
                let months = self.every as i64 * if self.unit == Unit::Year { 12 } else { 1 };
                (Frequency::month_index(to) - Frequency::month_index(from)).div_euclid(months)
            }
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
        assert_eq!(Frequency::HOURLY.truncate(t), at("2024-02-29 17:00:00"));
        assert_eq!(Frequency::DAILY.truncate(t), at("2024-02-29 00:00:00"));
        assert_eq!(Frequency::WEEKLY.truncate(t), at("2024-02-26 00:00:00"));
        assert_eq!(Frequency::QUARTERLY.truncate(t), at("2024-01-01 00:00:00"));
        assert_eq!(Frequency::YEARLY.truncate(t), at("2024-01-01 00:00:00"));
        let m = Frequency::MONTHLY.truncate(t);
        assert_eq!(Frequency::MONTHLY.add(m, 11), at("2025-01-01 00:00:00"));
        assert_eq!(Frequency::MONTHLY.add(m, -2), at("2023-12-01 00:00:00"));
        assert_eq!(
            Frequency::MONTHLY.periods_between(at("2023-12-01 00:00:00"), m),
            2
        );
        assert_eq!(
            Frequency::WEEKLY
                .periods_between(Frequency::WEEKLY.truncate(t), at("2024-03-11 00:00:00")),
            2
        );
        assert_eq!(Frequency::parse("W"), Some(Frequency::WEEKLY));
        assert_eq!(Frequency::parse("Daily"), Some(Frequency::DAILY));
        assert_eq!(Frequency::parse("fortnightly"), None);
    }

    #[test]
    fn the_managed_services_codes_are_accepted() {
        let p = |s: &str| Frequency::parse(s).unwrap_or_else(|| panic!("{s} refused"));
        for (code, named) in [
            ("Y", Frequency::YEARLY),
            ("1Y", Frequency::YEARLY),
            ("M", Frequency::MONTHLY),
            ("1M", Frequency::MONTHLY),
            ("3M", Frequency::QUARTERLY),
            ("Q", Frequency::QUARTERLY),
            ("W", Frequency::WEEKLY),
            ("D", Frequency::DAILY),
            ("H", Frequency::HOURLY),
            ("1h", Frequency::HOURLY),
        ] {
            assert_eq!(p(code), named, "{code}");
        }
        for code in ["30min", "15min", "10min", "5min", "1min", "59min"] {
            let f = p(code);
            assert_eq!(f.unit(), Unit::Minute);
            assert_eq!(f.name(), code);
        }
        assert_eq!((p("2W").unit(), p("2W").every()), (Unit::Week, 2));
        assert_eq!(p("6D").every(), 6);
        assert_eq!(p("23H").every(), 23);
        assert_eq!(p("11M").every(), 11);
        // Names: English where there is one, else the code.
        assert_eq!(p("3M").name(), "quarterly");
        assert_eq!(p("1D").name(), "daily");
        assert_eq!(p("2W").name(), "2W");
        assert_eq!(p("6H").name(), "6H");
        // Stored manifests hold the name and read back the same.
        for f in [p("15min"), p("2W"), Frequency::QUARTERLY, p("5M")] {
            let json = serde_json::to_string(&f).unwrap();
            assert_eq!(
                serde_json::from_str::<Frequency>(&json).unwrap(),
                f,
                "{json}"
            );
        }
        assert_eq!(
            serde_json::to_string(&Frequency::WEEKLY).unwrap(),
            "\"weekly\""
        );
    }

    #[test]
    fn bad_codes_name_what_is_accepted() {
        for (bad, says) in [
            ("60min", "a multiple of min is 1min to 59min"),
            ("24H", "a multiple of H is 1H to 23H"),
            ("7D", "1D to 6D"),
            ("5W", "1W to 4W"),
            ("12M", "1M to 11M"),
            ("2Y", "a multiple of Y is 1Y"),
            ("0D", "1D to 6D"),
            ("min", "unknown frequency \"min\"; use"),
            ("3m", "unknown frequency \"3m\"; use"),
            ("fortnightly", "unknown frequency \"fortnightly\"; use"),
        ] {
            let e = Frequency::parse_or_explain(bad).unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
            assert!(e.contains("30min") && e.contains("3M"), "{bad}: {e}");
        }
        // Through YAML, as a pipeline file gives it.
        let e = serde_yaml::from_str::<Frequency>("3X")
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown frequency \"3X\"; use hourly"), "{e}");
    }

    #[test]
    fn multiples_line_up_with_the_next_unit() {
        let t = at("2024-05-17 13:52:30");
        let p = |s: &str| Frequency::parse(s).unwrap();
        assert_eq!(p("15min").truncate(t), at("2024-05-17 13:45:00"));
        assert_eq!(p("1min").truncate(t), at("2024-05-17 13:52:00"));
        assert_eq!(p("6H").truncate(t), at("2024-05-17 12:00:00"));
        assert_eq!(p("6M").truncate(t), at("2024-01-01 00:00:00"));
        // 2W periods start on Mondays, two weeks apart.
        let w = p("2W").truncate(t);
        assert_eq!(w.weekday(), chrono::Weekday::Mon);
        assert!(w <= t && t < p("2W").add(w, 1));
        assert_eq!(p("2W").add(w, 1) - w, Duration::weeks(2));
        // add and periods_between agree with truncate for every code.
        for code in ["30min", "10min", "3H", "2D", "2W", "3M", "5M", "Y"] {
            let f = p(code);
            let start = f.truncate(t);
            assert_eq!(f.truncate(start), start, "{code}");
            for n in [-7i64, -1, 0, 1, 5, 40] {
                let moved = f.add(start, n);
                assert_eq!(f.truncate(moved), moved, "{code} {n}");
                assert_eq!(f.periods_between(start, moved), n, "{code} {n}");
                let inside = moved + Duration::seconds(30);
                assert_eq!(f.truncate(inside), moved, "{code} {n}");
            }
        }
        // Quarters by code start in January, April, July and October.
        assert_eq!(
            p("3M").add(p("3M").truncate(t), 1),
            at("2024-07-01 00:00:00")
        );
    }

    #[test]
    fn seasons_follow_the_unit_and_its_multiple() {
        let season = |s: &str| Frequency::parse(s).unwrap().season_length();
        assert_eq!(season("H"), 24);
        assert_eq!(season("6H"), 4);
        assert_eq!(season("5H"), 1);
        assert_eq!(season("D"), 7);
        assert_eq!(season("2D"), 1);
        assert_eq!(season("W"), 52);
        assert_eq!(season("2W"), 26);
        assert_eq!(season("M"), 12);
        assert_eq!(season("3M"), 4);
        assert_eq!(season("5M"), 1);
        assert_eq!(season("Y"), 1);
        assert_eq!(season("30min"), 48);
        assert_eq!(season("10min"), 144);
        assert_eq!(season("5min"), 12);
        assert_eq!(season("1min"), 60);
    }
}

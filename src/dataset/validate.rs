//! Row validation: a source frame (any column types) in, a frame with exactly
//! the schema's columns and types out, plus one [`Rejected`] entry per refused
//! value. Conversions run column-wide in polars; only failing rows are looked
//! at one by one, to say why.

use polars::prelude::*;

use crate::schema::{FieldType, MAX_ID_CHARS, MAX_TEXTUAL_CHARS, Schema};

/// Hidden columns that carry each row's origin through the transform.
pub const SOURCE_COL: &str = "__source";
pub const ROW_COL: &str = "__row";

/// A refused row: where it came from and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejected {
    /// Index into the import's source list; `None` when a SQL transform
    /// dropped the origin columns.
    pub source: Option<u32>,
    /// 1-based record number in the source (or in the SQL output).
    pub row: u64,
    pub column: String,
    pub value: String,
    pub reason: String,
}

/// The reason given for a timestamp after the import's time (plus a day);
/// [`is_future`] recognises it.
pub const FUTURE: &str = "timestamp is in the future";

/// Whether a rejection is of a timestamp dated in the future.
pub fn is_future(r: &Rejected) -> bool {
    r.reason.starts_with(FUTURE)
}

/// Why a frame cannot be validated at all (as opposed to a row).
#[derive(Debug, Clone)]
pub enum ValidateError {
    /// A required schema field is missing from the source.
    MissingColumn {
        field: String,
        available: Vec<String>,
    },
    /// A column's type cannot hold the field's values (a Parquet list or
    /// struct where the schema has a string): every row would be null.
    ColumnType {
        field: String,
        dtype: String,
        field_type: FieldType,
    },
}

pub struct Validated {
    pub frame: DataFrame,
    pub rejected: Vec<Rejected>,
    /// Source columns not in the schema (dropped).
    pub ignored_columns: Vec<String>,
    /// Conversions that changed values without refusing a row, counted
    /// (sub-second parts of date-times dropped), for the step's summary.
    pub notes: Vec<String>,
}

/// Earliest plausible timestamp: 1970-01-01T00:00:01Z.
const MIN_TIMESTAMP: i64 = 1;

/// Validates and converts `df` to `schema`. `now` bounds timestamps (a day of
/// clock skew is allowed).
pub fn validate_frame(
    df: &DataFrame,
    schema: &Schema,
    now: i64,
) -> Result<Validated, ValidateError> {
    let height = df.height();
    let available: Vec<String> = df
        .get_column_names()
        .iter()
        .map(|s| s.to_string())
        .filter(|s| s != SOURCE_COL && s != ROW_COL)
        .collect();
    for f in &schema.fields {
        match df.column(&f.name) {
            Err(_) if !f.nullable => {
                return Err(ValidateError::MissingColumn {
                    field: f.name.clone(),
                    available,
                });
            }
            Ok(c) if c.dtype().is_nested() => {
                return Err(ValidateError::ColumnType {
                    field: f.name.clone(),
                    dtype: c.dtype().to_string(),
                    field_type: f.field_type,
                });
            }
            _ => {}
        }
    }
    let ignored_columns = available
        .iter()
        .filter(|c| schema.field(c).is_none())
        .cloned()
        .collect();

    let origin_src: Option<Vec<Option<u32>>> = df
        .column(SOURCE_COL)
        .ok()
        .and_then(|c| c.cast(&DataType::UInt32).ok())
        .map(|c| c.u32().map(|ca| ca.iter().collect()).unwrap_or_default());
    let origin_row: Vec<u64> = match df
        .column(ROW_COL)
        .ok()
        .and_then(|c| c.cast(&DataType::UInt64).ok())
    {
        Some(c) => c
            .u64()
            .map(|ca| ca.iter().map(|v| v.unwrap_or(0)).collect())
            .unwrap_or_default(),
        None => (1..=height as u64).collect(),
    };

    let mut bad = vec![false; height];
    let mut rejected = Vec::new();
    let mut notes = Vec::new();
    let mut columns: Vec<Column> = Vec::with_capacity(schema.fields.len() + 2);
    for field in &schema.fields {
        let (converted, failures) = match df.column(&field.name) {
            Ok(col) => {
                let converted = convert(col.as_materialized_series(), field, now);
                if converted.subsecond > 0 {
                    notes.push(format!(
                        "{}: {} value{} had a fraction of a second, dropped (timestamps are whole UNIX seconds)",
                        field.name,
                        converted.subsecond,
                        if converted.subsecond == 1 { "" } else { "s" }
                    ));
                }
                (converted.series, converted.failures)
            }
            Err(_) => (
                Series::full_null(
                    field.name.as_str().into(),
                    height,
                    &dtype_of(field.field_type),
                ),
                Vec::new(),
            ),
        };
        for (i, value, reason) in failures {
            if !bad[i] {
                bad[i] = true;
            }
            rejected.push(Rejected {
                source: origin_src.as_ref().and_then(|s| s[i]),
                row: origin_row.get(i).copied().unwrap_or(i as u64 + 1),
                column: field.name.clone(),
                value,
                reason,
            });
        }
        columns.push(converted.into());
    }
    let keep: BooleanChunked = bad.iter().map(|b| !b).collect();
    let frame = DataFrame::new(height, columns)
        .and_then(|f| f.filter(&keep))
        .expect("columns have the frame's height");
    rejected.sort_by_key(|r| (r.source, r.row));
    Ok(Validated {
        frame,
        rejected,
        ignored_columns,
        notes,
    })
}

pub fn dtype_of(t: FieldType) -> DataType {
    match t {
        FieldType::String => DataType::String,
        FieldType::Int => DataType::Int32,
        FieldType::Long => DataType::Int64,
        FieldType::Float => DataType::Float32,
        FieldType::Double => DataType::Float64,
        FieldType::Boolean => DataType::Boolean,
    }
}

type Failures = Vec<(usize, String, String)>;

/// One column, converted.
struct Converted {
    /// The schema's type, null where refused.
    series: Series,
    /// The refused rows as `(index, original value, reason)`.
    failures: Failures,
    /// Date-times whose fraction of a second was dropped.
    subsecond: usize,
}

/// Converts one column to its field's type.
fn convert(s: &Series, field: &crate::schema::Field, now: i64) -> Converted {
    let name = field.name.as_str();
    let mut failures: Failures = Vec::new();
    let mut subsecond = 0;
    let shown = |i: usize| show(s, i);

    let converted: Series = if field.is_timestamp() {
        let (secs, dropped) = to_unix_seconds(s);
        subsecond = dropped;
        let ca = secs.i64().expect("i64").clone();
        for (i, v) in ca.iter().enumerate() {
            match v {
                None if !is_null(s, i) => {
                    let value = shown(i);
                    let reason = if value.trim().parse::<f64>().is_ok_and(|x| x.fract() != 0.0) {
                        "a fraction of a second in a number of seconds; timestamps are whole UNIX seconds (round it with `sql:`)"
                    } else {
                        "not a UNIX timestamp in seconds or a date-time"
                    };
                    failures.push((i, value, reason.into()))
                }
                // Interaction times before 1970 are a unit or parsing mistake;
                // item creation dates (a film's release) can be that old.
                Some(t) if t < MIN_TIMESTAMP && field.name == crate::schema::TIMESTAMP => {
                    failures.push((i, shown(i), "timestamp before 1970-01-01".into()))
                }
                Some(t) if t > now + 86_400 => {
                    let why = if t > 100_000_000_000 {
                        format!(
                            "{FUTURE}; it looks like milliseconds, and recflow expects UNIX seconds"
                        )
                    } else {
                        FUTURE.to_string()
                    };
                    failures.push((i, shown(i), why));
                }
                _ => {}
            }
        }
        secs
    } else {
        match field.field_type {
            FieldType::String => {
                let out = to_string_series(s);
                for i in newly_null(s, &out) {
                    failures.push((i, shown(i), "cannot be read as text".into()));
                }
                out
            }
            FieldType::Int | FieldType::Long => {
                let target = dtype_of(field.field_type);
                let out = to_integer(s, &target);
                for i in newly_null(s, &out) {
                    failures.push((
                        i,
                        shown(i),
                        format!(
                            "not a whole number that fits a {}",
                            field.field_type.as_str()
                        ),
                    ));
                }
                out
            }
            FieldType::Float | FieldType::Double => {
                let target = dtype_of(field.field_type);
                let src = if s.dtype() == &DataType::String {
                    trimmed(s)
                } else {
                    s.clone()
                };
                let out = src
                    .cast(&target)
                    .unwrap_or_else(|_| Series::full_null(name.into(), s.len(), &target));
                for i in newly_null(s, &out) {
                    failures.push((i, shown(i), "not a number".into()));
                }
                let f64s = out.cast(&DataType::Float64).expect("float cast");
                for (i, v) in f64s.f64().expect("f64").iter().enumerate() {
                    if v.is_some_and(|x| !x.is_finite()) {
                        failures.push((i, shown(i), "not a finite number".into()));
                    }
                }
                out
            }
            FieldType::Boolean => {
                let out = to_boolean(s);
                for i in newly_null(s, &out) {
                    failures.push((i, shown(i), "not a boolean (true/false, 1/0)".into()));
                }
                out
            }
        }
    };

    if !field.nullable {
        for i in 0..s.len() {
            if is_null(s, i) {
                failures.push((
                    i,
                    String::new(),
                    "missing value for a required field".into(),
                ));
            }
        }
    }
    if field.field_type == FieldType::String {
        let ca = converted.str().expect("string column");
        let limit = if field.textual {
            MAX_TEXTUAL_CHARS
        } else if field.is_id() {
            MAX_ID_CHARS
        } else {
            usize::MAX
        };
        for (i, v) in ca.iter().enumerate() {
            match v {
                Some("") if field.is_id() => failures.push((i, String::new(), "empty id".into())),
                // The managed service's ids have no control characters; no
                // field may hold a NUL (C strings and many tools stop there).
                Some(v)
                    if v.chars()
                        .any(|c| c == '\0' || field.is_id() && c.is_control()) =>
                {
                    let c = v
                        .chars()
                        .find(|&c| c == '\0' || c.is_control())
                        .expect("found above");
                    let what = if field.is_id() { "id" } else { "text" };
                    failures.push((
                        i,
                        truncate(&v.escape_debug().to_string(), 60),
                        format!("{what} contains the control character U+{:04X}", c as u32),
                    ))
                }
                Some(v) if limit != usize::MAX && v.chars().count() > limit => {
                    let what = if field.textual { "text" } else { "id" };
                    failures.push((
                        i,
                        truncate(v, 60),
                        format!("{what} longer than {limit} characters"),
                    ));
                }
                _ => {}
            }
        }
    }
    failures.sort_by_key(|f| f.0);
    failures.dedup_by_key(|f| f.0);
    Converted {
        series: converted.with_name(name.into()),
        failures,
        subsecond,
    }
}

fn is_null(s: &Series, i: usize) -> bool {
    s.get(i).map(|v| v.is_null()).unwrap_or(true)
}

/// Rows that were non-null in `before` and are null in `after`.
fn newly_null(before: &Series, after: &Series) -> Vec<usize> {
    let mask = before.is_not_null() & after.is_null();
    mask.iter()
        .enumerate()
        .filter(|(_, m)| m.unwrap_or(false))
        .map(|(i, _)| i)
        .collect()
}

fn show(s: &Series, i: usize) -> String {
    match s.get(i) {
        Ok(AnyValue::Null) | Err(_) => String::new(),
        Ok(AnyValue::String(v)) => truncate(v, 60),
        Ok(AnyValue::StringOwned(v)) => truncate(&v, 60),
        Ok(v) => truncate(&v.to_string(), 60),
    }
}

pub(super) fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(n).collect::<String>())
    }
}

fn trimmed(s: &Series) -> Series {
    let ca = s.str().expect("string");
    ca.apply_values(|v| std::borrow::Cow::Owned(v.trim().to_string()))
        .into_series()
}

/// Strings as they are; numbers as text. Integral floats (ids that passed
/// through a float column, like `13085.0`) are written without the `.0`.
fn to_string_series(s: &Series) -> Series {
    match s.dtype() {
        DataType::String => s.clone(),
        DataType::Float32 | DataType::Float64 => {
            let f = s.cast(&DataType::Float64).expect("float");
            let ca = f.f64().expect("f64");
            let all_integral = ca
                .iter()
                .flatten()
                .all(|v| v.fract() == 0.0 && v.abs() < 9.0e15);
            if all_integral {
                s.cast(&DataType::Int64)
                    .and_then(|x| x.cast(&DataType::String))
                    .expect("int to string")
            } else {
                s.cast(&DataType::String).expect("float to string")
            }
        }
        _ => s
            .cast(&DataType::String)
            .unwrap_or_else(|_| Series::full_null(s.name().clone(), s.len(), &DataType::String)),
    }
}

fn to_integer(s: &Series, target: &DataType) -> Series {
    let full_null = || Series::full_null(s.name().clone(), s.len(), target);
    match s.dtype() {
        DataType::String => trimmed(s).cast(target).unwrap_or_else(|_| full_null()),
        DataType::Float32 | DataType::Float64 => {
            // Only whole numbers convert; 1.5 is refused rather than truncated.
            let f = s.cast(&DataType::Float64).expect("float");
            let ca = f.f64().expect("f64");
            let whole: Float64Chunked = ca.apply(|v| v.filter(|x| x.fract() == 0.0));
            whole
                .into_series()
                .cast(target)
                .unwrap_or_else(|_| full_null())
        }
        _ => s.cast(target).unwrap_or_else(|_| full_null()),
    }
}

fn to_boolean(s: &Series) -> Series {
    match s.dtype() {
        DataType::Boolean => s.clone(),
        DataType::String => {
            let ca = s.str().expect("string");
            let out: BooleanChunked = ca
                .iter()
                .map(|v| {
                    v.and_then(|v| match v.trim().to_ascii_lowercase().as_str() {
                        "true" | "1" | "yes" => Some(true),
                        "false" | "0" | "no" => Some(false),
                        _ => None,
                    })
                })
                .collect();
            out.with_name(s.name().clone()).into_series()
        }
        _ => s
            .cast(&DataType::Boolean)
            .unwrap_or_else(|_| Series::full_null(s.name().clone(), s.len(), &DataType::Boolean)),
    }
}

/// UNIX seconds from integers, whole-second floats, dates, date-times, or
/// text holding any of them (ISO 8601 / RFC 3339 date-times), with the count
/// of date-times whose fraction of a second was dropped. A number of seconds
/// with a fraction is null (refused): it is a unit mistake as often as not.
fn to_unix_seconds(s: &Series) -> (Series, usize) {
    let name = s.name().clone();
    let null = || Series::full_null(name.clone(), s.len(), &DataType::Int64);
    match s.dtype() {
        DataType::Datetime(unit, _) => {
            let per_second = match unit {
                TimeUnit::Nanoseconds => 1_000_000_000,
                TimeUnit::Microseconds => 1_000_000,
                TimeUnit::Milliseconds => 1_000,
            };
            let raw = s.cast(&DataType::Int64).expect("datetime to int");
            let ca = raw.i64().expect("i64");
            let dropped = ca
                .iter()
                .flatten()
                .filter(|v| v.rem_euclid(per_second) != 0)
                .count();
            (
                ca.apply_values(|v| v.div_euclid(per_second)).into_series(),
                dropped,
            )
        }
        DataType::Date => {
            let raw = s
                .cast(&DataType::Int32)
                .and_then(|x| x.cast(&DataType::Int64))
                .expect("date to int");
            let secs = raw
                .i64()
                .expect("i64")
                .apply_values(|d| d * 86_400)
                .into_series();
            (secs, 0)
        }
        DataType::Float32 | DataType::Float64 => {
            let f = s.cast(&DataType::Float64).expect("float");
            let ca = f.f64().expect("f64");
            let out: Int64Chunked = ca
                .iter()
                .map(|v| {
                    v.filter(|x| x.is_finite() && x.fract() == 0.0)
                        .map(|x| x as i64)
                })
                .collect();
            (out.with_name(name).into_series(), 0)
        }
        DataType::String => {
            let ca = s.str().expect("string");
            let mut dropped = 0;
            let out: Int64Chunked = ca
                .iter()
                .map(|v| {
                    let (secs, fraction) = parse_seconds(v?)?;
                    dropped += usize::from(fraction);
                    Some(secs)
                })
                .collect();
            (out.with_name(name).into_series(), dropped)
        }
        DataType::Int8
        | DataType::Int16
        | DataType::Int32
        | DataType::Int64
        | DataType::UInt8
        | DataType::UInt16
        | DataType::UInt32
        | DataType::UInt64 => (s.cast(&DataType::Int64).unwrap_or_else(|_| null()), 0),
        _ => (null(), 0),
    }
}

/// Parses a timestamp written as text: integer seconds, then RFC 3339, then
/// ISO dates and date-times without zone (read as UTC); says whether a
/// date-time's fraction of a second was dropped. A number of seconds with a
/// fraction is refused (`None`).
fn parse_seconds(v: &str) -> Option<(i64, bool)> {
    let v = v.trim();
    if let Ok(n) = v.parse::<i64>() {
        return Some((n, false));
    }
    if let Ok(f) = v.parse::<f64>() {
        return (f.is_finite() && f.fract() == 0.0 && f.abs() < 9.0e15)
            .then_some((f as i64, false));
    }
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(v) {
        return Some((t.timestamp(), t.timestamp_subsec_nanos() != 0));
    }
    for fmt in [
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%dT%H:%M",
    ] {
        if let Ok(t) = chrono::NaiveDateTime::parse_from_str(v, fmt) {
            let t = t.and_utc();
            return Some((t.timestamp(), t.timestamp_subsec_nanos() != 0));
        }
    }
    chrono::NaiveDate::parse_from_str(v, "%Y-%m-%d")
        .ok()
        .map(|d| {
            let t = d.and_hms_opt(0, 0, 0).expect("midnight").and_utc();
            (t.timestamp(), false)
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{AvroSchema, DatasetType};

    fn schema() -> Schema {
        let avro: AvroSchema = serde_json::from_str(
            r#"{"fields": [{"name": "USER_ID", "type": "string"}, {"name": "ITEM_ID", "type": "string"},
                {"name": "TIMESTAMP", "type": "long"}, {"name": "EVENT_VALUE", "type": ["null", "float"]}]}"#,
        )
        .unwrap();
        Schema::from_avro(DatasetType::Interactions, &avro).unwrap()
    }

    const NOW: i64 = 1_800_000_000;

    #[test]
    fn converts_strings_and_rejects_bad_values_with_reasons() {
        let df = df!(
            "USER_ID" => ["1", "2", "", "4", "5"],
            "ITEM_ID" => ["a", "b", "c", "d", "e"],
            "TIMESTAMP" => ["881250949", "soon", "881250949", "1700000000000", "2010-12-01 08:26:00"],
            "EVENT_VALUE" => [Some("4"), Some("x"), None, Some("1.5"), Some(" 2 ")],
            "extra" => ["q", "q", "q", "q", "q"],
        )
        .unwrap();
        let v = validate_frame(&df, &schema(), NOW).unwrap();
        let got: Vec<(u64, &str, &str)> = v
            .rejected
            .iter()
            .map(|r| (r.row, r.column.as_str(), r.reason.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                (
                    2,
                    "TIMESTAMP",
                    "not a UNIX timestamp in seconds or a date-time"
                ),
                (2, "EVENT_VALUE", "not a number"),
                (3, "USER_ID", "empty id"),
                (
                    4,
                    "TIMESTAMP",
                    "timestamp is in the future; it looks like milliseconds, and recflow expects UNIX seconds"
                ),
            ]
        );
        assert_eq!(v.frame.height(), 2);
        assert_eq!(v.ignored_columns, ["extra"]);
        let ts: Vec<Option<i64>> = v
            .frame
            .column("TIMESTAMP")
            .unwrap()
            .i64()
            .unwrap()
            .iter()
            .collect();
        assert_eq!(ts, [Some(881250949), Some(1291191960)]);
        assert_eq!(
            v.frame.column("EVENT_VALUE").unwrap().dtype(),
            &DataType::Float32
        );
    }

    #[test]
    fn a_missing_required_column_is_reported_with_what_exists() {
        let df = df!("user" => ["1"], "ITEM_ID" => ["a"], "TIMESTAMP" => [1i64]).unwrap();
        let Err(ValidateError::MissingColumn { field, available }) =
            validate_frame(&df, &schema(), NOW)
        else {
            panic!("USER_ID is missing");
        };
        assert_eq!(field, "USER_ID");
        assert_eq!(available, ["user", "ITEM_ID", "TIMESTAMP"]);
    }

    #[test]
    fn float_ids_lose_their_point_zero_and_datetimes_become_seconds() {
        let ts = Series::new("TIMESTAMP".into(), [1_291_191_960_000_000i64])
            .cast(&DataType::Datetime(TimeUnit::Microseconds, None))
            .unwrap();
        let df = DataFrame::new(
            1,
            vec![
                Series::new("USER_ID".into(), [13085.0f64]).into(),
                Series::new("ITEM_ID".into(), ["85048"]).into(),
                ts.into(),
            ],
        )
        .unwrap();
        let v = validate_frame(&df, &schema(), NOW).unwrap();
        assert!(v.rejected.is_empty(), "{:?}", v.rejected);
        assert_eq!(
            v.frame.column("USER_ID").unwrap().str().unwrap().get(0),
            Some("13085")
        );
        assert_eq!(
            v.frame.column("TIMESTAMP").unwrap().i64().unwrap().get(0),
            Some(1_291_191_960)
        );
        assert!(v.frame.column("EVENT_VALUE").unwrap().is_null().all());
    }

    #[test]
    fn parses_timestamp_texts() {
        assert_eq!(
            parse_seconds("2010-12-01T08:26:00Z"),
            Some((1291191960, false))
        );
        assert_eq!(parse_seconds("2010-12-01"), Some((1291161600, false)));
        assert_eq!(parse_seconds("881250949.0"), Some((881250949, false)));
        assert_eq!(
            parse_seconds("881250949.7"),
            None,
            "a fraction is refused, not truncated"
        );
        assert_eq!(
            parse_seconds("2010-12-01T08:26:00.5Z"),
            Some((1291191960, true))
        );
        assert_eq!(parse_seconds("yesterday"), None);
    }
}

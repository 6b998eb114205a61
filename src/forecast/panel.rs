//! From imported time series datasets to regular series: timestamps are
//! bucketed into periods of the declared frequency, several values in one
//! period are aggregated, and missing periods are filled as the pipeline
//! says. Each item's series starts at its first observation and runs to the
//! last period of the whole dataset (the managed service's "back fill" up
//! to the dataset's end); related series must also cover the horizon.

use std::collections::HashMap;
use std::fmt;

use chrono::{DateTime, NaiveDateTime};
use polars::prelude::*;
use serde::{Deserialize, Serialize};

use super::attributes::ItemAttributes;
use super::frequency::Frequency;
use crate::schema::{TARGET_VALUE, TS_ITEM_ID, TS_TIMESTAMP};

/// How a missing period is filled: `zero` (demand that did not happen),
/// `nan` (unknown: models interpolate, metrics skip it), `previous` (the
/// last known value, for prices) or a number.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "serde_yaml::Value", into = "serde_yaml::Value")]
pub enum Fill {
    Zero,
    Nan,
    Previous,
    Value(f64),
}

impl TryFrom<serde_yaml::Value> for Fill {
    type Error = String;

    fn try_from(v: serde_yaml::Value) -> Result<Self, String> {
        match &v {
            serde_yaml::Value::Number(n) => n
                .as_f64()
                .filter(|x| x.is_finite())
                .map(Fill::Value)
                .ok_or_else(|| format!("fill value {n} is not a finite number")),
            serde_yaml::Value::String(s) => match s.as_str() {
                "zero" => Ok(Fill::Zero),
                "nan" | "NaN" => Ok(Fill::Nan),
                "previous" => Ok(Fill::Previous),
                other => other.parse::<f64>().map(Fill::Value).map_err(|_| {
                    format!("unknown fill {other:?}; use zero, nan, previous or a number")
                }),
            },
            _ => Err("fill is zero, nan, previous or a number".into()),
        }
    }
}

impl From<Fill> for serde_yaml::Value {
    fn from(f: Fill) -> Self {
        match f {
            Fill::Zero => "zero".into(),
            Fill::Nan => "nan".into(),
            Fill::Previous => "previous".into(),
            Fill::Value(v) => v.into(),
        }
    }
}

impl fmt::Display for Fill {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fill::Zero => f.write_str("zero"),
            Fill::Nan => f.write_str("nan"),
            Fill::Previous => f.write_str("previous"),
            Fill::Value(v) => write!(f, "{v}"),
        }
    }
}

/// How several values in one period become one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Aggregation {
    Sum,
    Mean,
    Min,
    Max,
    First,
    Last,
}

/// The time series settings of the datasets, as declared in the pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SeriesSettings {
    pub frequency: Frequency,
    /// Target: default `zero`.
    pub target_fill: Fill,
    /// Target: default `sum`.
    pub target_aggregation: Aggregation,
    /// Related: gaps inside the data; default `previous`.
    pub related_fill: Fill,
    /// Related: periods after an item's last related value that the
    /// horizon needs; default none (an error names the items).
    pub related_future_fill: Option<Fill>,
    /// Related: default `mean`.
    pub related_aggregation: Aggregation,
}

/// One item's regular series.
#[derive(Debug, Clone, PartialEq)]
pub struct ItemSeries {
    /// The index of its first period from the panel's origin.
    pub first: usize,
    /// One value per period from `first` to the panel's last period.
    pub values: Vec<f64>,
}

/// Related columns of every item, over the item's periods and the horizon.
#[derive(Debug, Clone, PartialEq)]
pub struct RelatedPanel {
    pub columns: Vec<String>,
    /// `values[item][column]`: from the item's first period through
    /// `periods + horizon` (exclusive).
    pub values: Vec<Vec<Vec<f64>>>,
    pub horizon: usize,
}

/// Every item's series on one calendar.
#[derive(Debug, Clone, PartialEq)]
pub struct Panel {
    pub frequency: Frequency,
    /// The first period of the whole dataset.
    pub origin: NaiveDateTime,
    /// Periods from `origin` through the dataset's last period.
    pub periods: usize,
    pub items: Vec<String>,
    pub series: Vec<ItemSeries>,
    pub related: Option<RelatedPanel>,
    /// The items' metadata, when the predictor uses it (attached after the
    /// build, see `job.rs`).
    pub attributes: Option<ItemAttributes>,
    /// Target rows that fell in a period already holding a value and were
    /// aggregated into it.
    pub aggregated_rows: u64,
}

impl Panel {
    /// The start of period `index` (may be past the data, for forecasts).
    pub fn date(&self, index: usize) -> NaiveDateTime {
        self.frequency.add(self.origin, index as i64)
    }

    pub fn item_index(&self, item: &str) -> Option<usize> {
        self.items.iter().position(|i| i == item)
    }

    /// The item's series cut at period `end` (exclusive), or `None` when it
    /// starts at or after `end`.
    pub fn history(&self, item: usize, end: usize) -> Option<&[f64]> {
        let s = &self.series[item];
        (end > s.first).then(|| &s.values[..(end - s.first).min(s.values.len())])
    }

    /// Whether every observed target value is at least zero: forecasts of
    /// such data (demand) are clamped at zero.
    pub fn non_negative(&self) -> bool {
        self.series
            .iter()
            .all(|s| s.values.iter().all(|v| v.is_nan() || *v >= 0.0))
    }

    /// Builds the panel from the target frame (`item_id`, `timestamp` in
    /// UNIX seconds, `target_value`) and, optionally, the related frame,
    /// which must then cover `horizon` periods past the target's end.
    pub fn build(
        target: &DataFrame,
        related: Option<&DataFrame>,
        settings: &SeriesSettings,
        horizon: usize,
    ) -> anyhow::Result<Panel> {
        let freq = settings.frequency;
        let rows = rows_of(target, &[TARGET_VALUE])?;
        anyhow::ensure!(
            !rows.ids.is_empty(),
            "the target_time_series dataset has no rows"
        );
        let origin_secs = rows.times.iter().copied().min().expect("rows");
        let origin = period_start(freq, origin_secs)?;
        let index_of = |secs: i64| -> anyhow::Result<usize> {
            Ok(freq.periods_between(origin, period_start(freq, secs)?) as usize)
        };
        let mut items: Vec<String> = Vec::new();
        let mut item_of: HashMap<&str, u32> = HashMap::new();
        let mut cells: Vec<(u32, u32, i64, f64)> = Vec::with_capacity(rows.ids.len());
        for (i, id) in rows.ids.iter().enumerate() {
            let next = item_of.len() as u32;
            let item = *item_of.entry(id.as_str()).or_insert_with(|| {
                items.push(id.clone());
                next
            });
            let period = index_of(rows.times[i])?;
            cells.push((item, period as u32, rows.times[i], rows.values[0][i]));
        }
        let periods = cells.iter().map(|c| c.1 as usize).max().unwrap_or(0) + 1;
        cells.sort_unstable_by_key(|c| (c.0, c.1, c.2));
        let (series, aggregated_rows) = assemble(
            &cells,
            items.len(),
            periods,
            settings.target_aggregation,
            settings.target_fill,
        );
        let related = match related {
            None => None,
            Some(frame) => Some(related_panel(
                frame, settings, horizon, origin, periods, &items, &item_of, &series,
            )?),
        };
        Ok(Panel {
            frequency: freq,
            origin,
            periods,
            items,
            series,
            related,
            attributes: None,
            aggregated_rows,
        })
    }
}

/// The periods' start times relative to which a frame's rows are indexed.
fn period_start(freq: Frequency, secs: i64) -> anyhow::Result<NaiveDateTime> {
    DateTime::from_timestamp(secs, 0)
        .map(|t| freq.truncate(t.naive_utc()))
        .ok_or_else(|| anyhow::anyhow!("timestamp {secs} is out of range"))
}

struct Rows {
    ids: Vec<String>,
    /// UNIX seconds.
    times: Vec<i64>,
    /// One vector per value column.
    values: Vec<Vec<f64>>,
}

fn rows_of(frame: &DataFrame, value_columns: &[&str]) -> anyhow::Result<Rows> {
    let column = |name: &str| {
        frame.column(name).map_err(|_| {
            anyhow::anyhow!(
                "the dataset has no column {name} (columns: {})",
                frame
                    .get_column_names()
                    .iter()
                    .map(|c| c.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })
    };
    let ids: Vec<String> = column(TS_ITEM_ID)?
        .cast(&DataType::String)?
        .str()?
        .iter()
        .map(|v| v.unwrap_or_default().to_string())
        .collect();
    let times: Vec<i64> = column(TS_TIMESTAMP)?
        .cast(&DataType::Int64)?
        .i64()?
        .iter()
        .map(|v| v.unwrap_or_default())
        .collect();
    let mut values = Vec::new();
    for name in value_columns {
        let v: Vec<f64> = column(name)?
            .cast(&DataType::Float64)?
            .f64()?
            .iter()
            .map(|v| v.unwrap_or(f64::NAN))
            .collect();
        values.push(v);
    }
    Ok(Rows { ids, times, values })
}

/// Aggregates sorted `(item, period, time, value)` cells into one series
/// per item, from its first period to `periods`, filling gaps. Returns the
/// series and how many rows were folded into an earlier row's period.
fn assemble(
    cells: &[(u32, u32, i64, f64)],
    items: usize,
    periods: usize,
    aggregation: Aggregation,
    fill: Fill,
) -> (Vec<ItemSeries>, u64) {
    let mut out: Vec<Option<ItemSeries>> = vec![None; items];
    let mut folded = 0u64;
    let mut i = 0;
    while i < cells.len() {
        let item = cells[i].0;
        let first = cells[i].1 as usize;
        let mut values = vec![f64::NAN; periods - first];
        while i < cells.len() && cells[i].0 == item {
            let period = cells[i].1;
            let mut j = i;
            while j < cells.len() && cells[j].0 == item && cells[j].1 == period {
                j += 1;
            }
            let group: Vec<f64> = cells[i..j]
                .iter()
                .map(|c| c.3)
                .filter(|v| !v.is_nan())
                .collect();
            folded += (j - i - 1) as u64;
            values[period as usize - first] = aggregate(&group, aggregation);
            i = j;
        }
        fill_gaps(&mut values, fill);
        out[item as usize] = Some(ItemSeries { first, values });
    }
    (
        out.into_iter()
            .map(|s| s.expect("every item has a row"))
            .collect(),
        folded,
    )
}

fn aggregate(values: &[f64], how: Aggregation) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    match how {
        Aggregation::Sum => values.iter().sum(),
        Aggregation::Mean => values.iter().sum::<f64>() / values.len() as f64,
        Aggregation::Min => values.iter().copied().fold(f64::INFINITY, f64::min),
        Aggregation::Max => values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        Aggregation::First => values[0],
        Aggregation::Last => values[values.len() - 1],
    }
}

/// Fills NaN cells. `previous` carries the last value forward (and the
/// first value backward over a leading gap).
fn fill_gaps(values: &mut [f64], fill: Fill) {
    match fill {
        Fill::Nan => {}
        Fill::Zero => values
            .iter_mut()
            .filter(|v| v.is_nan())
            .for_each(|v| *v = 0.0),
        Fill::Value(x) => values
            .iter_mut()
            .filter(|v| v.is_nan())
            .for_each(|v| *v = x),
        Fill::Previous => {
            let mut last = values.iter().copied().find(|v| !v.is_nan());
            for v in values.iter_mut() {
                if v.is_nan() {
                    if let Some(l) = last {
                        *v = l;
                    }
                } else {
                    last = Some(*v);
                }
            }
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn related_panel(
    frame: &DataFrame,
    settings: &SeriesSettings,
    horizon: usize,
    origin: NaiveDateTime,
    periods: usize,
    items: &[String],
    item_of: &HashMap<&str, u32>,
    series: &[ItemSeries],
) -> anyhow::Result<RelatedPanel> {
    let freq = settings.frequency;
    let columns: Vec<String> = frame
        .get_column_names()
        .iter()
        .map(|c| c.to_string())
        .filter(|c| c != TS_ITEM_ID && c != TS_TIMESTAMP)
        .collect();
    let names: Vec<&str> = columns.iter().map(String::as_str).collect();
    let rows = rows_of(frame, &names)?;
    let span = periods + horizon;
    // Per item and column: the cells of periods the item needs.
    let mut cells: Vec<Vec<Vec<(u32, i64, f64)>>> =
        vec![vec![Vec::new(); columns.len()]; items.len()];
    let mut covered_to: Vec<Option<usize>> = vec![None; items.len()];
    for (r, id) in rows.ids.iter().enumerate() {
        let Some(&item) = item_of.get(id.as_str()) else {
            continue;
        };
        let start = period_start(freq, rows.times[r])?;
        if start < origin {
            continue;
        }
        let period = freq.periods_between(origin, start) as usize;
        let first = series[item as usize].first;
        if period < first || period >= span {
            continue;
        }
        let last = &mut covered_to[item as usize];
        *last = Some(last.map_or(period, |l: usize| l.max(period)));
        for (c, col) in cells[item as usize].iter_mut().enumerate() {
            col.push((period as u32, rows.times[r], rows.values[c][r]));
        }
    }
    let missing: Vec<&str> = items
        .iter()
        .zip(&covered_to)
        .filter(|(_, c)| c.is_none())
        .map(|(i, _)| i.as_str())
        .collect();
    anyhow::ensure!(
        missing.is_empty(),
        "related_time_series has no rows for {} item(s) of the target series, e.g. {}",
        missing.len(),
        missing
            .iter()
            .take(5)
            .cloned()
            .collect::<Vec<_>>()
            .join(", ")
    );
    let short: Vec<(usize, usize)> = covered_to
        .iter()
        .enumerate()
        .filter_map(|(i, c)| c.filter(|c| c + 1 < span).map(|c| (i, c)))
        .collect();
    if !short.is_empty() && settings.related_future_fill.is_none() {
        let (i, c) = short[0];
        anyhow::bail!(
            "related_time_series must cover the forecast horizon ({horizon} periods after {}): \
             {} item(s) end early, e.g. {} ends at {}; add the future values (planned prices, \
             promotions) or set `future_fill` on the related_time_series dataset",
            origin_fmt(freq.add(origin, periods as i64 - 1)),
            short.len(),
            items[i],
            origin_fmt(freq.add(origin, c as i64)),
        );
    }
    let mut values = Vec::with_capacity(items.len());
    for (item, per_column) in cells.into_iter().enumerate() {
        let first = series[item].first;
        let end = covered_to[item].expect("checked") + 1;
        let mut out = Vec::with_capacity(columns.len());
        for mut col in per_column {
            col.sort_unstable_by_key(|c| (c.0, c.1));
            let mut v = vec![f64::NAN; span - first];
            let mut k = 0;
            while k < col.len() {
                let p = col[k].0;
                let mut j = k;
                while j < col.len() && col[j].0 == p {
                    j += 1;
                }
                let group: Vec<f64> = col[k..j]
                    .iter()
                    .map(|c| c.2)
                    .filter(|x| !x.is_nan())
                    .collect();
                v[p as usize - first] = aggregate(&group, settings.related_aggregation);
                k = j;
            }
            let (known, future) = v.split_at_mut(end - first);
            fill_gaps(known, settings.related_fill);
            if let Some(f) = settings.related_future_fill {
                let last = known.iter().rev().copied().find(|x| !x.is_nan());
                match (f, last) {
                    (Fill::Previous, Some(l)) => future.iter_mut().for_each(|x| *x = l),
                    _ => fill_gaps(future, f),
                }
            }
            out.push(v);
        }
        values.push(out);
    }
    Ok(RelatedPanel {
        columns,
        values,
        horizon,
    })
}

fn origin_fmt(t: NaiveDateTime) -> String {
    t.format("%Y-%m-%d %H:%M").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(fill: Fill) -> SeriesSettings {
        SeriesSettings {
            frequency: Frequency::DAILY,
            target_fill: fill,
            target_aggregation: Aggregation::Sum,
            related_fill: Fill::Previous,
            related_future_fill: None,
            related_aggregation: Aggregation::Mean,
        }
    }

    const DAY: i64 = 86_400;
    const T0: i64 = 1_700_006_400; // 2023-11-15 00:00 UTC

    #[test]
    fn rows_become_regular_series_aggregated_and_filled() {
        let target = df!(
            "item_id" => ["a", "a", "a", "b", "a"],
            "timestamp" => [T0, T0 + 3600, T0 + 3 * DAY, T0 + DAY, T0 + 4 * DAY],
            "target_value" => [1.0, 2.0, 5.0, 7.0, 6.0],
        )
        .unwrap();
        let p = Panel::build(&target, None, &settings(Fill::Zero), 2).unwrap();
        assert_eq!(p.items, ["a", "b"]);
        assert_eq!(p.periods, 5);
        assert_eq!(p.aggregated_rows, 1);
        assert_eq!(p.series[0].values, [3.0, 0.0, 0.0, 5.0, 6.0]);
        // b starts at its first observation and runs to the dataset's end.
        assert_eq!(p.series[1].first, 1);
        assert_eq!(p.series[1].values, [7.0, 0.0, 0.0, 0.0]);
        assert_eq!(p.date(5).format("%Y-%m-%d").to_string(), "2023-11-20");
        assert!(p.non_negative());

        let p = Panel::build(&target, None, &settings(Fill::Nan), 2).unwrap();
        assert!(p.series[0].values[1].is_nan());
        let p = Panel::build(&target, None, &settings(Fill::Value(-1.0)), 2).unwrap();
        assert_eq!(p.series[1].values, [7.0, -1.0, -1.0, -1.0]);
        assert!(!p.non_negative());
    }

    #[test]
    fn related_series_cover_the_horizon_or_fail_naming_an_item() {
        let target = df!(
            "item_id" => ["a", "a", "b"],
            "timestamp" => [T0, T0 + DAY, T0 + DAY],
            "target_value" => [1.0, 2.0, 3.0],
        )
        .unwrap();
        let related = df!(
            "item_id" => ["a", "a", "a", "b", "b", "b"],
            "timestamp" => [T0, T0 + 2 * DAY, T0 + 3 * DAY, T0 + DAY, T0 + 2 * DAY, T0 + 3 * DAY],
            "price" => [2.0, 3.0, 4.0, 1.0, 1.5, 1.5],
        )
        .unwrap();
        let p = Panel::build(&target, Some(&related), &settings(Fill::Zero), 2).unwrap();
        let r = p.related.unwrap();
        assert_eq!(r.columns, ["price"]);
        // a: a gap at day 1 takes the previous price.
        assert_eq!(r.values[0][0], [2.0, 2.0, 3.0, 4.0]);
        assert_eq!(r.values[1][0], [1.0, 1.5, 1.5]);

        let err = Panel::build(&target, Some(&related), &settings(Fill::Zero), 3).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("cover the forecast horizon") && msg.contains("future_fill"),
            "{msg}"
        );
        let mut s = settings(Fill::Zero);
        s.related_future_fill = Some(Fill::Previous);
        let p = Panel::build(&target, Some(&related), &s, 3).unwrap();
        assert_eq!(p.related.unwrap().values[1][0], [1.0, 1.5, 1.5, 1.5]);

        let only_a = related
            .filter(&related.column("item_id").unwrap().str().unwrap().equal("a"))
            .unwrap();
        let err = Panel::build(&target, Some(&only_a), &settings(Fill::Zero), 1).unwrap_err();
        assert!(
            err.to_string()
                .contains("no rows for 1 item(s) of the target series, e.g. b"),
            "{err}"
        );
    }

    #[test]
    fn fill_parses_names_and_numbers() {
        let f: Fill = serde_yaml::from_str("previous").unwrap();
        assert_eq!(f, Fill::Previous);
        let f: Fill = serde_yaml::from_str("2.5").unwrap();
        assert_eq!(f, Fill::Value(2.5));
        let e = serde_yaml::from_str::<Fill>("sometimes").unwrap_err();
        assert!(
            e.to_string()
                .contains("use zero, nan, previous or a number"),
            "{e}"
        );
    }
}

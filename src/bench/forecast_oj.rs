//! `recflow bench forecast-oj`: the global model on Dominick's orange juice
//! (913 store × brand weekly series, price and promotion flags known into
//! the future), with and without its related series, and with item
//! metadata (brand, store and the store's demographics) on top, beside
//! per-series seasonal naive and ETS. Backtest: 3 rolling windows of 8 weeks at the end
//! (weeks 137–144, 145–152, 153–160), pooled; WAPE of the median and wQL at
//! p10, p50, p90.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context as _;
use chrono::{NaiveDate, NaiveDateTime};
use clap::Args;
use polars::prelude::{Column, DataFrame};
use rayon::prelude::*;

use crate::forecast::attributes::ItemAttributes;
use crate::forecast::frequency::Frequency;
use crate::forecast::global::{GlobalConfig, GlobalSeries, QuantilePaths, train};
use crate::forecast::{Algorithm, forecast, metrics};
use crate::outln;
use crate::schema::{DatasetType, Field, FieldType, ITEM_ID, Schema};

#[derive(Debug, Args)]
pub struct ForecastOjBenchArgs {
    /// The long-format orange juice file (`item_id,store,brand,week,units,
    /// logmove,price,deal,feat`).
    #[arg(long, default_value = "../shared/datasets/orange_juice/oj_long.csv")]
    pub path: PathBuf,
    /// Store demographics (`STORE,AGE60,EDUC,…`), item metadata by store.
    #[arg(
        long,
        default_value = "../shared/datasets/orange_juice/oj_storedemo.csv"
    )]
    pub storedemo: PathBuf,
    /// The item metadata fields to use: brand, store (categorical) and the
    /// store demographics' columns (AGE60, EDUC, INCOME, …).
    #[arg(long, value_delimiter = ',', default_value = "brand,store")]
    pub metadata: Vec<String>,
    /// Weeks of history a "new" series keeps in the cold-start comparison.
    #[arg(long, default_value_t = 8)]
    pub new_history: usize,
}

const HORIZON: usize = 8;
const WINDOWS: usize = 3;
const QUANTILES: [f64; 3] = [0.1, 0.5, 0.9];
const RELATED: [&str; 3] = ["price", "deal", "feat"];
/// Training rows per model (of about 730k candidates).
const MAX_ROWS: usize = 300_000;
/// Week 1 of the Dominick's data starts on 14 September 1989.
const FIRST_WEEK: u32 = 1;

/// One store × brand on the common week grid.
struct Series {
    id: String,
    start: NaiveDateTime,
    /// Units sold; NaN for a week without a row.
    units: Vec<f64>,
    /// price, deal, feat over the same weeks.
    related: [Vec<f64>; 3],
}

fn load(path: &Path) -> anyhow::Result<Vec<Series>> {
    let mut r = csv::Reader::from_path(path).with_context(|| path.display().to_string())?;
    let headers = r.headers()?.clone();
    let column = |name: &str| {
        headers
            .iter()
            .position(|h| h == name)
            .with_context(|| format!("{}: no column {name}", path.display()))
    };
    let (id, week, units) = (column("item_id")?, column("week")?, column("units")?);
    let related = [column("price")?, column("deal")?, column("feat")?];
    let mut rows: BTreeMap<String, Vec<(u32, f64, [f64; 3])>> = BTreeMap::new();
    for (line, row) in r.records().enumerate() {
        let row = row?;
        let number = |c: usize| -> anyhow::Result<f64> {
            row[c].parse().with_context(|| {
                format!(
                    "{} line {}: column {}: {:?}",
                    path.display(),
                    line + 2,
                    &headers[c],
                    &row[c]
                )
            })
        };
        rows.entry(row[id].to_string()).or_default().push((
            number(week)? as u32,
            number(units)?,
            [
                number(related[0])?,
                number(related[1])?,
                number(related[2])?,
            ],
        ));
    }
    let first = rows
        .values()
        .flatten()
        .map(|r| r.0)
        .min()
        .context("no rows")?;
    let last = rows
        .values()
        .flatten()
        .map(|r| r.0)
        .max()
        .context("no rows")?;
    let weeks = (last - first + 1) as usize;
    let day_one = NaiveDate::from_ymd_opt(1989, 9, 14).expect("valid date");
    let start = Frequency::WEEKLY.truncate(
        (day_one + chrono::Duration::weeks((first - FIRST_WEEK) as i64))
            .and_hms_opt(0, 0, 0)
            .expect("midnight"),
    );
    Ok(rows
        .into_iter()
        .map(|(id, rows)| {
            let mut units = vec![f64::NAN; weeks];
            let mut related = [
                vec![f64::NAN; weeks],
                vec![f64::NAN; weeks],
                vec![f64::NAN; weeks],
            ];
            for (week, u, r) in rows {
                let at = (week - first) as usize;
                units[at] = u;
                for j in 0..3 {
                    related[j][at] = r[j];
                }
            }
            // Weeks without a row: the price carries over (forward, then
            // backward at the start); no deal, no feature.
            fill_forward_backward(&mut related[0]);
            for flags in &mut related[1..] {
                flags
                    .iter_mut()
                    .filter(|v| v.is_nan())
                    .for_each(|v| *v = 0.0);
            }
            Series {
                id,
                start,
                units,
                related,
            }
        })
        .collect())
}

fn fill_forward_backward(v: &mut [f64]) {
    let mut last = f64::NAN;
    for x in v.iter_mut() {
        if x.is_nan() {
            *x = last;
        } else {
            last = *x;
        }
    }
    let mut next = f64::NAN;
    for x in v.iter_mut().rev() {
        if x.is_nan() {
            *x = next;
        } else {
            next = *x;
        }
    }
}

/// Pooled forecasts of one model over every window.
#[derive(Default)]
struct Scores {
    actual: Vec<f64>,
    p50: Vec<f64>,
    quantiles: [Vec<f64>; 3],
    train_secs: f64,
    predict_secs: f64,
}

impl Scores {
    /// Adds the observed weeks of `truth` against `forecast`.
    fn add(&mut self, truth: &[f64], p50: &[f64], quantiles: [&[f64]; 3]) {
        for i in 0..truth.len() {
            if truth[i].is_finite() {
                self.actual.push(truth[i]);
                self.p50.push(p50[i]);
                for (pooled, q) in self.quantiles.iter_mut().zip(quantiles) {
                    pooled.push(q[i]);
                }
            }
        }
    }

    fn row(&self, name: &str) {
        let wql: Vec<f64> = (0..3)
            .map(|j| metrics::wql(&self.actual, &self.quantiles[j], QUANTILES[j]))
            .collect();
        outln!(
            "{name:<28} {:>7.4} {:>8.4} {:>8.4} {:>8.4} {:>8.4} {:>8.1} {:>9.2}",
            metrics::wape(&self.actual, &self.p50),
            wql[0],
            wql[1],
            wql[2],
            wql.iter().sum::<f64>() / 3.0,
            self.train_secs,
            self.predict_secs,
        );
    }

    fn average_wql(&self) -> f64 {
        (0..3)
            .map(|j| metrics::wql(&self.actual, &self.quantiles[j], QUANTILES[j]))
            .sum::<f64>()
            / 3.0
    }
}

/// The item metadata a team would declare as the `items` dataset: each
/// series' brand and store (categorical) and its store's demographics
/// (numeric), through the pipeline's own reader.
fn item_metadata(panel: &[Series], storedemo: &Path) -> anyhow::Result<ItemAttributes> {
    let mut r =
        csv::Reader::from_path(storedemo).with_context(|| storedemo.display().to_string())?;
    let headers: Vec<String> = r.headers()?.iter().map(str::to_string).collect();
    anyhow::ensure!(
        headers.first().map(String::as_str) == Some("STORE"),
        "{}: the first column must be STORE",
        storedemo.display()
    );
    let mut demographics: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for (line, row) in r.records().enumerate() {
        let row = row?;
        let values = row
            .iter()
            .skip(1)
            .map(|v| v.parse::<f64>())
            .collect::<Result<Vec<f64>, _>>()
            .with_context(|| format!("{} line {}", storedemo.display(), line + 2))?;
        demographics.insert(row[0].to_string(), values);
    }
    // Item ids are `<store>_<brand>`.
    let parts: Vec<(String, String)> = panel
        .iter()
        .map(|s| {
            let (store, brand) = s.id.split_once('_').unwrap_or((&s.id, ""));
            (store.to_string(), brand.to_string())
        })
        .collect();
    let mut columns = vec![
        Column::new(
            ITEM_ID.into(),
            panel.iter().map(|s| s.id.clone()).collect::<Vec<_>>(),
        ),
        Column::new(
            "brand".into(),
            parts.iter().map(|p| p.1.clone()).collect::<Vec<_>>(),
        ),
        Column::new(
            "store".into(),
            parts.iter().map(|p| p.0.clone()).collect::<Vec<_>>(),
        ),
    ];
    for (k, name) in headers.iter().enumerate().skip(1) {
        let v: Vec<Option<f64>> = parts
            .iter()
            .map(|p| demographics.get(&p.0).map(|d| d[k - 1]))
            .collect();
        columns.push(Column::new(name.as_str().into(), v));
    }
    let frame = DataFrame::new(panel.len(), columns)?;
    let field = |name: &str, field_type| Field {
        name: name.into(),
        field_type,
        nullable: true,
        categorical: field_type == FieldType::String,
        textual: false,
    };
    let mut fields = vec![
        field(ITEM_ID, FieldType::String),
        field("brand", FieldType::String),
        field("store", FieldType::String),
    ];
    fields.extend(headers.iter().skip(1).map(|h| field(h, FieldType::Double)));
    let schema = Schema {
        dataset_type: DatasetType::Items,
        fields,
    };
    let ids: Vec<String> = panel.iter().map(|s| s.id.clone()).collect();
    ItemAttributes::build(&frame, &schema, &ids)
}

/// One global-model variant of the benchmark.
#[derive(Clone, Copy)]
struct Variant<'a> {
    related: bool,
    metadata: Option<&'a ItemAttributes>,
    /// Cold start: every third series ("new") keeps only its last this
    /// many weeks of history, and only new series are scored.
    new_history: Option<usize>,
}

fn is_new(i: usize) -> bool {
    i.is_multiple_of(3)
}

fn global(panel: &[Series], cut: usize, v: Variant, scores: &mut Scores) -> anyhow::Result<()> {
    let first = |i: usize| match v.new_history {
        Some(weeks) if is_new(i) => cut.saturating_sub(weeks),
        _ => 0,
    };
    let series: Vec<GlobalSeries> = panel
        .iter()
        .enumerate()
        .map(|(i, s)| GlobalSeries {
            id: &s.id,
            target: &s.units[first(i)..cut],
            start: Frequency::WEEKLY.add(s.start, first(i) as i64),
            related: if v.related {
                s.related
                    .iter()
                    .map(|r| &r[first(i)..cut + HORIZON])
                    .collect()
            } else {
                Vec::new()
            },
            attributes: v.metadata.map_or(&[][..], |m| m.values[i].as_slice()),
        })
        .collect();
    let mut config = GlobalConfig::new(HORIZON, Frequency::WEEKLY);
    // Fewer, decorrelated rows scored as well as all 730k in our runs and
    // train 2–3× faster.
    config.max_rows = MAX_ROWS;
    if v.related {
        config.related = RELATED.iter().map(|r| r.to_string()).collect();
    }
    if let Some(m) = v.metadata {
        config.attributes = m.attributes.clone();
    }
    let started = Instant::now();
    let model = train(&series, &config)?;
    scores.train_secs += started.elapsed().as_secs_f64();
    let started = Instant::now();
    let forecasts: Vec<QuantilePaths> = model.predict_all(&series)?;
    scores.predict_secs += started.elapsed().as_secs_f64();
    for (i, (s, f)) in panel.iter().zip(&forecasts).enumerate() {
        if v.new_history.is_some() && !is_new(i) {
            continue;
        }
        let q = |p| f.quantile(p).expect("configured quantile");
        scores.add(
            &s.units[cut..cut + HORIZON],
            &f.p50,
            [q(0.1), q(0.5), q(0.9)],
        );
    }
    Ok(())
}

/// A per-series model on the history with missing weeks carried forward
/// (leading missing weeks dropped); quantiles from its normal errors,
/// floored at zero like the global model's.
fn per_series(panel: &[Series], cut: usize, algorithm: Algorithm, scores: &mut Scores) {
    let started = Instant::now();
    let fits: Vec<_> = panel
        .par_iter()
        .map(|s| {
            let mut history: Vec<f64> = s.units[..cut].to_vec();
            let first = history.iter().position(|v| v.is_finite()).unwrap_or(0);
            history.drain(..first);
            fill_forward_backward(&mut history);
            forecast(
                algorithm,
                &history,
                Frequency::WEEKLY.season_length(),
                HORIZON,
            )
        })
        .collect();
    scores.train_secs += started.elapsed().as_secs_f64();
    for (s, fit) in panel.iter().zip(&fits) {
        let floor = |v: Vec<f64>| -> Vec<f64> { v.into_iter().map(|x| x.max(0.0)).collect() };
        let q: Vec<Vec<f64>> = QUANTILES.iter().map(|p| floor(fit.quantile(*p))).collect();
        scores.add(
            &s.units[cut..cut + HORIZON],
            &floor(fit.mean.clone()),
            [&q[0], &q[1], &q[2]],
        );
    }
}

pub fn forecast_oj_bench(args: ForecastOjBenchArgs) -> anyhow::Result<()> {
    let panel = load(&args.path)?;
    let weeks = panel.first().map_or(0, |s| s.units.len());
    anyhow::ensure!(
        weeks > WINDOWS * HORIZON + 52,
        "{}: {weeks} weeks, too short for {WINDOWS} windows of {HORIZON}",
        args.path.display()
    );
    outln!(
        "Orange juice: {} series × {weeks} weeks; {WINDOWS} rolling windows of {HORIZON} weeks at the end, pooled.",
        panel.len()
    );
    let metadata = select(item_metadata(&panel, &args.storedemo)?, &args.metadata)?;
    let names: Vec<&str> = metadata
        .attributes
        .iter()
        .map(|a| a.name.as_str())
        .collect();
    outln!("Item metadata: {}.", names.join(", "));
    let full = |related, metadata| Variant {
        related,
        metadata,
        new_history: None,
    };
    let cold = |metadata| Variant {
        related: true,
        metadata,
        new_history: Some(args.new_history),
    };
    let mut with_metadata = Scores::default();
    let mut with = Scores::default();
    let mut without = Scores::default();
    let mut naive = Scores::default();
    let mut ets = Scores::default();
    let mut new_with_metadata = Scores::default();
    let mut new_without = Scores::default();
    for w in (1..=WINDOWS).rev() {
        let cut = weeks - w * HORIZON;
        global(&panel, cut, full(true, Some(&metadata)), &mut with_metadata)?;
        global(&panel, cut, full(true, None), &mut with)?;
        global(&panel, cut, full(false, None), &mut without)?;
        per_series(&panel, cut, Algorithm::SeasonalNaive, &mut naive);
        per_series(&panel, cut, Algorithm::Ets, &mut ets);
        global(&panel, cut, cold(Some(&metadata)), &mut new_with_metadata)?;
        global(&panel, cut, cold(None), &mut new_without)?;
    }
    outln!(
        "{:<28} {:>7} {:>8} {:>8} {:>8} {:>8} {:>8} {:>9}",
        "model",
        "WAPE",
        "wQL[0.1]",
        "wQL[0.5]",
        "wQL[0.9]",
        "avg wQL",
        "train s",
        "predict s"
    );
    with.row("global + price, deal, feat");
    without.row("global, no related series");
    with_metadata.row("global + related + metadata");
    naive.row("seasonal naive (m=52)");
    ets.row("ets");
    let ratio = |a: &Scores, b: &Scores| {
        format!(
            "average wQL × {:.3}, WAPE × {:.3}",
            a.average_wql() / b.average_wql(),
            metrics::wape(&a.actual, &a.p50) / metrics::wape(&b.actual, &b.p50)
        )
    };
    outln!(
        "related series: {} (with / without)",
        ratio(&with, &without)
    );
    outln!(
        "item metadata: {} (with / without, both with related series)",
        ratio(&with_metadata, &with)
    );
    outln!(
        "Cold start: every third series keeps only its last {} weeks; those are scored.",
        args.new_history
    );
    new_with_metadata.row("new: global + rel. + metadata");
    new_without.row("new: global + related");
    outln!(
        "item metadata for new items: {} (with / without)",
        ratio(&new_with_metadata, &new_without)
    );
    Ok(())
}

/// Keeps the named attributes of `all`, in the order named.
fn select(all: ItemAttributes, names: &[String]) -> anyhow::Result<ItemAttributes> {
    let mut positions = Vec::new();
    for name in names {
        let at = all.attributes.iter().position(|a| &a.name == name);
        positions.push(at.with_context(|| {
            let known: Vec<&str> = all.attributes.iter().map(|a| a.name.as_str()).collect();
            format!("--metadata: no field {name} (fields: {})", known.join(", "))
        })?);
    }
    Ok(ItemAttributes {
        attributes: positions
            .iter()
            .map(|p| all.attributes[*p].clone())
            .collect(),
        values: all
            .values
            .iter()
            .map(|v| positions.iter().map(|p| v[*p]).collect())
            .collect(),
        skipped: all.skipped,
    })
}

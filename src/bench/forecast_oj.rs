//! `recflow bench forecast-oj`: the global model on Dominick's orange juice
//! (913 store × brand weekly series, price and promotion flags known into
//! the future), with and without its related series, beside per-series
//! seasonal naive and ETS. Backtest: 3 rolling windows of 8 weeks at the end
//! (weeks 137–144, 145–152, 153–160), pooled; WAPE of the median and wQL at
//! p10, p50, p90.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context as _;
use chrono::{NaiveDate, NaiveDateTime};
use clap::Args;
use rayon::prelude::*;

use crate::forecast::frequency::Frequency;
use crate::forecast::global::{GlobalConfig, GlobalSeries, QuantilePaths, train};
use crate::forecast::{Algorithm, forecast, metrics};

#[derive(Debug, Args)]
pub struct ForecastOjBenchArgs {
    /// The long-format orange juice file (`item_id,store,brand,week,units,
    /// logmove,price,deal,feat`).
    #[arg(long, default_value = "../shared/datasets/orange_juice/oj_long.csv")]
    pub path: PathBuf,
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
    let start = Frequency::Weekly.truncate(
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
        println!(
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

fn global(
    panel: &[Series],
    cut: usize,
    with_related: bool,
    scores: &mut Scores,
) -> anyhow::Result<()> {
    let series: Vec<GlobalSeries> = panel
        .iter()
        .map(|s| GlobalSeries {
            id: &s.id,
            target: &s.units[..cut],
            start: s.start,
            related: if with_related {
                s.related.iter().map(|r| &r[..cut + HORIZON]).collect()
            } else {
                Vec::new()
            },
        })
        .collect();
    let mut config = GlobalConfig::new(HORIZON, Frequency::Weekly);
    // Fewer, decorrelated rows scored as well as all 730k in our runs and
    // train 2–3× faster.
    config.max_rows = MAX_ROWS;
    if with_related {
        config.related = RELATED.iter().map(|r| r.to_string()).collect();
    }
    let started = Instant::now();
    let model = train(&series, &config)?;
    scores.train_secs += started.elapsed().as_secs_f64();
    let started = Instant::now();
    let forecasts: Vec<QuantilePaths> = model.predict_all(&series)?;
    scores.predict_secs += started.elapsed().as_secs_f64();
    for (s, f) in panel.iter().zip(&forecasts) {
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
                Frequency::Weekly.season_length(),
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
    println!(
        "Orange juice: {} series × {weeks} weeks; {WINDOWS} rolling windows of {HORIZON} weeks at the end, pooled.",
        panel.len()
    );
    let mut with = Scores::default();
    let mut without = Scores::default();
    let mut naive = Scores::default();
    let mut ets = Scores::default();
    for w in (1..=WINDOWS).rev() {
        let cut = weeks - w * HORIZON;
        global(&panel, cut, true, &mut with)?;
        global(&panel, cut, false, &mut without)?;
        per_series(&panel, cut, Algorithm::SeasonalNaive, &mut naive);
        per_series(&panel, cut, Algorithm::Ets, &mut ets);
    }
    println!(
        "{:<28} {:>7} {:>8} {:>8} {:>8} {:>8} {:>8} {:>9}",
        "model", "WAPE", "wQL[0.1]", "wQL[0.5]", "wQL[0.9]", "avg wQL", "train s", "predict s"
    );
    with.row("global + price, deal, feat");
    without.row("global, no related series");
    naive.row("seasonal naive (m=52)");
    ets.row("ets");
    println!(
        "related series: average wQL × {:.3}, WAPE × {:.3} (with / without)",
        with.average_wql() / without.average_wql(),
        metrics::wape(&with.actual, &with.p50) / metrics::wape(&without.actual, &without.p50),
    );
    Ok(())
}

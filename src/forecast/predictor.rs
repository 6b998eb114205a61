//! Predictors: the managed forecasting service's trained model. A
//! `forecast_train` step backtests the predictor's algorithm (or, for
//! `auto`, every candidate) on rolling windows at the end of the history,
//! chooses, and publishes a predictor version: `manifest.json` with the
//! accuracy metrics, `items.csv` with each item's algorithm and accuracy,
//! and the global model when one was chosen. A `forecast` step then makes
//! quantile forecasts for every item from the version's data.
//!
//! Per-series algorithms are refitted on the full history when forecasting
//! (they are cheap and this is how the managed service's ETS, ARIMA and
//! NPTS behave); the global model is trained once per backtest window and
//! once on the full history, and that last model is stored.

use std::collections::BTreeMap;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::panel::Panel;
use super::{Algorithm, forecast as local_fit};
use crate::progress::Share;

/// The managed service's default forecast types.
pub const DEFAULT_QUANTILES: [f64; 3] = [0.1, 0.5, 0.9];
/// `NumberOfBacktestWindows`: 1 to 5, default 1.
pub const MAX_BACKTEST_WINDOWS: usize = 5;
/// `ForecastHorizon` is at most 500 periods (or a third of the history).
pub const MAX_HORIZON: usize = 500;
/// A per-series algorithm fits a series with at least this much history;
/// a shorter one is forecast by [`FALLBACK`] in its place.
pub const MIN_HISTORY: usize = 4;
/// What forecasts a series a method cannot fit (too short for a per-series
/// algorithm, or left out by the global model). In a backtest its errors
/// count as that method's, so every candidate is scored on the same series
/// and windows.
pub const FALLBACK: Algorithm = Algorithm::SeasonalNaive;

/// A predictor as declared under `predictors:`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PredictorSpec {
    /// `auto` (default: the candidate with the best backtest), or one of
    /// `seasonal_naive`, `ets`, `arima`, `theta`, `croston`, `npts`,
    /// `ets+theta`, `global`.
    #[serde(default = "default_algorithm")]
    pub algorithm: String,
    /// Periods to forecast (`ForecastHorizon`).
    pub horizon: usize,
    /// Forecast quantiles, each strictly between 0 and 1 (default 0.1, 0.5,
    /// 0.9), kept in ascending order whatever order the file gives: exports,
    /// metrics and [`ItemForecast::tidy`] rely on it.
    #[serde(default = "default_quantiles", deserialize_with = "ascending")]
    pub quantiles: Vec<f64>,
    /// Rolling backtest windows of `horizon` periods at the end of the
    /// history, 1 to 5 (default 1).
    #[serde(default = "default_windows")]
    pub backtest_windows: usize,
    /// `auto` chooses once for the whole `dataset` (default) or for each
    /// `item` by its own backtest (items too short for a window get the
    /// dataset's choice).
    #[serde(default)]
    pub auto_choice: AutoChoice,
    /// `auto`'s candidates (default: every algorithm).
    #[serde(default)]
    pub candidates: Option<Vec<String>>,
    /// Whether the global model uses the related time series (default true
    /// when one is declared).
    #[serde(default = "default_true")]
    pub use_related: bool,
    /// Whether the global model uses the `items` dataset's fields as static
    /// features (default true when one is declared).
    #[serde(default = "default_true")]
    pub use_item_metadata: bool,
}

fn default_algorithm() -> String {
    "auto".into()
}
fn default_quantiles() -> Vec<f64> {
    DEFAULT_QUANTILES.to_vec()
}
fn ascending<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<f64>, D::Error> {
    let mut quantiles = <Vec<f64> as serde::Deserialize>::deserialize(d)?;
    quantiles.sort_by(f64::total_cmp);
    Ok(quantiles)
}
fn default_windows() -> usize {
    1
}
fn default_true() -> bool {
    true
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AutoChoice {
    #[default]
    Dataset,
    Item,
}

/// How one item is forecast: a per-series algorithm or the global model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    Local(Algorithm),
    Global,
}

impl Method {
    pub fn name(self) -> &'static str {
        match self {
            Method::Local(a) => a.name(),
            Method::Global => "global",
        }
    }

    pub fn parse(name: &str) -> Option<Method> {
        if name == "global" {
            return Some(Method::Global);
        }
        Algorithm::ALL
            .into_iter()
            .find(|a| a.name() == name)
            .map(Method::Local)
    }

    /// Every method, the candidates of `auto` by default.
    pub fn all() -> Vec<Method> {
        Algorithm::ALL
            .into_iter()
            .map(Method::Local)
            .chain([Method::Global])
            .collect()
    }

    fn known() -> String {
        let names: Vec<&str> = Method::all().iter().map(|m| m.name()).collect();
        format!("auto, {}", names.join(", "))
    }
}

impl PredictorSpec {
    /// The methods to backtest: the one named, or `auto`'s candidates.
    pub fn methods(&self) -> Vec<Method> {
        if self.algorithm == "auto" {
            match &self.candidates {
                Some(c) => c.iter().filter_map(|n| Method::parse(n)).collect(),
                None => Method::all(),
            }
        } else {
            Method::parse(&self.algorithm).into_iter().collect()
        }
    }

    pub fn validate(&self, at: &str) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        if self.algorithm != "auto" && Method::parse(&self.algorithm).is_none() {
            problems.push((
                format!("{at}.algorithm"),
                format!(
                    "unknown algorithm {:?}; known: {}",
                    self.algorithm,
                    Method::known()
                ),
            ));
        }
        if let Some(c) = &self.candidates {
            if self.algorithm != "auto" {
                problems.push((
                    format!("{at}.candidates"),
                    "only `algorithm: auto` has candidates".into(),
                ));
            }
            if c.is_empty() {
                problems.push((format!("{at}.candidates"), "name at least one".into()));
            }
            for (i, name) in c.iter().enumerate() {
                if Method::parse(name).is_none() {
                    problems.push((
                        format!("{at}.candidates[{i}]"),
                        format!("unknown algorithm {name:?}; known: {}", Method::known()),
                    ));
                }
            }
        }
        if !(1..=MAX_HORIZON).contains(&self.horizon) {
            problems.push((
                format!("{at}.horizon"),
                format!("must be between 1 and {MAX_HORIZON} periods"),
            ));
        }
        if self.quantiles.is_empty() {
            problems.push((format!("{at}.quantiles"), "name at least one".into()));
        }
        // Named by value: the list is sorted on reading, so an index would
        // not be the file's.
        for q in &self.quantiles {
            if !(*q > 0.0 && *q < 1.0) {
                problems.push((
                    format!("{at}.quantiles"),
                    format!("{q} is not strictly between 0 and 1"),
                ));
            }
        }
        let mut sorted = self.quantiles.clone();
        sorted.sort_by(f64::total_cmp);
        sorted.dedup();
        if sorted.len() != self.quantiles.len() {
            problems.push((format!("{at}.quantiles"), "a quantile is repeated".into()));
        }
        if !(1..=MAX_BACKTEST_WINDOWS).contains(&self.backtest_windows) {
            problems.push((
                format!("{at}.backtest_windows"),
                format!("must be between 1 and {MAX_BACKTEST_WINDOWS}"),
            ));
        }
        problems
    }
}

/// The column name of a quantile in exports: 0.1 → `p10`, 0.05 → `p5`,
/// 0.025 → `p2.5`.
pub fn quantile_column(q: f64) -> String {
    let pct = (q * 1000.0).round() / 10.0;
    if pct.fract() == 0.0 {
        format!("p{}", pct as i64)
    } else {
        format!("p{pct}")
    }
}

/// One item's forecast: the mean and one vector per requested quantile.
#[derive(Debug, Clone, PartialEq)]
pub struct ItemForecast {
    pub mean: Vec<f64>,
    pub quantiles: Vec<Vec<f64>>,
}

impl ItemForecast {
    /// Orders the quantiles at each step (they may cross for sample-based
    /// models) and clamps at zero for non-negative data.
    pub fn tidy(mut self, non_negative: bool) -> ItemForecast {
        let steps = self.mean.len();
        for t in 0..steps {
            let mut column: Vec<f64> = self.quantiles.iter().map(|q| q[t]).collect();
            column.sort_by(f64::total_cmp);
            for (q, v) in self.quantiles.iter_mut().zip(column) {
                q[t] = v;
            }
        }
        if non_negative {
            self.mean.iter_mut().for_each(|v| *v = v.max(0.0));
            self.quantiles
                .iter_mut()
                .flatten()
                .for_each(|v| *v = v.max(0.0));
        }
        self
    }
}

/// Fills NaN gaps (missing periods under `fill: nan`) by linear
/// interpolation, carrying the ends flat; all-NaN becomes zeros.
pub fn interpolated(y: &[f64]) -> Vec<f64> {
    let mut out = y.to_vec();
    let known: Vec<usize> = (0..y.len()).filter(|&i| !y[i].is_nan()).collect();
    let (Some(&first), Some(&last)) = (known.first(), known.last()) else {
        return vec![0.0; y.len()];
    };
    out[..first].iter_mut().for_each(|v| *v = y[first]);
    out[last + 1..].iter_mut().for_each(|v| *v = y[last]);
    for pair in known.windows(2) {
        let (a, b) = (pair[0], pair[1]);
        for (k, v) in out[a + 1..b].iter_mut().enumerate() {
            let w = (k + 1) as f64 / (b - a) as f64;
            *v = y[a] * (1.0 - w) + y[b] * w;
        }
    }
    out
}

/// A per-series algorithm's forecast of `history`.
pub fn local_forecast(
    algorithm: Algorithm,
    history: &[f64],
    season: usize,
    horizon: usize,
    quantiles: &[f64],
    non_negative: bool,
) -> ItemForecast {
    let y = interpolated(history);
    let fit = local_fit(algorithm, &y, season, horizon);
    let clean = |v: Vec<f64>| -> Vec<f64> {
        let last = y.last().copied().unwrap_or(0.0);
        v.into_iter()
            .map(|x| if x.is_finite() { x } else { last })
            .collect()
    };
    ItemForecast {
        quantiles: quantiles.iter().map(|q| clean(fit.quantile(*q))).collect(),
        mean: clean(fit.mean),
    }
    .tidy(non_negative)
}

/// A per-series algorithm's forecast of `history`, or [`FALLBACK`]'s when
/// the history is too short for it to fit; the flag says which.
pub fn local_or_fallback(
    algorithm: Algorithm,
    history: &[f64],
    season: usize,
    horizon: usize,
    quantiles: &[f64],
    non_negative: bool,
) -> (ItemForecast, bool) {
    let fell_back = history.len() < MIN_HISTORY && algorithm != FALLBACK;
    let a = if history.len() < MIN_HISTORY {
        FALLBACK
    } else {
        algorithm
    };
    (
        local_forecast(a, history, season, horizon, quantiles, non_negative),
        fell_back,
    )
}

/// Sums from which the managed service's accuracy metrics are computed;
/// items and windows merge by adding.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Accuracy {
    pub windows: u64,
    pub points: u64,
    abs_actual: f64,
    abs_error: f64,
    squared_error: f64,
    ape_sum: f64,
    ape_points: u64,
    mase_sum: f64,
    mase_windows: u64,
    pinball: Vec<f64>,
}

impl Accuracy {
    /// Adds one backtest window of one item. NaN actuals (unknown periods)
    /// are skipped.
    pub fn add_window(
        &mut self,
        history: &[f64],
        actual: &[f64],
        forecast: &ItemForecast,
        quantiles: &[f64],
        season: usize,
    ) {
        if self.pinball.len() < quantiles.len() {
            self.pinball.resize(quantiles.len(), 0.0);
        }
        let mut abs_error = 0.0;
        let mut n = 0u64;
        for (t, &y) in actual.iter().enumerate() {
            if y.is_nan() {
                continue;
            }
            let e = y - forecast.mean[t];
            n += 1;
            self.abs_actual += y.abs();
            abs_error += e.abs();
            self.squared_error += e * e;
            if y != 0.0 {
                self.ape_sum += (e / y).abs();
                self.ape_points += 1;
            }
            for (k, tau) in quantiles.iter().enumerate() {
                let d = y - forecast.quantiles[k][t];
                self.pinball[k] += if d >= 0.0 { tau * d } else { (tau - 1.0) * d };
            }
        }
        if n == 0 {
            return;
        }
        self.windows += 1;
        self.points += n;
        self.abs_error += abs_error;
        let y = interpolated(history);
        let m = season.clamp(1, y.len().saturating_sub(1).max(1));
        if y.len() > m {
            let scale =
                y.windows(m + 1).map(|w| (w[m] - w[0]).abs()).sum::<f64>() / (y.len() - m) as f64;
            if scale > 0.0 {
                self.mase_sum += abs_error / n as f64 / scale;
                self.mase_windows += 1;
            }
        }
    }

    pub fn merge(&mut self, other: &Accuracy) {
        if self.pinball.len() < other.pinball.len() {
            self.pinball.resize(other.pinball.len(), 0.0);
        }
        for (a, b) in self.pinball.iter_mut().zip(&other.pinball) {
            *a += b;
        }
        self.windows += other.windows;
        self.points += other.points;
        self.abs_actual += other.abs_actual;
        self.abs_error += other.abs_error;
        self.squared_error += other.squared_error;
        self.ape_sum += other.ape_sum;
        self.ape_points += other.ape_points;
        self.mase_sum += other.mase_sum;
        self.mase_windows += other.mase_windows;
    }

    /// wQL(τ) = 2·Σ pinball_τ / Σ|y|; WAPE = Σ|y − ŷ| / Σ|y|; RMSE over
    /// points; MAPE over non-zero actuals; MASE averaged over item windows.
    pub fn metrics(&self, quantiles: &[f64]) -> Metrics {
        let ratio = |a: f64, b: f64| (b > 0.0).then(|| a / b);
        let wql: Vec<QuantileLoss> = quantiles
            .iter()
            .enumerate()
            .map(|(k, q)| QuantileLoss {
                quantile: *q,
                loss: ratio(
                    2.0 * self.pinball.get(k).copied().unwrap_or(0.0),
                    self.abs_actual,
                ),
            })
            .collect();
        let losses: Vec<f64> = wql.iter().filter_map(|l| l.loss).collect();
        Metrics {
            windows: self.windows,
            points: self.points,
            average_wql: (losses.len() == wql.len() && !losses.is_empty())
                .then(|| losses.iter().sum::<f64>() / losses.len() as f64),
            wql,
            wape: ratio(self.abs_error, self.abs_actual),
            rmse: ratio(self.squared_error, self.points as f64).map(f64::sqrt),
            mape: ratio(self.ape_sum, self.ape_points as f64),
            mase: ratio(self.mase_sum, self.mase_windows as f64),
        }
    }
}

/// Weighted quantile loss at one quantile.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QuantileLoss {
    pub quantile: f64,
    pub loss: Option<f64>,
}

/// The managed service's accuracy metrics of a predictor. A metric is
/// `None` where it is undefined (e.g. MAPE with only zero actuals).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    /// Item windows scored.
    pub windows: u64,
    pub points: u64,
    pub wql: Vec<QuantileLoss>,
    pub average_wql: Option<f64>,
    pub wape: Option<f64>,
    pub rmse: Option<f64>,
    pub mape: Option<f64>,
    pub mase: Option<f64>,
}

impl Metrics {
    /// The ordering `auto` uses: average wQL, then WAPE; undefined last.
    fn score(&self) -> f64 {
        self.average_wql.or(self.wape).unwrap_or(f64::INFINITY)
    }
}

/// The start (exclusive end of history) of backtest window `w`, counted
/// from the end (0 = the last `horizon` periods).
pub fn window_start(periods: usize, horizon: usize, w: usize) -> Option<usize> {
    periods.checked_sub((w + 1) * horizon)
}

/// What a backtest of every candidate found: accuracy per method, overall
/// and per item. Every method is scored on the same item windows (those
/// with history before the window); where a method could not fit a series,
/// [`FALLBACK`]'s forecast was scored as that method's.
pub struct Backtest {
    pub methods: Vec<Method>,
    /// `per_item[method][item]`.
    pub per_item: Vec<Vec<Accuracy>>,
    /// `fell_back[method][item]`: windows where the fallback stood in.
    pub fell_back: Vec<Vec<u32>>,
    /// Wall time of each method's backtest.
    pub seconds: Vec<f64>,
}

impl Backtest {
    /// How many series method `m` forecast with the fallback in at least
    /// one window.
    pub fn fallback_series(&self, m: usize) -> u64 {
        self.fell_back[m].iter().filter(|w| **w > 0).count() as u64
    }

    pub fn overall(&self, m: usize) -> Accuracy {
        let mut total = Accuracy::default();
        for a in &self.per_item[m] {
            total.merge(a);
        }
        total
    }
}

/// Produces every item's forecast for one cut of the panel: items forecast
/// from `history(item, end)` over `horizon` periods. The global model is
/// passed in as a closure so the caller decides how it is trained; it
/// reports the fraction of its work done (0 to 1) to its third argument, so
/// that a backtest's progress moves while the model trains.
pub type GlobalForecaster<'a> = dyn Fn(&Panel, usize, &(dyn Fn(f64) + Sync)) -> anyhow::Result<Vec<Option<ItemForecast>>>
    + Sync
    + 'a;

/// The units of work [`backtest`] reports to its `progress`: one per item,
/// window and method (a skipped window counts as done).
pub fn backtest_work(items: usize, methods: usize, windows: usize) -> u64 {
    (items * methods * windows) as u64
}

/// Backtests `methods` on `windows` rolling windows. `progress` is called
/// with the number of item windows finished, [`backtest_work`] in all: a
/// local method's as each item's forecast ends, the global model's as it
/// reports its training. Every item with history before a window is
/// scored under every method: a method that cannot fit it (a per-series
/// algorithm on fewer than [`MIN_HISTORY`] periods, the global model where
/// it gives no forecast) is scored with [`FALLBACK`]'s forecast, counted in
/// [`Backtest::fell_back`].
pub fn backtest(
    panel: &Panel,
    methods: &[Method],
    horizon: usize,
    windows: usize,
    quantiles: &[f64],
    global: &GlobalForecaster<'_>,
    progress: &(dyn Fn(u64) + Sync),
) -> anyhow::Result<Backtest> {
    let season = panel.frequency.season_length();
    let non_negative = panel.non_negative();
    let mut per_item = Vec::with_capacity(methods.len());
    let mut fell_back = Vec::with_capacity(methods.len());
    let mut seconds = Vec::with_capacity(methods.len());
    for method in methods {
        let started = std::time::Instant::now();
        let mut acc = vec![Accuracy::default(); panel.items.len()];
        let mut fallbacks = vec![0u32; panel.items.len()];
        for w in 0..windows {
            let Some(end) = window_start(panel.periods, horizon, w) else {
                progress(panel.items.len() as u64);
                continue;
            };
            // `(forecast, fell back)` per item with history before `end`.
            let forecasts: Vec<Option<(ItemForecast, bool)>> = match method {
                Method::Global => {
                    let share = Share::new(panel.items.len() as u64);
                    let f = global(panel, end, &|done| {
                        let n = share.advance_to(done);
                        if n > 0 {
                            progress(n);
                        }
                    })?;
                    progress(share.rest());
                    f.into_iter()
                        .chain(std::iter::repeat(None))
                        .take(panel.items.len())
                        .enumerate()
                        .map(|(i, f)| {
                            let history = panel.history(i, end)?;
                            Some(match f {
                                Some(f) => (f, false),
                                None => (
                                    local_forecast(
                                        FALLBACK,
                                        history,
                                        season,
                                        horizon,
                                        quantiles,
                                        non_negative,
                                    ),
                                    true,
                                ),
                            })
                        })
                        .collect()
                }
                Method::Local(a) => (0..panel.items.len())
                    .into_par_iter()
                    .map(|i| {
                        let f = panel.history(i, end).map(|h| {
                            local_or_fallback(*a, h, season, horizon, quantiles, non_negative)
                        });
                        progress(1);
                        f
                    })
                    .collect(),
            };
            for (i, f) in forecasts.into_iter().enumerate() {
                let Some((f, fell)) = f else { continue };
                let Some(history) = panel.history(i, end) else {
                    continue;
                };
                fallbacks[i] += u32::from(fell);
                let actual = &panel
                    .history(i, end + horizon)
                    .expect("longer than history")[history.len()..];
                acc[i].add_window(history, actual, &f, quantiles, season);
            }
        }
        per_item.push(acc);
        fell_back.push(fallbacks);
        seconds.push(started.elapsed().as_secs_f64());
    }
    Ok(Backtest {
        methods: methods.to_vec(),
        per_item,
        fell_back,
        seconds,
    })
}

/// `auto`'s decision: the dataset's best method, and each item's method.
pub struct Choice {
    pub dataset: Method,
    pub per_item: Vec<Method>,
}

/// Chooses by backtest: the method with the best average wQL over the
/// dataset; with `AutoChoice::Item`, each item's own best (items without a
/// scored window keep the dataset's). The backtest scored every method on
/// the same item windows (fallbacks included), so the scores compare.
pub fn choose(backtest: &Backtest, quantiles: &[f64], scope: AutoChoice) -> Choice {
    let overall: Vec<f64> = (0..backtest.methods.len())
        .map(|m| backtest.overall(m).metrics(quantiles).score())
        .collect();
    let best = (0..overall.len())
        .min_by(|a, b| overall[*a].total_cmp(&overall[*b]))
        .expect("at least one method");
    let dataset = backtest.methods[best];
    let items = backtest.per_item.first().map_or(0, Vec::len);
    let per_item = match scope {
        AutoChoice::Dataset => vec![dataset; items],
        AutoChoice::Item => (0..items)
            .map(|i| {
                let scores: Vec<f64> = (0..backtest.methods.len())
                    .map(|m| {
                        let a = &backtest.per_item[m][i];
                        if a.windows == 0 {
                            f64::INFINITY
                        } else {
                            a.metrics(quantiles).score()
                        }
                    })
                    .collect();
                match (0..scores.len()).min_by(|a, b| scores[*a].total_cmp(&scores[*b])) {
                    Some(m) if scores[m].is_finite() => backtest.methods[m],
                    _ => dataset,
                }
            })
            .collect(),
    };
    Choice { dataset, per_item }
}

/// The accuracy of a per-item choice: each item's windows under its method.
pub fn accuracy_of(backtest: &Backtest, per_item: &[Method]) -> Accuracy {
    let mut total = Accuracy::default();
    for (i, method) in per_item.iter().enumerate() {
        if let Some(m) = backtest.methods.iter().position(|x| x == method) {
            total.merge(&backtest.per_item[m][i]);
        }
    }
    total
}

/// How many items each method serves.
pub fn method_counts(per_item: &[Method]) -> BTreeMap<String, u64> {
    let mut counts = BTreeMap::new();
    for m in per_item {
        *counts.entry(m.name().to_string()).or_insert(0) += 1;
    }
    counts
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::forecast::frequency::Frequency;
    use crate::forecast::panel::ItemSeries;

    fn panel(series: Vec<Vec<f64>>) -> Panel {
        let periods = series.iter().map(Vec::len).max().unwrap();
        Panel {
            frequency: Frequency::DAILY,
            origin: chrono::NaiveDate::from_ymd_opt(2024, 1, 1)
                .unwrap()
                .and_hms_opt(0, 0, 0)
                .unwrap(),
            periods,
            items: (0..series.len()).map(|i| format!("item-{i}")).collect(),
            series: series
                .into_iter()
                .map(|v| ItemSeries {
                    first: periods - v.len(),
                    values: v,
                })
                .collect(),
            related: None,
            attributes: None,
            aggregated_rows: 0,
        }
    }

    fn no_global(
        _: &Panel,
        _: usize,
        _: &(dyn Fn(f64) + Sync),
    ) -> anyhow::Result<Vec<Option<ItemForecast>>> {
        anyhow::bail!("no global model here")
    }

    #[test]
    fn backtest_progress_moves_while_the_global_model_trains() {
        // The bar once counted only the local methods' series, all done in
        // the first quarter second, and then sat still while the global
        // model trained for ten seconds.
        use std::sync::atomic::{AtomicU64, Ordering};
        let series: Vec<Vec<f64>> = (0..4)
            .map(|i| (0..40).map(|t| (i + t % 7) as f64).collect())
            .collect();
        let p = panel(series);
        let methods = [Method::Local(Algorithm::SeasonalNaive), Method::Global];
        let done = AtomicU64::new(0);
        let seen_during_training = std::sync::Mutex::new(Vec::new());
        let global = |p: &Panel, _end: usize, report: &(dyn Fn(f64) + Sync)| {
            for t in 1..=4 {
                report(t as f64 / 4.0);
                seen_during_training
                    .lock()
                    .unwrap()
                    .push(done.load(Ordering::SeqCst));
            }
            Ok(vec![None; p.items.len()])
        };
        let q = [0.5];
        backtest(&p, &methods, 7, 2, &q, &global, &|n| {
            done.fetch_add(n, Ordering::SeqCst);
        })
        .unwrap();
        assert_eq!(done.into_inner(), backtest_work(4, 2, 2));
        // Locals: 4 items × 2 windows = 8; then each quarter of a global
        // training moves one of its 4 items.
        assert_eq!(
            seen_during_training.into_inner().unwrap(),
            [9, 10, 11, 12, 13, 14, 15, 16]
        );
    }

    #[test]
    fn quantile_columns_are_named_like_the_managed_service() {
        assert_eq!(quantile_column(0.1), "p10");
        assert_eq!(quantile_column(0.5), "p50");
        assert_eq!(quantile_column(0.05), "p5");
        assert_eq!(quantile_column(0.025), "p2.5");
        assert_eq!(quantile_column(0.99), "p99");
    }

    #[test]
    fn quantiles_given_in_any_order_are_kept_ascending() {
        let spec: PredictorSpec =
            serde_yaml::from_str("{horizon: 3, algorithm: naive, quantiles: [0.9, 0.5, 0.1]}")
                .unwrap();
        assert_eq!(spec.quantiles, [0.1, 0.5, 0.9]);
        // tidy orders values by the (ascending) quantiles: p10 <= p50 <= p90.
        let f = ItemForecast {
            mean: vec![5.0],
            quantiles: vec![vec![9.0], vec![5.0], vec![1.0]],
        }
        .tidy(false);
        assert_eq!(f.quantiles, [vec![1.0], vec![5.0], vec![9.0]]);
    }

    #[test]
    fn interpolation_fills_gaps_and_ends() {
        let y = [f64::NAN, 2.0, f64::NAN, f64::NAN, 5.0, f64::NAN];
        assert_eq!(interpolated(&y), [2.0, 2.0, 3.0, 4.0, 5.0, 5.0]);
        assert_eq!(interpolated(&[f64::NAN; 3]), [0.0; 3]);
    }

    #[test]
    fn accuracy_sums_give_the_managed_services_metrics() {
        let q = [0.1, 0.5, 0.9];
        let f = ItemForecast {
            mean: vec![10.0, 10.0],
            quantiles: vec![vec![8.0, 8.0], vec![10.0, 10.0], vec![12.0, 12.0]],
        };
        let mut a = Accuracy::default();
        a.add_window(&[9.0, 11.0, 10.0], &[12.0, 6.0], &f, &q, 1);
        let m = a.metrics(&q);
        // |e| = 2 + 4 over |y| = 18.
        assert!((m.wape.unwrap() - 6.0 / 18.0).abs() < 1e-12);
        assert!((m.rmse.unwrap() - (10.0f64).sqrt()).abs() < 1e-12);
        // wQL at the median is WAPE.
        assert!((m.wql[1].loss.unwrap() - m.wape.unwrap()).abs() < 1e-12);
        // p10: y=12 above 8 → 0.1·4; y=6 below 8 → 0.9·2. wQL = 2·2.2/18.
        assert!((m.wql[0].loss.unwrap() - 4.4 / 18.0).abs() < 1e-12);
        // MASE: MAE 3 over the naive in-sample MAE (2+1)/2.
        assert!((m.mase.unwrap() - 2.0).abs() < 1e-12);
        // Merging two halves equals adding both windows.
        let mut b = Accuracy::default();
        b.merge(&a);
        b.merge(&a);
        assert_eq!(b.metrics(&q).wape, m.wape);
        assert_eq!(b.windows, 2);
        // NaN actuals are skipped; all-NaN windows do not count.
        let mut c = Accuracy::default();
        c.add_window(&[1.0, 2.0], &[f64::NAN, f64::NAN], &f, &q, 1);
        assert_eq!(c.windows, 0);
        assert_eq!(c.metrics(&q).wape, None);
    }

    #[test]
    fn backtests_choose_per_dataset_or_per_item() {
        // Item 0: a weekly pattern (seasonal naive is exact); item 1: a
        // linear trend (ETS with trend beats repeating last week).
        let weekly: Vec<f64> = (0..70)
            .map(|t| [5.0, 9.0, 4.0, 7.0, 3.0, 8.0, 6.0][t % 7])
            .collect();
        let trend: Vec<f64> = (0..70).map(|t| 100.0 + 3.0 * t as f64).collect();
        let p = panel(vec![weekly, trend]);
        let methods = [
            Method::Local(Algorithm::SeasonalNaive),
            Method::Local(Algorithm::Ets),
        ];
        let q = [0.1, 0.5, 0.9];
        let b = backtest(&p, &methods, 7, 2, &q, &no_global, &|_| {}).unwrap();
        assert_eq!(b.per_item[0][0].windows, 2);
        let naive_on_weekly = b.per_item[0][0].metrics(&q).wape.unwrap();
        assert!(naive_on_weekly < 1e-9, "{naive_on_weekly}");
        let c = choose(&b, &q, AutoChoice::Item);
        assert_eq!(c.per_item, [methods[0], methods[1]]);
        let d = choose(&b, &q, AutoChoice::Dataset);
        assert!(d.per_item.iter().all(|m| *m == d.dataset));
        // The per-item choice is at least as accurate as the dataset's.
        let item_acc = accuracy_of(&b, &c.per_item)
            .metrics(&q)
            .average_wql
            .unwrap();
        let data_acc = accuracy_of(&b, &d.per_item)
            .metrics(&q)
            .average_wql
            .unwrap();
        assert!(item_acc <= data_acc);
        assert_eq!(method_counts(&c.per_item).len(), 2);
        // The global model's errors propagate.
        assert!(backtest(&p, &[Method::Global], 7, 1, &q, &no_global, &|_| {}).is_err());
    }

    #[test]
    fn auto_compares_every_candidate_on_the_same_series() {
        // Two long flat series that ETS forecasts exactly, and one short,
        // large, growing series with 2 periods of history before the
        // window: too short for ETS, which falls back to seasonal naive.
        // The (stand-in) global model is off by one everywhere.
        let long = vec![10.0; 40];
        let short: Vec<f64> = (0..9).map(|t| 1000.0 + 100.0 * t as f64).collect();
        let p = panel(vec![long.clone(), long, short]);
        let h = 7;
        let global = |p: &Panel, end: usize, _: &(dyn Fn(f64) + Sync)| {
            Ok((0..p.items.len())
                .map(|i| {
                    let seen = p.history(i, end)?.len();
                    let actual = &p.history(i, end + h).unwrap()[seen..];
                    let mean: Vec<f64> = actual.iter().map(|a| a + 1.0).collect();
                    Some(ItemForecast {
                        quantiles: vec![mean.clone(); 3],
                        mean,
                    })
                })
                .collect())
        };
        let methods = [Method::Local(Algorithm::Ets), Method::Global];
        let q = [0.1, 0.5, 0.9];
        let b = backtest(&p, &methods, h, 1, &q, &global, &|_| {}).unwrap();
        // Both are scored on all three series.
        for m in 0..2 {
            assert!(b.per_item[m].iter().all(|a| a.windows == 1), "method {m}");
        }
        assert_eq!((b.fallback_series(0), b.fallback_series(1)), (1, 0));
        assert_eq!(b.fell_back[0], [0, 0, 1]);
        // The old comparison scored ETS only on the series it fitted, and
        // there it beats the global model's score over every series...
        let mut ets_on_its_own = Accuracy::default();
        ets_on_its_own.merge(&b.per_item[0][0]);
        ets_on_its_own.merge(&b.per_item[0][1]);
        let wql = |a: &Accuracy| a.metrics(&q).average_wql.unwrap();
        assert!(wql(&ets_on_its_own) < wql(&b.overall(1)));
        // ...but on the same series (its fallback included) it loses.
        assert!(wql(&b.overall(0)) > wql(&b.overall(1)));
        let c = choose(&b, &q, AutoChoice::Dataset);
        assert_eq!(c.dataset, Method::Global);
        // Per item, the long series keep ETS, the short one the global model.
        let c = choose(&b, &q, AutoChoice::Item);
        assert_eq!(
            c.per_item,
            [
                Method::Local(Algorithm::Ets),
                Method::Local(Algorithm::Ets),
                Method::Global
            ]
        );
        // Forecasting a short series does what the backtest scored.
        let history = [1000.0, 1100.0, 1200.0];
        let (f, fell) = local_or_fallback(Algorithm::Ets, &history, 7, 3, &q, true);
        assert!(fell);
        assert_eq!(
            f,
            local_forecast(FALLBACK, &history, 7, 3, &q, true),
            "the fallback's forecast"
        );
        let (_, fell) = local_or_fallback(Algorithm::Ets, &[1.0; 8], 7, 3, &q, true);
        assert!(!fell);
        let (_, fell) = local_or_fallback(FALLBACK, &history, 7, 3, &q, true);
        assert!(!fell, "seasonal naive is its own fallback");
    }

    #[test]
    fn forecasts_are_ordered_and_non_negative_for_demand() {
        let y = [0.0, 0.0, 3.0, 0.0, 1.0, 0.0, 0.0, 2.0, 0.0, 0.0];
        let f = local_forecast(Algorithm::Ets, &y, 1, 4, &[0.9, 0.1, 0.5], true);
        for t in 0..4 {
            assert!(
                f.quantiles[0][t] <= f.quantiles[1][t] && f.quantiles[1][t] <= f.quantiles[2][t]
            );
            assert!(f.quantiles[0][t] >= 0.0);
        }
    }

    #[test]
    fn specs_are_checked() {
        let spec: PredictorSpec = serde_yaml::from_str(
            "algorithm: prophet\nhorizon: 0\nquantiles: [0.5, 1.5, 0.5]\nbacktest_windows: 9",
        )
        .unwrap();
        let problems: Vec<String> = spec
            .validate("predictors.p")
            .into_iter()
            .map(|(a, m)| format!("{a}: {m}"))
            .collect();
        let text = problems.join("\n");
        assert!(
            text.contains(
                "predictors.p.algorithm: unknown algorithm \"prophet\"; known: auto, seasonal_naive"
            ),
            "{text}"
        );
        assert!(
            text.contains("predictors.p.horizon: must be between 1 and 500"),
            "{text}"
        );
        assert!(
            text.contains("predictors.p.quantiles: 1.5 is not strictly between 0 and 1"),
            "{text}"
        );
        assert!(text.contains("a quantile is repeated"), "{text}");
        assert!(
            text.contains("predictors.p.backtest_windows: must be between 1 and 5"),
            "{text}"
        );
        let ok: PredictorSpec = serde_yaml::from_str("horizon: 8").unwrap();
        assert!(ok.validate("p").is_empty());
        assert_eq!(ok.quantiles, DEFAULT_QUANTILES);
        assert_eq!(ok.methods().len(), Method::all().len());
    }
}

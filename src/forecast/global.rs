//! The global forecasting model: one gradient-boosted quantile model
//! trained across all series (the managed service's CNN-QR / DeepAR+ role),
//! on lags, rolling means, calendar features, related time series known
//! into the future (price, promotion flags) and static item attributes
//! (brand, store, category; see `attributes.rs`). Direct multi-horizon: each
//! training row is (series, forecast origin, step ahead), with the step as
//! a feature, so a forecast never feeds on its own output. Targets and lags
//! are divided by each series' recent mean, so one model serves all scales.
//!
//! Memory: each candidate row is kept with probability `max_rows /
//! candidates` (2M by default) before its features are built, so peak
//! memory is about `max_rows × features × 10` bytes (f32 rows, briefly
//! twice while gathered, and their u8 bins, row- and column-major) whatever
//! the panel size: under 1 GB for 2M rows of 40 features (36 with three
//! related series).

use chrono::{Datelike, NaiveDateTime, Timelike};
use rand::{Rng, SeedableRng, rngs::StdRng};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::frequency::Frequency;
use super::gbm::{Booster, BoosterParams};

/// One series of the panel.
#[derive(Debug, Clone)]
pub struct GlobalSeries<'a> {
    /// Names the series in errors.
    pub id: &'a str,
    /// The observed target, one value per period; NaN marks a missing period.
    pub target: &'a [f64],
    /// The period of `target[0]`.
    pub start: NaiveDateTime,
    /// The related series, in the order of `GlobalConfig::related`, aligned
    /// with `target`. Training needs `target.len()` values of each;
    /// forecasting needs `target.len() + horizon` (their future is known).
    /// NaN is allowed (a missing feature).
    pub related: Vec<&'a [f64]>,
    /// The item's attributes, in the order of `GlobalConfig::attributes`:
    /// numbers, or a categorical attribute's level index; NaN when unknown.
    pub attributes: &'a [f64],
}

/// What to train and how. `GlobalConfig::new` gives the defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GlobalConfig {
    /// Periods forecast from the end of each series.
    pub horizon: usize,
    /// Quantiles to forecast (each in (0, 1)); the median is always trained
    /// too, as the point forecast.
    pub quantiles: Vec<f64>,
    pub frequency: Frequency,
    /// Names of the related series, in the order of `GlobalSeries::related`.
    #[serde(default)]
    pub related: Vec<String>,
    /// Static item attributes, in the order of `GlobalSeries::attributes`.
    #[serde(default)]
    pub attributes: Vec<Attribute>,
    /// Target lags 1..=lags as features (the seasonal lag comes on top).
    #[serde(default = "default_lags")]
    pub lags: usize,
    /// Non-missing values whose mean scales a series (and relates a related
    /// series to its recent level).
    #[serde(default = "default_scale_window")]
    pub scale_window: usize,
    /// Training rows are sampled down to about this many (the memory
    /// bound; Bernoulli sampling, so within a few √max_rows of it).
    #[serde(default = "default_max_rows")]
    pub max_rows: usize,
    /// Model ln(0.1 + y / scale) instead of y / scale: multiplicative
    /// effects (price elasticity, promotions) become additive. Quantiles
    /// map back exactly, the transform being increasing.
    #[serde(default = "default_log_target")]
    pub log_target: bool,
    #[serde(default)]
    pub booster: BoosterParams,
}

/// A static item attribute the model uses as a feature.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Attribute {
    pub name: String,
    /// A categorical attribute's levels: its feature is the index of the
    /// item's level here. Empty for a numeric attribute.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub levels: Vec<String>,
}

fn default_lags() -> usize {
    8
}
fn default_scale_window() -> usize {
    13
}
fn default_max_rows() -> usize {
    2_000_000
}
fn default_log_target() -> bool {
    true
}

/// Keeps ln defined at zero demand.
const LOG_OFFSET: f64 = 0.1;

impl GlobalConfig {
    /// p10, p50 and p90 (the managed service's default quantiles) and the
    /// default hyperparameters.
    pub fn new(horizon: usize, frequency: Frequency) -> GlobalConfig {
        GlobalConfig {
            horizon,
            quantiles: vec![0.1, 0.5, 0.9],
            frequency,
            related: Vec::new(),
            attributes: Vec::new(),
            lags: default_lags(),
            scale_window: default_scale_window(),
            max_rows: default_max_rows(),
            log_target: default_log_target(),
            booster: BoosterParams::default(),
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum GlobalError {
    #[error("invalid global model config: {reason}")]
    Config { reason: String },
    #[error(
        "series {series}: {found} related series given, the model expects {expected} ({names})"
    )]
    RelatedCount {
        series: String,
        expected: usize,
        found: usize,
        names: String,
    },
    #[error("series {series}: {found} item attributes given, the model expects {expected}")]
    AttributeCount {
        series: String,
        expected: usize,
        found: usize,
    },
    #[error("series {series}: related series '{column}' has {len} values, {needed} needed")]
    RelatedTooShort {
        series: String,
        column: String,
        len: usize,
        needed: usize,
    },
    #[error("no training rows: every series is empty, all-missing or all-zero")]
    NoTrainingRows,
}

/// A forecast of `horizon` periods from the end of a series.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QuantilePaths {
    /// The first forecast period.
    pub start: NaiveDateTime,
    /// The median, the point forecast.
    pub p50: Vec<f64>,
    /// (quantile, path) for each configured quantile, ascending; at every
    /// step the values are non-decreasing in the quantile and non-negative.
    pub quantiles: Vec<(f64, Vec<f64>)>,
}

impl QuantilePaths {
    pub fn quantile(&self, p: f64) -> Option<&[f64]> {
        self.quantiles
            .iter()
            .find(|(q, _)| (q - p).abs() < 1e-9)
            .map(|(_, v)| v.as_slice())
    }
}

/// A trained global model, storable as an artifact (serde).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GlobalModel {
    config: GlobalConfig,
    /// The quantiles the booster forecasts: the configured ones and 0.5.
    trained: Vec<f64>,
    booster: Booster,
    /// Training rows actually used (after sampling).
    pub rows: usize,
}

/// Features of the period forecast: see `feature_names`.
struct Layout {
    lags: usize,
    season: usize,
    related: usize,
    attributes: usize,
}

const WINDOWS: [usize; 2] = [4, 13];
const RELATED_FEATURES: usize = 5;
const CALENDAR: [&str; 5] = [
    "week_of_year",
    "month",
    "day_of_month",
    "day_of_week",
    "hour",
];

impl Layout {
    fn new(config: &GlobalConfig) -> Layout {
        Layout {
            lags: config.lags,
            season: config.frequency.season_length(),
            related: config.related.len(),
            attributes: config.attributes.len(),
        }
    }

    fn names(&self, related: &[String], attributes: &[Attribute]) -> Vec<String> {
        let mut names = vec!["step".to_string(), "log_history".into(), "log_scale".into()];
        names.extend((1..=self.lags).map(|i| format!("lag_{i}")));
        names.push("seasonal_lag".into());
        names.extend(WINDOWS.iter().map(|w| format!("mean_{w}")));
        names.push("mean_season".into());
        names.push("std_13".into());
        names.extend(CALENDAR.iter().map(|c| c.to_string()));
        for r in related {
            names.push(r.clone());
            names.push(format!("{r}_relative"));
            names.push(format!("{r}_previous"));
            names.push(format!("{r}_to_recent_max"));
            names.push(format!("{r}_at_origin"));
        }
        names.extend(attributes.iter().map(|a| format!("item_{}", a.name)));
        names
    }

    fn len(&self) -> usize {
        3 + self.lags
            + 1
            + WINDOWS.len()
            + 2
            + CALENDAR.len()
            + RELATED_FEATURES * self.related
            + self.attributes
    }
}

/// A series prepared for feature building.
struct Prepared<'a> {
    series: &'a GlobalSeries<'a>,
    /// The target with missing periods carried forward (NaN before the
    /// first observation).
    filled: Vec<f64>,
    /// Calendar features of periods 0..len + horizon.
    calendar: Vec<[f32; 5]>,
}

impl<'a> Prepared<'a> {
    fn new(series: &'a GlobalSeries<'a>, frequency: Frequency, periods: usize) -> Prepared<'a> {
        let mut last = f64::NAN;
        let filled = series
            .target
            .iter()
            .map(|v| {
                if v.is_finite() {
                    last = *v;
                }
                last
            })
            .collect();
        let calendar = (0..periods)
            .map(|t| {
                let at = frequency.add(series.start, t as i64);
                [
                    at.iso_week().week() as f32,
                    at.month() as f32,
                    at.day() as f32,
                    at.weekday().num_days_from_monday() as f32,
                    at.hour() as f32,
                ]
            })
            .collect();
        Prepared {
            series,
            filled,
            calendar,
        }
    }

    /// The mean of the last `window` observed values before `origin`, else
    /// of all observed values; None when that is zero or nothing is observed.
    fn scale(&self, origin: usize, window: usize) -> Option<f64> {
        let observed = || {
            self.series.target[..origin]
                .iter()
                .rev()
                .filter(|v| v.is_finite())
        };
        let recent: Vec<f64> = observed().take(window).copied().collect();
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
        let m = mean(&recent);
        if m.abs() > 1e-12 {
            return Some(m.abs());
        }
        let all: Vec<f64> = observed().copied().collect();
        let m = mean(&all);
        (m.abs() > 1e-12).then_some(m.abs())
    }

    /// Appends the features of step `step` (1-based) from `origin` (the
    /// number of periods known) to `out`.
    fn features(
        &self,
        layout: &Layout,
        window: usize,
        origin: usize,
        step: usize,
        scale: f64,
        out: &mut Vec<f32>,
    ) {
        let t = origin + step - 1;
        let y = &self.filled[..origin];
        let lag = |i: usize| origin.checked_sub(i).map_or(f64::NAN, |at| y[at] / scale);
        out.push(step as f32);
        out.push((origin as f32).ln_1p());
        out.push(scale.ln() as f32);
        for i in 1..=layout.lags {
            out.push(lag(i) as f32);
        }
        // The same period one season ago (or whole seasons further back,
        // to reach the history).
        let seasonal = if layout.season > 1 {
            let back = (t + 1 - origin).div_ceil(layout.season) * layout.season;
            t.checked_sub(back).map_or(f64::NAN, |at| y[at] / scale)
        } else {
            f64::NAN
        };
        out.push(seasonal as f32);
        let tail_mean = |w: usize| {
            let v: Vec<f64> = y[origin.saturating_sub(w)..]
                .iter()
                .filter(|v| v.is_finite())
                .copied()
                .collect();
            if v.is_empty() {
                (f64::NAN, f64::NAN)
            } else {
                let m = v.iter().sum::<f64>() / v.len() as f64;
                let var = v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / v.len() as f64;
                (m / scale, var.sqrt() / scale)
            }
        };
        for w in WINDOWS {
            out.push(tail_mean(w).0 as f32);
        }
        out.push(if layout.season > 1 {
            tail_mean(layout.season).0 as f32
        } else {
            f32::NAN
        });
        out.push(tail_mean(13).1 as f32);
        out.extend_from_slice(&self.calendar[t]);
        for r in &self.series.related {
            let known = &r[origin.saturating_sub(window)..origin];
            let known: Vec<f64> = known.iter().filter(|v| v.is_finite()).copied().collect();
            let level = known.iter().sum::<f64>() / known.len().max(1) as f64;
            out.push(r[t] as f32);
            out.push(if level.abs() > 1e-12 {
                (r[t] / level) as f32
            } else {
                f32::NAN
            });
            out.push(t.checked_sub(1).map_or(f32::NAN, |p| r[p] as f32));
            // Against the recent maximum: for a price, the depth of a
            // discount from the regular price.
            let max = known.iter().copied().fold(f64::NAN, f64::max);
            out.push(if max.abs() > 1e-12 {
                (r[t] / max) as f32
            } else {
                f32::NAN
            });
            // The last known period: tells a promotion-inflated lag apart.
            out.push(origin.checked_sub(1).map_or(f32::NAN, |p| r[p] as f32));
        }
        out.extend(self.series.attributes.iter().map(|a| *a as f32));
    }
}

fn validate(config: &GlobalConfig) -> Result<(), GlobalError> {
    let mut problems = Vec::new();
    if config.horizon == 0 {
        problems.push("horizon must be at least 1".to_string());
    }
    if config.quantiles.iter().any(|q| !(*q > 0.0 && *q < 1.0)) {
        problems.push(format!(
            "quantiles must lie in (0, 1): {:?}",
            config.quantiles
        ));
    }
    if config.scale_window == 0 {
        problems.push("scale_window must be at least 1".into());
    }
    if config.max_rows == 0 {
        problems.push("max_rows must be at least 1".into());
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(GlobalError::Config {
            reason: problems.join("; "),
        })
    }
}

/// Checks the attributes and related series of `s`: `extra` periods of
/// the related series beyond the target.
fn check_series(s: &GlobalSeries, config: &GlobalConfig, extra: usize) -> Result<(), GlobalError> {
    if s.attributes.len() != config.attributes.len() {
        return Err(GlobalError::AttributeCount {
            series: s.id.to_string(),
            expected: config.attributes.len(),
            found: s.attributes.len(),
        });
    }
    if s.related.len() != config.related.len() {
        return Err(GlobalError::RelatedCount {
            series: s.id.to_string(),
            expected: config.related.len(),
            found: s.related.len(),
            names: config.related.join(", "),
        });
    }
    let needed = s.target.len() + extra;
    for (r, name) in s.related.iter().zip(&config.related) {
        if r.len() < needed {
            return Err(GlobalError::RelatedTooShort {
                series: s.id.to_string(),
                column: name.clone(),
                len: r.len(),
                needed,
            });
        }
    }
    Ok(())
}

/// Trains one model across `series`. Every (series, origin, step) whose
/// label is observed is a candidate row; candidates are sampled down to
/// `config.max_rows` with the booster's seed.
pub fn train(series: &[GlobalSeries], config: &GlobalConfig) -> Result<GlobalModel, GlobalError> {
    train_reporting(series, config, &|_| {})
}

/// [`train`], calling `done` with the fraction of the training finished
/// (0 to 1) as it goes: after each tree, the bulk of the time.
pub fn train_reporting(
    series: &[GlobalSeries],
    config: &GlobalConfig,
    done: &dyn Fn(f64),
) -> Result<GlobalModel, GlobalError> {
    validate(config)?;
    for s in series {
        check_series(s, config, 0)?;
    }
    let layout = Layout::new(config);
    let width = layout.len();
    let h = config.horizon;
    let candidates: usize = series
        .iter()
        .map(|s| {
            (1..s.target.len())
                .map(|o| h.min(s.target.len() - o))
                .sum::<usize>()
        })
        .sum();
    let keep = (config.max_rows as f64 / candidates.max(1) as f64).min(1.0);
    let seed = config.booster.seed;
    let parts: Vec<(Vec<f32>, Vec<f32>)> = series
        .par_iter()
        .enumerate()
        .map(|(index, s)| {
            let mut rng =
                StdRng::seed_from_u64(seed ^ (index as u64).wrapping_mul(0xD134_2543_DE82_EF95));
            let prepared = Prepared::new(s, config.frequency, s.target.len());
            let (mut rows, mut labels) = (Vec::new(), Vec::new());
            for origin in 1..s.target.len() {
                let Some(scale) = prepared.scale(origin, config.scale_window) else {
                    continue;
                };
                for step in 1..=h.min(s.target.len() - origin) {
                    let y = s.target[origin + step - 1];
                    if !y.is_finite() || (keep < 1.0 && rng.random::<f64>() >= keep) {
                        continue;
                    }
                    prepared.features(&layout, config.scale_window, origin, step, scale, &mut rows);
                    labels.push(if config.log_target {
                        (LOG_OFFSET + y / scale).max(LOG_OFFSET).ln() as f32
                    } else {
                        (y / scale) as f32
                    });
                }
            }
            (rows, labels)
        })
        .collect();
    let n: usize = parts.iter().map(|p| p.1.len()).sum();
    if n == 0 {
        return Err(GlobalError::NoTrainingRows);
    }
    let mut rows = Vec::with_capacity(n * width);
    let mut labels = Vec::with_capacity(n);
    for (r, l) in parts {
        rows.extend_from_slice(&r);
        labels.extend_from_slice(&l);
    }
    let mut trained = config.quantiles.clone();
    trained.push(0.5);
    trained.sort_by(f64::total_cmp);
    trained.dedup_by(|a, b| (*a - *b).abs() < 1e-9);
    let trees = config.booster.trees.max(1) as f64;
    let booster = Booster::fit_reporting(&rows, width, &labels, &trained, &config.booster, &|t| {
        done(t as f64 / trees)
    });
    Ok(GlobalModel {
        config: config.clone(),
        trained,
        booster,
        rows: n,
    })
}

impl GlobalModel {
    pub fn config(&self) -> &GlobalConfig {
        &self.config
    }

    /// Names of the features, in the booster's order.
    pub fn feature_names(&self) -> Vec<String> {
        Layout::new(&self.config).names(&self.config.related, &self.config.attributes)
    }

    /// Forecasts `horizon` periods after the end of `s`. A series with
    /// nothing observed, or only zeros, gets zeros.
    pub fn predict(&self, s: &GlobalSeries) -> Result<QuantilePaths, GlobalError> {
        let config = &self.config;
        check_series(s, config, config.horizon)?;
        let h = config.horizon;
        let origin = s.target.len();
        let start = config.frequency.add(s.start, origin as i64);
        let layout = Layout::new(config);
        let prepared = Prepared::new(s, config.frequency, origin + h);
        let steps: Vec<Vec<f64>> = match prepared.scale(origin, config.scale_window) {
            None => vec![vec![0.0; self.trained.len()]; h],
            Some(scale) => (1..=h)
                .map(|step| {
                    let mut row = Vec::with_capacity(layout.len());
                    prepared.features(&layout, config.scale_window, origin, step, scale, &mut row);
                    let mut v: Vec<f64> = self
                        .booster
                        .predict(&row)
                        .into_iter()
                        .map(|q| {
                            let scaled = if config.log_target {
                                q.exp() - LOG_OFFSET
                            } else {
                                q
                            };
                            (scaled * scale).max(0.0)
                        })
                        .collect();
                    // Sorting the values of increasing quantiles removes
                    // crossings (the rearrangement of Chernozhukov et al.).
                    v.sort_by(f64::total_cmp);
                    v
                })
                .collect(),
        };
        let path = |q: f64| -> Vec<f64> {
            let at = self
                .trained
                .iter()
                .position(|t| (t - q).abs() < 1e-9)
                .expect("configured quantiles are trained");
            steps.iter().map(|v| v[at]).collect()
        };
        let p50 = path(0.5);
        let mut quantiles: Vec<(f64, Vec<f64>)> =
            config.quantiles.iter().map(|q| (*q, path(*q))).collect();
        quantiles.sort_by(|a, b| a.0.total_cmp(&b.0));
        Ok(QuantilePaths {
            start,
            p50,
            quantiles,
        })
    }

    /// `predict` over many series, in parallel.
    pub fn predict_all(&self, series: &[GlobalSeries]) -> Result<Vec<QuantilePaths>, GlobalError> {
        series.par_iter().map(|s| self.predict(s)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::forecast::metrics;

    fn start() -> NaiveDateTime {
        NaiveDateTime::parse_from_str("2024-01-01 00:00:00", "%Y-%m-%d %H:%M:%S").unwrap()
    }

    /// A fast booster for small panels.
    fn config(horizon: usize, frequency: Frequency, related: &[&str]) -> GlobalConfig {
        let mut c = GlobalConfig::new(horizon, frequency);
        c.related = related.iter().map(|r| r.to_string()).collect();
        c.booster.trees = 150;
        c.booster.learning_rate = 0.1;
        c.booster.min_rows_in_leaf = 30;
        c
    }

    /// Normal noise from two uniforms (Box–Muller).
    fn normal(rng: &mut StdRng) -> f64 {
        let (u, v): (f64, f64) = (rng.random::<f64>().max(1e-12), rng.random());
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    }

    /// Demand = base × price^−2 × lognormal noise, with random discounts;
    /// bases span two orders of magnitude.
    fn price_panel(series: usize, periods: usize, seed: u64) -> Vec<(String, Vec<f64>, Vec<f64>)> {
        let mut rng = StdRng::seed_from_u64(seed);
        (0..series)
            .map(|i| {
                let base = 10.0 * 100f64.powf(rng.random::<f64>());
                let price: Vec<f64> = (0..periods)
                    .map(|_| {
                        if rng.random::<f64>() < 0.3 {
                            0.5 + 0.4 * rng.random::<f64>()
                        } else {
                            1.0
                        }
                    })
                    .collect();
                let demand = price
                    .iter()
                    .map(|p| base * p.powf(-2.0) * (0.1 * normal(&mut rng)).exp())
                    .collect();
                (format!("s{i}"), demand, price)
            })
            .collect()
    }

    /// Trains on all but the last `h` periods and returns (actual, forecast)
    /// pooled over the held-out periods.
    fn holdout(
        panel: &[(String, Vec<f64>, Vec<f64>)],
        config: &GlobalConfig,
    ) -> (Vec<f64>, Vec<QuantilePaths>) {
        let h = config.horizon;
        let with = !config.related.is_empty();
        let series: Vec<GlobalSeries> = panel
            .iter()
            .map(|(id, y, p)| GlobalSeries {
                id,
                target: &y[..y.len() - h],
                start: start(),
                related: if with { vec![&p[..]] } else { Vec::new() },
                attributes: &[],
            })
            .collect();
        let model = train(&series, config).unwrap();
        let forecasts = model.predict_all(&series).unwrap();
        let actual = panel
            .iter()
            .flat_map(|(_, y, _)| y[y.len() - h..].to_vec())
            .collect();
        (actual, forecasts)
    }

    #[test]
    fn learns_a_price_effect_from_the_related_series() {
        let panel = price_panel(60, 60, 1);
        let (actual, with) = holdout(&panel, &config(4, Frequency::WEEKLY, &["price"]));
        let (_, without) = holdout(&panel, &config(4, Frequency::WEEKLY, &[]));
        let p50 = |f: &[QuantilePaths]| f.iter().flat_map(|f| f.p50.clone()).collect::<Vec<f64>>();
        let (w, wo) = (
            metrics::wape(&actual, &p50(&with)),
            metrics::wape(&actual, &p50(&without)),
        );
        // Noise alone leaves a WAPE of about 0.08; discounts that double or
        // quadruple demand cost the model without prices far more.
        assert!(
            w < 0.15 && w < 0.5 * wo,
            "WAPE with price {w}, without {wo}"
        );
    }

    #[test]
    fn quantiles_are_ordered_and_p10_p90_covers_about_80_percent() {
        let panel = price_panel(80, 60, 2);
        let (actual, forecasts) = holdout(&panel, &config(4, Frequency::WEEKLY, &["price"]));
        let mut inside = 0;
        for (i, f) in forecasts.iter().enumerate() {
            assert_eq!(
                f.quantiles.iter().map(|q| q.0).collect::<Vec<_>>(),
                [0.1, 0.5, 0.9]
            );
            let (lo, mid, hi) = (
                f.quantile(0.1).unwrap(),
                f.quantile(0.5).unwrap(),
                f.quantile(0.9).unwrap(),
            );
            assert_eq!(mid, f.p50.as_slice());
            for s in 0..4 {
                assert!(0.0 <= lo[s] && lo[s] <= mid[s] && mid[s] <= hi[s], "{f:?}");
                let y = actual[i * 4 + s];
                inside += (lo[s] <= y && y <= hi[s]) as usize;
            }
        }
        let coverage = inside as f64 / actual.len() as f64;
        assert!(
            (0.65..=0.93).contains(&coverage),
            "p10–p90 coverage {coverage}"
        );
    }

    #[test]
    fn forecasts_a_season_from_calendar_and_seasonal_lag() {
        let pattern = [0.5, 0.6, 0.8, 1.0, 1.2, 1.5, 1.8, 1.6, 1.2, 1.0, 0.7, 0.5];
        let mut rng = StdRng::seed_from_u64(3);
        let panel: Vec<(String, Vec<f64>, Vec<f64>)> = (0..50)
            .map(|i| {
                let base = 20.0 + 500.0 * rng.random::<f64>();
                let y = (0..72)
                    .map(|t| base * pattern[t % 12] * (1.0 + 0.05 * normal(&mut rng)))
                    .collect();
                (format!("s{i}"), y, Vec::new())
            })
            .collect();
        let (actual, forecasts) = holdout(&panel, &config(12, Frequency::MONTHLY, &[]));
        let p50: Vec<f64> = forecasts.iter().flat_map(|f| f.p50.clone()).collect();
        let e = metrics::wape(&actual, &p50);
        // A flat forecast at the true level scores about 0.3.
        assert!(e < 0.1, "WAPE {e}");
        assert_eq!(forecasts[0].start, Frequency::MONTHLY.add(start(), 60));
    }

    #[test]
    fn missing_values_short_constant_and_zero_series_get_sane_forecasts() {
        let mut rng = StdRng::seed_from_u64(4);
        let mut owned: Vec<(String, Vec<f64>)> = (0..30)
            .map(|i| {
                let y = (0..50)
                    .map(|t| {
                        if rng.random::<f64>() < 0.2 {
                            f64::NAN
                        } else {
                            100.0 + (t % 4) as f64 * 10.0
                        }
                    })
                    .collect();
                (format!("gappy{i}"), y)
            })
            .collect();
        owned.push(("short".into(), vec![120.0, f64::NAN, 130.0]));
        owned.push(("constant".into(), vec![7.0; 40]));
        owned.push(("zero".into(), vec![0.0; 40]));
        owned.push(("missing".into(), vec![f64::NAN; 10]));
        owned.push(("empty".into(), Vec::new()));
        let series: Vec<GlobalSeries> = owned
            .iter()
            .map(|(id, y)| GlobalSeries {
                id,
                target: y,
                start: start(),
                related: Vec::new(),
                attributes: &[],
            })
            .collect();
        let model = train(&series, &config(6, Frequency::DAILY, &[])).unwrap();
        let forecast = |id: &str| {
            let s = series.iter().find(|s| s.id == id).unwrap();
            model.predict(s).unwrap()
        };
        for s in &series {
            let f = model.predict(s).unwrap();
            for (_, path) in &f.quantiles {
                assert!(
                    path.len() == 6 && path.iter().all(|v| v.is_finite() && *v >= 0.0),
                    "{}: {f:?}",
                    s.id
                );
            }
        }
        let short = forecast("short");
        assert!(
            short.p50.iter().all(|v| (60.0..250.0).contains(v)),
            "{short:?}"
        );
        let constant = forecast("constant");
        assert!(
            constant.p50.iter().all(|v| (v - 7.0).abs() < 1.0),
            "{constant:?}"
        );
        for id in ["zero", "missing", "empty"] {
            assert!(
                forecast(id)
                    .quantiles
                    .iter()
                    .all(|(_, p)| p.iter().all(|v| *v == 0.0)),
                "{id}"
            );
        }
        // The model survives a round trip through its artifact form.
        let json = serde_json::to_string(&model).unwrap();
        let back: GlobalModel = serde_json::from_str(&json).unwrap();
        assert_eq!(
            back.predict(&series[0]).unwrap(),
            model.predict(&series[0]).unwrap()
        );
    }

    #[test]
    fn a_categorical_item_attribute_tells_new_items_how_they_respond_to_price() {
        // Demand of category 0 items is price^−3, of category 1 items does
        // not depend on price (a brand's elasticity, say). An item with a
        // long history shows its response in its lags; a new one, with 3
        // periods, has only its category to go by.
        let (periods, h, new_history) = (60, 4, 3);
        let panel = price_panel(300, periods, 3);
        let elastic = |i: usize| i.is_multiple_of(2);
        let is_new = |i: usize| i.is_multiple_of(3);
        struct Item<'a> {
            id: &'a str,
            demand: Vec<f64>,
            price: &'a [f64],
            brand: [f64; 1],
        }
        let owned: Vec<Item> = panel
            .iter()
            .enumerate()
            .map(|(i, (id, y, p))| {
                // price_panel's demand is base × price^−2 × noise.
                let power = if elastic(i) { 3.0 } else { 0.0 };
                Item {
                    id,
                    demand: y
                        .iter()
                        .zip(p)
                        .map(|(v, p)| v * p.powf(2.0 - power))
                        .collect(),
                    price: p,
                    brand: [if elastic(i) { 0.0 } else { 1.0 }],
                }
            })
            .collect();
        let first = |i: usize| {
            if is_new(i) {
                periods - h - new_history
            } else {
                0
            }
        };
        let score = |c: &GlobalConfig| {
            let series: Vec<GlobalSeries> = owned
                .iter()
                .enumerate()
                .map(|(i, item)| GlobalSeries {
                    id: item.id,
                    target: &item.demand[first(i)..periods - h],
                    start: Frequency::WEEKLY.add(start(), first(i) as i64),
                    related: vec![&item.price[first(i)..]],
                    attributes: if c.attributes.is_empty() {
                        &[]
                    } else {
                        &item.brand
                    },
                })
                .collect();
            let model = train(&series, c).unwrap();
            let (mut actual, mut p50) = (Vec::new(), Vec::new());
            for (i, s) in series.iter().enumerate().filter(|(i, _)| is_new(*i)) {
                actual.extend_from_slice(&owned[i].demand[periods - h..]);
                p50.extend(model.predict(s).unwrap().p50);
            }
            (metrics::wape(&actual, &p50), model.feature_names())
        };
        let mut c = config(h, Frequency::WEEKLY, &["price"]);
        let (without, _) = score(&c);
        c.attributes = vec![Attribute {
            name: "brand".into(),
            levels: vec!["elastic".into(), "loyal".into()],
        }];
        let (with, names) = score(&c);
        assert_eq!(names.last().map(String::as_str), Some("item_brand"));
        assert!(
            with < 0.8 * without,
            "new items' WAPE with the attribute {with}, without {without}"
        );
    }

    #[test]
    fn related_series_too_short_or_missing_are_errors_naming_the_column() {
        let y = vec![1.0; 20];
        let price = vec![1.0; 20];
        let promo = vec![0.0; 24];
        let s = GlobalSeries {
            id: "a",
            target: &y,
            start: start(),
            related: vec![&promo, &price],
            attributes: &[],
        };
        let config = config(4, Frequency::DAILY, &["promo", "price"]);
        let model = train(std::slice::from_ref(&s), &config).unwrap();
        let e = model.predict(&s).unwrap_err();
        assert_eq!(
            e.to_string(),
            "series a: related series 'price' has 20 values, 24 needed"
        );
        let bare = GlobalSeries {
            related: Vec::new(),
            ..s.clone()
        };
        let e = train(&[bare], &config).unwrap_err();
        assert!(
            matches!(
                e,
                GlobalError::RelatedCount {
                    expected: 2,
                    found: 0,
                    ..
                }
            ),
            "{e}"
        );
        let tagged = GlobalSeries {
            attributes: &[1.0],
            ..s.clone()
        };
        let e = train(&[tagged], &config).unwrap_err();
        assert_eq!(
            e.to_string(),
            "series a: 1 item attributes given, the model expects 0"
        );
        let mut bad = config.clone();
        bad.quantiles = vec![0.1, 1.5];
        bad.horizon = 0;
        let e = train(&[s], &bad).unwrap_err().to_string();
        assert!(e.contains("horizon") && e.contains("quantiles"), "{e}");
    }
}

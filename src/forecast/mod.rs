//! Demand forecasting, the managed forecasting service's job:
//! - `frequency`, `panel`: periods, and regular series built from the time
//!   series datasets (aggregation, fill, related series over the horizon);
//! - `models`, `arima`, `npts`, `decompose`: the per-series algorithms
//!   (seasonal naive, ETS by AICc, Theta, Croston, automatic ARIMA, NPTS and
//!   their combinations), dispatched by [`forecast`];
//! - `global`, `gbm`, `attributes`: one gradient-boosted quantile model
//!   across series, with lags, calendar, related and item metadata features;
//! - `metrics`, `predictor`: accuracy measures, backtests, `auto`'s choice;
//! - `job`: predictor versions and forecast exports in the warehouse;
//! - `plot`: SVG charts of one item.

pub mod arima;
pub mod attributes;
pub mod decompose;
pub mod frequency;
pub mod gbm;
pub mod global;
pub mod job;
pub mod metrics;
pub mod models;
pub mod npts;
pub mod panel;
pub mod plot;
pub mod predictor;

pub use models::Fit;

/// A forecasting algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    SeasonalNaive,
    Ets,
    Theta,
    Croston,
    /// The mean of ETS and Theta forecasts.
    Combination,
    /// Automatic ARIMA (stepwise search by AICc; see `arima.rs`).
    Arima,
    /// Non-parametric time series: sample paths of past values (see
    /// `npts.rs`); seasonal when the season length is above 1.
    Npts,
    /// The mean of ETS, Theta and ARIMA forecasts.
    ArimaCombination,
}

impl Algorithm {
    pub const ALL: [Algorithm; 8] = [
        Algorithm::SeasonalNaive,
        Algorithm::Ets,
        Algorithm::Theta,
        Algorithm::Croston,
        Algorithm::Combination,
        Algorithm::Arima,
        Algorithm::Npts,
        Algorithm::ArimaCombination,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Algorithm::SeasonalNaive => "seasonal_naive",
            Algorithm::Ets => "ets",
            Algorithm::Theta => "theta",
            Algorithm::Croston => "croston",
            Algorithm::Combination => "ets+theta",
            Algorithm::Arima => "arima",
            Algorithm::Npts => "npts",
            Algorithm::ArimaCombination => "ets+theta+arima",
        }
    }

    /// The algorithm with this `name()`.
    pub fn parse(name: &str) -> Option<Algorithm> {
        Algorithm::ALL.into_iter().find(|a| a.name() == name)
    }
}

/// Forecasts `h` steps of `y` (season length `m`, 1 for none). Theta runs
/// on the deseasonalised series when `y` is seasonal at lag `m`, and its
/// forecast is reseasonalised; ETS weighs seasonal states and that
/// decomposition by AICc itself.
pub fn forecast(algorithm: Algorithm, y: &[f64], m: usize, h: usize) -> Fit {
    match algorithm {
        Algorithm::SeasonalNaive => models::seasonal_naive(y, m, h),
        Algorithm::Croston => models::croston(y, h),
        Algorithm::Ets => models::ets(y, m, h),
        Algorithm::Theta => deseasonalised(y, m, h, models::theta),
        Algorithm::Combination => average(&[
            forecast(Algorithm::Ets, y, m, h),
            forecast(Algorithm::Theta, y, m, h),
        ]),
        Algorithm::Arima => arima::arima(y, m, h),
        Algorithm::Npts => npts::npts(y, m, h, &npts::NptsOptions::default()),
        Algorithm::ArimaCombination => average(&[
            forecast(Algorithm::Ets, y, m, h),
            forecast(Algorithm::Theta, y, m, h),
            forecast(Algorithm::Arima, y, m, h),
        ]),
    }
}

/// The equal-weight mean of forecasts, and of their sigmas.
fn average(fits: &[Fit]) -> Fit {
    let k = fits.len() as f64;
    let mean_of = |part: fn(&Fit) -> &Vec<f64>| -> Vec<f64> {
        (0..part(&fits[0]).len())
            .map(|i| fits.iter().map(|f| part(f)[i]).sum::<f64>() / k)
            .collect()
    };
    Fit::normal(mean_of(|f| &f.mean), mean_of(|f| &f.sigma))
}

fn deseasonalised(y: &[f64], m: usize, h: usize, model: fn(&[f64], usize) -> Fit) -> Fit {
    if !decompose::is_seasonal(y, m) {
        return model(y, h);
    }
    let idx = decompose::seasonal_indices(y, m);
    let n = y.len();
    let adjusted: Vec<f64> = y.iter().enumerate().map(|(t, v)| v / idx[t % m]).collect();
    let fit = model(&adjusted, h);
    let season = |i: usize| idx[(n + i) % m];
    let reseasonalise =
        |v: &[f64]| -> Vec<f64> { v.iter().enumerate().map(|(i, v)| v * season(i)).collect() };
    Fit::normal(reseasonalise(&fit.mean), reseasonalise(&fit.sigma))
}

impl Fit {
    /// The forecast's quantile `p` (e.g. 0.1, 0.5, 0.9): from the sorted
    /// samples when the model drew them (interpolating between order
    /// statistics), under a normal error otherwise.
    pub fn quantile(&self, p: f64) -> Vec<f64> {
        if let Some(samples) = &self.samples {
            return samples
                .iter()
                .zip(&self.mean)
                .map(|(s, mean)| empirical_quantile(s, p).unwrap_or(*mean))
                .collect();
        }
        let z = inverse_normal(p);
        self.mean
            .iter()
            .zip(&self.sigma)
            .map(|(m, s)| m + z * s)
            .collect()
    }
}

/// Quantile `p` of ascending `sorted` values, interpolating linearly
/// between order statistics (R's type 7); None when empty.
fn empirical_quantile(sorted: &[f64], p: f64) -> Option<f64> {
    let last = sorted.len().checked_sub(1)?;
    let position = p.clamp(0.0, 1.0) * last as f64;
    let below = position.floor() as usize;
    let above = (below + 1).min(last);
    let fraction = position - below as f64;
    // A weighted sum rather than a difference, which could overflow.
    Some(sorted[below] * (1.0 - fraction) + sorted[above] * fraction)
}

/// The standard normal quantile (Acklam's rational approximation, relative
/// error below 1.2e-9).
pub fn inverse_normal(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969683028665376e1,
        2.209460984245205e2,
        -2.759285104469687e2,
        1.38357751867269e2,
        -3.066479806614716e1,
        2.506628277459239,
    ];
    const B: [f64; 5] = [
        -5.447609879822406e1,
        1.615858368580409e2,
        -1.556989798598866e2,
        6.680131188771972e1,
        -1.328068155288572e1,
    ];
    const C: [f64; 6] = [
        -7.784894002430293e-3,
        -3.223964580411365e-1,
        -2.400758277161838,
        -2.549732539343734,
        4.374664141464968,
        2.938163982698783,
    ];
    const D: [f64; 4] = [
        7.784695709041462e-3,
        3.224671290700398e-1,
        2.445134137142996,
        3.754408661907416,
    ];
    let p = p.clamp(1e-12, 1.0 - 1e-12);
    let tail = |q: f64| {
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    if p < 0.02425 {
        tail((-2.0 * p.ln()).sqrt())
    } else if p > 1.0 - 0.02425 {
        -tail((-2.0 * (1.0 - p).ln()).sqrt())
    } else {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normal_quantiles() {
        assert!(inverse_normal(0.5).abs() < 1e-9);
        assert!((inverse_normal(0.9) - 1.281_551_565).abs() < 1e-6);
        assert!((inverse_normal(0.1) + 1.281_551_565).abs() < 1e-6);
        assert!((inverse_normal(0.995) - 2.575_829_3).abs() < 1e-6);
    }

    #[test]
    fn seasonal_series_are_forecast_with_their_season() {
        let pattern = [0.7, 1.3, 1.1, 0.9];
        let y: Vec<f64> = (0..48)
            .map(|t| (200.0 + 2.0 * t as f64) * pattern[t % 4])
            .collect();
        for a in [
            Algorithm::Ets,
            Algorithm::Theta,
            Algorithm::Combination,
            Algorithm::Arima,
            Algorithm::ArimaCombination,
        ] {
            let f = forecast(a, &y, 4, 4);
            let actual: Vec<f64> = (48..52)
                .map(|t| (200.0 + 2.0 * t as f64) * pattern[t % 4])
                .collect();
            let e = metrics::smape(&actual, &f.mean);
            assert!(e < 3.0, "{a:?}: sMAPE {e} {f:?}");
            let (lo, hi) = (f.quantile(0.1), f.quantile(0.9));
            assert!(lo.iter().zip(&hi).all(|(l, h)| l <= h));
        }
    }

    #[test]
    fn every_algorithm_parses_from_its_name_and_answers_quantiles() {
        let y: Vec<f64> = (0..40).map(|t| 30.0 + ((t * 7) % 5) as f64).collect();
        for a in Algorithm::ALL {
            assert_eq!(Algorithm::parse(a.name()), Some(a));
            let f = forecast(a, &y, 4, 6);
            let (lo, mid, hi) = (f.quantile(0.1), f.quantile(0.5), f.quantile(0.9));
            for i in 0..6 {
                assert!(lo[i] <= mid[i] && mid[i] <= hi[i], "{a:?}: {f:?}");
            }
        }
        assert_eq!(Algorithm::parse("prophet"), None);
    }

    #[test]
    fn sample_quantiles_interpolate_between_sorted_draws() {
        let fit = Fit::from_samples(vec![vec![4.0, 1.0, 3.0, 2.0, 5.0]]);
        assert_eq!(fit.mean, vec![3.0]);
        assert_eq!(fit.quantile(0.0), vec![1.0]);
        assert_eq!(fit.quantile(0.5), vec![3.0]);
        assert_eq!(fit.quantile(0.625), vec![3.5]);
        assert_eq!(fit.quantile(1.0), vec![5.0]);
        assert!((fit.sigma[0] - 2.5f64.sqrt()).abs() < 1e-12);
    }
}

/// Accuracy of an algorithm over rolling backtest windows at the end of a
/// history, as the managed service reports a predictor's metrics.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct BacktestMetrics {
    /// Windows that fitted (a history too short for a window skips it).
    pub windows: usize,
    /// wQL at each requested quantile, in the order given.
    pub wql: Vec<(f64, f64)>,
    /// The mean of the wQL values.
    pub average_wql: f64,
    pub wape: f64,
    pub rmse: f64,
    pub mape: f64,
    pub mase: f64,
}

/// Backtests `algorithm` on `windows` rolling windows of `h` steps ending at
/// the end of `y` (the last window is the last `h` points); measures pool
/// every window's points.
pub fn backtest(
    algorithm: Algorithm,
    y: &[f64],
    m: usize,
    h: usize,
    windows: usize,
    quantiles: &[f64],
) -> Option<BacktestMetrics> {
    let mut actual = Vec::new();
    let mut mean = Vec::new();
    let mut by_quantile: Vec<Vec<f64>> = vec![Vec::new(); quantiles.len()];
    let mut mase_sum = 0.0;
    let mut mase_n = 0;
    let mut fitted = 0;
    for w in (0..windows).rev() {
        let end = y.len().checked_sub(w * h)?;
        let start = end.checked_sub(h)?;
        if start < 3 {
            continue;
        }
        let (history, truth) = (&y[..start], &y[start..end]);
        let fit = forecast(algorithm, history, m, h);
        let scaled = metrics::mase(history, truth, &fit.mean, m);
        if scaled.is_finite() {
            mase_sum += scaled;
            mase_n += 1;
        }
        for (q, out) in quantiles.iter().zip(by_quantile.iter_mut()) {
            out.extend(fit.quantile(*q));
        }
        actual.extend_from_slice(truth);
        mean.extend(fit.mean);
        fitted += 1;
    }
    if fitted == 0 {
        return None;
    }
    let wql: Vec<(f64, f64)> = quantiles
        .iter()
        .zip(&by_quantile)
        .map(|(q, f)| (*q, metrics::wql(&actual, f, *q)))
        .collect();
    Some(BacktestMetrics {
        windows: fitted,
        average_wql: wql.iter().map(|x| x.1).sum::<f64>() / wql.len().max(1) as f64,
        wql,
        wape: metrics::wape(&actual, &mean),
        rmse: metrics::rmse(&actual, &mean),
        mape: metrics::mape(&actual, &mean),
        mase: if mase_n == 0 {
            f64::NAN
        } else {
            mase_sum / mase_n as f64
        },
    })
}

#[cfg(test)]
mod backtest_tests {
    use super::*;

    #[test]
    fn rolling_windows_pool_their_points_and_quantiles_are_scored() {
        let y: Vec<f64> = (0..60).map(|t| 50.0 + (t % 7) as f64).collect();
        let b = backtest(Algorithm::SeasonalNaive, &y, 7, 7, 3, &[0.1, 0.5, 0.9]).unwrap();
        assert_eq!(b.windows, 3);
        // A weekly pattern repeated exactly: seasonal naive is perfect.
        assert!(b.wape < 1e-12 && b.rmse < 1e-12, "{b:?}");
        assert_eq!(b.wql.len(), 3);
        // Too short for any window.
        assert!(backtest(Algorithm::Ets, &y[..5], 1, 7, 2, &[0.5]).is_none());
        // With noise: wQL at the median is WAPE (2·½·Σ|e| / Σ|y|), as the
        // managed service's definitions imply.
        let noisy: Vec<f64> = (0..80).map(|t| 100.0 + ((t * 37) % 11) as f64).collect();
        let b = backtest(Algorithm::Ets, &noisy, 1, 5, 4, &[0.1, 0.5, 0.9]).unwrap();
        assert_eq!(b.windows, 4);
        assert!((b.wql[1].1 - b.wape).abs() < 1e-12 && b.wape > 0.0, "{b:?}");
        let mean = (b.wql[0].1 + b.wql[1].1 + b.wql[2].1) / 3.0;
        assert!((b.average_wql - mean).abs() < 1e-12);
    }
}

//! The per-series models: seasonal naive, exponential smoothing (ETS with
//! additive errors: simple, Holt's trend, damped trend, chosen by AICc),
//! Theta (the M3 winner) and Croston for intermittent demand. Seasonality
//! is handled outside them, by classical multiplicative decomposition (see
//! `decompose.rs`), as the M3 Theta method does.

/// A point forecast and its standard deviation, per step ahead; models
/// that draw sample paths (NPTS) also keep each step's sorted draws, and
/// their quantiles are read from those rather than from a normal error.
#[derive(Debug, Clone, PartialEq)]
pub struct Fit {
    pub mean: Vec<f64>,
    pub sigma: Vec<f64>,
    /// Per step, the sample values in ascending order (None for models
    /// with a normal error).
    pub samples: Option<Vec<Vec<f64>>>,
}

impl Fit {
    /// A forecast with a normal error of standard deviation `sigma`.
    pub fn normal(mean: Vec<f64>, sigma: Vec<f64>) -> Fit {
        Fit {
            mean,
            sigma,
            samples: None,
        }
    }

    /// A forecast from draws per step: their mean, standard deviation and
    /// sorted values. Non-finite draws are dropped.
    pub fn from_samples(by_step: Vec<Vec<f64>>) -> Fit {
        let mut mean = Vec::with_capacity(by_step.len());
        let mut sigma = Vec::with_capacity(by_step.len());
        let mut samples = Vec::with_capacity(by_step.len());
        for mut draws in by_step {
            draws.retain(|v| v.is_finite());
            draws.sort_by(f64::total_cmp);
            // A running mean and variance (Welford), safe near f64::MAX.
            let (mut mu, mut m2) = (0.0f64, 0.0f64);
            for (i, v) in draws.iter().enumerate() {
                let delta = v - mu;
                mu += delta / (i + 1) as f64;
                m2 += delta * (v - mu);
            }
            let sd = if draws.len() > 1 {
                (m2 / (draws.len() - 1) as f64).sqrt()
            } else {
                0.0
            };
            mean.push(if mu.is_finite() {
                mu
            } else {
                draws[draws.len() / 2]
            });
            sigma.push(if sd.is_finite() { sd } else { f64::MAX });
            samples.push(draws);
        }
        Fit {
            mean,
            sigma,
            samples: Some(samples),
        }
    }
}

/// Repeats the last season: ŷ(n+i) = y(n − m + i mod m).
pub fn seasonal_naive(y: &[f64], m: usize, h: usize) -> Fit {
    let n = y.len();
    let m = m.clamp(1, n.max(1));
    let mean: Vec<f64> = (0..h).map(|i| y[n - m + i % m]).collect();
    let residuals: Vec<f64> = y.windows(m + 1).map(|w| w[m] - w[0]).collect();
    let s = std_dev(&residuals);
    let sigma = (0..h).map(|i| s * ((i / m + 1) as f64).sqrt()).collect();
    Fit::normal(mean, sigma)
}

/// An additive-error exponential smoothing form.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum EtsForm {
    /// Simple exponential smoothing (A,N,N).
    Simple,
    /// Holt's linear trend (A,A,N).
    Trend,
    /// Damped trend (A,Ad,N).
    Damped,
}

#[derive(Debug, Clone, Copy)]
struct EtsParams {
    alpha: f64,
    beta: f64,
    phi: f64,
    level0: f64,
    trend0: f64,
}

/// One pass of the recursions: the sum of squared one-step errors and the
/// final level and trend.
fn ets_pass(y: &[f64], p: &EtsParams) -> (f64, f64, f64) {
    let (mut l, mut b, mut sse) = (p.level0, p.trend0, 0.0);
    for &v in y {
        let forecast = l + p.phi * b;
        let e = v - forecast;
        sse += e * e;
        l = forecast + p.alpha * e;
        b = p.phi * b + p.beta * e;
    }
    (sse, l, b)
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// Maps unconstrained search coordinates to valid parameters: 0 < α < 1,
/// 0 < β < α, 0.8 ≤ φ ≤ 0.98 (the usual bounds).
fn params_of(form: EtsForm, x: &[f64], level0: f64, trend0: f64) -> EtsParams {
    let alpha = 0.0001 + 0.9998 * sigmoid(x[0]);
    let (beta, phi, trend0) = match form {
        EtsForm::Simple => (0.0, 0.0, 0.0),
        EtsForm::Trend => (alpha * sigmoid(x[1]), 1.0, trend0),
        EtsForm::Damped => (alpha * sigmoid(x[1]), 0.8 + 0.18 * sigmoid(x[2]), trend0),
    };
    EtsParams {
        alpha,
        beta,
        phi,
        level0,
        trend0,
    }
}

/// A fitted ETS form: its forecast and its AICc (None if the series is too
/// short for the form's parameters).
pub fn ets_form(y: &[f64], form: EtsForm, h: usize) -> Option<(Fit, f64)> {
    let n = y.len();
    let k = match form {
        EtsForm::Simple => 2,
        EtsForm::Trend => 4,
        EtsForm::Damped => 5,
    };
    if n < k + 2 {
        return None;
    }
    // Initial states from a line through the first points, as is usual.
    let head = &y[..n.min(10)];
    let (intercept, slope) = ols(head);
    let level0 = if form == EtsForm::Simple {
        y[0]
    } else {
        intercept
    };
    let dims = match form {
        EtsForm::Simple => 1,
        EtsForm::Trend => 2,
        EtsForm::Damped => 3,
    };
    let objective = |x: &[f64]| ets_pass(y, &params_of(form, x, level0, slope)).0;
    let x = nelder_mead(&objective, &vec![0.0; dims], 300);
    let p = params_of(form, &x, level0, slope);
    let (sse, l, b) = ets_pass(y, &p);
    let nf = n as f64;
    let aicc = nf * (sse.max(1e-12) / nf).ln()
        + 2.0 * k as f64
        + 2.0 * (k * (k + 1)) as f64 / (nf - k as f64 - 1.0);
    let var = sse / (nf - k as f64).max(1.0);
    let mut mean = Vec::with_capacity(h);
    let mut sigma = Vec::with_capacity(h);
    let (mut damp_sum, mut acc) = (0.0, 0.0);
    let mut phi_pow = 1.0;
    for _ in 0..h {
        phi_pow *= p.phi;
        damp_sum += phi_pow;
        mean.push(l + damp_sum * b);
        sigma.push((var * (1.0 + acc)).sqrt());
        // c_j = α + β(φ + … + φ^j): the weight of an error j steps back.
        let c = p.alpha + p.beta * damp_sum;
        acc += c * c;
    }
    Some((Fit::normal(mean, sigma), aicc))
}

/// ETS with the form chosen by AICc among simple, trend and damped trend.
pub fn ets(y: &[f64], h: usize) -> Fit {
    [EtsForm::Simple, EtsForm::Trend, EtsForm::Damped]
        .into_iter()
        .filter_map(|f| ets_form(y, f, h))
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(fit, _)| fit)
        .unwrap_or_else(|| seasonal_naive(y, 1, h))
}

/// The Theta method of Assimakopoulos and Nikolopoulos as Hyndman and
/// Billah (2003) showed it: simple exponential smoothing with a drift of
/// half the series' linear trend.
pub fn theta(y: &[f64], h: usize) -> Fit {
    let n = y.len();
    let Some((ses, _)) = ets_form(y, EtsForm::Simple, h) else {
        return seasonal_naive(y, 1, h);
    };
    let (_, slope) = ols(y);
    let alpha = ses_alpha(y);
    let decay = (1.0 - alpha).powi(n as i32) / alpha;
    let mean = (0..h)
        .map(|i| ses.mean[i] + 0.5 * slope * (i as f64 + 1.0 / alpha - decay))
        .collect();
    Fit::normal(mean, ses.sigma)
}

fn ses_alpha(y: &[f64]) -> f64 {
    let objective = |x: &[f64]| ets_pass(y, &params_of(EtsForm::Simple, x, y[0], 0.0)).0;
    let x = nelder_mead(&objective, &[0.0], 300);
    params_of(EtsForm::Simple, &x, y[0], 0.0).alpha
}

/// Croston's method with the Syntetos–Boylan correction, for intermittent
/// demand: demand sizes and the intervals between them smoothed apart
/// (α = 0.1); the forecast is a flat rate.
pub fn croston(y: &[f64], h: usize) -> Fit {
    const ALPHA: f64 = 0.1;
    let (mut size, mut interval, mut since) = (None::<f64>, 1.0f64, 1.0f64);
    for &v in y {
        if v != 0.0 {
            match size {
                None => {
                    size = Some(v);
                    interval = since;
                }
                Some(z) => {
                    size = Some(z + ALPHA * (v - z));
                    interval += ALPHA * (since - interval);
                }
            }
            since = 1.0;
        } else {
            since += 1.0;
        }
    }
    let rate = size.map_or(0.0, |z| (1.0 - ALPHA / 2.0) * z / interval);
    let s = std_dev(&y.iter().map(|v| v - rate).collect::<Vec<_>>());
    Fit::normal(vec![rate; h], vec![s; h])
}

/// Least-squares line through (1, y₁), (2, y₂), …: (value at t = 0, slope).
fn ols(y: &[f64]) -> (f64, f64) {
    let n = y.len() as f64;
    if y.len() < 2 {
        return (y.first().copied().unwrap_or(0.0), 0.0);
    }
    let t_mean = (n + 1.0) / 2.0;
    let y_mean = y.iter().sum::<f64>() / n;
    let (mut sxy, mut sxx) = (0.0, 0.0);
    for (i, v) in y.iter().enumerate() {
        let dt = i as f64 + 1.0 - t_mean;
        sxy += dt * (v - y_mean);
        sxx += dt * dt;
    }
    let slope = sxy / sxx;
    (y_mean - slope * t_mean, slope)
}

fn std_dev(v: &[f64]) -> f64 {
    if v.len() < 2 {
        return 0.0;
    }
    let m = v.iter().sum::<f64>() / v.len() as f64;
    (v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (v.len() - 1) as f64).sqrt()
}

/// Nelder–Mead minimisation from `x0` (unit initial simplex).
fn nelder_mead(f: &dyn Fn(&[f64]) -> f64, x0: &[f64], iterations: usize) -> Vec<f64> {
    let d = x0.len();
    let mut simplex: Vec<(Vec<f64>, f64)> = (0..=d)
        .map(|i| {
            let mut x = x0.to_vec();
            if i > 0 {
                x[i - 1] += 1.0;
            }
            let v = f(&x);
            (x, v)
        })
        .collect();
    for _ in 0..iterations {
        simplex.sort_by(|a, b| a.1.total_cmp(&b.1));
        if (simplex[d].1 - simplex[0].1).abs() <= 1e-10 * (1.0 + simplex[0].1.abs()) {
            break;
        }
        let centroid: Vec<f64> = (0..d)
            .map(|j| simplex[..d].iter().map(|(x, _)| x[j]).sum::<f64>() / d as f64)
            .collect();
        let along = |t: f64| -> Vec<f64> {
            (0..d)
                .map(|j| centroid[j] + t * (simplex[d].0[j] - centroid[j]))
                .collect()
        };
        let reflected = along(-1.0);
        let fr = f(&reflected);
        if fr < simplex[0].1 {
            let expanded = along(-2.0);
            let fe = f(&expanded);
            simplex[d] = if fe < fr {
                (expanded, fe)
            } else {
                (reflected, fr)
            };
        } else if fr < simplex[d - 1].1 {
            simplex[d] = (reflected, fr);
        } else {
            let contracted = along(0.5);
            let fc = f(&contracted);
            if fc < simplex[d].1 {
                simplex[d] = (contracted, fc);
            } else {
                let best = simplex[0].0.clone();
                for (x, v) in simplex.iter_mut().skip(1) {
                    for j in 0..d {
                        x[j] = best[j] + 0.5 * (x[j] - best[j]);
                    }
                    *v = f(x);
                }
            }
        }
    }
    simplex.sort_by(|a, b| a.1.total_cmp(&b.1));
    simplex.swap_remove(0).0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_straight_line_is_continued_by_trend_models_and_theta_adds_half_its_slope() {
        let y: Vec<f64> = (0..30).map(|t| 10.0 + 2.0 * t as f64).collect();
        let fit = ets(&y, 3);
        for (i, v) in fit.mean.iter().enumerate() {
            assert!((v - (10.0 + 2.0 * (30 + i) as f64)).abs() < 0.5, "{fit:?}");
        }
        let th = theta(&y, 3);
        assert!(th.mean[0] > y[29] && th.mean[2] > th.mean[0], "{th:?}");
    }

    #[test]
    fn a_flat_noisy_series_gets_a_flat_forecast_with_growing_intervals() {
        let y: Vec<f64> = (0..40)
            .map(|t| 100.0 + if t % 2 == 0 { 3.0 } else { -3.0 })
            .collect();
        let fit = ets(&y, 4);
        assert!(fit.mean.iter().all(|v| (v - 100.0).abs() < 4.0), "{fit:?}");
        assert!(fit.sigma[3] >= fit.sigma[0]);
    }

    #[test]
    fn seasonal_naive_repeats_the_last_season() {
        let y = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0];
        assert_eq!(
            seasonal_naive(&y, 4, 6).mean,
            [5.0, 6.0, 7.0, 8.0, 5.0, 6.0]
        );
    }

    #[test]
    fn croston_forecasts_the_demand_rate() {
        // 6 every third period: a rate near 2 per period.
        let y: Vec<f64> = (0..60)
            .map(|t| if t % 3 == 2 { 6.0 } else { 0.0 })
            .collect();
        let fit = croston(&y, 2);
        assert!((fit.mean[0] - 1.9).abs() < 0.15, "{fit:?}");
    }
}

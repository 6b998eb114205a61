//! The per-series models: seasonal naive, exponential smoothing (ETS with
//! additive or multiplicative errors and no, linear or damped trend, chosen
//! by AICc),
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

/// The trend form of an exponential smoothing model.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum EtsForm {
    /// Simple exponential smoothing (·,N,N).
    Simple,
    /// Holt's linear trend (·,A,N).
    Trend,
    /// Damped trend (·,Ad,N).
    Damped,
}

/// The error form of an exponential smoothing model.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum EtsError {
    /// y = ŷ + ε.
    Additive,
    /// y = ŷ(1 + ε), for positive series.
    Multiplicative,
}

#[derive(Debug, Clone, Copy)]
struct EtsParams {
    alpha: f64,
    beta: f64,
    phi: f64,
    level0: f64,
    trend0: f64,
}

/// What one pass of the recursions leaves.
struct EtsPass {
    /// The sum of squared one-step errors: absolute for additive errors,
    /// relative to the forecast for multiplicative ones.
    sse: f64,
    /// Σ ln ŷ (multiplicative errors only).
    log_fitted: f64,
    level: f64,
    trend: f64,
}

impl EtsPass {
    /// −2 log-likelihood up to a constant shared by both error forms
    /// (Hyndman et al., 2008): n·ln Σe², or n·ln Σ(e/ŷ)² + 2·Σ ln ŷ.
    fn neg2_loglik(&self, n: usize) -> f64 {
        n as f64 * self.sse.max(1e-300).ln() + 2.0 * self.log_fitted
    }
}

/// One pass of the recursions. Both error forms share the point
/// recursions (ETS(M,A,N)'s l = ŷ(1 + αε) is ŷ + α(y − ŷ)); they differ in
/// the likelihood. A multiplicative pass whose forecast leaves the positive
/// half-line has an infinite SSE.
fn ets_pass(y: &[f64], p: &EtsParams, error: EtsError) -> EtsPass {
    let (mut l, mut b, mut sse, mut log_fitted) = (p.level0, p.trend0, 0.0, 0.0);
    for &v in y {
        let forecast = l + p.phi * b;
        let e = v - forecast;
        match error {
            EtsError::Additive => sse += e * e,
            EtsError::Multiplicative => {
                if forecast <= 0.0 {
                    sse = f64::INFINITY;
                    break;
                }
                sse += (e / forecast).powi(2);
                log_fitted += forecast.ln();
            }
        }
        l = forecast + p.alpha * e;
        b = p.phi * b + p.beta * e;
    }
    EtsPass {
        sse,
        log_fitted,
        level: l,
        trend: b,
    }
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

/// A fitted additive-error ETS form: its forecast and its AICc (None if
/// the series is too short for the form's parameters).
pub fn ets_form(y: &[f64], form: EtsForm, h: usize) -> Option<(Fit, f64)> {
    ets_model(y, EtsError::Additive, form, h)
}

/// A fitted ETS model: its forecast and its AICc from its error form's
/// likelihood (None if the series is too short for the model's parameters
/// or, for multiplicative errors, not positive). The smoothing parameters
/// minimise −2 log-likelihood; the initial states stay at their heuristic
/// values (optimising them too did worse on M3).
pub fn ets_model(y: &[f64], error: EtsError, form: EtsForm, h: usize) -> Option<(Fit, f64)> {
    let n = y.len();
    // Smoothing parameters, initial states and σ, as R's forecast::ets counts.
    let k = match form {
        EtsForm::Simple => 3,
        EtsForm::Trend => 5,
        EtsForm::Damped => 6,
    };
    if n < k + 2 || (error == EtsError::Multiplicative && y.iter().any(|v| *v <= 0.0)) {
        return None;
    }
    // Initial states from a line through the first points: the level is the
    // line at the first observation, as simple smoothing starts from y₁.
    let head = &y[..n.min(10)];
    let (intercept, slope) = ols(head);
    let level0 = if form == EtsForm::Simple {
        y[0]
    } else {
        intercept + slope
    };
    let dims = match form {
        EtsForm::Simple => 1,
        EtsForm::Trend => 2,
        EtsForm::Damped => 3,
    };
    // Additive errors minimise the SSE itself (the same minimum as n·ln SSE).
    let criterion = |pass: &EtsPass| match error {
        EtsError::Additive => pass.sse,
        EtsError::Multiplicative => pass.neg2_loglik(n),
    };
    let objective = |x: &[f64]| criterion(&ets_pass(y, &params_of(form, x, level0, slope), error));
    let x = nelder_mead(&objective, &vec![0.0; dims], 300);
    let p = params_of(form, &x, level0, slope);
    let pass = ets_pass(y, &p, error);
    if !pass.sse.is_finite() {
        return None;
    }
    let nf = n as f64;
    let aicc =
        pass.neg2_loglik(n) + 2.0 * k as f64 + 2.0 * (k * (k + 1)) as f64 / (nf - k as f64 - 1.0);
    let var = pass.sse / (nf - k as f64).max(1.0);
    let (l, b) = (pass.level, pass.trend);
    let mut mean = Vec::with_capacity(h);
    let mut sigma = Vec::with_capacity(h);
    let (mut damp_sum, mut acc) = (0.0, 0.0);
    let mut phi_pow = 1.0;
    for _ in 0..h {
        phi_pow *= p.phi;
        damp_sum += phi_pow;
        let point = l + damp_sum * b;
        mean.push(point);
        // For multiplicative errors σ is relative: scaled by the forecast,
        // a first-order approximation of the exact variance (small σ).
        let scale = match error {
            EtsError::Additive => 1.0,
            EtsError::Multiplicative => point.abs(),
        };
        sigma.push(scale * (var * (1.0 + acc)).sqrt());
        // c_j = α + β(φ + … + φ^j): the weight of an error j steps back.
        let c = p.alpha + p.beta * damp_sum;
        acc += c * c;
    }
    Some((Fit::normal(mean, sigma), aicc))
}

/// ETS with the model chosen by AICc among additive and (for positive
/// series) multiplicative errors, each with no, linear or damped trend.
pub fn ets(y: &[f64], h: usize) -> Fit {
    [EtsError::Additive, EtsError::Multiplicative]
        .into_iter()
        .flat_map(|e| [EtsForm::Simple, EtsForm::Trend, EtsForm::Damped].map(|f| (e, f)))
        .filter_map(|(e, f)| ets_model(y, e, f, h))
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
    let objective = |x: &[f64]| {
        ets_pass(
            y,
            &params_of(EtsForm::Simple, x, y[0], 0.0),
            EtsError::Additive,
        )
        .sse
    };
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
    fn errors_proportional_to_the_level_are_fitted_better_as_multiplicative() {
        // Growth of 5% a period with ±8% noise: the spread grows with the level.
        let y: Vec<f64> = (0..40)
            .map(|t| 100.0 * 1.05f64.powi(t) * if t % 2 == 0 { 1.08 } else { 0.92 })
            .collect();
        let aicc = |e| ets_model(&y, e, EtsForm::Trend, 3).expect("fits").1;
        assert!(aicc(EtsError::Multiplicative) < aicc(EtsError::Additive));
        let negative: Vec<f64> = y.iter().map(|v| v - 150.0).collect();
        assert!(ets_model(&negative, EtsError::Multiplicative, EtsForm::Simple, 3).is_none());
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

//! Automatic ARIMA in the way of Hyndman and Khandakar's `auto.arima`: the
//! seasonal difference D from the seasonal strength, d from KPSS tests, then
//! a stepwise search over (p, q)(P, Q) and the constant by AICc. Models are
//! fitted by conditional least squares on the differenced series, with the
//! pre-sample at the mean so that every model is scored on the same points;
//! forecasts and their sigma come from the integrated model's recursions and
//! psi-weights. Values are scaled by their largest magnitude while fitting,
//! so huge series fit as well as small ones.

use std::collections::HashMap;

use super::models::Fit;

/// KPSS level-stationarity statistic's 5% critical value.
const KPSS_CRITICAL: f64 = 0.463;
/// `nsdiffs`' threshold on the seasonal strength for a seasonal difference.
const SEASONAL_STRENGTH_THRESHOLD: f64 = 0.64;
const MAX_P: usize = 5;
const MAX_Q: usize = 5;
const MAX_SEASONAL_P: usize = 2;
const MAX_SEASONAL_Q: usize = 2;
/// The largest p + q + P + Q searched.
const MAX_ORDER: usize = 5;
const MAX_MODELS: usize = 94;
/// Models with a partial autocorrelation (of the AR or MA side) beyond this
/// are near a unit root or non-invertible, and are rejected as `auto.arima`
/// rejects roots inside 1.01.
const MAX_PARTIAL: f64 = 0.99;

/// An ARIMA(p,d,q)(P,D,Q)ₘ order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ArimaOrder {
    pub p: usize,
    pub d: usize,
    pub q: usize,
    pub seasonal_p: usize,
    pub seasonal_d: usize,
    pub seasonal_q: usize,
    /// The season length (1 for none).
    pub m: usize,
}

/// A fitted ARIMA model: φ(B)Φ(Bᵐ)(wₜ − μ) = θ(B)Θ(Bᵐ)εₜ with
/// wₜ = (1−B)ᵈ(1−Bᵐ)ᴰ yₜ.
#[derive(Debug, Clone)]
pub struct ArimaModel {
    pub order: ArimaOrder,
    /// Whether μ is estimated: the mean when d + D = 0, the drift when 1.
    pub constant: bool,
    pub ar: Vec<f64>,
    pub ma: Vec<f64>,
    pub seasonal_ar: Vec<f64>,
    pub seasonal_ma: Vec<f64>,
    /// μ, in the series' units.
    pub mean: f64,
    /// The innovations' standard deviation, in the series' units.
    pub sigma: f64,
    pub aicc: f64,
    /// The divisor applied to the series while fitting.
    scale: f64,
    /// The one-step residuals of the differenced series, scaled.
    residuals: Vec<f64>,
}

/// The ARMA part of a candidate: orders and whether μ is estimated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Candidate {
    p: usize,
    q: usize,
    sp: usize,
    sq: usize,
    constant: bool,
}

impl Candidate {
    fn parameters(&self) -> usize {
        self.p + self.q + self.sp + self.sq + usize::from(self.constant)
    }
}

/// A candidate fitted by `fit`, in scaled units.
struct Fitted {
    arma: Arma,
    aicc: f64,
    residuals: Vec<f64>,
    sigma: f64,
}

/// A candidate's coefficients in scaled units.
#[derive(Debug, Clone)]
struct Arma {
    ar: Vec<f64>,
    ma: Vec<f64>,
    sar: Vec<f64>,
    sma: Vec<f64>,
    mu: f64,
}

/// Forecasts `h` steps with the model `auto_arima` picks; a series that is
/// too short, constant or not finite gets a flat or naive forecast instead.
pub fn arima(y: &[f64], m: usize, h: usize) -> Fit {
    if let Some(model) = auto_arima(y, m) {
        let fit = model.forecast(y, h);
        if fit.mean.iter().chain(&fit.sigma).all(|v| v.is_finite()) {
            return fit;
        }
    }
    naive(y, h)
}

/// The last value repeated, with a random walk's growing sigma.
fn naive(y: &[f64], h: usize) -> Fit {
    let finite: Vec<f64> = y.iter().copied().filter(|v| v.is_finite()).collect();
    let Some(&last) = finite.last() else {
        return Fit::normal(vec![0.0; h], vec![0.0; h]);
    };
    let scale = finite.iter().fold(0.0f64, |a, v| a.max(v.abs()));
    let s = if scale > 0.0 && finite.len() > 2 {
        let steps: Vec<f64> = finite.windows(2).map(|w| (w[1] - w[0]) / scale).collect();
        let rms = (steps.iter().map(|v| v * v).sum::<f64>() / steps.len() as f64).sqrt();
        rms * scale
    } else {
        0.0
    };
    let sigma = (1..=h)
        .map(|i| {
            let v = s * (i as f64).sqrt();
            if v.is_finite() { v } else { f64::MAX }
        })
        .collect();
    Fit::normal(vec![last; h], sigma)
}

/// The stepwise search; None when the series is too short (under 3
/// points), constant, or not finite.
pub fn auto_arima(y: &[f64], m: usize) -> Option<ArimaModel> {
    let n = y.len();
    if n < 3 || y.iter().any(|v| !v.is_finite()) {
        return None;
    }
    let scale = y.iter().fold(0.0f64, |a, v| a.max(v.abs()));
    if scale == 0.0 || y.iter().all(|v| *v == y[0]) {
        return None;
    }
    let z: Vec<f64> = y.iter().map(|v| v / scale).collect();
    let m = if m > 1 && n >= 2 * m { m } else { 1 };
    let seasonal_d = if m > 1 {
        seasonal_differences(&z, m)
    } else {
        0
    };
    let mut x = z.clone();
    for _ in 0..seasonal_d {
        x = difference(&x, m);
    }
    let d = differences(&x);
    for _ in 0..d {
        x = difference(&x, 1);
    }
    if x.len() < 3 {
        return None;
    }
    let order = ArimaOrder {
        p: 0,
        d,
        q: 0,
        seasonal_p: 0,
        seasonal_d,
        seasonal_q: 0,
        m,
    };
    let limits = Candidate {
        p: MAX_P.min(n / 3),
        q: MAX_Q.min(n / 3),
        sp: if m > 1 {
            MAX_SEASONAL_P.min(n / 3 / m)
        } else {
            0
        },
        sq: if m > 1 {
            MAX_SEASONAL_Q.min(n / 3 / m)
        } else {
            0
        },
        constant: d + seasonal_d <= 1,
    };
    let within = |c: &Candidate| {
        c.p <= limits.p
            && c.q <= limits.q
            && c.sp <= limits.sp
            && c.sq <= limits.sq
            && (limits.constant || !c.constant)
            && c.p + c.q + c.sp + c.sq <= MAX_ORDER
    };
    let mut fitted: HashMap<Candidate, Option<Fitted>> = HashMap::new();
    let mut best: Option<(Candidate, f64)> = None;
    let consider =
        |c: Candidate, fitted: &mut HashMap<_, _>, best: &mut Option<(Candidate, f64)>| -> bool {
            if !within(&c) || fitted.contains_key(&c) || fitted.len() >= MAX_MODELS {
                return false;
            }
            let result = fit(&x, c, m, order.d + order.seasonal_d * m);
            let aicc = result.as_ref().map(|r| r.aicc);
            fitted.insert(c, result);
            match (aicc, &best) {
                (Some(a), Some((_, b))) if a < *b - 1e-9 => {
                    *best = Some((c, a));
                    true
                }
                (Some(a), None) => {
                    *best = Some((c, a));
                    true
                }
                _ => false,
            }
        };
    let clamp = |p: usize, q: usize, sp: usize, sq: usize, constant: bool| Candidate {
        p: p.min(limits.p),
        q: q.min(limits.q),
        sp: sp.min(limits.sp),
        sq: sq.min(limits.sq),
        constant: constant && limits.constant,
    };
    let c = limits.constant;
    for start in [
        clamp(2, 2, 1, 1, c),
        clamp(0, 0, 0, 0, c),
        clamp(1, 0, 1, 0, c),
        clamp(0, 1, 0, 1, c),
        clamp(0, 0, 0, 0, false),
    ] {
        consider(start, &mut fitted, &mut best);
    }
    loop {
        let (current, _) = best?;
        let Candidate {
            p,
            q,
            sp,
            sq,
            constant,
        } = current;
        let steps: [(isize, isize, isize, isize); 16] = [
            (0, 0, -1, 0),
            (0, 0, 1, 0),
            (0, 0, 0, -1),
            (0, 0, 0, 1),
            (0, 0, -1, -1),
            (0, 0, 1, 1),
            (0, 0, -1, 1),
            (0, 0, 1, -1),
            (-1, 0, 0, 0),
            (1, 0, 0, 0),
            (0, -1, 0, 0),
            (0, 1, 0, 0),
            (-1, -1, 0, 0),
            (1, 1, 0, 0),
            (-1, 1, 0, 0),
            (1, -1, 0, 0),
        ];
        let shift = |v: usize, by: isize| v.checked_add_signed(by);
        let mut neighbours: Vec<Candidate> = steps
            .iter()
            .filter_map(|(dp, dq, dsp, dsq)| {
                Some(Candidate {
                    p: shift(p, *dp)?,
                    q: shift(q, *dq)?,
                    sp: shift(sp, *dsp)?,
                    sq: shift(sq, *dsq)?,
                    constant,
                })
            })
            .collect();
        neighbours.push(Candidate {
            constant: !constant,
            ..current
        });
        let improved = neighbours
            .into_iter()
            .any(|c| consider(c, &mut fitted, &mut best));
        if !improved {
            break;
        }
    }
    let (chosen, aicc) = best?;
    let Fitted {
        arma,
        residuals,
        sigma,
        ..
    } = fitted.remove(&chosen)??;
    Some(ArimaModel {
        order: ArimaOrder {
            p: chosen.p,
            q: chosen.q,
            seasonal_p: chosen.sp,
            seasonal_q: chosen.sq,
            ..order
        },
        constant: chosen.constant,
        mean: arma.mu * scale,
        sigma: sigma * scale,
        ar: arma.ar,
        ma: arma.ma,
        seasonal_ar: arma.sar,
        seasonal_ma: arma.sma,
        aicc,
        scale,
        residuals,
    })
}

/// Fits one candidate to the differenced, scaled series `w` by
/// Levenberg–Marquardt on the conditional sum of squares: coefficients,
/// AICc, residuals and sigma. None if it does not fit (too few points, or
/// a root on the edge of the unit circle).
fn fit(w: &[f64], c: Candidate, m: usize, integrated: usize) -> Option<Fitted> {
    let n = w.len();
    let k = c.parameters();
    let lags = c.p + c.sp * m + integrated;
    if n < k + 3 || lags >= n + integrated {
        return None;
    }
    let mut x0 = vec![0.0; k];
    if c.constant {
        x0[k - 1] = w.iter().sum::<f64>() / n as f64;
    }
    let mut residuals = vec![0.0; n];
    let mut sse_of = |x: &[f64], out: &mut [f64]| {
        let arma = unpack(x, c);
        let (ar, ma) = expand(&arma, m);
        css(w, &ar, &ma, arma.mu, out)
    };
    let x = if k == 0 {
        x0
    } else {
        levenberg_marquardt(&x0, n, &mut sse_of)
    };
    let sse = sse_of(&x, &mut residuals);
    if !sse.is_finite() {
        return None;
    }
    let partials = &x[..c.p + c.q + c.sp + c.sq];
    if partials.iter().any(|v| v.tanh().abs() > MAX_PARTIAL) {
        return None;
    }
    let nf = n as f64;
    let variance = (sse / nf).max(1e-20);
    let log_likelihood = -0.5 * nf * ((2.0 * std::f64::consts::PI * variance).ln() + 1.0);
    let kk = (k + 1) as f64;
    let aicc = -2.0 * log_likelihood + 2.0 * kk + 2.0 * kk * (kk + 1.0) / (nf - kk - 1.0);
    let sigma = (sse / (n - k) as f64).sqrt();
    Some(Fitted {
        arma: unpack(&x, c),
        aicc,
        residuals,
        sigma,
    })
}

/// Coefficients from search coordinates: each polynomial's partial
/// autocorrelations are tanh of a coordinate, so every AR factor is
/// stationary and every MA factor invertible.
fn unpack(x: &[f64], c: Candidate) -> Arma {
    let (ar, rest) = x.split_at(c.p);
    let (ma, rest) = rest.split_at(c.q);
    let (sar, rest) = rest.split_at(c.sp);
    let (sma, rest) = rest.split_at(c.sq);
    let negate = |v: Vec<f64>| v.into_iter().map(|a| -a).collect();
    Arma {
        ar: from_partials(ar),
        ma: negate(from_partials(ma)),
        sar: from_partials(sar),
        sma: negate(from_partials(sma)),
        mu: rest.first().copied().unwrap_or(0.0),
    }
}

/// Durbin–Levinson: the coefficients φ of 1 − ΣφᵢBⁱ whose partial
/// autocorrelations are tanh(x).
fn from_partials(x: &[f64]) -> Vec<f64> {
    let mut phi: Vec<f64> = Vec::with_capacity(x.len());
    for (k, v) in x.iter().enumerate() {
        let r = v.tanh();
        let previous = phi.clone();
        for j in 0..k {
            phi[j] = previous[j] - r * previous[k - 1 - j];
        }
        phi.push(r);
    }
    phi
}

/// The full AR and MA lag coefficients (index 0 is lag 1) of
/// φ(B)Φ(Bᵐ) = 1 − ΣaₖBᵏ and θ(B)Θ(Bᵐ) = 1 + ΣbₖBᵏ.
fn expand(arma: &Arma, m: usize) -> (Vec<f64>, Vec<f64>) {
    let ar = multiply(&lag_poly(&arma.ar, 1, -1.0), &lag_poly(&arma.sar, m, -1.0));
    let ma = multiply(&lag_poly(&arma.ma, 1, 1.0), &lag_poly(&arma.sma, m, 1.0));
    (ar[1..].iter().map(|v| -v).collect(), ma[1..].to_vec())
}

/// 1 + sign·Σ cᵢ B^(i·lag) as coefficients by power.
fn lag_poly(c: &[f64], lag: usize, sign: f64) -> Vec<f64> {
    let mut out = vec![0.0; c.len() * lag + 1];
    out[0] = 1.0;
    for (i, v) in c.iter().enumerate() {
        out[(i + 1) * lag] = sign * v;
    }
    out
}

fn multiply(a: &[f64], b: &[f64]) -> Vec<f64> {
    let mut out = vec![0.0; a.len() + b.len() - 1];
    for (i, x) in a.iter().enumerate() {
        for (j, y) in b.iter().enumerate() {
            out[i + j] += x * y;
        }
    }
    out
}

/// The one-step residuals of the ARMA(ar, ma) model of `w − μ`, with the
/// pre-sample at the mean (zero deviations and errors); their sum of
/// squares. Only non-zero lags are visited: seasonal polynomials are
/// mostly zeros (a daily season in hourly data has 24 lags per term).
fn css(w: &[f64], ar: &[f64], ma: &[f64], mu: f64, out: &mut [f64]) -> f64 {
    let nonzero = |c: &[f64]| -> Vec<(usize, f64)> {
        c.iter()
            .enumerate()
            .filter(|(_, v)| **v != 0.0)
            .map(|(k, v)| (k + 1, *v))
            .collect()
    };
    let (ar, ma) = (nonzero(ar), nonzero(ma));
    let mut sse = 0.0;
    for t in 0..w.len() {
        let mut e = w[t] - mu;
        for &(lag, a) in ar.iter().take_while(|(lag, _)| *lag <= t) {
            e -= a * (w[t - lag] - mu);
        }
        for &(lag, b) in ma.iter().take_while(|(lag, _)| *lag <= t) {
            e -= b * out[t - lag];
        }
        out[t] = e;
        sse += e * e;
    }
    sse
}

/// Minimises a sum of squares of `n` residuals, written by `f` (which
/// returns their sum of squares), from `x0`; the Jacobian by forward
/// differences.
fn levenberg_marquardt(
    x0: &[f64],
    n: usize,
    f: &mut dyn FnMut(&[f64], &mut [f64]) -> f64,
) -> Vec<f64> {
    let k = x0.len();
    let mut x = x0.to_vec();
    let mut r = vec![0.0; n];
    let mut sse = f(&x, &mut r);
    if !sse.is_finite() {
        return x;
    }
    let mut lambda = 1e-3;
    let mut jacobian = vec![vec![0.0; n]; k];
    let mut trial_r = vec![0.0; n];
    for _ in 0..100 {
        for j in 0..k {
            let step = 1e-7 * (1.0 + x[j].abs());
            let mut shifted = x.clone();
            shifted[j] += step;
            f(&shifted, &mut jacobian[j]);
            for (g, r0) in jacobian[j].iter_mut().zip(&r) {
                *g = (*g - r0) / step;
            }
        }
        let mut jtj = vec![vec![0.0; k]; k];
        let mut jtr = vec![0.0; k];
        for a in 0..k {
            for b in a..k {
                let v: f64 = jacobian[a]
                    .iter()
                    .zip(&jacobian[b])
                    .map(|(x, y)| x * y)
                    .sum();
                jtj[a][b] = v;
                jtj[b][a] = v;
            }
            jtr[a] = jacobian[a].iter().zip(&r).map(|(x, y)| x * y).sum();
        }
        let mut improved = false;
        for _ in 0..10 {
            let mut system = jtj.clone();
            for (a, row) in system.iter_mut().enumerate() {
                row[a] += lambda * (jtj[a][a] + 1e-12);
            }
            let Some(delta) = solve(system, jtr.iter().map(|v| -v).collect()) else {
                lambda *= 10.0;
                continue;
            };
            let trial: Vec<f64> = x.iter().zip(&delta).map(|(a, b)| a + b).collect();
            let trial_sse = f(&trial, &mut trial_r);
            if trial_sse.is_finite() && trial_sse < sse {
                let gain = (sse - trial_sse) / sse.max(1e-300);
                x = trial;
                sse = trial_sse;
                std::mem::swap(&mut r, &mut trial_r);
                lambda = (lambda / 3.0).max(1e-9);
                improved = gain > 1e-9;
                break;
            }
            lambda *= 4.0;
        }
        if !improved {
            break;
        }
    }
    x
}

/// Solves a small symmetric positive definite system by Cholesky.
fn solve(mut a: Vec<Vec<f64>>, mut b: Vec<f64>) -> Option<Vec<f64>> {
    let k = b.len();
    let dot = |x: &[f64], y: &[f64]| x.iter().zip(y).map(|(p, q)| p * q).sum::<f64>();
    for j in 0..k {
        let diag = a[j][j] - dot(&a[j][..j], &a[j][..j]);
        if !(diag > 0.0 && diag.is_finite()) {
            return None;
        }
        let diag = diag.sqrt();
        a[j][j] = diag;
        for i in j + 1..k {
            let v = (a[i][j] - dot(&a[i][..j], &a[j][..j])) / diag;
            a[i][j] = v;
        }
    }
    // L·z = b, then Lᵀ·x = z.
    for i in 0..k {
        b[i] = (b[i] - dot(&a[i][..i], &b[..i])) / a[i][i];
    }
    for i in (0..k).rev() {
        let tail: f64 = (i + 1..k).map(|l| a[l][i] * b[l]).sum();
        b[i] = (b[i] - tail) / a[i][i];
    }
    Some(b)
}

impl ArimaModel {
    /// Forecasts `h` steps after `y` (the series the model was fitted to),
    /// with sigma from the psi-weights of the integrated model.
    pub fn forecast(&self, y: &[f64], h: usize) -> Fit {
        let m = self.order.m;
        let arma = Arma {
            ar: self.ar.clone(),
            ma: self.ma.clone(),
            sar: self.seasonal_ar.clone(),
            sma: self.seasonal_ma.clone(),
            mu: self.mean / self.scale,
        };
        let stationary = multiply(&lag_poly(&arma.ar, 1, -1.0), &lag_poly(&arma.sar, m, -1.0));
        let mut full = stationary.clone();
        for _ in 0..self.order.d {
            full = multiply(&full, &[1.0, -1.0]);
        }
        for _ in 0..self.order.seasonal_d {
            full = multiply(&full, &lag_poly(&[1.0], m, -1.0));
        }
        let (_, ma) = expand(&arma, m);
        let constant = arma.mu * stationary.iter().sum::<f64>();
        let n = y.len();
        let mut z: Vec<f64> = y.iter().map(|v| v / self.scale).collect();
        let offset = n - self.residuals.len();
        let mut e = vec![0.0; n + h];
        e[offset..n].copy_from_slice(&self.residuals);
        for t in n..n + h {
            let mut v = constant;
            for (k, c) in full.iter().enumerate().skip(1) {
                v -= c * t.checked_sub(k).map_or(0.0, |i| z[i]);
            }
            for (k, b) in ma.iter().enumerate() {
                v += b * t.checked_sub(k + 1).map_or(0.0, |i| e[i]);
            }
            z.push(v);
        }
        // ψ₀ = 1, ψⱼ = bⱼ − Σₖ cₖψⱼ₋ₖ for the full polynomial c.
        let mut psi = vec![1.0; h];
        for j in 1..h {
            let mut v = ma.get(j - 1).copied().unwrap_or(0.0);
            for (k, c) in full.iter().enumerate().skip(1).take(j) {
                v -= c * psi[j - k];
            }
            psi[j] = v;
        }
        let mut acc = 0.0;
        let sigma = psi
            .iter()
            .map(|p| {
                acc += p * p;
                self.sigma * acc.sqrt()
            })
            .collect();
        let mean = z[n..].iter().map(|v| v * self.scale).collect();
        Fit::normal(mean, sigma)
    }
}

fn difference(x: &[f64], lag: usize) -> Vec<f64> {
    x.iter().skip(lag).zip(x).map(|(a, b)| a - b).collect()
}

fn is_constant(x: &[f64]) -> bool {
    x.iter().all(|v| (v - x[0]).abs() <= 1e-12)
}

/// First differences needed (0–2): difference while the KPSS test rejects
/// level stationarity at 5%.
fn differences(x: &[f64]) -> usize {
    let mut x = x.to_vec();
    let mut d = 0;
    while d < 2 && x.len() > 3 && !is_constant(&x) && kpss(&x) > KPSS_CRITICAL {
        x = difference(&x, 1);
        d += 1;
    }
    d
}

/// The KPSS statistic for level stationarity, with a Bartlett long-run
/// variance over ⌊3√n/13⌋ lags (as `ndiffs` uses).
fn kpss(x: &[f64]) -> f64 {
    let n = x.len();
    let mean = x.iter().sum::<f64>() / n as f64;
    let e: Vec<f64> = x.iter().map(|v| v - mean).collect();
    let mut partial = 0.0;
    let mut eta = 0.0;
    for v in &e {
        partial += v;
        eta += partial * partial;
    }
    let lags = (3.0 * (n as f64).sqrt() / 13.0) as usize;
    let mut long_run = e.iter().map(|v| v * v).sum::<f64>();
    for l in 1..=lags.min(n - 1) {
        let weight = 1.0 - l as f64 / (lags as f64 + 1.0);
        let cov: f64 = (l..n).map(|t| e[t] * e[t - l]).sum();
        long_run += 2.0 * weight * cov;
    }
    let long_run = long_run / n as f64;
    if long_run <= 0.0 {
        return 0.0;
    }
    eta / (n as f64 * n as f64 * long_run)
}

/// Seasonal differences needed (0 or 1): 1 when the seasonal strength of
/// an additive classical decomposition, 1 − Var(R)/Var(S + R), exceeds
/// 0.64 (`nsdiffs`' heuristic).
fn seasonal_differences(x: &[f64], m: usize) -> usize {
    let n = x.len();
    if n < 2 * m + 1 || is_constant(x) {
        return 0;
    }
    // A centred 2×m (even m) or m (odd m) moving average.
    let half = m / 2;
    let trend: Vec<Option<f64>> = (0..n)
        .map(|t| {
            if t < half || t + half >= n {
                return None;
            }
            Some(if m.is_multiple_of(2) {
                let inner: f64 = x[t + 1 - half..t + half].iter().sum();
                (inner + 0.5 * (x[t - half] + x[t + half])) / m as f64
            } else {
                x[t - half..=t + half].iter().sum::<f64>() / m as f64
            })
        })
        .collect();
    let mut sums = vec![0.0; m];
    let mut counts = vec![0usize; m];
    for (t, tr) in trend.iter().enumerate() {
        if let Some(tr) = tr {
            sums[t % m] += x[t] - tr;
            counts[t % m] += 1;
        }
    }
    if counts.contains(&0) {
        return 0;
    }
    let mut season: Vec<f64> = sums
        .iter()
        .zip(&counts)
        .map(|(s, c)| s / *c as f64)
        .collect();
    let centre = season.iter().sum::<f64>() / m as f64;
    season.iter_mut().for_each(|v| *v -= centre);
    let (mut detrended, mut remainder) = (Vec::new(), Vec::new());
    for (t, tr) in trend.iter().enumerate() {
        if let Some(tr) = tr {
            detrended.push(x[t] - tr);
            remainder.push(x[t] - tr - season[t % m]);
        }
    }
    let total = variance(&detrended);
    if total <= 0.0 {
        return 0;
    }
    let strength = (1.0 - variance(&remainder) / total).clamp(0.0, 1.0);
    usize::from(strength > SEASONAL_STRENGTH_THRESHOLD)
}

fn variance(v: &[f64]) -> f64 {
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    /// Standard normal draws (Box–Muller), seeded.
    fn noise(n: usize, seed: u64) -> Vec<f64> {
        let mut rng = StdRng::seed_from_u64(seed);
        (0..n)
            .map(|_| {
                let (u, v): (f64, f64) = (rng.random::<f64>().max(1e-12), rng.random());
                (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
            })
            .collect()
    }

    #[test]
    fn an_ar1_series_is_recognised_and_its_coefficient_recovered() {
        let e = noise(400, 1);
        let mut y = vec![0.0; 400];
        for t in 1..400 {
            y[t] = 0.7 * y[t - 1] + e[t];
        }
        let y: Vec<f64> = y.iter().map(|v| v + 50.0).collect();
        let model = auto_arima(&y, 1).unwrap();
        assert_eq!(model.order.d, 0, "{:?}", model.order);
        assert!(model.constant);
        assert!((model.mean - 50.0).abs() < 0.5, "{}", model.mean);
        assert_eq!((model.order.p, model.order.q), (1, 0), "{:?}", model.order);
        assert!((model.ar[0] - 0.7).abs() < 0.1, "{:?}", model.ar);
        assert!((model.sigma - 1.0).abs() < 0.1, "{}", model.sigma);
        // Forecasts decay towards the mean.
        let fit = model.forecast(&y, 30);
        let expected_1 = 50.0 + 0.7 * (y[399] - 50.0);
        assert!((fit.mean[0] - expected_1).abs() < 0.3, "{fit:?}");
        assert!((fit.mean[29] - 50.0).abs() < 0.5, "{fit:?}");
        assert!(fit.sigma[29] > fit.sigma[0]);
    }

    #[test]
    fn a_pure_ar1_fit_matches_its_coefficient() {
        let e = noise(500, 2);
        let mut y = vec![0.0; 500];
        for t in 1..500 {
            y[t] = -0.5 * y[t - 1] + e[t];
        }
        let c = Candidate {
            p: 1,
            q: 0,
            sp: 0,
            sq: 0,
            constant: true,
        };
        let arma = fit(&y, c, 1, 0).unwrap().arma;
        assert!((arma.ar[0] + 0.5).abs() < 0.08, "{arma:?}");
    }

    #[test]
    fn an_ma1_fit_matches_its_coefficient() {
        let e = noise(501, 3);
        let y: Vec<f64> = (1..501).map(|t| 10.0 + e[t] + 0.6 * e[t - 1]).collect();
        let c = Candidate {
            p: 0,
            q: 1,
            sp: 0,
            sq: 0,
            constant: true,
        };
        let arma = fit(&y, c, 1, 0).unwrap().arma;
        assert!((arma.ma[0] - 0.6).abs() < 0.08, "{arma:?}");
        assert!((arma.mu - 10.0).abs() < 0.2, "{arma:?}");
        let model = auto_arima(&y, 1).unwrap();
        assert_eq!(model.order.d, 0, "{:?} mean {}", model.order, model.mean);
        assert!(
            model.order.q >= 1 || model.order.p >= 2,
            "{:?} mean {}",
            model.order,
            model.mean
        );
    }

    #[test]
    fn a_random_walk_with_drift_is_differenced_and_its_drift_continued() {
        let e = noise(200, 4);
        let mut y = vec![100.0; 200];
        for t in 1..200 {
            y[t] = y[t - 1] + 2.0 + e[t];
        }
        let model = auto_arima(&y, 1).unwrap();
        assert_eq!(model.order.d, 1, "{:?} mean {}", model.order, model.mean);
        assert!(model.constant, "{:?} mean {}", model.order, model.mean);
        assert!(
            (model.mean - 2.0).abs() < 0.3,
            "{:?} mean {}",
            model.order,
            model.mean
        );
        let fit = model.forecast(&y, 10);
        for (i, v) in fit.mean.iter().enumerate() {
            let expected = y[199] + 2.0 * (i + 1) as f64;
            assert!((v - expected).abs() < 3.0, "{i}: {v} vs {expected}");
        }
        // A random walk's sigma grows like √h.
        let ratio = fit.sigma[8] / fit.sigma[0];
        assert!((ratio - 3.0).abs() < 0.8, "{fit:?}");
    }

    #[test]
    fn a_seasonal_series_is_seasonally_differenced_and_its_pattern_forecast() {
        let pattern = [
            10.0, -5.0, 3.0, -8.0, 0.0, 6.0, 12.0, -4.0, -2.0, 7.0, -9.0, -10.0,
        ];
        let e = noise(120, 5);
        let y: Vec<f64> = (0..120)
            .map(|t| 200.0 + 0.5 * t as f64 + pattern[t % 12] + e[t])
            .collect();
        let model = auto_arima(&y, 12).unwrap();
        assert_eq!(
            model.order.seasonal_d, 1,
            "{:?} mean {}",
            model.order, model.mean
        );
        let fit = model.forecast(&y, 12);
        for (i, v) in fit.mean.iter().enumerate() {
            let t = 120 + i;
            let expected = 200.0 + 0.5 * t as f64 + pattern[t % 12];
            assert!((v - expected).abs() < 4.0, "{i}: {v} vs {expected}");
        }
        assert!(fit.sigma.iter().all(|s| s.is_finite() && *s > 0.0));
    }

    #[test]
    fn short_constant_huge_and_broken_series_get_finite_forecasts() {
        let cases: Vec<Vec<f64>> = vec![
            vec![],
            vec![5.0],
            vec![5.0, 7.0],
            vec![3.0, 4.0, 6.0],
            vec![42.0; 30],
            vec![0.0; 10],
            (0..40)
                .map(|t| 1e300 * (1.0 + 0.01 * ((t * 7) % 5) as f64))
                .collect(),
            (0..40)
                .map(|t| 1e-300 * (1.0 + ((t * 7) % 5) as f64))
                .collect(),
            (0..20).map(|t| t as f64).collect(),
            vec![1.0, f64::NAN, 3.0, 4.0, 5.0],
        ];
        for y in cases {
            for m in [1, 4, 12] {
                let fit = arima(&y, m, 8);
                assert_eq!(fit.mean.len(), 8);
                assert!(
                    fit.mean.iter().chain(&fit.sigma).all(|v| v.is_finite()),
                    "{y:?} m={m}: {fit:?}"
                );
            }
        }
        let flat = arima(&[42.0; 30], 1, 3);
        assert_eq!(flat.mean, vec![42.0; 3]);
        let line = arima(&(0..20).map(|t| t as f64).collect::<Vec<_>>(), 1, 3);
        assert!((line.mean[2] - 22.0).abs() < 1e-6, "{line:?}");
    }
}
